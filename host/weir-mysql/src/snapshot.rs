//! The initial snapshot on MariaDB, without a global lock: one
//! `START TRANSACTION WITH CONSISTENT SNAPSHOT` reads every captured table
//! as of one binlog position (`binlog_snapshot_file` and
//! `binlog_snapshot_position`, which MariaDB reports for exactly that
//! snapshot), and the stream then starts at that position: no gap, no
//! duplicate.
//!
//! The whole snapshot is one unit for checkpoints: its batches carry no
//! position until the last, which carries the snapshot's binlog position.
//! A crash during the snapshot therefore leaves no checkpoint, the sinks
//! cut back what they wrote, and the next start copies the tables again.
//! (Resuming a MySQL snapshot chunk by chunk, as the PostgreSQL source
//! does, is future work.)
//!
//! MySQL reports no position for a snapshot; there a global read lock is
//! held while the transaction starts and the position is read (as
//! Debezium does), then released before any row is read.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use tracing::info;
use weir_connect::source::SnapshotProgress;
use weir_connect::{Phase, SourceChannels};
use weir_core::{ChangeBatch, ChangeEvent, Column as EventColumn, Op, SourceInfo};

use crate::checks;
use crate::error::{ER_SPECIFIC_ACCESS_DENIED, MysqlError};
use crate::position::BinlogPosition;
use crate::source::SourceSettings;
use crate::values;

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

/// Copies `tables` as of one consistent point and returns that point's
/// binlog position, or `None` if shutdown interrupted it.
pub async fn copy_tables(
    conn: &mut Conn,
    address: &str,
    settings: &SourceSettings,
    tables: &[(String, String)],
    mariadb: bool,
    channels: &mut SourceChannels,
) -> Result<Option<BinlogPosition>, MysqlError> {
    let err = |context: &str| MysqlError::client(address, context.to_owned());
    conn.query_drop(
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; \
         SET time_zone = '+00:00'; SET NAMES utf8mb4",
    )
    .await
    .map_err(err("preparing the snapshot session"))?;
    let point = if mariadb {
        mariadb_snapshot(conn, address).await?
    } else {
        mysql_snapshot(conn, address, &settings.connect.user).await?
    };
    info!(tables = tables.len(), at = %point, "Snapshot started.");
    let started = Instant::now();
    let commit_time_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let mut progress = SnapshotProgress {
        tables_done: 0,
        tables_total: tables.len(),
        rows: 0,
    };
    channels.report(|p| {
        p.phase = Phase::Snapshot;
        p.snapshot = Some(progress.clone());
    });
    let mut batch = Vec::new();
    let mut bytes = 0;
    for (database, table) in tables {
        let key: Vec<String> = conn
            .exec(
                "SELECT column_name FROM information_schema.key_column_usage \
                 WHERE table_schema = ? AND table_name = ? AND constraint_name = 'PRIMARY' \
                 ORDER BY ordinal_position",
                (database, table),
            )
            .await
            .map_err(err("reading a primary key"))?;
        let source = SourceInfo {
            connector: "mysql".into(),
            database: database.clone(),
            schema: database.clone(),
            table: table.clone(),
            position: point.to_string(),
            txid: None,
            commit_time_us,
            origin: None,
            plugins: None,
        };
        let sql = format!(
            "SELECT * FROM `{}`.`{}`",
            database.replace('`', "``"),
            table.replace('`', "``")
        );
        // The binary protocol: typed values, as the binlog gives them.
        let mut rows = conn
            .exec_iter(sql, ())
            .await
            .map_err(err("reading a table for the snapshot"))?;
        // The key's columns in key order, as the stream's events have them.
        let key_columns: Vec<usize> = key
            .iter()
            .filter_map(|k| rows.columns_ref().iter().position(|c| c.name_str() == *k))
            .collect();
        while let Some(row) = rows
            .next()
            .await
            .map_err(err("reading a table for the snapshot"))?
        {
            let after: Vec<EventColumn> = row
                .columns_ref()
                .iter()
                .enumerate()
                .map(|(i, column)| {
                    let name = column.name_str().into_owned();
                    let value = match row.as_ref(i) {
                        Some(v) => {
                            values::decode_value(column, v).map_err(|e| MysqlError::Decode {
                                address: address.to_owned(),
                                reason: format!("{database}.{table}.{name} in the snapshot: {e}"),
                            })?
                        }
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
            let event = ChangeEvent {
                op: Op::Read,
                source: source.clone(),
                key,
                before: None,
                after: Some(after),
            };
            bytes += event.approx_bytes();
            batch.push(event);
            progress.rows += 1;
            if batch.len() >= settings.max_batch_events || bytes >= settings.max_batch_bytes {
                let events = std::mem::take(&mut batch);
                let chunk = ChangeBatch {
                    events,
                    resume: None,
                    bytes: std::mem::take(&mut bytes),
                };
                tokio::select! {
                    sent = channels.out.send(chunk) => {
                        sent.map_err(|_| MysqlError::Setup("the pipeline stopped".into()))?;
                    }
                    _ = channels.shutdown.changed() => return Ok(None),
                }
                channels.report(|p| p.snapshot = Some(progress.clone()));
            }
        }
        drop(rows);
        progress.tables_done += 1;
        channels.report(|p| p.snapshot = Some(progress.clone()));
        info!(table = %format!("{database}.{table}"), rows = progress.rows, "Table copied.");
    }
    conn.query_drop("COMMIT")
        .await
        .map_err(err("ending the snapshot"))?;
    // The snapshot's last batch carries the position where the stream
    // starts: the first checkpoint.
    let last = ChangeBatch {
        events: batch,
        resume: Some(point.to_json()),
        bytes,
    };
    channels
        .out
        .send(last)
        .await
        .map_err(|_| MysqlError::Setup("the pipeline stopped".into()))?;
    info!(
        rows = progress.rows,
        seconds = started.elapsed().as_secs_f64(),
        "Snapshot complete."
    );
    Ok(Some(point))
}
