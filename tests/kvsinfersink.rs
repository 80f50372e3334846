// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `kvsinfersink` driven through gst-check harnesses and real pipelines: region-of-interest
//! metadata in, exact envelopes read back from `events.jsonl` out.

use std::path::Path;
use std::time::Duration;

use gst::prelude::*;
use gst_check::Harness;
use gst_video::VideoRegionOfInterestMeta;
use serde_json::{Value, json};

mod common;
use common::{events_file, facedetect_on_astronaut, init, read_events, run_to_eos};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;
const PRODUCER: &str = concat!("kvs-infer/", env!("CARGO_PKG_VERSION"));

/// One region of interest as a detector would attach it.
#[derive(Clone)]
struct Roi {
    label: &'static str,
    rect: (u32, u32, u32, u32),
    params: Vec<gst::Structure>,
}

fn roi(label: &'static str, rect: (u32, u32, u32, u32)) -> Roi {
    Roi {
        label,
        rect,
        params: Vec::new(),
    }
}

fn with_confidence(mut roi: Roi, confidence: f64) -> Roi {
    roi.params.push(
        gst::Structure::builder("detection")
            .field("confidence", confidence)
            .build(),
    );
    roi
}

fn frame(rois: &[Roi], unix_ms: Option<u64>, pts: gst::ClockTime) -> gst::Buffer {
    frame_of_size(rois, unix_ms, pts, (WIDTH * HEIGHT * 3) as usize)
}

fn frame_of_size(
    rois: &[Roi],
    unix_ms: Option<u64>,
    pts: gst::ClockTime,
    size: usize,
) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_mut_slice(vec![0u8; size]);
    {
        let buffer = buffer.get_mut().unwrap();
        buffer.set_pts(pts);
        for roi in rois {
            let mut meta = VideoRegionOfInterestMeta::add(buffer, roi.label, roi.rect);
            for param in &roi.params {
                meta.add_param(param.clone());
            }
        }
        if let Some(ms) = unix_ms {
            let caps = gst::Caps::new_empty_simple("timestamp/x-unix");
            gst::ReferenceTimestampMeta::add(
                buffer,
                &caps,
                gst::ClockTime::from_mseconds(ms),
                None,
            );
        }
    }
    buffer
}

fn sink(camera_id: &str, dir: &Path) -> gst::Element {
    init();
    gst::ElementFactory::make("kvsinfersink")
        .property("camera-id", camera_id)
        .property("output-dir", dir.to_str().unwrap())
        .build()
        .unwrap()
}

/// A playing harness around `sink`, with a bus to read its warnings from.
fn harness(sink: &gst::Element) -> (Harness, gst::Bus) {
    let bus = gst::Bus::new();
    sink.set_bus(Some(&bus));
    let mut h = Harness::with_element(sink, Some("sink"), None);
    h.set_src_caps_str(&format!(
        "video/x-raw,format=RGB,width={WIDTH},height={HEIGHT},framerate=30/1"
    ));
    h.play();
    (h, bus)
}

fn finish(mut h: Harness) {
    assert!(h.push_event(gst::event::Eos::new()));
    h.element().unwrap().set_state(gst::State::Null).unwrap();
}

fn warnings(bus: &gst::Bus) -> Vec<String> {
    std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Warning]))
        .filter_map(|msg| match msg.view() {
            gst::MessageView::Warning(w) => Some(w.error().to_string()),
            _ => None,
        })
        .collect()
}

fn stat(element: &gst::Element, path: &[&str]) -> u64 {
    let mut s = element.property::<gst::Structure>("stats");
    for field in &path[..path.len() - 1] {
        s = s.get::<gst::Structure>(*field).unwrap();
    }
    s.get::<u64>(path[path.len() - 1]).unwrap()
}

/// Pushes one frame carrying `rois` and returns the events written and the warnings posted.
fn run_frame(rois: &[Roi]) -> (Vec<Value>, Vec<String>, gst::Element) {
    let dir = tempfile::tempdir().unwrap();
    let element = sink("cam1", dir.path());
    let (mut h, bus) = harness(&element);
    h.push(frame(rois, Some(1_000_000), gst::ClockTime::ZERO))
        .unwrap();
    finish(h);
    (read_events(dir.path()), warnings(&bus), element)
}

