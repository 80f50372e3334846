// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! GObject glue of `kvsinferreplay`; the file format lives in `script`.

use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::VideoRegionOfInterestMeta;

use super::script::ReplayScript;

/// Bad lines reported one by one on the bus; past this, one summary.
const MAX_LINE_WARNINGS: usize = 10;

#[derive(Debug, Default, Clone)]
struct Settings {
    location: Option<PathBuf>,
}

struct Started {
    script: ReplayScript,
    /// Frames seen since start or the last flush.
    frame: u64,
}

/// Lock order: `state` before `settings`.
#[derive(Default)]
pub struct KvsInferReplay {
    settings: Mutex<Settings>,
    state: Mutex<Option<Started>>,
}

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "kvsinferreplay",
        gst::DebugColorFlags::empty(),
        Some("Recorded detections replay"),
    )
});

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[glib::object_subclass]
impl ObjectSubclass for KvsInferReplay {
    const NAME: &'static str = "GstKvsInferReplay";
    type Type = super::KvsInferReplay;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for KvsInferReplay {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("location")
                    .nick("Location")
                    .blurb("JSON Lines file of recorded detections, one line per frame")
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        if pspec.name() == "location" {
            lock(&self.settings).location = value
                .get::<Option<String>>()
                .ok()
                .flatten()
                .map(PathBuf::from);
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "location" => lock(&self.settings)
                .location
                .as_ref()
                .map(|path| path.display().to_string())
                .to_value(),
            _ => pspec.default_value().clone(),
        }
    }
}

impl GstObjectImpl for KvsInferReplay {}

impl ElementImpl for KvsInferReplay {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Recorded detections replay",
                "Filter/Video/Analyzer",
                "Attaches detections read from a JSON Lines file as region-of-interest metadata",
                "gst-plugin-kvsinfer developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::builder("video/x-raw").any_features().build();
            [gst::PadDirection::Src, gst::PadDirection::Sink]
                .into_iter()
                .map(|direction| {
                    let name = if direction == gst::PadDirection::Src {
                        "src"
                    } else {
                        "sink"
                    };
                    gst::PadTemplate::new(name, direction, gst::PadPresence::Always, &caps)
                        .expect("the pad templates are valid")
                })
                .collect()
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for KvsInferReplay {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let Some(location) = lock(&self.settings).location.clone() else {
            return Err(gst::error_msg!(
                gst::ResourceError::NotFound,
                ("Property 'location' is required: the JSON Lines file to replay")
            ));
        };
        let bytes = std::fs::read(&location).map_err(|err| {
            gst::error_msg!(
                gst::ResourceError::OpenRead,
                ("Cannot read replay file '{}': {err}", location.display())
            )
        })?;

        let (script, problems) = ReplayScript::parse_bytes(&bytes);
        // Every bad line is in the debug log; the bus gets the first few and a summary.
        for problem in &problems {
            gst::warning!(
                CAT,
                imp = self,
                "Line {} skipped: {}",
                problem.line,
                problem.reason
            );
        }
        for problem in problems.iter().take(MAX_LINE_WARNINGS) {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                (
                    "{}:{}: line skipped: {}",
                    location.display(),
                    problem.line,
                    problem.reason
                )
            );
        }
        if problems.len() > MAX_LINE_WARNINGS {
            let more: Vec<String> = problems[MAX_LINE_WARNINGS..]
                .iter()
                .map(|problem| problem.line.to_string())
                .collect();
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                (
                    "{}: {} more lines skipped (lines {}); the debug log has each reason",
                    location.display(),
                    more.len(),
                    more.join(", ")
                )
            );
        }

        gst::info!(
            CAT,
            imp = self,
            "Replaying {} lines of {}",
            script.len(),
            location.display()
        );
        *lock(&self.state) = Some(Started { script, frame: 0 });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *lock(&self.state) = None;
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::FlushStop(_) = event.view()
            && let Some(started) = &mut *lock(&self.state)
        {
            started.frame = 0;
        }
        self.parent_sink_event(event)
    }

    fn transform_ip(
        &self,
        buffer: &mut gst::BufferRef,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut state = lock(&self.state);
        let Some(started) = &mut *state else {
            return Err(gst::FlowError::Flushing);
        };

        let frame = started.frame;
        started.frame += 1;
        let pts_ms = buffer.pts().map(|pts| {
            let duration = buffer.duration().map_or(0, gst::ClockTime::mseconds);
            (pts.mseconds(), duration)
        });

        let detections: Vec<_> = started
            .script
            .detections_for(frame, pts_ms)
            .cloned()
            .collect();
        for detection in &detections {
            let [x, y, w, h] = detection.bbox;
            let mut meta = VideoRegionOfInterestMeta::add(buffer, &detection.label, (x, y, w, h));
            for param in detection.to_params() {
                meta.add_param(param);
            }
        }
        gst::trace!(
            CAT,
            imp = self,
            "Frame {frame}: {} detections",
            detections.len()
        );
        Ok(gst::FlowSuccess::Ok)
    }
}
