// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! GStreamer plugin `kvsinfer`: detection metadata in, event envelopes and annotated snapshots
//! out, delivered to a local directory or AWS without stalling the pipeline.

use std::sync::LazyLock;

use gst::glib;

pub mod aws;
pub mod delivery;
pub mod destination;
pub mod detection;
pub mod envelope;
pub mod extract;
pub mod kvstag;
pub mod provision;
mod ratelimit;
pub mod replay;
pub mod runtime;
mod sink;
pub mod snapshot;
pub mod stats;

pub use replay::KvsInferReplay;
pub use sink::KvsInferSink;

/// The debug category of the element, shared by the plain modules that log for it.
pub(crate) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "kvsinfersink",
        gst::DebugColorFlags::empty(),
        Some("Detection events sink"),
    )
});

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    sink::register(plugin)?;
    replay::register(plugin)
}

gst::plugin_define!(
    kvsinfer,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