#[test]
fn envelope_is_exactly_the_seed_format() {
    let dir = tempfile::tempdir().unwrap();
    let element = sink("camera_1", dir.path());
    let (mut h, _bus) = harness(&element);

    let mut knife = roi("knife", (100, 200, 50, 75));
    knife.params.push(
        gst::Structure::builder("detection")
            .field("confidence", 0.87f32)
            .field("label_id", 43i32)
            .build(),
    );
    h.push(frame(
        &[knife],
        Some(1_697_123_456_789),
        gst::ClockTime::ZERO,
    ))
    .unwrap();
    finish(h);

    let text = std::fs::read_to_string(events_file(dir.path())).unwrap();
    assert_eq!(
        text,
        format!(
            "{{\"event_id\":\"942cbd38eeb0cada50bcc22efdaeeb0f342dbb49\",\"camera_id\":\"camera_1\",\
             \"producer\":\"{PRODUCER}\",\"payload\":{{\"ts_ms\":1697123456789,\"type\":\"weapon\",\
             \"label\":\"knife\",\"conf\":0.87,\"bbox\":[100,200,50,75],\
             \"extras\":{{\"label_id\":43}}}},\
             \"snapshot\":{{\"key\":\"snapshots/camera_1/1697123456789.jpg\"}}}}\n"
        )
    );
    assert!(
        dir.path()
            .join("snapshots/camera_1/1697123456789.jpg")
            .exists()
    );
}

#[test]
fn every_input_contract_structure_lands_in_the_envelope() {
    let mut plate = roi("car", (10, 20, 100, 40));
    plate.params = vec![
        gst::Structure::builder("object_id")
            .field("id", 7i32)
            .build(),
        gst::Structure::builder("license_plate")
            .field("label", "ABC1234")
            .field("confidence", 0.92f64)
            .build(),
    ];
    let mut hazard = roi("smoke", (0, 0, 10, 10));
    hazard.params = vec![
        gst::Structure::builder("kvsinfer")
            .field("type", "hazard")
            .field("zone", "dock")
            .build(),
        gst::Structure::builder("vehicle_color")
            .field("label", "red")
            .field("confidence", 0.5f64)
            .build(),
    ];
    let mut normalized = roi("person", (0, 0, 0, 0));
    normalized.params = vec![
        gst::Structure::builder("detection")
            .field("confidence", 0.75f64)
            .field("x_min", 0.5f64)
            .field("y_min", 0.25f64)
            .field("x_max", 0.75f64)
            .field("y_max", 0.5f64)
            .build(),
    ];

    let (events, warnings, _) = run_frame(&[plate, hazard, normalized]);
    assert!(warnings.is_empty(), "{warnings:?}");
    let payloads: Vec<&Value> = events.iter().map(|e| &e["payload"]).collect();
    assert_eq!(
        payloads,
        [
            &json!({"ts_ms": 1_000_000, "type": "alpr", "label": "car", "conf": 1.0,
                    "bbox": [10, 20, 100, 40],
                    "extras": {"track_id": 7, "text": "ABC1234", "ocr_conf": 0.92}}),
            &json!({"ts_ms": 1_000_000, "type": "hazard", "label": "smoke", "conf": 1.0,
                    "bbox": [0, 0, 10, 10],
                    "extras": {"zone": "dock",
                               "vehicle_color": {"label": "red", "confidence": 0.5}}}),
            &json!({"ts_ms": 1_000_000, "type": "person", "label": "person", "conf": 0.75,
                    "bbox": [320, 120, 160, 120], "extras": {}}),
        ]
    );
}

