// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Reports what happens to events on the sink's bus: `kvsinfer-event` messages for delivered
//! events, and rate-limited warnings for dead letters and degradations, from worker threads.

use std::sync::Mutex;
use std::time::Instant;

use gst::glib;
use gst::prelude::*;

use crate::CAT;
use crate::delivery::{DeliveryObserver, Event};
use crate::ratelimit::RateLimiter;

/// Posts a warning of `kind` on `element`'s bus unless `limiter` holds it back, saying how many
/// were held back since the last one.
pub(super) fn post_warning<T: gst::MessageErrorDomain>(
    element: &gst::Element,
    limiter: &mut RateLimiter,
    kind: &str,
    domain: T,
    message: &str,
    details: gst::Structure,
) {
    let Some(held_back) = limiter.allow(kind, Instant::now()) else {
        return;
    };
    let text = match held_back {
        0 => message.to_string(),
        n => format!("{message} ({n} more since the last warning)"),
    };
    gst::warning!(CAT, obj = element, "{text}");
    let warning = gst::message::Warning::builder(domain, &text)
        .src(element)
        .details(details)
        .build();
    let _ = element.post_message(warning);
}

pub(super) struct SinkObserver {
    sink: glib::WeakRef<gst::Element>,
    warnings: Mutex<RateLimiter>,
}

impl SinkObserver {
    pub(super) fn new(sink: &impl IsA<gst::Element>) -> Self {
        SinkObserver {
            sink: sink.upcast_ref::<gst::Element>().downgrade(),
            warnings: Mutex::default(),
        }
    }

    fn warn(&self, kind: &str, message: &str, details: gst::Structure) {
        let Some(sink) = self.sink.upgrade() else {
            return;
        };
        let mut limiter = self.warnings.lock().unwrap_or_else(|e| e.into_inner());
        post_warning(
            &sink,
            &mut limiter,
            kind,
            gst::ResourceError::Write,
            message,
            details,
        );
    }
}

impl SinkObserver {
    /// Says, once a run is over, which warnings the rate limit held back and how many.
    pub(super) fn report_held_back(&self) {
        let held = self
            .warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_held_back();
        if let Some(sink) = self.sink.upgrade() {
            report_held_back(&sink, held);
        }
    }
}

/// One warning listing the warnings held back, by kind, if there were any.
pub(super) fn report_held_back(element: &gst::Element, held: Vec<(String, u64)>) {
    if held.is_empty() {
        return;
    }
    let list: Vec<String> = held.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
    let text = format!(
        "Warnings held back by the rate limit since their last report: {}",
        list.join(", ")
    );
    gst::warning!(CAT, obj = element, "{text}");
    let warning = gst::message::Warning::builder(gst::CoreError::Failed, &text)
        .src(element)
        .build();
    let _ = element.post_message(warning);
}

impl DeliveryObserver for SinkObserver {
    fn degraded(&self, kind: &'static str, message: &str) {
        let details = gst::Structure::builder("kvsinfer-degraded")
            .field("kind", kind)
            .build();
        self.warn(kind, message, details);
    }

    fn delivered(&self, event: &Event) {
        let Some(sink) = self.sink.upgrade() else {
            return;
        };
        if !sink.property::<bool>("post-messages") {
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
        let id = &event.envelope.event_id;
        let details = gst::Structure::builder("kvsinfer-dead-letter")
            .field("destination", destination)
            .field("event-id", id)
            .build();
        let message = format!("Event {id} could not be delivered to {destination}: {reason}");
        // Its own kind: a destination's retry warnings must not hold its dead letters back.
        self.warn(&format!("{destination}-dead-letter"), &message, details);
    }
}
