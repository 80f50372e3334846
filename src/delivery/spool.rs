// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The spool: a write-ahead store of accepted events and their snapshots, kept until every
//! destination has acknowledged them, and replayed after a restart.
//!
//! Persistence is fjall's (an embedded LSM store with a journal). An append reaches the kernel
//! before it returns (`PersistMode::Buffer`), so a killed process loses nothing; the disk syncs
//! that survive a power cut are grouped by [`Spool::sync`], called from a background task, so a
//! burst of events costs a few syncs and the streaming thread never waits for one. fjall's journal
//! recovery skips a torn last write.
//!
//! Each record carries a mask of the destinations that still owe an acknowledgement, so that an
//! event is never resent to a destination that already has it.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use serde::{Deserialize, Serialize};

use super::EncodedSnapshot;
use crate::envelope::{Envelope, SnapshotRef};

/// The bit of each destination in a record's pending mask. Fixed, so that a spool written by one
/// configuration is understood by the next.
pub fn destination_bit(name: &str) -> u8 {
    match name {
        "file" => 1,
        "kinesis" => 2,
        "s3" => 4,
        "dynamodb" => 8,
        _ => 16,
    }
}

/// An event found in the spool at start, to be delivered again.
#[derive(Debug, Clone, PartialEq)]
pub struct SpooledEvent {
    pub seq: u64,
    /// The destinations that had not acknowledged it.
    pub pending: u8,
    pub envelope: Envelope,
    pub snapshot: Option<EncodedSnapshot>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SnapshotHeader {
    camera_id: String,
    ts_ms: u64,
    quality: u8,
    frame_width: u32,
    frame_height: u32,
}

#[derive(Debug, Default)]
struct Pending {
    /// seq -> (destinations still owing an ack, snapshot key, record bytes)
    events: HashMap<u64, (u8, Option<String>, u64)>,
    /// snapshot key -> (events referring to it, bytes)
    snapshots: HashMap<String, (usize, u64)>,
    bytes: u64,
}

pub struct Spool {
    dir: PathBuf,
    db: Database,
    events: Keyspace,
    snapshots: Keyspace,
    next_seq: AtomicU64,
    pending: Mutex<Pending>,
    max_bytes: u64,
    /// Written since the last disk sync.
    dirty: AtomicBool,
    waiting_for_absent: AtomicU64,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

fn fail(what: &str, dir: &Path) -> impl Fn(fjall::Error) -> String {
    let dir = dir.display().to_string();
    let what = what.to_string();
    move |err| format!("spool '{dir}': cannot {what}: {err}")
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, returning what earlier runs left undelivered to the
    /// destinations of this run (`configured`, a mask), in acceptance order. Records owed to
    /// other destinations stay in the spool for a run that has them.
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        configured: u8,
    ) -> Result<(Self, Vec<SpooledEvent>), String> {
        std::fs::create_dir_all(dir)
            .map_err(|err| format!("spool '{}': cannot create it: {err}", dir.display()))?;
        let db = Database::builder(dir).open().map_err(fail("open", dir))?;
        let events = db
            .keyspace("events", KeyspaceCreateOptions::default)
            .map_err(fail("open its events", dir))?;
        let snapshots = db
            .keyspace("snapshots", KeyspaceCreateOptions::default)
            .map_err(fail("open its snapshots", dir))?;

        let spool = Spool {
            dir: dir.to_path_buf(),
            db,
            events,
            snapshots,
            next_seq: AtomicU64::new(0),
            pending: Mutex::default(),
            max_bytes,
            dirty: AtomicBool::new(false),
            waiting_for_absent: AtomicU64::new(0),
        };
        let left = spool.recover(configured, dir)?;
        Ok((spool, left))
    }

