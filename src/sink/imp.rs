// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! GObject glue of `kvsinfersink`: properties, caps, state and the BaseSink virtual methods.
//! The work lives in `extract`, `delivery` and `destination`.

use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use super::aws_properties;
use super::core_properties::{self, CoreProperties};
use super::delivery_properties::{self, DeliveryProperties};
use super::observer::{SinkObserver, post_warning, report_held_back};
use super::snapshot_properties::{self, SnapshotProperties};
use crate::CAT;
use crate::aws::{self, AwsProperties};
use crate::delivery::budget::{self, Admission, Budget, WhenFull};
use crate::delivery::spool::Spool;
use crate::delivery::{self as delivery, DeliveryOptions, DestinationTask, Dispatcher, Job};
use crate::destination::file::FileDestination;
use crate::detection::{self, DetectionRules, TypeMap};
use crate::envelope;
use crate::extract::{self, EventExtractor, SnapshotSchedule};
use crate::kvstag::{self, FragmentTagger};
use crate::ratelimit::RateLimiter;
use crate::snapshot::{EncoderPool, SnapshotJob, SnapshotMetadata, SnapshotSettings, Submission};
use crate::stats::{self, SinkStats};

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

/// Every property, by group: each group's file declares, stores and reads its own.
#[derive(Debug, Clone, Default)]
struct Settings {
    core: CoreProperties,
    aws: AwsProperties,
    delivery: DeliveryProperties,
    snapshot: SnapshotProperties,
}

struct Started {
    extractor: EventExtractor,
    dispatcher: Dispatcher,
    /// The negotiated caps.
    info: Option<gst_video::VideoInfo>,
    snapshots: Option<SnapshotPlan>,
    warnings: RateLimiter,
    flush_timeout: Duration,
    budget: Arc<Budget>,
    when_full: WhenFull,
    observer: Arc<SinkObserver>,
    /// The kvssink whose fragments are tagged with events, and what fits in a fragment.
    fragment_tags: Option<(String, FragmentTagger)>,
}

/// How this sink makes snapshots.
struct SnapshotPlan {
    settings: SnapshotSettings,
    schedule: SnapshotSchedule,
    prefix: String,
    camera_id: String,
}

/// A snapshot render() decided to make, with what it needs outside the state lock.
struct SnapshotRequest {
    settings: SnapshotSettings,
    metadata: SnapshotMetadata,
    info: gst_video::VideoInfo,
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

        let Some(camera_id) = settings.core.camera_id.clone() else {
            return Err(settings_error(
                "Property 'camera-id' is required: set it to the camera's name (letters, digits, \
                 '.', '_', '-')"
                    .into(),
            ));
        };
        extract::validate_camera_id(&camera_id).map_err(settings_error)?;
        let type_map = TypeMap::parse(&settings.core.type_map)
            .map_err(|err| settings_error(format!("Property 'type-map' is invalid: {err}")))?;

