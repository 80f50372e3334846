// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Snapshot encoding against GStreamer's own elements, one core each, same frames, quality 90.
//!
//! Run with `cargo bench --bench snapshot`. The picture is `KVSINFER_BENCH_IMAGE` (any image
//! GStreamer decodes; default the test command's cached `astronaut.png`) scaled to 1920x1080; `KVSINFER_BENCH_FRAMES`
//! sets the frames per case (default 100).

use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_video::{VideoFrameRef, VideoInfo};
use gstkvsinfer::detection::Detection;
use gstkvsinfer::snapshot::{SnapshotJob, SnapshotMetadata, SnapshotSettings, encode_i420_as_is};

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
const QUALITY: u8 = 90;
/// Where the test command caches scikit-image's astronaut photo, below the media cache.
const DEFAULT_IMAGE: &str = "kvsinfer/media/astronaut.png";
const DEFAULT_FRAMES: usize = 100;
/// Frames encoded before timing starts, so that caches, converters and allocators are warm.
const WARM_UP_FRAMES: usize = 5;

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// A decoded frame and the caps that describe it.
struct Frame {
    buffer: gst::Buffer,
    caps: gst::Caps,
    info: VideoInfo,
}

/// Decodes and scales `path` with GStreamer into a 1920x1080 frame of `format` (caps fields
/// may follow the format name).
fn load_frame(path: &str, format: &str) -> BenchResult<Frame> {
    let description = format!(
        "filesrc location=\"{path}\" ! decodebin ! videoconvert ! videoscale ! \
         video/x-raw,format={format},width={WIDTH},height={HEIGHT} ! appsink name=sink sync=false"
    );
    let pipeline = gst::parse::launch(&description)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
    let sink = pipeline.by_name("sink").ok_or("no appsink")?;
    pipeline.set_state(gst::State::Playing)?;

    let sample = sink.emit_by_name::<Option<gst::Sample>>("pull-sample", &[]);
    pipeline.set_state(gst::State::Null)?;
    let sample = sample.ok_or_else(|| format!("{path} gave no frame"))?;
    let buffer = sample.buffer_owned().ok_or("sample without buffer")?;
    let caps = sample.caps_owned().ok_or("sample without caps")?;
    let info = VideoInfo::from_caps(&caps)?;
    Ok(Frame { buffer, caps, info })
}

/// Ten labelled boxes spread over the frame, as a busy scene produces.
fn ten_detections() -> Vec<Detection> {
    let types = ["weapon", "fire", "smoke", "alpr", "person"];
    (0..10u32)
        .map(|i| Detection {
            label: format!("{}_{i}", types[i as usize % types.len()]),
            event_type: types[i as usize % types.len()].to_string(),
            conf: 0.5 + f64::from(i) / 25.0,
            bbox: [60 + 180 * i, 80 + 90 * i, 160, 200],
            extras: Default::default(),
        })
        .collect()
}

/// Frames per second of `encode` called on this thread.
fn frames_per_second(frames: usize, mut encode: impl FnMut() -> usize) -> f64 {
    for _ in 0..WARM_UP_FRAMES {
        encode();
    }
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..frames {
        bytes += encode();
    }
    // Keeps the encoded sizes observable, so that no encode can be optimised away.
    std::hint::black_box(bytes);
    frames as f64 / started.elapsed().as_secs_f64()
}

/// What the element does for a snapshot, both halves on this thread: the copy render() makes
/// (into the snapshot's planes for YUV, of the raw frame for RGB) and the encoder thread's
/// conversion, drawing and encode.
fn ours(frame: &Frame, frames: usize) -> BenchResult<f64> {
    let detections = ten_detections();
    let settings = SnapshotSettings {
        quality: QUALITY,
        ..SnapshotSettings::default()
    };
    let metadata = SnapshotMetadata {
        key: "snapshots/bench/0.jpg".into(),
        camera_id: "bench".into(),
        ts_ms: 0,
    };
    let mut failure = None;
    let fps = frames_per_second(frames, || {
        let snapshot = SnapshotJob::new(
            &frame.buffer,
            &frame.info,
            detections.clone(),
            settings,
            metadata.clone(),
        )
        .and_then(SnapshotJob::encode);
        match snapshot {
            Ok(snapshot) => snapshot.jpeg.len(),
            Err(err) => {
                failure = Some(err);
                0
            }
        }
    });
    match failure {
        Some(err) => Err(err.into()),
        None => Ok(fps),
    }
}

