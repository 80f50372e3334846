// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Snapshots made by the element: the JPEG next to `events.jsonl`, decoded and looked at.

use std::path::Path;

use gst::prelude::*;
use gst_check::Harness;
use gst_video::VideoRegionOfInterestMeta;
use serde_json::Value;

mod common;
use common::{facedetect_on_astronaut, init, read_events};

const WIDTH: u32 = 320;
const HEIGHT: u32 = 240;
/// Mid grey: every drawn colour stands out from it.
const BACKGROUND: u8 = 128;
const WEAPON_RED: [u8; 3] = [230, 30, 30];
const OTHER_GREEN: [u8; 3] = [40, 200, 60];

fn sink(dir: &Path) -> gst::Element {
    init();
    gst::ElementFactory::make("kvsinfersink")
        .property("camera-id", "cam1")
        .property("output-dir", dir.to_str().unwrap())
        .build()
        .unwrap()
}

fn harness(sink: &gst::Element, caps: &str) -> Harness {
    let mut h = Harness::with_element(sink, Some("sink"), None);
    h.set_src_caps_str(caps);
    h.play();
    h
}

fn rgb_caps(width: u32, height: u32) -> String {
    format!("video/x-raw,format=RGB,width={width},height={height},framerate=30/1")
}

/// A label and its pixel rectangle.
type Region<'a> = (&'a str, (u32, u32, u32, u32));

/// A grey RGB frame carrying `rois` and a Unix timestamp.
fn frame(width: u32, height: u32, rois: &[Region], unix_ms: u64) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_mut_slice(vec![BACKGROUND; (width * height * 3) as usize]);
    {
        let buffer = buffer.get_mut().unwrap();
        for (label, rect) in rois {
            let mut meta = VideoRegionOfInterestMeta::add(buffer, label, *rect);
            meta.add_param(
                gst::Structure::builder("detection")
                    .field("confidence", 0.87f64)
                    .build(),
            );
        }
        let caps = gst::Caps::new_empty_simple("timestamp/x-unix");
        gst::ReferenceTimestampMeta::add(
            buffer,
            &caps,
            gst::ClockTime::from_mseconds(unix_ms),
            None,
        );
    }
    buffer
}

struct Decoded {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Decoded {
    fn open(path: &Path) -> Decoded {
        let jpeg = std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let image = turbojpeg::decompress(&jpeg, turbojpeg::PixelFormat::RGB).unwrap();
        assert_eq!(image.pitch, image.width * 3);
        Decoded {
            width: image.width,
            height: image.height,
            pixels: image.pixels,
        }
    }

    fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let at = (y as usize * self.width + x as usize) * 3;
        [self.pixels[at], self.pixels[at + 1], self.pixels[at + 2]]
    }
}

fn close(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
}

/// The snapshot every event of the file refers to, decoded.
fn only_snapshot(dir: &Path) -> (Vec<Value>, Decoded) {
    let events = read_events(dir);
    let key = events[0]["snapshot"]["key"]
        .as_str()
        .expect("a snapshot key")
        .to_string();
    assert!(events.iter().all(|e| e["snapshot"]["key"] == key.as_str()));
    (events, Decoded::open(&dir.join(key)))
}

