// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! From accepted envelopes to every destination, off the streaming thread.
//!
//! `render()` admits a frame against the byte budget ([`budget`]), optionally writes its events
//! to the spool ([`spool`]), and hands a [`Job`] to [`Dispatcher::submit`], which never waits.
//! One dispatch task per sink waits for the frame's snapshot, serializes each envelope once and
//! fans it out to one task per destination, so a slow destination holds back only itself.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::envelope::{Envelope, SnapshotRef};
use crate::stats::{DestinationStats, SinkStats};

pub mod budget;
pub mod spool;

use budget::Reservation;
use spool::{Spool, SpooledEvent, destination_bit};

/// The file, in `output-dir` or `spool-dir`, where given-up events are written with the reason.
pub const DEAD_LETTERS_FILE: &str = "dead-letters.jsonl";

/// How often the spool's writes are synced to disk, at most: a burst shares one sync.
const SPOOL_SYNC_INTERVAL: Duration = Duration::from_millis(50);

/// One accepted event on its way to the destinations.
#[derive(Debug)]
pub struct Event {
    pub envelope: Envelope,
    /// The envelope's JSON, serialized once for every destination.
    pub json: String,
    /// The frame's annotated JPEG, shared by every event of the frame.
    pub snapshot: Option<Arc<EncodedSnapshot>>,
    /// Its record in the spool, when there is one.
    spool_seq: Option<u64>,
    remaining: AtomicUsize,
    dead_lettered: AtomicBool,
    /// Budget held until every destination is done with the event.
    _held: Vec<Arc<Reservation>>,
}

impl Event {
    /// An event outside any dispatcher, to drive a destination directly (tests, benchmarks).
    pub fn new(envelope: Envelope, snapshot: Option<Arc<EncodedSnapshot>>) -> Self {
        new_event(envelope, snapshot, 1, None, Vec::new())
    }
}

/// An annotated JPEG ready to be stored under its key.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedSnapshot {
    /// `{prefix}/{camera_id}/{ts_ms}.jpg`
    pub key: String,
    pub jpeg: Vec<u8>,
    pub camera_id: String,
    pub ts_ms: u64,
    pub quality: u8,
    /// Size of the video frame the snapshot was made from.
    pub frame_width: u32,
    pub frame_height: u32,
}

/// A snapshot being encoded on the encoder pool.
pub type PendingSnapshot = tokio::sync::oneshot::Receiver<Result<EncodedSnapshot, String>>;

/// Why a destination could not take an event.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryError {
    pub message: String,
}

impl DeliveryError {
    pub fn new(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
        }
    }
}

/// A place events go. Each destination runs in its own task and sees batches in arrival order.
pub trait Destination: Send + 'static {
    fn name(&self) -> &'static str;

    /// How long a batch that is not full waits for more events after its first one; zero sends
    /// whatever is queued at once.
    fn linger(&self) -> Duration {
        Duration::ZERO
    }

    /// Gives the destination its counters and the bus, before its first batch.
    fn attach(&mut self, _context: DestinationContext) {}

    /// Delivers a batch; the result has one entry per event, in order.
    fn deliver(
        &mut self,
        batch: &[Arc<Event>],
    ) -> impl Future<Output = Vec<Result<(), DeliveryError>>> + Send;
}

/// What a running destination reports besides its outcomes: the retries it makes.
#[derive(Clone)]
pub struct DestinationContext {
    stats: Arc<DestinationStats>,
    observer: Arc<dyn DeliveryObserver>,
}

impl DestinationContext {
    /// `events` failed an attempt and will be sent again: counted, and a rate-limited bus
    /// warning says why, so that a destination that cannot deliver is never silent.
    pub fn retrying(&self, events: usize, reason: &str) {
        self.stats
            .failed
            .fetch_add(events as u64, Ordering::Relaxed);
        self.stats
            .retried
            .fetch_add(events as u64, Ordering::Relaxed);
        self.observer.degraded(
            self.stats.name,
            &format!("{events} events will be sent again: {reason}"),
        );
    }
}

