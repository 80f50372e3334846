// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The snapshot properties of `kvsinfersink`, kept out of `imp.rs` so the element's glue stays
//! short. `jpeg-quality` left unset is filled from the seed's `S3_JPEG_QUALITY`.

use gst::glib;
use gst::prelude::*;

pub const DEFAULT_SNAPSHOT: bool = true;
pub const DEFAULT_JPEG_QUALITY: u32 = 90;
pub const DEFAULT_SNAPSHOT_INTERVAL_MS: u32 = 1000;
pub const DEFAULT_SNAPSHOT_MAX_WIDTH: u32 = 0;
pub const DEFAULT_DRAW_LABELS: bool = true;

#[derive(Debug, Clone)]
pub struct SnapshotProperties {
    pub enabled: bool,
    /// `None`: not set, so `S3_JPEG_QUALITY` or the default applies.
    pub jpeg_quality: Option<u32>,
    pub interval_ms: u32,
    pub max_width: u32,
    pub draw_labels: bool,
}

impl Default for SnapshotProperties {
    fn default() -> Self {
        SnapshotProperties {
            enabled: DEFAULT_SNAPSHOT,
            jpeg_quality: None,
            interval_ms: DEFAULT_SNAPSHOT_INTERVAL_MS,
            max_width: DEFAULT_SNAPSHOT_MAX_WIDTH,
            draw_labels: DEFAULT_DRAW_LABELS,
        }
    }
}

fn uint(name: &str, nick: &str, blurb: &str, (max, default): (u32, u32)) -> glib::ParamSpec {
    glib::ParamSpecUInt::builder(name)
        .nick(nick)
        .blurb(blurb)
        .maximum(max)
        .default_value(default)
        .mutable_ready()
        .build()
}

fn boolean(name: &str, nick: &str, blurb: &str, default: bool) -> glib::ParamSpec {
    glib::ParamSpecBoolean::builder(name)
        .nick(nick)
        .blurb(blurb)
        .default_value(default)
        .mutable_ready()
        .build()
}

pub(super) fn specs() -> Vec<glib::ParamSpec> {
    vec![
        boolean(
            "snapshot",
            "Snapshot",
            "Make an annotated JPEG of frames with new events",
            DEFAULT_SNAPSHOT,
        ),
        uint(
            "jpeg-quality",
            "JPEG Quality",
            "Quality of the snapshots, 0..100; unset = S3_JPEG_QUALITY, else 90",
            (100, DEFAULT_JPEG_QUALITY),
        ),
        uint(
            "snapshot-interval",
            "Snapshot Interval",
            "At most one snapshot per this much event time, in ms, 0 = every frame with a new event",
            (u32::MAX, DEFAULT_SNAPSHOT_INTERVAL_MS),
        ),
        uint(
            "snapshot-max-width",
            "Snapshot Max Width",
            "Wider frames are scaled down to this width, aspect kept, in pixels, 0 = full size",
            (u32::MAX, DEFAULT_SNAPSHOT_MAX_WIDTH),
        ),
        boolean(
            "draw-labels",
            "Draw Labels",
            "Draw a 'label 0.87' tag above each box",
            DEFAULT_DRAW_LABELS,
        ),
    ]
}

/// Stores `value` if `name` is a snapshot property; false if it is not one.
pub(super) fn set(props: &mut SnapshotProperties, name: &str, value: &glib::Value) -> bool {
    match name {
        "snapshot" => props.enabled = value.get().unwrap_or(DEFAULT_SNAPSHOT),
        "jpeg-quality" => props.jpeg_quality = value.get().ok(),
        "snapshot-interval" => {
            props.interval_ms = value.get().unwrap_or(DEFAULT_SNAPSHOT_INTERVAL_MS)
        }
        "snapshot-max-width" => props.max_width = value.get().unwrap_or(DEFAULT_SNAPSHOT_MAX_WIDTH),
        "draw-labels" => props.draw_labels = value.get().unwrap_or(DEFAULT_DRAW_LABELS),
        _ => return false,
    }
    true
}

/// The value of snapshot property `name`; `None` if it is not one.
pub(super) fn get(props: &SnapshotProperties, name: &str) -> Option<glib::Value> {
    Some(match name {
        "snapshot" => props.enabled.to_value(),
        "jpeg-quality" => props
            .jpeg_quality
            .unwrap_or(DEFAULT_JPEG_QUALITY)
            .to_value(),
        "snapshot-interval" => props.interval_ms.to_value(),
        "snapshot-max-width" => props.max_width.to_value(),
        "draw-labels" => props.draw_labels.to_value(),
        _ => return None,
    })
}
