// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Boxes and `label 0.87` tags, painted straight onto the YCbCr planes.
//!
//! Coordinates come from the detector, so every rectangle is clipped here and all arithmetic
//! saturates: a box at or past any edge is drawn as far as it is visible, never beyond.

use font8x8::legacy::BASIC_LEGACY;

use super::planes::{Rect, YcbcrPlanes};
use crate::detection::Detection;

/// Frame rows per step of line thickness and glyph scale: 2 px lines and 16 px text at 1080p.
const ROWS_PER_SCALE_STEP: u32 = 540;

/// The thinnest outline, at any frame size.
const MIN_THICKNESS_PX: usize = 2;

/// A font8x8 glyph is 8x8 pixels before scaling.
const GLYPH_PX: usize = 8;

/// Longer labels are cut: no frame is wide enough to show more.
const MAX_TAG_CHARS: usize = 64;

/// The box colour of each event type, as RGB; every other type is [`OTHER_COLOUR`].
pub const TYPE_COLOURS: [(&str, [u8; 3]); 4] = [
    ("weapon", [230, 30, 30]),
    ("fire", [255, 140, 0]),
    ("smoke", [160, 160, 160]),
    ("alpr", [30, 90, 255]),
];

/// Green, for every event type not in [`TYPE_COLOURS`].
pub const OTHER_COLOUR: [u8; 3] = [40, 200, 60];

/// The RGB colour boxes of `event_type` are drawn in.
pub fn box_colour(event_type: &str) -> [u8; 3] {
    TYPE_COLOURS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(event_type))
        .map_or(OTHER_COLOUR, |(_, colour)| *colour)
}

/// A colour as a JPEG stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ycbcr {
    pub y: u8,
    pub cb: u8,
    pub cr: u8,
}

impl Ycbcr {
    const BLACK: Ycbcr = Ycbcr::from_rgb([0, 0, 0]);
    const WHITE: Ycbcr = Ycbcr::from_rgb([255, 255, 255]);

    /// JFIF's equations (full-range BT.601 in 16.16 fixed point), which every JPEG decoder
    /// inverts, so a painted colour decodes back to itself.
    pub(crate) const fn from_rgb([r, g, b]: [u8; 3]) -> Self {
        let (r, g, b) = (r as i32, g as i32, b as i32);
        let half = 1 << 15;
        let y = (19595 * r + 38470 * g + 7471 * b + half) >> 16;
        let cb = (-11059 * r - 21709 * g + 32768 * b + (128 << 16) + half) >> 16;
        let cr = (32768 * r - 27439 * g - 5329 * b + (128 << 16) + half) >> 16;
        Ycbcr {
            y: clamp_to_u8(y),
            cb: clamp_to_u8(cb),
            cr: clamp_to_u8(cr),
        }
    }
}

const fn clamp_to_u8(value: i32) -> u8 {
    if value < 0 {
        0
    } else if value > 255 {
        255
    } else {
        value as u8
    }
}

/// Line thickness and text size for a picture `height` rows tall.
#[derive(Debug, Clone, Copy)]
struct Style {
    thickness: usize,
    glyph_scale: usize,
}

impl Style {
    fn for_height(height: u32) -> Self {
        let steps = (height / ROWS_PER_SCALE_STEP) as usize;
        Style {
            thickness: steps.max(MIN_THICKNESS_PX),
            glyph_scale: steps.max(1),
        }
    }

    /// Space between the text and the edge of its tag.
    fn padding(self) -> usize {
        self.glyph_scale * 2
    }
}

