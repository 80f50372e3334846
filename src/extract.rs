// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! One frame's metadata in, the frame's new events out: validation, event time, deduplication.

use std::sync::atomic::Ordering;

use gst_video::VideoRegionOfInterestMeta;

use crate::detection::{self, Detection, DetectionRules, Rejection};
use crate::envelope::{Deduplicator, Envelope, EventClock, TimestampMode, ts_bucket};
use crate::stats::SinkStats;

/// Longest camera id accepted: it becomes a key segment in S3 and a partition key in Kinesis.
pub const MAX_CAMERA_ID_BYTES: usize = 128;

/// Checks that a camera id can stand as one key segment as it is.
pub fn validate_camera_id(camera_id: &str) -> Result<(), String> {
    if camera_id.is_empty() {
        return Err("'camera-id' is empty".into());
    }
    if camera_id.len() > MAX_CAMERA_ID_BYTES {
        return Err(format!(
            "'camera-id' is {} bytes long, at most {MAX_CAMERA_ID_BYTES} are allowed",
            camera_id.len()
        ));
    }
    if camera_id == "." || camera_id == ".." {
        return Err(format!(
            "'camera-id' '{camera_id}' is not a usable key segment"
        ));
    }
    if let Some(bad) = camera_id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "'camera-id' {camera_id:?} contains {bad:?}: only ASCII letters, digits, '.', '_' and '-' \
             are allowed"
        ));
    }
    Ok(())
}

/// What one frame gave.
#[derive(Debug, Default)]
pub struct FrameEvents {
    pub ts_ms: u64,
    /// New events, in metadata order.
    pub envelopes: Vec<Envelope>,
    /// Every valid detection of the frame, including those whose event was suppressed: a
    /// snapshot draws them all.
    pub detections: Vec<Detection>,
    /// Regions that did not become detections, with their label.
    pub rejections: Vec<(String, Rejection)>,
}

/// Turns frames into events for one camera.
#[derive(Debug)]
pub struct EventExtractor {
    camera_id: String,
    producer: String,
    dedup_window_ms: u64,
    rules: DetectionRules,
    clock: EventClock,
    dedup: Deduplicator,
}

impl EventExtractor {
    pub fn new(
        camera_id: String,
        producer: String,
        dedup_window_ms: u64,
        rules: DetectionRules,
        timestamp_mode: TimestampMode,
    ) -> Self {
        EventExtractor {
            camera_id,
            producer,
            dedup_window_ms: dedup_window_ms.max(1),
            rules,
            clock: EventClock::new(timestamp_mode),
            dedup: Deduplicator::default(),
        }
    }

    /// Forgets the stream start, after a flush.
    pub fn reset_clock(&mut self) {
        self.clock.reset();
    }

    /// Reads the frame's regions of interest. `frame` is (width, height) from the caps,
    /// `running_ns` the buffer's running time, `now_ms` the current Unix time.
    pub fn process(
        &mut self,
        buffer: &gst::BufferRef,
        frame: (u32, u32),
        running_ns: Option<u64>,
        now_ms: u64,
        stats: &SinkStats,
    ) -> FrameEvents {
        stats.frames.fetch_add(1, Ordering::Relaxed);

        let mut metas = buffer.iter_meta::<VideoRegionOfInterestMeta>().peekable();
        if metas.peek().is_none() {
            return FrameEvents::default();
        }

        let reference_ns = buffer
            .iter_meta::<gst::ReferenceTimestampMeta>()
            .find(|meta| {
                meta.reference()
                    .structure(0)
                    .is_some_and(|s| s.name() == "timestamp/x-unix")
            })
            .map(|meta| meta.timestamp().nseconds());
        let ts_ms = self.clock.ts_ms(reference_ns, running_ns, now_ms);
        let bucket = ts_bucket(ts_ms, self.dedup_window_ms);

        let mut frame_events = FrameEvents {
            ts_ms,
            ..Default::default()
        };
        for meta in metas {
            stats.detections.fetch_add(1, Ordering::Relaxed);
            let label = meta.roi_type();
            let detection =
                match detection::from_roi(label, meta.rect(), meta.params(), frame, &self.rules) {
                    Ok(detection) => detection,
                    Err(rejection) => {
                        stats.reject(&rejection);
                        frame_events.rejections.push((label.to_string(), rejection));
                        continue;
                    }
                };

            let envelope = Envelope::new(
                &self.camera_id,
                &self.producer,
                ts_ms,
                self.dedup_window_ms,
                detection.clone(),
            );
            if self
                .dedup
                .first_occurrence(&envelope.event_id, bucket, self.dedup_window_ms)
            {
                stats.events.fetch_add(1, Ordering::Relaxed);
                frame_events.envelopes.push(envelope);
            } else {
                stats.suppressed.fetch_add(1, Ordering::Relaxed);
            }
            frame_events.detections.push(detection);
        }
        frame_events
    }
}

