// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! GObject glue of `kvsinfersink`: properties, caps, state and the BaseSink virtual methods.
//! The work lives in `extract`, `delivery` and `destination`.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use super::aws_properties;
use super::delivery_properties::{self, DeliveryProperties};
use crate::CAT;
use crate::aws::{self, AwsProperties};
use crate::delivery::budget::{Admission, Budget, WhenFull};
use crate::delivery::spool::Spool;
use crate::delivery::{
    self as delivery, DeliveryObserver, DeliveryOptions, DestinationTask, Dispatcher, Event, Job,
};
use crate::destination::file::FileDestination;
use crate::detection::{self, DetectionRules, TypeMap};
use crate::envelope::{self, TimestampMode};
use crate::extract::{self, EventExtractor};
use crate::kvstag::{self, FragmentTagger};
use crate::ratelimit::RateLimiter;
use crate::stats::{self, SinkStats};

const DEFAULT_MIN_CONFIDENCE: f64 = 0.0;
const DEFAULT_DEDUP_WINDOW_MS: u32 = 1000;
const MAX_DEDUP_WINDOW_MS: u32 = 24 * 60 * 60 * 1000;
const DEFAULT_TIMESTAMP_MODE: TimestampMode = TimestampMode::Auto;
const DEFAULT_POST_MESSAGES: bool = false;
const DEFAULT_FLUSH_TIMEOUT_MS: u32 = 10_000;
/// How long stopping waits for deliveries still in flight: a state change must return promptly,
/// within 1 s in all, whatever the network does.
const STOP_TIMEOUT: Duration = Duration::from_millis(500);
/// Events written to the local directory in one append and one sync, at most.
const FILE_MAX_BATCH: usize = 1024;

/// The formats the sink takes as they are, with no `videoconvert` in front.
const FORMATS: [gst_video::VideoFormat; 17] = {
    use gst_video::VideoFormat::*;
    [
        Rgb, Bgr, Rgbx, Bgrx, Xrgb, Xbgr, Rgba, Bgra, Argb, Abgr, I420, Yv12, Nv12, Nv21, Yuy2,
        Uyvy, Gray8,
    ]
};

#[derive(Debug, Clone)]
struct Settings {
    camera_id: Option<String>,
    producer: String,
    type_map: String,
    min_confidence: f64,
    labels: String,
    dedup_window_ms: u32,
    timestamp_mode: TimestampMode,
    output_dir: Option<PathBuf>,
    post_messages: bool,
    flush_timeout_ms: u32,
    kvssink_name: Option<String>,
    /// Every AWS property, see `aws_properties`.
    aws: AwsProperties,
    delivery: DeliveryProperties,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            camera_id: None,
            producer: envelope::DEFAULT_PRODUCER.to_string(),
            type_map: detection::DEFAULT_TYPE_MAP.to_string(),
            min_confidence: DEFAULT_MIN_CONFIDENCE,
            labels: String::new(),
            dedup_window_ms: DEFAULT_DEDUP_WINDOW_MS,
            timestamp_mode: DEFAULT_TIMESTAMP_MODE,
            output_dir: None,
            post_messages: DEFAULT_POST_MESSAGES,
            flush_timeout_ms: DEFAULT_FLUSH_TIMEOUT_MS,
            kvssink_name: None,
            aws: AwsProperties::default(),
            delivery: DeliveryProperties::default(),
        }
    }
}

struct Started {
    extractor: EventExtractor,
    dispatcher: Dispatcher,
    /// (width, height) of the negotiated caps.
    frame: Option<(u32, u32)>,
    warnings: RateLimiter,
    flush_timeout: Duration,
    budget: Arc<Budget>,
    when_full: WhenFull,
    /// The kvssink whose fragments are tagged with events, and what fits in a fragment.
    fragment_tags: Option<(String, FragmentTagger)>,
}

#[derive(Default)]
enum State {
    #[default]
    Stopped,
    Started(Box<Started>),
}

