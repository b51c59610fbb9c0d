//! `[source] kind = "postgres"`: the PostgreSQL source's config section,
//! its validation and the source it builds.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use weir_connect::{BuildContext, Checker, Source, SourceComponent, TableRef};
use weir_core::StageError;

use crate::replication::ConnectParams;
use crate::source::{PostgresSource, SourceSettings};

/// PostgreSQL's longest identifier (`NAMEDATALEN - 1`), in bytes.
const PG_MAX_IDENTIFIER: usize = 63;

/// `kind = "postgres"`: capture from PostgreSQL (`wal_level = logical`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSourceConfig {
    /// Server host name or address.
    #[serde(default = "default_host")]
    pub host: String,
    /// Server port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// User to connect as; it needs the `REPLICATION` attribute, and
    /// `SELECT` on the captured tables for the snapshot.
    pub user: String,
    /// Password, if the server asks for one. Write `"${PGPASSWORD}"` to take
    /// it from the environment rather than the file. Never logged or
    /// printed.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// Database to capture.
    pub database: String,
    /// Publication naming the captured tables; created if missing. Default:
    /// `weir_<name>`, with `-` in the pipeline name replaced by `_`.
    #[serde(default)]
    pub publication: String,
    /// Logical replication slot that holds the pipeline's place in the WAL;
    /// created if missing. Lower-case letters, digits and `_`, at most 63
    /// bytes. Default: `weir_<name>`, with `-` replaced by `_`.
    #[serde(default)]
    pub slot: String,
    /// Tables to capture, as `schema.table`. Empty or absent: every table
    /// in the database (a `FOR ALL TABLES` publication).
    #[serde(default)]
    pub tables: Vec<String>,
    /// Whether to copy the tables' existing rows before streaming changes.
    #[serde(default)]
    pub snapshot: SnapshotMode,
    /// Rows read per snapshot query, more than 0.
    #[serde(default = "default_snapshot_chunk_rows")]
    pub snapshot_chunk_rows: u64,
    /// Tables (or chunks) read concurrently during the snapshot, 1 to 16.
    #[serde(default = "default_snapshot_parallelism")]
    pub snapshot_parallelism: usize,
    /// Ask the server to stream large transactions while they are still in
    /// progress (pgoutput protocol v2) rather than spill them to its disk
    /// until commit. Off by default: weir holds a streamed transaction in
    /// memory until it commits (it may still abort), so a huge transaction
    /// costs weir's memory instead of the server's disk. See
    /// `docs/decisions/0010-streaming-off-by-default.md`.
    #[serde(default)]
    pub streaming: bool,
    /// Transactions whose replication origin matches one of these globs are
    /// not captured. The default, `["weir_*"]`, skips what weir's own
    /// PostgreSQL sinks applied (their sessions use origin
    /// `weir_<pipeline>`), so that two pipelines replicating in opposite
    /// directions do not send changes back and forth. `[]` captures
    /// everything.
    #[serde(default = "default_skip_origins")]
    pub skip_origins: Vec<String>,
}

fn default_skip_origins() -> Vec<String> {
    vec!["weir_*".to_owned()]
}

fn default_host() -> String {
    "localhost".to_owned()
}

const fn default_port() -> u16 {
    5432
}

const fn default_snapshot_chunk_rows() -> u64 {
    10_000
}

const fn default_snapshot_parallelism() -> usize {
    2
}

/// Whether a pipeline copies existing rows before streaming changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotMode {
    /// Copy every captured table once, on the first start (events with
    /// `op = "r"`), then stream changes from a consistent point.
    #[default]
    Initial,
    /// Stream changes only, from the slot's position.
    Never,
}

/// The default publication and slot name for a pipeline.
pub fn derived_name(pipeline: &str) -> String {
    format!("weir_{}", pipeline.replace('-', "_"))
}

impl PostgresSourceConfig {
    /// Where and how to connect, for a pipeline named `pipeline`.
    pub fn connect_params(&self, pipeline: &str) -> ConnectParams {
        ConnectParams {
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            password: self.password.clone(),
            database: self.database.clone(),
            application_name: format!("weir {pipeline}"),
        }
    }

