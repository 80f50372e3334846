// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The whole element with a snapshot on every frame, against GStreamer's single-threaded JPEG
//! pipeline on the same frames.
//!
//! Run with `cargo bench --bench element`. Frames are scikit-image's astronaut photo (the test
//! command's cached copy, or `KVSINFER_BENCH_IMAGE`) scaled to 1920x1080 RGB, each with 10
//! labelled boxes replayed by `kvsinferreplay`. The element is fed at `KVSINFER_BENCH_FPS` frames
//! per second (default 180, paced by the clock); its encoder pool drops what it cannot take, so
//! the snapshots it encodes per second, and how many it dropped, say what it sustains.

use std::time::{Duration, Instant};

use gst::prelude::*;

const FRAMES: u32 = 600;
const BOXES: u32 = 10;

fn image() -> String {
    std::env::var("KVSINFER_BENCH_IMAGE").unwrap_or_else(|_| {
        let cache = std::env::var("XDG_CACHE_HOME")
            .unwrap_or_else(|_| format!("{}/.cache", std::env::var("HOME").unwrap_or_default()));
        format!("{cache}/kvsinfer/media/astronaut.png")
    })
}

/// The photo as FRAMES frames of 1920x1080 RGB at `fps`, paced by the clock.
fn paced_source(fps: u32) -> String {
    format!(
        "filesrc location={} ! pngdec ! videoconvert ! videoscale \
         ! video/x-raw,format=RGB,width=1920,height=1080 ! imagefreeze num-buffers={FRAMES} \
         ! video/x-raw,framerate={fps}/1 ! identity sync=true",
        image()
    )
}

/// The same frames as fast as the pipeline takes them.
fn source() -> String {
    format!(
        "filesrc location={} ! pngdec ! videoconvert ! videoscale \
         ! video/x-raw,format=RGB,width=1920,height=1080 ! imagefreeze num-buffers={FRAMES}",
        image()
    )
}

/// Runs `line` to EOS; returns the wall time.
fn run(line: &str) -> Result<(gst::Pipeline, Duration), String> {
    let pipeline = gst::parse::launch(line)
        .map_err(|err| format!("{line}: {err}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
    let started = Instant::now();
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|err| format!("{line}: {err}"))?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(600),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .ok_or("no EOS within 10 minutes")?;
    let elapsed = started.elapsed();
    if let gst::MessageView::Error(err) = msg.view() {
        return Err(format!("{line}: {}", err.error()));
    }
    pipeline
        .set_state(gst::State::Null)
        .map_err(|err| format!("{line}: {err}"))?;
    Ok((pipeline, elapsed))
}

fn main() -> Result<(), String> {
    gst::init().map_err(|err| err.to_string())?;
    gstkvsinfer::plugin_register_static().map_err(|err| err.to_string())?;

    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .map_err(|err| err.to_string())?;
    let script = dir.path().join("boxes.jsonl");
    let mut lines = String::new();
    for frame in 0..FRAMES {
        let boxes: Vec<String> = (0..BOXES)
            .map(|i| {
                format!(
                    r#"{{"label": "object{i}", "conf": 0.87, "bbox": [{}, {}, 160, 120]}}"#,
                    100 + i * 170,
                    200 + (i % 3) * 250
                )
            })
            .collect();
        lines.push_str(&format!(
            r#"{{"frame": {frame}, "detections": [{}]}}"#,
            boxes.join(",")
        ));
        lines.push('\n');
    }
    std::fs::write(&script, lines).map_err(|err| err.to_string())?;

    let fps = std::env::var("KVSINFER_BENCH_FPS")
        .ok()
        .and_then(|fps| fps.parse().ok())
        .unwrap_or(180);
    // The element: every frame is new events (1 ms dedup window) and due a snapshot.
    let (pipeline, ours) = run(&format!(
        "{} ! kvsinferreplay location={} ! kvsinfersink name=sink camera-id=bench \
         dedup-window=1 snapshot-interval=0 output-dir={}",
        paced_source(fps),
        script.display(),
        dir.path().join("out").display()
    ))?;
    let stats = pipeline
        .by_name("sink")
        .ok_or("no sink")?
        .property::<gst::Structure>("stats");
    let encoded = stats.get::<u64>("snapshots-encoded").unwrap_or(0);
    let dropped = stats.get::<u64>("snapshots-dropped").unwrap_or(0);
    let ours_rate = encoded as f64 / ours.as_secs_f64();

    let (_, theirs_rgb) = run(&format!(
        "{} ! videoconvert n-threads=1 ! video/x-raw,format=I420 ! jpegenc quality=90 ! fakesink",
        source()
    ))?;
    let rgb_rate = f64::from(FRAMES) / theirs_rgb.as_secs_f64();

    println!("| path | snapshots/s | ratio |");
    println!("|---|---|---|");
    println!(
        "| kvsinfersink fed {fps} frames/s, snapshot on every frame, {BOXES} boxes ({encoded} encoded, {dropped} dropped) | {ours_rate:.1} | {:.2}x |",
        ours_rate / rgb_rate
    );
    println!("| videoconvert n-threads=1 ! I420 ! jpegenc, no boxes | {rgb_rate:.1} | |");
    println!(
        "\nEncoder threads: {}; the element's rate includes the source's decode and scale.",
        gstkvsinfer::snapshot::EncoderPool::global().threads()
    );
    Ok(())
}
