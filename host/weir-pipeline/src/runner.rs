//! Runs one pipeline: source -> transformer chain -> router -> sinks.
//!
//! Three stages, each on its own thread or task, joined by bounded
//! channels:
//!
//! 1. the source (an async task) hands on transaction-aligned batches;
//! 2. the processor (a thread, because plugin calls are synchronous CPU
//!    work) runs the transformer chain and the router, and sets aside
//!    events a plugin failed on as dead letters;
//! 3. the writer (a thread, because `fsync` and checkpoint commits block)
//!    writes to every sink, and for each batch that ends a transaction
//!    flushes the sinks, saves the checkpoint, and only then acknowledges the
//!    position to the source. Batches queued behind each other are written
//!    before one flush (group commit).
//!
//! Shutdown runs the same path to its end: the source stops reading, hands
//! on what it has and closes its channel; the processor and writer drain;
//! the last checkpoint is saved; the source reports the final position.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};
use weir_core::{ChangeBatch, ChangeEvent, Checkpoint, CheckpointStore, Sink, StageError};
use weir_plugin::{EngineOptions, EventFailure, PluginEngine, RouterPlugin, TransformerPlugin};
use weir_postgres::{ConnectParams, ErrorKind, PgError, PostgresSourceConfig, SourceChannels};

use crate::admission::admit;
use crate::checkpoint::SqliteCheckpointStore;
use crate::config::{PipelineConfig, SnapshotMode, SourceConfig};
use crate::dead_letter::DeadLetters;
use crate::reload::{Chain, ReloadRequest, Reloader, Role, Swap, serve_admin};
use crate::router::Template;
use crate::sinks::AnySink;

/// Largest batch the source hands on, in approximate bytes; the channels
/// hold `channel_bytes / MAX_BATCH_BYTES` batches, which bounds the bytes in
/// flight between stages.
const MAX_BATCH_BYTES: usize = 1 << 20;

/// Most events the processor merges from queued batches into one (it also
/// stops at `MAX_BATCH_BYTES`).
const MAX_MERGED_EVENTS: usize = 4096;

/// Why a pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Source(#[from] PgError),
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
    #[error("{source}")]
    Sink { name: String, source: StageError },
    #[error("dead-letter file: {0}")]
    DeadLetter(std::io::Error),
    #[error("admin socket in the state directory: {0}")]
    Admin(std::io::Error),
    #[error("the {0} stage stopped unexpectedly")]
    Stage(&'static str),
}

impl PipelineError {
    /// Whether restarting the pipeline after a delay may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, PipelineError::Source(e) if e.kind() == ErrorKind::Transient)
    }
}

/// Counters a running pipeline updates, readable from another thread (the
/// demo's live view, the admin endpoint).
#[derive(Debug, Default)]
pub struct Stats {
    /// Events received from the source.
    pub events_in: AtomicU64,
    /// Events written to the sinks (after transforms and routing).
    pub events_out: AtomicU64,
    /// Events set aside as dead letters.
    pub dead_letters: AtomicU64,
    /// Checkpoints saved.
    pub checkpoints: AtomicU64,
}

/// What one batch became after the plugins and the router.
struct Routed {
    /// Events by destination, in order within each destination.
    by_destination: BTreeMap<String, Vec<ChangeEvent>>,
    dead: Vec<EventFailure>,
    resume: Option<Json>,
}

/// Runs the pipeline until `shutdown` becomes true or it fails. Transient
/// source failures (a lost connection, a restarting server) restart it from
/// the last checkpoint after a delay; everything else returns.
pub async fn run(
    config: &PipelineConfig,
    shutdown: watch::Receiver<bool>,
    stats: Arc<Stats>,
) -> Result<(), PipelineError> {
    let engine = PluginEngine::new(EngineOptions::default()).map_err(PipelineError::Engine)?;
    let mut delay = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        match run_once(config, &engine, shutdown.clone(), Arc::clone(&stats)).await {
            Err(e) if e.is_transient() && !*shutdown.borrow() => {
                if started.elapsed() > Duration::from_secs(60) {
                    delay = Duration::from_secs(1);
                }
                warn!(error = %e, retry_in_s = delay.as_secs(), "Pipeline interrupted; restarting from the last checkpoint.");
                let mut shutdown = shutdown.clone();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            other => return other,
        }
    }
}

