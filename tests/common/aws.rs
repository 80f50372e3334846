// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! What the emulator tests share: the emulator's address, resource names, clients, and frames
//! that carry real detection metadata.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_kinesis::types::ShardIteratorType;
use gst::prelude::*;
use gstkvsinfer::aws::{self, AwsClients, AwsProperties};

use super::init;

pub const REGION: &str = "us-east-1";
pub const WIDTH: u32 = 64;
pub const HEIGHT: u32 = 48;

/// The emulator's endpoint. Unset is a failure, not a skip: a test that did not run must not
/// look like one that passed.
pub fn emulator() -> String {
    match std::env::var("KVSINFER_EMULATOR") {
        Ok(endpoint) if !endpoint.is_empty() => endpoint,
        _ => panic!(
            "KVSINFER_EMULATOR is not set: run `scripts/emulator.sh start` and source the \
             emulator.env file it writes (scripts/test.sh does both)"
        ),
    }
}

/// A name no other test or run uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos}-{n}", std::process::id())
}

/// The properties pointing at `endpoint` with the emulator's test credentials.
pub fn properties(endpoint: &str) -> AwsProperties {
    AwsProperties {
        region: Some(REGION.into()),
        endpoint_uri: Some(endpoint.into()),
        access_key: Some("testing".into()),
        secret_access_key: Some("testing".into()),
        force_path_style: Some(true),
        ..Default::default()
    }
}

/// Clients talking to `endpoint` directly, to create resources and read back.
pub fn clients(endpoint: &str) -> std::sync::Arc<AwsClients> {
    let resolved = aws::resolve(
        &AwsProperties {
            kinesis_stream: Some("unused".into()),
            ..properties(endpoint)
        },
        &|_| None,
    )
    .unwrap();
    aws::clients(&resolved.kinesis.unwrap().connection)
}

pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    gstkvsinfer::runtime::runtime().unwrap().block_on(future)
}

/// Sets the AWS properties every test shares on `sink`.
pub fn configure(sink: &gst::Element, endpoint: &str) {
    sink.set_property("region", REGION);
    sink.set_property("endpoint-uri", endpoint);
    sink.set_property("access-key", "testing");
    sink.set_property("secret-access-key", "testing");
    sink.set_property("force-path-style", true);
    sink.set_property("request-timeout", 5000u32);
    sink.set_property("retry-attempts", 2u32);
}

pub fn caps() -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format(gst_video::VideoFormat::Rgb)
        .width(WIDTH as i32)
        .height(HEIGHT as i32)
        .framerate(gst::Fraction::new(30, 1))
        .build()
}

/// A frame at Unix time `ts_ms` with one region `label` of confidence `conf`.
pub fn frame(ts_ms: u64, label: &str, conf: f64) -> gst::Buffer {
    frame_of_size(ts_ms, label, conf, (WIDTH, HEIGHT))
}

/// [`frame`], RGB of another size.
pub fn frame_of_size(
    ts_ms: u64,
    label: &str,
    conf: f64,
    (width, height): (u32, u32),
) -> gst::Buffer {
    // Black: a buffer's memory is otherwise whatever it held before.
    let mut buffer = gst::Buffer::from_mut_slice(vec![0u8; (width * height * 3) as usize]);
    {
        let buffer = buffer.get_mut().unwrap();
        let unix = gst::Caps::builder("timestamp/x-unix").build();
        gst::ReferenceTimestampMeta::add(
            buffer,
            &unix,
            gst::ClockTime::from_mseconds(ts_ms),
            gst::ClockTime::NONE,
        );
        let mut roi = gst_video::VideoRegionOfInterestMeta::add(buffer, label, (4, 6, 20, 10));
        roi.add_param(
            gst::Structure::builder("detection")
                .field("confidence", conf)
                .field("label_id", 3i32)
                .build(),
        );
    }
    buffer
}

/// A harness around a `kvsinfersink` configured by `setup`, started and with caps.
pub fn harness(setup: impl FnOnce(&gst::Element)) -> gst_check::Harness {
    init();
    let sink = gst::ElementFactory::make("kvsinfersink")
        .property("camera-id", "cam1")
        .build()
        .unwrap();
    setup(&sink);
    // The harness gives the element no bus; the tests read its warnings from this one.
    sink.set_bus(Some(&gst::Bus::new()));
    let mut h = gst_check::Harness::with_element(&sink, Some("sink"), None);
    h.set_src_caps(caps());
    h
}

/// Waits until every event the sink accepted settled in every destination, up to `timeout`.
pub fn wait_settled(sink: &gst::Element, timeout: std::time::Duration) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let stats = sink.property::<gst::Structure>("stats");
        let events = stats.get::<u64>("events").unwrap();
        let unsettled: u64 = stats
            .iter()
            .filter_map(|(_, value)| value.get::<gst::Structure>().ok())
            .filter(|s| s.has_field("pending"))
            .map(|s| {
                let get = |field| s.get::<u64>(field).unwrap_or(0);
                events.saturating_sub(get("delivered") + get("dead-lettered") + get("dropped"))
            })
            .sum();
        if unsettled == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {unsettled} unsettled: {stats}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The warnings and errors posted on the harness's bus so far, as text.
pub fn bus_messages(h: &gst_check::Harness) -> Vec<String> {
    let element = h.element().unwrap();
    let Some(bus) = element.bus() else {
        return Vec::new();
    };
    let mut texts = Vec::new();
    while let Some(message) = bus.pop() {
        match message.view() {
            gst::MessageView::Warning(w) => texts.push(format!("warning: {}", w.error())),
            gst::MessageView::Error(e) => texts.push(format!("error: {}", e.error())),
            _ => (),
        }
    }
    texts
}

/// Every record of the stream's only shard, oldest first.
pub fn read_stream(stream: &str, expected: usize) -> Vec<Vec<u8>> {
    read_stream_at(&emulator(), stream, expected)
}

/// [`read_stream`] on the emulator at `endpoint`.
pub fn read_stream_at(endpoint: &str, stream: &str, expected: usize) -> Vec<Vec<u8>> {
    let clients = clients(endpoint);
    block_on(async {
        let client = clients.kinesis().await;
        let shards = client
            .list_shards()
            .stream_name(stream)
            .send()
            .await
            .unwrap();
        let shard = shards.shards()[0].shard_id().to_string();
        let mut iterator = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator()
            .map(str::to_string);

        let mut records = Vec::new();
        let mut empty_reads = 0;
        while let Some(it) = iterator.take() {
            let output = client
                .get_records()
                .shard_iterator(it)
                .send()
                .await
                .unwrap();
            if output.records().is_empty() {
                empty_reads += 1;
            }
            records.extend(output.records().iter().map(|r| r.data().as_ref().to_vec()));
            if records.len() >= expected || empty_reads > 3 {
                break;
            }
            iterator = output.next_shard_iterator().map(str::to_string);
        }
        records
    })
}

/// The `event_id` of every item of `table`, with how many items carry it.
pub fn table_ids(endpoint: &str, table: &str) -> std::collections::HashMap<String, usize> {
    let clients = clients(endpoint);
    block_on(async {
        let client = clients.dynamodb().await;
        let mut ids = std::collections::HashMap::new();
        let mut start = None;
        loop {
            let page = client
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            for item in page.items() {
                if let Some(aws_sdk_dynamodb::types::AttributeValue::S(id)) = item.get("event_id") {
                    *ids.entry(id.clone()).or_insert(0) += 1;
                }
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return ids;
            }
        }
    })
}
