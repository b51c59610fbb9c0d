//! Turns decoded pgoutput messages into change events, whole transactions
//! at a time.
//!
//! The assembler is pure (no I/O): the source feeds it messages and drains
//! [`Assembler::ready`]. A transaction sent in one piece (protocol v1, or v2
//! below the server's `logical_decoding_work_mem`) is already committed when
//! the server sends it, so its events are ready as they arrive and may leave
//! in chunks. A streamed in-progress transaction (v2) may still abort, so
//! its events are held until `StreamCommit` and dropped on `StreamAbort`
//! (of the whole transaction or of one subtransaction).
//!
//! Transactions that committed at or before the resume point (delivered
//! before a restart) are skipped, so a replay from an older slot position
//! duplicates nothing.

use std::collections::HashMap;

use weir_core::{ChangeEvent, Column, Name, Op, Row, SourceInfo, Value};

use crate::lsn::Lsn;
use crate::pgoutput::{Message, OldTuple, Relation, Tuple, TupleValue};
use crate::types::{PgType, decode_text};

/// What the assembler knows about a relation: the Relation message plus the
/// decoded types and the key columns resolved from the catalog.
#[derive(Debug, Clone)]
pub struct RelationInfo {
    pub schema: Name,
    pub table: Name,
    pub columns: Vec<(Name, PgType)>,
    /// Indexes of the event key's columns (the primary key, else the replica
    /// identity columns).
    pub key: Vec<usize>,
    /// Indexes of the replica identity columns, as the server flags them.
    pub identity: Vec<usize>,
}

impl RelationInfo {
    /// Builds the info from a Relation message; `types` are the decoders of
    /// its columns in order, `primary_key` the primary-key column names.
    pub fn new(rel: &Relation, types: Vec<PgType>, primary_key: &[String]) -> Self {
        let identity: Vec<usize> = rel
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.key)
            .map(|(i, _)| i)
            .collect();
        let mut key: Vec<usize> = primary_key
            .iter()
            .filter_map(|k| rel.columns.iter().position(|c| &c.name == k))
            .collect();
        if key.is_empty() {
            key.clone_from(&identity);
        }
        RelationInfo {
            schema: rel.namespace.as_str().into(),
            table: rel.name.as_str().into(),
            columns: rel
                .columns
                .iter()
                .zip(types)
                .map(|(c, t)| (c.name.as_str().into(), t))
                .collect(),
            key,
            identity,
        }
    }
}

/// A change message that refers to no known relation or does not fit it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssembleError {
    #[error("change for relation {0}, which the server never described")]
    UnknownRelation(u32),
    #[error("row of {table} has {got} values, but the relation has {want} columns")]
    ColumnCount {
        table: String,
        got: usize,
        want: usize,
    },
    #[error("{0} outside a transaction")]
    OutsideTransaction(&'static str),
}

#[derive(Debug)]
struct OpenTx {
    /// The transaction id, as events carry it.
    xid: Name,
    commit_time_us: i64,
    origin: Option<Name>,
    skip: bool,
    /// From a skipped origin: its changes are dropped, its commit still
    /// moves the position on.
    filtered: bool,
}

#[derive(Debug, Default)]
struct StreamedTx {
    /// Events with the (sub)transaction that made them.
    events: Vec<(u32, ChangeEvent)>,
    origin: Option<Name>,
    filtered: bool,
}

/// See the module docs.
#[derive(Debug)]
pub struct Assembler {
    database: Name,
    relations: HashMap<u32, RelationInfo>,
    tx: Option<OpenTx>,
    streamed: HashMap<u32, StreamedTx>,
    stream_xid: Option<u32>,
    /// Transactions whose commit record lies before this were delivered.
    resume: Lsn,
    ready: Vec<ChangeEvent>,
    /// Approximate bytes of `ready`.
    ready_bytes: usize,
    /// `ready[..committed]` is made of whole transactions.
    committed: usize,
    last_commit: Option<Lsn>,
    /// Replication origins whose transactions are dropped.
    skip_origins: Vec<wildmatch::WildMatch>,
}

