// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Prints the events of one camera between two times, newest first, one JSON object a line.
//!
//!     cargo run --example query -- --table events-table --camera cam1 \
//!         --start 1697123000000 --end 1697124000000 [--limit 100] \
//!         [--region us-east-1] [--endpoint-uri http://127.0.0.1:5000]
//!
//! Times are Unix milliseconds; `--end` defaults to now and `--start` to an hour before it.

use std::collections::HashMap;
use std::process::ExitCode;

use gstkvsinfer::aws::{self, AwsProperties};
use gstkvsinfer::destination::dynamodb::{item_json, query_by_camera};

const USAGE: &str = "usage: query --table NAME --camera ID [--start MS] [--end MS] \
                     [--limit N] [--region REGION] [--endpoint-uri URI]";

fn number(flags: &HashMap<String, String>, flag: &str, default: u64) -> Result<u64, String> {
    flags.get(flag).map_or(Ok(default), |value| {
        value
            .parse()
            .map_err(|_| format!("{flag} takes a whole number\n{USAGE}"))
    })
}

fn run() -> Result<(), String> {
    let known = [
        "--table",
        "--camera",
        "--start",
        "--end",
        "--limit",
        "--region",
        "--endpoint-uri",
    ];
    let mut flags = HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (known.contains(&flag.as_str()), args.next()) {
            (true, Some(value)) => flags.insert(flag, value),
            _ => return Err(USAGE.into()),
        };
    }
    let (Some(table), Some(camera)) = (flags.get("--table"), flags.get("--camera")) else {
        return Err(USAGE.into());
    };
    let end = number(&flags, "--end", gstkvsinfer::envelope::unix_now_ms())?;
    let start = number(&flags, "--start", end.saturating_sub(3_600_000))?;
    let limit = number(&flags, "--limit", 100)? as usize;

    let props = AwsProperties {
        region: flags.get("--region").cloned(),
        endpoint_uri: flags.get("--endpoint-uri").cloned(),
        dynamodb_table: Some(table.clone()),
        ..Default::default()
    };
    let settings = aws::resolve(&props, &aws::process_env)?
        .dynamodb
        .ok_or(USAGE)?;
    let clients = aws::clients(&settings.connection);

    let runtime = gstkvsinfer::runtime::runtime().map_err(|err| err.to_string())?;
    let items = runtime.block_on(async {
        query_by_camera(clients.dynamodb().await, table, camera, start, end, limit).await
    })?;
    for item in &items {
        println!("{}", item_json(item));
    }
    eprintln!(
        "{} events of {camera} between {start} and {end}",
        items.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}