        let mut destinations = Vec::new();
        if settings
            .core
            .output_dir
            .as_ref()
            .is_some_and(|dir| dir.as_os_str().is_empty())
        {
            return Err(settings_error(
                "Property 'output-dir' is empty: name a directory, or leave it unset".into(),
            ));
        }
        if let Some(dir) = &settings.core.output_dir {
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
        let observer = Arc::new(SinkObserver::new(&*self.obj()));
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
                let waiting = spool.waiting_for_absent_destinations();
                if waiting > 0 {
                    gst::element_imp_warning!(
                        self,
                        gst::ResourceError::Settings,
                        ("{waiting} events in the spool are owed to destinations this run does not \
                          have; they stay in the spool for a run that has them")
                    );
                }
                Some((Arc::new(spool), left))
            }
            None => None,
        };
        let options = DeliveryOptions {
            spool,
            dead_letter_dir: delivery::dead_letter_dir(
                settings.core.output_dir.as_deref(),
                settings.delivery.spool_dir.as_deref(),
            ),
            sink_stats: self.stats.clone(),
        };
        let snapshots = match settings.snapshot.enabled {
            true => Some(SnapshotPlan {
                settings: SnapshotSettings {
                    quality: aws::jpeg_quality(settings.snapshot.jpeg_quality, &aws::process_env)
                        .map_err(settings_error)? as u8,
                    max_width: settings.snapshot.max_width,
                    draw_labels: settings.snapshot.draw_labels,
                },
                schedule: SnapshotSchedule::new(u64::from(settings.snapshot.interval_ms)),
                prefix: aws::snapshot_prefix(&settings.aws, &aws::process_env)
                    .map_err(settings_error)?,
                camera_id: camera_id.clone(),
            }),
            false => None,
        };
        let budget_bytes =
            usize::try_from(settings.delivery.max_pending_bytes).unwrap_or(usize::MAX);

        let rules = DetectionRules {
            type_map,
            min_confidence: settings.core.min_confidence,
            labels: DetectionRules::parse_labels(&settings.core.labels),
        };
        Ok(Started {
            extractor: EventExtractor::new(
                camera_id,
                settings.core.producer.clone(),
                u64::from(settings.core.dedup_window_ms),
                rules,
                settings.core.timestamp_mode,
            ),
            dispatcher: Dispatcher::start(runtime, destinations, observer.clone(), linker, options),
            observer,
            budget: Budget::new(budget_bytes),
            when_full: settings.delivery.when_full,
            info: None,
            snapshots,
            warnings: RateLimiter::default(),
            flush_timeout: Duration::from_millis(u64::from(settings.core.flush_timeout_ms)),
            fragment_tags: settings.core.kvssink_name.clone().map(|name| {
                let duration = kvstag::fragment_duration(self.obj().upcast_ref(), &name);
                (name, FragmentTagger::new(duration))
            }),
        })
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
                let warning = gst::message::Warning::builder(
                    gst::CoreError::Failed,
                    &format!("kvssink-name: cannot tag the KVS fragment: {err}"),
                )
                .src(&sink)
                .build();
                let _ = sink.post_message(warning);
            }
        });
    }

    /// Copies what the snapshot needs from `buffer` and hands it to the shared encoder pool;
    /// never waits for an encode.
    fn start_snapshot(
        &self,
        buffer: &gst::BufferRef,
        request: SnapshotRequest,
        detections: Vec<detection::Detection>,
    ) -> Option<delivery::PendingSnapshot> {
        let submission = EncoderPool::global().try_submit_with(|| {
            SnapshotJob::new(
                buffer,
                &request.info,
                detections,
                request.settings,
                request.metadata,
            )
        });
        match submission {
            Submission::Queued(pending) => Some(pending),
            Submission::Saturated => {
                self.snapshot_dropped("the encoder pool is saturated");
                None
            }
            Submission::Failed(err) => {
                self.stats
                    .snapshots_failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.warn_limited(
                    "snapshot-failed",
                    &format!("No snapshot for this frame: {err}"),
                );
                None
            }
        }
    }

    fn snapshot_dropped(&self, why: &str) {
        self.stats
            .snapshots_dropped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.warn_limited(
            "snapshot-dropped",
            &format!("Snapshot dropped, the events go on without it: {why}"),
        );
    }

    /// A bus warning of `kind`, at most one per interval, from the streaming thread.
    fn warn_limited(&self, kind: &'static str, message: &str) {
        gst::debug!(CAT, imp = self, "{message}");
        if let State::Started(started) = &mut *lock(&self.state) {
            let details = gst::Structure::builder("kvsinfer-degraded")
                .field("kind", kind)
                .build();
            post_warning(
                self.obj().upcast_ref(),
                &mut started.warnings,
                kind,
                gst::ResourceError::NoSpaceLeft,
                message,
                details,
            );
        }
    }

    /// At the end of a stream: what the rate limits held back, so that no drop goes unsaid.
    fn report_held_back(&self) {
        let (held, observer) = match &mut *lock(&self.state) {
            State::Started(started) => {
                (started.warnings.take_held_back(), started.observer.clone())
            }
            State::Stopped => return,
        };
        report_held_back(self.obj().upcast_ref(), held);
        observer.report_held_back();
    }

    /// Counts and reports events that did not fit in `max-pending-bytes`.
    fn drop_events(&self, count: usize) {
        self.stats
            .events_dropped
            .fetch_add(count as u64, std::sync::atomic::Ordering::Relaxed);
        self.warn_limited(
            "events-dropped",
            &format!("Dropped {count} events: max-pending-bytes is reached"),
        );
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
        let details = gst::Structure::builder("kvsinfer-rejected")
            .field("reason", rejection.reason())
            .field("label", label)
            .build();
        post_warning(
            self.obj().upcast_ref(),
            &mut started.warnings,
            rejection.reason(),
            gst::StreamError::Format,
            &format!("Skipped detection {label:?}: {rejection}"),
            details,
        );
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
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("Counters of frames, detections, rejections, events and deliveries")
                    .read_only()
                    .build(),
            ]
            .into_iter()
            .chain(core_properties::specs())
            .chain(aws_properties::specs())
            .chain(delivery_properties::specs())
            .chain(snapshot_properties::specs())
            .collect()
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let settings = &mut *lock(&self.settings);
        let name = pspec.name();
        let known = core_properties::set(&mut settings.core, name, value)
            || aws_properties::set(&mut settings.aws, name, value)
            || delivery_properties::set(&mut settings.delivery, name, value)
            || snapshot_properties::set(&mut settings.snapshot, name, value);
        match known {
            // The name only: some values are secrets.
            true => gst::debug!(CAT, imp = self, "Set property '{name}'"),
            false => gst::warning!(CAT, imp = self, "Property '{name}' cannot be set"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let name = pspec.name();
        if name == "stats" {
            return self.stats_structure().to_value();
        }
        let settings = lock(&self.settings);
        core_properties::get(&settings.core, name)
            .or_else(|| aws_properties::get(&settings.aws, name))
            .or_else(|| delivery_properties::get(&settings.delivery, name))
            .or_else(|| snapshot_properties::get(&settings.snapshot, name))
            .unwrap_or_else(|| pspec.default_value().clone())
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
            started.info = Some(info);
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

        let (envelopes, detections, snapshot, budget, when_full) = {
            let mut state = lock(&self.state);
            let State::Started(started) = &mut *state else {
                return Err(gst::FlowError::Flushing);
            };
            let Some(frame) = started.info.as_ref().map(|i| (i.width(), i.height())) else {
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
            // The caps are copied only for a frame that gets a snapshot.
            let info = &started.info;
            let snapshot = started.snapshots.as_mut().and_then(|plan| {
                if !plan.schedule.take(events.ts_ms) {
                    return None;
                }
                Some(SnapshotRequest {
                    settings: plan.settings,
                    metadata: SnapshotMetadata {
                        key: crate::snapshot::snapshot_key(
                            &plan.prefix,
                            &plan.camera_id,
                            events.ts_ms,
                        ),
                        camera_id: plan.camera_id.clone(),
                        ts_ms: events.ts_ms,
                    },
                    info: info.clone()?,
                })
            });
            (
                events.envelopes,
                events.detections,
                snapshot,
                started.budget.clone(),
                started.when_full,
            )
        };

        // Outside the state lock: with when-full=block this waits, and unlock() must get through.
        let event_bytes = envelopes.iter().map(budget::envelope_cost).sum();
        let (events_reservation, snapshot_reservation) = match budget.admit(
            event_bytes,
            snapshot.as_ref().map(|r| r.info.size()),
            when_full,
        ) {
            Admission::Admitted { events, snapshot } => (events, snapshot),
            Admission::Flushing => return Err(gst::FlowError::Flushing),
            Admission::Refused => {
                self.drop_events(envelopes.len());
                return Ok(gst::FlowSuccess::Ok);
            }
        };

        let pending_snapshot = match (snapshot, &snapshot_reservation) {
            (Some(request), Some(_)) => self.start_snapshot(buffer, request, detections),
            (Some(_), None) => {
                self.snapshot_dropped("max-pending-bytes is reached");
                None
            }
            (None, _) => None,
        };

        if let State::Started(started) = &*lock(&self.state) {
            started.dispatcher.submit(Job {
                envelopes,
                snapshot: pending_snapshot,
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
                    self.report_held_back();
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
