// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The recorded detections `kvsinferreplay` attaches: a JSON Lines file, one line per frame.
//!
//! ```json
//! {"frame": 12, "detections": [{"label": "knife", "type": "weapon", "conf": 0.87,
//!   "bbox": [100, 200, 50, 75], "extras": {}}]}
//! ```
//!
//! `pts_ms` may stand instead of `frame` to match a frame by presentation time. A line that does
//! not parse is reported with its number and skipped; the rest still apply.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value};

/// One recorded detection, as it will be attached.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedDetection {
    pub label: String,
    pub event_type: Option<String>,
    pub conf: Option<f64>,
    pub bbox: [u32; 4],
    pub extras: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    frame: Option<u64>,
    pts_ms: Option<u64>,
    detections: Vec<RawDetection>,
}

#[derive(Debug, Deserialize)]
struct RawDetection {
    label: String,
    #[serde(rename = "type")]
    event_type: Option<String>,
    conf: Option<f64>,
    bbox: [i64; 4],
    #[serde(default)]
    extras: Map<String, Value>,
}

/// A line that was skipped, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct LineProblem {
    /// 1-based, as an editor shows it.
    pub line: usize,
    pub reason: String,
}

/// Every usable line of a replay file, indexed for lookup per frame.
#[derive(Debug, Default)]
pub struct ReplayScript {
    by_frame: HashMap<u64, Vec<RecordedDetection>>,
    /// Sorted by time.
    by_pts_ms: Vec<(u64, Vec<RecordedDetection>)>,
}

impl ReplayScript {
    /// Parses a whole file; bad lines are returned as problems, never as an error.
    pub fn parse(text: &str) -> (Self, Vec<LineProblem>) {
        Self::parse_bytes(text.as_bytes())
    }

    /// As [`ReplayScript::parse`], for a file's bytes: a line that is not UTF-8 is one bad line.
    pub fn parse_bytes(bytes: &[u8]) -> (Self, Vec<LineProblem>) {
        let mut script = ReplayScript::default();
        let mut problems = Vec::new();
        let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);

        for (index, raw) in bytes.split(|b| *b == b'\n').enumerate() {
            let Ok(line) = std::str::from_utf8(raw) else {
                problems.push(LineProblem {
                    line: index + 1,
                    reason: "the line is not valid UTF-8".into(),
                });
                continue;
            };
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let problem = |reason: String| LineProblem {
                line: index + 1,
                reason,
            };
            match parse_line(line) {
                Ok((Key::Frame(frame), detections)) => {
                    script.by_frame.entry(frame).or_default().extend(detections)
                }
                Ok((Key::PtsMs(pts), detections)) => script.by_pts_ms.push((pts, detections)),
                Err(reason) => problems.push(problem(reason)),
            }
        }

        script.by_pts_ms.sort_by_key(|(pts, _)| *pts);
        (script, problems)
    }

    /// Lines in the script.
    pub fn len(&self) -> usize {
        self.by_frame.len() + self.by_pts_ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The detections of frame number `frame` (counted from 0) whose presentation time spans
    /// `[pts_ms, pts_ms + duration_ms)`.
    pub fn detections_for(
        &self,
        frame: u64,
        pts_ms: Option<(u64, u64)>,
    ) -> impl Iterator<Item = &RecordedDetection> {
        let by_frame = self.by_frame.get(&frame).into_iter().flatten();
        let by_time = pts_ms.into_iter().flat_map(|(start, duration)| {
            let end = start.saturating_add(duration.max(1));
            let first = self.by_pts_ms.partition_point(|(pts, _)| *pts < start);
            self.by_pts_ms[first..]
                .iter()
                .take_while(move |(pts, _)| *pts < end)
                .flat_map(|(_, detections)| detections)
        });
        by_frame.chain(by_time)
    }
}

