// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The encoder pool every sink in the process shares, and the jobs it runs.
//!
//! Encoding is CPU work, so the pool is plain threads, not the tokio runtime that carries the
//! network traffic. Admission is bounded by a count of jobs queued or running, so saturation is
//! a fact of the pool's state, not of thread timing.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::thread;

use gst_video::prelude::*;
use gst_video::{VideoFrameRef, VideoInfo};

use super::planes::YcbcrPlanes;
use super::recycle::RecycledBytes;
use super::{
    SnapshotError, SnapshotSettings, annotate_jpeg, convert, draw_and_compress, encode, scaled_size,
};
use crate::delivery::{EncodedSnapshot, PendingSnapshot};
use crate::detection::Detection;

/// Jobs the pool accepts beyond one per worker: enough to absorb a burst of cameras, small
/// enough that a saturated pool holds few frame copies.
pub const DEFAULT_QUEUE_CAPACITY: usize = 2;

/// The global pool's thread count never exceeds this, whatever the core count.
pub const MAX_ENCODER_THREADS: usize = 8;

/// What an [`EncodedSnapshot`] says about where it came from and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMetadata {
    /// See [`super::snapshot_key`].
    pub key: String,
    pub camera_id: String,
    pub ts_ms: u64,
}

/// Everything one snapshot needs, owned, so that the upstream buffer is released at once.
#[derive(Debug)]
pub struct SnapshotJob {
    frame: FrameCopy,
    /// The frame's own size, which the detections' boxes are in.
    frame_size: (u32, u32),
    detections: Vec<Detection>,
    settings: SnapshotSettings,
    metadata: SnapshotMetadata,
}

/// The job's copy of the frame.
#[derive(Debug)]
enum FrameCopy {
    /// Already JPEG's planes: YUV or gray frames that need no scaling and no other matrix are
    /// copied (and stretched to full range) straight into them, the one copy they cost.
    Planes(YcbcrPlanes),
    /// The pixels as they came, in the default layout, for the encoder thread to convert.
    Raw {
        buffer: gst::Buffer,
        info: VideoInfo,
    },
}

impl SnapshotJob {
    /// Copies the pixels of `buffer`, described by `info` (or by the buffer's own video meta
    /// when it has one): into the snapshot's planes when that is a plane copy, otherwise into
    /// a system-memory buffer of the default layout. The memory is reused from earlier
    /// snapshots of the same shape.
    pub fn new(
        buffer: &gst::BufferRef,
        info: &VideoInfo,
        detections: Vec<Detection>,
        settings: SnapshotSettings,
        metadata: SnapshotMetadata,
    ) -> Result<Self, SnapshotError> {
        let invalid = |err: gst::glib::BoolError| SnapshotError::InvalidFrame(err.to_string());
        let source = VideoFrameRef::from_buffer_ref_readable(buffer, info).map_err(invalid)?;
        let frame_size = (source.width(), source.height());
        let snapshot_size = scaled_size(frame_size, settings.max_width);

        let frame = if convert::is_plane_copy(source.info(), snapshot_size) {
            FrameCopy::Planes(convert::copy_yuv(&source)?)
        } else {
            let (buffer, info) = raw_copy(&source)?;
            FrameCopy::Raw { buffer, info }
        };
        Ok(SnapshotJob {
            frame,
            frame_size,
            detections,
            settings,
            metadata,
        })
    }

    /// Makes the snapshot on this thread.
    pub fn encode(self) -> Result<EncodedSnapshot, SnapshotError> {
        let jpeg = match self.frame {
            FrameCopy::Planes(planes) => encode::with_encoder(|encoder| {
                draw_and_compress(
                    encoder,
                    planes,
                    &self.detections,
                    self.frame_size,
                    &self.settings,
                )
            })?,
            FrameCopy::Raw { buffer, info } => {
                let frame = VideoFrameRef::from_buffer_ref_readable(&buffer, &info)
                    .map_err(|err| SnapshotError::InvalidFrame(err.to_string()))?;
                annotate_jpeg(&frame, &self.detections, &self.settings)?
            }
        };
        Ok(EncodedSnapshot {
            key: self.metadata.key,
            jpeg,
            camera_id: self.metadata.camera_id,
            ts_ms: self.metadata.ts_ms,
            quality: self.settings.jpeg_quality(),
            frame_width: self.frame_size.0,
            frame_height: self.frame_size.1,
        })
    }
}

