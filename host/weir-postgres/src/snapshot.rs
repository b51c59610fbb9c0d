//! The initial snapshot: every captured table copied in chunks, as of the
//! moment the replication slot was created, so that streaming from the
//! slot's consistent point continues it with no gap and no duplicate.
//!
//! Workers (`snapshot_parallelism` connections) import the slot's exported
//! snapshot and take whole tables from a shared queue; each table is read in
//! primary-key order with keyset pagination (`WHERE (pk) > (last) ORDER BY
//! pk LIMIT n`), or, without a primary key, by ranges of heap pages
//! (`ctid`). Progress is recorded per table in the checkpoint after every
//! chunk, so a snapshot interrupted by a crash resumes after the last
//! completed chunk instead of starting over.
//!
//! The exported snapshot does not survive a crash. A resumed snapshot reads
//! the remaining chunks under a fresh snapshot, which may already hold
//! changes made after the consistent point; the stream then replays those
//! changes too, so a consumer applying events in order still ends with the
//! table's contents (see `docs/decisions/0009-snapshot-resume.md`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use tracing::{info, warn};
use weir_core::{ChangeEvent, Column, Name, Op, SourceInfo};

use crate::catalog::{TableInfo, key_literal};
use crate::error::PgError;
use crate::lsn::Lsn;
use crate::replication::{ConnectParams, quote_ident};
use crate::types::decode_text;

/// Snapshot progress, kept in the checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotState {
    /// Every table is copied.
    pub done: bool,
    /// Progress by `schema.table`.
    pub tables: BTreeMap<String, TableProgress>,
}

/// How far one table's copy got.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableProgress {
    pub done: bool,
    pub rows: u64,
    /// Primary-key values (as text) of the last row copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_key: Option<Vec<String>>,
    /// For tables without a primary key: the next heap page to copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page: Option<u64>,
}

/// One chunk copied by a worker.
#[derive(Debug)]
pub struct Chunk {
    pub table: String,
    pub events: Vec<ChangeEvent>,
    pub progress: TableProgress,
}

/// Settings of one snapshot run.
#[derive(Debug, Clone)]
pub struct SnapshotPlan {
    pub connect: ConnectParams,
    /// The slot's exported snapshot; `None` when resuming after a crash.
    pub snapshot_name: Option<String>,
    pub consistent_point: Lsn,
    pub chunk_rows: usize,
    pub parallelism: usize,
}

/// Copies every table not yet done in `state`, sending chunks to `chunks`.
/// Returns when all are copied, or with the first worker's error.
pub async fn copy_tables(
    plan: SnapshotPlan,
    tables: Vec<TableInfo>,
    state: &SnapshotState,
    chunks: mpsc::Sender<Chunk>,
) -> Result<(), PgError> {
    let queue: VecDeque<(TableInfo, TableProgress)> = tables
        .into_iter()
        .filter_map(|t| {
            let progress = state
                .tables
                .get(&t.qualified())
                .cloned()
                .unwrap_or_default();
            (!progress.done).then_some((t, progress))
        })
        .collect();
    if queue.is_empty() {
        return Ok(());
    }
    let workers = plan.parallelism.clamp(1, queue.len());
    let queue = Arc::new(Mutex::new(queue));
    let plan = Arc::new(plan);
    let mut handles = Vec::with_capacity(workers);
    for _ in 0..workers {
        let queue = Arc::clone(&queue);
        let plan = Arc::clone(&plan);
        let chunks = chunks.clone();
        handles.push(tokio::spawn(
            async move { worker(&plan, &queue, &chunks).await },
        ));
    }
    drop(chunks);
    let mut first_error = None;
    for h in handles {
        let result = h
            .await
            .unwrap_or_else(|e| Err(PgError::Setup(format!("a snapshot worker failed: {e}"))));
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

async fn worker(
    plan: &SnapshotPlan,
    queue: &Mutex<VecDeque<(TableInfo, TableProgress)>>,
    chunks: &mpsc::Sender<Chunk>,
) -> Result<(), PgError> {
    let (client, connection) = plan
        .connect
        .sql_config()
        .connect(NoTls)
        .await
        .map_err(PgError::sql("opening a snapshot connection"))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            warn!(error = %e, "Snapshot connection closed with an error.");
        }
    });
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(PgError::sql("starting the snapshot transaction"))?;
    if let Some(name) = &plan.snapshot_name {
        client
            .batch_execute(&format!("SET TRANSACTION SNAPSHOT '{name}'"))
            .await
            .map_err(PgError::sql("importing the slot's snapshot"))?;
    }
    loop {
        let next = queue.lock().expect("snapshot queue lock").pop_front();
        let Some((table, progress)) = next else {
            break;
        };
        copy_table(plan, &client, &table, progress, chunks).await?;
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(PgError::sql("ending the snapshot transaction"))?;
    Ok(())
}

