//! The PostgreSQL source: checks the server, prepares the publication and
//! slot, runs the initial snapshot, then streams changes, handing on
//! transaction-aligned batches and acknowledging positions only when the
//! pipeline says they are durable.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use tokio::sync::mpsc;
use tokio_postgres::NoTls;
use tracing::{debug, info, warn};
use weir_connect::{Phase, SnapshotProgress, Source, SourceChannels, TableSnapshot};
use weir_core::{ChangeBatch, PositionOrder, StageError};

use crate::assembler::{Assembler, RelationInfo};
use crate::catalog::{self, TypeCache};
use crate::error::PgError;
use crate::lsn::Lsn;
use crate::pgoutput::{Message, PgoutputDecoder};
use crate::replication::{ConnectParams, ReplicationConnection, ReplicationMessage};
use crate::snapshot::{self, Progress, SnapshotPlan, SnapshotState};

/// How long the source waits for more transactions before handing on a
/// small batch while the pipeline is still busy with earlier ones.
const LINGER: Duration = Duration::from_millis(2);

/// Least time between two progress reports to the server (keepalive
/// replies the server asks for are sent at once).
const FEEDBACK_INTERVAL: Duration = Duration::from_millis(500);

/// Run-time settings of a PostgreSQL source (built from the config section
/// by [`crate::PostgresSourceConfig::settings`]).
#[derive(Debug, Clone)]
pub struct SourceSettings {
    pub connect: ConnectParams,
    /// Publication to read; created for `tables` when missing.
    pub publication: String,
    /// Logical replication slot; created (with an exported snapshot) when
    /// missing.
    pub slot: String,
    /// `schema.table` names to capture; empty captures every table.
    pub tables: Vec<String>,
    /// Copy existing rows before streaming.
    pub snapshot: bool,
    /// Rows per snapshot query.
    pub snapshot_chunk_rows: usize,
    /// Connections copying tables at once.
    pub snapshot_parallelism: usize,
    /// Ask for streamed in-progress transactions (pgoutput v2).
    pub streaming: bool,
    /// Replication origins (globs) whose transactions are not captured:
    /// changes applied by weir's PostgreSQL sinks, in active-active
    /// replication.
    pub skip_origins: Vec<String>,
    /// A batch is handed on once it holds this many events or
    /// `max_batch_bytes` (approximate in-memory bytes), whichever comes
    /// first, even in the middle of a transaction.
    pub max_batch_events: usize,
    pub max_batch_bytes: usize,
    /// How often to report the durable position even when nothing changes.
    pub status_interval: Duration,
}

/// The source's part of a checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResumeState {
    /// End of the last transaction delivered (or the consistent point while
    /// the snapshot runs).
    pub lsn: u64,
    /// Snapshot progress; `None` when no snapshot was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotState>,
}

impl ResumeState {
    fn to_json(&self) -> Json {
        serde_json::to_value(self).expect("resume state serializes")
    }
}

/// The PostgreSQL source as the pipeline runs it.
#[derive(Debug)]
pub struct PostgresSource {
    settings: SourceSettings,
}

impl PostgresSource {
    pub fn new(settings: SourceSettings) -> Self {
        PostgresSource { settings }
    }
}

impl Source for PostgresSource {
    fn positions(&self) -> Arc<dyn PositionOrder> {
        Arc::new(LsnOrder)
    }

    fn run<'a>(
        &'a mut self,
        resume: Json,
        channels: SourceChannels,
    ) -> BoxFuture<'a, Result<(), StageError>> {
        Box::pin(async move {
            run(&self.settings, &resume, channels)
                .await
                .map_err(StageError::from)
        })
    }
}

/// Orders [`ResumeState`]s by their LSN.
#[derive(Debug, Clone, Copy)]
pub struct LsnOrder;

impl PositionOrder for LsnOrder {
    fn compare(&self, a: &Json, b: &Json) -> Option<Ordering> {
        let lsn = |p: &Json| p.get("lsn").and_then(Json::as_u64);
        Some(lsn(a)?.cmp(&lsn(b)?))
    }

    fn describe(&self, position: &Json) -> String {
        match position.get("lsn").and_then(Json::as_u64) {
            Some(lsn) => format!("LSN {}", Lsn(lsn)),
            None => position.to_string(),
        }
    }
}

