//! Decoding of PostgreSQL's `pgoutput` logical-replication messages,
//! protocol versions 1 and 2.
//!
//! This module owns the byte layout of the messages and nothing else: it
//! does no I/O and keeps no catalog. [`PgoutputDecoder::decode`] takes the
//! payload of one `XLogData` (`'w'`) message and returns a [`Message`] or a
//! [`DecodeError`]; it never panics, whatever the bytes, so it can be fuzzed.
//!
//! The only state is whether the decoder is between `StreamStart` and
//! `StreamStop` (protocol version 2): inside such a block, data messages
//! carry the xid of the streamed transaction as their first field.
//!
//! Column values borrow from the input buffer, so decoding a row copies no
//! column data (and touches no reference count per value).
//!
//! Strings (names, prefixes) must be valid UTF-8: a replication connection
//! asks for `client_encoding = UTF8`, so anything else means the stream is
//! not what we think it is, and is reported as an error rather than
//! silently replaced.
//!
//! Format reference: "Logical Replication Message Formats" in the
//! PostgreSQL documentation (`protocol-logicalrep-message-formats`).

use std::fmt;

use bytes::Bytes;

use crate::types::PG_EPOCH_US;

/// One decoded pgoutput message.
///
/// `xid` fields that are `Option` are present only inside a streamed block
/// (between [`Message::StreamStart`] and [`Message::StreamStop`]).
/// Timestamps are microseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    Begin {
        final_lsn: u64,
        commit_time_us: i64,
        xid: u32,
    },
    Commit {
        flags: u8,
        commit_lsn: u64,
        end_lsn: u64,
        commit_time_us: i64,
    },
    Origin {
        commit_lsn: u64,
        name: String,
    },
    Relation(Relation),
    Type {
        xid: Option<u32>,
        oid: u32,
        namespace: String,
        name: String,
    },
    Insert {
        xid: Option<u32>,
        relation: u32,
        new: Tuple<'a>,
    },
    Update {
        xid: Option<u32>,
        relation: u32,
        old: Option<OldTuple<'a>>,
        new: Tuple<'a>,
    },
    Delete {
        xid: Option<u32>,
        relation: u32,
        old: OldTuple<'a>,
    },
    Truncate {
        xid: Option<u32>,
        cascade: bool,
        restart_identity: bool,
        relations: Vec<u32>,
    },
    LogicalMessage {
        xid: Option<u32>,
        transactional: bool,
        lsn: u64,
        prefix: String,
        content: Bytes,
    },
    StreamStart {
        xid: u32,
        first_segment: bool,
    },
    StreamStop,
    StreamCommit {
        xid: u32,
        flags: u8,
        commit_lsn: u64,
        end_lsn: u64,
        commit_time_us: i64,
    },
    StreamAbort {
        xid: u32,
        subxid: u32,
    },
}

/// The description of a table, sent before the first change to it in a
/// session and again whenever its definition changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub xid: Option<u32>,
    pub oid: u32,
    pub namespace: String,
    pub name: String,
    pub replica_identity: ReplicaIdentity,
    pub columns: Vec<RelationColumn>,
}

/// `pg_class.relreplident`: which old values updates and deletes carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplicaIdentity {
    /// `'d'`: the primary key.
    Default,
    /// `'n'`: nothing.
    Nothing,
    /// `'f'`: the whole old row.
    Full,
    /// `'i'`: the columns of a chosen unique index.
    Index,
}

/// One column of a [`Relation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    /// Part of the replica identity (flag bit 1).
    pub key: bool,
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
}

/// The old row of an update or delete: only the key columns ('K') or the
/// whole row ('O', REPLICA IDENTITY FULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldTuple<'a> {
    pub key_only: bool,
    pub tuple: Tuple<'a>,
}

/// The values of one row, in column order. With a key-only old tuple, the
/// non-key columns are [`TupleValue::Null`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuple<'a>(pub Vec<TupleValue<'a>>);

/// One column value as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TupleValue<'a> {
    /// `'n'`
    Null,
    /// `'u'`: an unchanged TOASTed value the server did not send.
    Unchanged,
    /// `'t'`: the type's text output.
    Text(&'a [u8]),
    /// `'b'`: the type's binary output (only with the `binary` option).
    Binary(&'a [u8]),
}

/// What kind of problem a [`DecodeError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeErrorKind {
    /// The message had no bytes at all.
    Empty,
    /// The first byte is not a pgoutput v1/v2 message tag (it may be a
    /// message of a newer protocol version).
    UnknownTag,
    /// The message ended before a field.
    Truncated,
    /// A field has a value the protocol does not allow.
    Invalid,
    /// Bytes are left after the last field.
    TrailingBytes,
}

/// A pgoutput message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode pgoutput {} message: {detail} (at byte {offset})", TagName(*.tag))]
pub struct DecodeError {
    tag: Option<u8>,
    kind: DecodeErrorKind,
    offset: usize,
    detail: String,
}

impl DecodeError {
    /// The message tag (first byte), if the message had one.
    pub fn tag(&self) -> Option<u8> {
        self.tag
    }

