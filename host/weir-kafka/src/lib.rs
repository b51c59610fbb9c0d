//! The Kafka sink (`kind = "kafka"`): one topic per destination, each
//! event's key as the record key and its Debezium envelope as the value,
//! exactly-once through Kafka transactions.
//!
//! Each flush of the pipeline is one Kafka transaction holding the changes
//! and a record of the source position in a compacted state topic
//! ([`state`]); a second instance of the same pipeline fences the first.
//! The sink runs on the pipeline's writer thread and uses librdkafka's
//! blocking calls (`docs/decisions/0008-sync-writer-stage.md`).
//!
//! - [`config`]: the `[[sinks]]` section.
//! - [`sink`]: the producer, transactions and recovery.
//! - [`state`]: the state record and how it is reconciled with the
//!   pipeline checkpoint.
//! - `encode`: keys and values (`json`, `json-schema`).
//! - `topics`: topic names and creation.

pub mod config;
mod encode;
mod error;
pub mod sink;
pub mod state;
mod topics;

pub use config::{Compression, KafkaFormat, KafkaSinkConfig, TopicSettings};
pub use sink::{HEADER_PLUGINS, HEADER_TXID, KafkaSink};
pub use state::StateRecord;