#[test]
fn one_object_on_thirty_frames_in_a_second_is_one_event() {
    let dir = tempfile::tempdir().unwrap();
    let element = sink("cam1", dir.path());
    let (mut h, _bus) = harness(&element);

    // 30 fps from Unix 10.000 s: frames 0..29 share one window, frame 30 opens the next.
    for i in 0..31u64 {
        let ms = 10_000 + i * 1000 / 30;
        h.push(frame(
            &[roi("knife", (5, 5, 10, 10))],
            Some(ms),
            gst::ClockTime::ZERO,
        ))
        .unwrap();
    }
    finish(h);

    let events = read_events(dir.path());
    let times: Vec<&Value> = events.iter().map(|e| &e["payload"]["ts_ms"]).collect();
    assert_eq!(times, [&json!(10_000), &json!(11_000)]);
    assert_eq!(stat(&element, &["events"]), 2);
    assert_eq!(stat(&element, &["suppressed"]), 29);
    assert_eq!(stat(&element, &["frames"]), 31);
    assert_eq!(stat(&element, &["file", "delivered"]), 2);
    assert_eq!(stat(&element, &["file", "pending"]), 0);
}

#[test]
fn without_reference_timestamps_events_keep_media_spacing() {
    let dir = tempfile::tempdir().unwrap();
    let element = sink("cam1", dir.path());
    let (mut h, _bus) = harness(&element);

    let before = now_ms();
    for pts_ms in [0u64, 1500, 4000] {
        let pts = gst::ClockTime::from_mseconds(pts_ms);
        h.push(frame(&[roi("dog", (1, 1, 5, 5))], None, pts))
            .unwrap();
    }
    finish(h);

    let times: Vec<u64> = read_events(dir.path())
        .iter()
        .map(|e| e["payload"]["ts_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(times.len(), 3);
    assert!(times[0] >= before && times[0] <= now_ms(), "{times:?}");
    assert_eq!([times[1] - times[0], times[2] - times[0]], [1500, 4000]);
}

#[test]
fn wallclock_mode_uses_the_time_of_arrival() {
    let dir = tempfile::tempdir().unwrap();
    let element = sink("cam1", dir.path());
    element.set_property_from_str("timestamp-mode", "wallclock");
    let (mut h, _bus) = harness(&element);

    let before = now_ms();
    h.push(frame(
        &[roi("dog", (1, 1, 5, 5))],
        Some(5),
        gst::ClockTime::ZERO,
    ))
    .unwrap();
    let after = now_ms();
    finish(h);

    let ts = read_events(dir.path())[0]["payload"]["ts_ms"]
        .as_u64()
        .unwrap();
    assert!(
        (before..=after).contains(&ts),
        "{before} <= {ts} <= {after}"
    );
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// One bad region next to a good one: the bad one is skipped with a warning naming the problem,
/// the good one is delivered, and the reason is counted.
fn bad_region_is_skipped(bad: Roi, reason: &str, warning_says: &str) {
    let good = roi("face", (10, 10, 20, 20));
    let (events, warnings, element) = run_frame(&[bad, good]);

    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["payload"]["label"], "face");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains(warning_says), "{warnings:?}");
    assert_eq!(stat(&element, &["rejected-by-reason", reason]), 1);
}

#[test]
fn nan_confidence_is_skipped() {
    let bad = with_confidence(roi("knife", (1, 1, 5, 5)), f64::NAN);
    bad_region_is_skipped(bad, "non-finite-confidence", "NaN or infinite");
}

#[test]
fn infinite_confidence_is_skipped() {
    let bad = with_confidence(roi("knife", (1, 1, 5, 5)), f64::NEG_INFINITY);
    bad_region_is_skipped(bad, "non-finite-confidence", "NaN or infinite");
}

#[test]
fn confidence_above_one_is_skipped() {
    let bad = with_confidence(roi("knife", (1, 1, 5, 5)), 1.5);
    bad_region_is_skipped(bad, "confidence-out-of-range", "1.5 is outside 0..1");
}

#[test]
fn negative_confidence_is_skipped() {
    let bad = with_confidence(roi("knife", (1, 1, 5, 5)), -0.2);
    bad_region_is_skipped(bad, "confidence-out-of-range", "-0.2 is outside 0..1");
}

#[test]
fn zero_sized_box_is_skipped() {
    bad_region_is_skipped(
        roi("knife", (5, 5, 0, 7)),
        "empty-box",
        "zero width or height",
    );
}

#[test]
fn box_overflowing_u32_is_skipped() {
    let bad = roi("knife", (u32::MAX - 3, 0, 10, 10));
    bad_region_is_skipped(bad, "overflowing-box", "overflows");
}

#[test]
fn negative_normalized_box_is_skipped() {
    let mut bad = roi("knife", (0, 0, 0, 0));
    bad.params.push(
        gst::Structure::builder("detection")
            .field("x_min", -0.5f64)
            .field("y_min", -0.5f64)
            .field("x_max", -0.1f64)
            .field("y_max", -0.1f64)
            .build(),
    );
    bad_region_is_skipped(bad, "outside-frame", "wholly outside");
}

#[test]
fn box_wholly_outside_the_frame_is_skipped() {
    bad_region_is_skipped(
        roi("knife", (WIDTH, 10, 5, 5)),
        "outside-frame",
        "wholly outside",
    );
}

#[test]
fn detection_field_of_the_wrong_type_is_skipped() {
    let mut bad = roi("knife", (1, 1, 5, 5));
    bad.params.push(
        gst::Structure::builder("detection")
            .field("confidence", "very")
            .build(),
    );
    bad_region_is_skipped(
        bad,
        "wrong-field-type",
        "'detection.confidence' has type gchararray",
    );
}

#[test]
fn box_partly_outside_the_frame_is_clipped() {
    let (events, warnings, _) = run_frame(&[roi("knife", (600, 400, 100, 200))]);
    assert!(warnings.is_empty());
    assert_eq!(events[0]["payload"]["bbox"], json!([600, 400, 40, 80]));
}

#[test]
fn awkward_labels_are_kept_verbatim() {
    let labels = [
        "../etc/passwd",
        "a/b",
        "two words",
        "tab\there\u{1}",
        "couteau-é-刀",
    ];
    let rois: Vec<Roi> = labels.iter().map(|l| roi(l, (1, 1, 5, 5))).collect();
    let (events, warnings, _) = run_frame(&rois);

    assert!(warnings.is_empty());
    let got: Vec<&str> = events
        .iter()
        .map(|e| e["payload"]["label"].as_str().unwrap())
        .collect();
    assert_eq!(got, labels);
}

#[test]
fn buffer_without_metadata_is_nothing_to_do() {
    let (events, warnings, element) = run_frame(&[]);
    assert!(events.is_empty() && warnings.is_empty());
    assert_eq!(stat(&element, &["frames"]), 1);
}

#[test]
fn caps_changing_size_mid_stream_judges_boxes_by_the_new_size() {
    let dir = tempfile::tempdir().unwrap();
    let element = sink("cam1", dir.path());
    let (mut h, bus) = harness(&element);

    let wide = roi("car", (300, 10, 100, 10));
    h.push(frame(
        std::slice::from_ref(&wide),
        Some(1000),
        gst::ClockTime::ZERO,
    ))
    .unwrap();
    h.set_src_caps_str("video/x-raw,format=GRAY8,width=320,height=240,framerate=30/1");
    h.push(frame_of_size(
        &[wide],
        Some(2000),
        gst::ClockTime::ZERO,
        320 * 240,
    ))
    .unwrap();
    finish(h);

    let boxes: Vec<Value> = read_events(dir.path())
        .iter()
        .map(|e| e["payload"]["bbox"].clone())
        .collect();
    assert_eq!(boxes, [json!([300, 10, 100, 10]), json!([300, 10, 20, 10])]);
    assert!(warnings(&bus).is_empty());
}

#[test]
fn filters_and_type_map_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let element = sink("cam1", dir.path());
    element.set_property("min-confidence", 0.5f64);
    element.set_property("labels", "knife,flame");
    element.set_property("type-map", "flame:fire");
    let (mut h, bus) = harness(&element);

    let rois = [
        with_confidence(roi("knife", (1, 1, 5, 5)), 0.4),
        with_confidence(roi("flame", (1, 1, 5, 5)), 0.9),
        roi("face", (1, 1, 5, 5)),
    ];
    h.push(frame(&rois, Some(1000), gst::ClockTime::ZERO))
        .unwrap();
    finish(h);

    let events = read_events(dir.path());
    assert_eq!(events.len(), 1);
    // The type-map property replaces the default map: knife would now be its own type.
    assert_eq!(events[0]["payload"]["type"], "fire");
    assert_eq!(
        stat(&element, &["rejected-by-reason", "below-min-confidence"]),
        1
    );
    assert_eq!(
        stat(&element, &["rejected-by-reason", "label-not-allowed"]),
        1
    );
    // Filters the user asked for are not warnings.
    assert!(warnings(&bus).is_empty());
}

