//! The contracts between a pipeline's stages: the batch a source hands on,
//! the sink that makes it durable, the checkpoint store that remembers how
//! far everything got, and the error every stage returns.
//!
//! Sinks and checkpoint stores are synchronous: the pipeline runs them on a
//! dedicated writer thread, where blocking on `fsync` or a database commit is
//! exactly what should happen (see `docs/decisions/0008-sync-writer-stage.md`).
//! The source contract, which is async and does I/O, lives in the host-only
//! `weir-connect` crate.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::ChangeEvent;

/// Whole source transactions (or one chunk of a transaction too large to
/// hold), in commit order.
#[derive(Debug, Clone, Default)]
pub struct ChangeBatch {
    pub events: Vec<ChangeEvent>,
    /// The source state to record once this batch is durable in every sink,
    /// opaque to everything but the source. `None` when the batch ends in the
    /// middle of a transaction: only a transaction's last chunk carries it,
    /// so a checkpoint never falls inside a transaction.
    pub resume: Option<Json>,
    /// Rough size in bytes, for the pipeline's byte-bounded channels.
    pub bytes: usize,
}

/// What a pipeline has made durable: where the source resumes and where each
/// sink stands. Saved as one unit, so a restart sees either the state before
/// a batch or after it, never half of each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The source's resume state (from [`ChangeBatch::resume`]); `Null`
    /// before the first checkpoint. Opaque: only the source reads it, and
    /// only its [`PositionOrder`] compares two of them.
    pub source: Json,
    /// Each sink's durable position, by sink name (from [`Sink::flush`]).
    pub sinks: BTreeMap<String, Json>,
}

/// What the pipeline does about a failure. Every error a source, sink or
/// checkpoint store returns says which it is; the pipeline decides in one
/// place what follows (`weir_connect::retry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A server or the network failed; the same work may succeed later.
    /// The pipeline restarts from its last checkpoint after a delay that
    /// grows with each failure in a row.
    Transient,
    /// Something is set up in a way Weir cannot work with. The pipeline
    /// stops, and the message says what the operator must do.
    Operator,
    /// One event cannot be delivered (a value the target cannot hold, a
    /// constraint it violates). The event goes to the dead letters with the
    /// reason, and the rest flows on.
    Event,
}

impl ErrorKind {
    /// A short, stable label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Operator => "operator",
            ErrorKind::Event => "event",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// An error from a pipeline stage: what happened (shown to the operator as
/// is, so it says what failed, on what, and what to do) and its
/// [`ErrorKind`].
pub struct StageError {
    kind: ErrorKind,
    /// For [`ErrorKind::Event`]: the index, in the slice the sink was
    /// given, of the event at fault.
    event: Option<usize>,
    error: Box<dyn std::error::Error + Send + Sync>,
}

impl StageError {
    /// An error of `kind`.
    pub fn new(
        kind: ErrorKind,
        error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        StageError {
            kind,
            event: None,
            error: error.into(),
        }
    }

    /// A failure that may pass: retry after a delay.
    pub fn transient(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StageError::new(ErrorKind::Transient, error)
    }

    /// A failure only an operator can fix: stop.
    pub fn operator(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StageError::new(ErrorKind::Operator, error)
    }

    /// The event at `index` of the slice given to [`Sink::write`] cannot be
    /// delivered; the events before it were written.
    pub fn event(index: usize, error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StageError {
            kind: ErrorKind::Event,
            event: Some(index),
            error: error.into(),
        }
    }

    /// What the pipeline should do about it.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// For an event's fault, the index of the event.
    pub fn event_index(&self) -> Option<usize> {
        self.event
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl fmt::Debug for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StageError")
            .field("kind", &self.kind)
            .field("event", &self.event)
            .field("error", &self.error)
            .finish()
    }
}

impl std::error::Error for StageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// How a source orders its own positions (the resume states it puts in
/// [`ChangeBatch::resume`]). Everything else treats positions as opaque and
/// asks the source.
pub trait PositionOrder: Send + Sync {
    /// Whether `a` is before, at or after `b`; `None` when the two cannot be
    /// compared (one is not this source's, or they are from different
    /// histories).
    fn compare(&self, a: &Json, b: &Json) -> Option<Ordering>;
    /// The position as an operator reads it (`LSN 16/B374D848`).
    fn describe(&self, position: &Json) -> String;
}

/// Durable storage for a pipeline's [`Checkpoint`].
///
/// Contract: `save` is atomic and durable when it returns (a crash right
/// after sees the new checkpoint, a crash during it sees the old one).
/// Callers never save a checkpoint whose source position is behind the last
/// one saved; a store that was given the source's [`PositionOrder`] refuses
/// such a save with an [`ErrorKind::Operator`] error. Stored progress never
/// moves backward.
pub trait CheckpointStore: Send {
    /// The last saved checkpoint, or `None` if the pipeline never saved one.
    fn load(&mut self) -> Result<Option<Checkpoint>, StageError>;
    /// Replaces the stored checkpoint.
    fn save(&mut self, checkpoint: &Checkpoint) -> Result<(), StageError>;
}

/// One event on its way into a sink, with the destination the router chose
/// for it (`public.orders`, a topic, a table).
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub destination: &'a str,
    pub event: &'a ChangeEvent,
}