/// libjpeg-turbo alone, RGB in, 4:2:0 out: what no snapshot path can beat.
fn bare_libjpeg_turbo(frame: &Frame, frames: usize) -> BenchResult<f64> {
    let map = frame.buffer.map_readable()?;
    let image = turbojpeg::Image {
        pixels: map.as_slice(),
        width: frame.info.width() as usize,
        pitch: frame.info.stride()[0] as usize,
        height: frame.info.height() as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    let mut compressor = turbojpeg::Compressor::new()?;
    compressor.set_quality(i32::from(QUALITY));
    compressor.set_subsamp(turbojpeg::Subsamp::Sub2x2);
    Ok(frames_per_second(frames, || {
        compressor
            .compress_to_owned(image)
            .map_or(0, |jpeg| jpeg.len())
    }))
}

/// libjpeg-turbo alone straight from the planes of an I420 `frame`: no copy, no boxes.
fn bare_libjpeg_turbo_i420(frame: &Frame, frames: usize) -> BenchResult<f64> {
    let mapped = VideoFrameRef::from_buffer_ref_readable(&frame.buffer, &frame.info)?;
    encode_i420_as_is(&mapped, QUALITY)?;
    Ok(frames_per_second(frames, || {
        encode_i420_as_is(&mapped, QUALITY).map_or(0, |jpeg| jpeg.len())
    }))
}

/// `elements` in a pipeline fed by appsrc; every element runs on appsrc's one streaming
/// thread, as there is no queue.
fn gstreamer(frame: &Frame, elements: &str, frames: usize) -> BenchResult<f64> {
    let description =
        format!("appsrc name=src format=time block=true ! {elements} ! fakesink sync=false");
    let pipeline = gst::parse::launch(&description)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
    let src = pipeline.by_name("src").ok_or("no appsrc")?;
    src.set_property("caps", &frame.caps);

    // From the first push to end of stream, so that every frame is through all elements.
    let run = |count: usize| -> BenchResult<Duration> {
        pipeline.set_state(gst::State::Playing)?;
        let started = Instant::now();
        for _ in 0..count {
            let flow = src.emit_by_name::<gst::FlowReturn>("push-buffer", &[&frame.buffer]);
            flow.into_result()?;
        }
        let _ = src.emit_by_name::<gst::FlowReturn>("end-of-stream", &[]);
        let bus = pipeline.bus().ok_or("no bus")?;
        let message = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(120),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        let elapsed = started.elapsed();
        pipeline.set_state(gst::State::Null)?;
        match message.map(|message| message.type_()) {
            Some(gst::MessageType::Eos) => Ok(elapsed),
            _ => Err(format!("the pipeline '{elements}' did not finish").into()),
        }
    };
    run(WARM_UP_FRAMES)?;
    let elapsed = run(frames)?;
    Ok(frames as f64 / elapsed.as_secs_f64())
}

/// Rounds of every case, interleaved so that a slow spell of the machine hits all cases alike;
/// the table shows each case's median.
const ROUNDS: usize = 3;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> BenchResult<()> {
    gst::init()?;
    let path = std::env::var("KVSINFER_BENCH_IMAGE").unwrap_or_else(|_| {
        let cache = std::env::var("XDG_CACHE_HOME")
            .unwrap_or_else(|_| format!("{}/.cache", std::env::var("HOME").unwrap_or_default()));
        format!("{cache}/{DEFAULT_IMAGE}")
    });
    let frames = std::env::var("KVSINFER_BENCH_FRAMES")
        .ok()
        .and_then(|frames| frames.parse().ok())
        .unwrap_or(DEFAULT_FRAMES);

    let rgb = load_frame(&path, "RGB")?;
    // What videoconvert makes of an RGB picture: limited range, which jpegenc writes as it is
    // (JPEG viewers then show it washed out) and ours stretches to JPEG's full range.
    let limited = load_frame(&path, "I420")?;
    // Full-range BT.601, JPEG's own colours: both encoders see the very same samples.
    let full = load_frame(&path, "I420,colorimetry=(string)1:4:0:0")?;
    let jpegenc = format!("jpegenc quality={QUALITY}");
    let convert_and_encode =
        format!("videoconvert n-threads=1 ! video/x-raw,format=I420 ! {jpegenc}");

    type Case<'a> = (String, Box<dyn Fn() -> BenchResult<f64> + 'a>);
    let range = |frame: &Frame| match frame.info.colorimetry().range() {
        gst_video::VideoColorRange::Range0_255 => "full range",
        _ => "limited range",
    };
    let cases: Vec<Case> = vec![
        (
            "(a) ours, RGB, 10 labelled boxes".into(),
            Box::new(|| ours(&rgb, frames)),
        ),
        (
            "    videoconvert ! I420 ! jpegenc, RGB".into(),
            Box::new(|| gstreamer(&rgb, &convert_and_encode, frames)),
        ),
        (
            format!("(b) ours, I420 {}, 10 labelled boxes", range(&limited)),
            Box::new(|| ours(&limited, frames)),
        ),
        (
            format!("    jpegenc, I420 {}", range(&limited)),
            Box::new(|| gstreamer(&limited, &jpegenc, frames)),
        ),
        (
            format!("(b') ours, I420 {}, 10 labelled boxes", range(&full)),
            Box::new(|| ours(&full, frames)),
        ),
        (
            format!("     jpegenc, I420 {}", range(&full)),
            Box::new(|| gstreamer(&full, &jpegenc, frames)),
        ),
        (
            "(d) libjpeg-turbo alone, I420 full range, no boxes".into(),
            Box::new(|| bare_libjpeg_turbo_i420(&full, frames)),
        ),
        (
            "(c) libjpeg-turbo alone, RGB, 4:2:0, no boxes".into(),
            Box::new(|| bare_libjpeg_turbo(&rgb, frames)),
        ),
    ];

    let mut rates = vec![Vec::new(); cases.len()];
    for _ in 0..ROUNDS {
        for ((_, measure), rates) in cases.iter().zip(&mut rates) {
            rates.push(measure()?);
        }
    }
    let fps: Vec<f64> = rates.into_iter().map(median).collect();

    println!(
        "{WIDTH}x{HEIGHT} {path}, quality {QUALITY}, one thread per case, \
         median of {ROUNDS} rounds of {frames} frames"
    );
    println!("{:<52} {:>8} {:>14}", "case", "fps", "ours / theirs");
    for (index, ((name, _), rate)) in cases.iter().zip(&fps).enumerate() {
        // Each "ours" row is followed by the GStreamer row it is compared with.
        let ratio = match fps.get(index + 1) {
            Some(theirs) if name.contains("ours") => format!("{:.2}x", rate / theirs),
            _ => String::new(),
        };
        println!("{name:<52} {rate:>8.1} {ratio:>14}");
    }
    if let (Some(ours_rgb), Some(bare)) = (fps.first(), fps.last()) {
        println!("(a) ours relative to (c): {:.2}x", ours_rgb / bare);
    }
    Ok(())
}
