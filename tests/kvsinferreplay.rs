// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `kvsinferreplay` in front of `kvsinfersink`: recorded detections in, the same detections out
//! as events.

use std::time::Duration;

use gst::prelude::*;
use serde_json::{Value, json};

mod common;
use common::{init, read_events, run_to_eos};

/// Replays `script` over `frames` test frames into a fresh directory; returns the payloads
/// written and the warnings posted.
fn replay(script: &str, frames: u32) -> (Vec<Value>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("detections.jsonl");
    std::fs::write(&file, script).unwrap();

    // dedup-window=1: every frame's detections are events of their own.
    let warnings = run_to_eos(
        &format!(
            "videotestsrc num-buffers={frames} ! video/x-raw,width=640,height=480,framerate=10/1 \
             ! kvsinferreplay location={} ! kvsinfersink camera-id=replay dedup-window=1 \
             output-dir={}",
            file.display(),
            dir.path().join("out").display()
        ),
        Duration::from_secs(20),
    );
    let payloads = read_events(&dir.path().join("out"))
        .into_iter()
        .map(|mut event| {
            // Times depend on when the test ran; spacing is checked separately.
            event["payload"]["ts_ms"] = json!(0);
            event["payload"].take()
        })
        .collect();
    (payloads, warnings)
}

const SCENARIO: &str = r#"{"frame": 0, "detections": [{"label": "knife", "type": "weapon", "conf": 0.87, "bbox": [100, 200, 50, 75], "extras": {}}]}
{"frame": 2, "detections": [{"label": "fire", "conf": 0.91, "bbox": [10, 10, 200, 100]}, {"label": "smoke", "conf": 0.6, "bbox": [0, 0, 640, 120]}]}
{"pts_ms": 300, "detections": [{"label": "plate", "type": "alpr", "conf": 0.95, "bbox": [300, 400, 120, 40], "extras": {"text": "ABC1234", "ocr_conf": 0.92, "lane": 2}}]}
"#;

#[test]
fn recorded_detections_become_the_same_events() {
    let (payloads, warnings) = replay(SCENARIO, 5);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        payloads,
        [
            json!({"ts_ms": 0, "type": "weapon", "label": "knife", "conf": 0.87,
                   "bbox": [100, 200, 50, 75], "extras": {}}),
            json!({"ts_ms": 0, "type": "fire", "label": "fire", "conf": 0.91,
                   "bbox": [10, 10, 200, 100], "extras": {}}),
            json!({"ts_ms": 0, "type": "smoke", "label": "smoke", "conf": 0.6,
                   "bbox": [0, 0, 640, 120], "extras": {}}),
            json!({"ts_ms": 0, "type": "alpr", "label": "plate", "conf": 0.95,
                   "bbox": [300, 400, 120, 40],
                   "extras": {"text": "ABC1234", "ocr_conf": 0.92, "lane": 2}}),
        ]
    );
}

#[test]
fn bad_lines_are_named_and_skipped_and_the_rest_applied() {
    let script = "{\"frame\": 0, \"detections\": [{\"label\": \"gun\", \"bbox\": [1, 1, 5, 5]}]}\n\
                  {\"frame\": 1, \"detections\": [{\"label\": \"gun\", \"bbox\": [-4, 1, 5, 5]}]}\n\
                  {\"frame\": 2, \"detections\": [{\"bbox\": [1, 1, 5, 5]}]}\n\
                  {not json\n\
                  {\"frame\": 3, \"detections\": [{\"label\": \"rifle\", \"bbox\": [2, 2, 5, 5]}]}\n";
    let (payloads, warnings) = replay(script, 5);

    let labels: Vec<&Value> = payloads.iter().map(|p| &p["label"]).collect();
    assert_eq!(labels, [&json!("gun"), &json!("rifle")]);
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    for (warning, line) in warnings.iter().zip([2, 3, 4]) {
        assert!(
            warning.contains(&format!("detections.jsonl:{line}: line skipped")),
            "{warning}"
        );
    }
    assert!(warnings[0].contains("negative"), "{}", warnings[0]);
    assert!(
        warnings[1].contains("missing field `label`"),
        "{}",
        warnings[1]
    );
}

#[test]
fn missing_file_fails_start_naming_it() {
    init();
    let replay = gst::ElementFactory::make("kvsinferreplay")
        .property("location", "/nonexistent/detections.jsonl")
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    replay.set_bus(Some(&bus));
    assert!(replay.set_state(gst::State::Paused).is_err());

    let msg = bus.pop_filtered(&[gst::MessageType::Error]).unwrap();
    let gst::MessageView::Error(err) = msg.view() else {
        unreachable!()
    };
    assert!(
        err.error()
            .to_string()
            .contains("Cannot read replay file '/nonexistent/detections.jsonl'"),
        "{}",
        err.error()
    );
    replay.set_state(gst::State::Null).unwrap();
}