impl Assembler {
    /// Drops the changes of transactions whose replication origin matches
    /// one of `globs` (`*` any run of characters, `?` one): changes another
    /// weir pipeline applied, in active-active replication.
    pub fn skip_origins(mut self, globs: &[String]) -> Self {
        self.skip_origins = globs.iter().map(|g| wildmatch::WildMatch::new(g)).collect();
        self
    }

    fn skipped(&self, origin: &str) -> bool {
        self.skip_origins.iter().any(|g| g.matches(origin))
    }

    /// `resume` is the end of the last transaction already delivered.
    pub fn new(database: impl Into<Name>, resume: Lsn) -> Self {
        Assembler {
            database: database.into(),
            relations: HashMap::new(),
            tx: None,
            streamed: HashMap::new(),
            stream_xid: None,
            resume,
            ready: Vec::new(),
            ready_bytes: 0,
            committed: 0,
            last_commit: None,
            skip_origins: Vec::new(),
        }
    }

    /// Registers (or replaces, after DDL) a relation.
    pub fn add_relation(&mut self, oid: u32, info: RelationInfo) {
        self.relations.insert(oid, info);
    }

    /// Whether a transaction is open (between Begin and Commit, or streamed
    /// and not yet committed or aborted).
    pub fn in_transaction(&self) -> bool {
        self.tx.is_some() || !self.streamed.is_empty()
    }

    /// Whether a whole transaction is ready to leave.
    pub fn has_committed(&self) -> bool {
        self.last_commit.is_some()
    }

    /// Events ready to leave, oldest first.
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// Approximate in-memory bytes of the ready events.
    pub fn ready_bytes(&self) -> usize {
        self.ready_bytes
    }

    /// Takes the ready events that form whole transactions, with their
    /// approximate size and the end LSN of the last of them; `None` if no
    /// transaction completed.
    pub fn take_committed(&mut self) -> Option<(Vec<ChangeEvent>, usize, Lsn)> {
        let lsn = self.last_commit.take()?;
        let rest = self.ready.split_off(self.committed);
        let events = std::mem::replace(&mut self.ready, rest);
        self.committed = 0;
        let rest_bytes = self.ready.iter().map(ChangeEvent::approx_bytes).sum();
        let bytes = self.ready_bytes.saturating_sub(rest_bytes);
        self.ready_bytes = rest_bytes;
        Some((events, bytes, lsn))
    }

    /// Takes every ready event, including the first part of a transaction
    /// still being received, and the end LSN if they end exactly at a
    /// commit, with their approximate size. Used when a transaction is too
    /// large for one batch.
    pub fn take_all(&mut self) -> (Vec<ChangeEvent>, usize, Option<Lsn>) {
        let whole = self.committed == self.ready.len();
        let lsn = self.last_commit.take();
        self.committed = 0;
        let bytes = std::mem::take(&mut self.ready_bytes);
        (
            std::mem::take(&mut self.ready),
            bytes,
            lsn.filter(|_| whole),
        )
    }

