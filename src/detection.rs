// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Region-of-interest metadata in, validated detections out.
//!
//! Everything a detector attached to a frame is untrusted input: every check here returns a
//! [`Rejection`] instead of panicking, and the caller counts and reports it.

use std::fmt;

use gst::glib;
use serde_json::{Map, Value};

/// Labels mapped to event types when the `type-map` property is left alone.
pub const DEFAULT_TYPE_MAP: &str = "knife:weapon,gun:weapon,pistol:weapon,rifle:weapon,\
                                    fire:fire,smoke:smoke,license_plate:alpr,plate:alpr";

/// The event type of a detection that carries a licence-plate or OCR structure.
const ALPR_TYPE: &str = "alpr";

/// One validated detection, with its box clipped to the frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub label: String,
    pub event_type: String,
    pub conf: f64,
    /// `[x, y, w, h]` in pixels, inside the frame, never empty.
    pub bbox: [u32; 4],
    pub extras: Map<String, Value>,
}

/// Why a region of interest did not become a detection.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    EmptyLabel,
    NonFiniteConfidence,
    ConfidenceOutOfRange(f64),
    EmptyBox,
    OverflowingBox,
    InvalidNormalizedBox,
    OutsideFrame,
    WrongFieldType { field: String, found: String },
    BelowMinConfidence,
    LabelNotAllowed,
}

/// Every [`Rejection::reason`], in the order `stats` reports them.
pub const REJECTION_REASONS: [&str; 10] = [
    "empty-label",
    "non-finite-confidence",
    "confidence-out-of-range",
    "empty-box",
    "overflowing-box",
    "invalid-normalized-box",
    "outside-frame",
    "wrong-field-type",
    "below-min-confidence",
    "label-not-allowed",
];

impl Rejection {
    /// A stable, kebab-case name for counting.
    pub fn reason(&self) -> &'static str {
        REJECTION_REASONS[self.index()]
    }

    /// Position of this reason in [`REJECTION_REASONS`].
    pub fn index(&self) -> usize {
        match self {
            Rejection::EmptyLabel => 0,
            Rejection::NonFiniteConfidence => 1,
            Rejection::ConfidenceOutOfRange(_) => 2,
            Rejection::EmptyBox => 3,
            Rejection::OverflowingBox => 4,
            Rejection::InvalidNormalizedBox => 5,
            Rejection::OutsideFrame => 6,
            Rejection::WrongFieldType { .. } => 7,
            Rejection::BelowMinConfidence => 8,
            Rejection::LabelNotAllowed => 9,
        }
    }

    /// Filters the user asked for are not problems with the input: they are counted, not warned.
    pub fn is_filter(&self) -> bool {
        matches!(
            self,
            Rejection::BelowMinConfidence | Rejection::LabelNotAllowed
        )
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::EmptyLabel => write!(f, "the region has an empty label"),
            Rejection::NonFiniteConfidence => write!(f, "the confidence is NaN or infinite"),
            Rejection::ConfidenceOutOfRange(c) => write!(f, "the confidence {c} is outside 0..1"),
            Rejection::EmptyBox => write!(f, "the box has zero width or height"),
            Rejection::OverflowingBox => write!(f, "the box overflows 32-bit coordinates"),
            Rejection::InvalidNormalizedBox => {
                write!(f, "the normalized box is not finite or not ordered")
            }
            Rejection::OutsideFrame => write!(f, "the box lies wholly outside the frame"),
            Rejection::WrongFieldType { field, found } => {
                write!(f, "field '{field}' has type {found}, not a number")
            }
            Rejection::BelowMinConfidence => write!(f, "the confidence is below min-confidence"),
            Rejection::LabelNotAllowed => write!(f, "the label is not in the labels allow-list"),
        }
    }
}

/// The `type-map` property, parsed: `label:type` pairs, labels matched case-insensitively.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypeMap(Vec<(String, String)>);

