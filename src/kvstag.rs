// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Tags Kinesis Video Streams fragments with events, through `kvssink`'s `kvs-add-metadata`
//! custom event (a structure with `name`, `value` and `persist`).
//!
//! kvssink keeps at most 10 tags per fragment, so tags beyond that within one fragment duration
//! are counted and left out rather than sent to be refused.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::envelope::Envelope;

/// kvssink's own limits on a fragment's tags.
pub const MAX_TAGS_PER_FRAGMENT: usize = 10;
pub const MAX_TAG_NAME_BYTES: usize = 128;
pub const MAX_TAG_VALUE_BYTES: usize = 256;
/// kvssink's default `fragment-duration`, used when the element does not say.
pub const DEFAULT_FRAGMENT_DURATION: Duration = Duration::from_millis(2000);

/// Decides which events become fragment tags, within kvssink's limits.
#[derive(Debug)]
pub struct FragmentTagger {
    fragment_duration: Duration,
    recent: VecDeque<Instant>,
    pub skipped: u64,
}

impl FragmentTagger {
    pub fn new(fragment_duration: Duration) -> Self {
        FragmentTagger {
            fragment_duration: fragment_duration.max(Duration::from_millis(1)),
            recent: VecDeque::with_capacity(MAX_TAGS_PER_FRAGMENT),
            skipped: 0,
        }
    }

    /// The `kvs-add-metadata` events for the envelopes that fit in the current fragment.
    pub fn events(&mut self, envelopes: &[Envelope], now: Instant) -> Vec<gst::Event> {
        while self
            .recent
            .front()
            .is_some_and(|sent| now.duration_since(*sent) >= self.fragment_duration)
        {
            self.recent.pop_front();
        }

        let mut events = Vec::new();
        for envelope in envelopes {
            if self.recent.len() >= MAX_TAGS_PER_FRAGMENT {
                self.skipped += 1;
                continue;
            }
            self.recent.push_back(now);
            events.push(gst::event::CustomDownstream::new(tag_structure(envelope)));
        }
        events
    }
}

/// Name `kvsinfer.<type>`, value the event id: a consumer of the video finds the event with it.
fn tag_structure(envelope: &Envelope) -> gst::Structure {
    let name = format!("kvsinfer.{}", envelope.payload.event_type);
    gst::Structure::builder("kvs-add-metadata")
        .field("name", truncate(&name, MAX_TAG_NAME_BYTES))
        .field("value", truncate(&envelope.event_id, MAX_TAG_VALUE_BYTES))
        .field("persist", false)
        .build()
}

/// The longest prefix of `text` within `max` bytes that ends on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The element named `name` in the pipeline that holds `origin`.
fn find_in_pipeline(origin: &gst::Element, name: &str) -> Option<gst::Element> {
    use gst::prelude::*;

    let mut top = origin.clone().upcast::<gst::Object>();
    while let Some(parent) = top.parent() {
        top = parent;
    }
    top.downcast_ref::<gst::Bin>()
        .and_then(|bin| bin.by_name(name))
}

/// The named kvssink's `fragment-duration`, when it is already in the pipeline; kvssink's
/// default otherwise.
pub fn fragment_duration(origin: &gst::Element, name: &str) -> Duration {
    use gst::prelude::*;

    find_in_pipeline(origin, name)
        .filter(|kvssink| kvssink.has_property_with_type("fragment-duration", u32::static_type()))
        .map(|kvssink| {
            Duration::from_millis(u64::from(kvssink.property::<u32>("fragment-duration")))
        })
        .unwrap_or(DEFAULT_FRAGMENT_DURATION)
}

/// Sends `events` to the first sink pad of the element named `name` in the pipeline that holds
/// `origin`. The events are serialized, so this waits for that element's streaming thread:
/// never call it from a streaming thread.
pub fn send_to_element(
    origin: &gst::Element,
    name: &str,
    events: Vec<gst::Event>,
) -> Result<(), String> {
    use gst::prelude::*;

    let target = find_in_pipeline(origin, name)
        .ok_or_else(|| format!("no element named '{name}' in the pipeline"))?;
    let pad = target
        .sink_pads()
        .into_iter()
        .next()
        .ok_or_else(|| format!("element '{name}' has no sink pad"))?;

    for event in events {
        if !pad.send_event(event) {
            return Err(format!(
                "element '{name}' refused the kvs-add-metadata event"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::Detection;

    fn envelope(event_type: &str) -> Envelope {
        let detection = Detection {
            label: "x".into(),
            event_type: event_type.into(),
            conf: 1.0,
            bbox: [0, 0, 1, 1],
            extras: Default::default(),
        };
        Envelope::new("cam", "p", 1000, 1000, detection)
    }

    #[test]
    fn at_most_ten_tags_per_fragment() {
        gst::init().unwrap();
        let mut tagger = FragmentTagger::new(Duration::from_secs(2));
        let t0 = Instant::now();
        let many: Vec<Envelope> = (0..12).map(|_| envelope("weapon")).collect();

        assert_eq!(tagger.events(&many, t0).len(), 10);
        assert_eq!(tagger.skipped, 2);
        assert_eq!(
            tagger.events(&many[..1], t0 + Duration::from_secs(1)).len(),
            0
        );
        assert_eq!(
            tagger.events(&many[..3], t0 + Duration::from_secs(2)).len(),
            3
        );
    }

    #[test]
    fn tag_names_and_values_fit_kvssink_limits() {
        gst::init().unwrap();
        let long_type = "é".repeat(100);
        let s = tag_structure(&envelope(&long_type));
        assert_eq!(s.name(), "kvs-add-metadata");
        let name = s.get::<&str>("name").unwrap();
        assert!(name.len() <= MAX_TAG_NAME_BYTES && name.starts_with("kvsinfer.é"));
        assert_eq!(s.get::<&str>("value").unwrap().len(), 40);
        assert!(!s.get::<bool>("persist").unwrap());
    }
}
