//! The wire encoding of event batches, version 2 (`docs/wire-format.md`).
//!
//! The host encodes owned events with [`encode_batch`]; guests decode
//! borrowed views with [`decode_batch`], which copies no strings, so a
//! plugin pays only for the columns it reads.
//!
//! Consecutive events of a batch nearly always come from the same table,
//! so an event may say "same source names as the previous event" and, per
//! row image, "same column names as the previous event's": names then
//! cross the boundary (and are checked as UTF-8) once per run of events
//! instead of once per event. That, and a hand-written codec instead of a
//! serde format, is what made version 2 (see
//! `docs/decisions/0011-wire-v2-shared-names.md`; version 1 was plain
//! postcard, `docs/decisions/0002-batch-wire-encoding.md`).

use crate::event::{ChangeEvent, Column, Op, SourceInfo, Value};

/// The wire version this build writes and reads.
pub const WIRE_VERSION: u8 = 2;

/// A batch could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("empty batch buffer: expected at least the wire version byte")]
    Empty,
    #[error("batch uses wire version {found}, this build reads version {WIRE_VERSION}")]
    Version { found: u8 },
    #[error("malformed batch at byte {offset}: {problem}")]
    Malformed {
        offset: usize,
        problem: &'static str,
    },
}

// Event flags.
const SAME_SOURCE: u8 = 1;
const HAS_BEFORE: u8 = 1 << 1;
const HAS_AFTER: u8 = 1 << 2;
const HAS_TXID: u8 = 1 << 3;
const HAS_ORIGIN: u8 = 1 << 4;
// Row flag: the names are those of the same image of the previous event.
const SAME_NAMES: u8 = 1;

/// Encodes events as a batch.
pub fn encode_batch(events: &[ChangeEvent]) -> Vec<u8> {
    encode_batch_refs(events.iter())
}

/// Encodes events given by reference (a sub-slice of a larger batch, say).
pub fn encode_batch_refs<'e>(events: impl ExactSizeIterator<Item = &'e ChangeEvent>) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + events.len() * 160);
    out.push(WIRE_VERSION);
    put_len(&mut out, events.len());
    let mut prev: Option<&ChangeEvent> = None;
    for e in events {
        let s = &e.source;
        let same_source = prev.is_some_and(|p| {
            let q = &p.source;
            q.connector == s.connector
                && q.database == s.database
                && q.schema == s.schema
                && q.table == s.table
                && q.origin == s.origin
        });
        let mut flags = 0;
        if same_source {
            flags |= SAME_SOURCE;
        }
        if e.before.is_some() {
            flags |= HAS_BEFORE;
        }
        if e.after.is_some() {
            flags |= HAS_AFTER;
        }
        if s.txid.is_some() {
            flags |= HAS_TXID;
        }
        if s.origin.is_some() {
            flags |= HAS_ORIGIN;
        }
        out.push(op_code(e.op));
        out.push(flags);
        if !same_source {
            put_str(&mut out, &s.connector);
            put_str(&mut out, &s.database);
            put_str(&mut out, &s.schema);
            put_str(&mut out, &s.table);
            if let Some(origin) = &s.origin {
                put_str(&mut out, origin);
            }
        }
        put_str(&mut out, &s.position);
        if let Some(txid) = &s.txid {
            put_str(&mut out, txid);
        }
        put_i64(&mut out, s.commit_time_us);
        put_row(&mut out, &e.key, prev.map(|p| p.key.as_slice()));
        if let Some(row) = &e.before {
            put_row(&mut out, row, prev.and_then(|p| p.before.as_deref()));
        }
        if let Some(row) = &e.after {
            put_row(&mut out, row, prev.and_then(|p| p.after.as_deref()));
        }
        prev = Some(e);
    }
    out
}