impl TypeMap {
    /// Parses `label:type` pairs separated by commas; an empty string is an empty map.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pairs = Vec::new();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let Some((label, event_type)) = item.split_once(':') else {
                return Err(format!("'{item}' is not a label:type pair"));
            };
            let (label, event_type) = (label.trim(), event_type.trim());
            if label.is_empty() || event_type.is_empty() {
                return Err(format!("'{item}' has an empty label or type"));
            }
            let label = label.to_lowercase();
            match pairs.iter().find(|(known, _)| *known == label) {
                Some((_, known_type)) if known_type != event_type => {
                    return Err(format!(
                        "'{label}' is mapped to both '{known_type}' and '{event_type}'"
                    ));
                }
                Some(_) => continue,
                None => pairs.push((label, event_type.to_string())),
            }
        }
        Ok(TypeMap(pairs))
    }

    pub fn event_type(&self, label: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(label))
            .map(|(_, event_type)| event_type.as_str())
    }
}

/// What the sink's properties say about which detections to keep and how to name them.
#[derive(Debug, Clone, Default)]
pub struct DetectionRules {
    pub type_map: TypeMap,
    pub min_confidence: f64,
    /// Allow-list of labels; empty keeps every label.
    pub labels: Vec<String>,
}

impl DetectionRules {
    /// Parses the comma-separated `labels` property.
    pub fn parse_labels(text: &str) -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|label| !label.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Turns one region of interest into a detection, judged against a frame of `frame` size
/// (width, height).
pub fn from_roi<'a>(
    label: &str,
    rect: (u32, u32, u32, u32),
    params: impl IntoIterator<Item = &'a gst::StructureRef>,
    frame: (u32, u32),
    rules: &DetectionRules,
) -> Result<Detection, Rejection> {
    if label.is_empty() {
        return Err(Rejection::EmptyLabel);
    }

    let mut conf = None;
    let mut normalized = None;
    let mut event_type = None;
    let mut extras = Map::new();

    for param in params {
        match param.name().as_str() {
            "detection" => {
                conf = number_field(param, "confidence")?.or(conf);
                normalized = normalized_box(param)?;
                if let Some(id) = integer_field(param, "label_id")? {
                    extras.insert("label_id".into(), id.into());
                }
            }
            "object_id" => {
                if let Some(id) = integer_field(param, "id")? {
                    extras.insert("track_id".into(), id.into());
                }
            }
            "license_plate" | "ocr" => {
                let text = string_field(param, "label")?.or(string_field(param, "text")?);
                if let Some(text) = text {
                    extras.insert("text".into(), text.into());
                }
                if let Some(ocr_conf) = number_field(param, "confidence")?
                    && ocr_conf.is_finite()
                {
                    extras.insert("ocr_conf".into(), ocr_conf.into());
                }
                event_type.get_or_insert_with(|| ALPR_TYPE.to_string());
            }
            "kvsinfer" => {
                for (field, value) in param.iter() {
                    if field == "type" {
                        let Ok(declared) = value.get::<String>() else {
                            return Err(wrong_type(param, "type", value));
                        };
                        event_type = Some(declared);
                    } else if let Some(json) = value_to_json(value) {
                        extras.insert(field.to_string(), json);
                    }
                }
            }
            other => {
                let label = string_field(param, "label")?;
                let confidence = number_field(param, "confidence")?.filter(|c| c.is_finite());
                if label.is_some() || confidence.is_some() {
                    let mut result = Map::new();
                    if let Some(label) = label {
                        result.insert("label".into(), label.into());
                    }
                    if let Some(confidence) = confidence {
                        result.insert("confidence".into(), confidence.into());
                    }
                    extras.insert(other.to_string(), Value::Object(result));
                }
            }
        }
    }

    // A detector that gives no confidence, as facedetect, is taken at its word.
    let conf = conf.unwrap_or(1.0);
    if !conf.is_finite() {
        return Err(Rejection::NonFiniteConfidence);
    }
    if !(0.0..=1.0).contains(&conf) {
        return Err(Rejection::ConfidenceOutOfRange(conf));
    }

    let bbox = match (rect, normalized) {
        ((_, _, 0, _) | (_, _, _, 0), Some(normalized)) => clip_normalized(normalized, frame)?,
        ((_, _, 0, _) | (_, _, _, 0), None) => return Err(Rejection::EmptyBox),
        (rect, _) => clip_pixels(rect, frame)?,
    };

    if conf < rules.min_confidence {
        return Err(Rejection::BelowMinConfidence);
    }
    if !rules.labels.is_empty() && !rules.labels.iter().any(|allowed| allowed == label) {
        return Err(Rejection::LabelNotAllowed);
    }

    let event_type = event_type
        .or_else(|| rules.type_map.event_type(label).map(str::to_string))
        .unwrap_or_else(|| label.to_string());

    Ok(Detection {
        label: label.to_string(),
        event_type,
        conf,
        bbox,
        extras,
    })
}

