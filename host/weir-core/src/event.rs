//! The change event: one row change, as every source produces it.
//!
//! The wire encoding ([`crate::wire`]) writes these types field by field
//! and [`crate::wire::EventRef`] mirrors them with borrowed fields: change
//! them together, and only with a new wire version.

use serde::{Deserialize, Serialize};

/// The string type of column names and source fields: up to 23 bytes are
/// stored inline and longer ones are shared, so neither building nor
/// cloning an event allocates them (decision 0033). It derefs to `str` and
/// compares with `&str` and `String`; make one with `.into()`.
pub use smol_str::SmolStr as Name;

/// A typed column value. Units follow the WIT contract (`wit/weir-plugin.wit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Null,
    Boolean(bool),
    Int(i64),
    Float(f64),
    /// Exact decimal as text.
    Decimal(String),
    Text(String),
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    /// JSON document as text.
    Json(String),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since the Unix epoch, no time zone.
    Timestamp(i64),
    /// Microseconds since the Unix epoch, UTC.
    Timestamptz(i64),
    /// Lower-case hyphenated UUID.
    Uuid(String),
    /// The source did not send this value (unchanged TOAST).
    Unchanged,
}

impl Value {
    /// The text of a textual value (text, decimal, json, uuid), if any.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) | Value::Decimal(s) | Value::Json(s) | Value::Uuid(s) => Some(s),
            _ => None,
        }
    }

    /// The type name used in error messages and `weir plugin inspect`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Boolean(_) => "boolean",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Decimal(_) => "decimal",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
            Value::Json(_) => "json",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::Timestamp(_) => "timestamp",
            Value::Timestamptz(_) => "timestamptz",
            Value::Uuid(_) => "uuid",
            Value::Unchanged => "unchanged",
        }
    }
}

/// One named column of a row image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: Name,
    pub value: Value,
}

impl Column {
    pub fn new(name: impl Into<Name>, value: Value) -> Self {
        Column {
            name: name.into(),
            value,
        }
    }
}

/// A row image: columns in table order.
pub type Row = Vec<Column>;

/// What happened to the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    Create,
    Update,
    Delete,
    Truncate,
    /// A row read by the initial snapshot.
    Read,
}

impl Op {
    /// The Debezium `op` code.
    pub fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Truncate => "t",
            Op::Read => "r",
        }
    }

    /// Parses a Debezium `op` code or a spelled-out name (`create`, ...).
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "c" | "create" | "insert" => Op::Create,
            "u" | "update" => Op::Update,
            "d" | "delete" => Op::Delete,
            "t" | "truncate" => Op::Truncate,
            "r" | "read" => Op::Read,
            _ => return None,
        })
    }

    /// The spelled-out name.
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
            Op::Truncate => "truncate",
            Op::Read => "read",
        }
    }
}

/// Where a change came from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SourceInfo {
    pub connector: Name,
    pub database: Name,
    pub schema: Name,
    pub table: Name,
    /// PostgreSQL LSN or binlog position, as text.
    pub position: Name,
    pub txid: Option<Name>,
    /// Commit time, microseconds since the Unix epoch (UTC).
    pub commit_time_us: i64,
    pub origin: Option<Name>,
    /// The plugin versions that processed the event (`name=version`,
    /// comma-separated), stamped by the pipeline after its transformer
    /// chain. Host-side only: the wire encoding does not carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<Name>,
}

/// One row change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub op: Op,
    pub source: SourceInfo,
    /// Primary-key columns.
    pub key: Row,
    pub before: Option<Row>,
    pub after: Option<Row>,
}

/// A row image of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Image {
    Key,
    Before,
    After,
}

impl ChangeEvent {
    /// The row image `image`, if the event has one.
    pub fn image(&self, image: Image) -> Option<&Row> {
        match image {
            Image::Key => Some(&self.key),
            Image::Before => self.before.as_ref(),
            Image::After => self.after.as_ref(),
        }
    }

    /// The row image `image` for modification, if the event has one.
    pub fn image_mut(&mut self, image: Image) -> Option<&mut Row> {
        match image {
            Image::Key => Some(&mut self.key),
            Image::Before => self.before.as_mut(),
            Image::After => self.after.as_mut(),
        }
    }

    /// A rough in-memory size, for byte-bounded queues: cheap, not exact.
    pub fn approx_bytes(&self) -> usize {
        fn row(r: &[Column]) -> usize {
            r.iter()
                .map(|c| {
                    48 + c.name.len()
                        + match &c.value {
                            Value::Bytes(b) => b.len(),
                            v => v.as_str().map_or(0, str::len),
                        }
                })
                .sum()
        }
        let s = &self.source;
        160 + s.database.len()
            + s.schema.len()
            + s.table.len()
            + s.position.len()
            + row(&self.key)
            + self.before.as_deref().map_or(0, row)
            + self.after.as_deref().map_or(0, row)
    }

    /// `schema.table`, the name most users know a table by.
    pub fn qualified_table(&self) -> String {
        format!("{}.{}", self.source.schema, self.source.table)
    }
}

/// Looks a column up by name.
pub fn column<'r>(row: &'r [Column], name: &str) -> Option<&'r Value> {
    row.iter().find(|c| c.name == name).map(|c| &c.value)
}

/// A change to one column of one image, as a transformer returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    pub image: Image,
    /// Index of the column within the image.
    pub index: u32,
    /// The new value, or `None` to remove the column.
    pub value: Option<Value>,
}

/// A patch refers to a column the event does not have.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("patch refers to column {index} of the {image:?} image, which has {len} columns")]
pub struct PatchError {
    pub image: Image,
    pub index: u32,
    pub len: usize,
}

impl ChangeEvent {
    /// Applies patches: values are replaced first, then removed columns are
    /// taken out, so indexes always refer to the event as it was encoded.
    /// Every patch is checked before any is applied: on error the event is
    /// left as it was.
    pub fn apply_patches(&mut self, patches: &[Patch]) -> Result<(), PatchError> {
        self.apply_patches_owned(patches.to_vec())
    }

    /// [`ChangeEvent::apply_patches`], moving the new values in instead of
    /// cloning them (the runtime's hot path).
    pub fn apply_patches_owned(&mut self, patches: Vec<Patch>) -> Result<(), PatchError> {
        for p in &patches {
            let len = self.image(p.image).map_or(0, Vec::len);
            if p.index as usize >= len {
                return Err(PatchError {
                    image: p.image,
                    index: p.index,
                    len,
                });
            }
        }
        let mut removals: Vec<(Image, usize)> = Vec::new();
        for p in patches {
            let row = self.image_mut(p.image).expect("checked above");
            match p.value {
                Some(v) => row[p.index as usize].value = v,
                None => removals.push((p.image, p.index as usize)),
            }
        }
        if removals.is_empty() {
            return Ok(());
        }
        // Remove from the highest index down so earlier indexes stay valid.
        removals.sort_unstable_by_key(|r| std::cmp::Reverse(r.1));
        removals.dedup();
        for (image, index) in removals {
            if let Some(row) = self.image_mut(image) {
                row.remove(index);
            }
        }
        Ok(())
    }
}

/// Version information about a row version taking part in a conflict.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VersionMeta {
    /// Commit time, microseconds since the Unix epoch (UTC).
    pub commit_time_us: i64,
    pub origin: Option<String>,
    pub txid: Option<String>,
}

/// An incoming change meets a local row that changed since its before image.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub local: Row,
    pub local_meta: VersionMeta,
    pub incoming: ChangeEvent,
}

/// A resolver's decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    KeepLocal,
    TakeIncoming,
    Merged(Row),
    Review(String),
}
