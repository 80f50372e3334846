// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Keeps a repeated warning from flooding the bus: the first one goes out, then at most one per
//! interval per kind, saying how many were held back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Shortest time between two bus warnings of the same kind.
pub const WARNING_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct RateLimiter {
    kinds: HashMap<String, (Instant, u64)>,
}

impl RateLimiter {
    /// `Some(held_back)` when a warning of `kind` may go out now, with how many were held back
    /// since the last one; `None` when it must be held back.
    pub fn allow(&mut self, kind: &str, now: Instant) -> Option<u64> {
        match self.kinds.get_mut(kind) {
            None => {
                self.kinds.insert(kind.to_string(), (now, 0));
                Some(0)
            }
            Some((last, held)) if now.duration_since(*last) >= WARNING_INTERVAL => {
                let held_back = std::mem::take(held);
                *last = now;
                Some(held_back)
            }
            Some((_, held)) => {
                *held += 1;
                None
            }
        }
    }
}

impl RateLimiter {
    /// The kinds with warnings held back since their last one, and how many; forgets them, so
    /// that a run's end can say what the interval kept quiet.
    pub fn take_held_back(&mut self) -> Vec<(String, u64)> {
        let mut held: Vec<(String, u64)> = self
            .kinds
            .iter_mut()
            .filter(|(_, (_, held))| *held > 0)
            .map(|(kind, (_, held))| (kind.clone(), std::mem::take(held)))
            .collect();
        held.sort();
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_goes_out_then_one_per_interval() {
        let mut limiter = RateLimiter::default();
        let t0 = Instant::now();
        assert_eq!(limiter.allow("a", t0), Some(0));
        assert_eq!(limiter.allow("a", t0 + Duration::from_secs(1)), None);
        assert_eq!(limiter.allow("b", t0 + Duration::from_secs(1)), Some(0));
        assert_eq!(limiter.allow("a", t0 + Duration::from_secs(2)), None);
        assert_eq!(limiter.take_held_back(), [("a".to_string(), 2)]);
        assert_eq!(limiter.allow("a", t0 + WARNING_INTERVAL), Some(0));
        assert!(limiter.take_held_back().is_empty());
    }
}