/// Lock order: `state` before `settings`; `destination_stats` is never held with another.
#[derive(Default)]
pub struct KvsInferSink {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    stats: Arc<SinkStats>,
    /// The counters of the current or last run, so that `stats` still adds up after stopping.
    destination_stats: Mutex<Vec<Arc<stats::DestinationStats>>>,
    /// The running budget, reachable by `unlock()` without the state lock that `render()` holds.
    budget: Mutex<Option<Arc<Budget>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl KvsInferSink {
    fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    fn build(&self, settings: &Settings) -> Result<Started, gst::ErrorMessage> {
        let settings_error =
            |message: String| gst::error_msg!(gst::LibraryError::Settings, ("{message}"));

        let Some(camera_id) = settings.camera_id.clone() else {
            return Err(settings_error(
                "Property 'camera-id' is required: set it to the camera's name (letters, digits, \
                 '.', '_', '-')"
                    .into(),
            ));
        };
        extract::validate_camera_id(&camera_id).map_err(settings_error)?;
        let type_map = TypeMap::parse(&settings.type_map)
            .map_err(|err| settings_error(format!("Property 'type-map' is invalid: {err}")))?;

        let mut destinations = Vec::new();
        if let Some(dir) = &settings.output_dir {
            let file = FileDestination::open(dir).map_err(|err| {
                gst::error_msg!(
                    gst::ResourceError::OpenWrite,
                    ("Property 'output-dir': {err}")
                )
            })?;
            destinations.push(DestinationTask::new(file, FILE_MAX_BATCH));
        }
        // Settings only: clients are built, and credentials resolved, by the delivery tasks.
        let mut aws = aws::resolve(&settings.aws, &aws::process_env).map_err(settings_error)?;
        aws.spooled = settings.delivery.spool_dir.is_some();
        gst::debug!(CAT, imp = self, "AWS destinations: {aws:?}");
        let (aws_tasks, linker) = crate::destination::aws_tasks(&aws);
        destinations.extend(aws_tasks);
        if destinations.is_empty() {
            return Err(settings_error(
                "No destination configured: set at least one of 'output-dir' (local directory), \
                 'kinesis-stream', 's3-bucket' or 'dynamodb-table'"
                    .into(),
            ));
        }

        let runtime = crate::runtime::runtime().map_err(|err| {
            gst::error_msg!(
                gst::CoreError::Failed,
                ("Cannot start the delivery runtime: {err}")
            )
        })?;
        let observer = Arc::new(SinkObserver {
            sink: self.obj().downgrade(),
            warnings: Mutex::default(),
        });
        let spool = match &settings.delivery.spool_dir {
            Some(dir) => {
                let mask = destinations.iter().fold(0, |mask, d| mask | d.bit());
                let (spool, left) = Spool::open(dir, settings.delivery.spool_max_bytes, mask)
                    .map_err(|err| {
                        gst::error_msg!(
                            gst::ResourceError::OpenWrite,
                            ("Property 'spool-dir': {err}")
                        )
                    })?;
                if !left.is_empty() {
                    gst::info!(
                        CAT,
                        imp = self,
                        "Resending {} events left in the spool",
                        left.len()
                    );
                }
                Some((Arc::new(spool), left))
            }
            None => None,
        };
        let options = DeliveryOptions {
            spool,
            dead_letter_dir: delivery::dead_letter_dir(
                settings.output_dir.as_deref(),
                settings.delivery.spool_dir.as_deref(),
            ),
            sink_stats: self.stats.clone(),
        };
        let budget_bytes =
            usize::try_from(settings.delivery.max_pending_bytes).unwrap_or(usize::MAX);

        let rules = DetectionRules {
            type_map,
            min_confidence: settings.min_confidence,
            labels: DetectionRules::parse_labels(&settings.labels),
        };
        Ok(Started {
            extractor: EventExtractor::new(
                camera_id,
                settings.producer.clone(),
                u64::from(settings.dedup_window_ms),
                rules,
                settings.timestamp_mode,
            ),
            dispatcher: Dispatcher::start(runtime, destinations, observer, linker, options),
            budget: Budget::new(budget_bytes),
            when_full: settings.delivery.when_full,
            frame: None,
            warnings: RateLimiter::default(),
            flush_timeout: Duration::from_millis(u64::from(settings.flush_timeout_ms)),
            fragment_tags: settings.kvssink_name.clone().map(|name| {
                let duration = self.kvssink_fragment_duration(&name);
                (name, FragmentTagger::new(duration))
            }),
        })
    }

    /// The named kvssink's `fragment-duration`, when it is already in the pipeline.
    fn kvssink_fragment_duration(&self, name: &str) -> Duration {
        let mut top = self.obj().clone().upcast::<gst::Object>();
        while let Some(parent) = top.parent() {
            top = parent;
        }
        top.downcast_ref::<gst::Bin>()
            .and_then(|bin| bin.by_name(name))
            .filter(|kvssink| {
                kvssink.has_property_with_type("fragment-duration", u32::static_type())
            })
            .map(|kvssink| {
                Duration::from_millis(u64::from(kvssink.property::<u32>("fragment-duration")))
            })
            .unwrap_or(kvstag::DEFAULT_FRAGMENT_DURATION)
    }

    /// Tags the kvssink's current fragment with new events, from a worker thread: the event is
    /// serialized and waits for kvssink's streaming thread, which this one must never do.
    fn tag_fragment(&self, started: &mut Started, envelopes: &[envelope::Envelope]) {
        let Some((name, tagger)) = &mut started.fragment_tags else {
            return;
        };
        let events = tagger.events(envelopes, Instant::now());
        let Ok(runtime) = crate::runtime::runtime() else {
            return;
        };
        if events.is_empty() {
            return;
        }

        let sink = self.obj().clone().upcast::<gst::Element>();
        let name = name.clone();
        runtime.spawn_blocking(move || {
            if let Err(err) = kvstag::send_to_element(&sink, &name, events) {
                gst::warning!(CAT, obj = sink, "Cannot tag the KVS fragment: {err}");
            }
        });
    }

    /// Counts and reports events that did not fit in `max-pending-bytes`.
    fn drop_events(&self, count: usize) {
        self.stats
            .events_dropped
            .fetch_add(count as u64, std::sync::atomic::Ordering::Relaxed);
        gst::warning!(
            CAT,
            imp = self,
            "Dropped {count} events: max-pending-bytes is reached"
        );
        let mut state = lock(&self.state);
        let State::Started(started) = &mut *state else {
            return;
        };
        if let Some(held_back) = started.warnings.allow("events-dropped", Instant::now()) {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::NoSpaceLeft,
                ("Dropped {count} events: max-pending-bytes is reached ({held_back} more held back)")
            );
        }
    }

