// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! What a running `kvsinfersink` holds, and how its properties become that at start.

use std::sync::Arc;
use std::time::Duration;

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::core_properties::CoreProperties;
use super::delivery_properties::DeliveryProperties;
use super::imp::KvsInferSink;
use super::observer::SinkObserver;
use super::snapshot_properties::SnapshotProperties;
use crate::CAT;
use crate::aws::{self, AwsProperties};
use crate::delivery::budget::{Budget, WhenFull};
use crate::delivery::spool::Spool;
use crate::delivery::{self as delivery, DeliveryOptions, DestinationTask, Dispatcher};
use crate::destination::file::FileDestination;
use crate::detection::{DetectionRules, TypeMap};
use crate::extract::{self, EventExtractor, SnapshotSchedule};
use crate::kvstag::{self, FragmentTagger};
use crate::ratelimit::RateLimiter;
use crate::snapshot::{SnapshotMetadata, SnapshotSettings};
use crate::stats::SinkStats;

/// Events written to the local directory in one append and one sync, at most.
const FILE_MAX_BATCH: usize = 1024;

/// Every property, by group: each group's file declares, stores and reads its own.
#[derive(Debug, Clone, Default)]
pub(super) struct Settings {
    pub(super) core: CoreProperties,
    pub(super) aws: AwsProperties,
    pub(super) delivery: DeliveryProperties,
    pub(super) snapshot: SnapshotProperties,
}

pub(super) struct Started {
    pub(super) extractor: EventExtractor,
    pub(super) dispatcher: Dispatcher,
    /// The negotiated caps.
    pub(super) info: Option<gst_video::VideoInfo>,
    pub(super) snapshots: Option<SnapshotPlan>,
    pub(super) warnings: RateLimiter,
    pub(super) flush_timeout: Duration,
    pub(super) budget: Arc<Budget>,
    pub(super) when_full: WhenFull,
    pub(super) observer: Arc<SinkObserver>,
    /// The kvssink whose fragments are tagged with events, and what fits in a fragment.
    pub(super) fragment_tags: Option<(String, FragmentTagger)>,
}

/// How this sink makes snapshots.
pub(super) struct SnapshotPlan {
    pub(super) settings: SnapshotSettings,
    pub(super) schedule: SnapshotSchedule,
    pub(super) prefix: String,
    pub(super) camera_id: String,
}

/// A snapshot render() decided to make, with what it needs outside the state lock.
pub(super) struct SnapshotRequest {
    pub(super) settings: SnapshotSettings,
    pub(super) metadata: SnapshotMetadata,
    pub(super) info: gst_video::VideoInfo,
}

