//! The initial snapshot on MariaDB, without a global lock: one
//! `START TRANSACTION WITH CONSISTENT SNAPSHOT` reads every captured table
//! as of one binlog position (`binlog_snapshot_file` and
//! `binlog_snapshot_position`, which MariaDB reports for exactly that
//! snapshot), and the stream then starts at that position: no gap, no
//! duplicate.
//!
//! Tables are read in chunks of `snapshot_chunk_rows` rows in primary-key
//! order (keyset pagination, each chunk an index range), and each chunk
//! ends with a checkpoint that holds the snapshot's position and how far
//! each table got. A snapshot interrupted by a crash or a stop resumes
//! after the last checkpointed chunk, under a fresh consistent snapshot,
//! and the stream still starts at the first snapshot's position
//! (decision 0009, as for PostgreSQL: rows read late may already show
//! changes the stream then replays). A table without a primary key has no
//! order to resume in: it is one unit, copied again if interrupted.
//!
//! Chunks are read one after another on one connection: MariaDB cannot
//! share a snapshot between connections, so parallel readers would need a
//! global read lock to line up their snapshots.
//!
//! MySQL reports no position for a snapshot; there a global read lock is
//! held while the transaction starts and the position is read (as
//! Debezium does), then released before any row is read.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value as MyValue};
use serde::{Deserialize, Serialize};
use tracing::info;
use weir_connect::{Phase, SnapshotProgress, SourceChannels, TableSnapshot};
use weir_core::{ChangeBatch, ChangeEvent, Column as EventColumn, Name, Op, SourceInfo};

use crate::checks::{self, ServerInfo};
use crate::error::{ER_SPECIFIC_ACCESS_DENIED, MysqlError};
use crate::position::BinlogPosition;
use crate::source::SourceSettings;
use crate::values;

/// How far an initial snapshot got; part of each checkpoint taken during
/// it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotState {
    /// Progress by `database.table`; a table not here is not started.
    pub tables: BTreeMap<String, TableProgress>,
}

/// How far one table's copy got.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableProgress {
    pub done: bool,
    pub rows: u64,
    /// The primary key of the last row copied, in key order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_key: Option<Vec<KeyValue>>,
}

/// A key value as the server sent it, kept to be sent back as a query
/// parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyValue {
    Int(i64),
    Uint(u64),
    Float(f32),
    Double(f64),
    /// Hex.
    Bytes(String),
    /// Year, month, day, hour, minute, second, microsecond.
    Date(u16, u8, u8, u8, u8, u8, u32),
    /// Negative, days, hours, minutes, seconds, microseconds.
    Time(bool, u32, u8, u8, u8, u32),
}

impl KeyValue {
    /// `None` for NULL, which no primary key holds.
    fn of(value: &MyValue) -> Option<KeyValue> {
        Some(match value {
            MyValue::NULL => return None,
            MyValue::Int(i) => KeyValue::Int(*i),
            MyValue::UInt(u) => KeyValue::Uint(*u),
            MyValue::Float(f) => KeyValue::Float(*f),
            MyValue::Double(d) => KeyValue::Double(*d),
            MyValue::Bytes(b) => KeyValue::Bytes(hex::encode(b)),
            MyValue::Date(y, mo, d, h, mi, s, us) => KeyValue::Date(*y, *mo, *d, *h, *mi, *s, *us),
            MyValue::Time(neg, d, h, mi, s, us) => KeyValue::Time(*neg, *d, *h, *mi, *s, *us),
        })
    }

    fn value(&self) -> Result<MyValue, String> {
        Ok(match self {
            KeyValue::Int(i) => MyValue::Int(*i),
            KeyValue::Uint(u) => MyValue::UInt(*u),
            KeyValue::Float(f) => MyValue::Float(*f),
            KeyValue::Double(d) => MyValue::Double(*d),
            KeyValue::Bytes(h) => MyValue::Bytes(hex::decode(h).map_err(|e| e.to_string())?),
            KeyValue::Date(y, mo, d, h, mi, s, us) => MyValue::Date(*y, *mo, *d, *h, *mi, *s, *us),
            KeyValue::Time(neg, d, h, mi, s, us) => MyValue::Time(*neg, *d, *h, *mi, *s, *us),
        })
    }
}

