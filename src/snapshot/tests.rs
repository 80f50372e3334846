// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Every snapshot here is decoded again and judged by its pixels.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use gst_video::{
    VideoAlignment, VideoColorMatrix, VideoColorRange, VideoColorimetry, VideoConverter,
    VideoFormat, VideoFrameRef, VideoInfo,
};
use serde_json::{Map, Value};

use super::draw::Ycbcr;
use super::*;

/// Far above what any drawn-over or converted frame reaches; below what an untouched one does.
const MIN_PSNR_DB: f64 = 30.0;

fn init() {
    gst::init().unwrap();
}

fn detection(event_type: &str, bbox: [u32; 4]) -> Detection {
    Detection {
        label: event_type.into(),
        event_type: event_type.into(),
        conf: 0.87,
        bbox,
        extras: Map::new(),
    }
}

/// A frame of `format`, default layout and colorimetry unless the caller changes `info`.
struct Frame {
    buffer: gst::Buffer,
    info: VideoInfo,
}

impl Frame {
    fn info(format: VideoFormat, width: u32, height: u32) -> VideoInfo {
        VideoInfo::builder(format, width, height).build().unwrap()
    }

    /// An RGB frame where pixel (x, y) is `paint(x, y)`.
    fn rgb(width: u32, height: u32, paint: impl Fn(u32, u32) -> [u8; 3]) -> Frame {
        let info = Frame::info(VideoFormat::Rgb, width, height);
        let stride = info.stride()[0] as usize;
        let mut data = vec![0u8; info.size()];
        for (y, row) in data.chunks_exact_mut(stride).enumerate() {
            for (x, pixel) in row[..width as usize * 3].chunks_exact_mut(3).enumerate() {
                pixel.copy_from_slice(&paint(x as u32, y as u32));
            }
        }
        Frame {
            buffer: gst::Buffer::from_mut_slice(data),
            info,
        }
    }

    fn uniform(width: u32, height: u32, colour: [u8; 3]) -> Frame {
        Frame::rgb(width, height, |_, _| colour)
    }

    /// Gradients in all three channels, a bright disc and a dark block: smooth areas, hard
    /// edges and saturated colour, as a camera picture has.
    fn picture(width: u32, height: u32) -> Frame {
        let (w, h) = (width.max(1), height.max(1));
        Frame::rgb(width, height, |x, y| {
            let (dx, dy) = (x as i64 - i64::from(w / 3), y as i64 - i64::from(h / 2));
            let radius = i64::from(h / 5);
            if dx * dx + dy * dy < radius * radius {
                return [250, 220, 40];
            }
            if (w * 6 / 10..w * 85 / 100).contains(&x) && (h / 5..h / 2).contains(&y) {
                return [20, 40, 120];
            }
            [
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                (255 - (x + y) * 255 / (w + h)) as u8,
            ]
        })
    }

    /// This frame converted by GStreamer into the layout and colours `target` describes.
    fn convert(&self, target: VideoInfo) -> Frame {
        let converter = VideoConverter::new(&self.info, &target, None).unwrap();
        let mut buffer = gst::Buffer::with_size(target.size()).unwrap();
        {
            let source = VideoFrameRef::from_buffer_ref_readable(&self.buffer, &self.info).unwrap();
            let mut dest =
                VideoFrameRef::from_buffer_ref_writable(buffer.get_mut().unwrap(), &target)
                    .unwrap();
            converter.frame_ref(&source, &mut dest);
        }
        Frame {
            buffer,
            info: target,
        }
    }

    fn to_format(&self, format: VideoFormat) -> Frame {
        self.convert(Frame::info(format, self.info.width(), self.info.height()))
    }

    fn snapshot(&self, detections: &[Detection], settings: &SnapshotSettings) -> Vec<u8> {
        let frame = VideoFrameRef::from_buffer_ref_readable(&self.buffer, &self.info).unwrap();
        annotate_jpeg(&frame, detections, settings).unwrap()
    }
}