impl RecordedDetection {
    /// The region-of-interest parameters `kvsinfersink` reads back into this detection: a
    /// `detection` structure with the confidence, a `kvsinfer` structure with the type and
    /// extras, and for plates a `license_plate` structure with the text.
    pub fn to_params(&self) -> Vec<gst::Structure> {
        let mut params = Vec::new();
        if let Some(conf) = self.conf {
            params.push(
                gst::Structure::builder("detection")
                    .field("confidence", conf)
                    .build(),
            );
        }

        let mut extras = self.extras.clone();
        // A plate is text with, optionally, a numeric OCR confidence; extras named so but of
        // another kind travel as ordinary extras, like any other.
        if let Some(Value::String(text)) = extras.get("text") {
            let mut plate = gst::Structure::builder("license_plate").field("label", text.as_str());
            if let Some(ocr_conf) = extras.get("ocr_conf").and_then(Value::as_f64) {
                plate = plate.field("confidence", ocr_conf);
                extras.remove("ocr_conf");
            }
            params.push(plate.build());
            extras.remove("text");
        }

        if self.event_type.is_some() || !extras.is_empty() {
            let mut kvsinfer = gst::Structure::new_empty("kvsinfer");
            if let Some(event_type) = &self.event_type {
                kvsinfer.set("type", event_type);
            }
            for (name, value) in &extras {
                if name == "type" {
                    continue;
                }
                match value {
                    Value::String(text) => kvsinfer.set(name.as_str(), text),
                    Value::Bool(flag) => kvsinfer.set(name.as_str(), flag),
                    Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                        (Some(int), _, _) => kvsinfer.set(name.as_str(), int),
                        (None, Some(uint), _) => kvsinfer.set(name.as_str(), uint),
                        (None, None, Some(float)) => kvsinfer.set(name.as_str(), float),
                        (None, None, None) => (),
                    },
                    Value::Null => (),
                    // Structures hold no JSON trees: nested values travel as JSON text.
                    nested => kvsinfer.set(name.as_str(), nested.to_string()),
                }
            }
            params.push(kvsinfer);
        }
        params
    }
}

enum Key {
    Frame(u64),
    PtsMs(u64),
}