/// Says where a snapshot will be stored, before the envelopes that refer to it are serialized.
pub trait SnapshotLinker: Send + Sync + 'static {
    fn link<'a>(
        &'a self,
        snapshot: &'a EncodedSnapshot,
    ) -> Pin<Box<dyn Future<Output = SnapshotRef> + Send + 'a>>;
}

/// Told about the outcome of each event, from a worker thread.
pub trait DeliveryObserver: Send + Sync + 'static {
    /// Every destination has the event.
    fn delivered(&self, event: &Event);
    /// A destination gave up on the event.
    fn dead_lettered(&self, destination: &'static str, event: &Event, reason: &str);
    /// Something was lost or degraded: a snapshot that failed, the spool refusing an event.
    /// `kind` groups repeated reports for rate limiting.
    fn degraded(&self, kind: &'static str, message: &str);
}

/// What one frame produced.
#[derive(Debug, Default)]
pub struct Job {
    pub envelopes: Vec<Envelope>,
    pub snapshot: Option<PendingSnapshot>,
    /// Budget held for the events, and for the snapshot (shrunk to the JPEG once encoded).
    pub events_reservation: Option<Reservation>,
    pub snapshot_reservation: Option<Reservation>,
}

/// What a sink's delivery is set up with, beyond its destinations.
pub struct DeliveryOptions {
    pub spool: Option<(Arc<Spool>, Vec<SpooledEvent>)>,
    /// Where `dead-letters.jsonl` goes; none keeps dead letters on the bus and in `stats` only.
    pub dead_letter_dir: Option<std::path::PathBuf>,
    pub sink_stats: Arc<SinkStats>,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            spool: None,
            dead_letter_dir: None,
            sink_stats: Arc::new(SinkStats::default()),
        }
    }
}

/// Events accepted but not yet settled by every destination.
#[derive(Debug, Default)]
struct Inflight {
    count: Mutex<usize>,
    changed: Condvar,
}

impl Inflight {
    fn add(&self, n: usize) {
        *self.count.lock().unwrap_or_else(|e| e.into_inner()) += n;
    }

    fn settle_one(&self) {
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        *count = count.saturating_sub(1);
        self.changed.notify_all();
    }

    /// Waits until nothing is in flight or `timeout` passed; returns what is still in flight.
    fn wait_empty(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        while *count > 0 {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            count = match self.changed.wait_timeout(count, left) {
                Ok((count, _)) => count,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        *count
    }
}

struct Shared {
    inflight: Inflight,
    observer: Arc<dyn DeliveryObserver>,
    spool: Option<Arc<Spool>>,
    dead_letters: Option<(std::path::PathBuf, Mutex<Option<File>>)>,
    sink_stats: Arc<SinkStats>,
}

impl Shared {
    fn settle(&self, event: &Event, destination: &'static str, outcome: Result<(), &str>) {
        if let Err(reason) = outcome {
            event.dead_lettered.store(true, Ordering::Relaxed);
            self.write_dead_letter(destination, event, reason);
            self.observer.dead_lettered(destination, event, reason);
        }
        // Delivered or given up, the destination is done with it: the spool may forget it.
        if let (Some(spool), Some(seq)) = (&self.spool, event.spool_seq)
            && let Err(err) = spool.ack(seq, destination_bit(destination))
        {
            self.observer.degraded("spool", &err);
        }
        if event.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            if !event.dead_lettered.load(Ordering::Relaxed) {
                self.observer.delivered(event);
            }
            self.inflight.settle_one();
        }
    }

    fn write_dead_letter(&self, destination: &str, event: &Event, reason: &str) {
        let Some((path, file)) = &self.dead_letters else {
            return;
        };
        let line = serde_json::json!({
            "destination": destination,
            "reason": reason,
            "envelope": &event.envelope,
        });
        let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
        if file.is_none() {
            *file = OpenOptions::new().create(true).append(true).open(path).ok();
        }
        let written = file.as_mut().map(|f| {
            f.write_all(format!("{line}\n").as_bytes())
                .and_then(|_| f.sync_data())
        });
        if !matches!(written, Some(Ok(()))) {
            let message = format!("cannot append to '{}'", path.display());
            self.observer.degraded("dead-letters", &message);
        }
    }
}

type StartTask =
    Box<dyn FnOnce(mpsc::UnboundedReceiver<Arc<Event>>, Arc<Shared>) -> JoinHandle<()> + Send>;

/// A destination's task and the channel that feeds it, before it is started.
pub struct DestinationTask {
    stats: Arc<DestinationStats>,
    start: StartTask,
}

impl DestinationTask {
    /// Wraps `destination`, to be started by [`Dispatcher::start`].
    pub fn new<D: Destination>(destination: D, max_batch: usize) -> Self {
        let stats = DestinationStats::new(destination.name());
        let task_stats = stats.clone();
        DestinationTask {
            stats,
            start: Box::new(move |rx, shared| {
                let mut destination = destination;
                destination.attach(DestinationContext {
                    stats: task_stats.clone(),
                    observer: shared.observer.clone(),
                });
                tokio::spawn(drain(destination, rx, task_stats, shared, max_batch))
            }),
        }
    }