    fn recover(&self, configured: u8, dir: &Path) -> Result<Vec<SpooledEvent>, String> {
        let mut found = Vec::new();
        let mut stale = Vec::new();
        let mut next_seq = 0;

        for guard in self.events.iter() {
            let (key, value) = guard.into_inner().map_err(fail("read an event", dir))?;
            let Some(seq) = key.as_ref().try_into().ok().map(u64::from_be_bytes) else {
                stale.push(key.to_vec());
                continue;
            };
            next_seq = next_seq.max(seq + 1);

            // A record that does not decode is skipped, never fatal: the spool must always open.
            let Some((mask, envelope)) = decode_event(&value) else {
                stale.push(key.to_vec());
                continue;
            };
            found.push(SpooledEvent {
                seq,
                pending: mask,
                envelope,
                snapshot: None,
            });
        }
        for key in stale {
            self.events
                .remove(key)
                .map_err(fail("drop a stale event", dir))?;
        }

        // Every record is remembered with all it is owed, the destinations of this run or not:
        // one owed to a destination this run lacks stays for a run that has it.
        let mut left = Vec::new();
        for mut event in found {
            let key = event.envelope.snapshot.as_ref().map(|s| s.key.clone());
            if let Some(key) = &key {
                event.snapshot = self
                    .snapshots
                    .get(key)
                    .map_err(fail("read a snapshot", dir))?
                    .and_then(|bytes| decode_snapshot(key, &bytes));
            }
            let size = event.envelope.to_json().len() as u64 + 1;
            let mut pending = self.lock();
            pending
                .events
                .insert(event.seq, (event.pending, key.clone(), size));
            pending.bytes += size;
            if let (Some(key), Some(snapshot)) = (key, &event.snapshot) {
                let entry = pending
                    .snapshots
                    .entry(key)
                    .or_insert((0, snapshot.jpeg.len() as u64));
                entry.0 += 1;
            }
            drop(pending);

            event.pending &= configured;
            match event.pending {
                0 => self.waiting_for_absent.fetch_add(1, Ordering::Relaxed),
                _ => {
                    left.push(event);
                    0
                }
            };
        }
        let snapshot_bytes: u64 = self.lock().snapshots.values().map(|(_, b)| b).sum();
        self.lock().bytes += snapshot_bytes;

        self.next_seq.store(next_seq, Ordering::Relaxed);
        Ok(left)
    }

