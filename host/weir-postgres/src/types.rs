//! PostgreSQL column values in text output format, turned into typed
//! [`weir_core::Value`]s.
//!
//! This module owns the mapping from a column's type ([`PgType`], found by
//! OID or by `pg_type.typcategory`) to a [`Value`] variant, and the parsing
//! of each type's text output. It expects the server's output settings of a
//! replication connection made by Weir: `DateStyle = ISO`,
//! `bytea_output` hex (escape is read too) and the default
//! `extra_float_digits`. Any other date style is reported as a
//! [`TypeError`], never guessed at.
//!
//! Dates and times are converted by hand with Howard Hinnant's
//! days-from-civil algorithm: the project does without a date crate
//! (decision 0003), and ISO output is a fixed layout.

use std::fmt;

use weir_core::Value;

/// How a column's text is turned into a typed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgType {
    Bool,
    Int,
    Float,
    Numeric,
    Text,
    Bytea,
    Json,
    Date,
    Time,
    Timestamp,
    Timestamptz,
    Uuid,
    Array,
    Enum,
    Other,
}

impl PgType {
    /// Built-in types by OID. `None` for anything else: the caller then
    /// looks the type up in `pg_type` and uses [`PgType::from_category`].
    pub fn from_oid(oid: u32) -> Option<PgType> {
        Some(match oid {
            16 => PgType::Bool,
            // int8, int2, int4, oid
            20 | 21 | 23 | 26 => PgType::Int,
            700 | 701 => PgType::Float,
            1700 => PgType::Numeric,
            // text, varchar, bpchar, name, "char"
            25 | 1043 | 1042 | 19 | 18 => PgType::Text,
            17 => PgType::Bytea,
            114 | 3802 => PgType::Json,
            1082 => PgType::Date,
            1083 => PgType::Time,
            1114 => PgType::Timestamp,
            1184 => PgType::Timestamptz,
            2950 => PgType::Uuid,
            // Arrays of the types above: bool, int2, int4, int8, oid, text,
            // varchar, bpchar, name, "char", float4, float8, numeric, date,
            // time, timestamp, timestamptz, uuid, json, jsonb, bytea.
            1000 | 1005 | 1007 | 1016 | 1028 | 1009 | 1015 | 1014 | 1003 | 1002 | 1021 | 1022
            | 1231 | 1182 | 1183 | 1115 | 1185 | 2951 | 199 | 3807 | 1001 => PgType::Array,
            _ => return None,
        })
    }

    /// From `pg_type.typcategory`: 'A' → Array, 'E' → Enum, anything else
    /// → Other.
    pub fn from_category(category: char) -> PgType {
        match category {
            'A' => PgType::Array,
            'E' => PgType::Enum,
            _ => PgType::Other,
        }
    }

    /// The name used in error messages.
    fn name(self) -> &'static str {
        match self {
            PgType::Bool => "boolean",
            PgType::Int => "integer",
            PgType::Float => "floating-point",
            PgType::Numeric => "numeric",
            PgType::Text => "text",
            PgType::Bytea => "bytea",
            PgType::Json => "json",
            PgType::Date => "date",
            PgType::Time => "time",
            PgType::Timestamp => "timestamp",
            PgType::Timestamptz => "timestamptz",
            PgType::Uuid => "uuid",
            PgType::Array => "array",
            PgType::Enum => "enum",
            PgType::Other => "other",
        }
    }
}

/// Longest column text quoted in an error, so a bad multi-megabyte value
/// does not end up in a log line.
const MAX_QUOTED_TEXT: usize = 64;

/// A column's text is not valid output of its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read {text:?} as a PostgreSQL {} value: {reason}", ty.name())]
pub struct TypeError {
    ty: PgType,
    text: String,
    reason: String,
}

impl TypeError {
    fn new(ty: PgType, text: &str, reason: impl fmt::Display) -> Self {
        let text = match text.char_indices().nth(MAX_QUOTED_TEXT) {
            Some((end, _)) => format!("{}…", &text[..end]),
            None => text.to_owned(),
        };
        TypeError {
            ty,
            text,
            reason: reason.to_string(),
        }
    }

    pub fn ty(&self) -> PgType {
        self.ty
    }