    fn stats_structure(&self) -> gst::Structure {
        stats::to_structure(&self.stats, &lock(&self.destination_stats))
    }

    /// Posts a rate-limited bus warning about a rejected region.
    fn warn_rejected(&self, started: &mut Started, label: &str, rejection: &detection::Rejection) {
        gst::log!(CAT, imp = self, "Skipped region {label:?}: {rejection}");
        if rejection.is_filter() {
            return;
        }
        let Some(held_back) = started.warnings.allow(rejection.reason(), Instant::now()) else {
            return;
        };

        let more = match held_back {
            0 => String::new(),
            n => format!(" ({n} more since the last warning)"),
        };
        gst::warning!(
            CAT,
            imp = self,
            "Skipped region {label:?}: {rejection}{more}"
        );
        gst::element_imp_warning!(
            self,
            gst::StreamError::Format,
            ("Skipped detection {label:?}: {rejection}{more}"),
            details: gst::Structure::builder("kvsinfer-rejected")
                .field("reason", rejection.reason())
                .field("label", label)
                .build()
        );
    }
}

/// What an envelope weighs in the pending budget, without serializing it on the streaming
/// thread: the fixed part of the JSON plus the variable strings.
fn estimated_size(envelope: &envelope::Envelope) -> usize {
    const FIXED_JSON_BYTES: usize = 256;
    let payload = &envelope.payload;
    let extras: usize = payload
        .extras
        .iter()
        .map(|(k, v)| k.len() + v.to_string().len() + 4)
        .sum();
    FIXED_JSON_BYTES
        + envelope.camera_id.len()
        + envelope.producer.len()
        + payload.label.len()
        + payload.event_type.len()
        + extras
}

/// Reports delivery outcomes on the sink's bus, from the worker threads.
struct SinkObserver {
    sink: glib::WeakRef<super::KvsInferSink>,
    warnings: Mutex<RateLimiter>,
}

