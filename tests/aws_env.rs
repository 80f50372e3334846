// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The seed's environment variables filling unset properties, in a process of its own: the
//! variables would leak into every other test of the same process.

mod common;

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use gst::prelude::*;
use gstkvsinfer::destination::dynamodb::query_by_camera;
use gstkvsinfer::provision;

use common::*;

#[test]
fn variables_fill_unset_properties_and_a_property_wins() {
    let endpoint = emulator();
    let stream = unique("kvsinfer-env-stream");
    let table = unique("kvsinfer-env-table");
    let clients = clients(&endpoint);
    block_on(async {
        provision::stream(clients.kinesis().await, &stream, 1).await?;
        provision::table(clients.dynamodb().await, &table).await
    })
    .unwrap();

    // SAFETY: the only test of this process sets the variables before any thread reads them.
    unsafe {
        std::env::set_var("KDS_STREAM_NAME", "kvsinfer-stream-from-the-variable");
        std::env::set_var("DDB_TABLE_NAME", &table);
        std::env::set_var("DDB_TTL_DAYS", "0");
    }
    let mut h = harness(|sink| {
        configure(sink, &endpoint);
        sink.set_property("kinesis-stream", &stream);
        sink.set_property("kinesis-linger", 0u32);
    });
    h.push(frame(1_697_123_000_000, "knife", 0.5)).unwrap();
    wait_settled(&h.element().unwrap(), Duration::from_secs(20));
    assert!(bus_messages(&h).is_empty());

    let items = block_on(async {
        query_by_camera(
            clients.dynamodb().await,
            &table,
            "cam1",
            0,
            u64::MAX / 2,
            10,
        )
        .await
        .unwrap()
    });
    // The property won over KDS_STREAM_NAME; DDB_TABLE_NAME filled the unset table.
    assert_eq!(read_stream(&stream, 1).len(), 1);
    assert_eq!(items.len(), 1);
    // DDB_TTL_DAYS=0 came from the variable: no expiry.
    assert!(!items[0].contains_key("ttl"));
    assert_eq!(items[0]["label"], AttributeValue::S("knife".into()));
}