async fn run_once(
    config: &PipelineConfig,
    engine: &PluginEngine,
    shutdown: watch::Receiver<bool>,
    stats: Arc<Stats>,
) -> Result<(), PipelineError> {
    let mut store = SqliteCheckpointStore::open(&config.state_dir)
        .map_err(|e| PipelineError::Checkpoint(e.into()))?;
    let checkpoint = store
        .load()
        .map_err(PipelineError::Checkpoint)?
        .unwrap_or_default();
    let resume = checkpoint.source.clone();

    let mut sinks = Vec::with_capacity(config.sinks.len());
    for sink_config in &config.sinks {
        let mut sink = AnySink::from_config(sink_config).map_err(|e| PipelineError::Sink {
            name: sink_config.name().to_owned(),
            source: e,
        })?;
        sink.recover(checkpoint.sinks.get(sink_config.name()))
            .map_err(|source| PipelineError::Sink {
                name: sink_config.name().to_owned(),
                source,
            })?;
        sinks.push(sink);
    }
    let mut dead_letters =
        DeadLetters::open(&config.state_dir, checkpoint.sinks.get(DeadLetters::KEY))
            .map_err(PipelineError::DeadLetter)?;

    let mut chain = Chain::new(
        config.pipeline.canary_events,
        config.pipeline.canary_failure_ratio,
    );
    for p in &config.plugins {
        let admitted = admit(engine, p, &config.trust, &config.state_dir)?;
        let plugin = TransformerPlugin::load(engine, &admitted.spec).map_err(|source| {
            PipelineError::Plugin {
                name: p.name.clone(),
                source,
            }
        })?;
        chain.push(p.name.clone(), plugin, admitted.version);
    }
    let router = match (&config.router.plugin, &config.router.template) {
        (Some(p), _) => {
            let admitted = admit(engine, p, &config.trust, &config.state_dir)?;
            let plugin = RouterPlugin::load(engine, &admitted.spec).map_err(|source| {
                PipelineError::Plugin {
                    name: p.name.clone(),
                    source,
                }
            })?;
            chain.set_router(p.name.clone(), plugin, admitted.version);
            Router::Plugin
        }
        (None, template) => Router::Template(
            Template::parse(template.as_deref().unwrap_or(Template::DEFAULT))
                .map_err(|problems| PipelineError::Router(problems.join("; ")))?,
        ),
    };
    // Hot reload: a watcher thread prepares new versions; the admin socket
    // asks it to look now.
    let (swap_tx, swap_rx) = std::sync::mpsc::channel::<Swap>();
    let (request_tx, request_rx) = std::sync::mpsc::channel::<ReloadRequest>();
    let stop_reload = Arc::new(AtomicBool::new(false));
    // In the order of `chain.versions()`: the transformers, then the router.
    let watched = (config.plugins.iter().cloned().enumerate())
        .map(|(i, p)| (p, Role::Transformer(i)))
        .chain(config.router.plugin.clone().map(|p| (p, Role::Router)))
        .collect();
    let reloader = Reloader {
        engine: engine.clone(),
        plugins: watched,
        trust: config.trust.clone(),
        state_dir: config.state_dir.clone(),
        versions: chain.versions(),
        swaps: swap_tx,
        requests: request_rx,
        watch: config.pipeline.watch_plugins,
        stop: Arc::clone(&stop_reload),
    };
    let reloader = std::thread::Builder::new()
        .name("weir-reloader".into())
        .spawn(move || reloader.run())
        .map_err(|_| PipelineError::Stage("reloader"))?;
    std::fs::create_dir_all(&config.state_dir).map_err(PipelineError::Admin)?;
    let admin = serve_admin(&config.state_dir, request_tx, Arc::clone(&stop_reload))
        .map_err(PipelineError::Admin)?;
    let SourceConfig::Postgres(pg) = &config.source;
    let source_config = postgres_source_config(config, pg);
    let capacity = (config.pipeline.channel_bytes / MAX_BATCH_BYTES).max(2);
    let (batch_tx, batch_rx) = mpsc::channel::<ChangeBatch>(capacity);
    let (routed_tx, routed_rx) = std::sync::mpsc::sync_channel::<Routed>(capacity);
    let (ack_tx, ack_rx) = mpsc::unbounded_channel::<Json>();

    let processor = {
        let stats = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("weir-processor".into())
            .spawn(move || process(batch_rx, routed_tx, chain, swap_rx, router, &stats))
            .map_err(|_| PipelineError::Stage("processor"))?
    };
    let writer = {
        let stats = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("weir-writer".into())
            .spawn(move || {
                write(
                    routed_rx,
                    ack_tx,
                    sinks,
                    &mut dead_letters,
                    &mut store,
                    checkpoint,
                    &stats,
                )
            })
            .map_err(|_| PipelineError::Stage("writer"))?
    };

    let source_result = weir_postgres::source::run(
        &source_config,
        &resume,
        SourceChannels {
            out: batch_tx,
            acks: ack_rx,
            shutdown,
        },
    )
    .await;
    // The source dropped its sender: the processor and the writer drain and
    // stop. Wait for them off the async threads.
    stop_reload.store(true, Ordering::Relaxed);
    let (processor, writer) = tokio::task::spawn_blocking(move || {
        let joined = (processor.join(), writer.join());
        let _ = reloader.join();
        let _ = admin.join();
        joined
    })
    .await
    .map_err(|_| PipelineError::Stage("shutdown"))?;
    let writer_result = writer.map_err(|_| PipelineError::Stage("writer"))?;
    processor.map_err(|_| PipelineError::Stage("processor"))?;
    // A writer failure explains a source failure ("the pipeline stopped"),
    // not the other way round.
    writer_result?;
    source_result?;
    Ok(())
}

