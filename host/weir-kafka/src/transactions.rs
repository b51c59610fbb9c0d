//! Debezium's transaction metadata (`transaction_topic`): a BEGIN record
//! before a source transaction's first event, an END record with its event
//! counts per table after its last, and each event's place in it (the
//! envelope's `transaction` block).
//!
//! A transaction ends where the next event belongs to another one, or at
//! a flush: the pipeline flushes only at source positions, which end whole
//! transactions. So the END of every transaction goes into the same Kafka
//! transaction as its last event, and a restart that skips what Kafka
//! already holds skips whole transactions, their BEGIN and END included.
//! Events without a transaction id (snapshot rows) get a null block and
//! no records.

use serde_json::{Value as Json, json};
use weir_core::ChangeEvent;
use weir_core::envelope::TransactionBlock;

use crate::config::KafkaFormat;

/// Where the metadata goes, the source transaction being written, and
/// where its events stand.
#[derive(Debug)]
pub(crate) struct Transactions {
    /// The transaction topic.
    pub topic: String,
    format: KafkaFormat,
    open: Option<Open>,
}

#[derive(Debug)]
struct Open {
    id: String,
    ts_ms: i64,
    /// Kafka holds its records already (a restart is skipping it): its
    /// END is not written again.
    held: bool,
    total: u64,
    /// Events per table (`schema.table`), in order of first appearance.
    tables: Vec<(String, u64)>,
}

/// A BEGIN or END record to write to the transaction topic.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Boundary {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// Debezium's `data_collection` of an event: `schema.table` (the
/// database for MySQL, which has no schemas).
fn collection(event: &ChangeEvent) -> String {
    format!("{}.{}", event.source.schema, event.source.table)
}

impl Transactions {
    /// Metadata for `topic`, its records in `format`.
    pub(crate) fn new(topic: String, format: KafkaFormat) -> Self {
        Transactions {
            topic,
            format,
            open: None,
        }
    }

    /// Starts over (after a restart, nothing is open).
    pub(crate) fn reset(&mut self) {
        self.open = None;
    }

    /// The records to write before `event`: the END of the open
    /// transaction when `event` belongs to another, and the BEGIN of
    /// `event`'s. `held` says Kafka holds `event` already; nothing is
    /// returned for a transaction it holds.
    pub(crate) fn before(&mut self, event: &ChangeEvent, held: bool) -> Vec<Boundary> {
        let id = event.source.txid.as_deref();
        if self.open.as_ref().map(|o| o.id.as_str()) == id {
            return Vec::new();
        }
        let mut out: Vec<Boundary> = self.end().into_iter().collect();
        if let Some(id) = id {
            let open = Open {
                id: id.to_owned(),
                ts_ms: event.source.commit_time_us.div_euclid(1000),
                held,
                total: 0,
                tables: Vec::new(),
            };
            if !held {
                out.push(open.record(self.format, false));
            }
            self.open = Some(open);
        }
        out
    }

    /// `event`'s place in the open transaction if it is counted next;
    /// `None` for an event outside a transaction.
    pub(crate) fn place(&self, event: &ChangeEvent) -> Option<TransactionBlock<'_>> {
        let open = self.open.as_ref()?;
        let table = collection(event);
        let in_table = open
            .tables
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(0, |(_, n)| *n);
        Some(TransactionBlock {
            id: &open.id,
            total_order: open.total + 1,
            data_collection_order: in_table + 1,
        })
    }

    /// Counts `event` in the open transaction (it was written, or Kafka
    /// holds it).
    pub(crate) fn count(&mut self, event: &ChangeEvent) {
        let Some(open) = &mut self.open else { return };
        open.total += 1;
        let table = collection(event);
        match open.tables.iter_mut().find(|(t, _)| *t == table) {
            Some((_, n)) => *n += 1,
            None => open.tables.push((table, 1)),
        }
    }

    /// Ends the open transaction: its END record, unless Kafka holds it.
    pub(crate) fn end(&mut self) -> Option<Boundary> {
        let open = self.open.take()?;
        (!open.held).then(|| open.record(self.format, true))
    }
}

impl Open {
    fn record(&self, format: KafkaFormat, end: bool) -> Boundary {
        let key = json!({"id": self.id});
        let value = if end {
            let collections: Vec<Json> = self
                .tables
                .iter()
                .map(|(t, n)| json!({"data_collection": t, "event_count": n}))
                .collect();
            json!({"status": "END", "id": self.id, "event_count": self.total,
                   "data_collections": collections, "ts_ms": self.ts_ms})
        } else {
            json!({"status": "BEGIN", "id": self.id, "event_count": null,
                   "data_collections": null, "ts_ms": self.ts_ms})
        };
        let (key, value) = match format {
            KafkaFormat::Json => (key, value),
            KafkaFormat::JsonSchema => (
                json!({"schema": key_schema(), "payload": key}),
                json!({"schema": value_schema(), "payload": value}),
            ),
        };
        Boundary {
            key: serde_json::to_vec(&key).expect("JSON serializes"),
            value: serde_json::to_vec(&value).expect("JSON serializes"),
        }
    }
}

/// Debezium's schema of a transaction record's key.
fn key_schema() -> Json {
    json!({"type": "struct", "fields": [{"type": "string", "optional": false, "field": "id"}],
           "optional": false, "name": "io.debezium.connector.common.TransactionMetadataKey"})
}

