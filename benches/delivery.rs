// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! What delivery costs the streaming thread when the network is gone, and what the spool's
//! group commit buys.
//!
//! Run with `cargo bench --bench delivery`. `KVSINFER_BENCH_SECONDS` (default 60; the issue's
//! figure is 600) sets how long 30 events/s are pushed at a blackholed Kinesis endpoint: a
//! loopback listener that accepts connections and never answers.

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstkvsinfer::delivery::spool::Spool;
use gstkvsinfer::detection::Detection;
use gstkvsinfer::envelope::Envelope;

const EVENTS_PER_SECOND: u64 = 30;
const MAX_PENDING_BYTES: u64 = 64 * 1024 * 1024;

/// Accepts connections and holds them open, never answering.
fn blackhole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let endpoint = format!("http://{}", listener.local_addr().expect("an address"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut stream in listener.incoming().flatten() {
            // Read nothing back, answer nothing; keep the socket so the client waits.
            let _ = stream.set_nonblocking(true);
            let _ = stream.read(&mut [0u8; 1]);
            held.push(stream);
        }
    });
    endpoint
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn frame(ts_ms: u64) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_mut_slice(vec![128u8; 320 * 240 * 3]);
    {
        let buffer = buffer.get_mut().expect("a new buffer is writable");
        let unix = gst::Caps::new_empty_simple("timestamp/x-unix");
        gst::ReferenceTimestampMeta::add(buffer, &unix, gst::ClockTime::from_mseconds(ts_ms), None);
        let mut roi = gst_video::VideoRegionOfInterestMeta::add(buffer, "knife", (40, 40, 80, 60));
        roi.add_param(
            gst::Structure::builder("detection")
                .field("confidence", 0.87f64)
                .build(),
        );
    }
    buffer
}

/// CPU time this thread has used: the part of render()'s latency that is its own work, not
/// waiting for a core.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which lives on this stack.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// render() latency at 30 events/s with a snapshot each, the endpoint blackholed.
fn blackholed(seconds: u64) {
    let endpoint = blackhole();
    let sink = gst::ElementFactory::make("kvsinfersink")
        .property("camera-id", "bench")
        .property("kinesis-stream", "bench")
        .property("endpoint-uri", &endpoint)
        .property("region", "us-east-1")
        .property("access-key", "bench")
        .property("secret-access-key", "bench")
        .property("dedup-window", 1u32)
        .property("snapshot-interval", 0u32)
        .property("max-pending-bytes", MAX_PENDING_BYTES)
        .build()
        .expect("kvsinfersink");
    let mut h = gst_check::Harness::with_element(&sink, Some("sink"), None);
    h.set_src_caps_str("video/x-raw,format=RGB,width=320,height=240,framerate=30/1");
    h.play();

    let interval = Duration::from_millis(1000 / EVENTS_PER_SECOND);
    let count = seconds * EVENTS_PER_SECOND;
    let mut took = Vec::with_capacity(count as usize);
    let mut cpu = Vec::with_capacity(count as usize);
    let started = Instant::now();
    for i in 0..count {
        let due = started + interval * i as u32;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let buffer = frame(1_700_000_000_000 + i * 33);
        let pushed = Instant::now();
        let cpu_before = thread_cpu_time();
        let _ = h.push(buffer);
        took.push(pushed.elapsed());
        cpu.push(thread_cpu_time().saturating_sub(cpu_before));
    }
    took.sort();
    cpu.sort();

    let stats = sink.property::<gst::Structure>("stats");
    println!("| render() with the endpoint blackholed, {count} events over {seconds} s | |");
    println!("|---|---|");
    for (name, p) in [("p50", 0.50), ("p99", 0.99), ("p99.9", 0.999)] {
        println!(
            "| {name} | {:?} (CPU time {:?}) |",
            percentile(&took, p),
            percentile(&cpu, p)
        );
    }
    println!(
        "| max | {:?} (CPU time {:?}) |",
        took[took.len() - 1],
        cpu[cpu.len() - 1]
    );
    println!(
        "| peak RSS | {:.1} MiB (max-pending-bytes {} MiB) |",
        peak_rss_mib(),
        MAX_PENDING_BYTES / 1024 / 1024
    );
    println!(
        "| events dropped, snapshots encoded, snapshots dropped | {}, {}, {} |",
        stats.get::<u64>("events-dropped").unwrap_or(0),
        stats.get::<u64>("snapshots-encoded").unwrap_or(0),
        stats.get::<u64>("snapshots-dropped").unwrap_or(0)
    );
    drop(h);
}

fn envelope(i: u64) -> Envelope {
    let detection = Detection {
        label: "knife".into(),
        event_type: "weapon".into(),
        conf: 0.87,
        bbox: [1, 2, 3, 4],
        extras: Default::default(),
    };
    Envelope::new("bench", "bench", 1_700_000_000_000 + i, 1, detection)
}

/// Events/s the spool accepts with its grouped syncs, against one disk sync per event.
fn spool(events: u64) {
    let dir = tempfile::tempdir_in(".").expect("a directory on the working disk");
    let (spool, _) = Spool::open(&dir.path().join("grouped"), u64::MAX, 1).expect("a spool");
    let spool = Arc::new(spool);
    let syncing = {
        let spool = spool.clone();
        std::thread::spawn(move || {
            // What the delivery runtime does: sync whatever was written, every 50 ms.
            while Arc::strong_count(&spool) > 1 {
                let _ = spool.sync();
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let started = Instant::now();
    for i in 0..events {
        spool.append(&[envelope(i)], 1).expect("append");
    }
    let grouped = events as f64 / started.elapsed().as_secs_f64();
    drop(spool);
    let _ = syncing.join();

    let (each, _) = Spool::open(&dir.path().join("each"), u64::MAX, 1).expect("a spool");
    let per_event = events.min(2000);
    let started = Instant::now();
    for i in 0..per_event {
        each.append(&[envelope(i)], 1).expect("append");
        each.sync().expect("sync");
    }
    let synced_each = per_event as f64 / started.elapsed().as_secs_f64();

    println!("\n| spool | events/s |");
    println!("|---|---|");
    println!("| grouped syncs (every 50 ms, off the streaming thread) | {grouped:.0} |");
    println!("| one fdatasync per event | {synced_each:.0} |");
    println!("| ratio | {:.1}x |", grouped / synced_each);
}

fn main() {
    gst::init().expect("GStreamer");
    gstkvsinfer::plugin_register_static().expect("the plugin");
    let seconds = std::env::var("KVSINFER_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);

    blackholed(seconds);
    spool(20_000);
}