    /// The source's run-time settings.
    pub fn settings(&self, cx: &BuildContext) -> SourceSettings {
        SourceSettings {
            connect: self.connect_params(&cx.pipeline),
            publication: self.publication.clone(),
            slot: self.slot.clone(),
            tables: self.tables.clone(),
            snapshot: self.snapshot == SnapshotMode::Initial,
            snapshot_chunk_rows: usize::try_from(self.snapshot_chunk_rows).unwrap_or(usize::MAX),
            snapshot_parallelism: self.snapshot_parallelism,
            streaming: self.streaming,
            skip_origins: self.skip_origins.clone(),
            max_batch_events: cx.max_batch_events,
            max_batch_bytes: cx.max_batch_bytes,
            status_interval: Duration::from_secs(10),
        }
    }
}

impl SourceComponent for PostgresSourceConfig {
    fn fill_defaults(&mut self, pipeline: &str) {
        let derived = derived_name(pipeline);
        for value in [&mut self.publication, &mut self.slot] {
            if value.is_empty() {
                value.clone_from(&derived);
            }
        }
    }

    fn validate(&self, pipeline: &str, c: &mut Checker) {
        if self.host.is_empty() {
            c.err("host", "must not be empty");
        }
        if self.port == 0 {
            c.err("port", "must be a port number from 1 to 65535");
        }
        if self.user.is_empty() {
            c.err("user", "must not be empty");
        }
        if self.database.is_empty() {
            c.err("database", "must not be empty");
        }
        // A name derived from the pipeline's is valid exactly when the
        // pipeline's is, which is checked (and reported) on its own; only its
        // length can still be wrong.
        let derived = derived_name(pipeline);
        for (key, value) in [("publication", &self.publication), ("slot", &self.slot)] {
            let too_long = value.len() > PG_MAX_IDENTIFIER;
            if *value == derived {
                if too_long {
                    c.err(
                        key,
                        format!(
                            "the default {key} name `{derived}` is longer than PostgreSQL's limit of {PG_MAX_IDENTIFIER} bytes; shorten the pipeline's `name` or set `{key}`"
                        ),
                    );
                }
                continue;
            }
            if key == "slot"
                && !value
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                c.err(
                    key,
                    format!(
                        "`{value}` is not a valid replication slot name; use lower-case letters, digits and `_`"
                    ),
                );
            } else if too_long {
                c.err(
                    key,
                    format!("is longer than PostgreSQL's limit of {PG_MAX_IDENTIFIER} bytes"),
                );
            }
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (n, t) in self.tables.iter().enumerate() {
            let field = format!("tables[{n}]");
            if t.is_empty() {
                c.err(&field, "must not be empty; write `schema.table`");
            } else if let Some(first) = seen.insert(t, n) {
                c.err(
                    &field,
                    format!("`{t}` is already listed as source.tables[{first}]"),
                );
            }
        }
        if self.snapshot_chunk_rows == 0 {
            c.err("snapshot_chunk_rows", "must be more than 0");
        }
        if !(1..=16).contains(&self.snapshot_parallelism) {
            c.err(
                "snapshot_parallelism",
                format!("must be from 1 to 16, not {}", self.snapshot_parallelism),
            );
        }
    }

    fn describe(&self) -> String {
        format!(
            "postgres {}@{}:{}/{} (slot {}, publication {})",
            self.user, self.host, self.port, self.database, self.slot, self.publication
        )
    }

    fn captured_tables(&self) -> Option<Vec<TableRef>> {
        if self.tables.is_empty() {
            return None;
        }
        Some(
            self.tables
                .iter()
                .map(|t| {
                    let (schema, table) = t.split_once('.').unwrap_or(("public", t));
                    TableRef {
                        connector: "postgresql".to_owned(),
                        database: self.database.clone(),
                        schema: schema.to_owned(),
                        table: table.to_owned(),
                    }
                })
                .collect(),
        )
    }

    fn build(&self, cx: &BuildContext) -> Result<Box<dyn Source>, StageError> {
        Ok(Box::new(PostgresSource::new(self.settings(cx))))
    }
}
