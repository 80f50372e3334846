// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Kinesis Data Streams: each envelope is one record, partition key = camera id, sent with
//! PutRecords in batches.
//!
//! PutRecords succeeds or fails per record. Only the records that failed are sent again, so a
//! consumer never sees a record twice because a neighbour was throttled. Whole-call failures
//! (connection, timeout, 5xx, throttling) are retried by the same loop (see `aws::Attempts`); a
//! record is sent twice only when a reply is lost after the service stored it.

use std::sync::Arc;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;

use crate::CAT;
use crate::aws::{self, Attempts, AwsClients, KinesisSettings};
use crate::delivery::{DeliveryError, Destination, DestinationContext, Event};

/// One PutRecords request carries at most 5 MiB of data and partition keys (service limit).
pub const MAX_PUT_RECORDS_BYTES: usize = 5 * 1024 * 1024;

pub struct KinesisDestination {
    clients: Arc<AwsClients>,
    settings: KinesisSettings,
    until_delivered: bool,
    context: Option<DestinationContext>,
}

impl KinesisDestination {
    /// Network-free: the client is built by the first delivery.
    pub fn new(settings: KinesisSettings) -> Self {
        KinesisDestination {
            clients: aws::clients(&settings.connection),
            settings,
            until_delivered: false,
            context: None,
        }
    }

    /// Retries retryable failures until they succeed, as a sink with a spool wants.
    pub fn retry_until_delivered(mut self, on: bool) -> Self {
        self.until_delivered = on;
        self
    }

    pub fn batch_size(&self) -> usize {
        self.settings.batch_size
    }

