// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The byte budget of what is accepted but not yet delivered (`max-pending-bytes`), and what
//! happens when it is spent (`when-full`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use gst::glib;

/// What `render()` does when accepting a frame would pass `max-pending-bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstKvsInferWhenFull")]
pub enum WhenFull {
    #[enum_value(
        name = "Drop the snapshot, keep the events (dropped when even they do not fit)",
        nick = "drop-snapshot"
    )]
    DropSnapshot,
    #[enum_value(name = "Block the pipeline until there is room", nick = "block")]
    Block,
    #[enum_value(name = "Drop the frame's events and snapshot", nick = "drop-event")]
    DropEvent,
}

/// Under `drop-snapshot`, one part in this many of the budget is for events only.
const SNAPSHOT_RESERVE_DIVISOR: usize = 8;

#[derive(Debug)]
pub struct Budget {
    max: usize,
    used: Mutex<usize>,
    freed: Condvar,
    /// Set while the element is flushing or stopping: a blocked `render()` must return.
    unblocked: AtomicBool,
}

/// Bytes taken from a [`Budget`], given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    bytes: Mutex<usize>,
}

impl Reservation {
    /// Gives back what exceeds `bytes`, as when an encoded JPEG replaces the raw frame.
    pub fn shrink_to(&self, bytes: usize) {
        let mut held = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        if bytes < *held {
            self.budget.release(*held - bytes);
            *held = bytes;
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let held = *self.bytes.get_mut().unwrap_or_else(|e| e.into_inner());
        self.budget.release(held);
    }
}

/// What a frame got from the budget.
#[derive(Debug)]
pub enum Admission {
    /// The events fit; the snapshot too when it has a reservation.
    Admitted {
        events: Reservation,
        snapshot: Option<Reservation>,
    },
    /// Nothing fits: the frame's events are dropped.
    Refused,
    /// The element is flushing: `render()` returns at once.
    Flushing,
}

impl Budget {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Budget {
            max,
            used: Mutex::new(0),
            freed: Condvar::new(),
            unblocked: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn used(&self) -> usize {
        *self.lock()
    }

    fn release(&self, bytes: usize) {
        let mut used = self.lock();
        *used = used.saturating_sub(bytes);
        self.freed.notify_all();
    }

    /// Wakes every blocked admission and makes new ones return [`Admission::Flushing`], until
    /// [`Budget::resume`].
    pub fn unblock(&self) {
        self.unblocked.store(true, Ordering::SeqCst);
        let _used = self.lock();
        self.freed.notify_all();
    }

    pub fn resume(&self) {
        self.unblocked.store(false, Ordering::SeqCst);
    }

    fn take(self: &Arc<Self>, used: &mut usize, bytes: usize) -> Reservation {
        *used += bytes;
        Reservation {
            budget: self.clone(),
            bytes: Mutex::new(bytes),
        }
    }

