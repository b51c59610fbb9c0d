//! Weir's host-side connector contracts. `weir-core` holds what both the
//! host and plugins see (events, batches, the `Sink` and `CheckpointStore`
//! contracts) and does no I/O; this crate holds what only connectors need:
//!
//! - [`source`]: the [`Source`] trait and the channels that join a source to
//!   the pipeline.
//! - [`component`]: how a source or sink kind describes itself to the
//!   pipeline config: validation with field paths, path resolution, and
//!   construction.
//! - [`retry`]: the one place that turns an [`ErrorKind`] into retry, stop
//!   or dead letter.
//! - [`apply`]: SQL apply sinks: deliveries grouped into multi-row
//!   statements, and the exactly-once sink around a database's target.
//! - [`own_position`]: the delivery count that sinks keeping their own
//!   position (Kafka, SQL databases) reconcile with their target on start.
//!
//! `docs/connectors.md` is the guide to writing a connector against these.

pub mod apply;
pub mod component;
pub mod own_position;
pub mod retry;
pub mod source;

pub use component::{
    BuildContext, Checker, ConfigError, ConfigErrors, SinkComponent, SourceComponent, TableRef,
};
pub use retry::{Backoff, Directive};
pub use source::{
    BatchSender, Phase, PipelineEnds, SnapshotProgress, Source, SourceChannels, SourceProgress,
    TableSnapshot, source_error,
};
pub use weir_core::{
    ChangeBatch, Checkpoint, CheckpointStore, DeadLetter, Delivery, ErrorKind, FailedAt,
    PositionOrder, Sink, StageError,
};
