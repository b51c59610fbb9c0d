//! Text-format column values on the source's hot path: the hand-written
//! date and timestamp parser against the `time` crate on the same inputs,
//! and which of PostgreSQL's own outputs each accepts
//! (`docs/decisions/0015-hand-written-date-parsing.md`).
//!
//! `cargo bench -p weir-postgres --bench types`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use weir_postgres::types::{PgType, decode_text};

const TIMESTAMPTZ: &str = "2024-03-01 12:34:56.123456+00";
const DATE: &str = "2024-03-01";

const TS_FORMAT: &[BorrowedFormatItem<'_>] = format_description!(
    "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond][offset_hour sign:mandatory]"
);
const DATE_FORMAT: &[BorrowedFormatItem<'_>] = format_description!("[year]-[month]-[day]");

/// Microseconds since the epoch, as the `time` crate reads a timestamptz.
fn with_time_crate(text: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(text, TS_FORMAT).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1000).ok()
}

/// Days since the epoch, as the `time` crate reads a date.
fn date_with_time_crate(text: &str) -> Option<i32> {
    let d = time::Date::parse(text, DATE_FORMAT).ok()?;
    Some(d.to_julian_day() - 2_440_588)
}

fn report_coverage() {
    // Dates PostgreSQL writes that a CDC source must not refuse.
    for text in [
        "2024-03-01",
        "10000-01-01",
        "5874897-12-31",
        "0044-03-15 BC",
    ] {
        println!(
            "accepts date {text:>16}: hand-written {:5}, time crate {:5}",
            decode_text(PgType::Date, text).is_ok(),
            date_with_time_crate(text).is_some()
        );
    }
    for text in [
        TIMESTAMPTZ,
        "2024-03-01 24:00:00+00",
        "2024-03-01 12:00:00+05:30:15",
    ] {
        println!(
            "accepts timestamptz {text:>30}: hand-written {:5}, time crate {:5}",
            decode_text(PgType::Timestamptz, text).is_ok(),
            with_time_crate(text).is_some()
        );
    }
}

fn bench(c: &mut Criterion) {
    report_coverage();
    // Both read the same instant.
    let weir_core::Value::Timestamptz(ours) =
        decode_text(PgType::Timestamptz, TIMESTAMPTZ).unwrap()
    else {
        unreachable!()
    };
    assert_eq!(Some(ours), with_time_crate(TIMESTAMPTZ));

    let mut g = c.benchmark_group("timestamptz");
    g.bench_function("hand-written", |b| {
        b.iter(|| decode_text(PgType::Timestamptz, black_box(TIMESTAMPTZ)))
    });
    g.bench_function("time crate", |b| {
        b.iter(|| with_time_crate(black_box(TIMESTAMPTZ)))
    });
    g.finish();
    let mut g = c.benchmark_group("date");
    g.bench_function("hand-written", |b| {
        b.iter(|| decode_text(PgType::Date, black_box(DATE)))
    });
    g.bench_function("time crate", |b| {
        b.iter(|| date_with_time_crate(black_box(DATE)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