/// Starts a consistent-snapshot transaction on MariaDB without a lock: the
/// server reports the binlog position of exactly that snapshot.
async fn mariadb_snapshot(conn: &mut Conn, address: &str) -> Result<BinlogPosition, MysqlError> {
    let err = |context: &str| MysqlError::client(address, context.to_owned());
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await
        .map_err(err("starting the snapshot"))?;
    let status: Vec<(String, String)> = conn
        .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await
        .map_err(err("reading the snapshot's binlog position"))?;
    let value = |name: &str| {
        status
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    match (
        value("binlog_snapshot_file"),
        value("binlog_snapshot_position").and_then(|p| p.parse().ok()),
    ) {
        (Some(file), Some(pos)) => Ok(BinlogPosition::new(file, pos)),
        _ => Err(MysqlError::Setup(format!(
            "MariaDB at {address} reports no binlog position for a consistent snapshot (`binlog_snapshot_file`); is binary logging on?"
        ))),
    }
}

/// Starts a consistent-snapshot transaction on MySQL, which reports no
/// snapshot position: writes are held by a global read lock only while the
/// transaction starts and the binlog position (and GTID set) is read.
/// Needs the `RELOAD` privilege. Untested here (no MySQL server).
async fn mysql_snapshot(
    conn: &mut Conn,
    address: &str,
    user: &str,
) -> Result<BinlogPosition, MysqlError> {
    let err = |context: &str| MysqlError::client(address, context.to_owned());
    match conn.query_drop("FLUSH TABLES WITH READ LOCK").await {
        Err(mysql_async::Error::Server(e)) if e.code == ER_SPECIFIC_ACCESS_DENIED => {
            return Err(MysqlError::Setup(format!(
                "user `{user}` may not take the brief global read lock a snapshot on MySQL at {address} needs: run GRANT RELOAD ON *.* TO '{user}'@'%', or set snapshot = \"never\""
            )));
        }
        other => other.map_err(err("locking tables for the snapshot's start"))?,
    }
    let started = async {
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            .await
            .map_err(err("starting the snapshot"))?;
        let status: Option<Row> = conn
            .query_first("SHOW MASTER STATUS")
            .await
            .map_err(err("reading the snapshot's binlog position"))?;
        status.as_ref().and_then(checks::master_status).ok_or_else(|| {
            MysqlError::Setup(format!(
                "MySQL at {address} reports no binlog position (SHOW MASTER STATUS is empty); is binary logging on?"
            ))
        })
    }
    .await;
    conn.query_drop("UNLOCK TABLES")
        .await
        .map_err(err("unlocking tables after the snapshot's start"))?;
    started
}

/// Copies `info`'s tables as of one consistent point, or goes on with the
/// snapshot `resume` left, and returns the position where the stream
/// starts, or `None` if shutdown interrupted it.
pub async fn copy_tables(
    conn: &mut Conn,
    address: &str,
    settings: &SourceSettings,
    info: &ServerInfo,
    resume: Option<BinlogPosition>,
    channels: &mut SourceChannels,
) -> Result<Option<BinlogPosition>, MysqlError> {
    let err = |context: &str| MysqlError::client(address, context.to_owned());
    conn.query_drop(
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; \
         SET time_zone = '+00:00'; SET NAMES utf8mb4",
    )
    .await
    .map_err(err("preparing the snapshot session"))?;
    let (mut point, mut state) = match resume {
        Some(mut point) => {
            // A fresh snapshot for what is left; the stream starts where
            // the first one was taken.
            conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                .await
                .map_err(err("starting the snapshot"))?;
            let state = point.snapshot.take().unwrap_or_default();
            (point, state)
        }
        None if info.mariadb => (
            mariadb_snapshot(conn, address).await?,
            SnapshotState::default(),
        ),
        None => (
            mysql_snapshot(conn, address, &settings.connect.user).await?,
            SnapshotState::default(),
        ),
    };
    if info.mariadb && point.gtid.is_none() {
        point.gtid = checks::mariadb_gtid_at(conn, address, &point).await?;
    }
    let tables = &info.tables;
    let resumed = state.tables.values().filter(|t| t.done).count();
    info!(tables = tables.len(), done = resumed, at = %point, "Snapshot started.");
    let started = Instant::now();
    let commit_time_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let estimates = estimated_rows(conn, tables).await;
    let progress = |state: &SnapshotState| {
        SnapshotProgress::of(
            tables
                .iter()
                .map(|(database, table)| {
                    let name = format!("{database}.{table}");
                    let t = state.tables.get(&name).cloned().unwrap_or_default();
                    TableSnapshot {
                        estimated_rows: estimates.get(&name).copied(),
                        table: name,
                        rows: t.rows,
                        done: t.done,
                    }
                })
                .collect(),
        )
    };
    channels.report(|p| {
        p.phase = Phase::Snapshot;
        p.snapshot = Some(progress(&state));
    });
    let mut out = Chunker::default();
    for (database, table) in tables {
        let name = format!("{database}.{table}");
        let mut table_state = state.tables.get(&name).cloned().unwrap_or_default();
        if table_state.done {
            continue;
        }
        let key: Vec<String> = conn
            .exec(
                "SELECT column_name FROM information_schema.key_column_usage \
                 WHERE table_schema = ? AND table_name = ? AND constraint_name = 'PRIMARY' \
                 ORDER BY ordinal_position",
                (database, table),
            )
            .await
            .map_err(err("reading a primary key"))?;
        if key.is_empty() {
            // No order to resume in: the table is one unit.
            table_state = TableProgress::default();
        }
        let source = SourceInfo {
            connector: Name::new_static("mysql"),
            database: database.as_str().into(),
            schema: database.as_str().into(),
            table: table.as_str().into(),
            position: smol_str::format_smolstr!("{point}"),
            txid: None,
            commit_time_us,
            origin: None,
            plugins: None,
        };
        let quote = |n: &str| format!("`{}`", n.replace('`', "``"));
        let from = format!("{}.{}", quote(database), quote(table));
        let order = key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ");
        loop {
            // Keyset pagination: the rows after the last key copied, in
            // key order; a table without a key in one read.
            let (sql, params) = if key.is_empty() {
                (format!("SELECT * FROM {from}"), Vec::new())
            } else {
                let after = match &table_state.after_key {
                    Some(after) => after
                        .iter()
                        .map(KeyValue::value)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| {
                            MysqlError::Setup(format!(
                                "the checkpoint's snapshot key for {name} does not read ({e}); remove the pipeline's state directory to start over"
                            ))
                        })?,
                    None => Vec::new(),
                };
                let (filter, params) = after_filter(&key, after);
                (
                    format!(
                        "SELECT * FROM {from} {filter} ORDER BY {order} LIMIT {}",
                        settings.snapshot_chunk_rows
                    ),
                    params,
                )
            };
            // The binary protocol: typed values, as the binlog gives them.
            let mut rows = conn
                .exec_iter(sql, params)
                .await
                .map_err(err("reading a table for the snapshot"))?;
            // The key's columns in key order, as the stream's events have them.
            let key_columns: Vec<usize> = key
                .iter()
                .filter_map(|k| rows.columns_ref().iter().position(|c| c.name_str() == *k))
                .collect();
            // Column names once per chunk; a clone of a `Name` never
            // allocates, making one from a long name does.
            let names: Vec<Name> = rows
                .columns_ref()
                .iter()
                .map(|c| Name::from(c.name_str().as_ref()))
                .collect();
            let mut read = 0;
            let mut last_key = None;
            while let Some(row) = rows
                .next()
                .await
                .map_err(err("reading a table for the snapshot"))?
            {
                read += 1;
                let event = snapshot_event(&row, &names, &source, &key_columns, address)?;
                if !key_columns.is_empty() {
                    last_key = Some(
                        key_columns
                            .iter()
                            .map(|i| row.as_ref(*i).and_then(KeyValue::of))
                            .collect::<Option<Vec<_>>>(),
                    );
                }
                table_state.rows += 1;
                if let Some(full) = out.push(event, settings)
                    && !send(channels, full).await?
                {
                    return Ok(None);
                }
            }
            drop(rows);
            if let Some(last) = last_key {
                let last = last.ok_or_else(|| MysqlError::Decode {
                    address: address.to_owned(),
                    reason: format!("{name}: a NULL in the primary key"),
                })?;
                table_state.after_key = Some(last);
            }
            let more = !key.is_empty() && read == settings.snapshot_chunk_rows;
            table_state.done = !more;
            if table_state.done {
                table_state.after_key = None;
            }
            // Each chunk ends with a checkpoint (the last one is the
            // stream's start, below).
            state.tables.insert(name.clone(), table_state.clone());
            let last_table = tables.last() == Some(&(database.clone(), table.clone()));
            if !(table_state.done && last_table) {
                let mut resume = point.clone();
                resume.snapshot = Some(state.clone());
                if !send(channels, out.take(Some(resume))).await? {
                    return Ok(None);
                }
                channels.report(|p| p.snapshot = Some(progress(&state)));
            }
            if !more {
                break;
            }
        }
        info!(table = %name, rows = table_state.rows, "Table copied.");
    }
    conn.query_drop("COMMIT")
        .await
        .map_err(err("ending the snapshot"))?;
    // The snapshot's last batch carries the position where the stream
    // starts: the first checkpoint without snapshot progress.
    if !send(channels, out.take(Some(point.clone()))).await? {
        return Ok(None);
    }
    let progress = progress(&state);
    channels.report(|p| p.snapshot = Some(progress.clone()));
    info!(
        rows = progress.rows,
        seconds = started.elapsed().as_secs_f64(),
        "Snapshot complete."
    );
    Ok(Some(point))
}

