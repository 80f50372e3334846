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
use super::core_properties;
use super::delivery_properties;
use super::observer::{post_warning, report_held_back};
use super::snapshot_properties;
use super::state::{Settings, SnapshotRequest, Started};
use crate::CAT;
use crate::delivery::budget::{self, Admission, Budget};
use crate::delivery::{self as delivery, Job};
use crate::detection;
use crate::envelope;
use crate::kvstag;
use crate::snapshot::{EncoderPool, SnapshotJob, SnapshotMetadata, Submission};
use crate::stats::{self, SinkStats};

/// How long stopping waits for deliveries still in flight: a state change must return promptly,
/// within 1 s in all, whatever the network does.
const STOP_TIMEOUT: Duration = Duration::from_millis(500);

/// The formats the sink takes as they are, with no `videoconvert` in front.
const FORMATS: [gst_video::VideoFormat; 17] = {
    use gst_video::VideoFormat::*;
    [
        Rgb, Bgr, Rgbx, Bgrx, Xrgb, Xbgr, Rgba, Bgra, Argb, Abgr, I420, Yv12, Nv12, Nv21, Yuy2,
        Uyvy, Gray8,
    ]
};

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
        let started = Started::build(self, &settings, self.stats.clone()).inspect_err(|err| {
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