    /// Reserves room for a frame's events (`event_bytes`) and, if one is wanted, its snapshot
    /// (`snapshot_bytes`), as `policy` says.
    pub fn admit(
        self: &Arc<Self>,
        event_bytes: usize,
        snapshot_bytes: Option<usize>,
        policy: WhenFull,
    ) -> Admission {
        let wanted = event_bytes + snapshot_bytes.unwrap_or(0);
        let mut used = self.lock();

        if policy == WhenFull::Block {
            // A frame larger than the whole budget could never fit: it waits for an empty queue.
            while *used > 0 && *used + wanted > self.max {
                if self.unblocked.load(Ordering::SeqCst) {
                    return Admission::Flushing;
                }
                used = match self.freed.wait_timeout(used, Duration::from_millis(100)) {
                    Ok((used, _)) => used,
                    Err(poisoned) => poisoned.into_inner().0,
                };
            }
        }

        // Under drop-snapshot, snapshots may fill only part of the budget: the rest is kept for
        // events, so that a burst of snapshots never crowds out the events they illustrate.
        let snapshot_room = match policy {
            WhenFull::DropSnapshot => self.max - self.max / SNAPSHOT_RESERVE_DIVISOR,
            _ => self.max,
        };
        if *used + wanted <= snapshot_room || policy == WhenFull::Block {
            let events = self.take(&mut used, event_bytes);
            let snapshot = snapshot_bytes.map(|bytes| self.take(&mut used, bytes));
            return Admission::Admitted { events, snapshot };
        }
        if policy == WhenFull::DropSnapshot && *used + event_bytes <= self.max {
            let events = self.take(&mut used, event_bytes);
            return Admission::Admitted {
                events,
                snapshot: None,
            };
        }
        Admission::Refused
    }
}

/// What a pending event weighs in memory, apart from its strings: the envelope and its
/// allocations, the JSON's fixed part, the event around them and its place in each queue.
/// A minimal event was measured at 1,128 bytes in all (100,000 of them, resident memory).
const FIXED_EVENT_BYTES: usize = 1152;

/// What an encoded snapshot weighs beyond its JPEG bytes: its key, names and bookkeeping.
pub const FIXED_SNAPSHOT_BYTES: usize = 256;

/// What an envelope weighs in the budget while it is pending, without serializing it on the
/// streaming thread: the fixed part, plus its variable strings twice (they are in the envelope
/// and in its JSON).
pub fn envelope_cost(envelope: &crate::envelope::Envelope) -> usize {
    let payload = &envelope.payload;
    let extras: usize = payload
        .extras
        .iter()
        .map(|(name, value)| name.len() + value.to_string().len() + 4)
        .sum();
    let strings = envelope.camera_id.len()
        + envelope.producer.len()
        + payload.label.len()
        + payload.event_type.len()
        + extras;
    FIXED_EVENT_BYTES + 2 * strings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(admission: &Admission) -> (bool, bool) {
        match admission {
            Admission::Admitted { snapshot, .. } => (true, snapshot.is_some()),
            _ => (false, false),
        }
    }

    #[test]
    fn drop_snapshot_keeps_events_while_they_fit() {
        let budget = Budget::new(1000);
        let first = budget.admit(100, Some(700), WhenFull::DropSnapshot);
        assert_eq!(admitted(&first), (true, true));
        // 875 of the 1000 bytes are open to snapshots: 800 + 50 + 100 would pass it.
        let second = budget.admit(50, Some(100), WhenFull::DropSnapshot);
        assert_eq!(admitted(&second), (true, false));
        // Events still have the last 125 bytes.
        let third = budget.admit(100, None, WhenFull::DropSnapshot);
        assert_eq!(admitted(&third), (true, false));
        assert!(matches!(
            budget.admit(51, None, WhenFull::DropSnapshot),
            Admission::Refused
        ));
        assert_eq!(budget.used(), 950);

        drop(first);
        assert_eq!(budget.used(), 150);
        drop((second, third));
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn drop_event_refuses_the_whole_frame() {
        let budget = Budget::new(1000);
        let _held = budget.admit(600, None, WhenFull::DropEvent);
        assert!(matches!(
            budget.admit(100, Some(400), WhenFull::DropEvent),
            Admission::Refused
        ));
        assert_eq!(
            admitted(&budget.admit(100, Some(300), WhenFull::DropEvent)),
            (true, true)
        );
    }

    #[test]
    fn shrinking_gives_bytes_back() {
        let budget = Budget::new(1000);
        let Admission::Admitted {
            snapshot: Some(snapshot),
            events: _events,
        } = budget.admit(10, Some(900), WhenFull::DropEvent)
        else {
            panic!("admitted");
        };
        snapshot.shrink_to(90);
        assert_eq!(budget.used(), 100);
    }

    #[test]
    fn block_waits_for_room_and_flushing_ends_the_wait() {
        let budget = Budget::new(100);
        let held = budget.admit(90, None, WhenFull::Block);

        let waiter = {
            let budget = budget.clone();
            std::thread::spawn(move || admitted(&budget.admit(50, None, WhenFull::Block)).0)
        };
        std::thread::sleep(Duration::from_millis(50));
        drop(held);
        assert!(waiter.join().unwrap(), "admitted once room was freed");

        let _full = budget.admit(100, None, WhenFull::Block);
        let waiter = {
            let budget = budget.clone();
            std::thread::spawn(move || budget.admit(50, None, WhenFull::Block))
        };
        std::thread::sleep(Duration::from_millis(50));
        budget.unblock();
        assert!(matches!(waiter.join().unwrap(), Admission::Flushing));
    }
}
