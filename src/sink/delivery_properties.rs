// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The delivery-guarantee properties of `kvsinfersink`: the byte budget of what is pending, what
//! happens when it is spent, and the spool. Kept out of `imp.rs` so the element's glue stays short.

use std::path::PathBuf;

use gst::glib;
use gst::prelude::*;

use crate::delivery::budget::WhenFull;

pub const DEFAULT_MAX_PENDING_BYTES: u64 = 64 * 1024 * 1024;
/// Less than this could not hold one 4K snapshot.
const MIN_MAX_PENDING_BYTES: u64 = 64 * 1024;
pub const DEFAULT_WHEN_FULL: WhenFull = WhenFull::DropSnapshot;
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct DeliveryProperties {
    pub max_pending_bytes: u64,
    pub when_full: WhenFull,
    pub spool_dir: Option<PathBuf>,
    pub spool_max_bytes: u64,
}

impl Default for DeliveryProperties {
    fn default() -> Self {
        DeliveryProperties {
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
            when_full: DEFAULT_WHEN_FULL,
            spool_dir: None,
            spool_max_bytes: DEFAULT_SPOOL_MAX_BYTES,
        }
    }
}

pub(super) fn specs() -> Vec<glib::ParamSpec> {
    vec![
        glib::ParamSpecUInt64::builder("max-pending-bytes")
            .nick("Max Pending Bytes")
            .blurb("Events and snapshots accepted but not yet delivered, at most, in bytes")
            .minimum(MIN_MAX_PENDING_BYTES)
            .default_value(DEFAULT_MAX_PENDING_BYTES)
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default("when-full", DEFAULT_WHEN_FULL)
            .nick("When Full")
            .blurb("What a frame that does not fit in max-pending-bytes loses")
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("spool-dir")
            .nick("Spool Directory")
            .blurb("Directory of the durable spool: accepted events survive a restart and are resent, unset = no spool")
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt64::builder("spool-max-bytes")
            .nick("Spool Max Bytes")
            .blurb("Spool size past which new events are delivered without it (and warned about), in bytes")
            .minimum(MIN_MAX_PENDING_BYTES)
            .default_value(DEFAULT_SPOOL_MAX_BYTES)
            .mutable_ready()
            .build(),
    ]
}

/// Stores `value` if `name` is a delivery property; false if it is not one.
pub(super) fn set(props: &mut DeliveryProperties, name: &str, value: &glib::Value) -> bool {
    match name {
        "max-pending-bytes" => {
            props.max_pending_bytes = value.get().unwrap_or(DEFAULT_MAX_PENDING_BYTES)
        }
        "when-full" => props.when_full = value.get().unwrap_or(DEFAULT_WHEN_FULL),
        "spool-dir" => {
            props.spool_dir = value
                .get::<Option<String>>()
                .ok()
                .flatten()
                .map(PathBuf::from)
        }
        "spool-max-bytes" => props.spool_max_bytes = value.get().unwrap_or(DEFAULT_SPOOL_MAX_BYTES),
        _ => return false,
    }
    true
}

/// The value of delivery property `name`; `None` if it is not one.
pub(super) fn get(props: &DeliveryProperties, name: &str) -> Option<glib::Value> {
    Some(match name {
        "max-pending-bytes" => props.max_pending_bytes.to_value(),
        "when-full" => props.when_full.to_value(),
        "spool-dir" => props
            .spool_dir
            .as_ref()
            .map(|dir| dir.display().to_string())
            .to_value(),
        "spool-max-bytes" => props.spool_max_bytes.to_value(),
        _ => return None,
    })
}