/// Debezium's schema of a transaction record's value.
fn value_schema() -> Json {
    json!({"type": "struct", "fields": [
        {"type": "string", "optional": false, "field": "status"},
        {"type": "string", "optional": false, "field": "id"},
        {"type": "int64", "optional": true, "field": "event_count"},
        {"type": "array", "items": {"type": "struct", "fields": [
            {"type": "string", "optional": false, "field": "data_collection"},
            {"type": "int64", "optional": false, "field": "event_count"}],
            "optional": false}, "optional": true, "field": "data_collections"},
        {"type": "int64", "optional": false, "field": "ts_ms"}],
        "optional": false, "name": "io.debezium.connector.common.TransactionMetadataValue"})
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use weir_core::{Column, Op, SourceInfo, Value};

    /// A create in `public.<table>` of source transaction `txid`, key
    /// `id = 1`, no images.
    pub(crate) fn event(txid: Option<&str>, table: &str) -> ChangeEvent {
        ChangeEvent {
            op: Op::Create,
            source: SourceInfo {
                connector: "postgresql".into(),
                database: "shop".into(),
                schema: "public".into(),
                table: table.into(),
                position: "0/16B3748".into(),
                txid: txid.map(Into::into),
                commit_time_us: 1_700_000_000_123_456,
                origin: None,
                plugins: None,
            },
            key: vec![Column::new("id", Value::Int(1))],
            before: None,
            after: None,
        }
    }

    fn json_metadata() -> Transactions {
        Transactions::new("t".into(), KafkaFormat::Json)
    }

    fn decode(b: &Boundary) -> (Json, Json) {
        (
            serde_json::from_slice(&b.key).unwrap(),
            serde_json::from_slice(&b.value).unwrap(),
        )
    }

    /// Writes `events` as the sink does: boundaries, then the event.
    fn write(t: &mut Transactions, events: &[ChangeEvent], held: bool) -> Vec<Json> {
        let mut out = Vec::new();
        for e in events {
            out.extend(t.before(e, held).iter().map(|b| decode(b).1));
            let place = t.place(e).map(|p| json!(p));
            out.push(json!({"event": e.source.table, "transaction": place}));
            t.count(e);
        }
        out
    }

    #[test]
    fn begin_end_and_places_follow_debezium() {
        let mut t = json_metadata();
        let events = [
            event(Some("571"), "a"),
            event(Some("571"), "b"),
            event(Some("571"), "a"),
            event(Some("572"), "b"),
        ];
        let mut out = write(&mut t, &events, false);
        out.extend(t.end().map(|b| decode(&b).1));
        let ts = 1_700_000_000_123i64;
        assert_eq!(
            out,
            [
                json!({"status": "BEGIN", "id": "571", "event_count": null,
                       "data_collections": null, "ts_ms": ts}),
                json!({"event": "a", "transaction":
                       {"id": "571", "total_order": 1, "data_collection_order": 1}}),
                json!({"event": "b", "transaction":
                       {"id": "571", "total_order": 2, "data_collection_order": 1}}),
                json!({"event": "a", "transaction":
                       {"id": "571", "total_order": 3, "data_collection_order": 2}}),
                json!({"status": "END", "id": "571", "event_count": 3, "data_collections": [
                       {"data_collection": "public.a", "event_count": 2},
                       {"data_collection": "public.b", "event_count": 1}], "ts_ms": ts}),
                json!({"status": "BEGIN", "id": "572", "event_count": null,
                       "data_collections": null, "ts_ms": ts}),
                json!({"event": "b", "transaction":
                       {"id": "572", "total_order": 1, "data_collection_order": 1}}),
                json!({"status": "END", "id": "572", "event_count": 1, "data_collections": [
                       {"data_collection": "public.b", "event_count": 1}], "ts_ms": ts}),
            ]
        );
        assert_eq!(t.end(), None);
    }

    #[test]
    fn snapshot_rows_have_no_transaction_and_end_the_open_one() {
        let mut t = json_metadata();
        let out = write(
            &mut t,
            &[event(Some("9"), "a"), event(None, "a"), event(None, "a")],
            false,
        );
        let statuses: Vec<&Json> = out.iter().map(|v| &v["status"]).collect();
        assert_eq!(statuses[0], "BEGIN");
        assert_eq!(statuses[2], "END");
        assert_eq!(out[3]["transaction"], Json::Null);
        assert_eq!(out[4]["transaction"], Json::Null);
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn transactions_kafka_holds_write_no_boundaries_but_keep_places() {
        let mut t = json_metadata();
        let held = write(
            &mut t,
            &[event(Some("7"), "a"), event(Some("7"), "a")],
            true,
        );
        assert!(held.iter().all(|v| v.get("status").is_none()));
        assert_eq!(held[1]["transaction"]["total_order"], 2);
        // The next transaction is new: the held one's END is not written.
        let next = write(&mut t, &[event(Some("8"), "a")], false);
        assert_eq!(next[0]["status"], "BEGIN");
        assert_eq!(next[0]["id"], "8");
        assert_eq!(next.len(), 2);
    }

    #[test]
    fn json_schema_records_carry_debeziums_schemas() {
        let mut t = Transactions::new("t".into(), KafkaFormat::JsonSchema);
        let begin = t.before(&event(Some("3"), "a"), false).remove(0);
        let (key, value) = decode(&begin);
        assert_eq!(key["payload"], json!({"id": "3"}));
        assert_eq!(
            key["schema"]["name"],
            "io.debezium.connector.common.TransactionMetadataKey"
        );
        assert_eq!(value["payload"]["status"], "BEGIN");
        let declared: Vec<&str> = value["schema"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        let sent: Vec<&str> = value["payload"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(declared, sent);
    }
}