/// A decoded JPEG, RGB packed.
struct Decoded {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Decoded {
    fn new(jpeg: &[u8]) -> Decoded {
        let image = turbojpeg::decompress(jpeg, turbojpeg::PixelFormat::RGB).unwrap();
        assert_eq!(image.pitch, image.width * 3);
        Decoded {
            width: image.width,
            height: image.height,
            pixels: image.pixels,
        }
    }

    fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let at = (y * self.width + x) * 3;
        [self.pixels[at], self.pixels[at + 1], self.pixels[at + 2]]
    }

    fn luma(&self) -> Vec<u8> {
        self.pixels
            .chunks_exact(3)
            .map(|rgb| Ycbcr::from_rgb([rgb[0], rgb[1], rgb[2]]).y)
            .collect()
    }
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let squared: f64 = a
        .iter()
        .zip(b)
        .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
        .sum();
    let mse = squared / a.len() as f64;
    10.0 * (255.0 * 255.0 / mse.max(1e-9)).log10()
}

fn distance(a: [u8; 3], b: [u8; 3]) -> u32 {
    a.iter().zip(b).map(|(a, b)| a.abs_diff(b) as u32).sum()
}

/// The index of the colour in `candidates` nearest to `pixel`.
fn nearest(pixel: [u8; 3], candidates: &[[u8; 3]]) -> usize {
    (0..candidates.len())
        .min_by_key(|i| distance(pixel, candidates[*i]))
        .unwrap()
}

/// Points on the middle line of each band of a 2 px outline, away from the corners.
fn outline_points([x, y, w, h]: [u32; 4]) -> Vec<(usize, usize)> {
    let (x, y, w, h) = (x as usize, y as usize, w as usize, h as usize);
    let mut points = Vec::new();
    for along in (x + 6..x + w - 6).step_by(5) {
        points.push((along, y));
        points.push((along, y + h - 1));
    }
    for down in (y + 6..y + h - 6).step_by(5) {
        points.push((x, down));
        points.push((x + w - 1, down));
    }
    points
}

fn every_box_colour() -> Vec<[u8; 3]> {
    let mut colours: Vec<_> = TYPE_COLOURS.iter().map(|(_, colour)| *colour).collect();
    colours.push(OTHER_COLOUR);
    colours
}

#[test]
fn every_format_matches_the_rgb_snapshot() {
    init();
    let source = Frame::picture(641, 481);
    let detections = [
        detection("weapon", [40, 60, 200, 150]),
        detection("person", [380, 250, 180, 200]),
    ];
    let settings = SnapshotSettings::default();
    let reference = Decoded::new(&source.snapshot(&detections, &settings));

    for format in SUPPORTED_FORMATS {
        let decoded = Decoded::new(&source.to_format(format).snapshot(&detections, &settings));
        assert_eq!((decoded.width, decoded.height), (641, 481), "{format:?}");

        // A gray frame can only match the brightness of the colour one.
        let quality = if format == VideoFormat::Gray8 {
            psnr(&decoded.luma(), &reference.luma())
        } else {
            psnr(&decoded.pixels, &reference.pixels)
        };
        assert!(quality > MIN_PSNR_DB, "{format:?}: {quality:.1} dB");
    }
}

#[test]
fn yuv_in_any_range_and_matrix_matches_the_rgb_snapshot() {
    init();
    let source = Frame::picture(641, 481);
    let detections = [detection("fire", [100, 100, 300, 200])];
    let settings = SnapshotSettings::default();
    let reference = Decoded::new(&source.snapshot(&detections, &settings));

    for (range, matrix) in [
        (VideoColorRange::Range0_255, VideoColorMatrix::Bt601),
        (VideoColorRange::Range16_235, VideoColorMatrix::Bt709),
        (VideoColorRange::Range0_255, VideoColorMatrix::Bt2020),
    ] {
        let default = Frame::info(VideoFormat::I420, 641, 481).colorimetry();
        let colorimetry =
            VideoColorimetry::new(range, matrix, default.transfer(), default.primaries());
        let target = VideoInfo::builder(VideoFormat::I420, 641, 481)
            .colorimetry(&colorimetry)
            .build()
            .unwrap();
        let decoded = Decoded::new(&source.convert(target).snapshot(&detections, &settings));
        let quality = psnr(&decoded.pixels, &reference.pixels);
        assert!(
            quality > MIN_PSNR_DB,
            "{range:?} {matrix:?}: {quality:.1} dB"
        );
    }
}

