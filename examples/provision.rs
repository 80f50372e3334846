// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Creates the stream, bucket and table `kvsinfersink` writes to; running it twice is harmless.
//!
//!     cargo run --example provision -- --stream detection-events --shards 1 \
//!         --bucket detection-snapshots --table events-table \
//!         [--region us-east-1] [--endpoint-uri http://127.0.0.1:5000]
//!
//! Credentials come from the standard chain (for an emulator, AWS_ACCESS_KEY_ID=testing and
//! AWS_SECRET_ACCESS_KEY=testing).

use std::collections::HashMap;
use std::process::ExitCode;

use gstkvsinfer::aws::{self, AwsProperties};
use gstkvsinfer::provision;

const USAGE: &str = "usage: provision [--stream NAME] [--shards N] [--bucket NAME] \
                     [--table NAME] [--region REGION] [--endpoint-uri URI]";

fn main() -> ExitCode {
    let mut flags = HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let known = [
            "--stream",
            "--shards",
            "--bucket",
            "--table",
            "--region",
            "--endpoint-uri",
        ];
        let (true, Some(value)) = (known.contains(&flag.as_str()), args.next()) else {
            eprintln!("{USAGE}");
            return ExitCode::FAILURE;
        };
        flags.insert(flag, value);
    }
    let Ok(shards) = flags.get("--shards").map_or(Ok(1), |n| n.parse::<i32>()) else {
        eprintln!("--shards takes a number\n{USAGE}");
        return ExitCode::FAILURE;
    };

    let props = AwsProperties {
        region: flags.get("--region").cloned(),
        endpoint_uri: flags.get("--endpoint-uri").cloned(),
        force_path_style: Some(flags.contains_key("--endpoint-uri")),
        // Any name: only the connection of the resolved settings is used.
        kinesis_stream: Some("provision".into()),
        ..Default::default()
    };
    let connection = match aws::resolve(&props, &|_| None) {
        Ok(resolved) => resolved.kinesis.map(|k| k.connection),
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    let Some(connection) = connection else {
        return ExitCode::FAILURE;
    };
    let clients = aws::clients(&connection);

    let runtime = gstkvsinfer::runtime::runtime().expect("a tokio runtime");
    let result = runtime.block_on(async {
        if let Some(stream) = flags.get("--stream") {
            provision::stream(clients.kinesis().await, stream, shards).await?;
            println!("stream {stream}: active");
        }
        if let Some(bucket) = flags.get("--bucket") {
            provision::bucket(clients.s3().await, bucket).await?;
            println!("bucket {bucket}: ready");
        }
        if let Some(table) = flags.get("--table") {
            provision::table(clients.dynamodb().await, table).await?;
            println!("table {table}: ready, with index camera_id-ts_ms-index and TTL on ttl");
        }
        Ok::<_, String>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}
