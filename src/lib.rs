// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! GStreamer plugin `kvsinfer`: detection metadata in, event envelopes and annotated snapshots
//! out, delivered to a local directory or AWS without stalling the pipeline.

use gst::glib;

pub mod delivery;
pub mod destination;
pub mod detection;
pub mod envelope;
pub mod extract;
mod ratelimit;
pub mod runtime;
mod sink;
pub mod snapshot;
pub mod stats;

pub use sink::KvsInferSink;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    sink::register(plugin)
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