#[test]
fn gray_frames_in_either_range_keep_their_brightness() {
    init();
    let source = Frame::uniform(64, 48, [200, 200, 200]);
    for range in [VideoColorRange::Range0_255, VideoColorRange::Range16_235] {
        let default = Frame::info(VideoFormat::Gray8, 64, 48).colorimetry();
        let colorimetry = VideoColorimetry::new(
            range,
            default.matrix(),
            default.transfer(),
            default.primaries(),
        );
        let target = VideoInfo::builder(VideoFormat::Gray8, 64, 48)
            .colorimetry(&colorimetry)
            .build()
            .unwrap();
        let gray = source.convert(target);
        let decoded = Decoded::new(&gray.snapshot(&[], &SnapshotSettings::default()));
        let [r, g, b] = decoded.pixel(32, 24);
        for channel in [r, g, b] {
            assert!(channel.abs_diff(200) <= 3, "{range:?}: {:?}", [r, g, b]);
        }
    }
}

#[test]
fn padded_strides_give_the_same_snapshot() {
    init();
    let source = Frame::picture(641, 481);
    let detections = [detection("smoke", [10, 10, 100, 100])];
    let settings = SnapshotSettings::default();

    for format in [
        VideoFormat::Rgb,
        VideoFormat::Bgrx,
        VideoFormat::I420,
        VideoFormat::Nv21,
        VideoFormat::Uyvy,
        VideoFormat::Gray8,
    ] {
        let packed = source.to_format(format);
        let mut padded_info = packed.info.clone();
        // 13 pixels of padding and 64-byte aligned rows: strides no formula would guess.
        padded_info
            .align(&mut VideoAlignment::new(0, 0, 0, 13, &[63; 4]))
            .unwrap();
        assert_ne!(padded_info.stride()[0], packed.info.stride()[0]);
        let padded = source.convert(padded_info);

        assert_eq!(
            padded.snapshot(&detections, &settings),
            packed.snapshot(&detections, &settings),
            "{format:?}"
        );
    }
}

#[test]
fn boxes_are_drawn_in_the_colour_of_their_type() {
    init();
    let background = [40, 40, 40];
    let source = Frame::uniform(1920, 1080, background);
    let detections: Vec<_> = ["weapon", "fire", "smoke", "alpr", "person"]
        .iter()
        .enumerate()
        .map(|(i, event_type)| detection(event_type, [100 + 350 * i as u32, 300, 250, 400]))
        .collect();
    let decoded = Decoded::new(&source.snapshot(&detections, &SnapshotSettings::default()));

    let mut candidates = every_box_colour();
    candidates.push(background);
    for detection in &detections {
        let expected = box_colour(&detection.event_type);
        for (x, y) in outline_points(detection.bbox) {
            let found = decoded.pixel(x, y);
            let nearest = candidates[nearest(found, &candidates)];
            assert_eq!(
                nearest, expected,
                "{} at {x},{y}: {found:?}",
                detection.event_type
            );
        }
    }
}

