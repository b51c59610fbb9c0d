//! What the plugin benchmarks share: the events and the masking config.

use weir_core::{ChangeEvent, Column, Op, SourceInfo, Value};

/// Events per batch.
pub const BATCH: usize = 1000;

/// A batch of 8-column `customers` inserts.
pub fn events() -> Vec<ChangeEvent> {
    (0..BATCH as i64)
        .map(|i| ChangeEvent {
            op: Op::Create,
            source: SourceInfo {
                connector: "postgresql".into(),
                database: "shop".into(),
                schema: "public".into(),
                table: "customers".into(),
                position: format!("0/{:X}", 0x1000 + i).into(),
                txid: Some("42".into()),
                commit_time_us: 1_700_000_000_000_000 + i,
                origin: None,
                plugins: None,
            },
            key: vec![Column::new("id", Value::Int(i))],
            before: None,
            after: Some(vec![
                Column::new("id", Value::Int(i)),
                Column::new("email", Value::Text(format!("user{i}@example.com"))),
                Column::new("name", Value::Text(format!("Customer Number {i}"))),
                Column::new("phone", Value::Text("+1 415 555 0100".into())),
                Column::new("city", Value::Text("San Francisco".into())),
                Column::new("created_at", Value::Timestamptz(1_700_000_000_000_000 + i)),
                Column::new("balance", Value::Decimal("1234.50".into())),
                Column::new("active", Value::Boolean(i % 2 == 0)),
            ]),
        })
        .collect()
}

/// Mask one column (`email`).
pub fn mask_config() -> serde_json::Value {
    serde_json::json!({"rules": [{"columns": ["email"], "action": "mask"}]})
}
