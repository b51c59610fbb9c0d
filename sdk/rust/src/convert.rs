//! Between the SDK's types and the generated bindings, and the batch loops
//! the export macros call.

use weir_core::wire::decode_batch;
use weir_core::{
    ChangeEvent, Column, Conflict, Image, Op, Resolution, SourceInfo, Value, VersionMeta,
};

use crate::bindings::types as wit;
use crate::event::{Event, Outcome};
use crate::{Resolver, Router, Transformer};

const NOT_INITIALISED: &str = "plugin called before init";

/// Runs a transformer over an encoded batch: one outcome per event.
pub fn run_transform<T: Transformer>(plugin: &mut Option<T>, batch: &[u8]) -> Vec<wit::Outcome> {
    let Some(plugin) = plugin.as_mut() else {
        return vec![wit::Outcome::Failed(NOT_INITIALISED.into())];
    };
    let views = match decode_batch(batch) {
        Ok(v) => v,
        Err(e) => return vec![wit::Outcome::Failed(e.to_string())],
    };
    views
        .into_iter()
        .map(|view| {
            let mut event = Event::new(view);
            match plugin.transform(&mut event) {
                Outcome::Keep => {
                    let patches = event.take_patches();
                    if patches.is_empty() {
                        wit::Outcome::Keep
                    } else {
                        wit::Outcome::Patch(patches.into_iter().map(patch_to_wit).collect())
                    }
                }
                Outcome::Drop => wit::Outcome::Drop,
                Outcome::Replace(events) => {
                    wit::Outcome::Replace(events.into_iter().map(event_to_wit).collect())
                }
                Outcome::Fail(reason) => wit::Outcome::Failed(reason),
            }
        })
        .collect()
}

/// Runs a router over an encoded batch: one route per event.
pub fn run_route<T: Router>(plugin: &mut Option<T>, batch: &[u8]) -> Vec<wit::Route> {
    let Some(plugin) = plugin.as_mut() else {
        return vec![wit::Route::Failed(NOT_INITIALISED.into())];
    };
    let views = match decode_batch(batch) {
        Ok(v) => v,
        Err(e) => return vec![wit::Route::Failed(e.to_string())],
    };
    views
        .into_iter()
        .map(|view| match plugin.route(&Event::new(view)) {
            Ok(to) => wit::Route::To(to),
            Err(reason) => wit::Route::Failed(reason),
        })
        .collect()
}

/// Runs a resolver over one conflict.
pub fn run_resolve<T: Resolver>(
    plugin: &mut Option<T>,
    conflict: wit::Conflict,
) -> Result<wit::Resolution, String> {
    let plugin = plugin.as_mut().ok_or(NOT_INITIALISED)?;
    let conflict = Conflict {
        local: row_from_wit(conflict.local),
        local_meta: VersionMeta {
            commit_time_us: conflict.local_meta.commit_time_us,
            origin: conflict.local_meta.origin,
            txid: conflict.local_meta.txid,
        },
        incoming: event_from_wit(conflict.incoming),
    };
    Ok(match plugin.resolve(&conflict)? {
        Resolution::KeepLocal => wit::Resolution::KeepLocal,
        Resolution::TakeIncoming => wit::Resolution::TakeIncoming,
        Resolution::Merged(row) => wit::Resolution::Merged(row_to_wit(row)),
        Resolution::Review(reason) => wit::Resolution::Review(reason),
    })
}

fn patch_to_wit(p: weir_core::Patch) -> wit::ColumnPatch {
    wit::ColumnPatch {
        image: match p.image {
            Image::Key => wit::Image::Key,
            Image::Before => wit::Image::Before,
            Image::After => wit::Image::After,
        },
        index: p.index,
        value: p.value.map(value_to_wit),
    }
}

fn value_to_wit(v: Value) -> wit::Value {
    match v {
        Value::Null => wit::Value::Null,
        Value::Boolean(b) => wit::Value::Boolean(b),
        Value::Int(i) => wit::Value::Int(i),
        Value::Float(f) => wit::Value::Float(f),
        Value::Decimal(s) => wit::Value::Decimal(s),
        Value::Text(s) => wit::Value::Text(s),
        Value::Bytes(b) => wit::Value::Bytes(b),
        Value::Json(s) => wit::Value::Json(s),
        Value::Date(d) => wit::Value::Date(d),
        Value::Time(t) => wit::Value::Time(t),
        Value::Timestamp(t) => wit::Value::Timestamp(t),
        Value::Timestamptz(t) => wit::Value::Timestamptz(t),
        Value::Uuid(s) => wit::Value::Uuid(s),
        Value::Unchanged => wit::Value::Unchanged,
    }
}

fn value_from_wit(v: wit::Value) -> Value {
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

fn row_to_wit(row: Vec<Column>) -> Vec<wit::Column> {
    row.into_iter()
        .map(|c| wit::Column {
            name: c.name.into(),
            value: value_to_wit(c.value),
        })
        .collect()
}

fn row_from_wit(row: Vec<wit::Column>) -> Vec<Column> {
    row.into_iter()
        .map(|c| Column::new(c.name, value_from_wit(c.value)))
        .collect()
}

fn event_to_wit(e: ChangeEvent) -> wit::ChangeEvent {
    wit::ChangeEvent {
        op: match e.op {
            Op::Create => wit::Op::Create,
            Op::Update => wit::Op::Update,
            Op::Delete => wit::Op::Delete,
            Op::Truncate => wit::Op::Truncate,
            Op::Read => wit::Op::Read,
        },
        source: wit::SourceInfo {
            connector: e.source.connector.into(),
            database: e.source.database.into(),
            schema: e.source.schema.into(),
            table: e.source.table.into(),
            position: e.source.position.into(),
            txid: e.source.txid.map(Into::into),
            commit_time_us: e.source.commit_time_us,
            origin: e.source.origin.map(Into::into),
        },
        key: row_to_wit(e.key),
        before: e.before.map(row_to_wit),
        after: e.after.map(row_to_wit),
    }
}

fn event_from_wit(e: wit::ChangeEvent) -> ChangeEvent {
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
