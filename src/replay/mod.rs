// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

/**
 * SECTION:element-kvsinferreplay
 *
 * Attaches detections recorded in a JSON Lines file to the frames passing through, as
 * `GstVideoRegionOfInterestMeta`, exactly as `kvsinfersink` reads them. It replays the results
 * of an offline detector, or a hand-written scenario, through a real pipeline.
 *
 * ## Example launch line
 *
 * ```shell
 * gst-launch-1.0 filesrc location=lobby.mp4 ! decodebin ! videoconvert \
 *     ! kvsinferreplay location=detections.jsonl ! kvsinfersink camera-id=lobby output-dir=out
 * ```
 */
use gst::glib;
use gst::prelude::*;

mod imp;
pub mod script;

glib::wrapper! {
    pub struct KvsInferReplay(ObjectSubclass<imp::KvsInferReplay>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "kvsinferreplay",
        gst::Rank::NONE,
        KvsInferReplay::static_type(),
    )
}