    /// The offending text, shortened to 64 characters.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Converts one value in PostgreSQL's text output format.
pub fn decode_text(ty: PgType, text: &str) -> Result<Value, TypeError> {
    let err = |reason: &str| TypeError::new(ty, text, reason);
    Ok(match ty {
        PgType::Bool => match text {
            "t" | "true" => Value::Boolean(true),
            "f" | "false" => Value::Boolean(false),
            _ => return Err(err("expected 't' or 'f'")),
        },
        PgType::Int => Value::Int(
            text.parse()
                .map_err(|_| err("expected a 64-bit signed integer"))?,
        ),
        PgType::Float => {
            let f: f64 = text.parse().map_err(|_| err("expected a number"))?;
            // JSON has no NaN or infinities: keep them as text.
            if f.is_finite() {
                Value::Float(f)
            } else {
                Value::Decimal(text.to_owned())
            }
        }
        PgType::Numeric => {
            if !is_numeric(text) {
                return Err(err("expected a decimal number, 'NaN' or '[-]Infinity'"));
            }
            Value::Decimal(text.to_owned())
        }
        PgType::Text | PgType::Enum | PgType::Other => Value::Text(text.to_owned()),
        PgType::Bytea => Value::Bytes(decode_bytea(text).map_err(err)?),
        PgType::Json => Value::Json(text.to_owned()),
        PgType::Date => match text {
            "infinity" | "-infinity" => Value::Text(text.to_owned()),
            _ => {
                let mut c = Cursor::new(text);
                let days = c.date().and_then(|date| c.era(date)).map_err(err)?;
                c.end().map_err(err)?;
                Value::Date(i32::try_from(days).map_err(|_| err("the date is out of range"))?)
            }
        },
        PgType::Time => {
            let mut c = Cursor::new(text);
            let micros = c.time().and_then(|t| c.end().map(|()| t)).map_err(err)?;
            Value::Time(micros)
        }
        PgType::Timestamp | PgType::Timestamptz => match text {
            "infinity" | "-infinity" => Value::Text(text.to_owned()),
            _ => {
                let micros = timestamp(text, ty == PgType::Timestamptz).map_err(err)?;
                if ty == PgType::Timestamptz {
                    Value::Timestamptz(micros)
                } else {
                    Value::Timestamp(micros)
                }
            }
        },
        PgType::Uuid => Value::Uuid(decode_uuid(text).map_err(err)?),
        PgType::Array => Value::Json(array_to_json(text).map_err(err)?),
    })
}

/// Numeric output: `[-]digits[.digits]`, `NaN`, `Infinity`, `-Infinity`.
fn is_numeric(text: &str) -> bool {
    if matches!(text, "NaN" | "Infinity" | "-Infinity") {
        return true;
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match digits.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(int) && frac.is_none_or(all_digits)
}

/// `\x` hex format, or the legacy escape format (`\\` and `\ooo`).
fn decode_bytea(text: &str) -> Result<Vec<u8>, &'static str> {
    if let Some(digits) = text.strip_prefix("\\x") {
        return hex::decode(digits).map_err(|e| match e {
            hex::FromHexError::OddLength => "hex format has an odd number of digits",
            _ => "hex format has a character that is not a hex digit",
        });
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        if bytes.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
            continue;
        }
        match bytes.get(i + 1..i + 4) {
            Some(&[a @ b'0'..=b'3', b @ b'0'..=b'7', c @ b'0'..=b'7']) => {
                out.push(((a - b'0') << 6) | ((b - b'0') << 3) | (c - b'0'));
                i += 4;
            }
            _ => {
                return Err("escape format has a backslash not followed by '\\' or 3 octal digits");
            }
        }
    }
    Ok(out)
}

/// The hyphenated 8-4-4-4-12 form PostgreSQL writes (36 characters; the
/// crate alone would also take the simple, braced and URN forms), written
/// back lower-case.
fn decode_uuid(text: &str) -> Result<String, &'static str> {
    const HYPHENATED_LEN: usize = 36;
    match uuid::Uuid::try_parse(text) {
        Ok(u) if text.len() == HYPHENATED_LEN => Ok(u.hyphenated().to_string()),
        _ => Err("expected 32 hex digits as 8-4-4-4-12"),
    }
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// Days from 1970-01-01 (the Unix epoch, where `Value::Date` counts from)
/// to 2000-01-01 (PostgreSQL's epoch, where its binary forms count from).
pub(crate) const PG_EPOCH_DAYS: i32 = 10_957;
/// The same in microseconds.
pub(crate) const PG_EPOCH_US: i64 = PG_EPOCH_DAYS as i64 * MICROS_PER_DAY;

