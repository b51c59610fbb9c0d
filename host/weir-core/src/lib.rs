//! Weir's core vocabulary: the change event every source produces, the wire
//! encoding that carries batches of events into plugins, and the Debezium
//! JSON envelope that carries them out to consumers.
//!
//! This crate does no I/O and builds for `wasm32-wasip2` as well as for the
//! host, so the guest SDK decodes batches with exactly the code the host
//! encodes them with.

pub mod envelope;
pub mod event;
pub mod pipeline;
pub mod wire;

pub use event::{
    ChangeEvent, Column, Conflict, Image, Name, Op, Patch, PatchError, Resolution, Row, SourceInfo,
    Value, VersionMeta, column,
};
pub use pipeline::{
    ChangeBatch, Checkpoint, CheckpointStore, DeadLetter, Delivery, ErrorKind, FailedAt,
    PositionOrder, Sink, StageError,
};
