// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The local directory: envelopes appended to `events.jsonl`, one JSON object per line, and
//! snapshots stored under their key.
//!
//! A snapshot is written under a temporary name, synced and renamed, so a reader never sees a
//! partial JPEG; it is in place before the events that refer to it are appended.
//! A batch is written with a single append and synced once. A process killed in the middle of a
//! write can leave a torn last line; opening the file cuts that fragment off, so every line a
//! reader sees is whole.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::delivery::{DeliveryError, Destination, Event};

pub const EVENTS_FILE: &str = "events.jsonl";

/// How much of the file's end is searched for the last newline of a torn write.
const TAIL_SEARCH_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug)]
pub struct FileDestination {
    dir: PathBuf,
    events: File,
    /// Device and inode of the open `events.jsonl`, to notice when the path no longer leads
    /// to it.
    identity: (u64, u64),
}

fn identity(metadata: &fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

impl FileDestination {
    /// Creates the directory when needed and opens `events.jsonl` for appending. The error names
    /// the path that failed.
    pub fn open(dir: &Path) -> Result<Self, String> {
        fs::create_dir_all(dir)
            .map_err(|err| format!("cannot create directory '{}': {err}", dir.display()))?;

        let path = dir.join(EVENTS_FILE);
        let mut events = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|err| format!("cannot open '{}' for appending: {err}", path.display()))?;
        repair_torn_tail(&mut events)
            .map_err(|err| format!("cannot check the end of '{}': {err}", path.display()))?;
        let identity = events
            .metadata()
            .map(|metadata| identity(&metadata))
            .map_err(|err| format!("cannot read '{}': {err}", path.display()))?;

        Ok(FileDestination {
            dir: dir.to_path_buf(),
            events,
            identity,
        })
    }

    /// Opens the directory and `events.jsonl` again when the file was deleted, moved or
    /// replaced since it was opened: appending to a file nobody can reach any more would lose
    /// every event written to it without a word.
    fn reopen_if_gone(&mut self) -> std::io::Result<()> {
        let path = self.dir.join(EVENTS_FILE);
        let current = fs::metadata(&path).ok().map(|metadata| identity(&metadata));
        if current == Some(self.identity) {
            return Ok(());
        }
        gst::warning!(
            crate::CAT,
            "'{}' is no longer the file being written (deleted, moved or replaced): opening it again",
            path.display()
        );
        *self = FileDestination::open(&self.dir).map_err(std::io::Error::other)?;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `jpeg` at `key` below the directory, atomically.
    fn store_snapshot(&self, key: &str, jpeg: &[u8]) -> Result<(), String> {
        let path = self.snapshot_path(key)?;
        let describe = |err: std::io::Error| format!("cannot write '{}': {err}", path.display());
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(describe)?;
        }

        let temporary = path.with_extension("jpg.part");
        let mut file = File::create(&temporary).map_err(describe)?;
        file.write_all(jpeg)
            .and_then(|_| file.sync_data())
            .map_err(describe)?;
        fs::rename(&temporary, &path).map_err(describe)
    }

    /// The path of `key`, refused when it would leave the directory.
    fn snapshot_path(&self, key: &str) -> Result<PathBuf, String> {
        let relative = Path::new(key);
        let inside = relative
            .components()
            .all(|part| matches!(part, std::path::Component::Normal(_)));
        if !inside || key.is_empty() {
            return Err(format!(
                "snapshot key '{key}' would leave '{}'",
                self.dir.display()
            ));
        }
        Ok(self.dir.join(relative))
    }

    fn append(&mut self, batch: &[Arc<Event>]) -> std::io::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.reopen_if_gone()?;
        let mut lines = Vec::with_capacity(batch.iter().map(|e| e.json.len() + 1).sum());
        for event in batch {
            lines.extend_from_slice(event.json.as_bytes());
            lines.push(b'\n');
        }
        self.events.write_all(&lines)?;
        self.events.sync_data()
    }
}

/// Cuts a last line that has no newline, left by a write that was interrupted. Returns how many
/// bytes were cut.
fn repair_torn_tail(file: &mut File) -> std::io::Result<u64> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(0);
    }

    let start = len.saturating_sub(TAIL_SEARCH_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    if tail.last() == Some(&b'\n') {
        return Ok(0);
    }

    let keep = match tail.iter().rposition(|b| *b == b'\n') {
        Some(newline) => start + newline as u64 + 1,
        None => start,
    };
    file.set_len(keep)?;
    file.sync_data()?;
    Ok(len - keep)
}

impl Destination for FileDestination {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn deliver(&mut self, batch: &[Arc<Event>]) -> Vec<Result<(), DeliveryError>> {
        // Events of one frame share their snapshot: each key is written once.
        let mut stored: Vec<(&str, Result<(), String>)> = Vec::new();
        for snapshot in batch.iter().filter_map(|event| event.snapshot.as_deref()) {
            if stored.iter().all(|(key, _)| *key != snapshot.key) {
                let result = tokio::task::block_in_place(|| {
                    self.store_snapshot(&snapshot.key, &snapshot.jpeg)
                });
                stored.push((&snapshot.key, result));
            }
        }

        // An event whose snapshot could not be stored is not written: its line would point at
        // a file that is not there. It is dead-lettered, with the reason, instead.
        let snapshot_failure = |event: &Event| {
            let snapshot = event.snapshot.as_deref()?;
            match stored.iter().find(|(key, _)| *key == snapshot.key) {
                Some((_, Err(err))) => Some(err.clone()),
                _ => None,
            }
        };
        let failures: Vec<Option<String>> = batch.iter().map(|e| snapshot_failure(e)).collect();
        let writable: Vec<Arc<Event>> = batch
            .iter()
            .zip(&failures)
            .filter(|(_, failure)| failure.is_none())
            .map(|(event, _)| event.clone())
            .collect();

