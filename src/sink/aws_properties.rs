// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The AWS properties of `kvsinfersink`, kept out of `imp.rs` so that the element's glue stays
//! readable. Names follow awss3sink where the meaning is the same. A property left unset reads
//! back as its default and lets the seed's environment variable (see `crate::aws::resolve`) fill
//! it in.

use gst::glib;
use gst::prelude::*;

use crate::aws::*;

fn text(name: &str, nick: &str, blurb: &str) -> glib::ParamSpec {
    glib::ParamSpecString::builder(name)
        .nick(nick)
        .blurb(blurb)
        .mutable_ready()
        .build()
}

fn uint(
    name: &str,
    nick: &str,
    blurb: &str,
    (min, max, default): (u32, u32, u32),
) -> glib::ParamSpec {
    glib::ParamSpecUInt::builder(name)
        .nick(nick)
        .blurb(blurb)
        .minimum(min)
        .maximum(max)
        .default_value(default)
        .mutable_ready()
        .build()
}

pub(super) fn specs() -> Vec<glib::ParamSpec> {
    vec![
        text("region", "Region", "AWS region, unset = KDS_REGION, S3_REGION or DDB_REGION, else the standard region chain"),
        text("endpoint-uri", "Endpoint URI", "Endpoint of every AWS service (an emulator or S3-compatible store), unset = the AWS_ENDPOINT_URL variables, else AWS"),
        text("access-key", "Access Key", "AWS access key id, unset = the standard credential chain"),
        text("secret-access-key", "Secret Access Key", "AWS secret access key, with access-key; never logged"),
        text("session-token", "Session Token", "AWS session token of temporary credentials, with access-key; never logged"),
        glib::ParamSpecBoolean::builder("force-path-style")
            .nick("Force Path Style")
            .blurb("Address S3 buckets in the path rather than the host name, as S3-compatible stores need")
            .default_value(DEFAULT_FORCE_PATH_STYLE)
            .mutable_ready()
            .build(),
        uint("request-timeout", "Request Timeout", "Timeout of one AWS request attempt, in ms", (1, MAX_REQUEST_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS)),
        uint("retry-attempts", "Retry Attempts", "Attempts of an AWS request or of a batch's failed part before it is dead-lettered, the first included; with spool-dir retryable failures are retried until delivered; unset = KDS_MAX_RETRIES for Kinesis", (1, MAX_RETRY_ATTEMPTS, DEFAULT_RETRY_ATTEMPTS)),
        uint("retry-backoff", "Retry Backoff", "Wait before the first retry, doubled per attempt with 0.8-1.2 jitter, in ms; unset = KDS_BASE_BACKOFF_MS for Kinesis", (0, MAX_RETRY_BACKOFF_MS, DEFAULT_RETRY_BACKOFF_MS)),
        uint("retry-max-backoff", "Retry Max Backoff", "Longest wait between two attempts, in ms", (1, MAX_RETRY_MAX_BACKOFF_MS, DEFAULT_RETRY_MAX_BACKOFF_MS)),
        text("kinesis-stream", "Kinesis Stream", "Kinesis data stream receiving every envelope, unset = KDS_STREAM_NAME, else no Kinesis output"),
        uint("kinesis-batch-size", "Kinesis Batch Size", "Records per PutRecords call, at most 500 (service limit); unset = KDS_BATCH_SIZE", (1, MAX_KINESIS_BATCH_SIZE, DEFAULT_KINESIS_BATCH_SIZE)),
        uint("kinesis-linger", "Kinesis Linger", "How long a batch that is not full waits for more records after its first, in ms, 0 = send at once", (0, MAX_KINESIS_LINGER_MS, DEFAULT_KINESIS_LINGER_MS)),
        uint("kinesis-max-record-bytes", "Kinesis Max Record Bytes", "Larger envelopes (with partition key) are dead-lettered, in bytes, at most 1 MiB (service limit)", (1, MAX_KINESIS_RECORD_BYTES, DEFAULT_KINESIS_MAX_RECORD_BYTES)),
        text("s3-bucket", "S3 Bucket", "S3 bucket receiving the snapshots, unset = S3_BUCKET, else no S3 output"),
        glib::ParamSpecString::builder("s3-prefix")
            .nick("S3 Prefix")
            .blurb("Key prefix of the snapshots, unset = S3_PREFIX, else the default")
            .default_value(Some(DEFAULT_S3_PREFIX))
            .mutable_ready()
            .build(),
        uint("presign-expiry", "Presign Expiry", "Lifetime of the presigned snapshot URL in the envelope, in s, 0 = no URL, at most 7 days (SigV4 limit)", (0, MAX_PRESIGN_EXPIRY_S, DEFAULT_PRESIGN_EXPIRY_S)),
        text("dynamodb-table", "DynamoDB Table", "DynamoDB table receiving one item per event, unset = DDB_TABLE_NAME, else no DynamoDB output"),
        uint("dynamodb-ttl-days", "DynamoDB TTL Days", "Items expire this many days after they are written, 0 = never; unset = DDB_TTL_DAYS", (0, MAX_DYNAMODB_TTL_DAYS, DEFAULT_DYNAMODB_TTL_DAYS)),
    ]
}

