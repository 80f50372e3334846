// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Runs a detector and `kvsinfersink` over a video file, a photo or a URI, printing each event
//! as the sink announces it and the sink's statistics at the end.
//!
//! ```shell
//! cargo run --release --example pipeline -- Megamind.avi --camera-id megamind --output-dir out
//! cargo run --release --example pipeline -- vtest.avi --replay detections.jsonl \
//!     --set kinesis-stream=events --set endpoint-uri=http://127.0.0.1:5000
//! ```
//!
//! Without `--replay`, the detector is OpenCV's `facedetect`; with it, `kvsinferreplay` attaches
//! the recorded detections of the file instead. Every `--set name=value` is a property of the
//! sink.

use std::process::ExitCode;

use gst::prelude::*;

struct Options {
    source: String,
    camera_id: String,
    output_dir: Option<String>,
    replay: Option<String>,
    sink_properties: Vec<(String, String)>,
}

const USAGE: &str = "usage: pipeline <file-or-uri> [--camera-id ID] [--output-dir DIR] \
                     [--replay DETECTIONS.jsonl] [--set property=value]...";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        source: String::new(),
        camera_id: "cam1".into(),
        output_dir: None,
        replay: None,
        sink_properties: Vec::new(),
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--camera-id" => options.camera_id = value()?,
            "--output-dir" => options.output_dir = Some(value()?),
            "--replay" => options.replay = Some(value()?),
            "--set" => {
                let pair = value()?;
                let (name, value) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("--set {pair}: expected property=value"))?;
                options.sink_properties.push((name.into(), value.into()));
            }
            "-h" | "--help" => return Err(USAGE.into()),
            _ if options.source.is_empty() && !arg.starts_with("--") => options.source = arg,
            _ => return Err(format!("unexpected argument '{arg}'\n{USAGE}")),
        }
    }
    if options.source.is_empty() {
        return Err(USAGE.into());
    }
    Ok(options)
}

/// The decoding part of the pipeline: stills are repeated for a few seconds.
fn source_description(source: &str) -> Result<String, String> {
    let is_still = [".png", ".jpg", ".jpeg"]
        .iter()
        .any(|ext| source.to_lowercase().ends_with(ext));
    let uri = if source.contains("://") {
        source.to_string()
    } else {
        let path = std::fs::canonicalize(source).map_err(|err| format!("{source}: {err}"))?;
        gst::glib::filename_to_uri(&path, None)
            .map_err(|err| format!("{source}: {err}"))?
            .to_string()
    };
    Ok(match is_still {
        true => format!(
            "uridecodebin uri=\"{uri}\" ! imagefreeze num-buffers=75 ! video/x-raw,framerate=25/1"
        ),
        false => format!("uridecodebin uri=\"{uri}\""),
    })
}

fn build(options: &Options) -> Result<gst::Pipeline, String> {
    let detector = match &options.replay {
        Some(file) => format!("kvsinferreplay location=\"{file}\""),
        None => "facedetect display=false".to_string(),
    };
    let description = format!(
        "{} ! videoconvert ! {detector} ! kvsinfersink name=sink post-messages=true",
        source_description(&options.source)?
    );
    let pipeline = gst::parse::launch(&description)
        .map_err(|err| format!("{description}: {err}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;

    let sink = pipeline.by_name("sink").ok_or("no sink in the pipeline")?;
    sink.set_property("camera-id", &options.camera_id);
    if let Some(dir) = &options.output_dir {
        sink.set_property("output-dir", dir);
    }
    for (name, value) in &options.sink_properties {
        if sink.find_property(name).is_none() {
            return Err(format!("kvsinfersink has no property '{name}'"));
        }
        sink.set_property_from_str(name, value);
    }
    Ok(pipeline)
}

fn run(pipeline: &gst::Pipeline) -> Result<(), String> {
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| "the pipeline cannot start (see the error above)".to_string())?;

    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Element(element) => {
                if let Some(s) = element.structure().filter(|s| s.name() == "kvsinfer-event") {
                    println!("{s}");
                }
            }
            gst::MessageView::Warning(w) => eprintln!("warning: {}", w.error()),
            gst::MessageView::Error(err) => {
                return Err(format!("{} ({:?})", err.error(), err.debug()));
            }
            gst::MessageView::Eos(_) => break,
            _ => (),
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let initialized = gst::init()
        .map_err(|err| err.to_string())
        .and_then(|_| gstkvsinfer::plugin_register_static().map_err(|err| err.to_string()));
    if let Err(err) = initialized {
        eprintln!("cannot initialize GStreamer: {err}");
        return ExitCode::FAILURE;
    }

    let pipeline = match build(&options) {
        Ok(pipeline) => pipeline,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    let result = run(&pipeline);
    let stats = pipeline
        .by_name("sink")
        .map(|sink| sink.property::<gst::Structure>("stats"));
    let _ = pipeline.set_state(gst::State::Null);

    if let Some(stats) = stats {
        println!("stats: {stats}");
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