fn put_row(out: &mut Vec<u8>, row: &[Column], prev: Option<&[Column]>) {
    let same = prev
        .is_some_and(|p| p.len() == row.len() && p.iter().zip(row).all(|(a, b)| a.name == b.name));
    out.push(if same { SAME_NAMES } else { 0 });
    put_len(out, row.len());
    if !same {
        for c in row {
            put_str(out, &c.name);
        }
    }
    for c in row {
        put_value(out, &c.value);
    }
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(0),
        Value::Boolean(b) => {
            out.push(1);
            out.push(u8::from(*b));
        }
        Value::Int(i) => {
            out.push(2);
            put_i64(out, *i);
        }
        Value::Float(f) => {
            out.push(3);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Value::Decimal(t) => {
            out.push(4);
            put_str(out, t);
        }
        Value::Text(t) => {
            out.push(5);
            put_str(out, t);
        }
        Value::Bytes(b) => {
            out.push(6);
            put_len(out, b.len());
            out.extend_from_slice(b);
        }
        Value::Json(t) => {
            out.push(7);
            put_str(out, t);
        }
        Value::Date(d) => {
            out.push(8);
            put_i64(out, i64::from(*d));
        }
        Value::Time(t) => {
            out.push(9);
            put_i64(out, *t);
        }
        Value::Timestamp(t) => {
            out.push(10);
            put_i64(out, *t);
        }
        Value::Timestamptz(t) => {
            out.push(11);
            put_i64(out, *t);
        }
        Value::Uuid(t) => {
            out.push(12);
            put_str(out, t);
        }
        Value::Unchanged => out.push(13),
    }
}

fn op_code(op: Op) -> u8 {
    match op {
        Op::Create => 0,
        Op::Update => 1,
        Op::Delete => 2,
        Op::Truncate => 3,
        Op::Read => 4,
    }
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    put_u64(out, n as u64);
}

/// LEB128.
fn put_u64(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Zigzag, then LEB128.
fn put_i64(out: &mut Vec<u8>, n: i64) {
    put_u64(out, ((n << 1) ^ (n >> 63)) as u64);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// Decodes a batch into owned events (the host side of tests and tools).
pub fn decode_batch_owned(bytes: &[u8]) -> Result<Vec<ChangeEvent>, WireError> {
    Ok(decode_batch(bytes)?
        .iter()
        .map(EventRef::to_owned)
        .collect())
}

/// Decodes a batch into borrowed views: no string is copied.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<EventRef<'_>>, WireError> {
    let mut r = Reader { bytes, pos: 0 };
    match r.u8() {
        Err(_) => return Err(WireError::Empty),
        Ok(WIRE_VERSION) => {}
        Ok(found) => return Err(WireError::Version { found }),
    }
    let n = r.len()?;
    // Every event takes at least 6 bytes: cap what a corrupt count reserves.
    let mut events = Vec::with_capacity(n.min(bytes.len() / 6));
    let mut source: Option<(&str, &str, &str, &str, Option<&str>)> = None;
    let mut names: [Vec<&str>; 3] = Default::default();
    for _ in 0..n {
        let op = match r.u8()? {
            0 => Op::Create,
            1 => Op::Update,
            2 => Op::Delete,
            3 => Op::Truncate,
            4 => Op::Read,
            _ => return Err(r.err("unknown op")),
        };
        let flags = r.u8()?;
        let (connector, database, schema, table, origin) = if flags & SAME_SOURCE != 0 {
            source.ok_or_else(|| r.err("first event refers to a previous source"))?
        } else {
            let s = (
                r.str()?,
                r.str()?,
                r.str()?,
                r.str()?,
                if flags & HAS_ORIGIN != 0 {
                    Some(r.str()?)
                } else {
                    None
                },
            );
            source = Some(s);
            s
        };
        let position = r.str()?;
        let txid = if flags & HAS_TXID != 0 {
            Some(r.str()?)
        } else {
            None
        };
        let commit_time_us = r.i64()?;
        let key = r.row(&mut names[0])?;
        let before = if flags & HAS_BEFORE != 0 {
            Some(r.row(&mut names[1])?)
        } else {
            None
        };
        let after = if flags & HAS_AFTER != 0 {
            Some(r.row(&mut names[2])?)
        } else {
            None
        };
        events.push(EventRef {
            op,
            source: SourceRef {
                connector,
                database,
                schema,
                table,
                position,
                txid,
                commit_time_us,
                origin,
            },
            key,
            before,
            after,
        });
    }
    if r.pos != bytes.len() {
        return Err(r.err("bytes after the last event"));
    }
    Ok(events)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, problem: &'static str) -> WireError {
        WireError::Malformed {
            offset: self.pos,
            problem,
        }
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| self.err("unexpected end"))?;
        self.pos += 1;
        Ok(b)
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(self.err("varint too long"))
    }

    fn i64(&mut self) -> Result<i64, WireError> {
        let n = self.u64()?;
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    fn len(&mut self) -> Result<usize, WireError> {
        let n = self.u64()?;
        usize::try_from(n).map_err(|_| self.err("length too large"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.len()?;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.err("length past the end"))?;
        let b = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn str(&mut self) -> Result<&'a str, WireError> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| self.err("text is not UTF-8"))
    }

    fn row(&mut self, names: &mut Vec<&'a str>) -> Result<Vec<ColumnRef<'a>>, WireError> {
        let flags = self.u8()?;
        let n = self.len()?;
        if flags & SAME_NAMES != 0 {
            if names.len() != n {
                return Err(self.err("shared names of another width"));
            }
        } else {
            names.clear();
            for _ in 0..n {
                names.push(self.str()?);
            }
        }
        let mut row = Vec::with_capacity(n);
        for name in names.iter() {
            row.push(ColumnRef {
                name,
                value: self.value()?,
            });
        }
        Ok(row)
    }

    fn value(&mut self) -> Result<ValueRef<'a>, WireError> {
        Ok(match self.u8()? {
            0 => ValueRef::Null,
            1 => ValueRef::Boolean(self.u8()? != 0),
            2 => ValueRef::Int(self.i64()?),
            3 => {
                let end = self.pos + 8;
                let b: [u8; 8] = self
                    .bytes
                    .get(self.pos..end)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| self.err("unexpected end"))?;
                self.pos = end;
                ValueRef::Float(f64::from_le_bytes(b))
            }
            4 => ValueRef::Decimal(self.str()?),
            5 => ValueRef::Text(self.str()?),
            6 => ValueRef::Bytes(self.bytes()?),
            7 => ValueRef::Json(self.str()?),
            8 => ValueRef::Date(
                i32::try_from(self.i64()?).map_err(|_| self.err("date out of range"))?,
            ),
            9 => ValueRef::Time(self.i64()?),
            10 => ValueRef::Timestamp(self.i64()?),
            11 => ValueRef::Timestamptz(self.i64()?),
            12 => ValueRef::Uuid(self.str()?),
            13 => ValueRef::Unchanged,
            _ => return Err(self.err("unknown value tag")),
        })
    }
}