async fn copy_table(
    plan: &SnapshotPlan,
    client: &Client,
    table: &TableInfo,
    mut progress: TableProgress,
    chunks: &mpsc::Sender<Chunk>,
) -> Result<(), PgError> {
    let columns: Vec<String> = table.columns.iter().map(|c| quote_ident(&c.name)).collect();
    let select = format!("SELECT {} FROM {}", columns.join(", "), table.quoted());
    let context = || format!("copying table {}", table.qualified());
    let total_pages = if table.primary_key.is_empty() {
        let row = client
            .query_one(
                &format!(
                    "SELECT (pg_relation_size('{}') / current_setting('block_size')::int)::int8",
                    table.quoted().replace('\'', "''")
                ),
                &[],
            )
            .await
            .map_err(PgError::sql(context()))?;
        row.get::<_, i64>(0) as u64
    } else {
        0
    };
    // Without a primary key, chunk by pages: aim for `chunk_rows` rows
    // assuming ~100 rows per 8 KiB page, at least one page.
    let pages_per_chunk = (plan.chunk_rows as u64 / 100).max(1);
    loop {
        let sql = if table.primary_key.is_empty() {
            let start = progress.next_page.unwrap_or(0);
            if start >= total_pages {
                progress.done = true;
                send(chunks, table, Vec::new(), &progress).await?;
                return Ok(());
            }
            let end = start + pages_per_chunk;
            progress.next_page = Some(end);
            format!("{select} WHERE ctid >= '({start},0)'::tid AND ctid < '({end},0)'::tid")
        } else {
            let pk: Vec<String> = table
                .primary_key
                .iter()
                .map(|&i| quote_ident(&table.columns[i].name))
                .collect();
            let pk = format!("({})", pk.join(", "));
            let filter = match &progress.after_key {
                Some(after) => format!(" WHERE {pk} > {}", key_literal(after)),
                None => String::new(),
            };
            format!("{select}{filter} ORDER BY {pk} LIMIT {}", plan.chunk_rows)
        };
        let messages = client
            .simple_query(&sql)
            .await
            .map_err(PgError::sql(context()))?;
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        // The same for every row of the chunk: built once, cloned per row
        // (a clone of a `Name` never allocates; making one may).
        let names: Vec<Name> = table
            .columns
            .iter()
            .map(|c| c.name.as_str().into())
            .collect();
        let source = SourceInfo {
            connector: Name::new_static("postgresql"),
            database: plan.connect.database.as_str().into(),
            schema: table.schema.as_str().into(),
            table: table.name.as_str().into(),
            position: smol_str::format_smolstr!("{}", plan.consistent_point),
            txid: None,
            commit_time_us: now_us,
            origin: None,
            plugins: None,
        };
        let mut events = Vec::with_capacity(plan.chunk_rows.min(65_536));
        let mut last_key = None;
        for m in &messages {
            let SimpleQueryMessage::Row(row) = m else {
                continue;
            };
            let mut after = Vec::with_capacity(table.columns.len());
            for (i, (c, name)) in table.columns.iter().zip(&names).enumerate() {
                let value = match row.get(i) {
                    None => weir_core::Value::Null,
                    Some(text) => decode_text(c.ty, text)
                        .unwrap_or_else(|_| weir_core::Value::Text(text.to_owned())),
                };
                after.push(Column::new(name.clone(), value));
            }
            if !table.primary_key.is_empty() {
                last_key = Some(
                    table
                        .primary_key
                        .iter()
                        .map(|&i| row.get(i).unwrap_or_default().to_owned())
                        .collect::<Vec<_>>(),
                );
            }
            let key = table
                .primary_key
                .iter()
                .map(|&i| after[i].clone())
                .collect();
            events.push(ChangeEvent {
                op: Op::Read,
                source: source.clone(),
                key,
                before: None,
                after: Some(after),
            });
        }
        progress.rows += events.len() as u64;
        if !table.primary_key.is_empty() {
            if events.len() < plan.chunk_rows {
                progress.done = true;
            }
            if last_key.is_some() {
                progress.after_key = last_key;
            }
        }
        let done = progress.done;
        send(chunks, table, events, &progress).await?;
        if done {
            return Ok(());
        }
    }
}

async fn send(
    chunks: &mpsc::Sender<Chunk>,
    table: &TableInfo,
    events: Vec<ChangeEvent>,
    progress: &TableProgress,
) -> Result<(), PgError> {
    chunks
        .send(Chunk {
            table: table.qualified(),
            events,
            progress: progress.clone(),
        })
        .await
        .map_err(|_| PgError::Setup("the pipeline stopped during the snapshot".into()))
}

/// Logs snapshot progress at most every few seconds.
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    last_log: Instant,
    tables_total: usize,
    rows: u64,
}

impl Progress {
    pub fn new(tables_total: usize) -> Self {
        let now = Instant::now();
        Progress {
            started: now,
            last_log: now,
            tables_total,
            rows: 0,
        }
    }

    /// Counts a chunk and logs if it is time.
    pub fn chunk(&mut self, rows: usize, state: &SnapshotState) {
        self.rows += rows as u64;
        if self.last_log.elapsed() >= Duration::from_secs(2) {
            self.last_log = Instant::now();
            self.log(state, "Snapshot in progress.");
        }
    }

    pub fn log(&self, state: &SnapshotState, message: &str) {
        let done = state.tables.values().filter(|t| t.done).count();
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        info!(
            tables_done = done,
            tables = self.tables_total,
            rows = self.rows,
            rows_per_sec = (self.rows as f64 / secs) as u64,
            "{message}"
        );
    }
}
