// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! `kvsinfersink` against an emulated Kinesis, S3 and DynamoDB (`scripts/emulator.sh start`),
//! reading back what it wrote. Requests go through a counting proxy of ours.

mod common;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use gst::prelude::*;
use gstkvsinfer::aws;
use gstkvsinfer::delivery::{
    DeliveryObserver, DeliveryOptions, DestinationTask, Dispatcher, EncodedSnapshot, Event, Job,
};
use gstkvsinfer::destination::dynamodb::query_by_camera;
use gstkvsinfer::destination::file::{EVENTS_FILE, FileDestination};
use gstkvsinfer::destination::s3::{S3Destination, S3Linker};
use gstkvsinfer::detection::Detection;
use gstkvsinfer::envelope::Envelope;
use gstkvsinfer::provision;

use common::proxy::Proxy;
use common::*;

/// A time in the past with room for a thousand one-second windows after it.
const BASE_TS_MS: u64 = 1_697_123_000_000;

fn new_stream() -> String {
    let name = unique("kvsinfer-stream");
    let clients = clients(&emulator());
    block_on(async { provision::stream(clients.kinesis().await, &name, 1).await }).unwrap();
    name
}

fn new_table() -> String {
    let name = unique("kvsinfer-table");
    let clients = clients(&emulator());
    block_on(async { provision::table(clients.dynamodb().await, &name).await }).unwrap();
    name
}

fn new_bucket() -> String {
    let name = unique("kvsinfer-bucket");
    let clients = clients(&emulator());
    block_on(async { provision::bucket(clients.s3().await, &name).await }).unwrap();
    name
}

fn read_lines(dir: &std::path::Path) -> Vec<Vec<u8>> {
    std::fs::read(dir.join(EVENTS_FILE))
        .unwrap()
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn records_in(request: &common::proxy::Request) -> usize {
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    body["Records"].as_array().map_or(0, Vec::len)
}

#[test]
fn kinesis_sends_1200_events_in_calls_of_500_500_200_as_in_events_jsonl() {
    let proxy = Proxy::start(&emulator());
    let stream = new_stream();
    let dir = tempfile::tempdir().unwrap();

    let mut h = harness(|sink| {
        configure(sink, &proxy.endpoint);
        sink.set_property("kinesis-stream", &stream);
        sink.set_property("output-dir", dir.path().to_str().unwrap());
        // Long enough that all 1200 frames are queued before the last batch goes out.
        sink.set_property("kinesis-linger", 2000u32);
        // 1200 frames as fast as the harness pushes would saturate the encoder pool.
        sink.set_property("snapshot", false);
    });
    for i in 0..1200 {
        h.push(frame(BASE_TS_MS + i * 1000, "knife", 0.87)).unwrap();
    }
    assert!(h.push_event(gst::event::Eos::new()));
    wait_settled(&h.element().unwrap(), Duration::from_secs(30));

    let sizes: Vec<_> = proxy.calls("PutRecords").iter().map(records_in).collect();
    assert_eq!(sizes, vec![500, 500, 200]);
    let lines = read_lines(dir.path());
    assert_eq!(lines.len(), 1200);
    assert_eq!(read_stream(&stream, 1200), lines);
    let messages = bus_messages(&h);
    assert!(messages.is_empty(), "{messages:?}");
}

#[test]
fn kinesis_linger_sends_a_lone_event_within_about_200_ms() {
    let proxy = Proxy::start(&emulator());
    let stream = new_stream();
    let mut h = harness(|sink| {
        configure(sink, &proxy.endpoint);
        sink.set_property("kinesis-stream", &stream);
    });
    let sink = h.element().unwrap();

    // A first event builds the client; the second one times the linger alone.
    h.push(frame(BASE_TS_MS, "knife", 0.5)).unwrap();
    wait_settled(&sink, Duration::from_secs(10));
    let pushed = Instant::now();
    h.push(frame(BASE_TS_MS + 1000, "knife", 0.5)).unwrap();
    wait_settled(&sink, Duration::from_secs(10));
    let took = pushed.elapsed();

    assert!(took >= Duration::from_millis(180), "{took:?}");
    assert!(took < Duration::from_millis(700), "{took:?}");
    assert_eq!(proxy.calls("PutRecords").len(), 2);
    assert_eq!(read_stream(&stream, 2).len(), 2);
}

#[test]
fn dynamodb_query_returns_items_with_exact_decimals_and_ttl() {
    let proxy = Proxy::start(&emulator());
    let table = new_table();
    let mut h = harness(|sink| {
        configure(sink, &proxy.endpoint);
        sink.set_property("dynamodb-table", &table);
    });
    for i in 0..3 {
        h.push(frame(BASE_TS_MS + i * 1000, "knife", 0.87)).unwrap();
    }
    assert!(h.push_event(gst::event::Eos::new()));
    wait_settled(&h.element().unwrap(), Duration::from_secs(10));
    let written: usize = proxy
        .calls("BatchWriteItem")
        .iter()
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            body["RequestItems"][&table].as_array().map_or(0, Vec::len)
        })
        .sum();
    assert_eq!(written, 3);

    let clients = clients(&emulator());
    let items = block_on(async {
        let client = clients.dynamodb().await;
        query_by_camera(client, &table, "cam1", BASE_TS_MS, BASE_TS_MS + 1500, 10).await
    })
    .unwrap();

    let ts: Vec<_> = items.iter().map(|item| item["ts_ms"].clone()).collect();
    assert_eq!(
        ts,
        vec![
            AttributeValue::N((BASE_TS_MS + 1000).to_string()),
            AttributeValue::N(BASE_TS_MS.to_string()),
        ]
    );
    let item = &items[0];
    assert_eq!(item["conf"], AttributeValue::N("0.87".into()));
    assert_eq!(item["label"], AttributeValue::S("knife".into()));
    assert_eq!(item["camera_id"], AttributeValue::S("cam1".into()));
    let AttributeValue::M(extras) = &item["extras"] else {
        panic!("extras is not a map: {item:?}");
    };
    assert_eq!(extras["label_id"], AttributeValue::N("3".into()));
    assert_eq!(
        item["bbox"],
        AttributeValue::L(
            ["4", "6", "20", "10"]
                .map(|n| AttributeValue::N(n.into()))
                .into()
        )
    );
    let AttributeValue::N(ttl) = &item["ttl"] else {
        panic!("no ttl: {item:?}");
    };
    let expected = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 30 * 24 * 3600;
    assert!(ttl.parse::<u64>().unwrap().abs_diff(expected) < 60, "{ttl}");
}