    pub fn kind(&self) -> DecodeErrorKind {
        self.kind
    }

    /// Byte offset in the message where the problem was found.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

/// Displays a tag as its message name and character, e.g. `Insert ('I')`.
struct TagName(Option<u8>);

impl fmt::Display for TagName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(tag) = self.0 else {
            return f.write_str("(empty)");
        };
        let name = match tag {
            b'B' => "Begin",
            b'C' => "Commit",
            b'O' => "Origin",
            b'R' => "Relation",
            b'Y' => "Type",
            b'I' => "Insert",
            b'U' => "Update",
            b'D' => "Delete",
            b'T' => "Truncate",
            b'M' => "Message",
            b'S' => "Stream Start",
            b'E' => "Stream Stop",
            b'c' => "Stream Commit",
            b'A' => "Stream Abort",
            _ => "unknown",
        };
        if tag.is_ascii_graphic() {
            write!(f, "{name} ('{}')", char::from(tag))
        } else {
            write!(f, "{name} (0x{tag:02x})")
        }
    }
}

/// Decodes pgoutput messages of one replication session, in order.
#[derive(Debug, Clone, Default)]
pub struct PgoutputDecoder {
    in_stream: bool,
}

impl PgoutputDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the last stream message decoded was a `StreamStart`, so that
    /// data messages are expected to carry an xid.
    pub fn in_stream(&self) -> bool {
        self.in_stream
    }

    /// Decodes one pgoutput message (the payload of an XLogData 'w' message).
    /// Tracks StreamStart/StreamStop so that messages inside a streamed block
    /// are read with their xid field.
    ///
    /// The stream state changes only when a `StreamStart` or `StreamStop`
    /// decodes successfully. A `StreamStart` inside a block, or a
    /// `StreamStop` outside one, is accepted rather than reported: the
    /// server's word on where a block starts is better than our memory of
    /// it (for example after the caller dropped a message).
    pub fn decode<'a>(&mut self, data: &'a Bytes) -> Result<Message<'a>, DecodeError> {
        let Some(&tag) = data.first() else {
            return Err(DecodeError {
                tag: None,
                kind: DecodeErrorKind::Empty,
                offset: 0,
                detail: "the message is empty".to_owned(),
            });
        };
        let mut r = Reader {
            buf: data,
            pos: 1,
            tag,
        };
        let message = match tag {
            b'B' => Message::Begin {
                final_lsn: r.u64("final LSN")?,
                commit_time_us: r.timestamp("commit timestamp")?,
                xid: r.u32("xid")?,
            },
            b'C' => Message::Commit {
                flags: r.u8("flags")?,
                commit_lsn: r.u64("commit LSN")?,
                end_lsn: r.u64("end LSN")?,
                commit_time_us: r.timestamp("commit timestamp")?,
            },
            b'O' => Message::Origin {
                commit_lsn: r.u64("commit LSN")?,
                name: r.string("origin name")?,
            },
            b'R' => Message::Relation(self.relation(&mut r)?),
            b'Y' => Message::Type {
                xid: self.xid(&mut r)?,
                oid: r.u32("type OID")?,
                namespace: r.string("namespace")?,
                name: r.string("type name")?,
            },
            b'I' => {
                let xid = self.xid(&mut r)?;
                let relation = r.u32("relation OID")?;
                r.expect_new_tuple_marker()?;
                Message::Insert {
                    xid,
                    relation,
                    new: r.tuple()?,
                }
            }
            b'U' => {
                let xid = self.xid(&mut r)?;
                let relation = r.u32("relation OID")?;
                let old = match r.u8("tuple marker ('K', 'O' or 'N')")? {
                    b'N' => None,
                    marker @ (b'K' | b'O') => {
                        let old = OldTuple {
                            key_only: marker == b'K',
                            tuple: r.tuple()?,
                        };
                        r.expect_new_tuple_marker()?;
                        Some(old)
                    }
                    other => {
                        return Err(r.invalid_byte(1, "tuple marker ('K', 'O' or 'N')", other));
                    }
                };
                Message::Update {
                    xid,
                    relation,
                    old,
                    new: r.tuple()?,
                }
            }
            b'D' => {
                let xid = self.xid(&mut r)?;
                let relation = r.u32("relation OID")?;
                let key_only = match r.u8("tuple marker ('K' or 'O')")? {
                    b'K' => true,
                    b'O' => false,
                    other => return Err(r.invalid_byte(1, "tuple marker ('K' or 'O')", other)),
                };
                Message::Delete {
                    xid,
                    relation,
                    old: OldTuple {
                        key_only,
                        tuple: r.tuple()?,
                    },
                }
            }
            b'T' => {
                let xid = self.xid(&mut r)?;
                let count = r.count32("number of relations")?;
                let options = r.u8("options")?;
                // Each relation OID takes 4 bytes: never reserve more than
                // the message can hold.
                let mut relations = Vec::with_capacity(count.min(r.remaining() / 4));
                for _ in 0..count {
                    relations.push(r.u32("relation OID")?);
                }
                Message::Truncate {
                    xid,
                    cascade: options & 1 != 0,
                    restart_identity: options & 2 != 0,
                    relations,
                }
            }
            b'M' => {
                let xid = self.xid(&mut r)?;
                let flags = r.u8("flags")?;
                let lsn = r.u64("LSN")?;
                let prefix = r.string("prefix")?;
                let len = r.count32("content length")?;
                Message::LogicalMessage {
                    xid,
                    transactional: flags & 1 != 0,
                    lsn,
                    prefix,
                    content: r.bytes(len, "content")?,
                }
            }
            b'S' => Message::StreamStart {
                xid: r.u32("xid")?,
                first_segment: match r.u8("first-segment flag")? {
                    0 => false,
                    1 => true,
                    other => return Err(r.invalid_byte(1, "first-segment flag (0 or 1)", other)),
                },
            },
            b'E' => Message::StreamStop,
            b'c' => Message::StreamCommit {
                xid: r.u32("xid")?,
                flags: r.u8("flags")?,
                commit_lsn: r.u64("commit LSN")?,
                end_lsn: r.u64("end LSN")?,
                commit_time_us: r.timestamp("commit timestamp")?,
            },
            b'A' => Message::StreamAbort {
                xid: r.u32("xid")?,
                subxid: r.u32("subtransaction xid")?,
            },
            _ => {
                return Err(DecodeError {
                    tag: Some(tag),
                    kind: DecodeErrorKind::UnknownTag,
                    offset: 0,
                    detail: "the tag is not a pgoutput protocol v1 or v2 message".to_owned(),
                });
            }
        };
        r.finish()?;
        match message {
            Message::StreamStart { .. } => self.in_stream = true,
            Message::StreamStop => self.in_stream = false,
            _ => {}
        }
        Ok(message)
    }

    /// The xid field that data messages carry inside a streamed block.
    fn xid(&self, r: &mut Reader<'_>) -> Result<Option<u32>, DecodeError> {
        if self.in_stream {
            r.u32("xid of the streamed transaction").map(Some)
        } else {
            Ok(None)
        }
    }

    fn relation(&self, r: &mut Reader<'_>) -> Result<Relation, DecodeError> {
        let xid = self.xid(r)?;
        let oid = r.u32("relation OID")?;
        let namespace = r.string("namespace")?;
        let name = r.string("relation name")?;
        let replica_identity = match r.u8("replica identity")? {
            b'd' => ReplicaIdentity::Default,
            b'n' => ReplicaIdentity::Nothing,
            b'f' => ReplicaIdentity::Full,
            b'i' => ReplicaIdentity::Index,
            other => {
                return Err(r.invalid_byte(1, "replica identity ('d', 'n', 'f' or 'i')", other));
            }
        };
        let count = usize::from(r.u16("number of columns")?);
        // A column takes at least 10 bytes (flags, empty name, two Int32s).
        let mut columns = Vec::with_capacity(count.min(r.remaining() / 10));
        for _ in 0..count {
            let flags = r.u8("column flags")?;
            columns.push(RelationColumn {
                key: flags & 1 != 0,
                name: r.string("column name")?,
                type_oid: r.u32("column type OID")?,
                type_modifier: r.i32("column type modifier")?,
            });
        }
        Ok(Relation {
            xid,
            oid,
            namespace,
            name,
            replica_identity,
            columns,
        })
    }
}