    /// The spool bit of this destination.
    pub fn bit(&self) -> u8 {
        destination_bit(self.stats.name)
    }
}

enum Work {
    Frame { job: Job, seqs: Option<Vec<u64>> },
    Replay(Vec<SpooledEvent>),
}

/// The running delivery of one sink.
pub struct Dispatcher {
    jobs: Option<mpsc::UnboundedSender<Work>>,
    shared: Arc<Shared>,
    destination_stats: Vec<Arc<DestinationStats>>,
    /// Every destination's spool bit.
    mask: u8,
    tasks: Vec<JoinHandle<()>>,
}

impl Dispatcher {
    pub fn start(
        runtime: &tokio::runtime::Runtime,
        destinations: Vec<DestinationTask>,
        observer: Arc<dyn DeliveryObserver>,
        linker: Option<Arc<dyn SnapshotLinker>>,
        options: DeliveryOptions,
    ) -> Self {
        let _entered = runtime.enter();
        let (spool, replay) = match options.spool {
            Some((spool, replay)) => (Some(spool), replay),
            None => (None, Vec::new()),
        };
        let shared = Arc::new(Shared {
            inflight: Inflight::default(),
            observer,
            spool: spool.clone(),
            dead_letters: options
                .dead_letter_dir
                .map(|dir| (dir.join(DEAD_LETTERS_FILE), Mutex::new(None))),
            sink_stats: options.sink_stats,
        });

        let mut feeds = Vec::new();
        let mut tasks = Vec::new();
        let mut destination_stats = Vec::new();
        let mut mask = 0;
        for destination in destinations {
            let (tx, rx) = mpsc::unbounded_channel();
            mask |= destination.bit();
            feeds.push(Feed {
                tx,
                bit: destination.bit(),
                stats: destination.stats.clone(),
            });
            tasks.push((destination.start)(rx, shared.clone()));
            destination_stats.push(destination.stats);
        }

        let (jobs, job_rx) = mpsc::unbounded_channel();
        tasks.push(tokio::spawn(dispatch(
            job_rx,
            feeds,
            linker,
            shared.clone(),
        )));
        if let Some(spool) = spool {
            tasks.push(tokio::spawn(spool::sync_periodically(
                spool,
                SPOOL_SYNC_INTERVAL,
            )));
        }
        if !replay.is_empty() {
            shared.inflight.add(replay.len());
            let _ = jobs.send(Work::Replay(replay));
        }

        Dispatcher {
            jobs: Some(jobs),
            shared,
            destination_stats,
            mask,
            tasks,
        }
    }

