// Copyright (C) 2026 gst-plugin-kvsinfer developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The one tokio runtime of the process, shared by every sink.

use std::sync::{Mutex, OnceLock};

use tokio::runtime::{Builder, Runtime};

/// Worker threads of the shared runtime: delivery is I/O-bound, a few threads serve every camera.
const WORKER_THREADS: usize = 2;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
static CREATING: Mutex<()> = Mutex::new(());

/// The shared runtime, created on first use.
pub fn runtime() -> Result<&'static Runtime, std::io::Error> {
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }

    let _creating = CREATING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let runtime = Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name("kvsinfer-worker")
        .enable_all()
        .build()?;
    Ok(RUNTIME.get_or_init(|| runtime))
}