#[test]
fn snapshot_shows_each_box_in_its_colour_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let element = sink(dir.path());
    let mut h = harness(&element, &rgb_caps(WIDTH, HEIGHT));
    let rois = [("knife", (40, 100, 80, 60)), ("dog", (200, 40, 80, 100))];
    h.push(frame(WIDTH, HEIGHT, &rois, 1_697_123_456_789))
        .unwrap();
    assert!(h.push_event(gst::event::Eos::new()));

    let (events, jpeg) = only_snapshot(dir.path());
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0]["snapshot"]["key"],
        "snapshots/cam1/1697123456789.jpg"
    );
    assert_eq!((jpeg.width, jpeg.height), (WIDTH as usize, HEIGHT as usize));

    // The bottom edge of each box (the label tag sits above the top edge), sampled along it.
    for ((_, (x, y, w, h)), colour) in rois.iter().zip([WEAPON_RED, OTHER_GREEN]) {
        for sx in (x + 8..x + w - 8).step_by(8) {
            let got = jpeg.pixel(sx, y + h - 1);
            assert!(
                close(got, colour, 60),
                "({sx}, {}) is {got:?}, not {colour:?}",
                y + h - 1
            );
        }
        // The left edge, away from the corners.
        let got = jpeg.pixel(*x, y + h / 2);
        assert!(close(got, colour, 60), "left edge {got:?}");
        // The inside of the box is untouched.
        let got = jpeg.pixel(x + w / 2, y + h / 2);
        assert!(close(got, [BACKGROUND; 3], 12), "inside {got:?}");
    }

    // A label tag on a filled background just above the knife's box.
    let tag_row = 100 - 6;
    let tagged = (40..110)
        .filter(|x| !close(jpeg.pixel(*x, tag_row), [BACKGROUND; 3], 40))
        .count();
    assert!(tagged > 30, "only {tagged} pixels of a tag above the box");

    // Away from both boxes and their tags the frame is as it came.
    for (x, y) in [(5, 5), (150, 200), (310, 230), (160, 20)] {
        let got = jpeg.pixel(x, y);
        assert!(close(got, [BACKGROUND; 3], 12), "({x}, {y}) is {got:?}");
    }
    assert_eq!(
        element
            .property::<gst::Structure>("stats")
            .get::<u64>("snapshots-encoded")
            .unwrap(),
        1
    );
}