    /// Hands a frame's events over, writing them to the spool first when there is one; never
    /// waits on the network, a destination or a disk sync.
    pub fn submit(&self, job: Job) {
        if job.envelopes.is_empty() {
            return;
        }
        let Some(jobs) = &self.jobs else {
            return;
        };

        let seqs = self.shared.spool.as_ref().and_then(|spool| {
            spool
                .append(&job.envelopes, self.mask)
                .inspect_err(|err| {
                    // The events still go out, only without the guarantee of the spool.
                    self.shared.observer.degraded("spool", err);
                })
                .ok()
        });
        self.shared.inflight.add(job.envelopes.len());
        if let Err(mpsc::error::SendError(Work::Frame { job, .. })) =
            jobs.send(Work::Frame { job, seqs })
        {
            // The dispatch task is gone only when the runtime is shutting down.
            for envelope in job.envelopes {
                let event = new_event(envelope, None, 1, None, Vec::new());
                self.shared
                    .settle(&event, "dispatch", Err("the delivery task has stopped"));
            }
        }
    }

    /// Waits up to `timeout` for every accepted event to settle; returns how many did not.
    pub fn flush(&self, timeout: Duration) -> usize {
        self.shared.inflight.wait_empty(timeout)
    }

    /// A handle that waits like [`Dispatcher::flush`] without borrowing the dispatcher, so that
    /// waiting needs no lock on whatever owns it.
    pub fn pending(&self) -> PendingEvents {
        PendingEvents(self.shared.clone())
    }

    pub fn destination_stats(&self) -> &[Arc<DestinationStats>] {
        &self.destination_stats
    }

    pub fn spool(&self) -> Option<&Arc<Spool>> {
        self.shared.spool.as_ref()
    }