    /// Sends `indices` of `batch` in one PutRecords call, then again those that failed.
    async fn put(
        &self,
        batch: &[Arc<Event>],
        mut pending: Vec<usize>,
        results: &mut [Result<(), DeliveryError>],
    ) {
        let stream = &self.settings.stream;
        let client = self.clients.kinesis().await;

        let mut attempts = Attempts::new(self.settings.connection.retry, self.until_delivered);
        loop {
            let entries = pending.iter().filter_map(|&i| {
                let event = &batch[i];
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(event.json.as_bytes()))
                    .partition_key(&event.envelope.camera_id)
                    .build()
                    .ok()
            });
            let sent = client
                .put_records()
                .stream_name(stream)
                .set_records(Some(entries.collect()))
                .send()
                .await;

            let (reason, retryable) = match sent {
                Ok(output) => {
                    let records = output.records();
                    let mut again = Vec::new();
                    let mut reason = String::new();
                    for (k, &i) in pending.iter().enumerate() {
                        // A reply shorter than the request is not trusted for the missing part.
                        let Some(record) = records.get(k) else {
                            reason = "the reply had no result for the record".into();
                            again.push(i);
                            continue;
                        };
                        let Some(code) = record.error_code() else {
                            results[i] = Ok(());
                            continue;
                        };
                        let message =
                            format!("{code}: {}", record.error_message().unwrap_or_default());
                        if aws::is_retryable_code(Some(code), None) {
                            reason = message;
                            again.push(i);
                        } else {
                            results[i] = Err(DeliveryError::new(format!(
                                "Kinesis stream '{stream}': the record was refused: {message}"
                            )));
                        }
                    }
                    pending = again;
                    if pending.is_empty() {
                        return;
                    }
                    (format!("{} records failed: {reason}", pending.len()), true)
                }
                Err(err) => {
                    let failure = aws::call_failure(&err);
                    (failure.message, failure.retryable)
                }
            };

            let call = format!("Kinesis stream '{stream}': PutRecords");
            let wait = super::after_failure(
                &mut attempts,
                self.context.as_ref(),
                pending.len(),
                &call,
                (&reason, retryable),
            );
            let wait = match wait {
                Ok(wait) => wait,
                Err(message) => return super::fail_all(results, pending, &message),
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Groups the records that fit into PutRecords calls under the count and size limits. Records
/// over `max_record_bytes` get their error in `results` and go into no call, so that one cannot
/// fail the others.
pub fn plan_calls(
    batch: &[Arc<Event>],
    max_records: usize,
    max_record_bytes: usize,
    results: &mut [Result<(), DeliveryError>],
) -> Vec<Vec<usize>> {
    let mut calls: Vec<Vec<usize>> = Vec::new();
    let mut call_bytes = 0;
    for (i, event) in batch.iter().enumerate() {
        let bytes = event.json.len() + event.envelope.camera_id.len();
        if bytes > max_record_bytes {
            results[i] = Err(DeliveryError::new(format!(
                "the record is {bytes} bytes with its partition key, over the \
                 kinesis-max-record-bytes limit of {max_record_bytes}"
            )));
            continue;
        }

        let full = calls.last().is_none_or(|call| {
            call.len() >= max_records.max(1) || call_bytes + bytes > MAX_PUT_RECORDS_BYTES
        });
        if full {
            calls.push(Vec::new());
            call_bytes = 0;
        }
        call_bytes += bytes;
        if let Some(call) = calls.last_mut() {
            call.push(i);
        }
    }
    calls
}

impl Destination for KinesisDestination {
    fn name(&self) -> &'static str {
        "kinesis"
    }

    fn linger(&self) -> std::time::Duration {
        self.settings.linger
    }

    fn attach(&mut self, context: DestinationContext) {
        self.context = Some(context);
    }

    async fn deliver(&mut self, batch: &[Arc<Event>]) -> Vec<Result<(), DeliveryError>> {
        // Every entry is overwritten by an outcome; this one stays only if the code is wrong.
        let mut results = vec![Err(DeliveryError::new("not sent")); batch.len()];
        let calls = plan_calls(
            batch,
            self.settings.batch_size,
            self.settings.max_record_bytes,
            &mut results,
        );
        let records: usize = calls.iter().map(Vec::len).sum();
        for call in calls {
            self.put(batch, call, &mut results).await;
        }

        let failed = results.iter().filter(|r| r.is_err()).count();
        gst::info!(
            CAT,
            "Kinesis stream '{}': {} of {records} records published, {failed} dead-lettered",
            self.settings.stream,
            records.saturating_sub(failed)
        );
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::Detection;
    use crate::envelope::Envelope;

    /// An event whose JSON is `json_bytes` long.
    fn event_with_json(camera_id: &str, json_bytes: usize) -> Arc<Event> {
        let detection = Detection {
            label: "knife".into(),
            event_type: "weapon".into(),
            conf: 0.5,
            bbox: [0, 0, 1, 1],
            extras: Default::default(),
        };
        let mut event = Event::new(Envelope::new(camera_id, "p", 1, 1000, detection), None);
        event.json = "x".repeat(json_bytes);
        Arc::new(event)
    }

    #[test]
    fn oversized_record_is_dead_lettered_alone() {
        let batch: Vec<_> = [10, 2000, 10]
            .iter()
            .map(|n| event_with_json("cam", *n))
            .collect();
        let mut results = vec![Ok(()); 3];
        let calls = plan_calls(&batch, 500, 1000, &mut results);
        assert_eq!(calls, vec![vec![0, 2]]);
        assert!(results[1].as_ref().unwrap_err().message.contains("over"));
        assert!(results[0].is_ok() && results[2].is_ok());
    }

    #[test]
    fn calls_respect_count_and_byte_limits() {
        let batch: Vec<_> = (0..1200).map(|_| event_with_json("cam", 100)).collect();
        let mut results = vec![Ok(()); batch.len()];
        let sizes: Vec<_> = plan_calls(&batch, 500, 1 << 20, &mut results)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, vec![500, 500, 200]);

        // Six records of 1 MiB minus a little: five fill the 5 MiB of one call.
        let big: Vec<_> = (0..6)
            .map(|_| event_with_json("cam", (1 << 20) - 10))
            .collect();
        let mut results = vec![Ok(()); big.len()];
        let sizes: Vec<_> = plan_calls(&big, 500, 1 << 20, &mut results)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, vec![5, 1]);
    }
}