impl SinkObserver {
    /// A bus warning of `kind`, at most one per interval.
    fn warn(
        &self,
        sink: &super::KvsInferSink,
        kind: &'static str,
        message: &str,
        details: gst::Structure,
    ) {
        let Some(held_back) = lock(&self.warnings).allow(kind, Instant::now()) else {
            return;
        };
        let more = match held_back {
            0 => String::new(),
            n => format!(" ({n} more since the last warning)"),
        };
        gst::element_warning!(sink, gst::ResourceError::Write, ("{message}{more}"), details: details);
    }
}

impl DeliveryObserver for SinkObserver {
    fn degraded(&self, kind: &'static str, message: &str) {
        let Some(sink) = self.sink.upgrade() else {
            return;
        };
        gst::warning!(CAT, obj = sink, "{kind}: {message}");
        let details = gst::Structure::builder("kvsinfer-degraded")
            .field("kind", kind)
            .build();
        self.warn(&sink, kind, message, details);
    }

    fn delivered(&self, event: &Event) {
        let Some(sink) = self.sink.upgrade() else {
            return;
        };
        let imp = sink.imp();
        if !lock(&imp.settings).post_messages {
            return;
        }

        let payload = &event.envelope.payload;
        let bbox = gst::Array::new(payload.bbox.iter().map(|v| v.to_send_value()));
        let structure = gst::Structure::builder("kvsinfer-event")
            .field("event-id", &event.envelope.event_id)
            .field("camera-id", &event.envelope.camera_id)
            .field("ts-ms", payload.ts_ms)
            .field("type", &payload.event_type)
            .field("label", &payload.label)
            .field("conf", payload.conf)
            .field("bbox", bbox)
            .build();
        let _ = sink.post_message(gst::message::Element::builder(structure).src(&sink).build());
    }

    fn dead_lettered(&self, destination: &'static str, event: &Event, reason: &str) {
        let Some(sink) = self.sink.upgrade() else {
            return;
        };
        let id = &event.envelope.event_id;
        gst::warning!(
            CAT,
            obj = sink,
            "Event {id} dead-lettered by {destination}: {reason}"
        );

        let details = gst::Structure::builder("kvsinfer-dead-letter")
            .field("destination", destination)
            .field("event-id", id)
            .build();
        let message = format!("Event {id} could not be delivered to {destination}: {reason}");
        self.warn(&sink, destination, &message, details);
    }
}

#[glib::object_subclass]
impl ObjectSubclass for KvsInferSink {
    const NAME: &'static str = "GstKvsInferSink";
    type Type = super::KvsInferSink;
    type ParentType = gst_base::BaseSink;
}