    /// Stops accepting, waits up to `timeout` for what is in flight, then stops the tasks.
    /// Returns how many events were still in flight: kept in the spool when there is one,
    /// counted as dropped otherwise.
    pub fn shutdown(mut self, timeout: Duration) -> usize {
        self.jobs = None;
        let left = self.flush(timeout);
        for task in &self.tasks {
            task.abort();
        }
        match &self.shared.spool {
            Some(spool) => {
                if let Err(err) = spool.sync() {
                    self.shared.observer.degraded("spool", &err);
                }
            }
            None => {
                for stats in &self.destination_stats {
                    stats.dropped.fetch_add(stats.pending(), Ordering::Relaxed);
                }
            }
        }
        left
    }
}

/// See [`Dispatcher::pending`].
pub struct PendingEvents(Arc<Shared>);

impl PendingEvents {
    pub fn wait(&self, timeout: Duration) -> usize {
        self.0.inflight.wait_empty(timeout)
    }
}

fn new_event(
    envelope: Envelope,
    snapshot: Option<Arc<EncodedSnapshot>>,
    destinations: usize,
    spool_seq: Option<u64>,
    held: Vec<Arc<Reservation>>,
) -> Event {
    Event {
        json: envelope.to_json(),
        envelope,
        snapshot,
        spool_seq,
        remaining: AtomicUsize::new(destinations),
        dead_lettered: AtomicBool::new(false),
        _held: held,
    }
}

struct Feed {
    tx: mpsc::UnboundedSender<Arc<Event>>,
    bit: u8,
    stats: Arc<DestinationStats>,
}

/// Sends `event` to the destinations of `mask`.
fn fan_out(feeds: &[Feed], mask: u8, event: &Arc<Event>) {
    for feed in feeds.iter().filter(|feed| mask & feed.bit != 0) {
        feed.stats.accepted.fetch_add(1, Ordering::Relaxed);
        // A closed feed means its task was aborted at shutdown; the event stays pending.
        let _ = feed.tx.send(event.clone());
    }
}

async fn dispatch(
    mut work: mpsc::UnboundedReceiver<Work>,
    feeds: Vec<Feed>,
    linker: Option<Arc<dyn SnapshotLinker>>,
    shared: Arc<Shared>,
) {
    let all = feeds.iter().fold(0, |mask, feed| mask | feed.bit);
    while let Some(item) = work.recv().await {
        match item {
            Work::Frame { job, seqs } => {
                dispatch_frame(job, seqs, &feeds, all, linker.as_deref(), &shared).await
            }
            Work::Replay(events) => {
                for spooled in events {
                    let mask = spooled.pending & all;
                    let snapshot = spooled.snapshot.map(Arc::new);
                    let destinations = feeds.iter().filter(|f| mask & f.bit != 0).count();
                    let event = Arc::new(new_event(
                        spooled.envelope,
                        snapshot,
                        destinations,
                        Some(spooled.seq),
                        Vec::new(),
                    ));
                    fan_out(&feeds, mask, &event);
                }
            }
        }
    }
}

async fn dispatch_frame(
    job: Job,
    seqs: Option<Vec<u64>>,
    feeds: &[Feed],
    mask: u8,
    linker: Option<&dyn SnapshotLinker>,
    shared: &Shared,
) {
    let snapshot = match job.snapshot {
        Some(pending) => match pending.await {
            Ok(Ok(snapshot)) => {
                shared
                    .sink_stats
                    .snapshots_encoded
                    .fetch_add(1, Ordering::Relaxed);
                Some(Arc::new(snapshot))
            }
            Ok(Err(reason)) => {
                shared
                    .sink_stats
                    .snapshots_failed
                    .fetch_add(1, Ordering::Relaxed);
                shared
                    .observer
                    .degraded("snapshot", &format!("No snapshot: {reason}"));
                None
            }
            Err(_) => {
                shared
                    .sink_stats
                    .snapshots_failed
                    .fetch_add(1, Ordering::Relaxed);
                None
            }
        },
        None => None,
    };

    let mut held = Vec::new();
    if let Some(reservation) = job.events_reservation {
        held.push(Arc::new(reservation));
    }
    if let (Some(reservation), Some(snapshot)) = (job.snapshot_reservation, &snapshot) {
        reservation.shrink_to(snapshot.jpeg.len() + budget::FIXED_SNAPSHOT_BYTES);
        held.push(Arc::new(reservation));
    }

    let snapshot_ref = match (&snapshot, linker) {
        (Some(snapshot), Some(linker)) => Some(linker.link(snapshot).await),
        (Some(snapshot), None) => Some(SnapshotRef {
            bucket: None,
            key: snapshot.key.clone(),
            url: None,
        }),
        (None, _) => None,
    };
    if let (Some(spool), Some(seqs), Some(snapshot), Some(snapshot_ref)) =
        (&shared.spool, &seqs, &snapshot, &snapshot_ref)
        && let Err(err) = spool.put_snapshot(snapshot, snapshot_ref, seqs)
    {
        shared.observer.degraded("spool", &err);
    }

    for (i, mut envelope) in job.envelopes.into_iter().enumerate() {
        envelope.snapshot = snapshot_ref.clone();
        let seq = seqs.as_ref().and_then(|seqs| seqs.get(i).copied());
        let event = Arc::new(new_event(
            envelope,
            snapshot.clone(),
            feeds.len(),
            seq,
            held.clone(),
        ));
        fan_out(feeds, mask, &event);
    }
}

async fn drain<D: Destination>(
    mut destination: D,
    mut rx: mpsc::UnboundedReceiver<Arc<Event>>,
    stats: Arc<DestinationStats>,
    shared: Arc<Shared>,
    max_batch: usize,
) {
    let linger = destination.linger();
    let mut batch = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        if !linger.is_zero() {
            let deadline = tokio::time::Instant::now() + linger;
            while batch.len() < max_batch {
                let room = max_batch - batch.len();
                // A closed channel (0) or the deadline ends the wait; what is in hand goes out.
                match tokio::time::timeout_at(deadline, rx.recv_many(&mut batch, room)).await {
                    Ok(received) if received > 0 => continue,
                    _ => break,
                }
            }
        }
        let results = destination.deliver(&batch).await;
        stats.batches.fetch_add(1, Ordering::Relaxed);

        for (i, event) in batch.drain(..).enumerate() {
            let result = results.get(i).cloned().unwrap_or_else(|| {
                Err(DeliveryError::new(
                    "the destination gave no result for the event",
                ))
            });
            match result {
                Ok(()) => {
                    stats.delivered.fetch_add(1, Ordering::Relaxed);
                    stats
                        .bytes
                        .fetch_add(event.json.len() as u64, Ordering::Relaxed);
                    shared.settle(&event, stats.name, Ok(()));
                }
                Err(error) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    shared.settle(&event, stats.name, Err(&error.message));
                }
            }
        }
    }
}

