//! `[[sinks]]`: the sink kinds a pipeline can deliver to, and the fields
//! every sink has. Adding a kind is one line in the `component_kinds!`
//! below and one module that implements [`weir_connect::SinkComponent`] on
//! its config struct.

use serde::Deserialize;
use weir_connect::Checker;

use super::kinds::component_kinds;

use crate::sinks::{FileSinkConfig, StdoutSinkConfig};

/// One `[[sinks]]` entry.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Name used in logs, metrics and checkpoints; unique in the pipeline.
    /// Lower-case letters, digits, `_` and `-`.
    pub name: String,
    /// Destinations this sink takes, as globs (`public.orders*`,
    /// `*.audit_?`); absent: every destination.
    pub inputs: Option<Vec<String>>,
    /// The kind and its settings.
    pub kind: SinkKind,
}

/// The fields every sink has, whatever its kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SinkCommon {
    pub name: String,
    #[serde(default)]
    pub inputs: Option<Vec<String>>,
}

impl SinkCommon {
    /// The keys [`SinkCommon`] reads (with `kind`, the keys no kind sees).
    pub const KEYS: [&'static str; 2] = ["name", "inputs"];
}

impl SinkConfig {
    /// Checks the fields every sink has, with paths relative to the sink.
    pub(super) fn validate_common(&self, c: &mut Checker) {
        c.name("name", &self.name, "sink");
        if let Some(inputs) = &self.inputs {
            if inputs.is_empty() {
                c.err(
                    "inputs",
                    "an empty list takes no destination; leave `inputs` out to take every destination",
                );
            }
            for (n, glob) in inputs.iter().enumerate() {
                if glob.is_empty() {
                    c.err(
                        &format!("inputs[{n}]"),
                        "must not be empty; write a destination name or a glob such as `public.*`",
                    );
                }
            }
        }
    }
}

component_kinds! {
    /// A sink's kind and its kind-specific settings.
    pub enum SinkKind: dyn weir_connect::SinkComponent {
        /// JSON-lines files, one set per destination, exactly-once.
        File(FileSinkConfig) = "file";
        /// JSON lines on standard output, at-least-once.
        Stdout(StdoutSinkConfig) = "stdout";
        /// Kafka topics, one per destination, exactly-once.
        Kafka(weir_kafka::KafkaSinkConfig) = "kafka";
        /// PostgreSQL tables, changes applied by key, exactly-once.
        Postgres(weir_postgres::PostgresSinkConfig) = "postgres" | "postgresql";
        /// MySQL / MariaDB tables, changes applied by key, exactly-once.
        Mysql(weir_mysql::MysqlSinkConfig) = "mysql" | "mariadb";
    }
}