#[test]
fn palette_colours_are_what_libjpeg_turbo_would_store() {
    init();
    for colour in every_box_colour()
        .into_iter()
        .chain([[0, 0, 0], [255, 255, 255]])
    {
        let image = turbojpeg::Image {
            pixels: colour.repeat(16 * 16),
            width: 16,
            pitch: 16 * 3,
            height: 16,
            format: turbojpeg::PixelFormat::RGB,
        };
        let jpeg = turbojpeg::compress(image.as_deref(), 100, turbojpeg::Subsamp::None).unwrap();
        let stored = turbojpeg::decompress_to_yuv(&jpeg).unwrap();
        let (cb_at, cr_at) = (16 * 16, 2 * 16 * 16);
        let ours = Ycbcr::from_rgb(colour);
        let theirs = [stored.pixels[0], stored.pixels[cb_at], stored.pixels[cr_at]];
        for (ours, theirs) in [ours.y, ours.cb, ours.cr].into_iter().zip(theirs) {
            assert!(ours.abs_diff(theirs) <= 1, "{colour:?}: {ours} vs {theirs}");
        }
    }
}

/// A region of a decoded picture: x, y, width, height.
type Region = (usize, usize, usize, usize);

/// How many pixels of `region` are within `tolerance` of `colour`.
fn count_near(decoded: &Decoded, (x, y, w, h): Region, colour: [u8; 3], tolerance: u32) -> usize {
    (y..y + h)
        .flat_map(|row| (x..x + w).map(move |column| (column, row)))
        .filter(|(column, row)| distance(decoded.pixel(*column, *row), colour) <= tolerance)
        .count()
}

/// The share of `region` that is visibly not `background`.
fn changed_fraction(decoded: &Decoded, region: Region, background: [u8; 3]) -> f64 {
    let (_, _, w, h) = region;
    let unchanged = count_near(decoded, region, background, 30);
    1.0 - unchanged as f64 / (w * h) as f64
}

#[test]
fn tags_sit_above_their_boxes_and_stay_inside_the_frame() {
    init();
    let background = [40, 40, 40];
    let source = Frame::uniform(1920, 1080, background);
    let detections = [
        detection("weapon", [400, 500, 300, 300]),
        // No room above: the tag hangs inside the top edge.
        detection("fire", [900, 0, 300, 300]),
        // At the right edge: the tag (152 px wide) is shifted left to stay in the frame.
        detection("alpr", [1800, 600, 120, 200]),
    ];
    let decoded = Decoded::new(&source.snapshot(&detections, &SnapshotSettings::default()));
    // At 1080p glyphs are 16 px with 4 px of padding: tags are 24 px tall.
    let tag_height = 24;

    let above_weapon = (404, 500 - tag_height + 2, 120, tag_height - 4);
    assert!(changed_fraction(&decoded, above_weapon, background) > 0.95);
    let inside_fire = (904, 4, 120, tag_height - 8);
    assert!(changed_fraction(&decoded, inside_fire, background) > 0.95);
    let shifted_left = (1772, 600 - tag_height + 2, 144, tag_height - 4);
    assert!(changed_fraction(&decoded, shifted_left, background) > 0.95);

    // The text is in the tag: inside it are pixels of the ink as well as of the fill.
    let inked = count_near(&decoded, above_weapon, [255, 255, 255], 90);
    assert!(inked > 100, "{inked} ink pixels");

    // Without labels, the same places stay background.
    let settings = SnapshotSettings {
        draw_labels: false,
        ..SnapshotSettings::default()
    };
    let bare = Decoded::new(&source.snapshot(&detections, &settings));
    assert!(changed_fraction(&bare, above_weapon, background) < 0.01);
}

#[test]
fn nothing_is_drawn_away_from_the_boxes() {
    init();
    let background = [90, 120, 150];
    let source = Frame::uniform(1280, 720, background);
    let detections = [
        detection("weapon", [200, 200, 300, 200]),
        detection("smoke", [800, 100, 200, 400]),
    ];
    let decoded = Decoded::new(&source.snapshot(&detections, &SnapshotSettings::default()));

    // The box, its tag above it, and a margin of two JPEG blocks for ringing.
    let margin = 16;
    let near_a_box = |x: usize, y: usize| {
        detections.iter().any(|detection| {
            let [bx, by, bw, bh] = detection.bbox.map(|v| v as usize);
            let tag = 40;
            x + margin >= bx
                && x < bx + bw.max(200) + margin
                && y + margin + tag >= by
                && y < by + bh + margin
        })
    };
    for y in 0..decoded.height {
        for x in (0..decoded.width).filter(|x| !near_a_box(*x, y)) {
            let found = decoded.pixel(x, y);
            assert!(distance(found, background) <= 6, "{x},{y}: {found:?}");
        }
    }
}