    /// Events found at start that are owed only to destinations this run does not have: kept
    /// in the spool for a run that has them.
    pub fn waiting_for_absent_destinations(&self) -> u64 {
        self.waiting_for_absent.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes the spool holds, by its own count.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// Events the spool holds.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores accepted envelopes owed to the destinations in `mask`; returns their sequence
    /// numbers. When done, the records are in the kernel's hands: a process kill cannot lose
    /// them. Fails when the spool would grow past its limit or the store fails.
    pub fn append(&self, envelopes: &[Envelope], mask: u8) -> Result<Vec<u64>, String> {
        let records: Vec<(u64, Vec<u8>)> = envelopes
            .iter()
            .map(|envelope| {
                let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
                let mut record = vec![mask];
                record.extend_from_slice(envelope.to_json().as_bytes());
                (seq, record)
            })
            .collect();
        let size: u64 = records.iter().map(|(_, r)| r.len() as u64).sum();
        if self.bytes() + size > self.max_bytes {
            return Err(format!(
                "the spool holds {} bytes, spool-max-bytes is {}",
                self.bytes(),
                self.max_bytes
            ));
        }

        let mut batch = self.db.batch();
        for (seq, record) in &records {
            batch.insert(&self.events, seq.to_be_bytes(), record.as_slice());
        }
        self.commit_to_kernel(batch)?;

        let mut pending = self.lock();
        for ((seq, record), envelope) in records.iter().zip(envelopes) {
            let key = envelope.snapshot.as_ref().map(|s| s.key.clone());
            pending
                .events
                .insert(*seq, (mask, key, record.len() as u64));
        }
        pending.bytes += size;
        Ok(records.into_iter().map(|(seq, _)| seq).collect())
    }

    /// Stores a snapshot and points the events `seqs` at it, as `snapshot_ref` says.
    pub fn put_snapshot(
        &self,
        snapshot: &EncodedSnapshot,
        snapshot_ref: &SnapshotRef,
        seqs: &[u64],
    ) -> Result<(), String> {
        let header = SnapshotHeader {
            camera_id: snapshot.camera_id.clone(),
            ts_ms: snapshot.ts_ms,
            quality: snapshot.quality,
            frame_width: snapshot.frame_width,
            frame_height: snapshot.frame_height,
        };
        let header = serde_json::to_vec(&header).unwrap_or_default();
        let mut value = Vec::with_capacity(4 + header.len() + snapshot.jpeg.len());
        value.extend_from_slice(&(header.len() as u32).to_le_bytes());
        value.extend_from_slice(&header);
        value.extend_from_slice(&snapshot.jpeg);

        let mut batch = self.db.batch();
        batch.insert(&self.snapshots, snapshot.key.as_bytes(), value.as_slice());
        // The event records learn their snapshot so that a replay finds it.
        let mut pending = self.lock();
        for seq in seqs {
            let Some(record) = self.events.get(seq.to_be_bytes()).ok().flatten() else {
                continue;
            };
            let Some((mask, mut envelope)) = decode_event(&record) else {
                continue;
            };
            envelope.snapshot = Some(snapshot_ref.clone());
            let mut updated = vec![mask];
            updated.extend_from_slice(envelope.to_json().as_bytes());
            batch.insert(&self.events, seq.to_be_bytes(), updated);
            if let Some(entry) = pending.events.get_mut(seq) {
                entry.1 = Some(snapshot.key.clone());
            }
        }
        let entry = pending
            .snapshots
            .entry(snapshot.key.clone())
            .or_insert((0, value.len() as u64));
        entry.0 += seqs.len();
        pending.bytes += value.len() as u64;
        drop(pending);

        self.commit_to_kernel(batch)
    }

    /// Commits `batch` and hands it to the kernel, so that a killed process cannot lose it; the
    /// disk sync is left to [`Spool::sync`].
    fn commit_to_kernel(&self, batch: fjall::OwnedWriteBatch) -> Result<(), String> {
        let failed = |err: fjall::Error| format!("spool write failed: {err}");
        batch.commit().map_err(failed)?;
        self.db.persist(PersistMode::Buffer).map_err(failed)?;
        self.dirty.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Records that destination `bit` is done with event `seq` (delivered or dead-lettered);
    /// the event leaves the spool when no destination owes it anything.
    pub fn ack(&self, seq: u64, bit: u8) -> Result<(), String> {
        let mut pending = self.lock();
        let Some(entry) = pending.events.get_mut(&seq) else {
            return Ok(());
        };
        entry.0 &= !bit;
        if entry.0 != 0 {
            let mask = entry.0;
            drop(pending);
            return self.rewrite_mask(seq, mask);
        }

        let Some((_, snapshot_key, size)) = pending.events.remove(&seq) else {
            return Ok(());
        };
        pending.bytes = pending.bytes.saturating_sub(size);
        let mut drop_snapshot = None;
        if let Some(key) = snapshot_key
            && let Some((refs, bytes)) = pending.snapshots.get_mut(&key)
        {
            *refs = refs.saturating_sub(1);
            if *refs == 0 {
                let bytes = *bytes;
                pending.snapshots.remove(&key);
                pending.bytes = pending.bytes.saturating_sub(bytes);
                drop_snapshot = Some(key);
            }
        }
        drop(pending);

        let mut batch = self.db.batch();
        batch.remove(&self.events, seq.to_be_bytes());
        if let Some(key) = drop_snapshot {
            batch.remove(&self.snapshots, key.as_bytes());
        }
        batch
            .commit()
            .map_err(|err| format!("spool write failed: {err}"))?;
        self.dirty.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn rewrite_mask(&self, seq: u64, mask: u8) -> Result<(), String> {
        let Some(record) = self
            .events
            .get(seq.to_be_bytes())
            .map_err(|err| format!("spool read failed: {err}"))?
        else {
            return Ok(());
        };
        let mut updated = record.to_vec();
        if let Some(first) = updated.first_mut() {
            *first = mask;
        }
        self.events
            .insert(seq.to_be_bytes(), updated)
            .map_err(|err| format!("spool write failed: {err}"))?;
        self.dirty.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Syncs to disk what was written since the last sync, if anything. Returns whether it synced.
    pub fn sync(&self) -> Result<bool, String> {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(false);
        }
        // fjall's own `persist(SyncData)` holds its journal writer lock through the fdatasync,
        // so an append from render() would wait for the disk. fdatasync through a handle of our
        // own flushes the same file without that lock; fjall itself syncs journals it rotates
        // out, and their directory.
        let journals = journal_files(&self.dir);
        if journals.is_empty() {
            self.db
                .persist(PersistMode::SyncData)
                .map_err(|err| format!("spool sync failed: {err}"))?;
        }
        for journal in journals {
            match File::open(&journal).and_then(|file| file.sync_data()) {
                Ok(()) => (),
                // Rotated out and removed since it was listed: fjall synced it first.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => (),
                Err(err) => {
                    return Err(format!(
                        "spool sync of '{}' failed: {err}",
                        journal.display()
                    ));
                }
            }
        }
        Ok(true)
    }
}

/// fjall's journal files (`*.jnl`) below `dir`.
fn journal_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for path in entries.flatten().map(|entry| entry.path()) {
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "jnl") {
                found.push(path);
            }
        }
    }
    found
}

fn decode_event(record: &[u8]) -> Option<(u8, Envelope)> {
    let (mask, json) = record.split_first()?;
    let envelope = serde_json::from_slice(json).ok()?;
    Some((*mask, envelope))
}

fn decode_snapshot(key: &str, bytes: &[u8]) -> Option<EncodedSnapshot> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let header: SnapshotHeader = serde_json::from_slice(bytes.get(4..4 + len)?).ok()?;
    Some(EncodedSnapshot {
        key: key.to_string(),
        jpeg: bytes.get(4 + len..)?.to_vec(),
        camera_id: header.camera_id,
        ts_ms: header.ts_ms,
        quality: header.quality,
        frame_width: header.frame_width,
        frame_height: header.frame_height,
    })
}