/// Runs the source until shutdown or an error. `resume` is the source state
/// of the last checkpoint (`Null` on a first start).
pub async fn run(
    config: &SourceSettings,
    resume: &Json,
    channels: SourceChannels,
) -> Result<(), PgError> {
    let resume: Option<ResumeState> = if resume.is_null() {
        None
    } else {
        Some(serde_json::from_value(resume.clone()).map_err(|e| {
            PgError::Setup(format!(
                "the checkpoint's source state is not a PostgreSQL position ({e}); was the \
                 state directory used by another pipeline?"
            ))
        })?)
    };
    let (client, connection) =
        config
            .connect
            .sql_config()
            .connect(NoTls)
            .await
            .map_err(|e| match e.as_db_error() {
                Some(_) => PgError::sql(format!("connecting to {}", config.connect.address()))(e),
                None => PgError::Connect {
                    address: config.connect.address(),
                    source: std::io::Error::other(e.to_string()),
                },
            })?;
    let catalog_conn = tokio::spawn(async move {
        if let Err(e) = connection.await {
            warn!(error = %e, "Catalog connection closed with an error.");
        }
    });
    catalog::check_server(&client, &config.connect.user).await?;
    let slot = catalog::check_slot(&client, &config.slot, &config.connect.database).await?;
    let published =
        catalog::ensure_publication(&client, &config.publication, &config.tables).await?;
    let mut types = TypeCache::default();
    let tables = catalog::describe_tables(&client, &published, &mut types).await?;
    info!(
        publication = %config.publication,
        tables = tables.len(),
        "Captured tables checked."
    );

    let mut repl = ReplicationConnection::connect(&config.connect).await?;
    let (mut state, snapshot_name) = match (resume, slot) {
        (Some(state), Some(_)) => (state, None),
        (Some(_), None) => {
            return Err(PgError::Setup(format!(
                "the checkpoint says the pipeline streamed from slot `{}`, but the slot is gone: \
                 changes made since were discarded by the server. Remove the state directory to \
                 start over with a new snapshot",
                config.slot
            )));
        }
        (None, existing) => {
            let (lsn, name) = match existing {
                Some(info) => {
                    warn!(
                        slot = %config.slot,
                        "The slot exists but the pipeline has no checkpoint; streaming from the \
                         slot's position, and any snapshot reads current table contents."
                    );
                    (info.confirmed_flush.unwrap_or_default(), None)
                }
                None => {
                    let created = repl.create_slot(&config.slot, config.snapshot).await?;
                    info!(slot = %config.slot, lsn = %created.consistent_point, "Replication slot created.");
                    (created.consistent_point, created.snapshot_name)
                }
            };
            let snapshot = config.snapshot.then(SnapshotState::default);
            (
                ResumeState {
                    lsn: lsn.0,
                    snapshot,
                },
                name,
            )
        }
    };

    let mut channels = channels;
    if let Some(snap) = state.snapshot.clone().filter(|s| !s.done) {
        let plan = SnapshotPlan {
            connect: config.connect.clone(),
            snapshot_name,
            consistent_point: Lsn(state.lsn),
            chunk_rows: config.snapshot_chunk_rows,
            parallelism: config.snapshot_parallelism,
        };
        let estimates = catalog::estimated_rows(&client, &tables).await;
        let finished =
            run_snapshot(plan, tables, snap, estimates, &mut state, &mut channels).await?;
        if !finished {
            return finish(repl, &mut channels, None).await;
        }
    }

    repl.start_replication(
        &config.slot,
        Lsn(state.lsn),
        &config.publication,
        config.streaming,
    )
    .await?;
    info!(slot = %config.slot, from = %Lsn(state.lsn), "Streaming changes.");
    channels.report(|p| {
        p.phase = Phase::Streaming;
        p.acknowledged = Some(Lsn(state.lsn).to_string());
    });
    let result = stream(
        config,
        &client,
        &mut types,
        &mut repl,
        &mut state,
        &mut channels,
    )
    .await;
    drop(client);
    catalog_conn.abort();
    let acked = result?;
    finish(repl, &mut channels, Some(acked)).await
}

