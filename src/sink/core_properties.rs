// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The core properties of `kvsinfersink`: the camera, what makes an event, where it is written
//! locally. Kept out of `imp.rs`, like the other property groups, so the glue stays short.

use std::path::PathBuf;

use gst::glib;
use gst::prelude::*;

use crate::detection;
use crate::envelope::{self, TimestampMode};

pub const DEFAULT_MIN_CONFIDENCE: f64 = 0.0;
pub const DEFAULT_DEDUP_WINDOW_MS: u32 = 1000;
const MAX_DEDUP_WINDOW_MS: u32 = 24 * 60 * 60 * 1000;
pub const DEFAULT_TIMESTAMP_MODE: TimestampMode = TimestampMode::Auto;
pub const DEFAULT_POST_MESSAGES: bool = false;
pub const DEFAULT_FLUSH_TIMEOUT_MS: u32 = 10_000;

#[derive(Debug, Clone)]
pub struct CoreProperties {
    pub camera_id: Option<String>,
    pub producer: String,
    pub type_map: String,
    pub min_confidence: f64,
    pub labels: String,
    pub dedup_window_ms: u32,
    pub timestamp_mode: TimestampMode,
    pub output_dir: Option<PathBuf>,
    pub post_messages: bool,
    pub flush_timeout_ms: u32,
    pub kvssink_name: Option<String>,
}

impl Default for CoreProperties {
    fn default() -> Self {
        CoreProperties {
            camera_id: None,
            producer: envelope::DEFAULT_PRODUCER.to_string(),
            type_map: detection::DEFAULT_TYPE_MAP.to_string(),
            min_confidence: DEFAULT_MIN_CONFIDENCE,
            labels: String::new(),
            dedup_window_ms: DEFAULT_DEDUP_WINDOW_MS,
            timestamp_mode: DEFAULT_TIMESTAMP_MODE,
            output_dir: None,
            post_messages: DEFAULT_POST_MESSAGES,
            flush_timeout_ms: DEFAULT_FLUSH_TIMEOUT_MS,
            kvssink_name: None,
        }
    }
}

pub(super) fn specs() -> Vec<glib::ParamSpec> {
    vec![
        glib::ParamSpecString::builder("camera-id")
            .nick("Camera ID")
            .blurb("Name of the camera, required: letters, digits, '.', '_', '-', at most 128 bytes")
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("producer")
            .nick("Producer")
            .blurb("Producer string written in every envelope")
            .default_value(Some(envelope::DEFAULT_PRODUCER))
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("type-map")
            .nick("Type Map")
            .blurb("Comma-separated label:type pairs naming the event type of a label")
            .default_value(Some(detection::DEFAULT_TYPE_MAP))
            .mutable_ready()
            .build(),
        glib::ParamSpecDouble::builder("min-confidence")
            .nick("Minimum Confidence")
            .blurb("Detections below this confidence are ignored")
            .minimum(0.0)
            .maximum(1.0)
            .default_value(DEFAULT_MIN_CONFIDENCE)
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("labels")
            .nick("Labels")
            .blurb("Comma-separated labels to keep, empty = every label")
            .default_value(Some(""))
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("dedup-window")
            .nick("Dedup Window")
            .blurb("Window in ms within which an object yields one event")
            .minimum(1)
            .maximum(MAX_DEDUP_WINDOW_MS)
            .default_value(DEFAULT_DEDUP_WINDOW_MS)
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default("timestamp-mode", DEFAULT_TIMESTAMP_MODE)
            .nick("Timestamp Mode")
            .blurb("Where an event's ts_ms comes from")
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("output-dir")
            .nick("Output Directory")
            .blurb("Local directory receiving events.jsonl, unset = no local output")
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("post-messages")
            .nick("Post Messages")
            .blurb("Post a kvsinfer-event element message for every delivered event")
            .default_value(DEFAULT_POST_MESSAGES)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("flush-timeout")
            .nick("Flush Timeout")
            .blurb("How long EOS waits for pending deliveries, in ms, 0 = not at all")
            .default_value(DEFAULT_FLUSH_TIMEOUT_MS)
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("kvssink-name")
            .nick("kvssink Name")
            .blurb("Name of a kvssink in the pipeline whose fragments get a tag per event, unset = none")
            .mutable_ready()
            .build(),
    ]
}

/// Stores `value` if `name` is a core property; false if it is not one.
pub(super) fn set(props: &mut CoreProperties, name: &str, value: &glib::Value) -> bool {
    let text = || value.get::<Option<String>>().ok().flatten();
    match name {
        "camera-id" => props.camera_id = text(),
        "producer" => props.producer = text().unwrap_or_default(),
        "type-map" => props.type_map = text().unwrap_or_default(),
        "min-confidence" => props.min_confidence = value.get().unwrap_or(DEFAULT_MIN_CONFIDENCE),
        "labels" => props.labels = text().unwrap_or_default(),
        "dedup-window" => props.dedup_window_ms = value.get().unwrap_or(DEFAULT_DEDUP_WINDOW_MS),
        "timestamp-mode" => props.timestamp_mode = value.get().unwrap_or(DEFAULT_TIMESTAMP_MODE),
        "output-dir" => props.output_dir = text().map(PathBuf::from),
        "post-messages" => props.post_messages = value.get().unwrap_or(DEFAULT_POST_MESSAGES),
        "flush-timeout" => props.flush_timeout_ms = value.get().unwrap_or(DEFAULT_FLUSH_TIMEOUT_MS),
        "kvssink-name" => props.kvssink_name = text(),
        _ => return false,
    }
    true
}

/// The value of core property `name`; `None` if it is not one.
pub(super) fn get(props: &CoreProperties, name: &str) -> Option<glib::Value> {
    Some(match name {
        "camera-id" => props.camera_id.to_value(),
        "producer" => props.producer.to_value(),
        "type-map" => props.type_map.to_value(),
        "min-confidence" => props.min_confidence.to_value(),
        "labels" => props.labels.to_value(),
        "dedup-window" => props.dedup_window_ms.to_value(),
        "timestamp-mode" => props.timestamp_mode.to_value(),
        "output-dir" => props
            .output_dir
            .as_ref()
            .map(|dir| dir.display().to_string())
            .to_value(),
        "post-messages" => props.post_messages.to_value(),
        "flush-timeout" => props.flush_timeout_ms.to_value(),
        "kvssink-name" => props.kvssink_name.to_value(),
        _ => return None,
    })
}
