// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! No credentials anywhere: the standard chain finds nothing. A binary of its own, since the
//! environment it needs is the whole process's.

mod common;

use std::time::{Duration, Instant};

use gst::prelude::*;
use gstkvsinfer::delivery::spool::Spool;

use common::*;

/// The pipeline still reaches PLAYING at once, a bus warning names the missing credentials and
/// the events wait in the spool.
#[test]
fn no_credentials_reaches_playing_warns_and_keeps_the_events_in_the_spool() {
    let empty = tempfile::NamedTempFile::new().unwrap();
    // SAFETY: the only test of this binary sets the variables before starting any thread.
    unsafe {
        for name in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ] {
            std::env::remove_var(name);
        }
        std::env::set_var("AWS_CONFIG_FILE", empty.path());
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", empty.path());
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    }
    init();
    let spool = tempfile::tempdir().unwrap();
    let pipeline = gst::parse::launch(
        "appsrc name=src is-live=true format=time ! kvsinfersink name=sink camera-id=cam1 \
         dedup-window=1 kinesis-stream=s region=us-east-1 retry-backoff=50 \
         retry-max-backoff=200",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline.by_name("sink").unwrap();
    sink.set_property("endpoint-uri", emulator());
    sink.set_property("spool-dir", spool.path().to_str().unwrap());
    let src = pipeline.by_name("src").unwrap();
    src.set_property("caps", caps());

    let started = Instant::now();
    pipeline.set_state(gst::State::Playing).unwrap();
    for i in 0..10u64 {
        let mut buffer = frame(1_697_123_000_000 + i * 1000, "knife", 0.9);
        buffer
            .make_mut()
            .set_pts(gst::ClockTime::from_mseconds(i * 33));
        let flow = src.emit_by_name::<gst::FlowReturn>("push-buffer", &[&buffer]);
        assert_eq!(flow, gst::FlowReturn::Ok);
    }
    let (changed, state, _) = pipeline.state(gst::ClockTime::from_seconds(2));
    assert_eq!(
        (changed, state),
        (Ok(gst::StateChangeSuccess::Success), gst::State::Playing)
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Other warnings may come first (a snapshot dropped while the pool is busy): the one about
    // the credentials must come within the deadline.
    let bus = pipeline.bus().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|text: &String| text.to_lowercase().contains("credentials"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(message) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::Warning],
        ) else {
            panic!("no warning about the credentials within 10 s: {seen:?}");
        };
        if let gst::MessageView::Warning(warning) = message.view() {
            seen.push(warning.error().to_string());
        }
    }

    // appsrc's thread may still be rendering the last frames.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sink
        .property::<gst::Structure>("stats")
        .get::<u64>("events")
        .unwrap()
        < 10
    {
        assert!(Instant::now() < deadline, "the frames were not rendered");
        std::thread::sleep(Duration::from_millis(5));
    }
    let stats = sink.property::<gst::Structure>("stats");
    let kinesis = stats.get::<gst::Structure>("kinesis").unwrap();
    assert_eq!(kinesis.get::<u64>("pending").unwrap(), 10, "{stats}");
    assert_eq!(kinesis.get::<u64>("dead-lettered").unwrap(), 0, "{stats}");
    pipeline.set_state(gst::State::Null).unwrap();

    let (_, left) = Spool::open(spool.path(), 1 << 30, 0xff).unwrap();
    assert_eq!(left.len(), 10);
}