/// Copies the tables; returns `false` if shutdown interrupted it.
async fn run_snapshot(
    plan: SnapshotPlan,
    tables: Vec<catalog::TableInfo>,
    mut snap: SnapshotState,
    estimates: BTreeMap<String, u64>,
    state: &mut ResumeState,
    channels: &mut SourceChannels,
) -> Result<bool, PgError> {
    for t in &tables {
        snap.tables.entry(t.qualified()).or_default();
    }
    let mut progress = Progress::new(tables.len());
    progress.log(&snap, "Snapshot started.");
    report_snapshot(channels, &snap, &estimates);
    let (chunk_tx, mut chunk_rx) = mpsc::channel(plan.parallelism.max(1) * 2);
    let start_state = snap.clone();
    let copy = snapshot::copy_tables(plan, tables, &start_state, chunk_tx);
    tokio::pin!(copy);
    let mut copy_result = None;
    loop {
        // A shutdown already asked for wins over a chunk that is ready (and,
        // in `send_or_stop`, over a channel with room).
        tokio::select! {
            biased;
            _ = channels.shutdown.changed() => {
                info!("Shutdown requested during the snapshot; progress so far is kept.");
                return Ok(false);
            }
            result = &mut copy, if copy_result.is_none() => copy_result = Some(result),
            chunk = chunk_rx.recv() => {
                let Some(chunk) = chunk else { break };
                progress.chunk(chunk.events.len(), &snap);
                snap.tables.insert(chunk.table, chunk.progress);
                report_snapshot(channels, &snap, &estimates);
                state.snapshot = Some(snap.clone());
                let bytes = chunk.events.iter().map(weir_core::ChangeEvent::approx_bytes).sum();
                let batch = ChangeBatch { events: chunk.events, resume: Some(state.to_json()), bytes };
                match channels.send_or_stop(batch).await {
                    Ok(true) => {}
                    Ok(false) => {
                        info!("Shutdown requested during the snapshot; progress so far is kept.");
                        return Ok(false);
                    }
                    Err(_) => return Ok(false),
                }
            }
        }
    }
    match copy_result {
        Some(result) => result?,
        None => copy.await?,
    }
    snap.done = true;
    state.snapshot = Some(snap.clone());
    progress.log(&snap, "Snapshot complete.");
    let batch = ChangeBatch {
        events: Vec::new(),
        resume: Some(state.to_json()),
        bytes: 0,
    };
    Ok(channels.out.send(batch).await.is_ok())
}