/// A borrowed view of [`Value`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    Null,
    Boolean(bool),
    Int(i64),
    Float(f64),
    Decimal(&'a str),
    Text(&'a str),
    Bytes(&'a [u8]),
    Json(&'a str),
    Date(i32),
    Time(i64),
    Timestamp(i64),
    Timestamptz(i64),
    Uuid(&'a str),
    Unchanged,
}

impl<'a> ValueRef<'a> {
    /// The text of a textual value (text, decimal, json, uuid), if any.
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            ValueRef::Text(s) | ValueRef::Decimal(s) | ValueRef::Json(s) | ValueRef::Uuid(s) => {
                Some(s)
            }
            _ => None,
        }
    }

    /// An owned copy.
    pub fn to_owned(&self) -> Value {
        match *self {
            ValueRef::Null => Value::Null,
            ValueRef::Boolean(b) => Value::Boolean(b),
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Float(f) => Value::Float(f),
            ValueRef::Decimal(s) => Value::Decimal(s.to_owned()),
            ValueRef::Text(s) => Value::Text(s.to_owned()),
            ValueRef::Bytes(b) => Value::Bytes(b.to_vec()),
            ValueRef::Json(s) => Value::Json(s.to_owned()),
            ValueRef::Date(d) => Value::Date(d),
            ValueRef::Time(t) => Value::Time(t),
            ValueRef::Timestamp(t) => Value::Timestamp(t),
            ValueRef::Timestamptz(t) => Value::Timestamptz(t),
            ValueRef::Uuid(s) => Value::Uuid(s.to_owned()),
            ValueRef::Unchanged => Value::Unchanged,
        }
    }
}

/// A borrowed view of [`Column`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColumnRef<'a> {
    pub name: &'a str,
    pub value: ValueRef<'a>,
}

impl ColumnRef<'_> {
    pub fn to_owned(&self) -> Column {
        Column::new(self.name, self.value.to_owned())
    }
}

/// A borrowed view of [`crate::SourceInfo`].
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRef<'a> {
    pub connector: &'a str,
    pub database: &'a str,
    pub schema: &'a str,
    pub table: &'a str,
    pub position: &'a str,
    pub txid: Option<&'a str>,
    pub commit_time_us: i64,
    pub origin: Option<&'a str>,
}

impl SourceRef<'_> {
    pub fn to_owned(&self) -> SourceInfo {
        SourceInfo {
            connector: self.connector.into(),
            database: self.database.into(),
            schema: self.schema.into(),
            table: self.table.into(),
            position: self.position.into(),
            txid: self.txid.map(Into::into),
            commit_time_us: self.commit_time_us,
            origin: self.origin.map(Into::into),
            plugins: None,
        }
    }
}

