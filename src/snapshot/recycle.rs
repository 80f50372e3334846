// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Frame-sized memory kept from one snapshot for the next.
//!
//! A fresh multi-megabyte allocation costs a page fault per 4 KiB the first time it is written:
//! at 1080p that is most of the time a plane copy takes, and on the streaming thread it is the
//! tail of render()'s latency. The copies a snapshot is made from are therefore taken from, and
//! given back to, a small list of spares.

use std::sync::{Mutex, MutexGuard};

/// Spare items of one kind, at most `capacity()`; when a new one does not fit, the oldest goes.
pub(crate) struct Recycler<T> {
    spare: Mutex<Vec<T>>,
    capacity: fn() -> usize,
}

impl<T> Recycler<T> {
    pub(crate) const fn new(capacity: fn() -> usize) -> Self {
        Recycler {
            spare: Mutex::new(Vec::new()),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<T>> {
        self.spare
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The most recently given spare that `fits`, if any.
    pub(crate) fn take(&self, fits: impl Fn(&T) -> bool) -> Option<T> {
        let mut spare = self.lock();
        let index = spare.iter().rposition(fits)?;
        Some(spare.remove(index))
    }

    /// Keeps `item` for a later [`Recycler::take`].
    pub(crate) fn give(&self, item: T) {
        let capacity = (self.capacity)();
        if capacity == 0 {
            return;
        }
        let mut spare = self.lock();
        if spare.len() >= capacity {
            // The oldest is the likeliest to be of a shape no longer in use; it is freed
            // outside the lock.
            let oldest = spare.remove(0);
            spare.push(item);
            drop(spare);
            drop(oldest);
            return;
        }
        spare.push(item);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Room for what can be in flight at once: one copy per job the encoder pool holds. More spares
/// of a shape than that are never taken again.
pub(crate) fn spare_copies() -> usize {
    super::pool::global_capacity()
}

/// The raw copies of frames that are converted on an encoder thread.
static RAW_COPIES: Recycler<Vec<u8>> = Recycler::new(spare_copies);

/// Bytes for a raw frame copy, given back to the spares when the buffer around them is freed.
pub(crate) struct RecycledBytes(Vec<u8>);

impl RecycledBytes {
    /// `len` bytes whose content is left over from an earlier frame: the caller overwrites them.
    pub(crate) fn with_len(len: usize) -> Self {
        let bytes = RAW_COPIES
            .take(|bytes| bytes.len() == len)
            .unwrap_or_else(|| vec![0; len]);
        RecycledBytes(bytes)
    }
}

impl AsRef<[u8]> for RecycledBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl AsMut<[u8]> for RecycledBytes {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Drop for RecycledBytes {
    fn drop(&mut self) {
        RAW_COPIES.give(std::mem::take(&mut self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_only_what_fits_newest_first() {
        let recycler = Recycler::new(|| 3);
        assert_eq!(recycler.take(|_: &u32| true), None);
        for item in [1, 2, 3] {
            recycler.give(item);
        }
        assert_eq!(recycler.take(|item| *item < 3), Some(2));
        assert_eq!(recycler.take(|item| *item > 5), None);
        assert_eq!(recycler.len(), 2);
    }

    #[test]
    fn a_full_recycler_lets_the_oldest_go() {
        let recycler = Recycler::new(|| 2);
        for item in [1, 2, 3] {
            recycler.give(item);
        }
        assert_eq!(recycler.len(), 2);
        assert_eq!(recycler.take(|item| *item == 1), None);
        assert_eq!(recycler.take(|_| true), Some(3));

        let nothing_kept = Recycler::new(|| 0);
        nothing_kept.give(1);
        assert_eq!(nothing_kept.len(), 0);
    }

    #[test]
    fn raw_copies_go_back_to_the_spares_when_freed() {
        // A length no other test uses, so that other tests' copies do not interfere.
        let len = 12_345;
        let mut bytes = RecycledBytes::with_len(len);
        bytes.as_mut()[0] = 7;
        let address = bytes.as_ref().as_ptr();
        drop(bytes);
        let again = RecycledBytes::with_len(len);
        assert_eq!(again.as_ref().as_ptr(), address);
        assert_eq!(again.as_ref().len(), len);
    }
}
