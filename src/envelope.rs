// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The event envelope, its stable id, deduplication and event time.
//!
//! The JSON written here is the seed's format to the letter (field order included), so
//! consumers built for it keep working.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use gst::glib;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};

use crate::detection::Detection;

/// The producer string when the `producer` property is left alone.
pub const DEFAULT_PRODUCER: &str = concat!("kvs-infer/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub event_id: String,
    pub camera_id: String,
    pub producer: String,
    pub payload: Payload,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    pub ts_ms: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub label: String,
    pub conf: f64,
    pub bbox: [u32; 4],
    pub extras: Map<String, Value>,
}

/// Where an event's snapshot is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Envelope {
    pub fn new(
        camera_id: &str,
        producer: &str,
        ts_ms: u64,
        dedup_window_ms: u64,
        detection: Detection,
    ) -> Self {
        Envelope {
            event_id: event_id(
                camera_id,
                &detection.event_type,
                &detection.label,
                ts_bucket(ts_ms, dedup_window_ms),
            ),
            camera_id: camera_id.to_string(),
            producer: producer.to_string(),
            payload: Payload {
                ts_ms,
                event_type: detection.event_type,
                label: detection.label,
                conf: detection.conf,
                bbox: detection.bbox,
                extras: detection.extras,
            },
            snapshot: None,
        }
    }

    /// The envelope as one line of JSON, without the newline.
    pub fn to_json(&self) -> String {
        // Serializing plain structs, strings and finite numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The start of the dedup window that `ts_ms` falls in.
pub fn ts_bucket(ts_ms: u64, window_ms: u64) -> u64 {
    ts_ms - ts_ms % window_ms.max(1)
}

/// Lowercase hex SHA1 of `camera_id:type:label:ts_bucket`.
pub fn event_id(camera_id: &str, event_type: &str, label: &str, bucket: u64) -> String {
    let mut hasher = Sha1::new();
    hasher.update(format!("{camera_id}:{event_type}:{label}:{bucket}"));

    let mut hex = String::with_capacity(40);
    for byte in hasher.finalize() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Remembers the event ids of recent windows so that each one is published once.
#[derive(Debug, Default)]
pub struct Deduplicator {
    seen: HashMap<String, u64>,
    newest_bucket: u64,
}

/// Windows older than this many windows behind the newest are forgotten.
const DEDUP_HORIZON_WINDOWS: u64 = 4;

impl Deduplicator {
    /// True the first time `event_id` is seen for its window.
    pub fn first_occurrence(&mut self, event_id: &str, bucket: u64, window_ms: u64) -> bool {
        if bucket > self.newest_bucket {
            self.newest_bucket = bucket;
            let horizon = bucket.saturating_sub(DEDUP_HORIZON_WINDOWS * window_ms);
            self.seen.retain(|_, seen_bucket| *seen_bucket >= horizon);
        }
        if self.seen.contains_key(event_id) {
            return false;
        }
        self.seen.insert(event_id.to_string(), bucket);
        true
    }

    pub fn clear(&mut self) {
        self.seen.clear();
        self.newest_bucket = 0;
    }
}

/// How `ts_ms` is chosen: the `timestamp-mode` property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstKvsInferTimestampMode")]
pub enum TimestampMode {
    #[enum_value(
        name = "Auto: a timestamp/x-unix reference timestamp, else stream start plus running time",
        nick = "auto"
    )]
    Auto,
    #[enum_value(
        name = "Wallclock: the time the buffer arrived at the sink",
        nick = "wallclock"
    )]
    Wallclock,
}

/// Gives each buffer its event time in Unix milliseconds.
#[derive(Debug)]
pub struct EventClock {
    mode: TimestampMode,
    /// Unix time, in ms, at which running time was zero.
    stream_start_ms: Option<i128>,
}

impl EventClock {
    pub fn new(mode: TimestampMode) -> Self {
        EventClock {
            mode,
            stream_start_ms: None,
        }
    }

    /// Forgets the stream start, as after a flush or a new stream.
    pub fn reset(&mut self) {
        self.stream_start_ms = None;
    }

