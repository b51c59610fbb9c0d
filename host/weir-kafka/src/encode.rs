//! Record keys and values: Debezium's JsonConverter output, without
//! (`json`) or with (`json-schema`) the Kafka Connect schema.
//!
//! With schemas, a column's Connect type comes from its value, as Debezium
//! maps the source type (`decimal.handling.mode=string`,
//! `time.precision.mode=adaptive_time_microseconds`). A column that is
//! null in every image of an event takes the type last seen for it on the
//! topic, or an optional string if none was. Key columns are required,
//! other columns optional (events do not carry a column's nullability).

use std::collections::HashMap;

use serde_json::{Map, Value as Json, json};
use weir_core::envelope::{TransactionBlock, to_envelope, write_envelope_in, write_row};
use weir_core::{ChangeEvent, Column, Value};

use crate::config::KafkaFormat;

/// Encodes records into reused buffers.
pub(crate) struct Encoder {
    format: KafkaFormat,
    /// Whether envelopes carry Debezium's `transaction` block.
    transactions: bool,
    key: Vec<u8>,
    value: Vec<u8>,
    /// Per topic: the schemas of the last event's shape.
    schemas: HashMap<String, Schemas>,
}

struct Schemas {
    shape: Vec<u8>,
    key: String,
    value: String,
    /// Connect type of each column seen on the topic.
    seen: HashMap<String, ConnectType>,
}

/// A Kafka Connect type: the primitive and, for logical types, Debezium's
/// semantic name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConnectType {
    primitive: &'static str,
    name: Option<&'static str>,
}

const fn t(primitive: &'static str, name: Option<&'static str>) -> ConnectType {
    ConnectType { primitive, name }
}

/// The Connect type Debezium gives a value of this kind; `None` for a
/// value that does not tell (null, unchanged TOAST).
fn connect_type(value: &Value) -> Option<ConnectType> {
    Some(match value {
        Value::Null | Value::Unchanged => return None,
        Value::Boolean(_) => t("boolean", None),
        Value::Int(_) => t("int64", None),
        Value::Float(_) => t("double", None),
        Value::Decimal(_) | Value::Text(_) => t("string", None),
        Value::Bytes(_) => t("bytes", None),
        Value::Json(_) => t("string", Some("io.debezium.data.Json")),
        Value::Date(_) => t("int32", Some("io.debezium.time.Date")),
        Value::Time(_) => t("int64", Some("io.debezium.time.MicroTime")),
        Value::Timestamp(_) => t("int64", Some("io.debezium.time.MicroTimestamp")),
        Value::Timestamptz(_) => t("string", Some("io.debezium.time.ZonedTimestamp")),
        Value::Uuid(_) => t("string", Some("io.debezium.data.Uuid")),
    })
}

impl Encoder {
    /// An encoder of `format`; with `transactions`, every envelope has a
    /// `transaction` block (null for an event outside a transaction).
    pub(crate) fn new(format: KafkaFormat, transactions: bool) -> Self {
        Encoder {
            format,
            transactions,
            key: Vec::with_capacity(256),
            value: Vec::with_capacity(4096),
            schemas: HashMap::new(),
        }
    }

    /// The last record encoded: key and value.
    pub(crate) fn record(&self) -> (&[u8], &[u8]) {
        (&self.key, &self.value)
    }

    /// The last record's size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.key.len() + self.value.len()
    }

    /// Encodes `event`, bound for `topic`, with its place in its source
    /// transaction when the encoder writes transaction blocks.
    pub(crate) fn encode(
        &mut self,
        event: &ChangeEvent,
        topic: &str,
        transaction: Option<&TransactionBlock<'_>>,
    ) {
        self.key.clear();
        self.value.clear();
        let block = self.transactions.then_some(transaction);
        match self.format {
            KafkaFormat::Json => {
                write_row(&event.key, &mut self.key);
                write_envelope_in(event, block, &mut self.value);
            }
            KafkaFormat::JsonSchema => {
                let schemas = schemas_for(&mut self.schemas, event, topic, self.transactions);
                self.key.extend_from_slice(b"{\"schema\":");
                self.key.extend_from_slice(schemas.key.as_bytes());
                self.key.extend_from_slice(b",\"payload\":");
                write_row(&event.key, &mut self.key);
                self.key.push(b'}');
                self.value.extend_from_slice(b"{\"schema\":");
                self.value.extend_from_slice(schemas.value.as_bytes());
                self.value.extend_from_slice(b",\"payload\":");
                write_envelope_in(event, block, &mut self.value);
                self.value.push(b'}');
            }
        }
    }
}