/// A deterministic scatter of boxes: a linear congruential generator is enough for test data.
fn scattered_boxes(count: usize, (width, height): (u32, u32)) -> Vec<Detection> {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |below: u32| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        ((seed >> 33) % u64::from(below.max(1))) as u32
    };
    let types = ["weapon", "fire", "smoke", "alpr", "person", "car"];
    (0..count)
        .map(|i| {
            let (x, y) = (next(width), next(height));
            let (w, h) = (1 + next(width - x), 1 + next(height - y));
            let mut detection = detection(types[i % types.len()], [x, y, w, h]);
            detection.conf = f64::from(next(101)) / 100.0;
            detection
        })
        .collect()
}

#[test]
fn reused_buffers_carry_nothing_over_between_snapshots() {
    init();
    let source = Frame::picture(320, 240);
    let gray = source.to_format(VideoFormat::Gray8);
    let detections = [detection("fire", [20, 20, 100, 100])];
    let settings = SnapshotSettings::default();

    let first = gray.snapshot(&detections, &settings);
    for format in [VideoFormat::I420, VideoFormat::Rgb, VideoFormat::Yuy2] {
        source.to_format(format).snapshot(&[], &settings);
        assert_eq!(
            gray.snapshot(&detections, &settings),
            first,
            "after {format:?}"
        );
    }
}

#[test]
fn a_frame_with_200_detections() {
    init();
    let source = Frame::picture(1280, 720).to_format(VideoFormat::Nv12);
    let detections = scattered_boxes(200, (1280, 720));
    let decoded = Decoded::new(&source.snapshot(&detections, &SnapshotSettings::default()));
    assert_eq!((decoded.width, decoded.height), (1280, 720));
}

#[test]
fn boxes_at_every_edge_and_beyond_never_escape_the_frame() {
    init();
    let (width, height) = (641, 481);
    let detections = [
        detection("weapon", [0, 0, width, height]),
        detection("fire", [0, 0, 1, 1]),
        detection("smoke", [width - 1, height - 1, 1, 1]),
        detection("alpr", [width - 3, 0, 3, height]),
        detection("person", [0, height - 2, width, 2]),
        // Not clipped by the caller, as they should be: still no harm.
        detection("car", [width - 10, height - 10, 500, 500]),
        detection("car", [width + 5, height + 5, 10, 10]),
        detection("car", [u32::MAX, u32::MAX, u32::MAX, u32::MAX]),
        detection("car", [10, 10, u32::MAX, u32::MAX]),
    ];
    for format in [VideoFormat::Rgb, VideoFormat::I420, VideoFormat::Yuy2] {
        let source = Frame::uniform(width, height, [40, 40, 40]).to_format(format);
        let jpeg = source.snapshot(&detections, &SnapshotSettings::default());
        let decoded = Decoded::new(&jpeg);
        assert_eq!((decoded.width, decoded.height), (641, 481));

        // The whole-frame weapon box reaches every corner.
        let colours = every_box_colour();
        let weapon = box_colour("weapon");
        for (x, y) in [(300, 0), (300, 1), (0, 200), (1, 300)] {
            assert_eq!(
                colours[nearest(decoded.pixel(x, y), &colours)],
                weapon,
                "{format:?}"
            );
        }
    }
}

#[test]
fn a_4k_frame() {
    init();
    let source = Frame::picture(3840, 2160).to_format(VideoFormat::I420);
    let detections = [detection("weapon", [1000, 1000, 800, 600])];
    let decoded = Decoded::new(&source.snapshot(&detections, &SnapshotSettings::default()));
    assert_eq!((decoded.width, decoded.height), (3840, 2160));
    // 4 px lines at 2160p: the middle of the top band is well inside it.
    let colours = every_box_colour();
    let top_band = decoded.pixel(1400, 1001);
    assert_eq!(colours[nearest(top_band, &colours)], box_colour("weapon"));
}