/// At most one snapshot per interval of event time, and only for frames with a new event.
#[derive(Debug)]
pub struct SnapshotSchedule {
    interval_ms: u64,
    last_ts_ms: Option<u64>,
}

impl SnapshotSchedule {
    /// `interval_ms` of 0 is one per millisecond: a snapshot's key is its millisecond.
    pub fn new(interval_ms: u64) -> Self {
        SnapshotSchedule {
            interval_ms: interval_ms.max(1),
            last_ts_ms: None,
        }
    }

    /// Whether a frame at `ts_ms` with new events gets a snapshot; if so, it counts as taken.
    /// Time going backwards (a seek, a replay) starts the schedule again.
    pub fn take(&mut self, ts_ms: u64) -> bool {
        let due = match self.last_ts_ms {
            None => true,
            Some(last) => ts_ms < last || ts_ms - last >= self.interval_ms,
        };
        if due {
            self.last_ts_ms = Some(ts_ms);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::{DEFAULT_TYPE_MAP, TypeMap};

    fn extractor() -> EventExtractor {
        let rules = DetectionRules {
            type_map: TypeMap::parse(DEFAULT_TYPE_MAP).unwrap(),
            ..Default::default()
        };
        EventExtractor::new("cam1".into(), "p".into(), 1000, rules, TimestampMode::Auto)
    }

    type Region<'a> = (&'a str, (u32, u32, u32, u32));

    fn frame_with(regions: &[Region], unix_ms: Option<u64>) -> gst::Buffer {
        gst::init().unwrap();
        let mut buffer = gst::Buffer::new();
        {
            let buffer = buffer.get_mut().unwrap();
            for (label, rect) in regions {
                VideoRegionOfInterestMeta::add(buffer, label, *rect);
            }
            if let Some(ms) = unix_ms {
                let caps = gst::Caps::new_empty_simple("timestamp/x-unix");
                gst::ReferenceTimestampMeta::add(
                    buffer,
                    &caps,
                    gst::ClockTime::from_mseconds(ms),
                    None,
                );
            }
        }
        buffer
    }

    #[test]
    fn snapshots_are_spaced_by_the_interval() {
        let mut schedule = SnapshotSchedule::new(1000);
        let taken: Vec<u64> = [0, 400, 999, 1000, 1500, 2100, 500]
            .into_iter()
            .filter(|ts| schedule.take(*ts))
            .collect();
        assert_eq!(taken, [0, 1000, 2100, 500]);

        // Two snapshots in one millisecond would share a key.
        let mut every = SnapshotSchedule::new(0);
        assert!(every.take(5) && !every.take(5) && every.take(6));
    }

    #[test]
    fn camera_ids_must_be_key_segments() {
        assert!(validate_camera_id("cam-1.north_gate").is_ok());
        for bad in ["", "..", "a/b", "a b", "caméra", "a\nb", &"x".repeat(129)] {
            assert!(validate_camera_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn same_object_within_a_window_is_one_event() {
        let stats = SinkStats::default();
        let mut extractor = extractor();
        let knife = [("knife", (10, 10, 20, 20))];

        let first = extractor.process(&frame_with(&knife, Some(5_100)), (64, 64), None, 0, &stats);
        let second = extractor.process(&frame_with(&knife, Some(5_900)), (64, 64), None, 0, &stats);
        let third = extractor.process(&frame_with(&knife, Some(6_000)), (64, 64), None, 0, &stats);

        assert_eq!(first.envelopes.len(), 1);
        assert_eq!(first.envelopes[0].payload.event_type, "weapon");
        assert!(second.envelopes.is_empty());
        assert_eq!(second.detections.len(), 1);
        assert_eq!(third.envelopes.len(), 1);
        assert_eq!(stats.suppressed.load(Ordering::Relaxed), 1);
        assert_eq!(stats.events.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn rejected_regions_do_not_spoil_the_others() {
        let stats = SinkStats::default();
        let regions = [
            ("face", (10, 10, 20, 20)),
            ("face", (100, 100, 5, 5)),
            ("", (1, 1, 1, 1)),
        ];
        let events = extractor().process(&frame_with(&regions, Some(1)), (64, 64), None, 0, &stats);

        assert_eq!(events.envelopes.len(), 1);
        assert_eq!(events.rejections.len(), 2);
        assert_eq!(stats.rejected("outside-frame"), 1);
        assert_eq!(stats.rejected("empty-label"), 1);
    }

    #[test]
    fn frame_without_metadata_is_nothing_to_do() {
        let stats = SinkStats::default();
        let events = extractor().process(&frame_with(&[], None), (64, 64), Some(0), 5, &stats);
        assert!(events.envelopes.is_empty() && events.rejections.is_empty());
        assert_eq!(stats.frames.load(Ordering::Relaxed), 1);
    }
}
