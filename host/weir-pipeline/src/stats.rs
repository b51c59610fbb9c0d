//! Counters a running pipeline updates where the work happens (atomics, a
//! watch channel, small maps touched once per batch), and that the demo's
//! live view, the progress log and the admin API's metrics read from
//! other threads. Nothing here is written per event.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use weir_connect::SourceProgress;
use weir_core::ErrorKind;

use crate::latency::{Histogram, Latency};

/// See the module docs.
#[derive(Debug)]
pub struct Stats {
    /// Events received from the source.
    pub events_in: AtomicU64,
    /// Their approximate in-memory size ([`weir_core::ChangeEvent::approx_bytes`]).
    pub bytes_in: AtomicU64,
    /// Events routed to destinations (after transforms and routing; an
    /// event a router sends to two destinations counts twice).
    pub events_out: AtomicU64,
    /// Their approximate in-memory size, as for `bytes_in`.
    pub bytes_out: AtomicU64,
    /// Events routed, by destination.
    pub destinations: Mutex<BTreeMap<String, u64>>,
    /// Events set aside as dead letters.
    pub dead_letters: AtomicU64,
    /// Checkpoints saved.
    pub checkpoints: AtomicU64,
    /// When the last checkpoint was saved, µs since the epoch (0: none yet).
    pub last_checkpoint_us: AtomicI64,
    /// What the source reports about itself: phase, position, snapshot.
    pub source: watch::Sender<SourceProgress>,
    /// Bytes the source handed on that the plugin stage has not taken
    /// (the channel's own counter; replaced when the pipeline restarts).
    pub source_queue: Mutex<Arc<AtomicU64>>,
    /// Bytes the plugin stage handed on that the writer has not taken.
    pub sink_queue: AtomicU64,
    /// Source commit to durable in every sink, per change.
    pub latency: Latency,
    /// Paused by the operator: the pipeline takes no batch from the source
    /// (which stops reading once its channel is full; the position it
    /// confirmed stays, so the server keeps the changes).
    pub paused: AtomicBool,
    /// The plugins with their versions and probation state, as the plugin
    /// stage last reported them.
    pub plugins: Mutex<Vec<crate::reload::PluginState>>,
    /// Plugin versions rolled back since the pipeline started.
    pub rollbacks: AtomicU64,
    /// New plugin versions swapped in (hot reloads) since the pipeline
    /// started.
    pub reloads: AtomicU64,
    /// Each plugin's calls and failures since the plugin stage (re)started.
    pub plugin_calls: Mutex<Vec<crate::reload::PluginCalls>>,
    /// Per sink (the dead-letter file included), by name.
    pub sinks: Mutex<BTreeMap<String, Arc<SinkMetrics>>>,
    /// Restarts from the last checkpoint after a transient failure.
    pub restarts: AtomicU64,
    /// The failure that caused the last restart: when (µs since the
    /// epoch) and what.
    pub last_error: Mutex<Option<(i64, String)>>,
}

/// What one sink's writes and flushes cost, and how they failed.
#[derive(Debug, Default)]
pub struct SinkMetrics {
    /// Events handed to the sink.
    pub events: AtomicU64,
    /// One `write` call (a batch).
    pub write: Histogram,
    /// One `flush` (making the writes durable with the checkpoint).
    pub flush: Histogram,
    /// Failed writes and flushes, by [`ErrorKind`] (`event`: one event
    /// refused, set aside as a dead letter).
    pub errors: [AtomicU64; 3],
    /// Pipeline restarts this sink's transient failures caused.
    pub retries: AtomicU64,
    /// The position the sink reported at the last checkpoint.
    pub position: Mutex<Option<serde_json::Value>>,
}

/// The error kinds of [`SinkMetrics::errors`], in order.
pub const ERROR_KINDS: [ErrorKind; 3] =
    [ErrorKind::Event, ErrorKind::Transient, ErrorKind::Operator];

impl SinkMetrics {
    /// Counts one failure of `kind`.
    pub fn failed(&self, kind: ErrorKind) {
        if let Some(i) = ERROR_KINDS.iter().position(|k| *k == kind) {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            events_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            events_out: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            destinations: Mutex::default(),
            dead_letters: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            last_checkpoint_us: AtomicI64::new(0),
            source: watch::Sender::new(SourceProgress::default()),
            source_queue: Mutex::default(),
            sink_queue: AtomicU64::new(0),
            latency: Latency::default(),
            paused: AtomicBool::new(false),
            plugins: Mutex::default(),
            rollbacks: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            plugin_calls: Mutex::default(),
            sinks: Mutex::default(),
            restarts: AtomicU64::new(0),
            last_error: Mutex::default(),
        }
    }
}

impl Stats {
    /// The metrics of the sink named `name`, created on first use.
    pub fn sink(&self, name: &str) -> Arc<SinkMetrics> {
        let mut sinks = lock(&self.sinks);
        Arc::clone(sinks.entry(name.to_owned()).or_default())
    }

    /// Bytes waiting between the source and the plugin stage.
    pub fn source_queue_bytes(&self) -> u64 {
        lock(&self.source_queue).load(Ordering::Relaxed)
    }

    /// Seconds since the last checkpoint was saved; `None` before the first.
    pub fn checkpoint_age_seconds(&self, now_us: i64) -> Option<f64> {
        let at = self.last_checkpoint_us.load(Ordering::Relaxed);
        (at > 0).then(|| now_us.saturating_sub(at).max(0) as f64 / 1e6)
    }
}

/// Locks `m`, also after a panic elsewhere (the counters stay usable).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