#[test]
fn producer_and_dedup_window_properties_shape_the_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let element = sink("camera_1", dir.path());
    element.set_property("producer", "site-7");
    element.set_property("dedup-window", 10_000u32);
    let (mut h, _bus) = harness(&element);

    for ms in [1_697_123_456_789u64, 1_697_123_459_999] {
        h.push(frame(
            &[roi("knife", (1, 1, 5, 5))],
            Some(ms),
            gst::ClockTime::ZERO,
        ))
        .unwrap();
    }
    finish(h);

    let events = read_events(dir.path());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["producer"], "site-7");
    let bucket = "1697123450000";
    let expected = sha1_hex(&format!("camera_1:weapon:knife:{bucket}"));
    assert_eq!(events[0]["event_id"], expected.as_str());
}

fn sha1_hex(text: &str) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn restart_appends_to_the_events_file() {
    let dir = tempfile::tempdir().unwrap();
    for ms in [1000u64, 5000] {
        let element = sink("cam1", dir.path());
        let (mut h, _bus) = harness(&element);
        h.push(frame(
            &[roi("dog", (1, 1, 5, 5))],
            Some(ms),
            gst::ClockTime::ZERO,
        ))
        .unwrap();
        finish(h);
    }
    let times: Vec<Value> = read_events(dir.path())
        .iter()
        .map(|e| e["payload"]["ts_ms"].clone())
        .collect();
    assert_eq!(times, [json!(1000), json!(5000)]);
}