#[derive(Default)]
struct Outcomes(Mutex<Vec<String>>);

impl DeliveryObserver for Outcomes {
    fn delivered(&self, _event: &Event) {}
    fn dead_lettered(&self, destination: &'static str, _event: &Event, reason: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{destination}: {reason}"));
    }
    fn degraded(&self, kind: &'static str, message: &str) {
        self.0.lock().unwrap().push(format!("{kind}: {message}"));
    }
}

fn envelope(label: &str, ts_ms: u64) -> Envelope {
    let detection = Detection {
        label: label.into(),
        event_type: "weapon".into(),
        conf: 0.87,
        bbox: [4, 6, 20, 10],
        extras: Default::default(),
    };
    Envelope::new("cam1", "test", ts_ms, 1000, detection)
}

/// What the snapshot encoder will produce; a fake JPEG until it lands.
fn snapshot(ts_ms: u64) -> EncodedSnapshot {
    let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe0];
    jpeg.extend((0..4096u32).map(|i| (i % 251) as u8));
    jpeg.extend([0xff, 0xd9]);
    EncodedSnapshot {
        key: format!("snapshots/cam1/{ts_ms}.jpg"),
        jpeg,
        camera_id: "cam1".into(),
        ts_ms,
        quality: 85,
        frame_width: WIDTH,
        frame_height: HEIGHT,
    }
}

/// A plain HTTP/1.1 GET: status code and body.
fn http_get(url: &str) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut socket = std::net::TcpStream::connect(host).unwrap();
    write!(
        socket,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    socket.read_to_end(&mut reply).unwrap();

    let head_end = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&reply[..head_end]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (status, reply[head_end + 4..].to_vec())
}