/// A borrowed view of [`ChangeEvent`].
#[derive(Debug, Clone, PartialEq)]
pub struct EventRef<'a> {
    pub op: Op,
    pub source: SourceRef<'a>,
    pub key: Vec<ColumnRef<'a>>,
    pub before: Option<Vec<ColumnRef<'a>>>,
    pub after: Option<Vec<ColumnRef<'a>>>,
}

impl EventRef<'_> {
    /// An owned copy.
    pub fn to_owned(&self) -> ChangeEvent {
        let row = |r: &Vec<ColumnRef<'_>>| r.iter().map(ColumnRef::to_owned).collect();
        ChangeEvent {
            op: self.op,
            source: self.source.to_owned(),
            key: row(&self.key),
            before: self.before.as_ref().map(row),
            after: self.after.as_ref().map(row),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SourceInfo;

    fn sample() -> ChangeEvent {
        ChangeEvent {
            op: Op::Update,
            source: SourceInfo {
                connector: "postgresql".into(),
                database: "shop".into(),
                schema: "public".into(),
                table: "customers".into(),
                position: "0/16B3748".into(),
                txid: Some("771".into()),
                commit_time_us: 1_700_000_000_000_000,
                origin: None,
                plugins: None,
            },
            key: vec![Column::new("id", Value::Int(7))],
            before: None,
            after: Some(vec![
                Column::new("id", Value::Int(7)),
                Column::new("email", Value::Text("ada@example.com".into())),
                Column::new("balance", Value::Decimal("10.50".into())),
                Column::new("photo", Value::Bytes(vec![0, 1, 255])),
                Column::new("born", Value::Date(-365)),
                Column::new("seen", Value::Timestamptz(-5)),
                Column::new("ratio", Value::Float(0.25)),
                Column::new(
                    "id2",
                    Value::Uuid("6f1c2a4e-0000-4000-8000-000000000001".into()),
                ),
                Column::new("doc", Value::Unchanged),
                Column::new("gone", Value::Null),
            ]),
        }
    }

    #[test]
    fn owned_and_borrowed_views_agree() {
        let events = vec![sample(), sample()];
        let bytes = encode_batch(&events);
        let views = decode_batch(&bytes).unwrap();
        let back: Vec<ChangeEvent> = views.iter().map(EventRef::to_owned).collect();
        assert_eq!(back, events);
        assert_eq!(decode_batch_owned(&bytes).unwrap(), events);
        assert_eq!(encode_batch_refs(events.iter()), bytes);
    }

    fn other(table: &str, id: i64) -> ChangeEvent {
        let mut e = sample();
        e.source.table = table.into();
        e.source.txid = None;
        e.source.origin = Some("eu-west".into());
        e.op = Op::Delete;
        e.before = e.after.take();
        e.key = vec![
            Column::new("id", Value::Int(id)),
            Column::new("k2", Value::Int(-id)),
        ];
        e
    }

    #[test]
    fn names_are_shared_between_consecutive_events_and_nothing_else_changes() {
        let events = vec![
            sample(),
            sample(),
            other("orders", 1),
            other("orders", 2),
            sample(),
            other("customers", 3),
            sample(),
        ];
        let bytes = encode_batch(&events);
        assert_eq!(decode_batch_owned(&bytes).unwrap(), events);
        // Sharing names makes a run of same-table events much smaller than
        // the same events encoded one by one.
        let run = vec![sample(); 10];
        let shared = encode_batch(&run).len();
        let alone = encode_batch(&run[..1]).len() * 10;
        assert!(shared * 100 < alone * 65, "{shared} vs {alone}");
    }

    #[test]
    fn corrupt_batches_are_errors_not_panics() {
        let bytes = encode_batch(&[sample(), other("t", 1), sample()]);
        for len in 1..bytes.len() {
            assert!(
                decode_batch(&bytes[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
        let mut flipped = bytes.clone();
        for i in 1..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = decode_batch(&flipped);
            flipped[i] ^= 0xff;
        }
        // A first event cannot share names with nothing.
        let mut first_shares = encode_batch(&[sample()]);
        first_shares[3] |= SAME_SOURCE;
        assert!(matches!(
            decode_batch(&first_shares),
            Err(WireError::Malformed { .. })
        ));
    }

    #[test]
    fn wrong_version_is_named() {
        let mut bytes = encode_batch(&[sample()]);
        bytes[0] = 9;
        let err = decode_batch(&bytes).unwrap_err().to_string();
        assert_eq!(err, "batch uses wire version 9, this build reads version 2");
        assert!(matches!(decode_batch(&[]), Err(WireError::Empty)));
    }
}
