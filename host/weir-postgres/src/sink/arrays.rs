//! One column of a step as one array parameter. Where the target column's
//! type has a cheap binary form and every value in the step is of the
//! matching kind, the array goes in that type (`int8[]`, `bool[]`, ...)
//! and the server takes the values as they are; otherwise it goes as
//! `text[]` and the server casts each value from text, which costs it
//! about as much as the insert itself (`docs/benchmarks.md`).

use std::time::{Duration, SystemTime};

use tokio_postgres::types::ToSql;
use weir_core::Value;

use super::text::render;

/// See the module docs.
#[derive(Debug)]
pub(crate) enum ColumnArray<'a> {
    /// Values in text form, cast to the column's type by the server.
    Text(Vec<Option<String>>),
    /// Text for a text column: no cast.
    Str(Vec<Option<&'a str>>),
    Int8(Vec<Option<i64>>),
    Int4(Vec<Option<i32>>),
    Int2(Vec<Option<i16>>),
    Float8(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    /// `timestamp` and `timestamptz` alike: microseconds since the epoch.
    Time(Vec<Option<SystemTime>>),
}

/// `Some(None)` for a null, `Some(Some(x))` for a value `f` takes, `None`
/// for one it does not (the column goes as text).
fn typed<'a, T>(
    values: &[&'a Value],
    f: impl Fn(&'a Value) -> Option<T>,
) -> Option<Vec<Option<T>>> {
    values
        .iter()
        .map(|v| match v {
            Value::Null => Some(None),
            v => f(v).map(Some),
        })
        .collect()
}

/// Microseconds since the epoch as a time, within the years PostgreSQL
/// and `SystemTime` both hold.
fn time(us: i64) -> Option<SystemTime> {
    const LIMIT: i64 = 200_000 * 365 * 86_400 * 1_000_000; // about 200,000 years
    if us.abs() > LIMIT {
        return None;
    }
    let d = Duration::from_micros(us.unsigned_abs());
    Some(if us >= 0 {
        SystemTime::UNIX_EPOCH + d
    } else {
        SystemTime::UNIX_EPOCH - d
    })
}

impl<'a> ColumnArray<'a> {
    /// The array for `values` going into a column of type `target`
    /// (`format_type` spelling).
    pub(crate) fn build(target: &str, values: &[&'a Value]) -> Self {
        let binary = match target {
            "bigint" => typed(values, |v| match v {
                Value::Int(i) => Some(*i),
                _ => None,
            })
            .map(ColumnArray::Int8),
            "integer" => typed(values, |v| match v {
                Value::Int(i) => i32::try_from(*i).ok(),
                _ => None,
            })
            .map(ColumnArray::Int4),
            "smallint" => typed(values, |v| match v {
                Value::Int(i) => i16::try_from(*i).ok(),
                _ => None,
            })
            .map(ColumnArray::Int2),
            "double precision" => typed(values, |v| match v {
                Value::Float(f) => Some(*f),
                _ => None,
            })
            .map(ColumnArray::Float8),
            "boolean" => typed(values, |v| match v {
                Value::Boolean(b) => Some(*b),
                _ => None,
            })
            .map(ColumnArray::Bool),
            "text" => typed(values, |v| match v {
                Value::Text(s) => Some(s.as_str()),
                _ => None,
            })
            .map(ColumnArray::Str),
            "timestamp with time zone" => typed(values, |v| match v {
                Value::Timestamptz(t) => time(*t),
                _ => None,
            })
            .map(ColumnArray::Time),
            "timestamp without time zone" => typed(values, |v| match v {
                Value::Timestamp(t) => time(*t),
                _ => None,
            })
            .map(ColumnArray::Time),
            _ => None,
        };
        binary.unwrap_or_else(|| ColumnArray::Text(values.iter().map(|v| render(v)).collect()))
    }

    /// The parameter's type, as written in the statement.
    pub(crate) fn param_type(&self, target: &str) -> &'static str {
        match self {
            ColumnArray::Text(_) | ColumnArray::Str(_) => "text[]",
            ColumnArray::Int8(_) => "int8[]",
            ColumnArray::Int4(_) => "int4[]",
            ColumnArray::Int2(_) => "int2[]",
            ColumnArray::Float8(_) => "float8[]",
            ColumnArray::Bool(_) => "bool[]",
            ColumnArray::Time(_) if target == "timestamp with time zone" => "timestamptz[]",
            ColumnArray::Time(_) => "timestamp[]",
        }
    }

    /// Whether the server casts the values from text.
    pub(crate) fn cast(&self) -> bool {
        matches!(self, ColumnArray::Text(_))
    }

    pub(crate) fn as_param(&self) -> &(dyn ToSql + Sync) {
        match self {
            ColumnArray::Text(v) => v,
            ColumnArray::Str(v) => v,
            ColumnArray::Int8(v) => v,
            ColumnArray::Int4(v) => v,
            ColumnArray::Int2(v) => v,
            ColumnArray::Float8(v) => v,
            ColumnArray::Bool(v) => v,
            ColumnArray::Time(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_goes_binary_only_when_every_value_fits() {
        let (one, null, big) = (Value::Int(1), Value::Null, Value::Int(1 << 40));
        let a = ColumnArray::build("integer", &[&one, &null]);
        assert!(matches!(&a, ColumnArray::Int4(v) if v == &[Some(1), None]));
        assert_eq!(a.param_type("integer"), "int4[]");
        // Too large for an `integer`: the server's cast reports it.
        let a = ColumnArray::build("integer", &[&one, &big]);
        assert!(a.cast());
        // A text value for a numeric column: cast.
        let price = Value::Decimal("9.50".into());
        assert!(ColumnArray::build("numeric(12,2)", &[&price]).cast());
        // A mapped type the sink does not know: cast.
        let name = Value::Text("x".into());
        assert!(ColumnArray::build("character varying(40)", &[&name]).cast());
        assert!(!ColumnArray::build("text", &[&name]).cast());
        let at = Value::Timestamptz(-1);
        let a = ColumnArray::build("timestamp with time zone", &[&at]);
        assert_eq!(a.param_type("timestamp with time zone"), "timestamptz[]");
        assert!(
            ColumnArray::build("timestamp with time zone", &[&Value::Timestamptz(i64::MAX)]).cast()
        );
    }
}