#[test]
fn a_16x16_frame() {
    init();
    let detections = [detection("person", [2, 2, 12, 12])];
    for format in [VideoFormat::Rgb, VideoFormat::I420, VideoFormat::Gray8] {
        let source = Frame::picture(16, 16).to_format(format);
        let decoded = Decoded::new(&source.snapshot(&detections, &SnapshotSettings::default()));
        assert_eq!((decoded.width, decoded.height), (16, 16), "{format:?}");
    }
}

#[test]
fn max_width_scales_down_keeping_the_aspect_ratio() {
    init();
    let background = [40, 40, 40];
    let detections = [detection("alpr", [600, 300, 600, 480])];
    let cases = [
        ((1920, 1080), 640, (640, 360)),
        ((641, 481), 320, (320, 240)),
        ((1920, 1080), 1920, (1920, 1080)),
        ((1280, 720), 4000, (1280, 720)),
    ];
    for ((width, height), max_width, expected) in cases {
        let source = Frame::uniform(width, height, background).to_format(VideoFormat::Nv12);
        let settings = SnapshotSettings {
            max_width,
            ..SnapshotSettings::default()
        };
        let decoded = Decoded::new(&source.snapshot(&detections, &settings));
        assert_eq!((decoded.width, decoded.height), expected);
    }

    // The box is scaled with the frame: at a third of 1920 it starts at x = 200, y = 100.
    let source = Frame::uniform(1920, 1080, background);
    let settings = SnapshotSettings {
        max_width: 640,
        draw_labels: false,
        ..SnapshotSettings::default()
    };
    let decoded = Decoded::new(&source.snapshot(&detections, &settings));
    let mut candidates = every_box_colour();
    candidates.push(background);
    for (x, y) in outline_points([200, 100, 200, 160]) {
        let found = candidates[nearest(decoded.pixel(x, y), &candidates)];
        assert_eq!(found, box_colour("alpr"), "{x},{y}");
    }
}

#[test]
fn unsupported_formats_and_short_buffers_are_errors() {
    init();
    let info = Frame::info(VideoFormat::Rgb16, 64, 64);
    let buffer = gst::Buffer::with_size(info.size()).unwrap();
    let frame = VideoFrameRef::from_buffer_ref_readable(&buffer, &info).unwrap();
    let error = annotate_jpeg(&frame, &[], &SnapshotSettings::default()).unwrap_err();
    assert_eq!(error, SnapshotError::UnsupportedFormat(VideoFormat::Rgb16));
    assert!(error.to_string().contains("Rgb16"), "{error}");

    let info = Frame::info(VideoFormat::I420, 64, 64);
    let short = gst::Buffer::with_size(info.size() / 2).unwrap();
    let metadata = metadata(1);
    let job = SnapshotJob::new(&short, &info, vec![], SnapshotSettings::default(), metadata);
    assert!(matches!(job, Err(SnapshotError::InvalidFrame(_))));
}

fn metadata(ts_ms: u64) -> SnapshotMetadata {
    SnapshotMetadata {
        key: snapshot_key(DEFAULT_SNAPSHOT_PREFIX, "cam1", ts_ms),
        camera_id: "cam1".into(),
        ts_ms,
    }
}