/// Draws every detection's box, then (with `labels`) every tag, so that no box hides a tag.
/// Boxes are in `frame_size` pixels and scaled to the planes' size.
pub(crate) fn draw_detections(
    planes: &mut YcbcrPlanes,
    detections: &[Detection],
    frame_size: (u32, u32),
    labels: bool,
) {
    let style = Style::for_height(planes.height());
    let canvas = (planes.width(), planes.height());
    let boxes: Vec<_> = detections
        .iter()
        .filter_map(|detection| {
            let rect = scale_box(detection.bbox, frame_size, canvas)?;
            let colour = Ycbcr::from_rgb(box_colour(&detection.event_type));
            Some((detection, rect, colour))
        })
        .collect();

    for (_, rect, colour) in &boxes {
        draw_outline(planes, *rect, style.thickness, *colour);
    }
    if labels {
        for (detection, rect, colour) in &boxes {
            draw_tag(planes, *rect, &tag_text(detection), style, *colour);
        }
    }
}

/// The box in the planes' pixels, clipped to them; None when nothing of it is visible.
fn scale_box(
    [x, y, width, height]: [u32; 4],
    (from_width, from_height): (u32, u32),
    (to_width, to_height): (u32, u32),
) -> Option<Rect> {
    let scale = |value: u32, from: u32, to: u32, round_up: bool| -> usize {
        let scaled = u64::from(value) * u64::from(to);
        let from = u64::from(from.max(1));
        let scaled = if round_up {
            scaled.div_ceil(from)
        } else {
            scaled / from
        };
        scaled.min(u64::from(to)) as usize
    };
    let left = scale(x, from_width, to_width, false);
    let top = scale(y, from_height, to_height, false);
    let right = scale(x.saturating_add(width), from_width, to_width, true);
    let bottom = scale(y.saturating_add(height), from_height, to_height, true);
    if left >= to_width as usize || top >= to_height as usize || right <= left || bottom <= top {
        return None;
    }
    Some(Rect::new(left, top, right - left, bottom - top))
}

/// Four bands of `thickness` inside the box, so that the outline never leaves it.
fn draw_outline(planes: &mut YcbcrPlanes, rect: Rect, thickness: usize, colour: Ycbcr) {
    let across = thickness.min(rect.width);
    let down = thickness.min(rect.height);
    let (right, bottom) = (rect.x + rect.width, rect.y + rect.height);
    let bands = [
        Rect::new(rect.x, rect.y, rect.width, down),
        Rect::new(rect.x, bottom - down, rect.width, down),
        Rect::new(rect.x, rect.y, across, rect.height),
        Rect::new(right - across, rect.y, across, rect.height),
    ];
    for band in bands {
        planes.fill(band, colour);
    }
}

/// `label 0.87`; a licence plate shows its text instead of its label.
fn tag_text(detection: &Detection) -> String {
    let plate = detection
        .extras
        .get("text")
        .and_then(|text| text.as_str())
        .filter(|text| detection.event_type.eq_ignore_ascii_case("alpr") && !text.is_empty());
    format!(
        "{} {:.2}",
        plate.unwrap_or(&detection.label),
        detection.conf
    )
}

/// A filled tag of the box colour above the box, or just inside its top edge when there is no
/// room above, shifted left when it would leave the frame on the right.
fn draw_tag(planes: &mut YcbcrPlanes, anchor: Rect, text: &str, style: Style, colour: Ycbcr) {
    let glyphs: Vec<[u8; 8]> = text.chars().take(MAX_TAG_CHARS).map(glyph).collect();
    let cell = GLYPH_PX * style.glyph_scale;
    let padding = style.padding();
    let width = glyphs.len() * cell + 2 * padding;
    let height = cell + 2 * padding;
    let (canvas_width, canvas_height) = (planes.width() as usize, planes.height() as usize);

    // Even coordinates put whole glyph pixels on whole chroma samples: crisp colour edges.
    let x = anchor.x.min(canvas_width.saturating_sub(width)) & !1;
    let y = match anchor.y.checked_sub(height) {
        Some(above) => above,
        None => anchor.y.min(canvas_height.saturating_sub(height)),
    } & !1;
    planes.fill(Rect::new(x, y, width, height), colour);

    let ink = if colour.y >= 128 {
        Ycbcr::BLACK
    } else {
        Ycbcr::WHITE
    };
    for (index, rows) in glyphs.iter().enumerate() {
        let glyph_x = x + padding + index * cell;
        for (row, bits) in rows.iter().enumerate() {
            for column in (0..GLYPH_PX).filter(|column| bits & (1 << column) != 0) {
                let pixel_x = glyph_x + column * style.glyph_scale;
                let pixel_y = y + padding + row * style.glyph_scale;
                let pixel = Rect::new(pixel_x, pixel_y, style.glyph_scale, style.glyph_scale);
                planes.fill(pixel, ink);
            }
        }
    }
}

