// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Annotated JPEG snapshots of video frames: conversion, drawing and encoding, in plain Rust.
//!
//! # Using it
//!
//! - [`annotate_jpeg`] turns one mapped frame and its detections into JPEG bytes, on the
//!   calling thread.
//! - [`EncoderPool::global`] is the pool every sink in the process shares. The streaming thread
//!   calls [`EncoderPool::try_submit_with`], which never waits: when every worker is busy and
//!   the small queue is full it says so before anything is copied, and the caller drops the
//!   snapshot and counts it. Otherwise it copies the frame into a [`SnapshotJob`] (the upstream
//!   buffer is released at once: a camera may own only a handful), and the result arrives on
//!   the returned [`PendingSnapshot`]. A YUV or gray frame is copied straight into the JPEG's
//!   planes, its only copy; an RGB frame, or one to be scaled or given another matrix, is
//!   copied as it is and converted on the encoder thread. The copies reuse the memory of
//!   earlier snapshots of the same shape.
//! - [`snapshot_key`] names the object: `{prefix}/{camera_id}/{ts_ms}.jpg`.
//!
//! # Formats
//!
//! RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, ARGB, ABGR (alpha is ignored), I420, YV12, NV12,
//! NV21, YUY2, UYVY and GRAY8 ([`SUPPORTED_FORMATS`]), at any size, odd sizes and padded strides
//! included. Everything is drawn and encoded as YCbCr planes, the form a JPEG stores:
//!
//! - packed RGB is converted by libjpeg-turbo and encoded 4:2:0;
//! - I420, YV12, NV12 and NV21 are copied plane by plane (4:2:0), YUY2 and UYVY are split into
//!   planes (4:2:2), GRAY8 gets neutral chroma so that boxes keep their colours;
//! - limited-range BT.601 YUV is stretched to JPEG's full range during that copy; other YUV
//!   matrices (BT.709, BT.2020) and any frame that is scaled go through GStreamer's
//!   `VideoConverter` to full-range BT.601 I420.
//!
//! # Drawing
//!
//! Each detection is a rectangle outline drawn inside its box, `max(2, height / 540)` pixels
//! thick, in the colour of its event type ([`box_colour`]):
//!
//! | type | colour | RGB |
//! |---|---|---|
//! | `weapon` | red | 230, 30, 30 |
//! | `fire` | orange | 255, 140, 0 |
//! | `smoke` | grey | 160, 160, 160 |
//! | `alpr` | blue | 30, 90, 255 |
//! | any other | green | 40, 200, 60 |
//!
//! With [`SnapshotSettings::draw_labels`], a tag reads `label 0.87` (an `alpr` detection shows
//! its plate, `extras.text`, instead of its label) in the public-domain font8x8 glyphs, scaled
//! `max(1, height / 540)` times, on a filled background of the box colour with black or white
//! text, whichever reads better. It sits above the box, or just inside its top edge when there
//! is no room above, and is shifted left to stay inside the frame. All boxes are drawn before
//! any tag.
//!
//! Boxes are in frame pixels. With [`SnapshotSettings::max_width`], the frame is scaled down
//! first (aspect ratio kept), the boxes are scaled with it, and lines and text are sized for
//! the snapshot's height.
//!
//! # Cost
//!
//! A 1080p snapshot takes about 5 ms of one core from BT.601 YUV (about 0.2 ms of it the copy
//! on the streaming thread), about 6 ms from RGB, and about 10 ms from BT.709 or BT.2020 YUV
//! (`cargo bench --bench snapshot` compares with `jpegenc`). Each thread that makes snapshots
//! keeps its compressor and converter for the next one.

mod convert;
mod draw;
mod encode;
mod planes;
mod pool;
mod recycle;

#[cfg(test)]
mod tests;

use std::fmt;

use gst_video::VideoFrameRef;
use gst_video::prelude::*;

pub use crate::delivery::PendingSnapshot;
use crate::detection::Detection;
pub use convert::SUPPORTED_FORMATS;
pub use draw::{OTHER_COLOUR, TYPE_COLOURS, box_colour};
pub use pool::{
    DEFAULT_QUEUE_CAPACITY, EncoderPool, MAX_ENCODER_THREADS, SnapshotJob, SnapshotMetadata,
    Submission,
};

/// The key prefix when the sink's `s3-prefix` is left alone.
pub const DEFAULT_SNAPSHOT_PREFIX: &str = "snapshots";

/// The JPEG quality when `jpeg-quality` is left alone.
pub const DEFAULT_JPEG_QUALITY: u8 = 90;

/// How a snapshot is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotSettings {
    /// JPEG quality, 0 to 100; see [`SnapshotSettings::jpeg_quality`].
    pub quality: u8,
    /// Wider frames are scaled down to this width, aspect ratio kept; 0 keeps the full size.
    pub max_width: u32,
    /// Draw the `label 0.87` tags; boxes are drawn either way.
    pub draw_labels: bool,
}

