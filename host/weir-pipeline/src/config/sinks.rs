//! `[[sinks]]`: the sink kinds a pipeline can deliver to, and the fields
//! every sink has. Adding a kind is one line in the `component_kinds!`
//! below and one module that implements [`weir_connect::SinkComponent`] on
//! its config struct.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use weir_connect::Checker;

use super::kinds::component_kinds;

use super::plugins::PluginConfig;
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
    /// Active-active: detect conflicts and settle them with a resolver
    /// plugin (`docs/active-active.md`). SQL apply sinks only.
    pub conflicts: Option<ConflictsConfig>,
    /// The kind and its settings.
    pub kind: SinkKind,
}

/// `[sinks.conflicts]`: how an apply sink in an active-active topology
/// finds conflicts and who settles them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConflictsConfig {
    /// The target database's region: its own users' writes carry this
    /// name in conflicts (lower-case letters, digits, `_` and `-`).
    pub region: String,
    /// The region the pipeline's source database is in. What the sink
    /// applies is marked with replication origin `weir_<source_region>`,
    /// which the target's own PostgreSQL source skips (no loops).
    pub source_region: String,
    /// The resolver plugin (a `resolver`-world component or bundle; same
    /// fields as a `[[plugins]]` entry), e.g. the bundled `resolvers` with
    /// `config = { strategy = "last-writer-wins" }`.
    pub resolver: PluginConfig,
    /// Compare only this column (a version counter or update timestamp)
    /// of the before image with the target's row; default: every column.
    #[serde(default)]
    pub version_column: Option<String>,
    /// The conflicts log (JSON lines); default
    /// `<state_dir>/conflicts-<sink>.jsonl`.
    #[serde(default)]
    pub log: Option<PathBuf>,
}

impl ConflictsConfig {
    /// Makes relative paths absolute against `base_dir`.
    pub(super) fn resolve_paths(&mut self, base_dir: &Path) {
        for p in [Some(&mut self.resolver.path), self.log.as_mut()]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base_dir.join(&*p);
            }
        }
    }

    /// The log's path for sink `sink` of a pipeline with `state_dir`.
    pub fn log_path(&self, state_dir: &Path, sink: &str) -> PathBuf {
        self.log
            .clone()
            .unwrap_or_else(|| state_dir.join(format!("conflicts-{sink}.jsonl")))
    }

    fn validate(&self, c: &mut Checker) {
        c.name("region", &self.region, "region");
        c.name("source_region", &self.source_region, "region");
        if self.region == self.source_region {
            c.err(
                "source_region",
                "is the target's own `region`: a pipeline replicates between two regions",
            );
        }
        if self.version_column.as_deref() == Some("") {
            c.err(
                "version_column",
                "must not be empty; leave it out to compare every column",
            );
        }
        let mut section = Checker::new(c.path("resolver"));
        self.resolver.validate(&mut section);
        c.absorb(section);
    }
}

/// The fields every sink has, whatever its kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SinkCommon {
    pub name: String,
    #[serde(default)]
    pub inputs: Option<Vec<String>>,
    #[serde(default)]
    pub conflicts: Option<ConflictsConfig>,
}

impl SinkCommon {
    /// The keys [`SinkCommon`] reads (with `kind`, the keys no kind sees).
    pub const KEYS: [&'static str; 3] = ["name", "inputs", "conflicts"];
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
        if let Some(conflicts) = &self.conflicts {
            let mut section = Checker::new(c.path("conflicts"));
            conflicts.validate(&mut section);
            c.absorb(section);
            if let Err(reason) = self
                .kind
                .component()
                .resolves_conflicts(&conflicts.source_region)
            {
                c.err("conflicts", reason);
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