/// A bounds-checked cursor over one message. `pos <= buf.len()` always.
struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    tag: u8,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn error(&self, kind: DecodeErrorKind, offset: usize, detail: String) -> DecodeError {
        DecodeError {
            tag: Some(self.tag),
            kind,
            offset,
            detail,
        }
    }

    /// An error about the byte just read (`back` bytes before the cursor).
    fn invalid_byte(&self, back: usize, what: &str, got: u8) -> DecodeError {
        let got = if got.is_ascii_graphic() {
            format!("'{}'", char::from(got))
        } else {
            format!("0x{got:02x}")
        };
        self.error(
            DecodeErrorKind::Invalid,
            self.pos.saturating_sub(back),
            format!("expected {what}, got {got}"),
        )
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], DecodeError> {
        if self.remaining() < n {
            return Err(self.error(
                DecodeErrorKind::Truncated,
                self.pos,
                format!(
                    "the message ends before the {what} ({n} bytes needed, {} left)",
                    self.remaining()
                ),
            ));
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..self.pos])
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, DecodeError> {
        self.array(what).map(u16::from_be_bytes)
    }

    fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        self.array(what).map(u32::from_be_bytes)
    }

    fn i32(&mut self, what: &str) -> Result<i32, DecodeError> {
        self.array(what).map(i32::from_be_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        self.array(what).map(u64::from_be_bytes)
    }

    /// A non-negative Int32 count or length.
    fn count32(&mut self, what: &str) -> Result<usize, DecodeError> {
        let n = self.i32(what)?;
        usize::try_from(n).map_err(|_| {
            self.error(
                DecodeErrorKind::Invalid,
                self.pos - 4,
                format!("the {what} is negative ({n})"),
            )
        })
    }

    /// A PostgreSQL-epoch timestamp, converted to the Unix epoch.
    fn timestamp(&mut self, what: &str) -> Result<i64, DecodeError> {
        let pg = i64::from_be_bytes(self.array(what)?);
        pg.checked_add(PG_EPOCH_US).ok_or_else(|| {
            self.error(
                DecodeErrorKind::Invalid,
                self.pos - 8,
                format!("the {what} ({pg} µs after 2000-01-01) is out of range"),
            )
        })
    }

    /// A NUL-terminated UTF-8 string.
    fn string(&mut self, what: &str) -> Result<String, DecodeError> {
        let start = self.pos;
        let Some(len) = self.buf[start..].iter().position(|&b| b == 0) else {
            return Err(self.error(
                DecodeErrorKind::Truncated,
                start,
                format!("the {what} has no terminating NUL"),
            ));
        };
        self.pos += len + 1;
        match std::str::from_utf8(&self.buf[start..start + len]) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(self.error(
                DecodeErrorKind::Invalid,
                start + e.valid_up_to(),
                format!("the {what} is not valid UTF-8"),
            )),
        }
    }

    /// `n` bytes as a zero-copy slice of the message.
    fn bytes(&mut self, n: usize, what: &str) -> Result<Bytes, DecodeError> {
        let start = self.pos;
        self.take(n, what)?;
        Ok(self.buf.slice(start..self.pos))
    }

    /// The next `n` bytes, borrowed from the message.
    fn slice(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        self.take(n, what)?;
        let buf: &'a Bytes = self.buf;
        Ok(&buf[start..self.pos])
    }

    fn expect_new_tuple_marker(&mut self) -> Result<(), DecodeError> {
        match self.u8("new tuple marker ('N')")? {
            b'N' => Ok(()),
            other => Err(self.invalid_byte(1, "new tuple marker ('N')", other)),
        }
    }

    /// TupleData: Int16 column count, then one value per column.
    fn tuple(&mut self) -> Result<Tuple<'a>, DecodeError> {
        let count = usize::from(self.u16("number of tuple columns")?);
        // Each value takes at least its kind byte.
        let mut values = Vec::with_capacity(count.min(self.remaining()));
        for _ in 0..count {
            let value = match self.u8("column value kind")? {
                b'n' => TupleValue::Null,
                b'u' => TupleValue::Unchanged,
                b't' => {
                    let len = self.count32("column value length")?;
                    TupleValue::Text(self.slice(len, "column value")?)
                }
                b'b' => {
                    let len = self.count32("column value length")?;
                    TupleValue::Binary(self.slice(len, "column value")?)
                }
                other => {
                    return Err(self.invalid_byte(
                        1,
                        "column value kind ('n', 'u', 't' or 'b')",
                        other,
                    ));
                }
            };
            values.push(value);
        }
        Ok(Tuple(values))
    }

    fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(self.error(
                DecodeErrorKind::TrailingBytes,
                self.pos,
                format!("{n} bytes follow the last field"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a message the way the server lays it out.
    struct B(Vec<u8>);

    impl B {
        fn new(tag: u8) -> Self {
            B(vec![tag])
        }
        fn u8(mut self, v: u8) -> Self {
            self.0.push(v);
            self
        }
        fn u16(mut self, v: u16) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn u32(mut self, v: u32) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn i32(mut self, v: i32) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn u64(mut self, v: u64) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn i64(mut self, v: i64) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn str(mut self, s: &str) -> Self {
            self.0.extend_from_slice(s.as_bytes());
            self.0.push(0);
            self
        }
        fn raw(mut self, b: &[u8]) -> Self {
            self.0.extend_from_slice(b);
            self
        }
        /// TupleData from values written as `None` (null), `Some("u")`
        /// (unchanged), `Some("t:...")` (text) or `Some("b:...")` (binary).
        fn tuple(mut self, values: &[Option<&str>]) -> Self {
            self = self.u16(values.len() as u16);
            for v in values {
                self = match v {
                    None => self.u8(b'n'),
                    Some("u") => self.u8(b'u'),
                    Some(v) => {
                        let (kind, data) = v.split_at(2);
                        self.u8(kind.as_bytes()[0])
                            .i32(data.len() as i32)
                            .raw(data.as_bytes())
                    }
                };
            }
            self
        }
        fn build(self) -> Bytes {
            Bytes::from(self.0)
        }
    }

    fn text(s: &str) -> TupleValue<'_> {
        TupleValue::Text(s.as_bytes())
    }

    /// The message in `data` (kept for the test's life: messages borrow
    /// their column values from it).
    fn decode(data: Bytes) -> Message<'static> {
        PgoutputDecoder::new()
            .decode(Box::leak(Box::new(data)))
            .unwrap()
    }

    fn streaming() -> PgoutputDecoder {
        let mut d = PgoutputDecoder::new();
        d.decode(&B::new(b'S').u32(900).u8(1).build()).unwrap();
        d
    }

    /// 2024-01-02 03:04:05.678901 UTC in both epochs.
    const TS_PG: i64 = 757_479_845_678_901;
    const TS_UNIX: i64 = 1_704_164_645_678_901;

    #[test]
    fn begin_converts_the_commit_time_to_the_unix_epoch() {
        let m = decode(B::new(b'B').u64(0x16_B374_D848).i64(TS_PG).u32(734).build());
        assert_eq!(
            m,
            Message::Begin {
                final_lsn: 0x16_B374_D848,
                commit_time_us: TS_UNIX,
                xid: 734
            }
        );
        let zero = decode(B::new(b'B').u64(1).i64(0).u32(1).build());
        assert!(matches!(
            zero,
            Message::Begin {
                commit_time_us: 946_684_800_000_000,
                ..
            }
        ));
    }

    #[test]
    fn commit() {
        let m = decode(B::new(b'C').u8(0).u64(100).u64(200).i64(TS_PG).build());
        assert_eq!(
            m,
            Message::Commit {
                flags: 0,
                commit_lsn: 100,
                end_lsn: 200,
                commit_time_us: TS_UNIX
            }
        );
    }

    #[test]
    fn origin() {
        let m = decode(B::new(b'O').u64(42).str("pg_16389").build());
        assert_eq!(
            m,
            Message::Origin {
                commit_lsn: 42,
                name: "pg_16389".into()
            }
        );
    }

    fn relation_message(xid: Option<u32>) -> Bytes {
        let mut b = B::new(b'R');
        if let Some(xid) = xid {
            b = b.u32(xid);
        }
        b.u32(16385)
            .str("public")
            .str("orders")
            .u8(b'i')
            .u16(3)
            .u8(1)
            .str("id")
            .u32(20)
            .i32(-1)
            .u8(0)
            .str("note")
            .u32(1043)
            .i32(104)
            .u8(0)
            .str("δ")
            .u32(1700)
            .i32(655366)
            .build()
    }

    fn expected_relation(xid: Option<u32>) -> Relation {
        Relation {
            xid,
            oid: 16385,
            namespace: "public".into(),
            name: "orders".into(),
            replica_identity: ReplicaIdentity::Index,
            columns: vec![
                RelationColumn {
                    key: true,
                    name: "id".into(),
                    type_oid: 20,
                    type_modifier: -1,
                },
                RelationColumn {
                    key: false,
                    name: "note".into(),
                    type_oid: 1043,
                    type_modifier: 104,
                },
                RelationColumn {
                    key: false,
                    name: "δ".into(),
                    type_oid: 1700,
                    type_modifier: 655366,
                },
            ],
        }
    }

    #[test]
    fn relation_outside_and_inside_a_stream() {
        assert_eq!(
            decode(relation_message(None)),
            Message::Relation(expected_relation(None))
        );
        assert_eq!(
            streaming().decode(&relation_message(Some(900))).unwrap(),
            Message::Relation(expected_relation(Some(900)))
        );
    }

    #[test]
    fn relation_replica_identities() {
        for (byte, ri) in [
            (b'd', ReplicaIdentity::Default),
            (b'n', ReplicaIdentity::Nothing),
            (b'f', ReplicaIdentity::Full),
            (b'i', ReplicaIdentity::Index),
        ] {
            let m = decode(
                B::new(b'R')
                    .u32(1)
                    .str("s")
                    .str("t")
                    .u8(byte)
                    .u16(0)
                    .build(),
            );
            let Message::Relation(r) = m else {
                panic!("not a relation: {m:?}")
            };
            assert_eq!(r.replica_identity, ri);
            assert!(r.columns.is_empty());
        }
        let err = PgoutputDecoder::new()
            .decode(
                &B::new(b'R')
                    .u32(1)
                    .str("s")
                    .str("t")
                    .u8(b'x')
                    .u16(0)
                    .build(),
            )
            .unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::Invalid);
        assert_eq!(
            err.to_string(),
            "cannot decode pgoutput Relation ('R') message: expected replica identity \
             ('d', 'n', 'f' or 'i'), got 'x' (at byte 9)"
        );
    }

    #[test]
    fn type_message() {
        let msg = |xid: Option<u32>| {
            let mut b = B::new(b'Y');
            if let Some(xid) = xid {
                b = b.u32(xid);
            }
            b.u32(16400).str("public").str("mood").build()
        };
        let expected = |xid| Message::Type {
            xid,
            oid: 16400,
            namespace: "public".into(),
            name: "mood".into(),
        };
        assert_eq!(decode(msg(None)), expected(None));
        assert_eq!(
            streaming().decode(&msg(Some(900))).unwrap(),
            expected(Some(900))
        );
    }

    #[test]
    fn insert_with_every_value_kind() {
        let m = decode(
            B::new(b'I')
                .u32(16385)
                .u8(b'N')
                .tuple(&[
                    Some("t:42"),
                    None,
                    Some("u"),
                    Some("b:\x01\x02"),
                    Some("t:"),
                ])
                .build(),
        );
        assert_eq!(
            m,
            Message::Insert {
                xid: None,
                relation: 16385,
                new: Tuple(vec![
                    text("42"),
                    TupleValue::Null,
                    TupleValue::Unchanged,
                    TupleValue::Binary(b"\x01\x02"),
                    text(""),
                ]),
            }
        );
    }

    #[test]
    fn values_are_slices_of_the_input() {
        let data = B::new(b'I')
            .u32(1)
            .u8(b'N')
            .tuple(&[Some("t:hello"), Some("b:world")])
            .build();
        let Message::Insert { new, .. } = decode(data.clone()) else {
            panic!("not an insert")
        };
        let input = data.as_ptr_range();
        for v in &new.0 {
            let (TupleValue::Text(b) | TupleValue::Binary(b)) = v else {
                panic!("unexpected value {v:?}")
            };
            assert!(input.contains(&b.as_ptr()), "{v:?} was copied");
        }
    }

    #[test]
    fn update_without_old_tuple() {
        let m = decode(
            B::new(b'U')
                .u32(7)
                .u8(b'N')
                .tuple(&[Some("t:1"), Some("u")])
                .build(),
        );
        assert_eq!(
            m,
            Message::Update {
                xid: None,
                relation: 7,
                old: None,
                new: Tuple(vec![text("1"), TupleValue::Unchanged]),
            }
        );
    }

    #[test]
    fn update_with_key_and_with_full_old_tuple() {
        for (marker, key_only) in [(b'K', true), (b'O', false)] {
            let m = decode(
                B::new(b'U')
                    .u32(7)
                    .u8(marker)
                    .tuple(&[Some("t:1"), None])
                    .u8(b'N')
                    .tuple(&[Some("t:2"), Some("t:x")])
                    .build(),
            );
            assert_eq!(
                m,
                Message::Update {
                    xid: None,
                    relation: 7,
                    old: Some(OldTuple {
                        key_only,
                        tuple: Tuple(vec![text("1"), TupleValue::Null]),
                    }),
                    new: Tuple(vec![text("2"), text("x")]),
                }
            );
        }
    }

    #[test]
    fn update_requires_the_new_tuple_marker() {
        let err = PgoutputDecoder::new()
            .decode(
                &B::new(b'U')
                    .u32(7)
                    .u8(b'K')
                    .tuple(&[None])
                    .u8(b'X')
                    .tuple(&[None])
                    .build(),
            )
            .unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::Invalid);
        assert_eq!(err.offset(), 9);
        assert!(err.to_string().contains("Update ('U')"), "{err}");
        assert!(
            err.to_string().contains("new tuple marker ('N'), got 'X'"),
            "{err}"
        );
    }

    #[test]
    fn delete_with_key_and_with_full_old_tuple() {
        for (marker, key_only) in [(b'K', true), (b'O', false)] {
            let m = decode(B::new(b'D').u32(7).u8(marker).tuple(&[Some("t:9")]).build());
            assert_eq!(
                m,
                Message::Delete {
                    xid: None,
                    relation: 7,
                    old: OldTuple {
                        key_only,
                        tuple: Tuple(vec![text("9")]),
                    },
                }
            );
        }
        let err = PgoutputDecoder::new()
            .decode(&B::new(b'D').u32(7).u8(b'N').tuple(&[None]).build())
            .unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::Invalid);
    }

    #[test]
    fn truncate() {
        let m = decode(B::new(b'T').i32(2).u8(3).u32(10).u32(11).build());
        assert_eq!(
            m,
            Message::Truncate {
                xid: None,
                cascade: true,
                restart_identity: true,
                relations: vec![10, 11],
            }
        );
        let m = decode(B::new(b'T').i32(1).u8(2).u32(10).build());
        assert!(matches!(
            m,
            Message::Truncate {
                cascade: false,
                restart_identity: true,
                ..
            }
        ));
        let err = PgoutputDecoder::new()
            .decode(&B::new(b'T').i32(-1).u8(0).build())
            .unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::Invalid);
        assert!(err.to_string().contains("negative"), "{err}");
    }

    #[test]
    fn logical_message() {
        let m = decode(
            B::new(b'M')
                .u8(1)
                .u64(555)
                .str("outbox")
                .i32(5)
                .raw(b"a\0b\xffc")
                .build(),
        );
        assert_eq!(
            m,
            Message::LogicalMessage {
                xid: None,
                transactional: true,
                lsn: 555,
                prefix: "outbox".into(),
                content: Bytes::from_static(b"a\0b\xffc"),
            }
        );
    }

    #[test]
    fn stream_block_messages_carry_the_xid() {
        let mut d = PgoutputDecoder::new();
        assert!(!d.in_stream());
        assert_eq!(
            d.decode(&B::new(b'S').u32(900).u8(1).build()).unwrap(),
            Message::StreamStart {
                xid: 900,
                first_segment: true
            }
        );
        assert!(d.in_stream());
        assert_eq!(
            d.decode(
                &B::new(b'I')
                    .u32(901)
                    .u32(5)
                    .u8(b'N')
                    .tuple(&[Some("t:1")])
                    .build()
            )
            .unwrap(),
            Message::Insert {
                xid: Some(901),
                relation: 5,
                new: Tuple(vec![text("1")]),
            }
        );
        assert_eq!(
            d.decode(
                &B::new(b'U')
                    .u32(900)
                    .u32(5)
                    .u8(b'O')
                    .tuple(&[Some("t:1")])
                    .u8(b'N')
                    .tuple(&[Some("t:2")])
                    .build()
            )
            .unwrap(),
            Message::Update {
                xid: Some(900),
                relation: 5,
                old: Some(OldTuple {
                    key_only: false,
                    tuple: Tuple(vec![text("1")])
                }),
                new: Tuple(vec![text("2")]),
            }
        );
        assert_eq!(
            d.decode(
                &B::new(b'D')
                    .u32(900)
                    .u32(5)
                    .u8(b'K')
                    .tuple(&[Some("t:2")])
                    .build()
            )
            .unwrap(),
            Message::Delete {
                xid: Some(900),
                relation: 5,
                old: OldTuple {
                    key_only: true,
                    tuple: Tuple(vec![text("2")])
                },
            }
        );
        assert_eq!(
            d.decode(&B::new(b'T').u32(900).i32(1).u8(1).u32(5).build())
                .unwrap(),
            Message::Truncate {
                xid: Some(900),
                cascade: true,
                restart_identity: false,
                relations: vec![5],
            }
        );
        assert_eq!(
            d.decode(
                &B::new(b'M')
                    .u32(900)
                    .u8(1)
                    .u64(7)
                    .str("p")
                    .i32(1)
                    .raw(b"x")
                    .build()
            )
            .unwrap(),
            Message::LogicalMessage {
                xid: Some(900),
                transactional: true,
                lsn: 7,
                prefix: "p".into(),
                content: Bytes::from_static(b"x"),
            }
        );
        assert_eq!(
            d.decode(&B::new(b'E').build()).unwrap(),
            Message::StreamStop
        );
        assert!(!d.in_stream());

        // After the block, the same insert has no xid field.
        assert_eq!(
            d.decode(&B::new(b'I').u32(5).u8(b'N').tuple(&[Some("t:1")]).build())
                .unwrap(),
            Message::Insert {
                xid: None,
                relation: 5,
                new: Tuple(vec![text("1")]),
            }
        );

        assert_eq!(
            d.decode(&B::new(b'S').u32(900).u8(0).build()).unwrap(),
            Message::StreamStart {
                xid: 900,
                first_segment: false
            }
        );
        d.decode(&B::new(b'E').build()).unwrap();
        assert_eq!(
            d.decode(
                &B::new(b'c')
                    .u32(900)
                    .u8(0)
                    .u64(10)
                    .u64(20)
                    .i64(TS_PG)
                    .build()
            )
            .unwrap(),
            Message::StreamCommit {
                xid: 900,
                flags: 0,
                commit_lsn: 10,
                end_lsn: 20,
                commit_time_us: TS_UNIX,
            }
        );
        assert_eq!(
            d.decode(&B::new(b'A').u32(900).u32(901).build()).unwrap(),
            Message::StreamAbort {
                xid: 900,
                subxid: 901
            }
        );
        assert!(!d.in_stream());
    }

    #[test]
    fn a_failed_message_leaves_the_stream_state_alone() {
        let mut d = PgoutputDecoder::new();
        assert!(d.decode(&B::new(b'S').u32(900).u8(7).build()).is_err());
        assert!(!d.in_stream());
        let mut d = streaming();
        assert!(d.decode(&B::new(b'E').u8(0).build()).is_err());
        assert!(d.in_stream());
    }

    #[test]
    fn errors_name_the_tag_and_the_problem() {
        let mut d = PgoutputDecoder::new();

        let err = d.decode(&Bytes::new()).unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::Empty);
        assert_eq!(err.tag(), None);

        let err = d.decode(&Bytes::from_static(b"Pxyz")).unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::UnknownTag);
        assert_eq!(err.tag(), Some(b'P'));
        assert_eq!(
            err.to_string(),
            "cannot decode pgoutput unknown ('P') message: the tag is not a pgoutput \
             protocol v1 or v2 message (at byte 0)"
        );

        let err = d.decode(&B::new(b'B').u64(1).build()).unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::Truncated);
        assert_eq!(
            err.to_string(),
            "cannot decode pgoutput Begin ('B') message: the message ends before the \
             commit timestamp (8 bytes needed, 0 left) (at byte 9)"
        );

        let err = d
            .decode(
                &B::new(b'I')
                    .u32(1)
                    .u8(b'N')
                    .u16(1)
                    .u8(b't')
                    .i32(10)
                    .raw(b"abc")
                    .build(),
            )
            .unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::Truncated);
        assert!(
            err.to_string()
                .contains("column value (10 bytes needed, 3 left)"),
            "{err}"
        );

        let err = d.decode(&B::new(b'E').u8(1).build()).unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::TrailingBytes);
        assert_eq!(
            err.to_string(),
            "cannot decode pgoutput Stream Stop ('E') message: 1 bytes follow the last \
             field (at byte 1)"
        );

        let err = d
            .decode(&B::new(b'O').u64(1).raw(b"abc").build())
            .unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::Truncated);
        assert!(
            err.to_string()
                .contains("origin name has no terminating NUL"),
            "{err}"
        );

        let err = d
            .decode(&B::new(b'O').u64(1).raw(b"a\xffb\0").build())
            .unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::Invalid);
        assert_eq!(err.offset(), 10);
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");

        let err = d
            .decode(&B::new(b'I').u32(1).u8(b'N').u16(1).u8(b'x').build())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("column value kind ('n', 'u', 't' or 'b'), got 'x'"),
            "{err}"
        );

        let err = d
            .decode(&B::new(b'B').u64(1).i64(i64::MAX).u32(1).build())
            .unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::Invalid);
        assert!(err.to_string().contains("out of range"), "{err}");
    }

    /// One valid message of every kind, with whether it must be decoded
    /// inside a streamed block.
    fn corpus() -> Vec<(bool, Bytes)> {
        vec![
            (false, B::new(b'B').u64(1).i64(TS_PG).u32(2).build()),
            (false, B::new(b'C').u8(0).u64(1).u64(2).i64(TS_PG).build()),
            (false, B::new(b'O').u64(1).str("origin").build()),
            (false, relation_message(None)),
            (true, relation_message(Some(3))),
            (false, B::new(b'Y').u32(1).str("public").str("mood").build()),
            (
                true,
                B::new(b'Y').u32(3).u32(1).str("public").str("mood").build(),
            ),
            (
                false,
                B::new(b'I')
                    .u32(1)
                    .u8(b'N')
                    .tuple(&[Some("t:abc"), None, Some("u"), Some("b:\0\x01")])
                    .build(),
            ),
            (
                true,
                B::new(b'I')
                    .u32(3)
                    .u32(1)
                    .u8(b'N')
                    .tuple(&[Some("t:x")])
                    .build(),
            ),
            (
                false,
                B::new(b'U')
                    .u32(1)
                    .u8(b'K')
                    .tuple(&[Some("t:1")])
                    .u8(b'N')
                    .tuple(&[Some("t:2"), Some("u")])
                    .build(),
            ),
            (
                false,
                B::new(b'U')
                    .u32(1)
                    .u8(b'O')
                    .tuple(&[Some("t:1"), None])
                    .u8(b'N')
                    .tuple(&[Some("t:2"), None])
                    .build(),
            ),
            (
                false,
                B::new(b'U').u32(1).u8(b'N').tuple(&[Some("t:2")]).build(),
            ),
            (
                false,
                B::new(b'D').u32(1).u8(b'K').tuple(&[Some("t:1")]).build(),
            ),
            (
                true,
                B::new(b'D')
                    .u32(3)
                    .u32(1)
                    .u8(b'O')
                    .tuple(&[Some("t:1")])
                    .build(),
            ),
            (false, B::new(b'T').i32(2).u8(1).u32(1).u32(2).build()),
            (true, B::new(b'T').u32(3).i32(1).u8(0).u32(1).build()),
            (
                false,
                B::new(b'M')
                    .u8(0)
                    .u64(1)
                    .str("p")
                    .i32(3)
                    .raw(b"abc")
                    .build(),
            ),
            (
                true,
                B::new(b'M').u32(3).u8(1).u64(1).str("p").i32(0).build(),
            ),
            (false, B::new(b'S').u32(3).u8(1).build()),
            (true, B::new(b'E').build()),
            (
                false,
                B::new(b'c').u32(3).u8(0).u64(1).u64(2).i64(TS_PG).build(),
            ),
            (false, B::new(b'A').u32(3).u32(4).build()),
        ]
    }

    fn decoder(in_stream: bool) -> PgoutputDecoder {
        PgoutputDecoder { in_stream }
    }

    #[test]
    fn every_strict_prefix_of_a_valid_message_is_an_error() {
        for (in_stream, msg) in corpus() {
            decoder(in_stream)
                .decode(&msg)
                .unwrap_or_else(|e| panic!("{msg:?} should decode: {e}"));
            for len in 0..msg.len() {
                let prefix = msg.slice(..len);
                let result = decoder(in_stream).decode(&prefix);
                assert!(result.is_err(), "prefix {prefix:?} decoded as {result:?}");
                // The other stream state reads different fields; it only
                // must not panic.
                let _ = decoder(!in_stream).decode(&prefix);
            }
        }
    }

    /// xorshift64*: deterministic, so a failure can be reproduced.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn random_and_mutated_input_never_panics() {
        const TAGS: &[u8] = b"BCORYIUDTMSEcAx";
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let corpus = corpus();
        for _ in 0..20_000 {
            // Random bytes behind a real tag reach past the tag dispatch.
            let len = rng.below(48);
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if let Some(first) = buf.first_mut() {
                *first = TAGS[rng.below(TAGS.len())];
            }
            let _ = decoder(rng.below(2) == 1).decode(&Bytes::from(buf));

            // Valid messages with a few bytes changed, cut or extended.
            let (in_stream, msg) = &corpus[rng.below(corpus.len())];
            let mut buf = msg.to_vec();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(buf.len());
                buf[i] = match rng.below(4) {
                    0 => 0,
                    1 => 0xff,
                    _ => rng.next() as u8,
                };
            }
            match rng.below(3) {
                0 => buf.truncate(rng.below(buf.len() + 1)),
                1 => buf.push(rng.next() as u8),
                _ => {}
            }
            let _ = decoder(*in_stream).decode(&Bytes::from(buf));
        }
    }
}