    /// Applies one message received at `wal_start`.
    pub fn apply(&mut self, msg: Message, wal_start: Lsn) -> Result<(), AssembleError> {
        match msg {
            Message::Begin {
                final_lsn,
                commit_time_us,
                xid,
            } => {
                self.tx = Some(OpenTx {
                    xid: smol_str::format_smolstr!("{xid}"),
                    commit_time_us,
                    origin: None,
                    skip: Lsn(final_lsn) < self.resume,
                    filtered: false,
                });
            }
            Message::Commit { end_lsn, .. } => {
                let tx = self
                    .tx
                    .take()
                    .ok_or(AssembleError::OutsideTransaction("Commit"))?;
                if !tx.skip {
                    self.commit_ready(Lsn(end_lsn));
                }
            }
            Message::Origin { name, .. } => {
                let filtered = self.skipped(&name);
                if let Some(xid) = self.stream_xid {
                    let tx = self.streamed.entry(xid).or_default();
                    tx.origin = Some(name.into());
                    tx.filtered = filtered;
                } else if let Some(tx) = &mut self.tx {
                    tx.origin = Some(name.into());
                    tx.filtered = filtered;
                }
            }
            Message::Relation(_) | Message::Type { .. } | Message::LogicalMessage { .. } => {}
            Message::StreamStart { xid, .. } => {
                self.stream_xid = Some(xid);
                self.streamed.entry(xid).or_default();
            }
            Message::StreamStop => self.stream_xid = None,
            Message::StreamCommit {
                xid,
                commit_lsn,
                end_lsn,
                commit_time_us,
                ..
            } => {
                let mut streamed = self.streamed.remove(&xid).unwrap_or_default();
                if streamed.filtered {
                    streamed.events.clear();
                }
                if Lsn(commit_lsn) >= self.resume {
                    for (_, mut event) in streamed.events {
                        event.source.commit_time_us = commit_time_us;
                        event.source.origin.clone_from(&streamed.origin);
                        self.ready_bytes += event.approx_bytes();
                        self.ready.push(event);
                    }
                    self.commit_ready(Lsn(end_lsn));
                }
            }
            Message::StreamAbort { xid, subxid } => {
                if xid == subxid {
                    self.streamed.remove(&xid);
                } else if let Some(tx) = self.streamed.get_mut(&xid) {
                    tx.events.retain(|(sub, _)| *sub != subxid);
                }
            }
            Message::Insert { xid, relation, new } => {
                let rel = self.relation(relation)?;
                let after = self.row(rel, &new, None)?;
                let key = key_of(rel, &after);
                let event = self.event(Op::Create, rel, wal_start, key, None, Some(after));
                self.push(xid, event)?;
            }
            Message::Update {
                xid,
                relation,
                old,
                new,
            } => {
                let rel = self.relation(relation)?;
                let before = match &old {
                    Some(old) => Some(self.old_row(rel, old)?),
                    None => None,
                };
                let full_before = old.as_ref().filter(|o| !o.key_only).and(before.as_ref());
                let after = self.row(rel, &new, full_before)?;
                let key = key_of(rel, &after);
                let event = self.event(Op::Update, rel, wal_start, key, before, Some(after));
                self.push(xid, event)?;
            }
            Message::Delete { xid, relation, old } => {
                let rel = self.relation(relation)?;
                let before = self.old_row(rel, &old)?;
                let key = key_of(rel, &before);
                let event = self.event(Op::Delete, rel, wal_start, key, Some(before), None);
                self.push(xid, event)?;
            }
            Message::Truncate { xid, relations, .. } => {
                for oid in relations {
                    let rel = self.relation(oid)?;
                    let event = self.event(Op::Truncate, rel, wal_start, Vec::new(), None, None);
                    self.push(xid, event)?;
                }
            }
        }
        Ok(())
    }

    fn commit_ready(&mut self, end: Lsn) {
        self.committed = self.ready.len();
        self.last_commit = Some(end);
        self.resume = self.resume.max(end);
    }

    fn relation(&self, oid: u32) -> Result<&RelationInfo, AssembleError> {
        self.relations
            .get(&oid)
            .ok_or(AssembleError::UnknownRelation(oid))
    }

    fn push(&mut self, xid: Option<u32>, mut event: ChangeEvent) -> Result<(), AssembleError> {
        match (self.stream_xid, xid) {
            (Some(top), sub) => {
                event.source.txid = Some(smol_str::format_smolstr!("{top}"));
                self.streamed
                    .entry(top)
                    .or_default()
                    .events
                    .push((sub.unwrap_or(top), event));
            }
            (None, _) => {
                let tx = self
                    .tx
                    .as_ref()
                    .ok_or(AssembleError::OutsideTransaction("row change"))?;
                if !tx.skip && !tx.filtered {
                    event.source.txid = Some(tx.xid.clone());
                    event.source.commit_time_us = tx.commit_time_us;
                    event.source.origin.clone_from(&tx.origin);
                    self.ready_bytes += event.approx_bytes();
                    self.ready.push(event);
                }
            }
        }
        Ok(())
    }

