// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The places events and snapshots are delivered to.

pub mod dynamodb;
pub mod file;
pub mod kinesis;
pub mod s3;

use std::sync::Arc;

use std::time::Duration;

use crate::CAT;
use crate::aws::{Attempts, AwsDestinations};
use crate::delivery::{DeliveryError, DestinationContext, DestinationTask, SnapshotLinker};

/// The delivery tasks of the AWS destinations that are on, and the linker that completes the
/// envelopes' snapshot field when S3 is one of them. Network-free.
pub fn aws_tasks(aws: &AwsDestinations) -> (Vec<DestinationTask>, Option<Arc<dyn SnapshotLinker>>) {
    let mut tasks = Vec::new();
    let mut linker: Option<Arc<dyn SnapshotLinker>> = None;
    if let Some(settings) = &aws.kinesis {
        let destination =
            kinesis::KinesisDestination::new(settings.clone()).retry_until_delivered(aws.spooled);
        let batch_size = destination.batch_size();
        tasks.push(DestinationTask::new(destination, batch_size));
    }
    if let Some(settings) = &aws.s3 {
        tasks.push(DestinationTask::new(
            s3::S3Destination::new(settings).retry_until_delivered(aws.spooled),
            s3::S3_MAX_BATCH,
        ));
        linker = Some(Arc::new(s3::S3Linker::new(settings)));
    }
    if let Some(settings) = &aws.dynamodb {
        let destination =
            dynamodb::DynamoDbDestination::new(settings.clone()).retry_until_delivered(aws.spooled);
        tasks.push(DestinationTask::new(
            destination,
            dynamodb::DYNAMODB_MAX_BATCH,
        ));
    }
    (tasks, linker)
}

/// Gives every event of `indices` the same error.
fn fail_all(
    results: &mut [Result<(), DeliveryError>],
    indices: impl IntoIterator<Item = usize>,
    message: &str,
) {
    for i in indices {
        if let Some(result) = results.get_mut(i) {
            *result = Err(DeliveryError::new(message));
        }
    }
}

/// After a failed attempt of `call` (e.g. `Kinesis stream 's': PutRecords`) for `events`
/// events: the wait before the next attempt, counted and reported; or, when `attempts` gives
/// up, the message to dead-letter them with.
fn after_failure(
    attempts: &mut Attempts,
    context: Option<&DestinationContext>,
    events: usize,
    call: &str,
    (reason, retryable): (&str, bool),
) -> Result<Duration, String> {
    let made = attempts.made();
    let Some(wait) = attempts.next(retryable) else {
        let how = match retryable {
            true => format!("still failing after {made} attempts"),
            false => "failed (not retryable)".into(),
        };
        let message = format!("{call} {how}: {reason}");
        gst::debug!(CAT, "{message}");
        return Err(message);
    };
    let message = format!("{call} attempt {made} failed, retrying in {wait:?}: {reason}");
    gst::debug!(CAT, "{message}");
    if let Some(context) = context {
        context.retrying(events, &message);
    }
    Ok(wait)
}
