//! Binlog row values to typed [`Value`]s, by the column's type, flags and
//! character set as the table-map event describes them
//! (`binlog_row_metadata = FULL`). The table in `docs/mysql.md` lists the
//! mapping.

use mysql_async::Column;
use mysql_async::Value as MyValue;
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_common::collations::{Collation, CollationId};
use weir_core::Value;

/// The `binary` character set: bytes, not text.
const BINARY_CHARSET: u16 = 63;

/// Days from 1970-01-01 to 0001-01-01's Julian day.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// The typed value of one column, or why it cannot be read.
pub fn decode(column: &Column, value: &BinlogValue<'_>) -> Result<Value, String> {
    let value = match value {
        BinlogValue::Value(v) => v,
        BinlogValue::Jsonb(j) => {
            // MySQL's binary JSON; MariaDB's JSON is text.
            let json = serde_json::Value::try_from(j.clone())
                .map_err(|e| format!("binary JSON that cannot be read: {e}"))?;
            return Ok(Value::Json(json.to_string()));
        }
        BinlogValue::JsonDiff(_) => {
            return Err(
                "a partial JSON update; set `binlog_row_value_options = ''` on the server so that JSON columns are logged whole".to_owned(),
            );
        }
    };
    decode_value(column, value)
}

/// The typed value of one column as a query result or a binlog row gives
/// it.
pub fn decode_value(column: &Column, value: &MyValue) -> Result<Value, String> {
    let ty = column.column_type();
    Ok(match value {
        MyValue::NULL => Value::Null,
        // Also unsigned values that fit in i64, and an ENUM's 1-based index.
        MyValue::Int(i) => Value::Int(*i),
        MyValue::UInt(u) => match i64::try_from(*u) {
            Ok(i) => Value::Int(i),
            // An unsigned BIGINT above 2^63 stays exact.
            Err(_) => Value::Decimal(u.to_string()),
        },
        MyValue::Float(f) => Value::Float(f64::from(*f)),
        MyValue::Double(f) => Value::Float(*f),
        MyValue::Date(y, m, d, h, mi, s, us) => {
            let days = days_since_epoch(*y, *m, *d)?;
            let micros = |days: i32| {
                i64::from(days) * 86_400 * MICROS_PER_SECOND
                    + (i64::from(*h) * 3600 + i64::from(*mi) * 60 + i64::from(*s))
                        * MICROS_PER_SECOND
                    + i64::from(*us)
            };
            match ty {
                ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => match days {
                    Some(days) => Value::Date(days),
                    None => Value::Null,
                },
                // A query result (the snapshot) gives a TIMESTAMP in the
                // session's time zone, which the snapshot sets to UTC.
                ColumnType::MYSQL_TYPE_TIMESTAMP | ColumnType::MYSQL_TYPE_TIMESTAMP2 => {
                    days.map_or(Value::Null, |d| Value::Timestamptz(micros(d)))
                }
                _ => days.map_or(Value::Null, |d| Value::Timestamp(micros(d))),
            }
        }
        MyValue::Time(negative, days, h, m, s, us) => {
            let micros = ((i64::from(*days) * 24 + i64::from(*h)) * 3600
                + i64::from(*m) * 60
                + i64::from(*s))
                * MICROS_PER_SECOND
                + i64::from(*us);
            Value::Time(if *negative { -micros } else { micros })
        }
        MyValue::Bytes(b) => bytes(column, ty, b)?,
    })
}

