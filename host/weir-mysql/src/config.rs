//! `[source] kind = "mysql"` (or `"mariadb"`): the MySQL source's config
//! section, its validation and the source it builds.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use weir_connect::{BuildContext, Checker, Source, SourceComponent, TableRef};
use weir_core::StageError;

use crate::source::{ConnectParams, MysqlSource, SourceSettings};

/// `kind = "mysql"` or `"mariadb"`: capture from the row-based binlog.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlSourceConfig {
    /// Server host name or address.
    #[serde(default = "default_host")]
    pub host: String,
    /// Server port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// User to connect as; it needs `REPLICATION SLAVE`, `BINLOG MONITOR`
    /// (MariaDB 10.5 and later; `REPLICATION CLIENT` on MySQL) and `SELECT`
    /// on the captured tables.
    pub user: String,
    /// Password. Write `"${MYSQL_PASSWORD}"` to take it from the
    /// environment. Never logged or printed.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// Databases to capture, every table in them unless `tables` narrows
    /// it down.
    pub databases: Vec<String>,
    /// Tables to capture, as `database.table`; empty: every table of
    /// `databases`.
    #[serde(default)]
    pub tables: Vec<String>,
    /// The replica id this source registers with; no other replica of the
    /// server may use it. Default: derived from the pipeline name, stable
    /// across restarts.
    #[serde(default)]
    pub server_id: Option<u32>,
    /// Whether to copy the tables' existing rows before streaming changes
    /// (MariaDB: a consistent snapshot without a global lock).
    #[serde(default)]
    pub snapshot: SnapshotMode,
    /// Rows read per snapshot query, more than 0; each chunk ends with a
    /// checkpoint, where an interrupted snapshot resumes.
    #[serde(default = "default_snapshot_chunk_rows")]
    pub snapshot_chunk_rows: u64,
    /// Row changes the server logged under one of these server ids are not
    /// captured. The default skips what weir's MySQL sinks apply (under
    /// server id 1464158546, `WEIR`); `[]` captures everything.
    #[serde(default = "default_skip_server_ids")]
    pub skip_server_ids: Vec<u32>,
    /// Seconds between the server's heartbeats on an idle binlog.
    #[serde(default = "default_heartbeat_secs")]
    pub heartbeat_secs: u64,
}

fn default_host() -> String {
    "localhost".to_owned()
}

const fn default_port() -> u16 {
    3306
}

const fn default_snapshot_chunk_rows() -> u64 {
    10_000
}

const fn default_heartbeat_secs() -> u64 {
    5
}

/// Whether a pipeline copies existing rows before streaming changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotMode {
    /// Copy every captured table once, on the first start (events with
    /// `op = "r"`), then stream from the snapshot's binlog position.
    #[default]
    Initial,
    /// Stream changes only, from the binlog's end at the first start.
    Never,
}

/// The server id weir's MySQL sinks apply under by default (`WEIR` in
/// ASCII), and that MySQL sources skip by default: two pipelines in
/// opposite directions do not send changes back and forth.
pub const APPLY_SERVER_ID: u32 = 0x5745_4952;

fn default_skip_server_ids() -> Vec<u32> {
    vec![APPLY_SERVER_ID]
}

/// The replica id for a pipeline: a stable hash of its name, away from the
/// small ids servers are usually given.
pub fn derived_server_id(pipeline: &str) -> u32 {
    // FNV-1a: stable across Rust versions, unlike the std hasher.
    let mut hash: u32 = 0x811c_9dc5;
    for b in pipeline.bytes() {
        hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    (hash % 1_000_000_000) + 1_000_000
}

impl MysqlSourceConfig {
    /// The source's run-time settings.
    pub fn settings(&self, cx: &BuildContext) -> SourceSettings {
        SourceSettings {
            connect: ConnectParams {
                host: self.host.clone(),
                port: self.port,
                user: self.user.clone(),
                password: self.password.clone(),
            },
            databases: self.databases.clone(),
            tables: self.tables.clone(),
            server_id: self
                .server_id
                .unwrap_or_else(|| derived_server_id(&cx.pipeline)),
            skip_server_ids: self.skip_server_ids.clone(),
            heartbeat: Duration::from_secs(self.heartbeat_secs.max(1)),
            snapshot: self.snapshot == SnapshotMode::Initial,
            snapshot_chunk_rows: usize::try_from(self.snapshot_chunk_rows).unwrap_or(usize::MAX),
            max_batch_events: cx.max_batch_events,
            max_batch_bytes: cx.max_batch_bytes,
        }
    }
}

impl SourceComponent for MysqlSourceConfig {
    fn validate(&self, _pipeline: &str, c: &mut Checker) {
        if self.host.is_empty() {
            c.err("host", "must not be empty");
        }
        if self.port == 0 {
            c.err("port", "must be a port number from 1 to 65535");
        }
        if self.user.is_empty() {
            c.err("user", "must not be empty");
        }
        if self.databases.is_empty() {
            c.err(
                "databases",
                "name at least one database to capture, e.g. databases = [\"shop\"]",
            );
        }
        for (n, d) in self.databases.iter().enumerate() {
            if d.is_empty() {
                c.err(&format!("databases[{n}]"), "must not be empty");
            }
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (n, t) in self.tables.iter().enumerate() {
            let field = format!("tables[{n}]");
            match t.split_once('.') {
                Some((db, table)) if !db.is_empty() && !table.is_empty() => {
                    if !self.databases.iter().any(|d| d == db) {
                        c.err(
                            &field,
                            format!("`{t}` is in database `{db}`, which `databases` does not list"),
                        );
                    }
                }
                _ => c.err(&field, format!("`{t}` is not `database.table`")),
            }
            if let Some(first) = seen.insert(t, n) {
                c.err(
                    &field,
                    format!("`{t}` is already listed as source.tables[{first}]"),
                );
            }
        }
        if self.server_id == Some(0) {
            c.err(
                "server_id",
                "must be more than 0; leave it out for a default",
            );
        }
        if self.snapshot_chunk_rows == 0 {
            c.err("snapshot_chunk_rows", "must be more than 0");
        }
        if self.heartbeat_secs == 0 || self.heartbeat_secs > 4_294_967 {
            c.err("heartbeat_secs", "must be from 1 to 4294967 seconds");
        }
    }

    fn describe(&self) -> String {
        format!(
            "mysql {}@{}:{} (databases {})",
            self.user,
            self.host,
            self.port,
            self.databases.join(", ")
        )
    }

    fn captured_tables(&self) -> Option<Vec<TableRef>> {
        if self.tables.is_empty() {
            return None;
        }
        Some(
            self.tables
                .iter()
                .filter_map(|t| t.split_once('.'))
                .map(|(db, table)| TableRef {
                    connector: "mysql".to_owned(),
                    database: db.to_owned(),
                    schema: db.to_owned(),
                    table: table.to_owned(),
                })
                .collect(),
        )
    }

    fn build(&self, cx: &BuildContext) -> Result<Box<dyn Source>, StageError> {
        Ok(Box::new(MysqlSource::new(self.settings(cx))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_server_ids_are_stable_and_away_from_small_ids() {
        assert_eq!(derived_server_id("shop"), derived_server_id("shop"));
        assert_ne!(derived_server_id("shop"), derived_server_id("shop-eu"));
        assert!(derived_server_id("") >= 1_000_000);
    }
}
