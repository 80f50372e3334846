// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Delivery rates against the emulator (`scripts/emulator.sh start`, then source its env file):
//! Kinesis events/s batched by PutRecords against one PutRecord call per event, S3 snapshots/s
//! and DynamoDB items/s.
//!
//!     cargo bench --bench aws

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use gstkvsinfer::aws::{self, AwsProperties};
use gstkvsinfer::delivery::{Destination, EncodedSnapshot, Event};
use gstkvsinfer::destination::dynamodb::{DYNAMODB_MAX_BATCH, DynamoDbDestination};
use gstkvsinfer::destination::kinesis::KinesisDestination;
use gstkvsinfer::destination::s3::{S3_MAX_BATCH, S3Destination};
use gstkvsinfer::detection::Detection;
use gstkvsinfer::envelope::Envelope;
use gstkvsinfer::provision;

const KINESIS_BATCHED_EVENTS: u64 = 5000;
const KINESIS_SINGLE_EVENTS: u64 = 300;
const SNAPSHOTS: u64 = 200;
/// About the size of a 1080p JPEG at quality 90.
const SNAPSHOT_BYTES: usize = 200 * 1024;
const DYNAMODB_ITEMS: u64 = 2000;

fn events(n: u64, with_snapshot: bool) -> Vec<Arc<Event>> {
    let jpeg: Vec<u8> = (0..SNAPSHOT_BYTES).map(|i| (i % 251) as u8).collect();
    (0..n)
        .map(|i| {
            let ts_ms = 1_697_123_000_000 + i * 1000;
            let detection = Detection {
                label: "knife".into(),
                event_type: "weapon".into(),
                conf: 0.87,
                bbox: [100, 200, 50, 75],
                extras: serde_json::json!({"label_id": 3, "track_id": i})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            };
            let snapshot = with_snapshot.then(|| {
                Arc::new(EncodedSnapshot {
                    key: format!("snapshots/cam1/{ts_ms}.jpg"),
                    jpeg: jpeg.clone(),
                    camera_id: "cam1".into(),
                    ts_ms,
                    quality: 90,
                    frame_width: 1920,
                    frame_height: 1080,
                })
            });
            let envelope = Envelope::new("cam1", "bench", ts_ms, 1000, detection);
            Arc::new(Event::new(envelope, snapshot))
        })
        .collect()
}

/// Delivers `events` in batches of `batch`; returns the rate, failing on any dead letter.
async fn rate(destination: &mut impl Destination, events: &[Arc<Event>], batch: usize) -> f64 {
    let started = Instant::now();
    for chunk in events.chunks(batch) {
        let results = destination.deliver(chunk).await;
        assert!(
            results.iter().all(Result::is_ok),
            "{:?}",
            results.iter().find(|r| r.is_err())
        );
    }
    events.len() as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let Ok(endpoint) = std::env::var("KVSINFER_EMULATOR") else {
        eprintln!(
            "KVSINFER_EMULATOR is not set: run scripts/emulator.sh start and source its env file"
        );
        std::process::exit(1);
    };
    let suffix = format!(
        "{}-{}",
        std::process::id(),
        Instant::now().elapsed().subsec_nanos()
    );
    let stream = format!("kvsinfer-bench-{suffix}");
    let bucket = format!("kvsinfer-bench-{suffix}");
    let table = format!("kvsinfer-bench-{suffix}");
    let props = AwsProperties {
        region: Some("us-east-1".into()),
        endpoint_uri: Some(endpoint),
        access_key: Some("testing".into()),
        secret_access_key: Some("testing".into()),
        force_path_style: Some(true),
        kinesis_stream: Some(stream.clone()),
        kinesis_linger_ms: Some(0),
        s3_bucket: Some(bucket.clone()),
        dynamodb_table: Some(table.clone()),
        ..Default::default()
    };
    let settings = aws::resolve(&props, &|_| None).expect("valid settings");
    let (Some(kinesis), Some(s3), Some(dynamodb)) =
        (settings.kinesis, settings.s3, settings.dynamodb)
    else {
        unreachable!("all three destinations are named");
    };
    let clients = aws::clients(&kinesis.connection);

    let runtime = gstkvsinfer::runtime::runtime().expect("a tokio runtime");
    runtime
        .block_on(async {
            provision::stream(clients.kinesis().await, &stream, 1).await?;
            provision::bucket(clients.s3().await, &bucket).await?;
            provision::table(clients.dynamodb().await, &table).await
        })
        .expect("provisioned");

    let rows = runtime.block_on(async {
        let batch_size = kinesis.batch_size;
        let mut destination = KinesisDestination::new(kinesis);
        let batched = events(KINESIS_BATCHED_EVENTS, false);
        let batched_rate = rate(&mut destination, &batched, batch_size).await;

        let single = events(KINESIS_SINGLE_EVENTS, false);
        let client = clients.kinesis().await;
        let started = Instant::now();
        for event in &single {
            client
                .put_record()
                .stream_name(&stream)
                .partition_key(&event.envelope.camera_id)
                .data(Blob::new(event.json.as_bytes()))
                .send()
                .await
                .expect("PutRecord");
        }
        let single_rate = single.len() as f64 / started.elapsed().as_secs_f64();

        let snapshots = events(SNAPSHOTS, true);
        let s3_rate = rate(&mut S3Destination::new(&s3), &snapshots, S3_MAX_BATCH).await;
        let items = events(DYNAMODB_ITEMS, false);
        let mut table = DynamoDbDestination::new(dynamodb);
        let dynamodb_rate = rate(&mut table, &items, DYNAMODB_MAX_BATCH).await;
        [
            (
                "Kinesis PutRecords, batches of 500",
                KINESIS_BATCHED_EVENTS,
                batched_rate,
                "events/s",
            ),
            (
                "Kinesis PutRecord, one per event",
                KINESIS_SINGLE_EVENTS,
                single_rate,
                "events/s",
            ),
            (
                "S3 PutObject, 200 KiB, 32 in parallel",
                SNAPSHOTS,
                s3_rate,
                "snapshots/s",
            ),
            (
                "DynamoDB BatchWriteItem, 25 per call",
                DYNAMODB_ITEMS,
                dynamodb_rate,
                "items/s",
            ),
        ]
    });

    println!("{:<40} {:>8} {:>12}", "delivery", "count", "rate");
    for (name, count, rate, unit) in &rows {
        println!("{name:<40} {count:>8} {rate:>10.0} {unit}");
    }
    println!(
        "Kinesis batched / one call per event: {:.1}x",
        rows[0].2 / rows[1].2
    );
    // Let the runtime's idle connections close before the process exits.
    std::thread::sleep(Duration::from_millis(10));
}
