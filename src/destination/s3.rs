// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! S3: each frame's snapshot stored once under its key with PutObject, whatever the number of
//! events sharing it, and a presigned GET link written into the envelopes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use tokio::task::JoinSet;

use crate::CAT;
use crate::aws::{self, Attempts, AwsClients, RetryPolicy, S3Settings};
use crate::delivery::{
    DeliveryError, Destination, DestinationContext, EncodedSnapshot, Event, SnapshotLinker,
};
use crate::envelope::SnapshotRef;

/// Events per batch: a frame's events come together, and their snapshots upload in parallel.
pub const S3_MAX_BATCH: usize = 32;

pub struct S3Destination {
    clients: Arc<AwsClients>,
    bucket: String,
    retry: RetryPolicy,
    until_delivered: bool,
    context: Option<DestinationContext>,
    /// The last snapshot uploaded and its outcome: a frame's events may straddle two batches.
    last: Option<(Arc<EncodedSnapshot>, Result<(), DeliveryError>)>,
}

impl S3Destination {
    /// Network-free: the client is built by the first delivery.
    pub fn new(settings: &S3Settings) -> Self {
        S3Destination {
            clients: aws::clients(&settings.connection),
            bucket: settings.bucket.clone(),
            retry: settings.connection.retry,
            until_delivered: false,
            context: None,
            last: None,
        }
    }

    /// Retries retryable failures until they succeed, as a sink with a spool wants.
    pub fn retry_until_delivered(mut self, on: bool) -> Self {
        self.until_delivered = on;
        self
    }
}

/// The user metadata stored with a snapshot.
pub fn metadata(snapshot: &EncodedSnapshot) -> [(&'static str, String); 4] {
    [
        ("camera_id", snapshot.camera_id.clone()),
        ("timestamp_ms", snapshot.ts_ms.to_string()),
        ("jpeg_quality", snapshot.quality.to_string()),
        (
            "frame_shape",
            format!("{}x{}", snapshot.frame_height, snapshot.frame_width),
        ),
    ]
}

/// One snapshot's PutObject, attempted as `attempts` allows.
struct Upload {
    client: aws_sdk_s3::Client,
    bucket: String,
    attempts: Attempts,
    context: Option<DestinationContext>,
    /// Events waiting for this snapshot, for the counters.
    events: usize,
}

async fn put_snapshot(
    mut upload: Upload,
    snapshot: Arc<EncodedSnapshot>,
) -> Result<(), DeliveryError> {
    let bucket = &upload.bucket;
    loop {
        let mut request = upload
            .client
            .put_object()
            .bucket(bucket)
            .key(&snapshot.key)
            .content_type("image/jpeg")
            .body(ByteStream::from(snapshot.jpeg.clone()));
        for (name, value) in metadata(&snapshot) {
            request = request.metadata(name, value);
        }
        let Err(err) = request.send().await else {
            return Ok(());
        };

        let failure = aws::call_failure(&err);
        let call = format!("S3 bucket '{bucket}': PutObject of '{}'", snapshot.key);
        let wait = super::after_failure(
            &mut upload.attempts,
            upload.context.as_ref(),
            upload.events,
            &call,
            (&failure.message, failure.retryable),
        )
        .map_err(DeliveryError::new)?;
        tokio::time::sleep(wait).await;
    }
}

impl Destination for S3Destination {
    fn name(&self) -> &'static str {
        "s3"
    }

    fn attach(&mut self, context: DestinationContext) {
        self.context = Some(context);
    }

    async fn deliver(&mut self, batch: &[Arc<Event>]) -> Vec<Result<(), DeliveryError>> {
        // Snapshots in first-seen order; events share one Arc per frame.
        let mut uploads: Vec<Arc<EncodedSnapshot>> = Vec::new();
        let mut upload_of = Vec::with_capacity(batch.len());
        for event in batch {
            let index = event.snapshot.as_ref().map(|snapshot| {
                match uploads.iter().position(|known| known.key == snapshot.key) {
                    Some(index) => index,
                    None => {
                        uploads.push(snapshot.clone());
                        uploads.len() - 1
                    }
                }
            });
            upload_of.push(index);
        }

        let mut outcomes: Vec<Option<Result<(), DeliveryError>>> = vec![None; uploads.len()];
        let mut tasks = JoinSet::new();
        if !uploads.is_empty() {
            let client = self.clients.s3().await.clone();
            for (index, snapshot) in uploads.iter().enumerate() {
                if let Some((last, outcome)) = &self.last
                    && last.key == snapshot.key
                {
                    outcomes[index] = Some(outcome.clone());
                    continue;
                }
                let upload = Upload {
                    client: client.clone(),
                    bucket: self.bucket.clone(),
                    attempts: Attempts::new(self.retry, self.until_delivered),
                    context: self.context.clone(),
                    events: upload_of.iter().filter(|u| **u == Some(index)).count(),
                };
                let upload = put_snapshot(upload, snapshot.clone());
                tasks.spawn(async move { (index, upload.await) });
            }
        }
        while let Some(joined) = tasks.join_next().await {
            // A task that panicked leaves its outcome unset, which fails its events below.
            if let Ok((index, outcome)) = joined {
                outcomes[index] = Some(outcome);
            }
        }

        let failed = outcomes
            .iter()
            .filter(|o| !matches!(o, Some(Ok(()))))
            .count();
        if !uploads.is_empty() {
            gst::info!(
                CAT,
                "S3 bucket '{}': {} of {} snapshots stored",
                self.bucket,
                uploads.len() - failed,
                uploads.len()
            );
        }
        if let (Some(snapshot), Some(Some(outcome))) = (uploads.last(), outcomes.last()) {
            self.last = Some((snapshot.clone(), outcome.clone()));
        }

        upload_of
            .into_iter()
            .map(|index| match index {
                None => Ok(()),
                Some(index) => outcomes[index].clone().unwrap_or_else(|| {
                    Err(DeliveryError::new(format!(
                        "S3 bucket '{}': the upload task of '{}' stopped",
                        self.bucket, uploads[index].key
                    )))
                }),
            })
            .collect()
    }
}

