//! The source contract: what a change source (PostgreSQL logical
//! replication, a MySQL binlog, a Kafka topic) promises the pipeline, and
//! the channels it talks through.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::BoxFuture;
use serde_json::Value as Json;
use tokio::sync::{mpsc, watch};
use weir_core::{ChangeBatch, ErrorKind, PositionOrder, StageError};

/// A change source.
///
/// Contract:
/// - **Resume.** [`Source::run`] starts from `resume`, the source state of
///   the last checkpoint (`Null` on a first start), and hands on nothing
///   that checkpoint already covers, and skips nothing after it.
/// - **Batches.** Batches go out on [`SourceChannels::out`] in commit order.
///   A batch holds whole transactions, or one chunk of a transaction too
///   large to hold; only a transaction's last chunk carries a
///   [`ChangeBatch::resume`] state. Positions in successive resume states
///   never go backward by the source's own [`PositionOrder`].
/// - **Acknowledgements.** The pipeline sends back, in order, the resume
///   state of each batch once every sink made it durable and the checkpoint
///   holds it ([`SourceChannels::acks`]). Only then may the source tell its
///   server that it may discard what came before (a PostgreSQL slot's flush
///   LSN, a binlog purge). An acknowledgement may cover several batches.
/// - **Shutdown.** When [`SourceChannels::shutdown`] becomes `true`, the
///   source stops reading, hands on nothing more, closes `out` by dropping
///   it, waits for the acknowledgements of what it handed on (the pipeline
///   closes `acks` when it has drained), reports the final position to its
///   server and returns `Ok(())`.
/// - **Errors.** Every error carries its kind: transient (the pipeline
///   restarts it from the last checkpoint after a delay), operator (the
///   pipeline stops; the message says what to run). A source never returns
///   an event-kind error: it cannot hand on what it could not read.
/// - **Progress.** The source publishes its phase and position on
///   [`SourceChannels::progress`] as it goes; status reports and metrics
///   read it.
pub trait Source: Send {
    /// How this source orders its resume states. The checkpoint store uses
    /// it to refuse a checkpoint that would move backward.
    fn positions(&self) -> Arc<dyn PositionOrder>;

    /// Runs until shutdown or an error; see the trait docs.
    fn run<'a>(
        &'a mut self,
        resume: Json,
        channels: SourceChannels,
    ) -> BoxFuture<'a, Result<(), StageError>>;
}

/// The channels that connect a source to the rest of the pipeline.
#[derive(Debug)]
pub struct SourceChannels {
    /// Batches out, in commit order. Bounded: a slow pipeline slows the
    /// source.
    pub out: BatchSender,
    /// Resume states of batches every sink made durable, in order.
    pub acks: mpsc::UnboundedReceiver<Json>,
    /// Becomes `true` when the pipeline should stop.
    pub shutdown: watch::Receiver<bool>,
    /// Where the source publishes its progress.
    pub progress: watch::Sender<SourceProgress>,
}

/// The other ends of a [`SourceChannels`], held by the pipeline.
#[derive(Debug)]
pub struct PipelineEnds {
    pub batches: mpsc::Receiver<ChangeBatch>,
    pub acks: mpsc::UnboundedSender<Json>,
    /// Bytes handed on and not yet taken ([`ChangeBatch::bytes`]): whoever
    /// takes a batch from `batches` subtracts its bytes.
    pub queued_bytes: Arc<AtomicU64>,
}

/// The sending end of a source's batch channel: a bounded channel that
/// also counts the bytes in it, for the pipeline's metrics.
#[derive(Debug)]
pub struct BatchSender {
    inner: mpsc::Sender<ChangeBatch>,
    queued_bytes: Arc<AtomicU64>,
}

/// Room for one batch in a [`BatchSender`]'s channel.
#[derive(Debug)]
pub struct BatchPermit<'a> {
    inner: mpsc::Permit<'a, ChangeBatch>,
    queued_bytes: &'a AtomicU64,
}

/// The pipeline is gone: nothing takes batches any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the pipeline stopped taking batches")]
pub struct Closed;

impl BatchSender {
    /// Hands `batch` on, waiting for room.
    pub async fn send(&self, batch: ChangeBatch) -> Result<(), Closed> {
        self.reserve().await?.send(batch);
        Ok(())
    }

    /// Waits for room for one batch.
    pub async fn reserve(&self) -> Result<BatchPermit<'_>, Closed> {
        let inner = self.inner.reserve().await.map_err(|_| Closed)?;
        Ok(BatchPermit {
            inner,
            queued_bytes: &self.queued_bytes,
        })
    }

    /// Batches that fit in the channel now.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// Batches the channel holds at most.
    pub fn max_capacity(&self) -> usize {
        self.inner.max_capacity()
    }

    /// Hands on nothing more: the pipeline sees the channel end.
    pub fn close(&mut self) {
        let (closed, _) = mpsc::channel(1);
        self.inner = closed;
    }
}