/// The font8x8 bitmap of `character` (row by row, bit 0 leftmost); `?` outside ASCII.
fn glyph(character: char) -> [u8; 8] {
    let code = if character.is_ascii() {
        character as usize
    } else {
        '?' as usize
    };
    BASIC_LEGACY[code]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    fn detection(label: &str, event_type: &str, conf: f64) -> Detection {
        Detection {
            label: label.into(),
            event_type: event_type.into(),
            conf,
            bbox: [0, 0, 1, 1],
            extras: Map::new(),
        }
    }

    #[test]
    fn tags_read_label_then_confidence_with_two_decimals() {
        assert_eq!(
            tag_text(&detection("knife", "weapon", 0.8749)),
            "knife 0.87"
        );
        assert_eq!(tag_text(&detection("fire", "fire", 1.0)), "fire 1.00");
    }

    #[test]
    fn plates_show_their_text_when_they_have_one() {
        let mut plate = detection("license_plate", "alpr", 0.92);
        assert_eq!(tag_text(&plate), "license_plate 0.92");
        plate
            .extras
            .insert("text".into(), Value::String("ABC1234".into()));
        assert_eq!(tag_text(&plate), "ABC1234 0.92");

        let mut sign = detection("sign", "sign", 0.5);
        sign.extras
            .insert("text".into(), Value::String("STOP".into()));
        assert_eq!(tag_text(&sign), "sign 0.50");
    }

    #[test]
    fn lines_and_text_grow_with_the_frame() {
        for (height, thickness, glyph_scale) in
            [(16, 2, 1), (480, 2, 1), (1080, 2, 2), (2160, 4, 4)]
        {
            let style = Style::for_height(height);
            assert_eq!(
                (style.thickness, style.glyph_scale),
                (thickness, glyph_scale)
            );
        }
    }

    #[test]
    fn boxes_scale_with_the_frame_and_clip_to_it() {
        let rect = |x, y, width, height| Some(Rect::new(x, y, width, height));
        assert_eq!(
            scale_box([30, 30, 30, 30], (90, 90), (30, 30)),
            rect(10, 10, 10, 10)
        );
        // A box too small to survive scaling still covers one pixel.
        assert_eq!(
            scale_box([31, 31, 1, 1], (90, 90), (30, 30)),
            rect(10, 10, 1, 1)
        );
        assert_eq!(
            scale_box([80, 80, 50, 50], (90, 90), (90, 90)),
            rect(80, 80, 10, 10)
        );
        assert_eq!(scale_box([90, 0, 5, 5], (90, 90), (90, 90)), None);
        assert_eq!(scale_box([u32::MAX; 4], (90, 90), (90, 90)), None);
    }

    #[test]
    fn unknown_types_are_green_and_known_ones_ignore_case() {
        assert_eq!(box_colour("Weapon"), [230, 30, 30]);
        assert_eq!(box_colour("person"), OTHER_COLOUR);
        let mut colours: Vec<_> = TYPE_COLOURS.iter().map(|(_, colour)| *colour).collect();
        colours.push(OTHER_COLOUR);
        colours.sort();
        colours.dedup();
        assert_eq!(colours.len(), TYPE_COLOURS.len() + 1);
    }
}