/// Streams until shutdown; returns the last position acknowledged.
async fn stream(
    config: &SourceSettings,
    client: &tokio_postgres::Client,
    types: &mut TypeCache,
    repl: &mut ReplicationConnection,
    state: &mut ResumeState,
    channels: &mut SourceChannels,
) -> Result<Lsn, PgError> {
    let mut decoder = PgoutputDecoder::new();
    let mut assembler = Assembler::new(config.connect.database.clone(), Lsn(state.lsn))
        .skip_origins(&config.skip_origins);
    // Highest position handed on.
    let mut emitted = Lsn(state.lsn);
    let mut pos = Positions {
        acked: Lsn(state.lsn),
        reported: Lsn(0),
        server_end: Lsn(state.lsn),
    };
    // Highest position published as progress.
    let mut published = pos.acked;
    // Whether the source already waited (or chose not to) for more data
    // before handing on what it has.
    let mut lingered = false;
    let mut last_feedback = Instant::now();
    let mut ticker = tokio::time::interval(config.status_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Drain what has already arrived without waiting; when nothing is
        // ready, hand on the whole transactions gathered so far.
        let msg = match repl.next_message().now_or_never() {
            Some(msg) => Some(msg?),
            None if assembler.has_committed() && !lingered => {
                // Nothing more has arrived. If the pipeline is still busy
                // with earlier batches, wait a moment for more transactions
                // rather than hand on a tiny batch: batches, plugin calls
                // and fsyncs stay large when the source outruns the sinks.
                let busy = channels.out.capacity() < channels.out.max_capacity();
                if busy && assembler.ready_len() < config.max_batch_events / 2 {
                    lingered = true;
                    tokio::select! {
                        msg = repl.next_message() => Some(msg?),
                        _ = tokio::time::sleep(LINGER) => None,
                    }
                } else {
                    lingered = true;
                    continue;
                }
            }
            None => {
                lingered = false;
                if let Some((events, bytes, lsn)) = assembler.take_committed() {
                    let taken = (events, bytes);
                    send_batch(repl, channels, taken, Some(lsn), &mut pos, state).await?;
                    emitted = lsn;
                    continue;
                }
                tokio::select! {
                    msg = repl.next_message() => Some(msg?),
                    ack = channels.acks.recv() => {
                        if let Some(ack) = ack { note_ack(&ack, &mut pos.acked); }
                        None
                    }
                    _ = ticker.tick() => {
                        repl.send_status(pos.acked, pos.acked, false).await?;
                        pos.reported = pos.acked;
                        last_feedback = Instant::now();
                        None
                    }
                    _ = channels.shutdown.changed() => return Ok(pos.acked),
                }
            }
        };
        while let Ok(ack) = channels.acks.try_recv() {
            note_ack(&ack, &mut pos.acked);
        }
        if pos.acked > published {
            published = pos.acked;
            channels.report(|p| p.acknowledged = Some(pos.acked.to_string()));
        }
        // Report progress at most every FEEDBACK_INTERVAL: every status
        // update makes the walsender record the slot's new position, and
        // one per small transaction slows it down severalfold.
        if pos.acked > pos.reported && last_feedback.elapsed() >= FEEDBACK_INTERVAL {
            repl.send_status(pos.acked, pos.acked, false).await?;
            pos.reported = pos.acked;
            last_feedback = Instant::now();
            report_behind(channels, pos.server_end, pos.acked);
        }
        let Some(msg) = msg else { continue };
        lingered = false;
        match msg {
            ReplicationMessage::XLogData {
                wal_start,
                wal_end,
                data,
            } => {
                pos.server_end = pos.server_end.max(wal_end);
                let decoded = decoder.decode(&data).map_err(|source| PgError::Decode {
                    lsn: wal_start,
                    source,
                })?;
                if let Message::Relation(rel) = &decoded {
                    let info = describe_relation(client, types, rel).await?;
                    debug!(table = %format!("{}.{}", info.schema, info.table), "Relation described.");
                    assembler.add_relation(rel.oid, info);
                }
                assembler
                    .apply(decoded, wal_start)
                    .map_err(|e| PgError::Protocol {
                        address: config.connect.address(),
                        reason: format!("at {wal_start}: {e}"),
                    })?;
                if assembler.ready_len() >= config.max_batch_events
                    || assembler.ready_bytes() >= config.max_batch_bytes
                {
                    let (events, bytes, lsn) = match assembler.take_committed() {
                        Some((events, bytes, lsn)) => (events, bytes, Some(lsn)),
                        // One transaction fills the batch: hand it on in
                        // chunks; only its last chunk carries a position.
                        None => assembler.take_all(),
                    };
                    let taken = (events, bytes);
                    send_batch(repl, channels, taken, lsn, &mut pos, state).await?;
                    if let Some(lsn) = lsn {
                        emitted = lsn;
                    }
                }
            }
            ReplicationMessage::Keepalive {
                wal_end,
                reply_requested,
            } => {
                // Idle: everything handed on is durable and no transaction
                // is open, so nothing before `wal_end` is still owed to the
                // pipeline. Confirming it lets the server recycle WAL that
                // carried nothing for this publication.
                pos.server_end = pos.server_end.max(wal_end);
                let idle = !assembler.in_transaction()
                    && assembler.ready_len() == 0
                    && pos.acked >= emitted;
                if idle && wal_end > pos.acked {
                    pos.acked = wal_end;
                    emitted = wal_end;
                    state.lsn = state.lsn.max(wal_end.0);
                }
                if reply_requested
                    || (pos.acked > pos.reported && last_feedback.elapsed() >= FEEDBACK_INTERVAL)
                {
                    repl.send_status(pos.acked, pos.acked, false).await?;
                    pos.reported = pos.acked;
                    last_feedback = Instant::now();
                }
                report_behind(channels, pos.server_end, pos.acked);
            }
        }
    }
}

/// Where the stream stands with the server.
struct Positions {
    /// Highest position the pipeline acknowledged durable.
    acked: Lsn,
    /// Highest position reported to the server.
    reported: Lsn,
    /// The end of the server's WAL, as its messages tell it.
    server_end: Lsn,
}