/// Keeps the disk synced behind the writers: at most one sync per `interval`, none when idle.
pub async fn sync_periodically(spool: Arc<Spool>, interval: std::time::Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let spool = spool.clone();
        // fdatasync blocks; it runs where blocking is allowed.
        let _ = tokio::task::spawn_blocking(move || spool.sync()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::Detection;

    fn envelope(label: &str, ts_ms: u64) -> Envelope {
        let detection = Detection {
            label: label.into(),
            event_type: label.into(),
            conf: 0.5,
            bbox: [1, 2, 3, 4],
            extras: Default::default(),
        };
        Envelope::new("cam", "p", ts_ms, 1000, detection)
    }

    fn snapshot(key: &str) -> EncodedSnapshot {
        EncodedSnapshot {
            key: key.into(),
            jpeg: vec![0xff, 0xd8, 1, 2, 3],
            camera_id: "cam".into(),
            ts_ms: 7,
            quality: 90,
            frame_width: 640,
            frame_height: 480,
        }
    }

    fn key_only(key: &str) -> SnapshotRef {
        SnapshotRef {
            bucket: None,
            key: key.into(),
            url: None,
        }
    }

    const ALL: u8 = 1 | 2;

    #[test]
    fn unacknowledged_events_come_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (spool, left) = Spool::open(dir.path(), u64::MAX, ALL).unwrap();
            assert!(left.is_empty());
            let seqs = spool
                .append(
                    &[
                        envelope("a", 1000),
                        envelope("b", 2000),
                        envelope("c", 3000),
                    ],
                    ALL,
                )
                .unwrap();
            spool
                .put_snapshot(
                    &snapshot("snapshots/cam/2000.jpg"),
                    &key_only("snapshots/cam/2000.jpg"),
                    &seqs[1..2],
                )
                .unwrap();
            spool.ack(seqs[0], 1).unwrap();
            spool.ack(seqs[0], 2).unwrap();
            spool.ack(seqs[1], 2).unwrap();
            // A killed process is the integration tests' business (SIGKILL of a real process);
            // here the spool is simply closed.
            drop(spool);
        }

        let (spool, left) = Spool::open(dir.path(), u64::MAX, ALL).unwrap();
        let summary: Vec<(&str, u8, bool)> = left
            .iter()
            .map(|e| {
                (
                    e.envelope.payload.label.as_str(),
                    e.pending,
                    e.snapshot.is_some(),
                )
            })
            .collect();
        assert_eq!(summary, [("b", 1, true), ("c", ALL, false)]);
        assert_eq!(
            left[0].snapshot.as_ref().unwrap(),
            &snapshot("snapshots/cam/2000.jpg")
        );

        // New events never reuse a sequence number of the old ones.
        let seqs = spool.append(&[envelope("d", 4000)], ALL).unwrap();
        assert!(seqs[0] > left[1].seq);
    }

    #[test]
    fn fully_acknowledged_events_and_their_snapshot_leave() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(dir.path(), u64::MAX, ALL).unwrap();
        let seqs = spool
            .append(&[envelope("a", 1000), envelope("b", 1000)], 1)
            .unwrap();
        spool
            .put_snapshot(&snapshot("k.jpg"), &key_only("k.jpg"), &seqs)
            .unwrap();
        assert!(spool.bytes() > 0);

        spool.ack(seqs[0], 1).unwrap();
        assert!(
            spool.snapshots.get("k.jpg").unwrap().is_some(),
            "still used by b"
        );
        spool.ack(seqs[1], 1).unwrap();
        assert!(spool.snapshots.get("k.jpg").unwrap().is_none());
        assert!(spool.is_empty());
        assert_eq!(spool.bytes(), 0);
        assert!(spool.sync().unwrap());
        assert!(
            !spool.sync().unwrap(),
            "nothing written since the last sync"
        );
    }

    #[test]
    fn a_full_spool_refuses_new_events() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(dir.path(), 300, ALL).unwrap();
        assert!(spool.append(&[envelope("a", 1)], ALL).is_ok());
        let err = spool
            .append(&[envelope("b", 2), envelope("c", 3)], ALL)
            .unwrap_err();
        assert!(err.contains("spool-max-bytes is 300"), "{err}");
    }

    #[test]
    fn events_owed_to_absent_destinations_wait_for_a_run_that_has_them() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (spool, _) = Spool::open(dir.path(), u64::MAX, ALL).unwrap();
            spool.append(&[envelope("a", 1)], 2).unwrap();
            spool.append(&[envelope("b", 2)], ALL).unwrap();
        }
        {
            // A run with destination 1 only: "b" goes to it, "a" waits for destination 2.
            let (spool, left) = Spool::open(dir.path(), u64::MAX, 1).unwrap();
            let labels: Vec<&str> = left
                .iter()
                .map(|e| e.envelope.payload.label.as_str())
                .collect();
            assert_eq!(labels, ["b"]);
            assert_eq!(left[0].pending, 1);
            assert_eq!(spool.waiting_for_absent_destinations(), 1);
            spool.ack(left[0].seq, 1).unwrap();
        }
        // Destination 2 is back: both are owed to it still, and nothing to destination 1.
        let (spool, left) = Spool::open(dir.path(), u64::MAX, ALL).unwrap();
        let summary: Vec<(&str, u8)> = left
            .iter()
            .map(|e| (e.envelope.payload.label.as_str(), e.pending))
            .collect();
        assert_eq!(summary, [("a", 2), ("b", 2)]);
        assert_eq!(spool.waiting_for_absent_destinations(), 0);
    }

    #[test]
    fn a_torn_journal_tail_is_skipped_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (spool, _) = Spool::open(dir.path(), u64::MAX, ALL).unwrap();
            spool.append(&[envelope("a", 1)], ALL).unwrap();
            spool.sync().unwrap();
        }
        // Half a record at the end of every journal file, as a write cut short would leave.
        let journals = journal_files(dir.path());
        assert!(
            !journals.is_empty(),
            "fjall keeps its journal in *.jnl files"
        );
        for entry in journals {
            {
                use std::io::Write;
                let mut file = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&entry)
                    .unwrap();
                file.write_all(&[0x42, 0x13, 0x37, 0x00, 0xff]).unwrap();
            }
        }
        let (_, left) = Spool::open(dir.path(), u64::MAX, ALL).unwrap();
        assert_eq!(left.len(), 1);
    }
}
