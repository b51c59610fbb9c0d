//! The contracts between a pipeline's stages: the batch a source hands on,
//! the sink that makes it durable, and the checkpoint store that remembers
//! how far everything got.
//!
//! Sinks and checkpoint stores are synchronous: the pipeline runs them on a
//! dedicated writer thread, where blocking on `fsync` or a database commit is
//! exactly what should happen (see `docs/decisions/0008-sync-writer-stage.md`).

use std::collections::BTreeMap;

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
    /// before the first checkpoint.
    pub source: Json,
    /// Each sink's durable position, by sink name (from [`Sink::flush`]).
    pub sinks: BTreeMap<String, Json>,
}

/// A boxed error from a sink or checkpoint store; its message is shown to
/// the operator as is, so it says what failed and on what.
pub type StageError = Box<dyn std::error::Error + Send + Sync>;

/// Durable storage for a pipeline's [`Checkpoint`].
///
/// Contract: `save` is atomic and durable when it returns (a crash right
/// after sees the new checkpoint, a crash during it sees the old one).
/// Callers never save a checkpoint whose source position is behind the last
/// one saved; stores may reject such a save.
pub trait CheckpointStore: Send {
    /// The last saved checkpoint, or `None` if the pipeline never saved one.
    fn load(&mut self) -> Result<Option<Checkpoint>, StageError>;
    /// Replaces the stored checkpoint.
    fn save(&mut self, checkpoint: &Checkpoint) -> Result<(), StageError>;
}

/// A destination for change events.
///
/// Contract: events arrive in commit order, each tagged with the destination
/// name the router chose. Nothing written counts until [`Sink::flush`]
/// returns: a crash before that may leave partial output, which
/// [`Sink::recover`] removes on the next start, given the position `flush`
/// returned with the last checkpoint. That is what makes a sink
/// exactly-once; a sink that cannot take back output is at-least-once and
/// says so in its docs.
pub trait Sink: Send {
    /// The sink's name from the pipeline config.
    fn name(&self) -> &str;
    /// Called once before any write with the position recorded in the last
    /// checkpoint (`None` on a first start): undo anything written after it.
    fn recover(&mut self, position: Option<&Json>) -> Result<(), StageError>;
    /// Writes events bound for `destination`.
    fn write(&mut self, destination: &str, events: &[ChangeEvent]) -> Result<(), StageError>;
    /// Makes every write so far durable and returns the position to record
    /// in the checkpoint.
    fn flush(&mut self) -> Result<Json, StageError>;
}