/// Fills an envelope's `snapshot` with the bucket, the key and, when asked, a presigned URL.
pub struct S3Linker {
    clients: Arc<AwsClients>,
    bucket: String,
    presign_expiry: Option<Duration>,
    timeout: Duration,
}

impl S3Linker {
    pub fn new(settings: &S3Settings) -> Self {
        S3Linker {
            clients: aws::clients(&settings.connection),
            bucket: settings.bucket.clone(),
            presign_expiry: settings.presign_expiry,
            timeout: Duration::from_millis(u64::from(settings.connection.request_timeout_ms)),
        }
    }

    async fn presign(&self, key: &str, expiry: Duration) -> Result<String, String> {
        let config = PresigningConfig::expires_in(expiry).map_err(|err| err.to_string())?;
        let client = self.clients.s3().await;
        let request = client.get_object().bucket(&self.bucket).key(key);
        // Signing is local, but resolving credentials from the standard chain may not be.
        let presigned = tokio::time::timeout(self.timeout, request.presigned(config))
            .await
            .map_err(|_| format!("no credentials within {:?}", self.timeout))?
            .map_err(|err| aws::call_failure(&err).message)?;
        Ok(presigned.uri().to_string())
    }
}

impl SnapshotLinker for S3Linker {
    fn link<'a>(
        &'a self,
        snapshot: &'a EncodedSnapshot,
    ) -> Pin<Box<dyn Future<Output = SnapshotRef> + Send + 'a>> {
        Box::pin(async move {
            let url = match self.presign_expiry {
                Some(expiry) => match self.presign(&snapshot.key, expiry).await {
                    Ok(url) => Some(url),
                    Err(err) => {
                        gst::warning!(
                            CAT,
                            "S3 bucket '{}': cannot presign '{}', the envelope goes without a \
                             URL: {err}",
                            self.bucket,
                            snapshot.key
                        );
                        None
                    }
                },
                None => None,
            };
            SnapshotRef {
                bucket: Some(self.bucket.clone()),
                key: snapshot.key.clone(),
                url,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_names_the_frame_shape_height_first() {
        let snapshot = EncodedSnapshot {
            key: "snapshots/cam/5.jpg".into(),
            jpeg: vec![],
            camera_id: "cam".into(),
            ts_ms: 5,
            quality: 80,
            frame_width: 640,
            frame_height: 480,
        };
        assert_eq!(
            metadata(&snapshot),
            [
                ("camera_id", "cam".to_string()),
                ("timestamp_ms", "5".to_string()),
                ("jpeg_quality", "80".to_string()),
                ("frame_shape", "480x640".to_string()),
            ]
        );
    }
}
