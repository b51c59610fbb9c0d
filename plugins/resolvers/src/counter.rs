//! The counter merge: apply the incoming change's delta to the local value
//! instead of overwriting it, so concurrent increments all count.

use weir_plugin_sdk::{ChangeEvent, Column, Conflict, Op, Resolution, Value};

/// Merges `conflict` for counter columns `counters`; the other columns take
/// the incoming values when `incoming_later` (last-writer-wins), else keep
/// the local ones.
pub fn merge(counters: &[String], conflict: &Conflict, incoming_later: bool) -> Resolution {
    let incoming = &conflict.incoming;
    if incoming.op == Op::Delete {
        return Resolution::TakeIncoming;
    }
    let table = qualified(incoming);
    let op = incoming.op.name();
    let Some(before) = incoming.before.as_deref() else {
        let hint = if incoming.op == Op::Update {
            " (on PostgreSQL, set REPLICA IDENTITY FULL on the table)"
        } else {
            ""
        };
        return Resolution::Review(format!(
            "the incoming {op} on {table} has no before image to take counter deltas from{hint}"
        ));
    };
    let Some(after) = incoming.after.as_deref() else {
        return Resolution::Review(format!("the incoming {op} on {table} has no after image"));
    };

    let mut merged: Vec<Column> = conflict.local.clone();
    for name in counters {
        let number = |row: &[Column], image: &str| -> Result<Number, String> {
            match column(row, name) {
                None => Err(format!(
                    "counter column `{name}` is missing from the {image} of {table}"
                )),
                Some(value) => Number::of(value).ok_or_else(|| {
                    format!(
                        "counter column `{name}` is not a number in the {image} of {table} \
                         (found {})",
                        value.type_name()
                    )
                }),
            }
        };
        let values = number(&conflict.local, "local row").and_then(|local| {
            Ok((
                local,
                number(before, "incoming before image")?,
                number(after, "incoming after image")?,
            ))
        });
        let (local, old, new) = match values {
            Ok(v) => v,
            Err(reason) => return Resolution::Review(reason),
        };
        let Some(sum) = local.add_delta(old, new) else {
            return Resolution::Review(format!(
                "counter column `{name}` of {table} overflows: {local} + ({new} - {old})"
            ));
        };
        if let Some(c) = merged.iter_mut().find(|c| c.name == *name) {
            c.value = sum;
        }
    }
    for c in merged.iter_mut() {
        if counters.iter().any(|n| *n == c.name) || !incoming_later {
            continue;
        }
        // An unchanged TOAST value says nothing new: the local one stays.
        match column(after, &c.name) {
            Some(Value::Unchanged) | None => {}
            Some(v) => c.value = v.clone(),
        }
    }
    Resolution::Merged(merged)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    fn of(value: &Value) -> Option<Number> {
        match *value {
            Value::Int(i) => Some(Number::Int(i)),
            Value::Float(f) => Some(Number::Float(f)),
            _ => None,
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }

    /// `self + (new - old)`: exact for ints (None on overflow), float if
    /// any of the three is a float.
    fn add_delta(self, old: Number, new: Number) -> Option<Value> {
        match (self, old, new) {
            (Number::Int(local), Number::Int(old), Number::Int(new)) => new
                .checked_sub(old)
                .and_then(|delta| local.checked_add(delta))
                .map(Value::Int),
            _ => {
                let sum = self.as_f64() + (new.as_f64() - old.as_f64());
                sum.is_finite().then_some(Value::Float(sum))
            }
        }
    }
}

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::Float(x) => write!(f, "{x}"),
        }
    }
}

/// The value of column `name` of `row`.
fn column<'r>(row: &'r [Column], name: &str) -> Option<&'r Value> {
    row.iter().find(|c| c.name == name).map(|c| &c.value)
}

/// `schema.table`, or `table` when the source has no schema.
fn qualified(event: &ChangeEvent) -> String {
    if event.source.schema.is_empty() {
        event.source.table.to_string()
    } else {
        event.qualified_table()
    }
}