/// The `WHERE` clause for the rows after `after` in the order of `key`
/// (`a > ? OR (a = ? AND b > ?)`, which the server reads as an index
/// range), and its parameters; empty for the first chunk.
fn after_filter(key: &[String], after: Vec<MyValue>) -> (String, Vec<MyValue>) {
    if after.is_empty() {
        return (String::new(), Vec::new());
    }
    let quote = |n: &str| format!("`{}`", n.replace('`', "``"));
    let mut terms = Vec::new();
    let mut params = Vec::new();
    for i in 0..key.len() {
        let mut term: Vec<String> = key[..i]
            .iter()
            .map(|k| format!("{} = ?", quote(k)))
            .collect();
        term.push(format!("{} > ?", quote(&key[i])));
        params.extend(after[..=i].iter().cloned());
        terms.push(format!("({})", term.join(" AND ")));
    }
    (format!("WHERE {}", terms.join(" OR ")), params)
}

/// One snapshot row as an `r` event; `names` are its columns' names.
fn snapshot_event(
    row: &Row,
    names: &[Name],
    source: &SourceInfo,
    key_columns: &[usize],
    address: &str,
) -> Result<ChangeEvent, MysqlError> {
    let after: Vec<EventColumn> = row
        .columns_ref()
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let name = names[i].clone();
            let value = match row.as_ref(i) {
                Some(v) => values::decode_value(column, v).map_err(|e| MysqlError::Decode {
                    address: address.to_owned(),
                    reason: format!(
                        "{}.{}.{name} in the snapshot: {e}",
                        source.database, source.table
                    ),
                })?,
                None => weir_core::Value::Null,
            };
            Ok(EventColumn::new(name, value))
        })
        .collect::<Result<_, MysqlError>>()?;
    let key = if key_columns.is_empty() {
        after.clone()
    } else {
        key_columns.iter().map(|i| after[*i].clone()).collect()
    };
    Ok(ChangeEvent {
        op: Op::Read,
        source: source.clone(),
        key,
        before: None,
        after: Some(after),
    })
}

