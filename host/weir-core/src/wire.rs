//! The wire encoding of event batches, version 1 (`docs/wire-format.md`).
//!
//! A batch is one version byte (`1`) followed by the postcard encoding of a
//! sequence of [`ChangeEvent`]s. The host encodes owned events with
//! [`encode_batch`]; guests decode borrowed views with [`decode_batch`],
//! which copies no strings, so a plugin pays only for the columns it reads.
//! See `docs/decisions/0002-batch-wire-encoding.md` for why.

use serde::{Deserialize, Serialize};

use crate::event::{ChangeEvent, Column, Op, Value};

/// The wire version this build writes and reads.
pub const WIRE_VERSION: u8 = 1;

/// A batch could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("empty batch buffer: expected at least the wire version byte")]
    Empty,
    #[error("batch uses wire version {found}, this build reads version {WIRE_VERSION}")]
    Version { found: u8 },
    #[error("malformed batch: {0}")]
    Malformed(#[from] postcard::Error),
}

/// Encodes events as a version-1 batch.
pub fn encode_batch(events: &[ChangeEvent]) -> Vec<u8> {
    // A u8 encodes as one raw byte, so the tuple is the version byte
    // followed by the events.
    postcard::to_allocvec(&(WIRE_VERSION, events)).expect("encoding events into memory cannot fail")
}

/// Encodes events given by reference (a sub-slice of a larger batch, say).
pub fn encode_batch_refs<'e>(events: impl ExactSizeIterator<Item = &'e ChangeEvent>) -> Vec<u8> {
    struct Seq<I>(std::cell::RefCell<Option<I>>);
    impl<'e, I: ExactSizeIterator<Item = &'e ChangeEvent>> Serialize for Seq<I> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let it = self.0.borrow_mut().take().expect("serialized once");
            s.collect_seq(it)
        }
    }
    postcard::to_allocvec(&(WIRE_VERSION, Seq(std::cell::RefCell::new(Some(events)))))
        .expect("encoding events into memory cannot fail")
}

/// Decodes a batch into owned events (the host side of tests and tools).
pub fn decode_batch_owned(bytes: &[u8]) -> Result<Vec<ChangeEvent>, WireError> {
    Ok(postcard::from_bytes(payload(bytes)?)?)
}

/// Decodes a batch into borrowed views: no string is copied.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<EventRef<'_>>, WireError> {
    Ok(postcard::from_bytes(payload(bytes)?)?)
}

fn payload(bytes: &[u8]) -> Result<&[u8], WireError> {
    match bytes.split_first() {
        None => Err(WireError::Empty),
        Some((&WIRE_VERSION, rest)) => Ok(rest),
        Some((&found, _)) => Err(WireError::Version { found }),
    }
}

/// A borrowed view of [`Value`].
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct ColumnRef<'a> {
    pub name: &'a str,
    #[serde(borrow)]
    pub value: ValueRef<'a>,
}

impl ColumnRef<'_> {
    pub fn to_owned(&self) -> Column {
        Column::new(self.name, self.value.to_owned())
    }
}

/// A borrowed view of [`crate::SourceInfo`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
    pub fn to_owned(&self) -> crate::SourceInfo {
        crate::SourceInfo {
            connector: self.connector.to_owned(),
            database: self.database.to_owned(),
            schema: self.schema.to_owned(),
            table: self.table.to_owned(),
            position: self.position.to_owned(),
            txid: self.txid.map(str::to_owned),
            commit_time_us: self.commit_time_us,
            origin: self.origin.map(str::to_owned),
        }
    }
}

/// A borrowed view of [`ChangeEvent`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EventRef<'a> {
    pub op: Op,
    #[serde(borrow)]
    pub source: SourceRef<'a>,
    #[serde(borrow)]
    pub key: Vec<ColumnRef<'a>>,
    #[serde(borrow)]
    pub before: Option<Vec<ColumnRef<'a>>>,
    #[serde(borrow)]
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

    #[test]
    fn wrong_version_is_named() {
        let mut bytes = encode_batch(&[sample()]);
        bytes[0] = 9;
        let err = decode_batch(&bytes).unwrap_err().to_string();
        assert_eq!(err, "batch uses wire version 9, this build reads version 1");
        assert!(matches!(decode_batch(&[]), Err(WireError::Empty)));
    }
}
