//! Runs one pipeline: source -> transformer chain -> router -> sinks.
//!
//! Three stages, each on its own thread or task, joined by bounded
//! channels:
//!
//! 1. the source (an async task) hands on transaction-aligned batches;
//! 2. the plugin stage ([`crate::stage`], threads, because plugin calls
//!    are synchronous CPU work) runs the transformer chain and the router,
//!    on `plugin_workers` workers, and sets aside events a plugin failed
//!    on as dead letters;
//! 3. the writer ([`crate::writer`], a thread, because `fsync` and
//!    checkpoint commits block) writes to every sink in commit order, and
//!    for each batch that ends a transaction flushes the sinks, saves the
//!    checkpoint, and only then acknowledges the position to the source.
//!
//! The runner names no connector: the source and the sinks are built from
//! their config sections through `weir_connect`'s component traits, and
//! every failure's [`ErrorKind`] decides, in [`weir_connect::retry`],
//! whether the pipeline restarts or stops.
//!
//! Shutdown runs the same path to its end: the source stops reading, hands
//! on what it has and closes its channel; the processor and writer drain;
//! the last checkpoint is saved; the source reports the final position.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use tracing::warn;
use weir_connect::{Backoff, Directive, SourceChannels};
use weir_core::{ErrorKind, StageError};
use weir_plugin::{EngineOptions, PluginEngine};

use crate::checkpoint::SqliteCheckpointStore;
use crate::config::PipelineConfig;
use crate::dead_letter::DeadLetterFile;
use crate::processor::{Processor, Stamping};
use crate::sinks::Inputs;
use crate::stage;
pub use crate::stats::Stats;
use crate::writer::{RoutedBatch, SinkSlot, Writer};

/// Largest batch the source hands on, in approximate bytes; the channels
/// hold `channel_bytes / MAX_BATCH_BYTES` batches, which bounds the bytes in
/// flight between stages.
pub(crate) const MAX_BATCH_BYTES: usize = 1 << 20;

/// Why a pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Source errors name their server themselves.
    #[error("{0}")]
    Source(StageError),
    #[error("cannot load plugin `{name}`: {source}")]
    Plugin {
        name: String,
        source: weir_plugin::LoadError,
    },
    #[error(transparent)]
    Admission(#[from] crate::admission::AdmissionError),
    #[error("router.template: {0}")]
    Router(String),
    #[error("plugin engine: {0}")]
    Engine(String),
    #[error("checkpoint store: {0}")]
    Checkpoint(StageError),
    /// Sink errors name their sink themselves (the `Sink` contract).
    #[error("{error}")]
    Sink { name: String, error: StageError },
    #[error("{0}")]
    DeadLetter(StageError),
    #[error("admin socket in the state directory: {0}")]
    Admin(std::io::Error),
    #[error("the {0} stage stopped unexpectedly")]
    Stage(&'static str),
}

impl PipelineError {
    /// What kind of failure stopped the pipeline: transient failures are
    /// retried from the last checkpoint, everything else needs an operator.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PipelineError::Source(e)
            | PipelineError::Checkpoint(e)
            | PipelineError::DeadLetter(e)
            | PipelineError::Sink { error: e, .. } => e.kind(),
            _ => ErrorKind::Operator,
        }
    }
}

/// Runs the pipeline until `shutdown` becomes true or it fails. Transient
/// failures of any stage (a lost connection, a restarting server, a sink's
/// broker blip) restart it from the last checkpoint after a growing delay;
/// everything else returns.
pub async fn run(
    config: &PipelineConfig,
    shutdown: watch::Receiver<bool>,
    stats: Arc<Stats>,
) -> Result<(), PipelineError> {
    let engine = PluginEngine::new(EngineOptions::default()).map_err(PipelineError::Engine)?;
    let mut backoff = Backoff::default();
    loop {
        backoff.attempt();
        let error = match run_once(config, &engine, shutdown.clone(), Arc::clone(&stats)).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        match Directive::for_kind(error.kind()) {
            Directive::Retry if !*shutdown.borrow() => {
                stats.restarts.fetch_add(1, Ordering::Relaxed);
                *crate::stats::lock(&stats.last_error) =
                    Some((crate::latency::now_us(), error.to_string()));
                if let PipelineError::Sink { name, .. } = &error {
                    stats.sink(name).retries.fetch_add(1, Ordering::Relaxed);
                }
                let delay = backoff.next_delay();
                warn!(error = %error, kind = %error.kind(), retry_in_s = delay.as_secs(),
                    "Pipeline interrupted; restarting from the last checkpoint.");
                let mut shutdown = shutdown.clone();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
            }
            _ => return Err(error),
        }
    }
}

