// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Creates what the sink writes to, on AWS or an emulator: the stream, the bucket, and the table
//! in the seed's schema. Each step is idempotent, so provisioning twice is harmless.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::types::StreamStatus;

use crate::aws;
use crate::destination::dynamodb::CAMERA_INDEX;

/// How long a new stream may take to become active.
const STREAM_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

/// Creates stream `name` with `shards` shards unless it exists, and waits until it is active.
pub async fn stream(
    client: &aws_sdk_kinesis::Client,
    name: &str,
    shards: i32,
) -> Result<(), String> {
    let created = client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await;
    if let Err(err) = created
        && err.code() != Some("ResourceInUseException")
    {
        return Err(format!(
            "cannot create stream '{name}': {}",
            aws::call_failure(&err).message
        ));
    }

    let deadline = tokio::time::Instant::now() + STREAM_ACTIVE_TIMEOUT;
    loop {
        let summary = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .map_err(|err| {
                format!(
                    "cannot describe stream '{name}': {}",
                    aws::call_failure(&err).message
                )
            })?;
        let status = summary
            .stream_description_summary()
            .map(|s| s.stream_status().clone());
        if status == Some(StreamStatus::Active) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("stream '{name}' is still {status:?}"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Creates bucket `name` unless this account already has it.
pub async fn bucket(client: &aws_sdk_s3::Client, name: &str) -> Result<(), String> {
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};

    let mut request = client.create_bucket().bucket(name);
    // us-east-1 is the one region that takes no location constraint.
    let region = client.config().region().map(|r| r.to_string());
    if let Some(region) = region.filter(|r| r != "us-east-1") {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(err) if err.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
        Err(err) => Err(format!(
            "cannot create bucket '{name}': {}",
            aws::call_failure(&err).message
        )),
    }
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, String> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|err| err.to_string())
}

fn attribute(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition, String> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .map_err(|err| err.to_string())
}

/// Creates table `name` unless it exists: `event_id` (S, hash), `ts_ms` (N, range), the index
/// `camera_id-ts_ms-index`, on-demand billing, and expiry on `ttl`.
pub async fn table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), String> {
    let index = GlobalSecondaryIndex::builder()
        .index_name(CAMERA_INDEX)
        .key_schema(key("camera_id", KeyType::Hash)?)
        .key_schema(key("ts_ms", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(|err| err.to_string())?;
    let created = client
        .create_table()
        .table_name(name)
        .key_schema(key("event_id", KeyType::Hash)?)
        .key_schema(key("ts_ms", KeyType::Range)?)
        .attribute_definitions(attribute("event_id", ScalarAttributeType::S)?)
        .attribute_definitions(attribute("ts_ms", ScalarAttributeType::N)?)
        .attribute_definitions(attribute("camera_id", ScalarAttributeType::S)?)
        .global_secondary_indexes(index)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    if let Err(err) = created
        && err.code() != Some("ResourceInUseException")
    {
        return Err(format!(
            "cannot create table '{name}': {}",
            aws::call_failure(&err).message
        ));
    }

    // Asking again for a TTL that is already on is refused, so look first.
    let current = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|err| {
            format!(
                "cannot describe the TTL of table '{name}': {}",
                aws::call_failure(&err).message
            )
        })?;
    let description = current.time_to_live_description();
    let enabled = description.is_some_and(|d| {
        d.attribute_name() == Some("ttl")
            && matches!(
                d.time_to_live_status(),
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            )
    });
    if enabled {
        return Ok(());
    }

    let ttl = TimeToLiveSpecification::builder()
        .attribute_name("ttl")
        .enabled(true)
        .build()
        .map_err(|err| err.to_string())?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map(|_| ())
        .map_err(|err| {
            format!(
                "cannot enable TTL on table '{name}': {}",
                aws::call_failure(&err).message
            )
        })
}
