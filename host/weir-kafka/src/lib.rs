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
//! `weir worker` reads change topics with [`Input`] and writes its results
//! through the same [`Output`], committing the input offsets inside the
//! output transaction (`docs/decisions/0019-worker-rounds.md`).
//!
//! - [`config`]: the `[[sinks]]` section.
//! - [`input`]: the consumer of `weir worker` and the decoding of change
//!   records.
//! - [`output`]: the transactional producer, topics and records, shared
//!   with `weir worker`.
//! - [`sink`]: the sink's transactions and recovery.
//! - [`state`]: the state record and how it is reconciled with the
//!   pipeline checkpoint.
//! - `encode`: keys and values (`json`, `json-schema`).
//! - `topics`: topic names and creation.

pub mod config;
mod encode;
mod error;
pub mod input;
pub mod output;
pub mod sink;
pub mod state;
mod topics;
mod transactions;

pub use config::{Compression, KafkaFormat, KafkaSinkConfig, TopicSettings};
pub use input::{Input, InputRecord, KafkaInputConfig, StartAt};
pub use output::{HEADER_PLUGINS, HEADER_TXID, Output, Owner};
pub use sink::KafkaSink;
pub use state::StateRecord;
pub use topics::valid_topic_name;
