// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The element where its users put it: in the inference branch of the standard Kinesis Video
//! Streams tee pipeline. kvssink itself cannot be built here; the video branch ends in an
//! element standing where kvssink would, which records the `kvs-add-metadata` events it gets.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::ObjectSubclassIsExt;

mod common;
use common::{init, read_events};

mod standin {
    use std::sync::{LazyLock, Mutex};

    use gst::glib;
    use gst::subclass::prelude::*;
    use gst_base::subclass::prelude::*;

    /// Stands where kvssink would: takes H.264, counts buffers, records custom events.
    #[derive(Default)]
    pub struct KvsStandIn {
        pub buffers: Mutex<u64>,
        pub tags: Mutex<Vec<gst::Structure>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for KvsStandIn {
        const NAME: &'static str = "KvsInferTestKvsStandIn";
        type Type = super::KvsStandIn;
        type ParentType = gst_base::BaseSink;
    }

    impl ObjectImpl for KvsStandIn {}
    impl GstObjectImpl for KvsStandIn {}

    impl ElementImpl for KvsStandIn {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "kvssink stand-in",
                    "Sink/Video/Network",
                    "Records what kvssink would receive",
                    "gst-plugin-kvsinfer tests",
                )
            });
            Some(&*METADATA)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                vec![
                    gst::PadTemplate::new(
                        "sink",
                        gst::PadDirection::Sink,
                        gst::PadPresence::Always,
                        &gst::Caps::new_any(),
                    )
                    .unwrap(),
                ]
            });
            TEMPLATES.as_ref()
        }
    }

    impl BaseSinkImpl for KvsStandIn {
        fn render(&self, _buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
            *self.buffers.lock().unwrap() += 1;
            Ok(gst::FlowSuccess::Ok)
        }

        fn event(&self, event: gst::Event) -> bool {
            if let gst::EventView::CustomDownstream(custom) = event.view()
                && let Some(s) = custom.structure()
                && s.name() == "kvs-add-metadata"
            {
                self.tags.lock().unwrap().push(s.to_owned());
            }
            self.parent_event(event)
        }
    }
}

glib::wrapper! {
    pub struct KvsStandIn(ObjectSubclass<standin::KvsStandIn>)
        @extends gst_base::BaseSink, gst::Element, gst::Object;
}

fn register_standin() {
    init();
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gst::Element::register(
            None,
            "kvsstandin",
            gst::Rank::NONE,
            KvsStandIn::static_type(),
        )
        .unwrap();
    });
}

fn standin(pipeline: &gst::Pipeline) -> KvsStandIn {
    pipeline
        .by_name("kvs")
        .unwrap()
        .downcast::<KvsStandIn>()
        .unwrap()
}

/// The video branch as in the KVS samples: encode, parse, kvssink.
const VIDEO_BRANCH: &str = "t. ! queue ! x264enc tune=zerolatency speed-preset=ultrafast ! h264parse ! kvsstandin name=kvs";

/// Runs a live pipeline for `run`, returning it still PLAYING with how long PLAYING took.
fn play_live(line: &str, run: Duration) -> (gst::Pipeline, Duration) {
    register_standin();
    let pipeline = gst::parse::launch(line)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();

    let start = Instant::now();
    pipeline.set_state(gst::State::Playing).unwrap();
    let (result, state, _) = pipeline.state(gst::ClockTime::from_seconds(5));
    assert!(
        result.is_ok() && state == gst::State::Playing,
        "{line}: {result:?} {state:?}"
    );
    let to_playing = start.elapsed();

    let bus = pipeline.bus().unwrap();
    if let Some(msg) = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(run.as_nanos() as u64),
        &[gst::MessageType::Error],
    ) {
        panic!("{line}: {msg:?}");
    }
    (pipeline, to_playing)
}

#[test]
fn tee_pipeline_keeps_the_video_branch_at_full_rate() {
    let dir = tempfile::tempdir().unwrap();
    let source = "videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=480,framerate=30/1 \
                  ! tee name=t";
    let run = Duration::from_secs(3);

    let (alone, _) = play_live(&format!("{source} {VIDEO_BRANCH}"), run);
    let frames_alone = *standin(&alone).imp().buffers.lock().unwrap();
    alone.set_state(gst::State::Null).unwrap();

    let (both, to_playing) = play_live(
        &format!(
            "{source} {VIDEO_BRANCH} \
             t. ! queue leaky=downstream max-size-buffers=2 ! videoconvert \
             ! facedetect display=false \
             ! kvsinfersink name=infer camera-id=cam1 output-dir={}",
            dir.path().display()
        ),
        run,
    );
    let frames_both = *standin(&both).imp().buffers.lock().unwrap();
    let infer = both.by_name("infer").unwrap();
    let inferred = infer
        .property::<gst::Structure>("stats")
        .get::<u64>("frames")
        .unwrap();
    let stop = Instant::now();
    both.set_state(gst::State::Null).unwrap();
    let to_null = stop.elapsed();

    assert!(
        to_playing < Duration::from_secs(2),
        "PLAYING took {to_playing:?}"
    );
    assert!(to_null < Duration::from_secs(2), "NULL took {to_null:?}");
    assert!(inferred > 0, "the inference branch did not flow");
    // Live at 30 fps for 3 s is about 90 frames either way; the inference branch may drop frames
    // in its leaky queue but must not slow the video branch.
    assert!(frames_alone >= 60, "video alone: {frames_alone} frames");
    assert!(
        frames_both * 10 >= frames_alone * 9,
        "video with inference: {frames_both} frames, alone: {frames_alone}"
    );
}

#[test]
fn events_tag_the_kvs_fragment_through_kvs_add_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("detections.jsonl");
    std::fs::write(
        &script,
        "{\"frame\": 0, \"detections\": [{\"label\": \"knife\", \"bbox\": [10, 10, 50, 50]}]}\n\
         {\"frame\": 3, \"detections\": [{\"label\": \"fire\", \"bbox\": [100, 100, 50, 50]}]}\n",
    )
    .unwrap();
    let out = dir.path().join("out");

    let (pipeline, _) = play_live(
        &format!(
            "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 \
             ! tee name=t {VIDEO_BRANCH} \
             t. ! queue ! kvsinferreplay location={} \
             ! kvsinfersink camera-id=cam1 dedup-window=1 kvssink-name=kvs output-dir={}",
            script.display(),
            out.display()
        ),
        Duration::from_secs(2),
    );
    let tags = Arc::new(Mutex::new(
        standin(&pipeline).imp().tags.lock().unwrap().clone(),
    ));
    pipeline.set_state(gst::State::Null).unwrap();

    let events = read_events(&out);
    assert_eq!(events.len(), 2, "{events:?}");
    let expected: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                format!("kvsinfer.{}", e["payload"]["type"].as_str().unwrap()),
                e["event_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let got: Vec<(String, String)> = tags
        .lock()
        .unwrap()
        .iter()
        .map(|s| {
            assert!(!s.get::<bool>("persist").unwrap());
            (
                s.get::<String>("name").unwrap(),
                s.get::<String>("value").unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected);
}