impl ObjectImpl for KvsInferSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("camera-id")
                    .nick("Camera ID")
                    .blurb("Name of the camera, required: letters, digits, '.', '_', '-', at most 128 bytes")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("producer")
                    .nick("Producer")
                    .blurb("Producer string written in every envelope")
                    .default_value(Some(envelope::DEFAULT_PRODUCER))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("type-map")
                    .nick("Type Map")
                    .blurb("Comma-separated label:type pairs naming the event type of a label")
                    .default_value(Some(detection::DEFAULT_TYPE_MAP))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("min-confidence")
                    .nick("Minimum Confidence")
                    .blurb("Detections below this confidence are ignored")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_MIN_CONFIDENCE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("labels")
                    .nick("Labels")
                    .blurb("Comma-separated labels to keep, empty = every label")
                    .default_value(Some(""))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("dedup-window")
                    .nick("Dedup Window")
                    .blurb("Window in ms within which an object yields one event")
                    .minimum(1)
                    .maximum(MAX_DEDUP_WINDOW_MS)
                    .default_value(DEFAULT_DEDUP_WINDOW_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("timestamp-mode", DEFAULT_TIMESTAMP_MODE)
                    .nick("Timestamp Mode")
                    .blurb("Where an event's ts_ms comes from")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("output-dir")
                    .nick("Output Directory")
                    .blurb("Local directory receiving events.jsonl, unset = no local output")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post Messages")
                    .blurb("Post a kvsinfer-event element message for every delivered event")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("flush-timeout")
                    .nick("Flush Timeout")
                    .blurb("How long EOS waits for pending deliveries, in ms, 0 = not at all")
                    .default_value(DEFAULT_FLUSH_TIMEOUT_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("kvssink-name")
                    .nick("kvssink Name")
                    .blurb("Name of a kvssink in the pipeline whose fragments get a tag per event, unset = none")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("Counters of frames, detections, rejections, events and deliveries")
                    .read_only()
                    .build(),
            ]
            .into_iter()
            .chain(aws_properties::specs())
            .chain(delivery_properties::specs())
            .collect()
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = lock(&self.settings);
        let text = || value.get::<Option<String>>().ok().flatten();
        if delivery_properties::set(&mut settings.delivery, pspec.name(), value) {
            gst::debug!(CAT, imp = self, "Set property '{}'", pspec.name());
            return;
        }
        if aws_properties::set(&mut settings.aws, pspec.name(), value) {
            // The name only: some of these values are secrets.
            gst::debug!(CAT, imp = self, "Set property '{}'", pspec.name());
            return;
        }
        match pspec.name() {
            "camera-id" => settings.camera_id = text(),
            "producer" => settings.producer = text().unwrap_or_default(),
            "type-map" => settings.type_map = text().unwrap_or_default(),
            "min-confidence" => {
                settings.min_confidence = value.get().unwrap_or(DEFAULT_MIN_CONFIDENCE)
            }
            "labels" => settings.labels = text().unwrap_or_default(),
            "dedup-window" => {
                settings.dedup_window_ms = value.get().unwrap_or(DEFAULT_DEDUP_WINDOW_MS)
            }
            "timestamp-mode" => {
                settings.timestamp_mode = value.get().unwrap_or(DEFAULT_TIMESTAMP_MODE)
            }
            "output-dir" => settings.output_dir = text().map(PathBuf::from),
            "post-messages" => {
                settings.post_messages = value.get().unwrap_or(DEFAULT_POST_MESSAGES)
            }
            "kvssink-name" => settings.kvssink_name = text(),
            "flush-timeout" => {
                settings.flush_timeout_ms = value.get().unwrap_or(DEFAULT_FLUSH_TIMEOUT_MS)
            }
            other => gst::warning!(CAT, imp = self, "Property '{other}' cannot be set"),
        }
        gst::debug!(CAT, imp = self, "Set property '{}'", pspec.name());
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "stats" {
            return self.stats_structure().to_value();
        }
        let settings = lock(&self.settings);
        if let Some(value) = aws_properties::get(&settings.aws, pspec.name())
            .or_else(|| delivery_properties::get(&settings.delivery, pspec.name()))
        {
            return value;
        }
        match pspec.name() {
            "camera-id" => settings.camera_id.to_value(),
            "producer" => settings.producer.to_value(),
            "type-map" => settings.type_map.to_value(),
            "min-confidence" => settings.min_confidence.to_value(),
            "labels" => settings.labels.to_value(),
            "dedup-window" => settings.dedup_window_ms.to_value(),
            "timestamp-mode" => settings.timestamp_mode.to_value(),
            "output-dir" => settings
                .output_dir
                .as_ref()
                .map(|dir| dir.display().to_string())
                .to_value(),
            "post-messages" => settings.post_messages.to_value(),
            "flush-timeout" => settings.flush_timeout_ms.to_value(),
            "kvssink-name" => settings.kvssink_name.to_value(),
            _ => pspec.default_value().clone(),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        // A live camera pipeline must never be throttled by this sink's clock.
        self.obj().set_sync(false);
    }
}

impl GstObjectImpl for KvsInferSink {}