impl BatchPermit<'_> {
    /// Hands `batch` on.
    pub fn send(self, batch: ChangeBatch) {
        self.queued_bytes
            .fetch_add(batch.bytes as u64, Ordering::Relaxed);
        self.inner.send(batch);
    }
}

impl SourceChannels {
    /// A source's channels with room for `capacity` batches in flight,
    /// stopping when `shutdown` turns `true` and publishing progress on
    /// `progress`; and the pipeline's ends of them.
    pub fn new(
        capacity: usize,
        shutdown: watch::Receiver<bool>,
        progress: watch::Sender<SourceProgress>,
    ) -> (SourceChannels, PipelineEnds) {
        let (out, batches) = mpsc::channel(capacity.max(1));
        let (acks_tx, acks) = mpsc::unbounded_channel();
        let queued_bytes = Arc::new(AtomicU64::new(0));
        (
            SourceChannels {
                out: BatchSender {
                    inner: out,
                    queued_bytes: Arc::clone(&queued_bytes),
                },
                acks,
                shutdown,
                progress,
            },
            PipelineEnds {
                batches,
                acks: acks_tx,
                queued_bytes,
            },
        )
    }

    /// Hands `batch` on unless the pipeline is stopping: `Ok(false)` when
    /// the shutdown came first (the batch is dropped: nothing after the
    /// last checkpoint counts). A shutdown already asked for wins over a
    /// channel with room: left to chance, a pipeline that keeps taking
    /// would see a snapshot run on for several more chunks.
    pub async fn send_or_stop(&mut self, batch: ChangeBatch) -> Result<bool, Closed> {
        tokio::select! {
            biased;
            _ = self.shutdown.changed() => Ok(false),
            sent = self.out.send(batch) => sent.map(|()| true),
        }
    }

    /// Updates the published progress in place (cheap; readers see the
    /// latest state, never a queue of them).
    pub fn report(&self, update: impl FnOnce(&mut SourceProgress)) {
        self.progress.send_modify(update);
    }
}

/// What a source is doing, for status reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceProgress {
    pub phase: Phase,
    /// The last position every sink made durable, as the source writes it
    /// (`0/16B3748`, `mysql-bin.000004:1234`).
    pub acknowledged: Option<String>,
    /// While copying existing rows: tables done, tables in all, rows copied.
    pub snapshot: Option<SnapshotProgress>,
    /// How far the server's log is ahead of `acknowledged`, in bytes
    /// (PostgreSQL: its WAL end minus the confirmed position), when the
    /// source knows.
    pub behind_bytes: Option<u64>,
}

/// The phase a source is in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Phase {
    /// Connecting and checking the server.
    #[default]
    Starting,
    /// Copying the tables' existing rows.
    Snapshot,
    /// Streaming changes.
    Streaming,
    /// Stopped after a shutdown request.
    Stopped,
}

impl Phase {
    /// A short, stable label.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Snapshot => "snapshot",
            Phase::Streaming => "streaming",
            Phase::Stopped => "stopped",
        }
    }
}

/// How far a snapshot got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotProgress {
    pub tables_done: usize,
    pub tables_total: usize,
    pub rows: u64,
    /// Per table, in the order the source lists them.
    pub tables: Vec<TableSnapshot>,
}

/// How far one table's copy got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSnapshot {
    /// `schema.table` (PostgreSQL), `database.table` (MySQL).
    pub table: String,
    pub rows: u64,
    /// The server's estimate of the table's rows when the snapshot
    /// started (PostgreSQL's `reltuples`, InnoDB's `TABLE_ROWS`), if it
    /// has one: a guide for progress bars, not a promise.
    pub estimated_rows: Option<u64>,
    pub done: bool,
}

impl SnapshotProgress {
    /// The progress of `tables`, with the totals worked out.
    pub fn of(tables: Vec<TableSnapshot>) -> SnapshotProgress {
        SnapshotProgress {
            tables_done: tables.iter().filter(|t| t.done).count(),
            tables_total: tables.len(),
            rows: tables.iter().map(|t| t.rows).sum(),
            tables,
        }
    }

    /// The estimated rows of every table, where every table has an
    /// estimate (at least the rows copied so far).
    pub fn estimated_rows(&self) -> Option<u64> {
        self.tables
            .iter()
            .map(|t| t.estimated_rows.map(|e| e.max(t.rows)))
            .sum()
    }
}

/// A source's error with its kind. A source cannot hand on what it could
/// not read, so a client error that would be one event's fault in a sink
/// is the operator's in a source.
pub fn source_error(
    kind: ErrorKind,
    error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> StageError {
    let kind = match kind {
        ErrorKind::Event => ErrorKind::Operator,
        kind => kind,
    };
    StageError::new(kind, error)
}
