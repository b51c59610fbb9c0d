//! Event values as MySQL literals, and column types for created tables.
//!
//! The apply statements go over the text protocol with literal values:
//! one round trip per statement, no prepared statement per row count, no
//! 65,535-placeholder limit. Strings go as hex (`_utf8mb4 X'…'`), so no
//! `sql_mode` or character set changes how they read.

use std::fmt::Write as _;

use weir_core::Value;
use weir_core::envelope::{format_date, format_time_of_day, format_utc_micros};

/// Appends `value` as a literal to `out`; an error for a value MySQL cannot
/// hold (a float NaN or infinity).
pub(crate) fn literal(value: &Value, out: &mut String) -> Result<(), String> {
    match value {
        Value::Null | Value::Unchanged => out.push_str("NULL"),
        Value::Boolean(b) => out.push_str(if *b { "1" } else { "0" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) if !f.is_finite() => {
            return Err(format!("MySQL cannot store the float {f}"));
        }
        Value::Float(f) => {
            let _ = write!(out, "{f:e}");
        }
        Value::Decimal(s)
            if !s.is_empty()
                && s.bytes().all(|b| {
                    b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')
                }) =>
        {
            out.push_str(s);
        }
        Value::Decimal(s) | Value::Text(s) | Value::Json(s) | Value::Uuid(s) => {
            out.push_str("_utf8mb4 ");
            hex(s.as_bytes(), out);
        }
        Value::Bytes(b) => hex(b, out),
        Value::Date(d) => {
            let _ = write!(out, "'{}'", format_date(*d));
        }
        Value::Time(t) => {
            let _ = write!(out, "'{}'", format_time_of_day(*t));
        }
        Value::Timestamp(t) | Value::Timestamptz(t) => {
            // `YYYY-MM-DDTHH:MM:SS.ffffffZ` without the zone: the session
            // runs in UTC.
            let text = format_utc_micros(*t);
            let _ = write!(out, "'{}'", text.trim_end_matches('Z').replace('T', " "));
        }
    }
    Ok(())
}

fn hex(bytes: &[u8], out: &mut String) {
    if bytes.is_empty() {
        // `X''` is an empty binary string; say so plainly.
        out.push_str("''");
        return;
    }
    out.push_str("X'");
    for b in bytes {
        let _ = write!(out, "{b:02X}");
    }
    out.push('\'');
}

/// The column type `create_tables` and `evolve_schema` give a column
/// whose first value is `value` (`docs/sql-sinks.md`); key columns get
/// indexable types; text when every value is null.
pub(crate) fn column_type(value: Option<&Value>, key: bool) -> &'static str {
    match value.unwrap_or(&Value::Null) {
        Value::Null | Value::Unchanged if key => "VARCHAR(255)",
        Value::Null | Value::Unchanged => "LONGTEXT",
        Value::Boolean(_) => "BOOLEAN",
        Value::Int(_) => "BIGINT",
        Value::Float(_) => "DOUBLE",
        Value::Decimal(_) => "DECIMAL(65,30)",
        Value::Text(_) if key => "VARCHAR(255)",
        Value::Text(_) => "LONGTEXT",
        Value::Bytes(_) if key => "VARBINARY(255)",
        Value::Bytes(_) => "LONGBLOB",
        Value::Json(_) => "JSON",
        Value::Date(_) => "DATE",
        Value::Time(_) => "TIME(6)",
        Value::Timestamp(_) | Value::Timestamptz(_) => "DATETIME(6)",
        Value::Uuid(_) => "CHAR(36)",
    }
}

/// `name` as a quoted identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(v: Value) -> String {
        let mut s = String::new();
        literal(&v, &mut s).unwrap();
        s
    }

    #[test]
    fn values_become_literals_that_need_no_escaping() {
        assert_eq!(lit(Value::Null), "NULL");
        assert_eq!(lit(Value::Boolean(true)), "1");
        assert_eq!(lit(Value::Int(-3)), "-3");
        assert_eq!(lit(Value::Float(1.5)), "1.5e0");
        assert_eq!(lit(Value::Decimal("12.50".into())), "12.50");
        assert_eq!(lit(Value::Decimal("NaN".into())), "_utf8mb4 X'4E614E'");
        assert_eq!(lit(Value::Text("a'\\".into())), "_utf8mb4 X'61275C'");
        assert_eq!(lit(Value::Text(String::new())), "_utf8mb4 ''");
        assert_eq!(lit(Value::Bytes(vec![0, 255])), "X'00FF'");
        assert_eq!(lit(Value::Date(0)), "'1970-01-01'");
        assert_eq!(
            lit(Value::Timestamptz(1_700_000_000_123_456)),
            "'2023-11-14 22:13:20.123456'"
        );
        assert!(literal(&Value::Float(f64::NAN), &mut String::new()).is_err());
        assert_eq!(ident("we`ird"), "`we``ird`");
    }
}