/// A value the binlog carries as bytes, by its column type.
fn bytes(column: &Column, ty: ColumnType, b: &[u8]) -> Result<Value, String> {
    let text = || std::str::from_utf8(b).map_err(|_| "text that is not UTF-8".to_owned());
    Ok(match ty {
        ColumnType::MYSQL_TYPE_NEWDECIMAL | ColumnType::MYSQL_TYPE_DECIMAL => {
            Value::Decimal(text()?.to_owned())
        }
        // `<seconds since the epoch>[.<fraction>]`, always UTC.
        ColumnType::MYSQL_TYPE_TIMESTAMP | ColumnType::MYSQL_TYPE_TIMESTAMP2 => {
            Value::Timestamptz(epoch_micros(text()?)?)
        }
        ColumnType::MYSQL_TYPE_YEAR => Value::Int(
            text()?
                .parse()
                .map_err(|_| format!("a YEAR that is not a number: {b:?}"))?,
        ),
        ColumnType::MYSQL_TYPE_JSON => Value::Json(text()?.to_owned()),
        ColumnType::MYSQL_TYPE_BIT
        | ColumnType::MYSQL_TYPE_GEOMETRY
        | ColumnType::MYSQL_TYPE_SET => Value::Bytes(b.to_vec()),
        _ if column.character_set() == BINARY_CHARSET
            || (column.flags().contains(ColumnFlags::BINARY_FLAG)
                && column.character_set() == 0) =>
        {
            Value::Bytes(b.to_vec())
        }
        _ => match charset_encoding(column.character_set()) {
            Charset::Utf8 => match std::str::from_utf8(b) {
                Ok(s) => Value::Text(s.to_owned()),
                // Not what the column says it holds: the bytes, unchanged,
                // rather than a guess or a stopped pipeline.
                Err(_) => Value::Bytes(b.to_vec()),
            },
            Charset::Other(encoding) => {
                let (text, _) = encoding.decode_without_bom_handling(b);
                Value::Text(text.into_owned())
            }
            Charset::Utf32 => Value::Text(
                b.chunks(4)
                    .map(|c| {
                        let code = u32::from_be_bytes(c.try_into().unwrap_or([0, 0, 0xff, 0xfd]));
                        char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
                    })
                    .collect(),
            ),
            // A character set no decoder here knows: the bytes, unchanged.
            Charset::Unknown => Value::Bytes(b.to_vec()),
        },
    })
}

/// How a column's text is encoded.
enum Charset {
    /// `utf8mb4`, `utf8mb3` and their subset `ascii`.
    Utf8,
    Utf32,
    Other(&'static encoding_rs::Encoding),
    Unknown,
}

/// The encoding of a collation's character set. MySQL names some sets
/// after what they were meant to be rather than what they are (`latin1`
/// is Windows-1252, `latin5` is Windows-1254 as WHATWG maps ISO-8859-9).
fn charset_encoding(collation: u16) -> Charset {
    use encoding_rs::*;
    let collation = Collation::from(CollationId::from(collation));
    let encoding = match collation.charset() {
        // 0 (unknown) too: the server always names a text column's set.
        "utf8mb4" | "utf8mb3" | "utf8" | "ascii" | "" => return Charset::Utf8,
        "utf32" => return Charset::Utf32,
        "latin1" => WINDOWS_1252,
        "latin2" => ISO_8859_2,
        "latin5" => WINDOWS_1254,
        "latin7" => ISO_8859_13,
        "greek" => ISO_8859_7,
        "hebrew" => ISO_8859_8,
        "cp1250" => WINDOWS_1250,
        "cp1251" => WINDOWS_1251,
        "cp1256" => WINDOWS_1256,
        "cp1257" => WINDOWS_1257,
        "cp866" => IBM866,
        "koi8r" => KOI8_R,
        "koi8u" => KOI8_U,
        "macroman" => MACINTOSH,
        "tis620" => WINDOWS_874,
        "gbk" | "gb2312" => GBK,
        "gb18030" => GB18030,
        "big5" => BIG5,
        "sjis" | "cp932" => SHIFT_JIS,
        "ujis" | "eucjpms" => EUC_JP,
        "euckr" => EUC_KR,
        "ucs2" | "utf16" => UTF_16BE,
        "utf16le" => UTF_16LE,
        _ => return Charset::Unknown,
    };
    Charset::Other(encoding)
}

/// The labels of an ENUM or SET column, from the table map's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Labels {
    Enum(Vec<String>),
    Set(Vec<String>),
}