fn parse_line(line: &str) -> Result<(Key, Vec<RecordedDetection>), String> {
    let parsed: Line = serde_json::from_str(line).map_err(|err| err.to_string())?;
    let key = match (parsed.frame, parsed.pts_ms) {
        (Some(frame), None) => Key::Frame(frame),
        (None, Some(pts)) => Key::PtsMs(pts),
        (Some(_), Some(_)) => return Err("has both 'frame' and 'pts_ms'".into()),
        (None, None) => return Err("has neither 'frame' nor 'pts_ms'".into()),
    };

    let mut detections = Vec::with_capacity(parsed.detections.len());
    for (i, raw) in parsed.detections.into_iter().enumerate() {
        let bbox = raw
            .bbox
            .map(u32::try_from)
            .into_iter()
            .collect::<Result<Vec<u32>, _>>()
            .map_err(|_| {
                format!(
                    "detection {i} has a negative or oversized bbox {:?}",
                    raw.bbox
                )
            })?;
        if raw.conf.is_some_and(|conf| !conf.is_finite()) {
            return Err(format!("detection {i} has a non-finite conf"));
        }
        // The region's label travels as a GStreamer quark, a C string, which would cut it.
        if raw.label.contains('\0') {
            return Err(format!(
                "detection {i} has a NUL character in its label, which GStreamer cannot carry"
            ));
        }
        detections.push(RecordedDetection {
            label: raw.label,
            event_type: raw.event_type,
            conf: raw.conf,
            bbox: [bbox[0], bbox[1], bbox[2], bbox[3]],
            extras: raw.extras,
        });
    }
    Ok((key, detections))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FILE: &str = r#"{"frame": 0, "detections": [{"label": "knife", "type": "weapon", "conf": 0.87, "bbox": [100, 200, 50, 75], "extras": {"zone": "a"}}]}
this is not json

{"frame": 1, "detections": [{"label": "gun", "bbox": [-1, 0, 5, 5]}]}
{"frame": 2, "detections": [{"type": "fire", "bbox": [0, 0, 5, 5]}]}
{"pts_ms": 1500, "detections": [{"label": "fire", "bbox": [1, 2, 3, 4]}]}
{"frame": 3, "pts_ms": 3, "detections": []}
{"frame": 4, "detections": [{"label": "ab\u0000cd", "bbox": [1, 2, 3, 4]}]}
"#;

    #[test]
    fn good_lines_apply_and_bad_lines_are_named() {
        let (script, problems) = ReplayScript::parse(FILE);
        assert_eq!(script.len(), 2);

        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [2, 4, 5, 7, 8]);
        assert!(problems[1].reason.contains("negative"), "{problems:?}");
        assert!(
            problems[2].reason.contains("missing field `label`"),
            "{problems:?}"
        );
        assert!(problems[3].reason.contains("both"), "{problems:?}");
        assert!(problems[4].reason.contains("NUL"), "{problems:?}");

        let first: Vec<_> = script.detections_for(0, None).collect();
        assert_eq!(
            first,
            [&RecordedDetection {
                label: "knife".into(),
                event_type: Some("weapon".into()),
                conf: Some(0.87),
                bbox: [100, 200, 50, 75],
                extras: json!({"zone": "a"}).as_object().unwrap().clone(),
            }]
        );
    }

    #[test]
    fn attached_params_read_back_as_the_recorded_detection() {
        gst::init().unwrap();
        let recorded = RecordedDetection {
            label: "plate".into(),
            event_type: Some("alpr".into()),
            conf: Some(0.87),
            bbox: [10, 20, 30, 40],
            extras: json!({"text": "ABC1234", "ocr_conf": 0.92, "lane": 2, "gate": "north"})
                .as_object()
                .unwrap()
                .clone(),
        };
        let params = recorded.to_params();
        let rules = crate::detection::DetectionRules::default();
        let read = crate::detection::from_roi(
            &recorded.label,
            (10, 20, 30, 40),
            params.iter().map(|p| p.as_ref()),
            (640, 480),
            &rules,
        )
        .unwrap();

        assert_eq!(read.event_type, "alpr");
        assert_eq!(read.conf, 0.87);
        assert_eq!(read.bbox, recorded.bbox);
        assert_eq!(
            Value::Object(read.extras),
            json!({"text": "ABC1234", "ocr_conf": 0.92, "lane": 2, "gate": "north"})
        );
    }

    #[test]
    fn extras_named_like_a_plate_but_of_another_kind_are_kept() {
        gst::init().unwrap();
        let extras = json!({"text": 1234, "ocr_conf": "high", "zone": "a"});
        let recorded = RecordedDetection {
            label: "plate".into(),
            event_type: Some("alpr".into()),
            conf: Some(0.5),
            bbox: [10, 20, 30, 40],
            extras: extras.as_object().unwrap().clone(),
        };
        let params = recorded.to_params();
        let read = crate::detection::from_roi(
            &recorded.label,
            (10, 20, 30, 40),
            params.iter().map(|p| p.as_ref()),
            (640, 480),
            &crate::detection::DetectionRules::default(),
        )
        .unwrap();
        assert_eq!(Value::Object(read.extras), extras);
    }

    #[test]
    fn a_line_that_is_not_utf8_is_skipped_alone() {
        let mut bytes = "\u{feff}{\"frame\": 0, \"detections\": []}\n"
            .as_bytes()
            .to_vec();
        bytes.extend_from_slice(b"{\"frame\": 1, \"detections\": [{\"label\": \"\xff\"}]}\n");
        bytes.extend_from_slice(
            b"{\"frame\": 2, \"detections\": [{\"label\": \"gun\", \"bbox\": [1, 2, 3, 4]}]}\r\n",
        );
        let (script, problems) = ReplayScript::parse_bytes(&bytes);
        assert_eq!(script.len(), 2);
        assert_eq!(
            problems,
            [LineProblem {
                line: 2,
                reason: "the line is not valid UTF-8".into()
            }]
        );
        assert_eq!(script.detections_for(2, None).count(), 1);
    }

    #[test]
    fn presentation_time_matches_the_frame_that_spans_it() {
        let (script, _) = ReplayScript::parse(FILE);
        assert_eq!(script.detections_for(9, Some((1480, 40))).count(), 1);
        assert_eq!(script.detections_for(9, Some((1500, 0))).count(), 1);
        assert_eq!(script.detections_for(9, Some((1501, 40))).count(), 0);
        assert_eq!(script.detections_for(9, None).count(), 0);
    }
}