/// Through the real dispatcher and the real wire, with a fake snapshot until the encoder lands.
#[test]
fn s3_stores_each_snapshot_once_with_metadata_and_a_working_presigned_url() {
    let proxy = Proxy::start(&emulator());
    let bucket = new_bucket();
    let dir = tempfile::tempdir().unwrap();
    let props = aws::AwsProperties {
        s3_bucket: Some(bucket.clone()),
        presign_expiry_s: Some(600),
        ..properties(&proxy.endpoint)
    };
    let settings = aws::resolve(&props, &|_| None).unwrap().s3.unwrap();

    let outcomes = Arc::new(Outcomes::default());
    let dispatcher = Dispatcher::start(
        gstkvsinfer::runtime::runtime().unwrap(),
        vec![
            DestinationTask::new(S3Destination::new(&settings), 32),
            DestinationTask::new(FileDestination::open(dir.path()).unwrap(), 32),
        ],
        outcomes.clone(),
        Some(Arc::new(S3Linker::new(&settings))),
        DeliveryOptions::default(),
    );
    let snapshot = snapshot(BASE_TS_MS);
    let (tx, rx) = tokio::sync::oneshot::channel();
    tx.send(Ok(snapshot.clone())).unwrap();
    // Two events of one frame share its snapshot; a frame without one goes on without.
    dispatcher.submit(Job {
        envelopes: vec![envelope("knife", BASE_TS_MS), envelope("gun", BASE_TS_MS)],
        snapshot: Some(rx),
        ..Default::default()
    });
    dispatcher.submit(Job {
        envelopes: vec![envelope("knife", BASE_TS_MS + 5000)],
        ..Default::default()
    });
    assert_eq!(dispatcher.flush(Duration::from_secs(20)), 0);
    assert!(outcomes.0.lock().unwrap().is_empty());

    let puts: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.contains(&snapshot.key))
        .collect();
    assert_eq!(puts.len(), 1);

    let clients = clients(&emulator());
    let (body, content_type, metadata) = block_on(async {
        let object = clients
            .s3()
            .await
            .get_object()
            .bucket(&bucket)
            .key(&snapshot.key)
            .send()
            .await
            .unwrap();
        let content_type = object.content_type().map(str::to_string);
        let metadata = object.metadata().cloned().unwrap_or_default();
        let body = object.body.collect().await.unwrap().into_bytes().to_vec();
        (body, content_type, metadata)
    });
    assert_eq!(body, snapshot.jpeg);
    assert_eq!(content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(metadata["camera_id"], "cam1");
    assert_eq!(metadata["timestamp_ms"], BASE_TS_MS.to_string());
    assert_eq!(metadata["jpeg_quality"], "85");
    assert_eq!(metadata["frame_shape"], format!("{HEIGHT}x{WIDTH}"));

    let lines = read_lines(dir.path());
    assert_eq!(lines.len(), 3);
    let envelope: serde_json::Value = serde_json::from_slice(&lines[0]).unwrap();
    assert_eq!(envelope["snapshot"]["bucket"], bucket.as_str());
    assert_eq!(envelope["snapshot"]["key"], snapshot.key.as_str());
    let url = envelope["snapshot"]["url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Expires=600"), "{url}");
    assert_eq!(http_get(url), (200, snapshot.jpeg.clone()));
    let lone: serde_json::Value = serde_json::from_slice(&lines[2]).unwrap();
    assert!(lone.get("snapshot").is_none());
    dispatcher.shutdown(Duration::from_secs(1));
}

#[test]
fn missing_bucket_is_named_in_the_dead_letter() {
    let props = aws::AwsProperties {
        s3_bucket: Some("kvsinfer-no-such-bucket".into()),
        ..properties(&emulator())
    };
    let settings = aws::resolve(&props, &|_| None).unwrap().s3.unwrap();
    let outcomes = Arc::new(Outcomes::default());
    let dispatcher = Dispatcher::start(
        gstkvsinfer::runtime::runtime().unwrap(),
        vec![DestinationTask::new(S3Destination::new(&settings), 32)],
        outcomes.clone(),
        None,
        DeliveryOptions::default(),
    );
    let (tx, rx) = tokio::sync::oneshot::channel();
    tx.send(Ok(snapshot(BASE_TS_MS))).unwrap();
    dispatcher.submit(Job {
        envelopes: vec![envelope("knife", BASE_TS_MS)],
        snapshot: Some(rx),
        ..Default::default()
    });
    assert_eq!(dispatcher.flush(Duration::from_secs(20)), 0);

    let dead = outcomes.0.lock().unwrap().clone();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].contains("'kvsinfer-no-such-bucket'"), "{dead:?}");
    assert!(dead[0].contains("NoSuchBucket"), "{dead:?}");
}