/// Days from 1970-01-01 to the proleptic Gregorian date `y-m-d`, where year
/// 0 is 1 BC (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let mp = i64::from((m + 9) % 12); // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

fn is_leap_year(y: i64) -> bool {
    y.rem_euclid(4) == 0 && (y.rem_euclid(100) != 0 || y.rem_euclid(400) == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap_year(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM-DD[ HH:MM:SS[.ffffff]][±HH[:MM[:SS]]][ BC]` to microseconds
/// since the Unix epoch; the offset is required for timestamptz and
/// refused for timestamp.
fn timestamp(text: &str, with_offset: bool) -> Result<i64, &'static str> {
    let mut c = Cursor::new(text);
    let date = c.date()?;
    c.expect(b' ', "expected a space between date and time")?;
    let time = c.time()?;
    let offset = if with_offset { c.offset()? } else { 0 };
    let days = c.era(date)?;
    c.end()?;
    days.checked_mul(MICROS_PER_DAY)
        .and_then(|d| d.checked_add(time))
        .and_then(|t| t.checked_sub(offset))
        .ok_or("the timestamp is out of range")
}

/// A calendar date as written, before its era is known.
#[derive(Debug, Clone, Copy)]
struct Ymd {
    /// As written: positive, even for BC.
    year: i64,
    month: u32,
    day: u32,
}

/// A parser over the fixed ISO layouts of dates and times.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor {
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, b: u8, why: &'static str) -> Result<(), &'static str> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(why)
        }
    }

    /// A run of `min..=max` ASCII digits, and how many there were.
    fn digits(
        &mut self,
        min: usize,
        max: usize,
        why: &'static str,
    ) -> Result<(i64, usize), &'static str> {
        let start = self.pos;
        let mut n: i64 = 0;
        while let Some(b @ b'0'..=b'9') = self.peek() {
            if self.pos - start == max {
                return Err(why);
            }
            n = n * 10 + i64::from(b - b'0');
            self.pos += 1;
        }
        let len = self.pos - start;
        if len < min {
            return Err(why);
        }
        Ok((n, len))
    }

    fn two_digits(&mut self, why: &'static str) -> Result<u32, &'static str> {
        let (n, _) = self.digits(2, 2, why)?;
        u32::try_from(n).map_err(|_| why)
    }

    /// `YYYY-MM-DD`. Years have at least 4 digits; PostgreSQL's largest
    /// has 7. The day is checked by [`Cursor::era`], once the year is known.
    fn date(&mut self) -> Result<Ymd, &'static str> {
        let (year, _) = self.digits(4, 7, "expected a year of 4 to 7 digits")?;
        self.expect(b'-', "expected '-' after the year")?;
        let month = self.two_digits("expected a 2-digit month")?;
        self.expect(b'-', "expected '-' after the month")?;
        let day = self.two_digits("expected a 2-digit day")?;
        if year == 0 {
            return Err("year 0 does not exist");
        }
        if !(1..=12).contains(&month) {
            return Err("the month is out of range");
        }
        Ok(Ymd { year, month, day })
    }

    /// Reads the optional ` BC` suffix, which PostgreSQL writes after
    /// everything else, and returns the days from 1970-01-01 to `date`.
    fn era(&mut self, date: Ymd) -> Result<i64, &'static str> {
        let year = if self.bytes[self.pos..] == *b" BC" {
            self.pos += 3;
            // 1 BC is year 0 of the proleptic Gregorian calendar.
            1 - date.year
        } else {
            date.year
        };
        if date.day == 0 || date.day > days_in_month(year, date.month) {
            return Err("the day is out of range for the month");
        }
        Ok(days_from_civil(year, date.month, date.day))
    }

    /// `HH:MM:SS[.f{1,6}]` to microseconds since midnight; `24:00:00` is
    /// allowed, as in PostgreSQL.
    fn time(&mut self) -> Result<i64, &'static str> {
        let hour = self.two_digits("expected a 2-digit hour")?;
        self.expect(b':', "expected ':' after the hour")?;
        let minute = self.two_digits("expected 2-digit minutes")?;
        self.expect(b':', "expected ':' after the minutes")?;
        let second = self.two_digits("expected 2-digit seconds")?;
        let mut micros = 0;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            let (frac, len) = self.digits(1, 6, "expected 1 to 6 digits of fractional seconds")?;
            micros = frac * 10_i64.pow(6 - len as u32);
        }
        if minute > 59
            || second > 59
            || hour > 24
            || (hour == 24 && (minute, second, micros) != (0, 0, 0))
        {
            return Err("the time of day is out of range");
        }
        Ok(
            (i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second))
                * MICROS_PER_SECOND
                + micros,
        )
    }

    /// `±HH[:MM[:SS]]` east of UTC, in microseconds.
    fn offset(&mut self) -> Result<i64, &'static str> {
        let sign = match self.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err("expected a UTC offset such as '+00' or '-05:30'"),
        };
        self.pos += 1;
        let why = "expected a UTC offset such as '+00' or '-05:30'";
        let mut seconds = i64::from(self.two_digits(why)?) * 3600;
        for unit in [60, 1] {
            if self.peek() != Some(b':') {
                break;
            }
            self.pos += 1;
            let n = self.two_digits(why)?;
            if n > 59 {
                return Err("the UTC offset is out of range");
            }
            seconds += i64::from(n) * unit;
        }
        Ok(sign * seconds * MICROS_PER_SECOND)
    }

    fn end(&self) -> Result<(), &'static str> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err("unexpected text after the value")
        }
    }
}

/// Deepest array PostgreSQL allows (`MAXDIM`).
const MAX_ARRAY_DIMENSIONS: usize = 6;

/// A PostgreSQL array literal to a compact JSON array of strings (and
/// nested arrays), with unquoted `NULL` as JSON null.
///
/// Elements are split on ',', the delimiter of every built-in type except
/// `box` (whose arrays use ';' and come out as single elements).
fn array_to_json(text: &str) -> Result<String, &'static str> {
    let mut body = text;
    // Arrays whose lower bounds are not 1 carry them first: `[0:1]={1,2}`.
    if body.starts_with('[') {
        match body.split_once('=') {
            Some((_, rest)) => body = rest,
            None => return Err("array bounds without '='"),
        }
    }
    let mut p = ArrayParser {
        bytes: body.as_bytes(),
        pos: 0,
    };
    let value = p.array(1)?;
    if p.pos != p.bytes.len() {
        return Err("unexpected text after the array");
    }
    serde_json::to_string(&value).map_err(|_| "the array cannot be written as JSON")
}

struct ArrayParser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl ArrayParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// `{elem,elem,...}`, the cursor at the `{`.
    fn array(&mut self, depth: usize) -> Result<serde_json::Value, &'static str> {
        if depth > MAX_ARRAY_DIMENSIONS {
            return Err("the array has more than 6 dimensions");
        }
        if self.peek() != Some(b'{') {
            return Err("expected '{'");
        }
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(serde_json::Value::Array(items));
        }
        loop {
            self.skip_whitespace();
            let item = match self.peek() {
                Some(b'{') => self.array(depth + 1)?,
                Some(b'"') => serde_json::Value::String(self.quoted()?),
                _ => self.unquoted()?,
            };
            items.push(item);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(serde_json::Value::Array(items));
                }
                Some(_) => return Err("expected ',' or '}' after an array element"),
                None => return Err("the array is not closed"),
            }
        }
    }

    /// `"..."` with `\` escaping the next character.
    fn quoted(&mut self) -> Result<String, &'static str> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    let Some(&b) = self.bytes.get(self.pos + 1) else {
                        return Err("the array ends inside a quoted element");
                    };
                    out.push(b);
                    self.pos += 2;
                }
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
                None => return Err("the array ends inside a quoted element"),
            }
        }
        // Only ASCII backslashes were removed from valid UTF-8.
        String::from_utf8(out).map_err(|_| "an array element is not valid UTF-8")
    }

    /// An unquoted element up to `,` or `}`, trimmed; `NULL` is null.
    fn unquoted(&mut self) -> Result<serde_json::Value, &'static str> {
        let mut out = Vec::new();
        // Length of `out` up to its last character that is not trailing
        // whitespace; escaped whitespace counts as content.
        let mut content_len = 0;
        let mut escaped = false;
        loop {
            match self.peek() {
                Some(b',' | b'}') => break,
                Some(b'{' | b'"') => {
                    return Err("unexpected '{' or '\"' in an unquoted array element");
                }
                Some(b'\\') => {
                    let Some(&b) = self.bytes.get(self.pos + 1) else {
                        return Err("the array is not closed");
                    };
                    out.push(b);
                    content_len = out.len();
                    escaped = true;
                    self.pos += 2;
                }
                Some(b) => {
                    out.push(b);
                    if !b.is_ascii_whitespace() {
                        content_len = out.len();
                    }
                    self.pos += 1;
                }
                None => return Err("the array is not closed"),
            }
        }
        out.truncate(content_len);
        if out.is_empty() {
            return Err("an array element is empty");
        }
        if !escaped && out.eq_ignore_ascii_case(b"NULL") {
            return Ok(serde_json::Value::Null);
        }
        String::from_utf8(out)
            .map(serde_json::Value::String)
            .map_err(|_| "an array element is not valid UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(ty: PgType, text: &str) -> Value {
        decode_text(ty, text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn reason(ty: PgType, text: &str) -> String {
        match decode_text(ty, text) {
            Ok(v) => panic!("{text:?} as {ty:?} decoded as {v:?}"),
            Err(e) => e.reason().to_owned(),
        }
    }

    #[test]
    fn types_by_oid_and_category() {
        assert_eq!(PgType::from_oid(16), Some(PgType::Bool));
        for oid in [20, 21, 23, 26] {
            assert_eq!(PgType::from_oid(oid), Some(PgType::Int), "{oid}");
        }
        for oid in [25, 1043, 1042, 19, 18] {
            assert_eq!(PgType::from_oid(oid), Some(PgType::Text), "{oid}");
        }
        assert_eq!(PgType::from_oid(3802), Some(PgType::Json));
        assert_eq!(PgType::from_oid(1184), Some(PgType::Timestamptz));
        assert_eq!(PgType::from_oid(2950), Some(PgType::Uuid));
        for oid in [
            1000, 1005, 1007, 1016, 1009, 1015, 1021, 1022, 1231, 1182, 1115, 1185, 2951, 199,
            3807, 1001, 1014, 1183,
        ] {
            assert_eq!(PgType::from_oid(oid), Some(PgType::Array), "{oid}");
        }
        // interval, timetz, user types: looked up by category.
        assert_eq!(PgType::from_oid(1186), None);
        assert_eq!(PgType::from_oid(1266), None);
        assert_eq!(PgType::from_oid(16_400), None);
        assert_eq!(PgType::from_category('A'), PgType::Array);
        assert_eq!(PgType::from_category('E'), PgType::Enum);
        assert_eq!(PgType::from_category('U'), PgType::Other);
    }

    #[test]
    fn booleans() {
        assert_eq!(ok(PgType::Bool, "t"), Value::Boolean(true));
        assert_eq!(ok(PgType::Bool, "true"), Value::Boolean(true));
        assert_eq!(ok(PgType::Bool, "f"), Value::Boolean(false));
        assert_eq!(ok(PgType::Bool, "false"), Value::Boolean(false));
        assert_eq!(reason(PgType::Bool, "yes"), "expected 't' or 'f'");
    }

    #[test]
    fn integers() {
        assert_eq!(ok(PgType::Int, "0"), Value::Int(0));
        assert_eq!(ok(PgType::Int, "-32768"), Value::Int(-32768));
        assert_eq!(ok(PgType::Int, "4294967295"), Value::Int(4_294_967_295));
        assert_eq!(
            ok(PgType::Int, "-9223372036854775808"),
            Value::Int(i64::MIN)
        );
        reason(PgType::Int, "9223372036854775808");
        reason(PgType::Int, "1.5");
        reason(PgType::Int, "");
    }

    #[test]
    fn floats_and_their_special_values() {
        assert_eq!(ok(PgType::Float, "1.5"), Value::Float(1.5));
        assert_eq!(ok(PgType::Float, "-0"), Value::Float(-0.0));
        assert_eq!(ok(PgType::Float, "1e+100"), Value::Float(1e100));
        // float4 text read as f64 keeps the decimal the user saw.
        assert_eq!(ok(PgType::Float, "0.1"), Value::Float(0.1));
        for special in ["NaN", "Infinity", "-Infinity"] {
            assert_eq!(ok(PgType::Float, special), Value::Decimal(special.into()));
        }
        assert_eq!(reason(PgType::Float, "one"), "expected a number");
    }

    #[test]
    fn numerics_are_kept_as_sent() {
        for text in [
            "0",
            "-12.3400",
            "123456789012345678901234567890.000000001",
            "NaN",
            "Infinity",
            "-Infinity",
        ] {
            assert_eq!(ok(PgType::Numeric, text), Value::Decimal(text.into()));
        }
        for text in ["", "-", "1.", ".5", "1e5", "1,5", "nan"] {
            reason(PgType::Numeric, text);
        }
    }

    #[test]
    fn text_like_types() {
        assert_eq!(
            ok(PgType::Text, "héllo, world"),
            Value::Text("héllo, world".into())
        );
        assert_eq!(ok(PgType::Text, ""), Value::Text(String::new()));
        assert_eq!(ok(PgType::Enum, "happy"), Value::Text("happy".into()));
        assert_eq!(
            ok(PgType::Other, "1 day 02:00:00"),
            Value::Text("1 day 02:00:00".into())
        );
        assert_eq!(
            ok(PgType::Json, r#"{"a": [1, 2]}"#),
            Value::Json(r#"{"a": [1, 2]}"#.into())
        );
    }

    #[test]
    fn bytea_hex_and_escape_formats() {
        assert_eq!(
            ok(PgType::Bytea, "\\x0a0bFF"),
            Value::Bytes(vec![0x0a, 0x0b, 0xff])
        );
        assert_eq!(ok(PgType::Bytea, "\\x"), Value::Bytes(vec![]));
        assert_eq!(
            reason(PgType::Bytea, "\\x0a0"),
            "hex format has an odd number of digits"
        );
        reason(PgType::Bytea, "\\x0g");
        assert_eq!(
            ok(PgType::Bytea, "ab\\\\c\\000\\377"),
            Value::Bytes(b"ab\\c\x00\xff".to_vec())
        );
        assert_eq!(ok(PgType::Bytea, ""), Value::Bytes(vec![]));
        reason(PgType::Bytea, "a\\9");
        reason(PgType::Bytea, "a\\");
        reason(PgType::Bytea, "\\400");
    }

    #[test]
    fn uuids_are_lower_cased() {
        assert_eq!(
            ok(PgType::Uuid, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"),
            Value::Uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into())
        );
        reason(PgType::Uuid, "a0eebc999c0b4ef8bb6d6bb9bd380a11");
        reason(PgType::Uuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g");
        reason(PgType::Uuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1é");
    }

    #[test]
    fn dates() {
        assert_eq!(ok(PgType::Date, "1970-01-01"), Value::Date(0));
        assert_eq!(ok(PgType::Date, "1969-12-31"), Value::Date(-1));
        assert_eq!(ok(PgType::Date, "2000-01-01"), Value::Date(10_957));
        assert_eq!(ok(PgType::Date, "2000-02-29"), Value::Date(11_016));
        assert_eq!(ok(PgType::Date, "2024-03-01"), Value::Date(19_783));
        assert_eq!(ok(PgType::Date, "1900-03-01"), Value::Date(-25_508));
        assert_eq!(ok(PgType::Date, "0001-01-01"), Value::Date(-719_162));
        assert_eq!(ok(PgType::Date, "10000-01-01"), Value::Date(2_932_897));
        // PostgreSQL's last date: Julian day 2147483493 (DATE_END_JULIAN - 1).
        assert_eq!(
            ok(PgType::Date, "5874897-12-31"),
            Value::Date(2_145_042_905)
        );
        assert_eq!(ok(PgType::Date, "infinity"), Value::Text("infinity".into()));
        assert_eq!(
            ok(PgType::Date, "-infinity"),
            Value::Text("-infinity".into())
        );
    }

    #[test]
    fn dates_before_christ() {
        // 1 BC is the year before 0001-01-01, and a leap year.
        assert_eq!(ok(PgType::Date, "0001-12-31 BC"), Value::Date(-719_163));
        assert_eq!(
            ok(PgType::Date, "0001-02-29 BC"),
            Value::Date(-719_163 - 306)
        );
        assert_eq!(
            reason(PgType::Date, "0002-02-29 BC"),
            "the day is out of range for the month"
        );
        // PostgreSQL's first date, Julian day 0.
        assert_eq!(ok(PgType::Date, "4714-11-24 BC"), Value::Date(-2_440_588));
    }

    #[test]
    fn invalid_dates() {
        assert_eq!(
            reason(PgType::Date, "1900-02-29"),
            "the day is out of range for the month"
        );
        assert_eq!(
            reason(PgType::Date, "2023-04-31"),
            "the day is out of range for the month"
        );
        reason(PgType::Date, "2023-04-00");
        assert_eq!(
            reason(PgType::Date, "2023-13-01"),
            "the month is out of range"
        );
        assert_eq!(reason(PgType::Date, "0000-01-01"), "year 0 does not exist");
        // Other DateStyles are refused, not guessed at.
        reason(PgType::Date, "01/02/2023");
        reason(PgType::Date, "23-01-02");
        reason(PgType::Date, "2023-1-02");
        reason(PgType::Date, "2023-01-02 AD");
        reason(PgType::Date, "2023-01-02 ");
        reason(PgType::Date, "12345678-01-01");
    }

    #[test]
    fn times() {
        assert_eq!(ok(PgType::Time, "00:00:00"), Value::Time(0));
        assert_eq!(ok(PgType::Time, "13:45:07"), Value::Time(49_507_000_000));
        assert_eq!(
            ok(PgType::Time, "23:59:59.999999"),
            Value::Time(MICROS_PER_DAY - 1)
        );
        assert_eq!(ok(PgType::Time, "24:00:00"), Value::Time(MICROS_PER_DAY));
        assert_eq!(ok(PgType::Time, "00:00:00.5"), Value::Time(500_000));
        assert_eq!(ok(PgType::Time, "00:00:00.05"), Value::Time(50_000));
        assert_eq!(ok(PgType::Time, "00:00:00.123"), Value::Time(123_000));
        assert_eq!(ok(PgType::Time, "00:00:00.0001"), Value::Time(100));
        assert_eq!(ok(PgType::Time, "00:00:00.00001"), Value::Time(10));
        assert_eq!(ok(PgType::Time, "00:00:00.000001"), Value::Time(1));
        assert_eq!(
            reason(PgType::Time, "00:00:00.1234567"),
            "expected 1 to 6 digits of fractional seconds"
        );
        reason(PgType::Time, "00:00:00.");
        reason(PgType::Time, "24:00:00.000001");
        reason(PgType::Time, "12:60:00");
        reason(PgType::Time, "12:00:60");
        reason(PgType::Time, "12:00");
        reason(PgType::Time, "12:00:00+00");
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            ok(PgType::Timestamp, "1970-01-01 00:00:00"),
            Value::Timestamp(0)
        );
        assert_eq!(
            ok(PgType::Timestamp, "1969-12-31 23:59:59.999999"),
            Value::Timestamp(-1)
        );
        assert_eq!(
            ok(PgType::Timestamp, "2000-01-01 00:00:00"),
            Value::Timestamp(946_684_800_000_000)
        );
        assert_eq!(
            ok(PgType::Timestamp, "2024-01-02 03:04:05.678901"),
            Value::Timestamp(1_704_164_645_678_901)
        );
        assert_eq!(
            ok(PgType::Timestamp, "2024-02-29 12:00:00.5"),
            Value::Timestamp(1_709_208_000_500_000)
        );
        assert_eq!(
            ok(PgType::Timestamp, "0001-01-01 00:00:00 BC"),
            Value::Timestamp(-62_167_219_200_000_000)
        );
        assert_eq!(
            ok(PgType::Timestamp, "infinity"),
            Value::Text("infinity".into())
        );
        assert_eq!(
            ok(PgType::Timestamp, "-infinity"),
            Value::Text("-infinity".into())
        );
        reason(PgType::Timestamp, "2024-01-02T03:04:05");
        reason(PgType::Timestamp, "2024-01-02");
        assert_eq!(
            reason(PgType::Timestamp, "2024-01-02 03:04:05+00"),
            "unexpected text after the value"
        );
        // Valid in PostgreSQL, but past what an i64 of Unix microseconds holds.
        assert_eq!(
            reason(PgType::Timestamp, "294276-12-31 23:59:59.999999"),
            "the timestamp is out of range"
        );
    }

    #[test]
    fn timestamptz_offsets() {
        let utc = 1_704_164_645_678_901; // 2024-01-02 03:04:05.678901 UTC
        assert_eq!(
            ok(PgType::Timestamptz, "2024-01-02 03:04:05.678901+00"),
            Value::Timestamptz(utc)
        );
        assert_eq!(
            ok(PgType::Timestamptz, "2024-01-01 22:04:05.678901-05"),
            Value::Timestamptz(utc)
        );
        assert_eq!(
            ok(PgType::Timestamptz, "2024-01-02 08:34:05.678901+05:30"),
            Value::Timestamptz(utc)
        );
        // Local mean time offsets have seconds.
        assert_eq!(
            ok(PgType::Timestamptz, "1883-11-18 12:00:00-04:56:02"),
            Value::Timestamptz(
                days_from_civil(1883, 11, 18) * MICROS_PER_DAY
                    + (12 * 3600 + 4 * 3600 + 56 * 60 + 2) * MICROS_PER_SECOND
            )
        );
        assert_eq!(
            ok(PgType::Timestamptz, "1970-01-01 00:00:00+00"),
            Value::Timestamptz(0)
        );
        assert_eq!(
            ok(PgType::Timestamptz, "0044-03-15 12:00:00+00 BC"),
            Value::Timestamptz(
                days_from_civil(-43, 3, 15) * MICROS_PER_DAY + 12 * 3600 * MICROS_PER_SECOND
            )
        );
        assert_eq!(
            ok(PgType::Timestamptz, "infinity"),
            Value::Text("infinity".into())
        );
        reason(PgType::Timestamptz, "2024-01-02 03:04:05");
        reason(PgType::Timestamptz, "2024-01-02 03:04:05 UTC");
        reason(PgType::Timestamptz, "2024-01-02 03:04:05+5");
        reason(PgType::Timestamptz, "2024-01-02 03:04:05+05:60");
        reason(PgType::Timestamptz, "2024-01-02 03:04:05+05:");
    }

    #[test]
    fn days_from_civil_agrees_with_counting() {
        // Walk day by day from 1600-01-01 to 2400-12-31 and check the
        // formula never skips or repeats a day.
        let mut expected = days_from_civil(1600, 1, 1);
        assert_eq!(expected, -135_140);
        for y in 1600..=2400 {
            for m in 1..=12 {
                for d in 1..=days_in_month(y, m) {
                    assert_eq!(days_from_civil(y, m, d), expected, "{y}-{m}-{d}");
                    expected += 1;
                }
            }
        }
        assert!(is_leap_year(2000) && is_leap_year(2024) && is_leap_year(0) && is_leap_year(-4));
        assert!(!is_leap_year(1900) && !is_leap_year(2023) && !is_leap_year(-1));
    }

    fn array(text: &str) -> String {
        match ok(PgType::Array, text) {
            Value::Json(json) => json,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn arrays_become_json_arrays_of_strings() {
        assert_eq!(array("{}"), "[]");
        assert_eq!(array("{1,2,3}"), r#"["1","2","3"]"#);
        assert_eq!(
            array(r#"{1,2,NULL,"a b","with \"quote\""}"#),
            r#"["1","2",null,"a b","with \"quote\""]"#
        );
        assert_eq!(
            array(r#"{"NULL",null,"",\\x}"#),
            r#"["NULL",null,"","\\x"]"#
        );
        assert_eq!(
            array(r#"{"back\\slash","a,b","{c}"}"#),
            r#"["back\\slash","a,b","{c}"]"#
        );
        assert_eq!(array("{{1,2},{3,4}}"), r#"[["1","2"],["3","4"]]"#);
        assert_eq!(array("{{{a}},{{b}}}"), r#"[[["a"]],[["b"]]]"#);
        assert_eq!(array("{{},{}}"), "[[],[]]");
        assert_eq!(array("{ a , b c }"), r#"["a","b c"]"#);
        assert_eq!(array("{héllo,\"wörld\"}"), r#"["héllo","wörld"]"#);
        assert_eq!(array("[0:1]={7,8}"), r#"["7","8"]"#);
        assert_eq!(
            array(r#"{"2024-01-02 03:04:05+00",infinity}"#),
            r#"["2024-01-02 03:04:05+00","infinity"]"#
        );
    }

    #[test]
    fn malformed_arrays() {
        for text in [
            "",
            "1,2",
            "{",
            "{1,2",
            "{1,}",
            "{,1}",
            "{\"a}",
            "{\"a\"b}",
            "{a\"b\"}",
            "{1}x",
            "{{1}",
            "[0:1]{1}",
            "{{{{{{{1}}}}}}}",
        ] {
            reason(PgType::Array, text);
        }
        assert_eq!(array("{{{{{{1}}}}}}"), r#"[[[[[["1"]]]]]]"#);
    }

    #[test]
    fn errors_say_what_which_type_and_why() {
        let err = decode_text(PgType::Date, "2023-02-30").unwrap_err();
        assert_eq!(err.ty(), PgType::Date);
        assert_eq!(err.text(), "2023-02-30");
        assert_eq!(
            err.to_string(),
            "cannot read \"2023-02-30\" as a PostgreSQL date value: the day is out of range for the month"
        );
        let long = "x".repeat(1000);
        let err = decode_text(PgType::Int, &long).unwrap_err();
        assert_eq!(err.text(), format!("{}…", "x".repeat(64)));
    }
}