fn postgres_source_config(
    config: &PipelineConfig,
    pg: &crate::config::PostgresSourceConfig,
) -> PostgresSourceConfig {
    PostgresSourceConfig {
        connect: ConnectParams {
            host: pg.host.clone(),
            port: pg.port,
            user: pg.user.clone(),
            password: pg.password.clone(),
            database: pg.database.clone(),
            application_name: format!("weir {}", config.name),
        },
        publication: pg.publication.clone(),
        slot: pg.slot.clone(),
        tables: pg.tables.clone(),
        snapshot: pg.snapshot == SnapshotMode::Initial,
        snapshot_chunk_rows: usize::try_from(pg.snapshot_chunk_rows).unwrap_or(usize::MAX),
        snapshot_parallelism: pg.snapshot_parallelism,
        streaming: pg.streaming,
        max_batch_events: config.pipeline.max_batch_events,
        max_batch_bytes: MAX_BATCH_BYTES,
        status_interval: Duration::from_secs(10),
    }
}

enum Router {
    Template(Template),
    /// The router plugin, which lives in the [`Chain`] (it is hot-reloaded
    /// and stamped like the transformers).
    Plugin,
}

/// Records which plugin versions processed the events.
fn stamp(events: &mut [ChangeEvent], stamp: Option<String>) {
    if let Some(stamp) = stamp {
        for e in events {
            e.source.plugins = Some(stamp.clone());
        }
    }
}

/// The processor stage: plugins and router.
fn process(
    mut input: mpsc::Receiver<ChangeBatch>,
    output: std::sync::mpsc::SyncSender<Routed>,
    mut chain: Chain,
    swaps: std::sync::mpsc::Receiver<Swap>,
    router: Router,
    stats: &Stats,
) {
    // Whether the last batch ended at a transaction boundary: only there
    // may a new plugin version take over.
    let mut at_boundary = true;
    while let Some(mut batch) = input.blocking_recv() {
        // Take in whatever else is already queued: one plugin call and one
        // writer round for many small transactions. The merged batch ends
        // where its last part ends, so its position is that part's (even
        // none, mid-transaction): a checkpoint never claims less than the
        // files hold.
        while batch.events.len() < MAX_MERGED_EVENTS && batch.bytes < MAX_BATCH_BYTES {
            match input.try_recv() {
                Ok(next) => {
                    batch.events.extend(next.events);
                    batch.resume = next.resume;
                    batch.bytes += next.bytes;
                }
                Err(_) => break,
            }
        }
        stats
            .events_in
            .fetch_add(batch.events.len() as u64, Ordering::Relaxed);
        if at_boundary {
            // Transformers and the router plugin alike.
            while let Ok(swap) = swaps.try_recv() {
                chain.swap(swap);
            }
        }
        at_boundary = batch.resume.is_some();
        let keep = chain.on_probation().then(|| batch.events.clone());
        let (mut events, mut dead, rolled_back) = chain.run(batch.events);
        if rolled_back && let Some(input) = keep {
            // The batch is processed again, whole, by the restored version.
            (events, dead, _) = chain.run(input);
        }
        stamp(&mut events, chain.stamp());
        let mut by_destination: BTreeMap<String, Vec<ChangeEvent>> = BTreeMap::new();
        match &router {
            Router::Template(t) => {
                for event in events {
                    let destination = t.render(&event);
                    by_destination.entry(destination).or_default().push(event);
                }
            }
            Router::Plugin if !events.is_empty() => {
                let routes = chain.route(&mut events, stamp);
                for (event, route) in events.into_iter().zip(routes) {
                    match route {
                        Ok(destinations) => {
                            for d in destinations {
                                by_destination.entry(d).or_default().push(event.clone());
                            }
                        }
                        Err(failure) => dead.push(failure),
                    }
                }
            }
            Router::Plugin => {}
        }
        let routed = Routed {
            by_destination,
            dead,
            resume: batch.resume,
        };
        if output.send(routed).is_err() {
            // The writer failed; it reports why.
            return;
        }
    }
}