#[test]
fn a_job_owns_its_copy_of_the_frame() {
    init();
    let picture = Frame::picture(320, 240);
    let scaled = SnapshotSettings {
        max_width: 160,
        ..SnapshotSettings::default()
    };
    // A plane copy (I420, GRAY8), a raw copy converted later (RGB, NV12 scaled), each time
    // the same JPEG as one made straight from the frame.
    let cases = [
        (VideoFormat::I420, SnapshotSettings::default(), (320, 240)),
        (VideoFormat::Gray8, SnapshotSettings::default(), (320, 240)),
        (VideoFormat::Rgb, SnapshotSettings::default(), (320, 240)),
        (VideoFormat::Nv12, scaled, (160, 120)),
    ];
    for (format, settings, size) in cases {
        let mut source = picture.to_format(format);
        let detections = vec![detection("weapon", [10, 10, 100, 100])];
        let expected = source.snapshot(&detections, &settings);

        let job = SnapshotJob::new(
            &source.buffer,
            &source.info,
            detections,
            settings,
            metadata(42),
        )
        .unwrap();
        // The upstream buffer is free to be reused at once: nobody else holds it.
        let upstream = source.buffer.get_mut().expect("the job keeps no reference");
        upstream.map_writable().unwrap().fill(0);

        let snapshot = job.encode().unwrap();
        assert_eq!(snapshot.jpeg, expected, "{format:?}");
        let decoded = Decoded::new(&snapshot.jpeg);
        assert_eq!((decoded.width as u32, decoded.height as u32), size);
        assert_eq!(snapshot.key, "snapshots/cam1/42.jpg");
        assert_eq!((snapshot.camera_id.as_str(), snapshot.ts_ms), ("cam1", 42));
        assert_eq!((snapshot.frame_width, snapshot.frame_height), (320, 240));
        assert_eq!(snapshot.quality, 90);
    }
}

fn small_job(ts_ms: u64) -> SnapshotJob {
    let source = Frame::picture(64, 48);
    let detections = vec![detection("fire", [4, 4, 20, 20])];
    SnapshotJob::new(
        &source.buffer,
        &source.info,
        detections,
        SnapshotSettings::default(),
        metadata(ts_ms),
    )
    .unwrap()
}

/// Polls `condition` for up to ten seconds; a loaded machine is slow, not wrong.
fn eventually(condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn a_saturated_pool_refuses_at_once() {
    init();
    let pool = EncoderPool::new(1, 1);
    assert_eq!(pool.threads(), 1);

    // One task holds the worker and one fills the queue, until the test lets them go.
    let (release, gate) = mpsc::channel::<()>();
    let gate = std::sync::Arc::new(std::sync::Mutex::new(gate));
    for _ in 0..2 {
        let gate = gate.clone();
        assert!(pool.try_run_for_test(move || {
            let _ = gate.lock().unwrap().recv();
        }));
    }

    let started = Instant::now();
    assert!(pool.try_submit(small_job(1)).is_none());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "try_submit waited"
    );
    // A saturated pool does not even ask for the job, so no frame is copied for nothing.
    let submission = pool.try_submit_with(|| panic!("the job was made for a full pool"));
    assert!(matches!(submission, Submission::Saturated));
    assert_eq!(pool.outstanding(), 2);

    drop(release);
    assert!(eventually(|| pool.outstanding() == 0));
    let pending = pool.try_submit(small_job(2)).expect("an idle pool accepts");
    let snapshot = pending.blocking_recv().unwrap().unwrap();
    assert_eq!(snapshot.key, "snapshots/cam1/2.jpg");
    assert_eq!(Decoded::new(&snapshot.jpeg).width, 64);
}

#[test]
fn the_global_pool_encodes_from_many_threads() {
    init();
    let pool = EncoderPool::global();
    assert!((1..=MAX_ENCODER_THREADS).contains(&pool.threads()));

    let submitters: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let job = small_job(100 + i);
                let pending = EncoderPool::global().try_submit(job)?;
                pending.blocking_recv().ok()?.ok()
            })
        })
        .collect();
    // Four at once may exceed a two-core pool: refusals are allowed, failures are not.
    let delivered: Vec<_> = submitters
        .into_iter()
        .filter_map(|submitter| submitter.join().unwrap())
        .collect();
    assert!(!delivered.is_empty());
    for snapshot in delivered {
        assert_eq!(Decoded::new(&snapshot.jpeg).height, 48);
    }
}