#[test]
fn missing_stream_and_table_are_named_on_the_bus_while_the_file_keeps_delivering() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(|sink| {
        configure(sink, &emulator());
        sink.set_property("kinesis-stream", "kvsinfer-no-such-stream");
        sink.set_property("dynamodb-table", "kvsinfer-no-such-table");
        sink.set_property("output-dir", dir.path().to_str().unwrap());
    });
    for i in 0..2 {
        h.push(frame(BASE_TS_MS + i * 1000, "knife", 0.9)).unwrap();
    }
    assert!(h.push_event(gst::event::Eos::new()));
    wait_settled(&h.element().unwrap(), Duration::from_secs(20));

    assert_eq!(read_lines(dir.path()).len(), 2);
    let messages = bus_messages(&h).join("\n");
    assert!(
        messages.contains("Kinesis stream 'kvsinfer-no-such-stream'"),
        "{messages}"
    );
    assert!(
        messages.contains("DynamoDB table 'kvsinfer-no-such-table'"),
        "{messages}"
    );
    assert!(messages.contains("not retryable"), "{messages}");
}

#[test]
fn start_without_destination_lists_every_destination_property() {
    init();
    let sink = gst::ElementFactory::make("kvsinfersink")
        .property("camera-id", "cam1")
        .build()
        .unwrap();
    let pipeline = gst::Pipeline::new();
    pipeline.add(&sink).unwrap();
    assert!(pipeline.set_state(gst::State::Paused).is_err());

    let bus = pipeline.bus().unwrap();
    let message = bus
        .iter_filtered(&[gst::MessageType::Error])
        .next()
        .unwrap();
    let gst::MessageView::Error(error) = message.view() else {
        unreachable!();
    };
    let text = error.error().to_string();
    for property in [
        "output-dir",
        "kinesis-stream",
        "s3-bucket",
        "dynamodb-table",
    ] {
        assert!(text.contains(property), "{text}");
    }
    pipeline.set_state(gst::State::Null).unwrap();
}