fn clip_pixels(
    (x, y, w, h): (u32, u32, u32, u32),
    (width, height): (u32, u32),
) -> Result<[u32; 4], Rejection> {
    let (Some(right), Some(bottom)) = (x.checked_add(w), y.checked_add(h)) else {
        return Err(Rejection::OverflowingBox);
    };
    if x >= width || y >= height {
        return Err(Rejection::OutsideFrame);
    }

    let (right, bottom) = (right.min(width), bottom.min(height));
    Ok([x, y, right - x, bottom - y])
}

fn clip_normalized(
    [x_min, y_min, x_max, y_max]: [f64; 4],
    (width, height): (u32, u32),
) -> Result<[u32; 4], Rejection> {
    if [x_min, y_min, x_max, y_max].iter().any(|v| !v.is_finite())
        || x_min >= x_max
        || y_min >= y_max
    {
        return Err(Rejection::InvalidNormalizedBox);
    }

    let to_pixels = |v: f64, size: u32| (v.clamp(0.0, 1.0) * f64::from(size)).round() as u32;
    let (left, right) = (to_pixels(x_min, width), to_pixels(x_max, width));
    let (top, bottom) = (to_pixels(y_min, height), to_pixels(y_max, height));
    if right <= left || bottom <= top {
        return Err(Rejection::OutsideFrame);
    }

    Ok([left, top, right - left, bottom - top])
}

fn normalized_box(param: &gst::StructureRef) -> Result<Option<[f64; 4]>, Rejection> {
    let mut corners = [0.0; 4];
    for (corner, field) in corners.iter_mut().zip(["x_min", "y_min", "x_max", "y_max"]) {
        match number_field(param, field)? {
            Some(value) => *corner = value,
            None => return Ok(None),
        }
    }
    Ok(Some(corners))
}

/// A number stored as double, float or integer. A float keeps its shortest decimal form, so a
/// detector's 0.87f32 becomes 0.87, not 0.8700000047683716.
fn number_field(param: &gst::StructureRef, field: &str) -> Result<Option<f64>, Rejection> {
    let Ok(value) = param.value(field) else {
        return Ok(None);
    };
    if let Ok(v) = value.get::<f64>() {
        Ok(Some(v))
    } else if let Ok(v) = value.get::<f32>() {
        Ok(Some(f32_to_f64_shortest(v)))
    } else if let Some(v) = integer_value(value) {
        Ok(Some(v as f64))
    } else {
        Err(wrong_type(param, field, value))
    }
}

fn integer_field(param: &gst::StructureRef, field: &str) -> Result<Option<i64>, Rejection> {
    let Ok(value) = param.value(field) else {
        return Ok(None);
    };
    match integer_value(value) {
        Some(v) => Ok(Some(v)),
        None => Err(wrong_type(param, field, value)),
    }
}

fn string_field(param: &gst::StructureRef, field: &str) -> Result<Option<String>, Rejection> {
    let Ok(value) = param.value(field) else {
        return Ok(None);
    };
    match value.get::<String>() {
        Ok(text) => Ok(Some(text)),
        Err(_) => Err(wrong_type(param, field, value)),
    }
}

fn integer_value(value: &glib::SendValue) -> Option<i64> {
    value
        .get::<i32>()
        .map(i64::from)
        .or_else(|_| value.get::<u32>().map(i64::from))
        .or_else(|_| value.get::<i64>())
        .or_else(|_| {
            value
                .get::<u64>()
                .map_err(|_| ())
                .and_then(|v| i64::try_from(v).map_err(|_| ()))
        })
        .ok()
}

fn wrong_type(param: &gst::StructureRef, field: &str, value: &glib::SendValue) -> Rejection {
    Rejection::WrongFieldType {
        field: format!("{}.{field}", param.name()),
        found: value.type_().name().to_string(),
    }
}

fn f32_to_f64_shortest(v: f32) -> f64 {
    if v.is_finite() {
        v.to_string().parse().unwrap_or(f64::from(v))
    } else {
        f64::from(v)
    }
}

