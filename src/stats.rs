// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Counters shared by the streaming thread and the delivery workers, and their `stats` form.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::detection::{REJECTION_REASONS, Rejection};

/// What the streaming thread counts.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub frames: AtomicU64,
    pub detections: AtomicU64,
    pub events: AtomicU64,
    pub suppressed: AtomicU64,
    /// Frames whose events did not fit in `max-pending-bytes` (`when-full=drop-event`).
    pub events_dropped: AtomicU64,
    pub snapshots_encoded: AtomicU64,
    /// Not made: the encoder pool was saturated or the queue full.
    pub snapshots_dropped: AtomicU64,
    pub snapshots_failed: AtomicU64,
    rejected: [AtomicU64; REJECTION_REASONS.len()],
}

impl SinkStats {
    /// Zeroes every counter, for a new run of the element.
    pub fn reset(&self) {
        for counter in [
            &self.frames,
            &self.detections,
            &self.events,
            &self.suppressed,
        ]
        .into_iter()
        .chain(&self.rejected)
        {
            counter.store(0, Ordering::Relaxed);
        }
    }

    pub fn reject(&self, rejection: &Rejection) {
        self.rejected[rejection.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self, reason: &str) -> u64 {
        REJECTION_REASONS
            .iter()
            .position(|known| *known == reason)
            .map_or(0, |i| self.rejected[i].load(Ordering::Relaxed))
    }
}

/// What one destination counts. `accepted = delivered + dead_lettered + dropped + pending`.
#[derive(Debug, Default)]
pub struct DestinationStats {
    pub name: &'static str,
    pub accepted: AtomicU64,
    pub delivered: AtomicU64,
    /// Attempts that failed, one per event, whether retried later or not.
    pub failed: AtomicU64,
    /// Events sent again after a failed attempt, one per event and retry.
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub dropped: AtomicU64,
    pub batches: AtomicU64,
    pub bytes: AtomicU64,
}

impl DestinationStats {
    pub fn new(name: &'static str) -> Arc<Self> {
        Arc::new(DestinationStats {
            name,
            ..Default::default()
        })
    }

    pub fn pending(&self) -> u64 {
        let settled = self.delivered.load(Ordering::Relaxed)
            + self.dead_lettered.load(Ordering::Relaxed)
            + self.dropped.load(Ordering::Relaxed);
        self.accepted
            .load(Ordering::Relaxed)
            .saturating_sub(settled)
    }

    fn to_structure(&self) -> gst::Structure {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        gst::Structure::builder(self.name)
            .field("accepted", get(&self.accepted))
            .field("delivered", get(&self.delivered))
            .field("failed", get(&self.failed))
            .field("retried", get(&self.retried))
            .field("dead-lettered", get(&self.dead_lettered))
            .field("dropped", get(&self.dropped))
            .field("pending", self.pending())
            .field("batches", get(&self.batches))
            .field("bytes", get(&self.bytes))
            .build()
    }
}

/// The `stats` property and the `kvsinfer-stats` message body.
pub fn to_structure(sink: &SinkStats, destinations: &[Arc<DestinationStats>]) -> gst::Structure {
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);

    let mut rejected = gst::Structure::new_empty("rejected");
    let mut rejected_total = 0;
    for (reason, counter) in REJECTION_REASONS.iter().zip(&sink.rejected) {
        rejected.set(*reason, get(counter));
        rejected_total += get(counter);
    }

    let mut stats = gst::Structure::builder("kvsinfer-stats")
        .field("frames", get(&sink.frames))
        .field("detections", get(&sink.detections))
        .field("rejected", rejected_total)
        .field("rejected-by-reason", rejected)
        .field("events", get(&sink.events))
        .field("suppressed", get(&sink.suppressed))
        .field("events-dropped", get(&sink.events_dropped))
        .field("snapshots-encoded", get(&sink.snapshots_encoded))
        .field("snapshots-dropped", get(&sink.snapshots_dropped))
        .field("snapshots-failed", get(&sink.snapshots_failed))
        .build();
    for destination in destinations {
        stats.set(destination.name, destination.to_structure());
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_reports_every_counter() {
        gst::init().unwrap();
        let sink = SinkStats::default();
        sink.frames.fetch_add(3, Ordering::Relaxed);
        sink.reject(&Rejection::OutsideFrame);
        sink.reject(&Rejection::OutsideFrame);
        let file = DestinationStats::new("file");
        file.accepted.fetch_add(5, Ordering::Relaxed);
        file.delivered.fetch_add(2, Ordering::Relaxed);
        file.dead_lettered.fetch_add(1, Ordering::Relaxed);

        let s = to_structure(&sink, &[file]);
        assert_eq!(s.get::<u64>("frames").unwrap(), 3);
        assert_eq!(s.get::<u64>("rejected").unwrap(), 2);
        let by_reason = s.get::<gst::Structure>("rejected-by-reason").unwrap();
        assert_eq!(by_reason.get::<u64>("outside-frame").unwrap(), 2);
        let file = s.get::<gst::Structure>("file").unwrap();
        assert_eq!(file.get::<u64>("pending").unwrap(), 2);
    }
}
