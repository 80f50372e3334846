// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! What the integration tests share: plugin registration, reading `events.jsonl` back, running
//! a launch line to EOS, and the real media fetched by the test command.

#![allow(dead_code)]

pub mod aws;
pub mod proxy;

#[allow(unused_imports)]
pub use aws::*;

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use gst::prelude::*;
use serde_json::Value;

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstkvsinfer::plugin_register_static().expect("kvsinfer plugin registers");
    });
}

pub fn events_file(dir: &Path) -> PathBuf {
    dir.join("events.jsonl")
}

pub fn read_events(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(events_file(dir)).unwrap_or_default();
    text.lines()
        .map(|line| serde_json::from_str(line).expect("every line is whole JSON"))
        .collect()
}

/// Runs a gst-launch line to EOS within `timeout`; returns the warnings it posted.
pub fn run_to_eos(line: &str, timeout: Duration) -> Vec<String> {
    init();
    let pipeline = gst::parse::launch(line)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();

    let bus = pipeline.bus().unwrap();
    let mut warnings = Vec::new();
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::from_nseconds(left.as_nanos() as u64),
                &[
                    gst::MessageType::Eos,
                    gst::MessageType::Error,
                    gst::MessageType::Warning,
                ],
            )
            .unwrap_or_else(|| panic!("{line}: no EOS within {timeout:?}"));
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(err) => {
                pipeline.set_state(gst::State::Null).unwrap();
                panic!("{line}: {} ({:?})", err.error(), err.debug());
            }
            gst::MessageView::Warning(w) => warnings.push(w.error().to_string()),
            _ => (),
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    warnings
}

/// The media cache the test command fills (`KVSINFER_CACHE`, else `~/.cache/kvsinfer`).
pub fn media_cache() -> PathBuf {
    if let Some(cache) = std::env::var_os("KVSINFER_CACHE") {
        return PathBuf::from(cache).join("media");
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
    base.join("kvsinfer").join("media")
}

/// A file of the media cache; fails, naming the command that fetches it, when it is missing.
pub fn media(name: &str) -> PathBuf {
    let path = media_cache().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/test.sh`, which fetches it",
        path.display()
    );
    path
}

/// scikit-image's astronaut.png (public domain, NASA).
pub fn astronaut() -> PathBuf {
    media("astronaut.png")
}

/// OpenCV's facedetect on one frame of the astronaut photo, into `kvsinfersink` writing to `out`.
pub fn facedetect_on_astronaut(out: &Path) {
    run_to_eos(
        &format!(
            "filesrc location={} ! pngdec ! imagefreeze num-buffers=1 ! videoconvert \
             ! facedetect display=false ! kvsinfersink camera-id=astronaut output-dir={}",
            astronaut().display(),
            out.display()
        ),
        Duration::from_secs(30),
    );
}