impl ElementImpl for KvsInferSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Detection events sink",
                "Sink/Video/Analyzer",
                "Turns detection metadata into event envelopes and delivers them to a local \
                 directory or AWS",
                "gst-plugin-kvsinfer developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list(FORMATS)
                .build();
            let sink = gst::PadTemplate::new(
                "sink",
                gst::PadDirection::Sink,
                gst::PadPresence::Always,
                &caps,
            );
            vec![sink.expect("the sink pad template is valid")]
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseSinkImpl for KvsInferSink {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings();
        let started = self.build(&settings).inspect_err(|err| {
            gst::error!(CAT, imp = self, "Cannot start: {err}");
        })?;
        self.stats.reset();
        *lock(&self.destination_stats) = started.dispatcher.destination_stats().to_vec();
        *lock(&self.budget) = Some(started.budget.clone());
        *lock(&self.state) = State::Started(Box::new(started));
        gst::info!(CAT, imp = self, "Started");
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let State::Started(started) = std::mem::take(&mut *lock(&self.state)) else {
            return Ok(());
        };
        let left = started
            .dispatcher
            .shutdown(STOP_TIMEOUT.min(started.flush_timeout));
        if left > 0 {
            gst::warning!(
                CAT,
                imp = self,
                "Stopped with {left} events not yet delivered"
            );
        }
        gst::info!(CAT, imp = self, "Stopped");
        Ok(())
    }

    fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(caps)
            .map_err(|_| gst::loggable_error!(CAT, "Caps without a usable video size: {caps}"))?;
        gst::debug!(
            CAT,
            imp = self,
            "Frames are {}x{} {}",
            info.width(),
            info.height(),
            info.format()
        );

        if let State::Started(started) = &mut *lock(&self.state) {
            started.frame = Some((info.width(), info.height()));
        }
        Ok(())
    }

    fn render(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let running_ns = self
            .obj()
            .segment()
            .downcast_ref::<gst::ClockTime>()
            .and_then(|segment| segment.to_running_time(buffer.pts()))
            .map(gst::ClockTime::nseconds);

        let (envelopes, budget, when_full) = {
            let mut state = lock(&self.state);
            let State::Started(started) = &mut *state else {
                return Err(gst::FlowError::Flushing);
            };
            let Some(frame) = started.frame else {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ("Received a buffer before caps")
                );
                return Err(gst::FlowError::NotNegotiated);
            };

            let events = started.extractor.process(
                buffer,
                frame,
                running_ns,
                envelope::unix_now_ms(),
                &self.stats,
            );
            for (label, rejection) in &events.rejections {
                self.warn_rejected(started, label, rejection);
            }
            if events.envelopes.is_empty() {
                return Ok(gst::FlowSuccess::Ok);
            }
            self.tag_fragment(started, &events.envelopes);
            gst::trace!(
                CAT,
                imp = self,
                "{} new events at {}",
                events.envelopes.len(),
                events.ts_ms
            );
            (events.envelopes, started.budget.clone(), started.when_full)
        };

        // Outside the state lock: with when-full=block this waits, and unlock() must get through.
        let event_bytes = envelopes.iter().map(estimated_size).sum();
        let (events_reservation, snapshot_reservation) =
            match budget.admit(event_bytes, None, when_full) {
                Admission::Admitted { events, snapshot } => (events, snapshot),
                Admission::Flushing => return Err(gst::FlowError::Flushing),
                Admission::Refused => {
                    self.drop_events(envelopes.len());
                    return Ok(gst::FlowSuccess::Ok);
                }
            };

        if let State::Started(started) = &*lock(&self.state) {
            started.dispatcher.submit(Job {
                envelopes,
                snapshot: None,
                events_reservation: Some(events_reservation),
                snapshot_reservation,
            });
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(budget) = &*lock(&self.budget) {
            budget.unblock();
        }
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(budget) = &*lock(&self.budget) {
            budget.resume();
        }
        Ok(())
    }

    fn event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::Eos(_) => {
                let pending = match &*lock(&self.state) {
                    State::Started(started) => {
                        Some((started.dispatcher.pending(), started.flush_timeout))
                    }
                    State::Stopped => None,
                };
                if let Some((pending, timeout)) = pending {
                    let left = pending.wait(timeout);
                    if left > 0 {
                        gst::element_imp_warning!(
                            self,
                            gst::ResourceError::Write,
                            ("{left} events were still pending when flush-timeout ran out at EOS")
                        );
                    }
                }
            }
            gst::EventView::FlushStop(_) => {
                if let State::Started(started) = &mut *lock(&self.state) {
                    started.extractor.reset_clock();
                }
            }
            _ => (),
        }
        self.parent_event(event)
    }
}