impl SnapshotSettings {
    /// The quality handed to libjpeg-turbo, which takes 1 to 100.
    pub fn jpeg_quality(&self) -> u8 {
        self.quality.clamp(1, 100)
    }
}

impl Default for SnapshotSettings {
    fn default() -> Self {
        SnapshotSettings {
            quality: DEFAULT_JPEG_QUALITY,
            max_width: 0,
            draw_labels: true,
        }
    }
}

/// Why a frame got no snapshot.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotError {
    /// The frame's format is not one of [`SUPPORTED_FORMATS`].
    UnsupportedFormat(gst_video::VideoFormat),
    /// The buffer does not hold what its video info describes.
    InvalidFrame(String),
    /// GStreamer could not convert or scale the frame.
    Conversion(String),
    /// libjpeg-turbo failed.
    Encoder(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::UnsupportedFormat(format) => {
                write!(f, "snapshots cannot be made from {format:?} frames")
            }
            SnapshotError::InvalidFrame(reason) => write!(f, "invalid frame: {reason}"),
            SnapshotError::Conversion(reason) => write!(f, "frame conversion failed: {reason}"),
            SnapshotError::Encoder(reason) => write!(f, "JPEG encoding failed: {reason}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

/// Draws `detections` on a copy of `frame` and encodes it as a JPEG, on this thread.
pub fn annotate_jpeg(
    frame: &VideoFrameRef<&gst::BufferRef>,
    detections: &[Detection],
    settings: &SnapshotSettings,
) -> Result<Vec<u8>, SnapshotError> {
    let frame_size = (frame.width(), frame.height());
    let snapshot_size = scaled_size(frame_size, settings.max_width);

    encode::with_encoder(|encoder| {
        let planes = convert::to_planes(frame, snapshot_size, encoder)?;
        draw_and_compress(encoder, planes, detections, frame_size, settings)
    })
}

/// libjpeg-turbo's encode of an I420 frame's own planes, untouched: no copy, no boxes and no
/// range stretch, which is what `jpegenc` does. The snapshot benchmark measures against it.
/// Odd widths and heights are refused: libjpeg-turbo would read past the frame's planes.
pub fn encode_i420_as_is(
    frame: &VideoFrameRef<&gst::BufferRef>,
    quality: u8,
) -> Result<Vec<u8>, SnapshotError> {
    if frame.format() != gst_video::VideoFormat::I420 {
        return Err(SnapshotError::UnsupportedFormat(frame.format()));
    }
    let plane = |index| {
        Ok((
            convert::plane_data(frame, index)?,
            convert::positive_stride(frame, index)?,
        ))
    };
    let [(y, y_stride), (u, u_stride), (v, v_stride)]: [(&[u8], usize); 3] =
        [plane(0)?, plane(1)?, plane(2)?];
    let view = encode::PlaneView {
        planes: [y, u, v],
        strides: [y_stride, u_stride, v_stride],
        width: frame.width(),
        height: frame.height(),
        sampling: planes::ChromaSampling::Quarter,
    };
    let quality = SnapshotSettings {
        quality,
        ..SnapshotSettings::default()
    }
    .jpeg_quality();
    encode::with_encoder(|encoder| encoder.compress_view(view, quality))
}

/// Draws `detections`, in pixels of a `frame_size` frame, on `planes` and encodes them.
fn draw_and_compress(
    encoder: &mut encode::JpegEncoder,
    mut planes: planes::YcbcrPlanes,
    detections: &[Detection],
    frame_size: (u32, u32),
    settings: &SnapshotSettings,
) -> Result<Vec<u8>, SnapshotError> {
    draw::draw_detections(&mut planes, detections, frame_size, settings.draw_labels);
    // The padding repeats the last column and row, with whatever was drawn on them.
    planes.pad_luma_edges();
    encoder.compress(planes, settings.jpeg_quality())
}

/// The snapshot's size: the frame's, or scaled down to `max_width` with the same aspect ratio.
fn scaled_size((width, height): (u32, u32), max_width: u32) -> (u32, u32) {
    if max_width == 0 || width <= max_width {
        return (width, height);
    }
    let scaled_height =
        (u64::from(height) * u64::from(max_width) + u64::from(width) / 2) / u64::from(width);
    (max_width, (scaled_height as u32).max(1))
}

/// `{prefix}/{camera_id}/{ts_ms}.jpg`, without doubled slashes; `camera_id` must already be
/// safe as a path segment.
pub fn snapshot_key(prefix: &str, camera_id: &str, ts_ms: u64) -> String {
    match prefix.trim_matches('/') {
        "" => format!("{camera_id}/{ts_ms}.jpg"),
        prefix => format!("{prefix}/{camera_id}/{ts_ms}.jpg"),
    }
}