async fn run_once(
    config: &PipelineConfig,
    engine: &PluginEngine,
    shutdown: watch::Receiver<bool>,
    stats: Arc<Stats>,
) -> Result<(), PipelineError> {
    let cx = config.build_context(MAX_BATCH_BYTES);
    let mut source = config
        .source
        .component()
        .build(&cx)
        .map_err(PipelineError::Source)?;
    let store = SqliteCheckpointStore::open(&config.state_dir)
        .map_err(|e| PipelineError::Checkpoint(e.into()))?
        .with_order(source.positions());
    let mut sinks = Vec::with_capacity(config.sinks.len());
    for s in &config.sinks {
        let mut cx = cx.clone();
        cx.conflicts = s
            .conflicts
            .as_ref()
            .map(|c| crate::resolver::setup(engine, c, &s.name, &config.trust, &config.state_dir));
        let sink = s
            .kind
            .component()
            .build(&s.name, &cx)
            .map_err(|error| PipelineError::Sink {
                name: s.name.clone(),
                error,
            })?;
        sinks.push(SinkSlot::new(sink, Inputs::new(s.inputs.as_deref())));
    }
    // Batches in flight per channel: the channels hold at most
    // `channel_bytes` between stages.
    let capacity = (config.pipeline.channel_bytes / MAX_BATCH_BYTES).max(2);
    // The source stops when the pipeline is asked to, and when the writer
    // ends first (it failed: nothing would take the source's batches).
    let (stop_tx, stop_rx) = watch::channel(*shutdown.borrow());
    let stop_tx = Arc::new(stop_tx);
    let forward = {
        let stop_tx = Arc::clone(&stop_tx);
        let mut shutdown = shutdown;
        tokio::spawn(async move {
            while shutdown.changed().await.is_ok() {
                if *shutdown.borrow() {
                    let _ = stop_tx.send(true);
                }
            }
        })
    };
    let (channels, ends) = SourceChannels::new(capacity, stop_rx, stats.source.clone());
    *crate::stats::lock(&stats.source_queue) = Arc::clone(&ends.queued_bytes);
    stats.sink_queue.store(0, Ordering::Relaxed);
    let (writer, resume) = Writer::start(
        sinks,
        Box::new(DeadLetterFile::new(&config.state_dir)),
        Box::new(store),
        ends.acks,
        Arc::clone(&stats),
    )?;
    let writer = writer.with_max_commit_interval(Duration::from_millis(
        config.pipeline.max_commit_interval_ms,
    ));

    let (processor, reloading) =
        Processor::start(engine, config.plugin_setup(), Stamping::Replace)?;
    let workers = stage::workers(&processor, config.pipeline.plugin_workers());
    // The batches the plugin stage holds while its workers run them count
    // against the channel to the writer.
    let routed_capacity = capacity.saturating_sub(stage::in_flight(workers)).max(2);
    let (routed_tx, routed_rx) = std::sync::mpsc::sync_channel::<RoutedBatch>(routed_capacity);

    let processor = {
        let input = stage::Input {
            batches: ends.batches,
            queued_bytes: ends.queued_bytes,
        };
        stage::start(
            input,
            routed_tx,
            processor,
            workers,
            Arc::clone(&stats),
            stop_tx.subscribe(),
        )
        .map_err(|_| PipelineError::Stage("processor"))?
    };
    let writer = std::thread::Builder::new()
        .name("weir-writer".into())
        .spawn(move || {
            let result = writer.run(routed_rx);
            let _ = stop_tx.send(true);
            result
        })
        .map_err(|_| PipelineError::Stage("writer"))?;

    let source_result = source.run(resume, channels).await;
    forward.abort();
    // The source dropped its sender: the processor and the writer drain and
    // stop. Wait for them off the async threads.
    reloading.signal();
    let (processor, writer) = tokio::task::spawn_blocking(move || {
        let joined = (processor.join(), writer.join());
        reloading.stop();
        joined
    })
    .await
    .map_err(|_| PipelineError::Stage("shutdown"))?;
    let writer_result = writer.map_err(|_| PipelineError::Stage("writer"))?;
    processor.map_err(|_| PipelineError::Stage("processor"))?;
    // A writer failure explains a source failure ("the pipeline stopped"),
    // not the other way round.
    writer_result?;
    source_result.map_err(PipelineError::Source)?;
    Ok(())
}