#[test]
fn post_messages_announces_each_delivered_event() {
    let dir = tempfile::tempdir().unwrap();
    let element = sink("camera_1", dir.path());
    element.set_property("post-messages", true);
    let (mut h, bus) = harness(&element);

    let knife = with_confidence(roi("knife", (100, 200, 50, 75)), 0.87);
    h.push(frame(
        &[knife],
        Some(1_697_123_456_789),
        gst::ClockTime::ZERO,
    ))
    .unwrap();
    finish(h);

    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(5),
            &[gst::MessageType::Element],
        )
        .expect("a kvsinfer-event message");
    let s = msg.structure().unwrap();
    assert_eq!(s.name(), "kvsinfer-event");
    assert_eq!(
        s.get::<&str>("event-id").unwrap(),
        "942cbd38eeb0cada50bcc22efdaeeb0f342dbb49"
    );
    assert_eq!(s.get::<&str>("type").unwrap(), "weapon");
    assert_eq!(s.get::<&str>("label").unwrap(), "knife");
    assert_eq!(s.get::<f64>("conf").unwrap(), 0.87);
    let bbox: Vec<u32> = s
        .get::<gst::Array>("bbox")
        .unwrap()
        .iter()
        .map(|v| v.get::<u32>().unwrap())
        .collect();
    assert_eq!(bbox, [100, 200, 50, 75]);
}

/// Starting `element` fails, with an error message on the bus that contains `says`.
fn start_fails_saying(element: &gst::Element, says: &str) {
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    assert!(element.set_state(gst::State::Paused).is_err());

    let msg = bus
        .pop_filtered(&[gst::MessageType::Error])
        .expect("an error message");
    let gst::MessageView::Error(err) = msg.view() else {
        unreachable!()
    };
    assert!(err.error().to_string().contains(says), "{}", err.error());
    element.set_state(gst::State::Null).unwrap();
}