/// The schemas for `event` on `topic`, rebuilt when its shape differs from
/// the last event's there.
fn schemas_for<'s>(
    schemas: &'s mut HashMap<String, Schemas>,
    event: &ChangeEvent,
    topic: &str,
    transactions: bool,
) -> &'s Schemas {
    let entry = schemas.entry(topic.to_owned()).or_insert_with(|| Schemas {
        shape: Vec::new(),
        key: String::new(),
        value: String::new(),
        seen: HashMap::new(),
    });
    let columns = columns(event);
    for (name, value) in &columns {
        if let Some(ty) = connect_type(value) {
            entry.seen.insert((*name).to_owned(), ty);
        }
    }
    let shape = shape(event, &columns, &entry.seen);
    if shape != entry.shape {
        let (key, value) = build_schemas(event, topic, &columns, &entry.seen, transactions);
        entry.key = key.to_string();
        entry.value = value.to_string();
        entry.shape = shape;
    }
    entry
}

/// Every column of the event once, in table order (the fullest image
/// first), with its first value that tells its type.
fn columns(event: &ChangeEvent) -> Vec<(&str, &Value)> {
    let mut out: Vec<(&str, &Value)> = Vec::new();
    for image in [&event.after, &event.before].into_iter().flatten() {
        for c in image {
            match out.iter_mut().find(|(n, _)| *n == c.name) {
                Some(slot) if connect_type(slot.1).is_none() => slot.1 = &c.value,
                Some(_) => {}
                None => out.push((&c.name, &c.value)),
            }
        }
    }
    for c in &event.key {
        if !out.iter().any(|(n, _)| *n == c.name) {
            out.push((&c.name, &c.value));
        }
    }
    out
}

fn type_of(name: &str, value: &Value, seen: &HashMap<String, ConnectType>) -> ConnectType {
    connect_type(value)
        .or_else(|| seen.get(name).copied())
        .unwrap_or(t("string", None))
}

/// What the schemas depend on, as bytes to compare.
fn shape(
    event: &ChangeEvent,
    columns: &[(&str, &Value)],
    seen: &HashMap<String, ConnectType>,
) -> Vec<u8> {
    let mut s = Vec::with_capacity(64);
    s.extend_from_slice(event.source.connector.as_bytes());
    s.extend([
        0,
        u8::from(event.source.txid.is_some()),
        u8::from(event.source.origin.is_some()),
        u8::from(event.source.plugins.is_some()),
    ]);
    for (name, value) in columns {
        let ty = type_of(name, value, seen);
        s.extend_from_slice(name.as_bytes());
        s.push(0);
        s.extend_from_slice(ty.primitive.as_bytes());
        s.extend_from_slice(ty.name.unwrap_or("").as_bytes());
        s.push(0);
    }
    for c in &event.key {
        s.extend_from_slice(c.name.as_bytes());
        s.push(1);
    }
    s
}

fn field(name: &str, ty: ConnectType, optional: bool) -> Json {
    let mut f = Map::new();
    f.insert("type".into(), json!(ty.primitive));
    f.insert("optional".into(), json!(optional));
    if let Some(semantic) = ty.name {
        f.insert("name".into(), json!(semantic));
        f.insert("version".into(), json!(1));
    }
    f.insert("field".into(), json!(name));
    Json::Object(f)
}

fn key_struct(topic: &str, key: &[Column], seen: &HashMap<String, ConnectType>) -> Json {
    let fields: Vec<Json> = key
        .iter()
        .map(|c| field(&c.name, type_of(&c.name, &c.value, seen), false))
        .collect();
    json!({"type": "struct", "fields": fields, "optional": false, "name": format!("{topic}.Key")})
}

/// The key schema and the envelope schema.
fn build_schemas(
    event: &ChangeEvent,
    topic: &str,
    columns: &[(&str, &Value)],
    seen: &HashMap<String, ConnectType>,
    transactions: bool,
) -> (Json, Json) {
    let key = key_struct(topic, &event.key, seen);
    let row_fields: Vec<Json> = columns
        .iter()
        .map(|(name, value)| {
            let in_key = event.key.iter().any(|c| c.name == *name);
            field(name, type_of(name, value, seen), !in_key)
        })
        .collect();
    let row = |which: &str| {
        json!({"type": "struct", "fields": row_fields, "optional": true,
               "name": format!("{topic}.Value"), "field": which})
    };
    let connector = &event.source.connector;
    let source_fields: Vec<Json> = match &to_envelope(event)["source"] {
        Json::Object(map) => map.iter().map(|(name, v)| source_field(name, v)).collect(),
        _ => Vec::new(),
    };
    let mut key_field = key.clone();
    key_field["optional"] = json!(true);
    key_field["field"] = json!("key");
    let mut fields = vec![
        row("before"),
        row("after"),
        json!({"type": "struct", "fields": source_fields, "optional": false,
               "name": format!("io.debezium.connector.{connector}.Source"), "field": "source"}),
        json!({"type": "string", "optional": false, "field": "op"}),
        json!({"type": "int64", "optional": true, "field": "ts_ms"}),
        key_field,
    ];
    if transactions {
        // Debezium's transaction block.
        fields.push(json!({"type": "struct", "fields": [
            {"type": "string", "optional": false, "field": "id"},
            {"type": "int64", "optional": false, "field": "total_order"},
            {"type": "int64", "optional": false, "field": "data_collection_order"}],
            "optional": true, "name": "event.block", "version": 1, "field": "transaction"}));
    }
    let value = json!({
        "type": "struct",
        "fields": fields,
        "optional": false,
        "name": format!("{topic}.Envelope"),
        "version": 1,
    });
    (key, value)
}