#[test]
fn snapshots_are_at_most_one_per_interval_and_only_for_new_events() {
    let dir = tempfile::tempdir().unwrap();
    let element = sink(dir.path());
    element.set_property("dedup-window", 100u32);
    let mut h = harness(&element, &rgb_caps(64, 48));
    // Ten frames 100 ms apart, each a new event: snapshots at 0 ms and 1000 ms of event time.
    for i in 0..11u64 {
        h.push(frame(
            64,
            48,
            &[("knife", (1, 1, 20, 20))],
            50_000 + i * 100,
        ))
        .unwrap();
    }
    assert!(h.push_event(gst::event::Eos::new()));

    let events = read_events(dir.path());
    assert_eq!(events.len(), 11);
    let with_snapshot: Vec<u64> = events
        .iter()
        .filter(|e| e.get("snapshot").is_some())
        .map(|e| e["payload"]["ts_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(with_snapshot, [50_000, 51_000]);
    for ts in with_snapshot {
        assert!(dir.path().join(format!("snapshots/cam1/{ts}.jpg")).exists());
    }
}

#[test]
fn snapshot_max_width_scales_down_keeping_the_aspect() {
    let dir = tempfile::tempdir().unwrap();
    let element = sink(dir.path());
    element.set_property("snapshot-max-width", 160u32);
    element.set_property("jpeg-quality", 50u32);
    let mut h = harness(&element, &rgb_caps(WIDTH, HEIGHT));
    h.push(frame(WIDTH, HEIGHT, &[("knife", (40, 100, 80, 60))], 1000))
        .unwrap();
    assert!(h.push_event(gst::event::Eos::new()));

    let (_, jpeg) = only_snapshot(dir.path());
    assert_eq!((jpeg.width, jpeg.height), (160, 120));
    // The box is scaled with the frame: its bottom edge now runs at y = 79. At this size the
    // line is 2 px, so 4:2:0 chroma pales it: red must still dominate there, and only there.
    let reddish = |[r, g, b]: [u8; 3]| r > g.saturating_add(50) && r > b.saturating_add(50);
    for x in (25..55).step_by(5) {
        assert!(
            reddish(jpeg.pixel(x, 79)),
            "({x}, 79) is {:?}",
            jpeg.pixel(x, 79)
        );
        assert!(
            !reddish(jpeg.pixel(x, 65)),
            "({x}, 65) is {:?}",
            jpeg.pixel(x, 65)
        );
    }
}

#[test]
fn snapshot_off_means_no_snapshot_field() {
    let dir = tempfile::tempdir().unwrap();
    let element = sink(dir.path());
    element.set_property("snapshot", false);
    let mut h = harness(&element, &rgb_caps(64, 48));
    h.push(frame(64, 48, &[("knife", (1, 1, 20, 20))], 1000))
        .unwrap();
    assert!(h.push_event(gst::event::Eos::new()));

    let events = read_events(dir.path());
    assert_eq!(events.len(), 1);
    assert!(events[0].get("snapshot").is_none());
    assert!(!dir.path().join("snapshots").exists());
}

#[test]
fn a_small_upstream_buffer_pool_never_runs_dry() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let element = sink(dir.path());
    element.set_property("snapshot-interval", 0u32);
    element.set_property("dedup-window", 1u32);
    let caps: gst::Caps = rgb_caps(WIDTH, HEIGHT).parse().unwrap();
    let mut h = harness(&element, &rgb_caps(WIDTH, HEIGHT));

    // A camera-like pool of three buffers: if the sink kept them for its snapshots, acquiring
    // without waiting would fail.
    let pool = gst::BufferPool::new();
    let mut config = pool.config();
    config.set_params(Some(&caps), WIDTH * HEIGHT * 3, 3, 3);
    pool.set_config(config).unwrap();
    pool.set_active(true).unwrap();
    let params = gst::BufferPoolAcquireParams::with_flags(gst::BufferPoolAcquireFlags::DONTWAIT);
    for i in 0..30u64 {
        let mut buffer = pool
            .acquire_buffer(Some(&params))
            .unwrap_or_else(|err| panic!("frame {i}: the pool ran dry ({err:?})"));
        {
            let buffer = buffer.get_mut().unwrap();
            VideoRegionOfInterestMeta::add(buffer, "knife", (10, 10, 50, 50));
            let unix = gst::Caps::new_empty_simple("timestamp/x-unix");
            gst::ReferenceTimestampMeta::add(
                buffer,
                &unix,
                gst::ClockTime::from_mseconds(1000 + i),
                None,
            );
        }
        h.push(buffer).unwrap();
    }
    assert!(h.push_event(gst::event::Eos::new()));
    pool.set_active(false).unwrap();

    let stats = element.property::<gst::Structure>("stats");
    let made = stats.get::<u64>("snapshots-encoded").unwrap();
    let dropped = stats.get::<u64>("snapshots-dropped").unwrap();
    assert_eq!(made + dropped, 30, "{stats}");
    assert!(made > 0, "{stats}");
}

#[test]
fn facedetect_snapshot_shows_the_box_around_the_face() {
    let dir = tempfile::tempdir().unwrap();
    facedetect_on_astronaut(dir.path());

    let (events, jpeg) = only_snapshot(dir.path());
    assert_eq!((jpeg.width, jpeg.height), (512, 512));
    let bbox: Vec<u32> = events[0]["payload"]["bbox"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let (x, y, w, h) = (bbox[0], bbox[1], bbox[2], bbox[3]);
    // Faces are an "other" type: green along the bottom and the sides of their box.
    let edge = [
        (x + w / 2, y + h - 1),
        (x + w / 3, y + h - 1),
        (x, y + h / 2),
        (x + w - 1, y + h / 2),
    ];
    for (ex, ey) in edge {
        let got = jpeg.pixel(ex, ey);
        assert!(close(got, OTHER_GREEN, 60), "({ex}, {ey}) is {got:?}");
    }
}

#[test]
fn draw_labels_off_draws_the_box_without_its_tag() {
    let dir = tempfile::tempdir().unwrap();
    let element = sink(dir.path());
    element.set_property("draw-labels", false);
    let mut h = harness(&element, &rgb_caps(WIDTH, HEIGHT));
    h.push(frame(WIDTH, HEIGHT, &[("knife", (40, 100, 80, 60))], 1000))
        .unwrap();
    assert!(h.push_event(gst::event::Eos::new()));

    let (_, jpeg) = only_snapshot(dir.path());
    let got = jpeg.pixel(80, 159);
    assert!(close(got, WEAPON_RED, 60), "bottom edge {got:?}");
    // Where the tag would stand above the box, the frame is as it came.
    for x in (42..110).step_by(4) {
        let got = jpeg.pixel(x, 94);
        assert!(close(got, [BACKGROUND; 3], 20), "({x}, 94) is {got:?}");
    }
}