/// The JSON form of a structure field: numbers, booleans and strings. Other GLib types and
/// non-finite numbers have no JSON form and are left out.
pub fn value_to_json(value: &glib::SendValue) -> Option<Value> {
    if let Ok(text) = value.get::<String>() {
        return Some(Value::String(text));
    }
    if let Ok(flag) = value.get::<bool>() {
        return Some(Value::Bool(flag));
    }
    if let Some(int) = integer_value(value) {
        return Some(Value::from(int));
    }
    if let Ok(v) = value.get::<u64>() {
        return Some(Value::from(v));
    }
    let float = value
        .get::<f64>()
        .ok()
        .or_else(|| value.get::<f32>().ok().map(f32_to_f64_shortest))?;
    serde_json::Number::from_f64(float).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FRAME: (u32, u32) = (640, 480);

    fn rules() -> DetectionRules {
        DetectionRules {
            type_map: TypeMap::parse(DEFAULT_TYPE_MAP).unwrap(),
            ..Default::default()
        }
    }

    fn detect(
        label: &str,
        rect: (u32, u32, u32, u32),
        params: &[gst::Structure],
    ) -> Result<Detection, Rejection> {
        gst::init().unwrap();
        from_roi(
            label,
            rect,
            params.iter().map(|s| s.as_ref()),
            FRAME,
            &rules(),
        )
    }

    #[test]
    fn facedetect_region_without_params_has_full_confidence() {
        let d = detect("face", (175, 64, 97, 97), &[]).unwrap();
        assert_eq!(d.label, "face");
        assert_eq!(d.event_type, "face");
        assert_eq!(d.conf, 1.0);
        assert_eq!(d.bbox, [175, 64, 97, 97]);
        assert!(d.extras.is_empty());
    }

    #[test]
    fn float_confidence_keeps_its_decimal_form() {
        gst::init().unwrap();
        let s = gst::Structure::builder("detection")
            .field("confidence", 0.87f32)
            .field("label_id", 3i32)
            .build();
        let d = detect("knife", (1, 2, 3, 4), &[s]).unwrap();
        assert_eq!(d.conf, 0.87);
        assert_eq!(d.event_type, "weapon");
        assert_eq!(
            d.extras,
            json!({"label_id": 3}).as_object().unwrap().clone()
        );
    }

    #[test]
    fn normalized_box_is_used_when_the_rect_is_empty() {
        gst::init().unwrap();
        let s = gst::Structure::builder("detection")
            .field("confidence", 0.5f64)
            .field("x_min", 0.25f64)
            .field("y_min", 0.5f64)
            .field("x_max", 0.5f64)
            .field("y_max", 1.25f64)
            .build();
        let d = detect("person", (0, 0, 0, 0), &[s]).unwrap();
        assert_eq!(d.bbox, [160, 240, 160, 240]);
    }

    #[test]
    fn structures_fill_type_and_extras() {
        gst::init().unwrap();
        let params = [
            gst::Structure::builder("object_id")
                .field("id", 42u32)
                .build(),
            gst::Structure::builder("license_plate")
                .field("label", "ABC1234")
                .field("confidence", 0.92f64)
                .build(),
            gst::Structure::builder("color")
                .field("label", "red")
                .field("confidence", 0.5f64)
                .build(),
        ];
        let d = detect("car", (10, 10, 100, 50), &params).unwrap();
        assert_eq!(d.event_type, "alpr");
        assert_eq!(
            Value::Object(d.extras),
            json!({"track_id": 42, "text": "ABC1234", "ocr_conf": 0.92,
                   "color": {"label": "red", "confidence": 0.5}})
        );
    }

    #[test]
    fn kvsinfer_structure_sets_type_and_copies_fields() {
        gst::init().unwrap();
        let s = gst::Structure::builder("kvsinfer")
            .field("type", "hazard")
            .field("zone", "dock-3")
            .field("severity", 2i32)
            .build();
        let d = detect("smoke", (0, 0, 10, 10), &[s]).unwrap();
        assert_eq!(d.event_type, "hazard");
        assert_eq!(
            Value::Object(d.extras),
            json!({"zone": "dock-3", "severity": 2})
        );
    }

    #[test]
    fn bad_confidences_are_rejected() {
        gst::init().unwrap();
        for (conf, expected) in [
            (f64::NAN, Rejection::NonFiniteConfidence),
            (f64::INFINITY, Rejection::NonFiniteConfidence),
            (1.5, Rejection::ConfidenceOutOfRange(1.5)),
            (-0.1, Rejection::ConfidenceOutOfRange(-0.1)),
        ] {
            let s = gst::Structure::builder("detection")
                .field("confidence", conf)
                .build();
            assert_eq!(detect("knife", (1, 1, 1, 1), &[s]), Err(expected));
        }
    }

    #[test]
    fn boxes_are_clipped_or_rejected() {
        assert_eq!(
            detect("a", (600, 400, 100, 100), &[]).unwrap().bbox,
            [600, 400, 40, 80]
        );
        assert_eq!(
            detect("a", (640, 0, 5, 5), &[]),
            Err(Rejection::OutsideFrame)
        );
        assert_eq!(
            detect("a", (0, 900, 5, 5), &[]),
            Err(Rejection::OutsideFrame)
        );
        assert_eq!(detect("a", (5, 5, 0, 5), &[]), Err(Rejection::EmptyBox));
        assert_eq!(
            detect("a", (u32::MAX - 1, 0, 5, 5), &[]),
            Err(Rejection::OverflowingBox)
        );
    }

    #[test]
    fn bad_normalized_boxes_are_rejected() {
        gst::init().unwrap();
        let with = |x_min: f64, x_max: f64| {
            gst::Structure::builder("detection")
                .field("x_min", x_min)
                .field("y_min", 0.1f64)
                .field("x_max", x_max)
                .field("y_max", 0.2f64)
                .build()
        };
        assert_eq!(
            detect("a", (0, 0, 0, 0), &[with(f64::NAN, 0.5)]),
            Err(Rejection::InvalidNormalizedBox)
        );
        assert_eq!(
            detect("a", (0, 0, 0, 0), &[with(0.6, 0.5)]),
            Err(Rejection::InvalidNormalizedBox)
        );
        assert_eq!(
            detect("a", (0, 0, 0, 0), &[with(-2.0, -1.0)]),
            Err(Rejection::OutsideFrame)
        );
    }

    #[test]
    fn wrong_field_types_are_rejected_with_the_field_name() {
        gst::init().unwrap();
        let s = gst::Structure::builder("detection")
            .field("confidence", "high")
            .build();
        assert_eq!(
            detect("knife", (1, 1, 1, 1), &[s]),
            Err(Rejection::WrongFieldType {
                field: "detection.confidence".into(),
                found: "gchararray".into()
            })
        );
    }

    #[test]
    fn filters_apply_after_validation() {
        gst::init().unwrap();
        let rules = DetectionRules {
            min_confidence: 0.5,
            labels: DetectionRules::parse_labels("knife, gun"),
            ..rules()
        };
        let low = gst::Structure::builder("detection")
            .field("confidence", 0.4f64)
            .build();
        assert_eq!(
            from_roi("knife", (1, 1, 1, 1), [low.as_ref()], FRAME, &rules),
            Err(Rejection::BelowMinConfidence)
        );
        assert_eq!(
            from_roi("face", (1, 1, 1, 1), [], FRAME, &rules),
            Err(Rejection::LabelNotAllowed)
        );
        assert!(from_roi("gun", (1, 1, 1, 1), [], FRAME, &rules).is_ok());
    }

    #[test]
    fn type_map_parses_and_reports_bad_pairs() {
        let map = TypeMap::parse("Knife:weapon, fire : fire").unwrap();
        assert_eq!(map.event_type("KNIFE"), Some("weapon"));
        assert_eq!(map.event_type("fire"), Some("fire"));
        assert_eq!(map.event_type("dog"), None);
        assert!(TypeMap::parse("knife").is_err());
        assert!(TypeMap::parse("knife:").is_err());
        assert_eq!(TypeMap::parse("").unwrap(), TypeMap::default());

        let twice = TypeMap::parse("knife:weapon, KNIFE:weapon").unwrap();
        assert_eq!(twice, TypeMap::parse("knife:weapon").unwrap());
        let error = TypeMap::parse("knife:weapon, Knife:tool").unwrap_err();
        assert_eq!(error, "'knife' is mapped to both 'weapon' and 'tool'");
    }
}