    /// `reference_ns`: a `timestamp/x-unix` reference timestamp; `running_ns`: the buffer's
    /// running time; `now_ms`: the current Unix time.
    pub fn ts_ms(
        &mut self,
        reference_ns: Option<u64>,
        running_ns: Option<u64>,
        now_ms: u64,
    ) -> u64 {
        if self.mode == TimestampMode::Wallclock {
            return now_ms;
        }
        if let Some(reference) = reference_ns {
            return reference / 1_000_000;
        }
        let Some(running) = running_ns else {
            return now_ms;
        };

        let running_ms = i128::from(running / 1_000_000);
        let start = *self
            .stream_start_ms
            .get_or_insert(i128::from(now_ms) - running_ms);
        u64::try_from(start + running_ms).unwrap_or(now_ms)
    }
}

pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_id_matches_the_seed_test_vector() {
        let bucket = ts_bucket(1_697_123_456_789, 1000);
        assert_eq!(bucket, 1_697_123_456_000);
        assert_eq!(
            event_id("camera_1", "weapon", "knife", bucket),
            "942cbd38eeb0cada50bcc22efdaeeb0f342dbb49"
        );
    }

    #[test]
    fn envelope_serializes_in_the_seed_format() {
        let detection = Detection {
            label: "knife".into(),
            event_type: "weapon".into(),
            conf: 0.87,
            bbox: [100, 200, 50, 75],
            extras: json!({"text": "ABC1234"}).as_object().unwrap().clone(),
        };
        let envelope = Envelope::new(
            "camera_1",
            DEFAULT_PRODUCER,
            1_697_123_456_789,
            1000,
            detection,
        );
        assert_eq!(
            envelope.to_json(),
            format!(
                "{{\"event_id\":\"942cbd38eeb0cada50bcc22efdaeeb0f342dbb49\",\
                 \"camera_id\":\"camera_1\",\"producer\":\"kvs-infer/{}\",\
                 \"payload\":{{\"ts_ms\":1697123456789,\"type\":\"weapon\",\"label\":\"knife\",\
                 \"conf\":0.87,\"bbox\":[100,200,50,75],\"extras\":{{\"text\":\"ABC1234\"}}}}}}",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn snapshot_field_omits_what_is_unknown() {
        let snapshot = SnapshotRef {
            bucket: None,
            key: "snapshots/cam1/5.jpg".into(),
            url: None,
        };
        assert_eq!(
            serde_json::to_value(&snapshot).unwrap(),
            json!({"key": "snapshots/cam1/5.jpg"})
        );
    }

    #[test]
    fn deduplicator_publishes_once_per_window() {
        let mut dedup = Deduplicator::default();
        assert!(dedup.first_occurrence("a", 1000, 1000));
        assert!(!dedup.first_occurrence("a", 1000, 1000));
        assert!(dedup.first_occurrence("b", 1000, 1000));
        assert!(dedup.first_occurrence("a2", 2000, 1000));
        // Far-away windows push old ids out of memory.
        assert!(dedup.first_occurrence("z", 100_000, 1000));
        assert_eq!(dedup.seen.len(), 1);
    }

    #[test]
    fn clock_prefers_reference_then_running_time() {
        let mut clock = EventClock::new(TimestampMode::Auto);
        assert_eq!(clock.ts_ms(Some(5_000_000_000), Some(1), 99), 5000);
        // First buffer at running time 2 s arriving at Unix 10 s: the stream started at 8 s.
        assert_eq!(clock.ts_ms(None, Some(2_000_000_000), 10_000), 10_000);
        // A faster-than-real-time replay keeps media spacing.
        assert_eq!(clock.ts_ms(None, Some(3_500_000_000), 10_001), 11_500);
        assert_eq!(clock.ts_ms(None, None, 12_345), 12_345);

        let mut wall = EventClock::new(TimestampMode::Wallclock);
        assert_eq!(wall.ts_ms(Some(5_000_000_000), Some(1), 77), 77);
    }
}