/// An ENUM's index or a SET's bitmask as its label text (`"b"`, `"x,y"`),
/// as Debezium writes them.
pub fn label(labels: &Labels, value: Value) -> Result<Value, String> {
    Ok(match (labels, value) {
        // 0 is the empty string MySQL stores for an invalid value.
        (Labels::Enum(_), Value::Int(0)) => Value::Text(String::new()),
        (Labels::Enum(l), Value::Int(i)) => Value::Text(
            usize::try_from(i - 1)
                .ok()
                .and_then(|i| l.get(i))
                .ok_or_else(|| format!("ENUM index {i} of {} labels", l.len()))?
                .clone(),
        ),
        (Labels::Set(l), Value::Bytes(mask)) => {
            // A little-endian bitmask of up to 64 members.
            let bits = mask
                .iter()
                .rev()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            let members: Vec<&str> = (0..l.len().min(64))
                .filter(|i| bits & (1 << i) != 0)
                .map(|i| l[i].as_str())
                .collect();
            Value::Text(members.join(","))
        }
        (_, other) => other,
    })
}

/// Days since 1970-01-01, or `None` for MySQL's zero date (`0000-00-00`)
/// and dates with a zero month or day, which have no calendar day.
fn days_since_epoch(y: u16, m: u8, d: u8) -> Result<Option<i32>, String> {
    if y == 0 || m == 0 || d == 0 {
        return Ok(None);
    }
    let month = time::Month::try_from(m).map_err(|_| format!("a month of {m}"))?;
    let date = time::Date::from_calendar_date(i32::from(y), month, d)
        .map_err(|e| format!("the date {y:04}-{m:02}-{d:02}: {e}"))?;
    Ok(Some(date.to_julian_day() - UNIX_EPOCH_JULIAN_DAY))
}

/// `1700000000` or `1700000000.123` to microseconds since the epoch.
fn epoch_micros(text: &str) -> Result<i64, String> {
    let bad = || format!("a TIMESTAMP that is not `seconds[.fraction]`: {text:?}");
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let micros = if frac.is_empty() {
        0
    } else {
        frac.parse::<i64>().map_err(|_| bad())? * 10_i64.pow(6 - frac.len() as u32)
    };
    Ok(secs * MICROS_PER_SECOND + micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_and_set_values_become_their_labels() {
        let e = Labels::Enum(vec!["a".into(), "b".into()]);
        assert_eq!(label(&e, Value::Int(2)).unwrap(), Value::Text("b".into()));
        assert_eq!(
            label(&e, Value::Int(0)).unwrap(),
            Value::Text(String::new())
        );
        assert!(label(&e, Value::Int(3)).is_err());
        assert_eq!(label(&e, Value::Null).unwrap(), Value::Null);
        let s = Labels::Set((0..10).map(|i| format!("m{i}")).collect());
        assert_eq!(
            label(&s, Value::Bytes(vec![0b101, 0b10])).unwrap(),
            Value::Text("m0,m2,m9".into())
        );
        assert_eq!(
            label(&s, Value::Bytes(vec![0, 0])).unwrap(),
            Value::Text(String::new())
        );
    }

    #[test]
    fn timestamps_and_dates_convert_to_the_epoch() {
        assert_eq!(epoch_micros("0").unwrap(), 0);
        assert_eq!(epoch_micros("1700000000.5").unwrap(), 1_700_000_000_500_000);
        assert_eq!(
            epoch_micros("1700000000.000123").unwrap(),
            1_700_000_000_000_123
        );
        assert!(epoch_micros("17x").is_err());
        assert_eq!(days_since_epoch(1970, 1, 1).unwrap(), Some(0));
        assert_eq!(days_since_epoch(2024, 3, 1).unwrap(), Some(19_783));
        assert_eq!(days_since_epoch(1000, 1, 1).unwrap(), Some(-354_285));
        assert_eq!(days_since_epoch(0, 0, 0).unwrap(), None);
        assert!(days_since_epoch(2023, 2, 29).is_err());
    }
}