    fn event(
        &self,
        op: Op,
        rel: &RelationInfo,
        lsn: Lsn,
        key: Row,
        before: Option<Row>,
        after: Option<Row>,
    ) -> ChangeEvent {
        ChangeEvent {
            op,
            source: SourceInfo {
                connector: Name::new_static("postgresql"),
                database: self.database.clone(),
                schema: rel.schema.clone(),
                table: rel.table.clone(),
                position: smol_str::format_smolstr!("{lsn}"),
                txid: None,
                commit_time_us: 0,
                origin: None,
                plugins: None,
            },
            key,
            before,
            after,
        }
    }

    /// A full row; unchanged TOAST values come from `old` when the server
    /// sent the whole old row (REPLICA IDENTITY FULL).
    fn row(
        &self,
        rel: &RelationInfo,
        tuple: &Tuple,
        old: Option<&Row>,
    ) -> Result<Row, AssembleError> {
        check_width(rel, tuple)?;
        let mut row = Vec::with_capacity(rel.columns.len());
        for (i, ((name, ty), v)) in rel.columns.iter().zip(&tuple.0).enumerate() {
            let value = match v {
                TupleValue::Unchanged => old
                    .and_then(|o| o.get(i))
                    .map_or(Value::Unchanged, |c| c.value.clone()),
                other => convert(*ty, other),
            };
            row.push(Column::new(name.clone(), value));
        }
        Ok(row)
    }

    /// The before image: the whole old row, or only its identity columns.
    fn old_row(&self, rel: &RelationInfo, old: &OldTuple) -> Result<Row, AssembleError> {
        if !old.key_only {
            return self.row(rel, &old.tuple, None);
        }
        check_width(rel, &old.tuple)?;
        Ok(rel
            .identity
            .iter()
            .map(|&i| {
                let (name, ty) = &rel.columns[i];
                Column::new(name.clone(), convert(*ty, &old.tuple.0[i]))
            })
            .collect())
    }
}

fn check_width(rel: &RelationInfo, tuple: &Tuple) -> Result<(), AssembleError> {
    if tuple.0.len() != rel.columns.len() {
        return Err(AssembleError::ColumnCount {
            table: format!("{}.{}", rel.schema, rel.table),
            got: tuple.0.len(),
            want: rel.columns.len(),
        });
    }
    Ok(())
}

/// Key columns of an image, looked up by name so that key-only images work.
fn key_of(rel: &RelationInfo, row: &Row) -> Row {
    rel.key
        .iter()
        .filter_map(|&i| {
            let name = &rel.columns[i].0;
            row.iter().find(|c| &c.name == name).cloned()
        })
        .collect()
}

/// One value. Text that does not parse as its type is kept as text rather
/// than failing the stream: the change is not lost, and the type decoder's
/// tests pin what does parse.
pub fn convert(ty: PgType, value: &TupleValue) -> Value {
    match value {
        TupleValue::Null => Value::Null,
        TupleValue::Unchanged => Value::Unchanged,
        TupleValue::Binary(b) => Value::Bytes(b.to_vec()),
        TupleValue::Text(b) => {
            // The server sends UTF-8 (the connection asks for it):
            // `from_utf8` checks it a word at a time where ASCII, while the
            // lossy conversion walks it byte by byte (2.8% of weir's CPU in a
            // 1M-row profile).
            let text = match std::str::from_utf8(b) {
                Ok(text) => std::borrow::Cow::Borrowed(text),
                Err(_) => String::from_utf8_lossy(b),
            };
            decode_text(ty, &text).unwrap_or_else(|_| Value::Text(text.into_owned()))
        }
    }
}