/// Where a dead letter failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailedAt {
    /// A plugin, by its name in the pipeline.
    Plugin(String),
    /// A sink, by its name in the pipeline.
    Sink(String),
}

/// An event the pipeline could not process or deliver, with the reason.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub failed_at: FailedAt,
    /// A short, stable label: a plugin failure kind (`trap`, `timeout`,
    /// ...) or `event` for a sink's refusal.
    pub kind: String,
    pub reason: String,
    /// The event as the failing stage received it.
    pub event: ChangeEvent,
}

/// A destination for change events.
///
/// Contract:
/// - **Order.** [`Sink::write`] receives events in source commit order,
///   across destinations: when one transaction inserts a parent row into
///   one table and a child row into another, the parent comes first. A sink
///   may batch per destination internally (a file per destination, a
///   multi-row statement per table) as long as what it makes durable
///   respects the order its consumers rely on.
/// - **Durability.** Nothing written counts until [`Sink::flush`] returns:
///   a crash before that may leave partial output, which [`Sink::recover`]
///   removes on the next start, given the position `flush` returned with
///   the last checkpoint. That is what makes a sink exactly-once; a sink
///   that cannot take back output is at-least-once and says so in its docs.
/// - **Errors.** Every error carries its [`ErrorKind`]. A transient error
///   restarts the pipeline from the last checkpoint (after `recover`); an
///   operator error stops it. An event's fault is
///   [`StageError::event`]`(i, ..)`: the events before `i` were written,
///   event `i` goes to the dead letters, and the pipeline calls `write`
///   again with the events after it.
/// - **Threads.** A sink is called from one thread at a time (the writer
///   stage), never concurrently.
/// - **Sinks that keep their own position.** A sink whose target can commit
///   output and a record of the source position in one transaction (Kafka,
///   a SQL database) writes the position `flush` is given in the same commit
///   as the output. Its target may then hold one commit more than the
///   checkpoint: the process stopped after the sink's commit and before the
///   checkpoint was saved. [`Sink::recover`] finds that out (its own
///   position in the checkpoint is behind what the target holds), and the
///   pipeline replays from the checkpoint: the same source positions through
///   the same plugins, so the deliveries of that commit arrive again, in the
///   same order (batch boundaries may differ). The sink counts them off
///   against its target's record and writes only what follows, so the
///   target never holds a change twice. Events it refused the first time
///   (an event's fault) must be refused again, not counted off silently, so
///   that the replayed dead letters are complete. The target is never more
///   than one commit ahead: the writer saves the checkpoint after every
///   flush before it writes again, and a sink that finds itself further
///   ahead (the local state was lost) or behind (the target lost data)
///   stops with an [`ErrorKind::Operator`] error.
pub trait Sink: Send {
    /// The sink's name from the pipeline config.
    fn name(&self) -> &str;
    /// Called once before any write with the position recorded in the last
    /// checkpoint (`None` on a first start): undo anything written after it.
    fn recover(&mut self, position: Option<&Json>) -> Result<(), StageError>;
    /// Writes events, in commit order, each with its destination.
    fn write(&mut self, events: &[Delivery<'_>]) -> Result<(), StageError>;
    /// Writes dead letters, under the same durability contract as `write`.
    /// Only a sink configured to hold the pipeline's dead letters is asked.
    fn write_dead_letters(&mut self, letters: &[DeadLetter]) -> Result<(), StageError> {
        let _ = letters;
        Err(StageError::operator(format!(
            "sink `{}` cannot hold dead letters; choose another sink for them",
            self.name()
        )))
    }
    /// Makes every write so far durable and returns the position to record
    /// in the checkpoint. `source` is the source position the checkpoint
    /// will record: a sink that keeps its own position commits it with the
    /// output; others ignore it.
    fn flush(&mut self, source: &Json) -> Result<Json, StageError>;
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn recover(&mut self, position: Option<&Json>) -> Result<(), StageError> {
        (**self).recover(position)
    }
    fn write(&mut self, events: &[Delivery<'_>]) -> Result<(), StageError> {
        (**self).write(events)
    }
    fn write_dead_letters(&mut self, letters: &[DeadLetter]) -> Result<(), StageError> {
        (**self).write_dead_letters(letters)
    }
    fn flush(&mut self, source: &Json) -> Result<Json, StageError> {
        (**self).flush(source)
    }
}