/// The writer stage: sinks, dead letters, checkpoint, acks.
fn write(
    input: std::sync::mpsc::Receiver<Routed>,
    acks: mpsc::UnboundedSender<Json>,
    mut sinks: Vec<AnySink>,
    dead_letters: &mut DeadLetters,
    store: &mut SqliteCheckpointStore,
    mut checkpoint: Checkpoint,
    stats: &Stats,
) -> Result<(), PipelineError> {
    let sink_err = |sink: &AnySink| {
        let name = sink.name().to_owned();
        move |source| PipelineError::Sink { name, source }
    };
    while let Ok(first) = input.recv() {
        // Write everything already queued, then make it durable once.
        let mut pending_resume = None;
        let mut next = Some(first);
        while let Some(routed) = next.take() {
            for sink in &mut sinks {
                for (destination, events) in &routed.by_destination {
                    sink.write(destination, events).map_err(sink_err(sink))?;
                }
            }
            let written: usize = routed.by_destination.values().map(Vec::len).sum();
            stats
                .events_out
                .fetch_add(written as u64, Ordering::Relaxed);
            for failure in &routed.dead {
                error!(
                    plugin = %failure.plugin,
                    kind = %failure.kind,
                    table = %failure.event.qualified_table(),
                    position = %failure.event.source.position,
                    reason = %failure.message,
                    "Event set aside as a dead letter."
                );
                dead_letters
                    .write(failure)
                    .map_err(PipelineError::DeadLetter)?;
            }
            stats
                .dead_letters
                .fetch_add(routed.dead.len() as u64, Ordering::Relaxed);
            if routed.resume.is_some() {
                pending_resume = routed.resume;
            }
            if pending_resume.is_some() {
                next = input.try_recv().ok();
                // Stop grouping at a batch that ends mid-transaction: its
                // successor may be large; flush what is whole first.
                if next.as_ref().is_some_and(|n| n.resume.is_none()) {
                    flush(
                        &mut sinks,
                        dead_letters,
                        store,
                        &mut checkpoint,
                        pending_resume.take().expect("checked"),
                        &acks,
                        stats,
                    )?;
                }
            }
        }
        if let Some(resume) = pending_resume {
            flush(
                &mut sinks,
                dead_letters,
                store,
                &mut checkpoint,
                resume,
                &acks,
                stats,
            )?;
        }
    }
    for sink in &mut sinks {
        // Output after the last checkpoint (part of a transaction) is cut
        // off on the next start; flushing it here is harmless.
        sink.flush().map_err(sink_err(sink))?;
    }
    info!(
        events = stats.events_out.load(Ordering::Relaxed),
        "Writer stopped after the last checkpoint."
    );
    Ok(())
}

fn flush(
    sinks: &mut [AnySink],
    dead_letters: &mut DeadLetters,
    store: &mut SqliteCheckpointStore,
    checkpoint: &mut Checkpoint,
    resume: Json,
    acks: &mpsc::UnboundedSender<Json>,
    stats: &Stats,
) -> Result<(), PipelineError> {
    for sink in sinks.iter_mut() {
        let position = sink.flush().map_err(|source| PipelineError::Sink {
            name: sink.name().to_owned(),
            source,
        })?;
        checkpoint.sinks.insert(sink.name().to_owned(), position);
    }
    checkpoint.sinks.insert(
        DeadLetters::KEY.to_owned(),
        dead_letters.flush().map_err(PipelineError::DeadLetter)?,
    );
    checkpoint.source = resume.clone();
    store.save(checkpoint).map_err(PipelineError::Checkpoint)?;
    stats.checkpoints.fetch_add(1, Ordering::Relaxed);
    // The source may be gone during shutdown; the checkpoint is what counts.
    let _ = acks.send(resume);
    Ok(())
}
