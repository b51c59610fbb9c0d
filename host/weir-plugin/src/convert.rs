//! Between the generated binding types and `weir-core`'s event model.

use weir_core::{ChangeEvent, Column, Conflict, Image, Op, Patch, Resolution, SourceInfo, Value};

use crate::bindings::types as wit;

pub(crate) fn value_from_wit(v: wit::Value) -> Value {
    match v {
        wit::Value::Null => Value::Null,
        wit::Value::Boolean(b) => Value::Boolean(b),
        wit::Value::Int(i) => Value::Int(i),
        wit::Value::Float(f) => Value::Float(f),
        wit::Value::Decimal(s) => Value::Decimal(s),
        wit::Value::Text(s) => Value::Text(s),
        wit::Value::Bytes(b) => Value::Bytes(b),
        wit::Value::Json(s) => Value::Json(s),
        wit::Value::Date(d) => Value::Date(d),
        wit::Value::Time(t) => Value::Time(t),
        wit::Value::Timestamp(t) => Value::Timestamp(t),
        wit::Value::Timestamptz(t) => Value::Timestamptz(t),
        wit::Value::Uuid(s) => Value::Uuid(s),
        wit::Value::Unchanged => Value::Unchanged,
    }
}

pub(crate) fn value_to_wit(v: &Value) -> wit::Value {
    match v {
        Value::Null => wit::Value::Null,
        Value::Boolean(b) => wit::Value::Boolean(*b),
        Value::Int(i) => wit::Value::Int(*i),
        Value::Float(f) => wit::Value::Float(*f),
        Value::Decimal(s) => wit::Value::Decimal(s.clone()),
        Value::Text(s) => wit::Value::Text(s.clone()),
        Value::Bytes(b) => wit::Value::Bytes(b.clone()),
        Value::Json(s) => wit::Value::Json(s.clone()),
        Value::Date(d) => wit::Value::Date(*d),
        Value::Time(t) => wit::Value::Time(*t),
        Value::Timestamp(t) => wit::Value::Timestamp(*t),
        Value::Timestamptz(t) => wit::Value::Timestamptz(*t),
        Value::Uuid(s) => wit::Value::Uuid(s.clone()),
        Value::Unchanged => wit::Value::Unchanged,
    }
}

pub(crate) fn row_from_wit(row: Vec<wit::Column>) -> Vec<Column> {
    row.into_iter()
        .map(|c| Column::new(c.name, value_from_wit(c.value)))
        .collect()
}

fn row_to_wit(row: &[Column]) -> Vec<wit::Column> {
    row.iter()
        .map(|c| wit::Column {
            name: c.name.to_string(),
            value: value_to_wit(&c.value),
        })
        .collect()
}

pub(crate) fn patch_from_wit(p: wit::ColumnPatch) -> Patch {
    Patch {
        image: match p.image {
            wit::Image::Key => Image::Key,
            wit::Image::Before => Image::Before,
            wit::Image::After => Image::After,
        },
        index: p.index,
        value: p.value.map(value_from_wit),
    }
}

pub(crate) fn event_from_wit(e: wit::ChangeEvent) -> ChangeEvent {
    ChangeEvent {
        op: match e.op {
            wit::Op::Create => Op::Create,
            wit::Op::Update => Op::Update,
            wit::Op::Delete => Op::Delete,
            wit::Op::Truncate => Op::Truncate,
            wit::Op::Read => Op::Read,
        },
        source: SourceInfo {
            connector: e.source.connector.into(),
            database: e.source.database.into(),
            schema: e.source.schema.into(),
            table: e.source.table.into(),
            position: e.source.position.into(),
            txid: e.source.txid.map(Into::into),
            commit_time_us: e.source.commit_time_us,
            origin: e.source.origin.map(Into::into),
            plugins: None,
        },
        key: row_from_wit(e.key),
        before: e.before.map(row_from_wit),
        after: e.after.map(row_from_wit),
    }
}

fn event_to_wit(e: &ChangeEvent) -> wit::ChangeEvent {
    wit::ChangeEvent {
        op: match e.op {
            Op::Create => wit::Op::Create,
            Op::Update => wit::Op::Update,
            Op::Delete => wit::Op::Delete,
            Op::Truncate => wit::Op::Truncate,
            Op::Read => wit::Op::Read,
        },
        source: wit::SourceInfo {
            connector: e.source.connector.to_string(),
            database: e.source.database.to_string(),
            schema: e.source.schema.to_string(),
            table: e.source.table.to_string(),
            position: e.source.position.to_string(),
            txid: e.source.txid.as_ref().map(ToString::to_string),
            commit_time_us: e.source.commit_time_us,
            origin: e.source.origin.as_ref().map(ToString::to_string),
        },
        key: row_to_wit(&e.key),
        before: e.before.as_deref().map(row_to_wit),
        after: e.after.as_deref().map(row_to_wit),
    }
}

pub(crate) fn conflict_to_wit(c: &Conflict) -> wit::Conflict {
    wit::Conflict {
        local: row_to_wit(&c.local),
        local_meta: wit::VersionMeta {
            commit_time_us: c.local_meta.commit_time_us,
            origin: c.local_meta.origin.clone(),
            txid: c.local_meta.txid.clone(),
        },
        incoming: event_to_wit(&c.incoming),
    }
}

pub(crate) fn resolution_from_wit(r: wit::Resolution) -> Resolution {
    match r {
        wit::Resolution::KeepLocal => Resolution::KeepLocal,
        wit::Resolution::TakeIncoming => Resolution::TakeIncoming,
        wit::Resolution::Merged(row) => Resolution::Merged(row_from_wit(row)),
        wit::Resolution::Review(reason) => Resolution::Review(reason),
    }
}