#[test]
fn a_job_that_cannot_be_made_gives_its_place_back() {
    init();
    let pool = EncoderPool::new(1, 0);
    let info = Frame::info(VideoFormat::I420, 64, 64);
    let short = gst::Buffer::with_size(info.size() / 2).unwrap();
    let submission = pool.try_submit_with(|| {
        SnapshotJob::new(
            &short,
            &info,
            vec![],
            SnapshotSettings::default(),
            metadata(1),
        )
    });
    assert!(matches!(
        submission,
        Submission::Failed(SnapshotError::InvalidFrame(_))
    ));
    assert_eq!(pool.outstanding(), 0);
    let pending = pool
        .try_submit(small_job(3))
        .expect("the place is free again");
    assert_eq!(
        pending.blocking_recv().unwrap().unwrap().key,
        "snapshots/cam1/3.jpg"
    );
}

#[test]
fn a_pool_without_threads_refuses_everything() {
    init();
    let pool = EncoderPool::new(0, 4);
    assert!(pool.try_submit(small_job(1)).is_none());
}

#[test]
fn snapshot_keys_have_exactly_one_slash_between_parts() {
    assert_eq!(snapshot_key("snapshots", "cam1", 5), "snapshots/cam1/5.jpg");
    assert_eq!(snapshot_key("/a/b/", "cam1", 5), "a/b/cam1/5.jpg");
    assert_eq!(snapshot_key("", "cam1", 5), "cam1/5.jpg");
    assert_eq!(snapshot_key("///", "cam1", 5), "cam1/5.jpg");
}

#[test]
fn plate_text_and_non_ascii_labels_are_drawn_without_panicking() {
    init();
    let source = Frame::uniform(640, 480, [40, 40, 40]);
    let mut plate = detection("alpr", [100, 100, 200, 80]);
    plate
        .extras
        .insert("text".into(), Value::String("ABC1234".into()));
    let mut exotic = detection("person", [300, 300, 100, 100]);
    exotic.label = "Größe ✓ 人".repeat(20);
    let jpeg = source.snapshot(&[plate, exotic], &SnapshotSettings::default());
    assert_eq!(Decoded::new(&jpeg).width, 640);
}

#[test]
fn an_i420_frame_encoded_as_is_is_its_own_picture() {
    init();
    let full_range = |width, height| {
        VideoInfo::builder(VideoFormat::I420, width, height)
            .colorimetry(&VideoColorimetry::new(
                VideoColorRange::Range0_255,
                VideoColorMatrix::Bt601,
                gst_video::VideoTransferFunction::Srgb,
                gst_video::VideoColorPrimaries::Bt709,
            ))
            .build()
            .unwrap()
    };
    let source = Frame::picture(640, 480).convert(full_range(640, 480));
    let frame = VideoFrameRef::from_buffer_ref_readable(&source.buffer, &source.info).unwrap();
    let as_is = Decoded::new(&encode_i420_as_is(&frame, 90).unwrap());
    // Without boxes, the same picture as a snapshot of it.
    let snapshot = Decoded::new(&source.snapshot(&[], &SnapshotSettings::default()));
    assert_eq!((as_is.width, as_is.height), (640, 480));
    assert!(psnr(&as_is.pixels, &snapshot.pixels) > 45.0);

    // libjpeg-turbo reads whole chroma blocks: an odd-sized frame's planes are a row short.
    let odd = Frame::picture(641, 481).convert(full_range(641, 481));
    let frame = VideoFrameRef::from_buffer_ref_readable(&odd.buffer, &odd.info).unwrap();
    assert!(matches!(
        encode_i420_as_is(&frame, 90),
        Err(SnapshotError::InvalidFrame(_))
    ));

    let rgb = Frame::uniform(16, 16, [1, 2, 3]);
    let frame = VideoFrameRef::from_buffer_ref_readable(&rgb.buffer, &rgb.info).unwrap();
    assert_eq!(
        encode_i420_as_is(&frame, 90),
        Err(SnapshotError::UnsupportedFormat(VideoFormat::Rgb))
    );
}