        let written = tokio::task::block_in_place(|| self.append(&writable));
        let result = written.map_err(|err| {
            DeliveryError::new(format!(
                "cannot append to '{}': {err}",
                self.dir.join(EVENTS_FILE).display()
            ))
        });
        failures
            .into_iter()
            .map(|failure| match failure {
                Some(err) => Err(DeliveryError::new(err)),
                None => result.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_last_line_is_cut_and_whole_lines_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(EVENTS_FILE);
        fs::write(&path, b"{\"a\":1}\n{\"b\":2}\n{\"c\":").unwrap();

        FileDestination::open(dir.path()).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{\"a\":1}\n{\"b\":2}\n");

        // A whole file is left as it is, and reopening appends.
        FileDestination::open(dir.path()).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{\"a\":1}\n{\"b\":2}\n");
    }

    #[test]
    fn snapshots_are_stored_under_their_key_and_never_outside() {
        let dir = tempfile::tempdir().unwrap();
        let destination = FileDestination::open(dir.path()).unwrap();
        destination
            .store_snapshot("snapshots/cam1/17.jpg", b"\xff\xd8jpeg")
            .unwrap();
        assert_eq!(
            fs::read(dir.path().join("snapshots/cam1/17.jpg")).unwrap(),
            b"\xff\xd8jpeg"
        );
        assert!(!dir.path().join("snapshots/cam1/17.jpg.part").exists());

        for bad in ["../x.jpg", "/etc/x.jpg", "a/../../x.jpg", ""] {
            let err = destination.store_snapshot(bad, b"x").unwrap_err();
            assert!(err.contains("would leave"), "{bad}: {err}");
        }
    }

    #[test]
    fn an_event_whose_snapshot_cannot_be_stored_is_not_written() {
        use crate::delivery::EncodedSnapshot;
        use crate::detection::Detection;
        use crate::envelope::{Envelope, SnapshotRef};

        let dir = tempfile::tempdir().unwrap();
        // A plain file where the snapshot directory should go.
        fs::write(dir.path().join("snapshots"), b"").unwrap();
        let mut destination = FileDestination::open(dir.path()).unwrap();

        let event = |label: &str, snapshot: bool| {
            let detection = Detection {
                label: label.into(),
                event_type: label.into(),
                conf: 1.0,
                bbox: [0, 0, 1, 1],
                extras: Default::default(),
            };
            let mut envelope = Envelope::new("cam", "p", 1000, 1000, detection);
            let snapshot = snapshot.then(|| {
                let key = "snapshots/cam/1000.jpg".to_string();
                envelope.snapshot = Some(SnapshotRef {
                    bucket: None,
                    key: key.clone(),
                    url: None,
                });
                Arc::new(EncodedSnapshot {
                    key,
                    jpeg: vec![0xff, 0xd8],
                    camera_id: "cam".into(),
                    ts_ms: 1000,
                    quality: 90,
                    frame_width: 2,
                    frame_height: 2,
                })
            });
            Arc::new(Event::new(envelope, snapshot))
        };
        let batch = [event("with", true), event("without", false)];
        let runtime = crate::runtime::runtime().unwrap();
        let results = runtime.block_on(async { destination.deliver(&batch).await });

        assert!(
            results[0]
                .as_ref()
                .unwrap_err()
                .message
                .contains("cannot write")
        );
        assert!(results[1].is_ok());
        let text = fs::read_to_string(dir.path().join(EVENTS_FILE)).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.contains("\"label\":\"without\""), "{text}");
    }

    #[test]
    fn a_deleted_directory_is_made_again_for_the_next_events() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut destination = FileDestination::open(&out).unwrap();
        let event = |label: &str| {
            let detection = crate::detection::Detection {
                label: label.into(),
                event_type: "weapon".into(),
                conf: 1.0,
                bbox: [0, 0, 1, 1],
                extras: Default::default(),
            };
            let envelope = crate::envelope::Envelope::new("cam", "p", 1000, 1000, detection);
            Arc::new(Event::new(envelope, None))
        };
        let runtime = crate::runtime::runtime().unwrap();

        let results = runtime.block_on(destination.deliver(&[event("first")]));
        assert!(results[0].is_ok());
        fs::remove_dir_all(&out).unwrap();
        let results = runtime.block_on(destination.deliver(&[event("second")]));
        assert!(results[0].is_ok());
        let text = fs::read_to_string(out.join(EVENTS_FILE)).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("\"label\":\"second\""), "{text}");

        // A file moved away is left alone, and a new one takes its place.
        fs::rename(out.join(EVENTS_FILE), dir.path().join("moved.jsonl")).unwrap();
        let results = runtime.block_on(destination.deliver(&[event("third")]));
        assert!(results[0].is_ok());
        let moved = fs::read_to_string(dir.path().join("moved.jsonl")).unwrap();
        assert_eq!(moved.lines().count(), 1);
        let text = fs::read_to_string(out.join(EVENTS_FILE)).unwrap();
        assert!(text.contains("\"label\":\"third\"") && text.lines().count() == 1);
    }

    #[test]
    fn unwritable_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("plain-file");
        fs::write(&blocker, b"x").unwrap();
        let err = FileDestination::open(&blocker.join("sub")).unwrap_err();
        assert!(err.contains("plain-file/sub"), "{err}");
    }
}