/// Snapshot events gathered into batches.
#[derive(Default)]
struct Chunker {
    events: Vec<ChangeEvent>,
    bytes: usize,
}

impl Chunker {
    /// Adds an event; returns a full batch (without a position) to hand on.
    fn push(&mut self, event: ChangeEvent, settings: &SourceSettings) -> Option<ChangeBatch> {
        self.bytes += event.approx_bytes();
        self.events.push(event);
        (self.events.len() >= settings.max_batch_events || self.bytes >= settings.max_batch_bytes)
            .then(|| self.take(None))
    }

    /// What is gathered, as a batch ending at `resume`.
    fn take(&mut self, resume: Option<BinlogPosition>) -> ChangeBatch {
        ChangeBatch {
            events: std::mem::take(&mut self.events),
            resume: resume.map(|r| r.to_json()),
            bytes: std::mem::take(&mut self.bytes),
        }
    }
}

/// Hands a batch on; `false` if shutdown came first
/// ([`SourceChannels::send_or_stop`]).
async fn send(channels: &mut SourceChannels, batch: ChangeBatch) -> Result<bool, MysqlError> {
    channels
        .send_or_stop(batch)
        .await
        .map_err(|_| MysqlError::Setup("the pipeline stopped".into()))
}

/// InnoDB's row estimate (`information_schema.TABLES.TABLE_ROWS`) per
/// `database.table`, for snapshot progress, in one query per database. A
/// failed query only costs the estimates.
async fn estimated_rows(conn: &mut Conn, tables: &[(String, String)]) -> BTreeMap<String, u64> {
    let wanted: std::collections::BTreeSet<String> = tables
        .iter()
        .map(|(database, table)| format!("{database}.{table}"))
        .collect();
    let databases: std::collections::BTreeSet<&str> = tables
        .iter()
        .map(|(database, _)| database.as_str())
        .collect();
    let mut estimates = BTreeMap::new();
    for database in databases {
        let rows: Result<Vec<(String, Option<u64>)>, _> = conn
            .exec(
                "SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = ?",
                (database,),
            )
            .await;
        match rows {
            Ok(rows) => {
                for (table, rows) in rows {
                    let name = format!("{database}.{table}");
                    if let Some(n) = rows
                        && wanted.contains(&name)
                    {
                        estimates.insert(name, n);
                    }
                }
            }
            Err(e) => tracing::debug!(database, error = %e, "No row estimates."),
        }
    }
    estimates
}
