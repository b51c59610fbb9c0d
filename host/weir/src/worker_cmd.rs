//! `weir worker --config FILE`: one instance of a worker group.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::info;
use weir_pipeline::{Stats, WorkerConfig};

/// Loads a worker file, printing every error with its field path.
pub fn load(path: &Path) -> Option<WorkerConfig> {
    crate::run_cmd::loaded(path, WorkerConfig::from_file(path))
}

/// The instance name: `--instance`, or the host name.
pub fn instance_name(given: Option<&str>) -> anyhow::Result<String> {
    let name = match given {
        Some(name) => name.to_owned(),
        None => std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|h| h.trim().to_owned())
            .unwrap_or_default(),
    };
    let valid = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !valid {
        anyhow::bail!(
            "instance name `{name}` is not usable: give each worker `--instance NAME` with \
             letters, digits, `.`, `_` and `-`"
        );
    }
    Ok(name)
}

/// Runs until SIGINT or SIGTERM, then commits the round in flight and
/// exits 0.
pub fn run(path: &Path, instance: Option<&str>) -> anyhow::Result<ExitCode> {
    let Some(config) = load(path) else {
        return Ok(ExitCode::from(1));
    };
    let instance = instance_name(instance)?;
    let stop = Arc::new(AtomicBool::new(false));
    // One runtime thread waits for signals; the worker runs on this one.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.spawn({
        let stop = Arc::clone(&stop);
        async move {
            crate::run_cmd::wait_for_signal().await;
            info!("Shutdown requested; committing the round in flight.");
            stop.store(true, Ordering::Relaxed);
        }
    });
    let stats = Stats::default();
    info!(worker = %config.name, instance = %instance, "Worker starting.");
    let result = weir_pipeline::worker::run_worker(&config, &instance, &stop, &stats);
    match result {
        Ok(()) => {
            info!(
                worker = %config.name,
                events = stats.events_out.load(Ordering::Relaxed),
                "Worker stopped cleanly."
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!(
                "error: worker `{}` instance `{instance}` stopped: {e}",
                config.name
            );
            Ok(ExitCode::from(1))
        }
    }
}