#[test]
fn missing_camera_id_fails_start_naming_the_property() {
    init();
    let element = gst::ElementFactory::make("kvsinfersink")
        .property("output-dir", "/tmp")
        .build()
        .unwrap();
    start_fails_saying(&element, "Property 'camera-id' is required");
}

#[test]
fn unsafe_camera_ids_fail_start() {
    let dir = tempfile::tempdir().unwrap();
    for (camera_id, says) in [
        ("../up", "contains '/'"),
        ("lobby cam", "contains ' '"),
        ("..", "not a usable key segment"),
        ("caméra", "contains 'é'"),
    ] {
        start_fails_saying(&sink(camera_id, dir.path()), says);
    }
    let long = "c".repeat(129);
    start_fails_saying(&sink(&long, dir.path()), "129 bytes long");
}

#[test]
fn unwritable_output_dir_fails_start_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let target = blocker.join("events");
    start_fails_saying(&sink("cam1", &target), target.to_str().unwrap());
}

#[test]
fn no_destination_fails_start_listing_the_properties() {
    init();
    let element = gst::ElementFactory::make("kvsinfersink")
        .property("camera-id", "cam1")
        .build()
        .unwrap();
    start_fails_saying(
        &element,
        "No destination configured: set at least one of 'output-dir' (local directory), \
         'kinesis-stream', 's3-bucket' or 'dynamodb-table'",
    );
}

#[test]
fn invalid_type_map_fails_start() {
    let dir = tempfile::tempdir().unwrap();
    let element = sink("cam1", dir.path());
    element.set_property("type-map", "knife=weapon");
    start_fails_saying(&element, "Property 'type-map' is invalid");
}

#[test]
fn videotestsrc_pipeline_runs_to_eos() {
    let dir = tempfile::tempdir().unwrap();
    run_to_eos(
        &format!(
            "videotestsrc num-buffers=10 ! kvsinfersink camera-id=cam1 output-dir={}",
            dir.path().display()
        ),
        Duration::from_secs(10),
    );
    assert!(events_file(dir.path()).exists());
    assert!(read_events(dir.path()).is_empty());
}

#[test]
fn facedetect_on_a_real_photo_yields_a_face_event() {
    let dir = tempfile::tempdir().unwrap();
    facedetect_on_astronaut(dir.path());

    let events = read_events(dir.path());
    assert_eq!(events.len(), 1, "{events:?}");
    let payload = &events[0]["payload"];
    assert_eq!(payload["type"], "face");
    assert_eq!(payload["conf"], 1.0);
    let bbox: Vec<u64> = payload["bbox"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    // facedetect finds the face at about x 175, y 64, 97 x 97; the face's centre is near
    // (223, 112) in the 512 x 512 photo.
    let (cx, cy) = (bbox[0] + bbox[2] / 2, bbox[1] + bbox[3] / 2);
    assert!(
        (200..250).contains(&cx) && (90..140).contains(&cy),
        "{bbox:?}"
    );
    assert!((70..130).contains(&bbox[2]), "{bbox:?}");
}

#[test]
fn warnings_held_back_by_the_rate_limit_are_counted_at_eos() {
    let dir = tempfile::tempdir().unwrap();
    let element = sink("cam1", dir.path());
    let (mut h, bus) = harness(&element);
    for i in 0..30u64 {
        let bad = with_confidence(roi("knife", (1, 1, 5, 5)), f64::NAN);
        h.push(frame(&[bad], Some(1000 + i * 33), gst::ClockTime::ZERO))
            .unwrap();
    }
    finish(h);

    let warnings = warnings(&bus);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("NaN or infinite"), "{warnings:?}");
    assert!(
        warnings[1].contains("held back") && warnings[1].contains("29 non-finite-confidence"),
        "{warnings:?}"
    );
}

#[test]
fn empty_output_dir_fails_start() {
    init();
    let element = gst::ElementFactory::make("kvsinfersink")
        .property("camera-id", "cam1")
        .property("output-dir", "")
        .build()
        .unwrap();
    start_fails_saying(&element, "Property 'output-dir' is empty");
}
