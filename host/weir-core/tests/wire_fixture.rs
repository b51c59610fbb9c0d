//! The cross-language wire fixture: `tests/golden/wire/batch.bin` is a
//! batch this encoder writes, and `batch.json` what it holds, in a neutral
//! form. The Python and JavaScript SDK tests decode the same file and must
//! find the same (`sdk/python/tests`, `sdk/js/test`), so every SDK's
//! decoder is checked against the host's encoder. Run with
//! `WEIR_BLESS=1` to rewrite the fixture after a deliberate format change.

use std::path::PathBuf;

use serde_json::{Value as Json, json};
use weir_core::wire::encode_batch;
use weir_core::{ChangeEvent, Column, Op, SourceInfo, Value};

fn source(table: &str, position: &str, txid: Option<&str>, origin: Option<&str>) -> SourceInfo {
    SourceInfo {
        connector: "postgresql".into(),
        database: "shop".into(),
        schema: "public".into(),
        table: table.into(),
        position: position.into(),
        txid: txid.map(Into::into),
        commit_time_us: 1_700_000_000_123_456,
        origin: origin.map(Into::into),
        plugins: None,
    }
}

/// Every value type, every flag: shared source and names, a before image,
/// txid and origin present and absent, extremes of the integer types.
fn events() -> Vec<ChangeEvent> {
    let every_type = |id: i64| {
        vec![
            Column::new("id", Value::Int(id)),
            Column::new("null", Value::Null),
            Column::new("yes", Value::Boolean(true)),
            Column::new("no", Value::Boolean(false)),
            Column::new("min", Value::Int(i64::MIN)),
            Column::new("max", Value::Int(i64::MAX)),
            Column::new("float", Value::Float(-1.5e-7)),
            Column::new("decimal", Value::Decimal("12345.6700".into())),
            Column::new("text", Value::Text("Zoë Ørsted ✓".into())),
            Column::new("bytes", Value::Bytes(vec![0, 1, 254, 255])),
            Column::new("json", Value::Json(r#"{"a":[1,2]}"#.into())),
            Column::new("date", Value::Date(-719_162)),
            Column::new("time", Value::Time(86_399_999_999)),
            Column::new("timestamp", Value::Timestamp(-62_135_596_800_000_000)),
            Column::new("timestamptz", Value::Timestamptz(1_700_000_000_123_456)),
            Column::new(
                "uuid",
                Value::Uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into()),
            ),
            Column::new("toast", Value::Unchanged),
        ]
    };
    vec![
        ChangeEvent {
            op: Op::Create,
            source: source("customers", "0/16B3748", Some("771"), None),
            key: vec![Column::new("id", Value::Int(1))],
            before: None,
            after: Some(every_type(1)),
        },
        ChangeEvent {
            op: Op::Update,
            source: source("customers", "0/16B3800", None, None),
            key: vec![Column::new("id", Value::Int(2))],
            before: Some(vec![Column::new("id", Value::Int(1))]),
            after: Some(every_type(2)),
        },
        ChangeEvent {
            op: Op::Delete,
            source: source("orders", "0/16B3900", Some("772"), Some("eu-west")),
            key: vec![Column::new("order_id", Value::Int(-3))],
            before: Some(vec![Column::new("order_id", Value::Int(-3))]),
            after: None,
        },
        ChangeEvent {
            op: Op::Truncate,
            source: source("orders", "0/16B3A00", None, Some("eu-west")),
            key: vec![],
            before: None,
            after: None,
        },
        ChangeEvent {
            op: Op::Read,
            source: source("customers", "0/0", None, None),
            key: vec![Column::new("id", Value::Int(3))],
            before: None,
            after: Some(vec![Column::new("id", Value::Int(3))]),
        },
    ]
}

/// A value as `[type, payload]`; 64-bit integers as decimal strings so
/// that JavaScript reads them exactly, bytes as hex.
fn neutral(v: &Value) -> Json {
    match v {
        Value::Null => json!(["null"]),
        Value::Boolean(b) => json!(["boolean", b]),
        Value::Int(i) => json!(["int", i.to_string()]),
        Value::Float(f) => json!(["float", f]),
        Value::Decimal(s) => json!(["decimal", s]),
        Value::Text(s) => json!(["text", s]),
        Value::Bytes(b) => json!(["bytes", hex(b)]),
        Value::Json(s) => json!(["json", s]),
        Value::Date(d) => json!(["date", d]),
        Value::Time(t) => json!(["time", t.to_string()]),
        Value::Timestamp(t) => json!(["timestamp", t.to_string()]),
        Value::Timestamptz(t) => json!(["timestamptz", t.to_string()]),
        Value::Uuid(s) => json!(["uuid", s]),
        Value::Unchanged => json!(["unchanged"]),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn row(r: &[Column]) -> Json {
    Json::Array(
        r.iter()
            .map(|c| json!([c.name, neutral(&c.value)]))
            .collect(),
    )
}

fn describe(events: &[ChangeEvent]) -> Json {
    Json::Array(
        events
            .iter()
            .map(|e| {
                let s = &e.source;
                json!({
                    "op": match e.op {
                        Op::Create => "c",
                        Op::Update => "u",
                        Op::Delete => "d",
                        Op::Truncate => "t",
                        Op::Read => "r",
                    },
                    "source": {
                        "connector": s.connector, "database": s.database, "schema": s.schema,
                        "table": s.table, "position": s.position, "txid": s.txid,
                        "commit_time_us": s.commit_time_us.to_string(), "origin": s.origin,
                    },
                    "key": row(&e.key),
                    "before": e.before.as_deref().map(row),
                    "after": e.after.as_deref().map(row),
                })
            })
            .collect(),
    )
}

#[test]
fn the_cross_language_wire_fixture_is_what_this_encoder_writes() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/wire");
    let events = events();
    let bin = encode_batch(&events);
    let text = serde_json::to_string_pretty(&describe(&events)).unwrap() + "\n";
    if std::env::var_os("WEIR_BLESS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("batch.bin"), &bin).unwrap();
        std::fs::write(dir.join("batch.json"), &text).unwrap();
    }
    let stale = "is stale: rerun with WEIR_BLESS=1 after a deliberate wire change, \
                 and update the Python and JavaScript decoders with it";
    assert!(
        std::fs::read(dir.join("batch.bin")).unwrap() == bin,
        "tests/golden/wire/batch.bin {stale}"
    );
    assert!(
        std::fs::read_to_string(dir.join("batch.json")).unwrap() == text,
        "tests/golden/wire/batch.json {stale}"
    );
}