/// A copy of `source` in the default layout, which leaves out whatever padding the source
/// strides carried, in recycled memory.
fn raw_copy(
    source: &VideoFrameRef<&gst::BufferRef>,
) -> Result<(gst::Buffer, VideoInfo), SnapshotError> {
    let invalid = |err: gst::glib::BoolError| SnapshotError::InvalidFrame(err.to_string());
    // The mapped frame's info reflects any video meta.
    let source_info = source.info();
    let layout = VideoInfo::builder(
        source_info.format(),
        source_info.width(),
        source_info.height(),
    )
    .interlace_mode(source_info.interlace_mode())
    .chroma_site(source_info.chroma_site())
    .colorimetry(&source_info.colorimetry())
    .par(source_info.par())
    .fps(source_info.fps())
    .build()
    .map_err(invalid)?;

    let mut buffer = gst::Buffer::from_mut_slice(RecycledBytes::with_len(layout.size()));
    {
        let Some(buffer) = buffer.get_mut() else {
            return Err(SnapshotError::InvalidFrame(
                "the new buffer is shared".into(),
            ));
        };
        let mut copy = VideoFrameRef::from_buffer_ref_writable(buffer, &layout).map_err(invalid)?;
        source.copy(&mut copy).map_err(invalid)?;
    }
    Ok((buffer, layout))
}

/// What [`EncoderPool::try_submit_with`] made of a job.
#[derive(Debug)]
pub enum Submission {
    /// The snapshot will arrive here.
    Queued(PendingSnapshot),
    /// Every worker is busy and the queue is full: nothing was copied.
    Saturated,
    /// The job could not be made.
    Failed(SnapshotError),
}

type Task = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct PoolState {
    queue: VecDeque<Task>,
    /// Tasks queued or running.
    outstanding: usize,
    closed: bool,
}

#[derive(Default)]
struct PoolShared {
    state: Mutex<PoolState>,
    task_ready: Condvar,
}

impl PoolShared {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A fixed set of encoder threads with a small queue in front; see [`EncoderPool::try_submit`].
pub struct EncoderPool {
    shared: Arc<PoolShared>,
    threads: usize,
    /// Tasks queued or running at most: every worker busy plus a full queue.
    limit: usize,
}

/// The global pool's thread count: one per core, at most [`MAX_ENCODER_THREADS`].
static GLOBAL_THREADS: LazyLock<usize> = LazyLock::new(|| {
    let cores = thread::available_parallelism().map_or(1, |cores| cores.get());
    cores.min(MAX_ENCODER_THREADS)
});

static GLOBAL_POOL: LazyLock<EncoderPool> =
    LazyLock::new(|| EncoderPool::new(*GLOBAL_THREADS, DEFAULT_QUEUE_CAPACITY));

/// Jobs the global pool holds at once, queued or running: as many frame copies as can exist.
pub(crate) fn global_capacity() -> usize {
    *GLOBAL_THREADS + DEFAULT_QUEUE_CAPACITY
}

impl EncoderPool {
    /// The pool of the process: one thread per core, at most [`MAX_ENCODER_THREADS`], started
    /// on first use.
    pub fn global() -> &'static EncoderPool {
        &GLOBAL_POOL
    }