impl Started {
    /// The running state `settings` describe, or the error that names what is wrong with them.
    pub(super) fn build(
        sink: &KvsInferSink,
        settings: &Settings,
        sink_stats: Arc<SinkStats>,
    ) -> Result<Started, gst::ErrorMessage> {
        let settings_error =
            |message: String| gst::error_msg!(gst::LibraryError::Settings, ("{message}"));

        let Some(camera_id) = settings.core.camera_id.clone() else {
            return Err(settings_error(
                "Property 'camera-id' is required: set it to the camera's name (letters, digits, \
                 '.', '_', '-')"
                    .into(),
            ));
        };
        extract::validate_camera_id(&camera_id).map_err(settings_error)?;
        let type_map = TypeMap::parse(&settings.core.type_map)
            .map_err(|err| settings_error(format!("Property 'type-map' is invalid: {err}")))?;

        let mut destinations = Vec::new();
        if settings
            .core
            .output_dir
            .as_ref()
            .is_some_and(|dir| dir.as_os_str().is_empty())
        {
            return Err(settings_error(
                "Property 'output-dir' is empty: name a directory, or leave it unset".into(),
            ));
        }
        if let Some(dir) = &settings.core.output_dir {
            let file = FileDestination::open(dir).map_err(|err| {
                gst::error_msg!(
                    gst::ResourceError::OpenWrite,
                    ("Property 'output-dir': {err}")
                )
            })?;
            destinations.push(DestinationTask::new(file, FILE_MAX_BATCH));
        }
        // Settings only: clients are built, and credentials resolved, by the delivery tasks.
        let mut aws = aws::resolve(&settings.aws, &aws::process_env).map_err(settings_error)?;
        aws.spooled = settings.delivery.spool_dir.is_some();
        gst::debug!(CAT, imp = sink, "AWS destinations: {aws:?}");
        let (aws_tasks, linker) = crate::destination::aws_tasks(&aws);
        destinations.extend(aws_tasks);
        if destinations.is_empty() {
            return Err(settings_error(
                "No destination configured: set at least one of 'output-dir' (local directory), \
                 'kinesis-stream', 's3-bucket' or 'dynamodb-table'"
                    .into(),
            ));
        }

        let runtime = crate::runtime::runtime().map_err(|err| {
            gst::error_msg!(
                gst::CoreError::Failed,
                ("Cannot start the delivery runtime: {err}")
            )
        })?;
        let observer = Arc::new(SinkObserver::new(&*sink.obj()));
        let spool = match &settings.delivery.spool_dir {
            Some(dir) => {
                let mask = destinations.iter().fold(0, |mask, d| mask | d.bit());
                let (spool, left) = Spool::open(dir, settings.delivery.spool_max_bytes, mask)
                    .map_err(|err| {
                        gst::error_msg!(
                            gst::ResourceError::OpenWrite,
                            ("Property 'spool-dir': {err}")
                        )
                    })?;
                if !left.is_empty() {
                    gst::info!(
                        CAT,
                        imp = sink,
                        "Resending {} events left in the spool",
                        left.len()
                    );
                }
                let waiting = spool.waiting_for_absent_destinations();
                if waiting > 0 {
                    gst::element_imp_warning!(
                        sink,
                        gst::ResourceError::Settings,
                        ("{waiting} events in the spool are owed to destinations this run does not \
                          have; they stay in the spool for a run that has them")
                    );
                }
                Some((Arc::new(spool), left))
            }
            None => None,
        };
        let options = DeliveryOptions {
            spool,
            dead_letter_dir: delivery::dead_letter_dir(
                settings.core.output_dir.as_deref(),
                settings.delivery.spool_dir.as_deref(),
            ),
            sink_stats,
        };
        let snapshots = match settings.snapshot.enabled {
            true => Some(SnapshotPlan {
                settings: SnapshotSettings {
                    quality: aws::jpeg_quality(settings.snapshot.jpeg_quality, &aws::process_env)
                        .map_err(settings_error)? as u8,
                    max_width: settings.snapshot.max_width,
                    draw_labels: settings.snapshot.draw_labels,
                },
                schedule: SnapshotSchedule::new(u64::from(settings.snapshot.interval_ms)),
                prefix: aws::snapshot_prefix(&settings.aws, &aws::process_env)
                    .map_err(settings_error)?,
                camera_id: camera_id.clone(),
            }),
            false => None,
        };
        let budget_bytes =
            usize::try_from(settings.delivery.max_pending_bytes).unwrap_or(usize::MAX);

        let rules = DetectionRules {
            type_map,
            min_confidence: settings.core.min_confidence,
            labels: DetectionRules::parse_labels(&settings.core.labels),
        };
        Ok(Started {
            extractor: EventExtractor::new(
                camera_id,
                settings.core.producer.clone(),
                u64::from(settings.core.dedup_window_ms),
                rules,
                settings.core.timestamp_mode,
            ),
            dispatcher: Dispatcher::start(runtime, destinations, observer.clone(), linker, options),
            observer,
            budget: Budget::new(budget_bytes),
            when_full: settings.delivery.when_full,
            info: None,
            snapshots,
            warnings: RateLimiter::default(),
            flush_timeout: Duration::from_millis(u64::from(settings.core.flush_timeout_ms)),
            fragment_tags: settings.core.kvssink_name.clone().map(|name| {
                let duration = kvstag::fragment_duration(sink.obj().upcast_ref(), &name);
                (name, FragmentTagger::new(duration))
            }),
        })
    }
}
