//! Event values in PostgreSQL's text input syntax: the apply statements
//! pass every column as a `text[]` parameter and cast it to the target
//! column's type, so any type with a text form (arrays, enums, domains,
//! ranges) takes values without the sink knowing it.

use std::fmt::Write as _;

use weir_core::Value;
use weir_core::envelope::{format_date, format_time_of_day, format_utc_micros};

/// The value as PostgreSQL reads it; `None` for SQL NULL.
pub(crate) fn render(value: &Value) -> Option<String> {
    Some(match value {
        Value::Null | Value::Unchanged => return None,
        Value::Boolean(b) => if *b { "t" } else { "f" }.to_owned(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.is_nan() => "NaN".to_owned(),
        Value::Float(f) if f.is_infinite() => {
            if *f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
        }
        Value::Float(f) => f.to_string(),
        Value::Decimal(s) | Value::Text(s) | Value::Json(s) | Value::Uuid(s) => s.clone(),
        Value::Bytes(b) => {
            let mut s = String::with_capacity(2 + 2 * b.len());
            s.push_str("\\x");
            for byte in b {
                let _ = write!(s, "{byte:02x}");
            }
            s
        }
        Value::Date(d) => format_date(*d),
        Value::Time(t) => format_time_of_day(*t),
        // PostgreSQL ignores the zone of a `timestamp` literal; the session
        // runs in UTC, so both read the same instant.
        Value::Timestamp(t) | Value::Timestamptz(t) => format_utc_micros(*t),
    })
}

/// The column type `create_tables` and `evolve_schema` give a column
/// whose first value is `value` (`docs/sql-sinks.md` lists them); `text`
/// when every value is null.
pub(crate) fn column_type(value: Option<&Value>, _key: bool) -> &'static str {
    let Some(value) = value else { return "text" };
    match value {
        Value::Null | Value::Unchanged => "text",
        Value::Boolean(_) => "boolean",
        Value::Int(_) => "bigint",
        Value::Float(_) => "double precision",
        Value::Decimal(_) => "numeric",
        Value::Text(_) => "text",
        Value::Bytes(_) => "bytea",
        Value::Json(_) => "jsonb",
        Value::Date(_) => "date",
        Value::Time(_) => "time",
        Value::Timestamp(_) => "timestamp",
        Value::Timestamptz(_) => "timestamptz",
        Value::Uuid(_) => "uuid",
    }
}

/// `name` as a quoted SQL identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_in_input_syntax() {
        assert_eq!(render(&Value::Null), None);
        assert_eq!(render(&Value::Boolean(true)).unwrap(), "t");
        assert_eq!(render(&Value::Int(-7)).unwrap(), "-7");
        assert_eq!(render(&Value::Float(f64::NAN)).unwrap(), "NaN");
        assert_eq!(
            render(&Value::Float(f64::NEG_INFINITY)).unwrap(),
            "-Infinity"
        );
        assert_eq!(render(&Value::Float(0.1)).unwrap(), "0.1");
        assert_eq!(render(&Value::Bytes(vec![0, 255])).unwrap(), "\\x00ff");
        assert_eq!(render(&Value::Date(1)).unwrap(), "1970-01-02");
        assert_eq!(render(&Value::Time(1_000_001)).unwrap(), "00:00:01.000001");
        assert_eq!(
            render(&Value::Timestamptz(0)).unwrap(),
            "1970-01-01T00:00:00.000000Z"
        );
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
    }
}