/// The dead-letter directory for a sink: `output-dir`, else `spool-dir`.
pub fn dead_letter_dir(
    output_dir: Option<&Path>,
    spool_dir: Option<&Path>,
) -> Option<std::path::PathBuf> {
    output_dir.or(spool_dir).map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::Detection;
    use serde_json::Map;

    #[derive(Default)]
    struct Recorder {
        delivered: Mutex<Vec<String>>,
        dead: Mutex<Vec<(String, String)>>,
    }

    impl DeliveryObserver for Recorder {
        fn delivered(&self, event: &Event) {
            self.delivered
                .lock()
                .unwrap()
                .push(event.envelope.event_id.clone());
        }
        fn dead_lettered(&self, destination: &'static str, event: &Event, reason: &str) {
            self.dead.lock().unwrap().push((
                format!("{destination}:{}", event.envelope.payload.label),
                reason.to_string(),
            ));
        }
        fn degraded(&self, kind: &'static str, message: &str) {
            self.dead
                .lock()
                .unwrap()
                .push((kind.to_string(), message.to_string()));
        }
    }

    /// Takes every event but those labelled "bad", and remembers what it saw.
    struct Picky(Arc<Mutex<Vec<usize>>>);

    impl Destination for Picky {
        fn name(&self) -> &'static str {
            "picky"
        }
        async fn deliver(&mut self, batch: &[Arc<Event>]) -> Vec<Result<(), DeliveryError>> {
            self.0.lock().unwrap().push(batch.len());
            batch
                .iter()
                .map(|event| match event.envelope.payload.label.as_str() {
                    "bad" => Err(DeliveryError::new("refused")),
                    _ => Ok(()),
                })
                .collect()
        }
    }

    fn envelope(label: &str, ts_ms: u64) -> Envelope {
        let detection = Detection {
            label: label.into(),
            event_type: label.into(),
            conf: 1.0,
            bbox: [0, 0, 1, 1],
            extras: Map::new(),
        };
        Envelope::new("cam", "test", ts_ms, 1000, detection)
    }

    #[test]
    fn every_event_settles_and_counters_add_up() {
        let runtime = crate::runtime::runtime().unwrap();
        let recorder = Arc::new(Recorder::default());
        let batches = Arc::new(Mutex::new(Vec::new()));
        let dispatcher = Dispatcher::start(
            runtime,
            vec![DestinationTask::new(Picky(batches.clone()), 2)],
            recorder.clone(),
            None,
            DeliveryOptions::default(),
        );

        dispatcher.submit(Job {
            envelopes: vec![
                envelope("a", 1000),
                envelope("bad", 2000),
                envelope("c", 3000),
            ],
            ..Default::default()
        });
        assert_eq!(dispatcher.flush(Duration::from_secs(5)), 0);

        assert_eq!(recorder.delivered.lock().unwrap().len(), 2);
        assert_eq!(
            *recorder.dead.lock().unwrap(),
            vec![("picky:bad".to_string(), "refused".to_string())]
        );
        let stats = &dispatcher.destination_stats()[0];
        assert_eq!(stats.accepted.load(Ordering::Relaxed), 3);
        assert_eq!(stats.delivered.load(Ordering::Relaxed), 2);
        assert_eq!(stats.dead_lettered.load(Ordering::Relaxed), 1);
        assert_eq!(stats.pending(), 0);
        assert!(batches.lock().unwrap().iter().all(|n| *n <= 2));
        assert_eq!(dispatcher.shutdown(Duration::from_secs(1)), 0);
    }

    /// Picky, waiting up to 150 ms for a batch to fill.
    struct Lingering(Picky);

    impl Destination for Lingering {
        fn name(&self) -> &'static str {
            "lingering"
        }
        fn linger(&self) -> Duration {
            Duration::from_millis(150)
        }
        async fn deliver(&mut self, batch: &[Arc<Event>]) -> Vec<Result<(), DeliveryError>> {
            self.0.deliver(batch).await
        }
    }

    #[test]
    fn linger_gathers_a_batch_until_full_or_due() {
        let runtime = crate::runtime::runtime().unwrap();
        let batches = Arc::new(Mutex::new(Vec::new()));
        let dispatcher = Dispatcher::start(
            runtime,
            vec![DestinationTask::new(Lingering(Picky(batches.clone())), 3)],
            Arc::new(Recorder::default()),
            None,
            DeliveryOptions::default(),
        );
        let submit = |label: &str, ts_ms: u64| {
            dispatcher.submit(Job {
                envelopes: vec![envelope(label, ts_ms)],
                ..Default::default()
            })
        };

        // Four events trickling in: the first three fill a batch, the fourth waits its linger.
        let started = Instant::now();
        for i in 0..4 {
            submit("a", i * 1000);
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(dispatcher.flush(Duration::from_secs(5)), 0);
        let waited = started.elapsed();
        assert_eq!(*batches.lock().unwrap(), vec![3, 1]);
        assert!(waited >= Duration::from_millis(150), "{waited:?}");
        assert!(waited < Duration::from_millis(1000), "{waited:?}");
    }

    /// Puts every snapshot in one bucket.
    struct BucketLinker;

    impl SnapshotLinker for BucketLinker {
        fn link<'a>(
            &'a self,
            snapshot: &'a EncodedSnapshot,
        ) -> Pin<Box<dyn Future<Output = SnapshotRef> + Send + 'a>> {
            Box::pin(async move {
                SnapshotRef {
                    bucket: Some("bucket".into()),
                    key: snapshot.key.clone(),
                    url: Some(format!("http://store/{}", snapshot.key)),
                }
            })
        }
    }

    #[test]
    fn linker_completes_the_envelope_before_it_is_serialized() {
        struct Capture(Arc<Mutex<Vec<String>>>);
        impl Destination for Capture {
            fn name(&self) -> &'static str {
                "capture"
            }
            async fn deliver(&mut self, batch: &[Arc<Event>]) -> Vec<Result<(), DeliveryError>> {
                let mut seen = self.0.lock().unwrap();
                seen.extend(batch.iter().map(|event| event.json.clone()));
                vec![Ok(()); batch.len()]
            }
        }

        let runtime = crate::runtime::runtime().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let dispatcher = Dispatcher::start(
            runtime,
            vec![DestinationTask::new(Capture(seen.clone()), 8)],
            Arc::new(Recorder::default()),
            Some(Arc::new(BucketLinker)),
            DeliveryOptions::default(),
        );
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = tx.send(Ok(EncodedSnapshot {
            key: "snapshots/cam/1.jpg".into(),
            jpeg: vec![0xff, 0xd8],
            camera_id: "cam".into(),
            ts_ms: 1,
            quality: 90,
            frame_width: 4,
            frame_height: 2,
        }));
        dispatcher.submit(Job {
            envelopes: vec![envelope("a", 1), envelope("b", 1)],
            snapshot: Some(rx),
            ..Default::default()
        });
        assert_eq!(dispatcher.flush(Duration::from_secs(5)), 0);

        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        for json in seen.iter() {
            assert!(
                json.ends_with(
                    r#""snapshot":{"bucket":"bucket","key":"snapshots/cam/1.jpg","url":"http://store/snapshots/cam/1.jpg"}}"#
                ),
                "{json}"
            );
        }
    }
}
