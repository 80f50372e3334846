// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

/**
 * SECTION:element-kvsinfersink
 *
 * Reads the detections an upstream detector attached to each video frame as
 * `GstVideoRegionOfInterestMeta`, turns them into event envelopes with stable SHA1 event ids (one
 * event per object per dedup window) and delivers them without ever making the streaming thread
 * wait on a destination.
 *
 * ## Example launch line
 *
 * ```shell
 * gst-launch-1.0 filesrc location=people.mp4 ! decodebin ! videoconvert \
 *     ! facedetect display=false ! kvsinfersink camera-id=cam1 output-dir=out
 * ```
 */
use gst::glib;
use gst::prelude::*;

mod aws_properties;
mod core_properties;
mod delivery_properties;
mod imp;
mod observer;
mod snapshot_properties;
mod state;

glib::wrapper! {
    pub struct KvsInferSink(ObjectSubclass<imp::KvsInferSink>)
        @extends gst_base::BaseSink, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "kvsinfersink",
        gst::Rank::NONE,
        KvsInferSink::static_type(),
    )
}
