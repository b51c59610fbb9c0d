//! The source contract: what a change source (PostgreSQL logical
//! replication, a MySQL binlog, a Kafka topic) promises the pipeline, and
//! the channels it talks through.

use std::sync::Arc;

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
    pub out: mpsc::Sender<ChangeBatch>,
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
        (
            SourceChannels {
                out,
                acks,
                shutdown,
                progress,
            },
            PipelineEnds {
                batches,
                acks: acks_tx,
            },
        )
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
