//! PostgreSQL source and apply sink for Weir.
//!
//! - [`pgoutput`]: a pure decoder of the pgoutput logical-replication
//!   protocol (v1 and v2), bytes in, messages out.
//! - [`types`]: text-format column values to typed [`weir_core::Value`]s.
//! - [`assembler`]: pgoutput messages to transaction-aligned change events.
//! - [`replication`]: the replication-protocol connection, and [`gather`]:
//!   fewer wake-ups while it streams densely.
//! - [`catalog`]: server checks and table descriptions.
//! - [`snapshot`]: the initial, resumable, parallel snapshot.
//! - [`source`]: all of it together, driven by the pipeline.
//! - [`config`]: the `[source] kind = "postgres"` section.
//! - [`sink`]: the `[[sinks]] kind = "postgres"` apply sink, exactly-once.

pub mod assembler;
pub mod catalog;
pub mod config;
pub mod error;
pub mod gather;
pub mod lsn;
pub mod pgoutput;
pub mod replication;
pub mod sink;
pub mod snapshot;
pub mod source;
pub mod types;

pub use config::{PostgresSourceConfig, SnapshotMode};
pub use error::sqlstate_kind;
pub use error::{ErrorKind, PgError};
pub use lsn::Lsn;
pub use replication::ConnectParams;
pub use sink::{PostgresSink, PostgresSinkConfig, PostgresTarget};
pub use source::{LsnOrder, PostgresSource, ResumeState, SourceSettings};