async fn send_batch(
    repl: &mut ReplicationConnection,
    channels: &mut SourceChannels,
    (events, bytes): (Vec<weir_core::ChangeEvent>, usize),
    lsn: Option<Lsn>,
    pos: &mut Positions,
    state: &mut ResumeState,
) -> Result<(), PgError> {
    if let Some(lsn) = lsn {
        state.lsn = state.lsn.max(lsn.0);
    }
    let batch = ChangeBatch {
        events,
        resume: lsn.map(|_| state.to_json()),
        bytes,
    };
    // The pipeline is not taking (busy or paused): say that the server has
    // changes waiting, since no keepalive will be read until it takes.
    if channels.out.capacity() == 0 {
        report_behind(channels, pos.server_end, pos.acked);
    }
    // While the pipeline is full, keep the server informed so that it does
    // not time the connection out.
    let permit = loop {
        tokio::select! {
            permit = channels.out.reserve() => break permit,
            _ = tokio::time::sleep(Duration::from_secs(10)) => {
                while let Ok(ack) = channels.acks.try_recv() {
                    note_ack(&ack, &mut pos.acked);
                }
                repl.send_status(pos.acked, pos.acked, false).await?;
                pos.reported = pos.acked;
            }
        }
    };
    match permit {
        Ok(permit) => {
            permit.send(batch);
            Ok(())
        }
        Err(_) => Err(PgError::Setup("the pipeline stopped".into())),
    }
}

/// Publishes how far the snapshot got.
fn report_snapshot(
    channels: &SourceChannels,
    snap: &SnapshotState,
    estimates: &BTreeMap<String, u64>,
) {
    let tables = snap
        .tables
        .iter()
        .map(|(table, t)| TableSnapshot {
            table: table.clone(),
            rows: t.rows,
            estimated_rows: estimates.get(table).copied(),
            done: t.done,
        })
        .collect();
    channels.report(|p| {
        p.phase = Phase::Snapshot;
        p.snapshot = Some(SnapshotProgress::of(tables));
    });
}

/// Reports how far the server's WAL is ahead of the confirmed position.
fn report_behind(channels: &SourceChannels, server_end: Lsn, acked: Lsn) {
    let behind = Some(server_end.0.saturating_sub(acked.0));
    if channels.progress.borrow().behind_bytes != behind {
        channels.report(|p| p.behind_bytes = behind);
    }
}

fn note_ack(ack: &Json, acked: &mut Lsn) {
    if let Some(lsn) = ack.get("lsn").and_then(Json::as_u64) {
        *acked = (*acked).max(Lsn(lsn));
    }
}

/// Hands on nothing more, waits for the pipeline to acknowledge what it
/// has, reports the final position and closes the connection.
/// `streaming_from` is the position acknowledged so far, if streaming.
async fn finish(
    mut repl: ReplicationConnection,
    channels: &mut SourceChannels,
    streaming_from: Option<Lsn>,
) -> Result<(), PgError> {
    channels.out.close();
    let mut acked = streaming_from.unwrap_or_default();
    while let Some(ack) = channels.acks.recv().await {
        note_ack(&ack, &mut acked);
    }
    if streaming_from.is_some() {
        repl.send_status(acked, acked, false).await?;
    }
    repl.close().await;
    channels.report(|p| {
        p.phase = Phase::Stopped;
        if streaming_from.is_some() {
            p.acknowledged = Some(acked.to_string());
        }
    });
    info!(lsn = %acked, "Source stopped.");
    Ok(())
}

async fn describe_relation(
    client: &tokio_postgres::Client,
    types: &mut TypeCache,
    rel: &crate::pgoutput::Relation,
) -> Result<RelationInfo, PgError> {
    let mut decoders = Vec::with_capacity(rel.columns.len());
    for c in &rel.columns {
        decoders.push(types.resolve(client, c.type_oid).await?);
    }
    let rows = client
        .query(
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = $1 AND i.indisprimary \
             ORDER BY array_position(i.indkey::int2[], a.attnum)",
            &[&rel.oid],
        )
        .await
        .map_err(PgError::sql(format!(
            "looking up the primary key of {}.{}",
            rel.namespace, rel.name
        )))?;
    let pk: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    Ok(RelationInfo::new(rel, decoders, &pk))
}