/// Stores `value` if `name` is an AWS property; false if it is not one.
pub(super) fn set(props: &mut AwsProperties, name: &str, value: &glib::Value) -> bool {
    let text = || value.get::<Option<String>>().ok().flatten();
    let uint = || value.get::<u32>().ok();
    match name {
        "region" => props.region = text(),
        "endpoint-uri" => props.endpoint_uri = text(),
        "access-key" => props.access_key = text(),
        "secret-access-key" => props.secret_access_key = text(),
        "session-token" => props.session_token = text(),
        "force-path-style" => props.force_path_style = value.get().ok(),
        "request-timeout" => props.request_timeout_ms = uint(),
        "retry-attempts" => props.retry_attempts = uint(),
        "retry-backoff" => props.retry_backoff_ms = uint(),
        "retry-max-backoff" => props.retry_max_backoff_ms = uint(),
        "kinesis-stream" => props.kinesis_stream = text(),
        "kinesis-batch-size" => props.kinesis_batch_size = uint(),
        "kinesis-linger" => props.kinesis_linger_ms = uint(),
        "kinesis-max-record-bytes" => props.kinesis_max_record_bytes = uint(),
        "s3-bucket" => props.s3_bucket = text(),
        "s3-prefix" => props.s3_prefix = text(),
        "presign-expiry" => props.presign_expiry_s = uint(),
        "dynamodb-table" => props.dynamodb_table = text(),
        "dynamodb-ttl-days" => props.dynamodb_ttl_days = uint(),
        _ => return false,
    }
    true
}

/// The value of AWS property `name`, its default when unset; `None` if it is not one.
pub(super) fn get(props: &AwsProperties, name: &str) -> Option<glib::Value> {
    let value = match name {
        "region" => props.region.to_value(),
        "endpoint-uri" => props.endpoint_uri.to_value(),
        "access-key" => props.access_key.to_value(),
        "secret-access-key" => props.secret_access_key.to_value(),
        "session-token" => props.session_token.to_value(),
        "force-path-style" => props
            .force_path_style
            .unwrap_or(DEFAULT_FORCE_PATH_STYLE)
            .to_value(),
        "request-timeout" => props
            .request_timeout_ms
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS)
            .to_value(),
        "retry-attempts" => props
            .retry_attempts
            .unwrap_or(DEFAULT_RETRY_ATTEMPTS)
            .to_value(),
        "retry-backoff" => props
            .retry_backoff_ms
            .unwrap_or(DEFAULT_RETRY_BACKOFF_MS)
            .to_value(),
        "retry-max-backoff" => props
            .retry_max_backoff_ms
            .unwrap_or(DEFAULT_RETRY_MAX_BACKOFF_MS)
            .to_value(),
        "kinesis-stream" => props.kinesis_stream.to_value(),
        "kinesis-batch-size" => props
            .kinesis_batch_size
            .unwrap_or(DEFAULT_KINESIS_BATCH_SIZE)
            .to_value(),
        "kinesis-linger" => props
            .kinesis_linger_ms
            .unwrap_or(DEFAULT_KINESIS_LINGER_MS)
            .to_value(),
        "kinesis-max-record-bytes" => props
            .kinesis_max_record_bytes
            .unwrap_or(DEFAULT_KINESIS_MAX_RECORD_BYTES)
            .to_value(),
        "s3-bucket" => props.s3_bucket.to_value(),
        "s3-prefix" => props
            .s3_prefix
            .as_deref()
            .unwrap_or(DEFAULT_S3_PREFIX)
            .to_value(),
        "presign-expiry" => props
            .presign_expiry_s
            .unwrap_or(DEFAULT_PRESIGN_EXPIRY_S)
            .to_value(),
        "dynamodb-table" => props.dynamodb_table.to_value(),
        "dynamodb-ttl-days" => props
            .dynamodb_ttl_days
            .unwrap_or(DEFAULT_DYNAMODB_TTL_DAYS)
            .to_value(),
        _ => return None,
    };
    Some(value)
}