/// The schema of one `source` field, as Debezium declares its own fields;
/// Weir's extras and fields that may be absent are optional.
fn source_field(name: &str, value: &Json) -> Json {
    let primitive = match value {
        Json::Bool(_) => "boolean",
        Json::Number(n) if n.is_i64() || n.is_u64() => "int64",
        Json::Number(_) => "double",
        _ => "string",
    };
    let required = matches!(
        name,
        "version" | "connector" | "name" | "ts_ms" | "db" | "schema" | "table"
    );
    let ty = match name {
        "snapshot" => t("string", Some("io.debezium.data.Enum")),
        _ => t(primitive, None),
    };
    let mut f = field(name, ty, !required || value.is_null());
    if name == "snapshot" {
        f["parameters"] = json!({"allowed": "true,last,false,incremental"});
        f["default"] = json!("false");
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(after: Vec<Column>) -> ChangeEvent {
        ChangeEvent {
            after: Some(after),
            ..crate::transactions::tests::event(Some("750"), "orders")
        }
    }

    fn decode(bytes: &[u8]) -> Json {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn json_is_the_key_object_and_the_envelope() {
        let mut e = Encoder::new(KafkaFormat::Json, false);
        let ev = event(vec![
            Column::new("id", Value::Int(1)),
            Column::new("note", Value::Text("hi".into())),
        ]);
        e.encode(&ev, "shop.public.orders", None);
        let (key, value) = e.record();
        assert_eq!(decode(key), json!({"id": 1}));
        assert_eq!(decode(value), to_envelope(&ev));
    }

    #[test]
    fn json_schema_carries_connect_types_and_remembers_null_columns() {
        let mut e = Encoder::new(KafkaFormat::JsonSchema, false);
        let topic = "shop.public.orders";
        e.encode(
            &event(vec![
                Column::new("id", Value::Int(1)),
                Column::new("placed", Value::Timestamptz(0)),
                Column::new("day", Value::Date(3)),
                Column::new("total", Value::Decimal("9.50".into())),
            ]),
            topic,
            None,
        );
        let (key, value) = e.record();
        let (key, value) = (decode(key), decode(value));
        assert_eq!(
            key,
            json!({"schema": {"type": "struct", "fields": [
                {"type": "int64", "optional": false, "field": "id"}],
                "optional": false, "name": "shop.public.orders.Key"},
             "payload": {"id": 1}})
        );
        let after = &value["schema"]["fields"][1];
        assert_eq!(after["field"], "after");
        assert_eq!(after["name"], "shop.public.orders.Value");
        assert_eq!(
            after["fields"][1],
            json!({"type": "string", "optional": true, "name": "io.debezium.time.ZonedTimestamp",
                   "version": 1, "field": "placed"})
        );
        assert_eq!(after["fields"][2]["name"], "io.debezium.time.Date");
        assert_eq!(after["fields"][3]["type"], "string");
        assert_eq!(value["schema"]["name"], "shop.public.orders.Envelope");
        assert_eq!(value["payload"]["after"]["total"], "9.50");
        // Every source field in the payload has a schema field, in order.
        let declared: Vec<&str> = value["schema"]["fields"][2]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        let sent: Vec<&str> = value["payload"]["source"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(declared, sent);

        // The same column null later keeps its type.
        e.encode(
            &event(vec![
                Column::new("id", Value::Int(2)),
                Column::new("placed", Value::Null),
                Column::new("day", Value::Null),
                Column::new("total", Value::Null),
            ]),
            topic,
            None,
        );
        let value = decode(e.record().1);
        assert_eq!(
            value["schema"]["fields"][1]["fields"][2]["name"],
            "io.debezium.time.Date"
        );
        assert_eq!(value["payload"]["after"]["day"], Json::Null);
    }
}