/// Nothing is resolved or connected in a state change: an endpoint that never answers and no
/// credentials at all still start at once.
#[test]
fn start_returns_at_once_with_an_unreachable_endpoint_and_no_credentials() {
    init();
    let sink = gst::ElementFactory::make("kvsinfersink")
        .property("camera-id", "cam1")
        // A non-routable address: connecting hangs until the connect timeout.
        .property("endpoint-uri", "http://10.255.255.1:4566")
        .property("kinesis-stream", "s")
        .property("dynamodb-table", "t")
        .property("s3-bucket", "b")
        .build()
        .unwrap();
    let pipeline = gst::Pipeline::new();
    pipeline.add(&sink).unwrap();

    // READY -> PAUSED is where BaseSink::start runs; a sink then waits for preroll (async).
    let started = Instant::now();
    pipeline.set_state(gst::State::Paused).unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn secrets_never_reach_the_debug_log() {
    init();
    // Captured below, not printed.
    gst::log::remove_default_log_function();
    gst::log::set_active(true);
    gst::log::set_threshold_for_name("kvsinfersink", gst::DebugLevel::Trace);
    let logged = Arc::new(Mutex::new(String::new()));
    let sink_log = logged.clone();
    let function =
        gst::log::add_log_function(move |category, _level, _file, _fn, _line, _obj, message| {
            if category.name() == "kvsinfersink"
                && let Some(text) = message.get()
            {
                sink_log.lock().unwrap().push_str(text.as_str());
            }
        });

    let sink = gst::ElementFactory::make("kvsinfersink")
        .property("camera-id", "cam1")
        .property("access-key", "AKIDLOGTEST")
        .property("secret-access-key", "secret-value-in-log-test")
        .property("session-token", "token-value-in-log-test")
        .property("kinesis-stream", "s")
        .property("endpoint-uri", "http://127.0.0.1:9")
        .build()
        .unwrap();
    let pipeline = gst::Pipeline::new();
    pipeline.add(&sink).unwrap();
    pipeline.set_state(gst::State::Paused).unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    gst::log::remove_log_function(function);

    let logged = logged.lock().unwrap();
    assert!(
        logged.contains("AKIDLOGTEST"),
        "the configuration was not logged: {logged}"
    );
    assert!(!logged.contains("value-in-log-test"), "{logged}");
}

#[test]
fn element_uploads_its_own_annotated_snapshot_to_s3() {
    let bucket = new_bucket();
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(|sink| {
        configure(sink, &emulator());
        sink.set_property("s3-bucket", &bucket);
        sink.set_property("s3-prefix", "shots");
        sink.set_property("jpeg-quality", 75u32);
        sink.set_property("presign-expiry", 120u32);
        sink.set_property("output-dir", dir.path().to_str().unwrap());
    });
    h.play();
    h.push(frame(BASE_TS_MS, "knife", 0.87)).unwrap();
    assert!(h.push_event(gst::event::Eos::new()));
    wait_settled(&h.element().unwrap(), Duration::from_secs(20));

    let lines = read_lines(dir.path());
    assert_eq!(lines.len(), 1);
    let envelope: serde_json::Value = serde_json::from_slice(&lines[0]).unwrap();
    let key = format!("shots/cam1/{BASE_TS_MS}.jpg");
    assert_eq!(envelope["snapshot"]["bucket"], bucket.as_str());
    assert_eq!(envelope["snapshot"]["key"], key.as_str());

    // The same JPEG in the bucket, behind the presigned URL and in the local directory.
    let clients = clients(&emulator());
    let (body, metadata) = block_on(async {
        let object = clients
            .s3()
            .await
            .get_object()
            .bucket(&bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
        let metadata = object.metadata().cloned().unwrap_or_default();
        (
            object.body.collect().await.unwrap().into_bytes().to_vec(),
            metadata,
        )
    });
    assert_eq!(body, std::fs::read(dir.path().join(&key)).unwrap());
    let url = envelope["snapshot"]["url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Expires=120"), "{url}");
    assert_eq!(http_get(url), (200, body.clone()));
    assert_eq!(metadata["jpeg_quality"], "75");
    assert_eq!(metadata["frame_shape"], format!("{HEIGHT}x{WIDTH}"));

    let image = turbojpeg::decompress(&body, turbojpeg::PixelFormat::RGB).unwrap();
    assert_eq!(
        (image.width, image.height),
        (WIDTH as usize, HEIGHT as usize)
    );
    // The knife's box (4, 6, 20, 10) is drawn in weapon red: its bottom edge at y = 15.
    let at = (15 * image.width + 14) * 3;
    let [r, g, b] = [image.pixels[at], image.pixels[at + 1], image.pixels[at + 2]];
    assert!(r > 150 && g < 110 && b < 110, "({r}, {g}, {b})");
}

#[test]
fn kinesis_batch_size_and_dynamodb_ttl_days_shape_the_calls() {
    let proxy = Proxy::start(&emulator());
    let stream = new_stream();
    let table = new_table();
    let mut h = harness(|sink| {
        configure(sink, &proxy.endpoint);
        sink.set_property("kinesis-stream", &stream);
        sink.set_property("kinesis-batch-size", 100u32);
        sink.set_property("kinesis-linger", 2000u32);
        sink.set_property("dynamodb-table", &table);
        sink.set_property("dynamodb-ttl-days", 0u32);
        sink.set_property("snapshot", false);
    });
    for i in 0..250 {
        h.push(frame(BASE_TS_MS + i * 1000, "knife", 0.87)).unwrap();
    }
    assert!(h.push_event(gst::event::Eos::new()));
    wait_settled(&h.element().unwrap(), Duration::from_secs(30));

    let sizes: Vec<_> = proxy.calls("PutRecords").iter().map(records_in).collect();
    assert_eq!(sizes, vec![100, 100, 50]);
    let clients = clients(&emulator());
    let items = block_on(async {
        let client = clients.dynamodb().await;
        query_by_camera(client, &table, "cam1", BASE_TS_MS, BASE_TS_MS + 5000, 10).await
    })
    .unwrap();
    assert_eq!(items.len(), 6);
    // dynamodb-ttl-days=0: the items never expire, so they carry no ttl at all.
    assert!(
        items.iter().all(|item| !item.contains_key("ttl")),
        "{items:?}"
    );
}