    /// Starts `threads` workers that accept `queue_capacity` waiting jobs. A thread the system
    /// refuses to start is left out; with none at all, every submission is refused.
    pub fn new(threads: usize, queue_capacity: usize) -> Self {
        let shared = Arc::new(PoolShared::default());
        let mut started = 0;
        for index in 0..threads {
            let worker_shared = shared.clone();
            let spawned = thread::Builder::new()
                .name(format!("kvsinfer-snapshot-{index}"))
                .spawn(move || run_worker(&worker_shared));
            if spawned.is_ok() {
                started += 1;
            }
        }

        EncoderPool {
            shared,
            threads: started,
            limit: if started == 0 {
                0
            } else {
                started + queue_capacity
            },
        }
    }

    /// Worker threads running.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Jobs queued or being encoded.
    pub fn outstanding(&self) -> usize {
        self.shared.lock().outstanding
    }

    /// Queues `job` and returns where its snapshot will arrive, or `None` at once, dropping the
    /// job, when every worker is busy and the queue is full. Never waits.
    pub fn try_submit(&self, job: SnapshotJob) -> Option<PendingSnapshot> {
        match self.try_submit_with(|| Ok(job)) {
            Submission::Queued(pending) => Some(pending),
            Submission::Saturated | Submission::Failed(_) => None,
        }
    }

    /// Takes a place in the pool, then calls `make` for the job that fills it: a saturated pool
    /// refuses before the frame is copied. Never waits for an encode.
    pub fn try_submit_with(
        &self,
        make: impl FnOnce() -> Result<SnapshotJob, SnapshotError>,
    ) -> Submission {
        if !self.try_reserve() {
            return Submission::Saturated;
        }
        let job = match make() {
            Ok(job) => job,
            Err(err) => {
                self.release();
                return Submission::Failed(err);
            }
        };
        let (result, pending) = tokio::sync::oneshot::channel();
        self.run_reserved(Box::new(move || {
            // A receiver that is gone means the sink stopped; the snapshot has nowhere to go.
            let _ = result.send(job.encode().map_err(|err| err.to_string()));
        }));
        Submission::Queued(pending)
    }

    /// Counts one more task queued or running, unless the pool is full or closed.
    fn try_reserve(&self) -> bool {
        let mut state = self.shared.lock();
        if state.closed || state.outstanding >= self.limit {
            return false;
        }
        state.outstanding += 1;
        true
    }

    fn release(&self) {
        let mut state = self.shared.lock();
        state.outstanding = state.outstanding.saturating_sub(1);
    }

    /// Queues a task whose place [`EncoderPool::try_reserve`] took.
    fn run_reserved(&self, task: Task) {
        let mut state = self.shared.lock();
        if state.closed {
            // Nobody will run it: its result sender is dropped, and the receiver learns so.
            state.outstanding = state.outstanding.saturating_sub(1);
            return;
        }
        state.queue.push_back(task);
        drop(state);
        self.shared.task_ready.notify_one();
    }
}

impl Drop for EncoderPool {
    /// Workers finish what is queued, then stop; nothing waits for them.
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.task_ready.notify_all();
    }
}

fn run_worker(shared: &PoolShared) {
    loop {
        let task = {
            let mut state = shared.lock();
            loop {
                if let Some(task) = state.queue.pop_front() {
                    break task;
                }
                if state.closed {
                    return;
                }
                state = shared
                    .task_ready
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        };

        // A panic is a bug, but it must not take a worker, or its admission slot, with it.
        // The task's result sender is dropped, so its receiver learns the snapshot failed.
        let _ = panic::catch_unwind(AssertUnwindSafe(task));
        let mut state = shared.lock();
        state.outstanding = state.outstanding.saturating_sub(1);
    }
}

#[cfg(test)]
impl EncoderPool {
    /// Test access to [`EncoderPool::try_run`], to occupy workers with tasks the test controls.
    pub(super) fn try_run_for_test(&self, task: impl FnOnce() + Send + 'static) -> bool {
        let reserved = self.try_reserve();
        if reserved {
            self.run_reserved(Box::new(task));
        }
        reserved
    }
}
