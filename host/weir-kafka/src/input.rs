//! The input of `weir worker`: change topics read by a consumer group with
//! `read_committed`, and their records decoded back into change events.
//!
//! Offsets are never committed by the consumer itself: the worker commits
//! them inside its output transaction ([`crate::Output::commit`]), so a
//! round's input counts as read exactly when its output is committed.
//!
//! Rebalances use the eager protocol: every partition is revoked and the
//! new assignment starts from the committed offsets. Records read before a
//! rebalance and not yet committed are dropped from the round being
//! gathered; the consumer that gets their partition reads them again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, Consumer, ConsumerContext, ConsumerGroupMetadata, Rebalance,
};
use rdkafka::error::RDKafkaErrorCode as Code;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Deserialize;
use serde_json::Value as Json;
use tracing::{info, warn};
use weir_connect::Checker;
use weir_core::envelope::{from_envelope, value_from_json};
use weir_core::{ChangeEvent, Column, ErrorKind, StageError};

use crate::config::check_brokers;
use crate::error::classify;
use crate::topics::valid_topic_name;

/// `[input]` of a worker: which change topics to read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaInputConfig {
    /// Brokers to bootstrap from, `host:port` each.
    pub brokers: Vec<String>,
    /// Change topics to read. A name starting with `^` is a regular
    /// expression (`"^shop\\.public\\..*"`), matched against every topic
    /// as it appears.
    pub topics: Vec<String>,
    /// The consumer group the workers share. Default: `weir-<worker name>`.
    #[serde(default)]
    pub group_id: Option<String>,
    /// Where a group without committed offsets starts reading.
    #[serde(default)]
    pub start: StartAt,
    /// Further librdkafka consumer settings, passed as they are
    /// (`security.protocol`, `sasl.*` with `"${ENV}"` secrets,
    /// `session.timeout.ms`, ...). Settings the worker owns are refused.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// Where a group without committed offsets starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// The oldest record the topics hold.
    #[default]
    Earliest,
    /// Only records written after the group first joined.
    Latest,
}

/// librdkafka consumer settings the worker sets itself.
const OWNED_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "isolation.level",
    "auto.offset.reset",
    "partition.assignment.strategy",
    "group.protocol",
];

impl KafkaInputConfig {
    /// The consumer group in effect for worker `worker`.
    pub fn group(&self, worker: &str) -> String {
        self.group_id
            .clone()
            .unwrap_or_else(|| format!("weir-{worker}"))
    }

    /// Checks every field, reporting each problem with its path.
    pub fn validate(&self, c: &mut Checker) {
        check_brokers(&self.brokers, c);
        if self.topics.is_empty() {
            c.err(
                "topics",
                "name at least one topic to read (or a pattern starting with `^`)",
            );
        }
        for (i, t) in self.topics.iter().enumerate() {
            if !t.starts_with('^') && !valid_topic_name(t) {
                c.err(
                    &format!("topics[{i}]"),
                    format!(
                        "`{t}` is not a valid topic name; use letters, digits, `.`, `_` and `-`, \
                         or start a regular expression with `^`"
                    ),
                );
            }
        }
        if self.group_id.as_deref() == Some("") {
            c.err(
                "group_id",
                "must not be empty; leave it out for `weir-<worker name>`",
            );
        }
        for key in self.properties.keys() {
            if OWNED_PROPERTIES.contains(&key.as_str()) {
                c.err(
                    &format!("properties.\"{key}\""),
                    format!("the worker sets `{key}` itself"),
                );
            }
        }
    }
}

/// Notes rebalances for the round being gathered.
struct Context {
    rebalanced: AtomicBool,
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.rebalanced.store(true, Ordering::Relaxed);
        if let Rebalance::Assign(list) = rebalance {
            let partitions: Vec<String> = list
                .elements()
                .iter()
                .map(|e| format!("{}[{}]", e.topic(), e.partition()))
                .collect();
            info!(partitions = %partitions.join(","), "Partitions assigned.");
        }
    }
}

/// One record read, owned.
#[derive(Debug, Clone)]
pub struct InputRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// The consumer of a worker. See the module docs.
pub struct Input {
    consumer: BaseConsumer<Context>,
    group: String,
    /// The subscription, for errors.
    topics: String,
}

impl Input {
    /// Joins `group` and subscribes to the configured topics.
    pub fn connect(
        config: &KafkaInputConfig,
        group: &str,
        client_id: &str,
    ) -> Result<Self, StageError> {
        let mut client = ClientConfig::new();
        for (k, v) in &config.properties {
            client.set(k, v);
        }
        client
            .set("bootstrap.servers", config.brokers.join(","))
            .set("client.id", client_id)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set(
                "auto.offset.reset",
                match config.start {
                    StartAt::Earliest => "earliest",
                    StartAt::Latest => "latest",
                },
            )
            // Eager: a rebalance revokes everything and every new
            // assignment starts from the committed offsets.
            .set("partition.assignment.strategy", "range,roundrobin");
        let consumer: BaseConsumer<Context> = client
            .create_with_context(Context {
                rebalanced: AtomicBool::new(false),
            })
            .map_err(|e| classify(e, "worker input: cannot create the consumer"))?;
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| classify(e, "worker input: cannot subscribe"))?;
        Ok(Input {
            consumer,
            group: group.to_owned(),
            topics: topics.join(", "),
        })
    }

    /// Up to `max` records: waits at most `wait` for the first, then takes
    /// what is already fetched. Records read before a rebalance are
    /// dropped (module docs).
    pub fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<InputRecord>, StageError> {
        let deadline = Instant::now() + wait;
        let mut out: Vec<InputRecord> = Vec::new();
        while out.len() < max {
            let timeout = if out.is_empty() {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            let polled = self.consumer.poll(timeout);
            if self
                .consumer
                .context()
                .rebalanced
                .swap(false, Ordering::Relaxed)
            {
                out.clear();
            }
            match polled {
                None if out.is_empty() && Instant::now() < deadline => {}
                None => break,
                Some(Ok(m)) => {
                    out.push(InputRecord {
                        topic: m.topic().to_owned(),
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                    });
                }
                Some(Err(e)) => {
                    if matches!(
                        e.rdkafka_error_code(),
                        Some(Code::UnknownTopicOrPartition | Code::UnknownTopic)
                    ) {
                        return Err(StageError::operator(format!(
                            "worker input: a topic in `input.topics` ({}) does not exist: {e}; \
                             create it, or start the pipeline that writes it first",
                            self.topics
                        )));
                    }
                    let error = classify(e, "worker input");
                    if error.kind() == ErrorKind::Transient {
                        // The consumer reconnects by itself.
                        warn!(error = %error, "Kafka consumer problem; retrying.");
                        std::thread::sleep(Duration::from_millis(100));
                    } else {
                        return Err(error);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The offsets that mark `records` as read: per partition, the offset
    /// after the last record.
    pub fn offsets(records: &[InputRecord]) -> TopicPartitionList {
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for r in records {
            let e = next.entry((&r.topic, r.partition)).or_insert(0);
            *e = (*e).max(r.offset + 1);
        }
        let mut list = TopicPartitionList::with_capacity(next.len());
        for ((topic, partition), offset) in next {
            list.add_partition_offset(topic, partition, Offset::Offset(offset))
                .expect("an offset is valid");
        }
        list
    }

    /// The group's generation, for committing offsets inside a
    /// transaction.
    pub fn group_metadata(&self) -> Result<ConsumerGroupMetadata, StageError> {
        self.consumer.group_metadata().ok_or_else(|| {
            StageError::transient(format!(
                "worker input: not a member of group `{}` yet",
                self.group
            ))
        })
    }
}

/// A Kafka Connect JSON document's payload (`{"schema": …, "payload": …}`),
/// or the document itself.
fn payload(doc: Json) -> Json {
    match doc {
        Json::Object(mut m) if m.len() == 2 && m.contains_key("schema") => {
            m.remove("payload").unwrap_or(Json::Null)
        }
        other => other,
    }
}

/// The change event in a record of a change topic written by `weir run`
/// or Debezium (`json` or `json-schema`): `None` for a tombstone. When the
/// envelope carries no `key`, the record key's columns are the key.
pub fn decode(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Option<ChangeEvent>, String> {
    let Some(value) = value else {
        return Ok(None);
    };
    let doc: Json =
        serde_json::from_slice(value).map_err(|e| format!("the record value is not JSON: {e}"))?;
    let doc = payload(doc);
    if doc.is_null() {
        return Ok(None);
    }
    let mut event = from_envelope(&doc).map_err(|e| format!("not a change envelope: {e}"))?;
    if event.key.is_empty()
        && let Some(key) = key
    {
        let key: Json =
            serde_json::from_slice(key).map_err(|e| format!("the record key is not JSON: {e}"))?;
        if let Json::Object(columns) = payload(key) {
            event.key = columns
                .iter()
                .map(|(name, v)| {
                    value_from_json(v)
                        .map(|v| Column::new(name.clone(), v))
                        .map_err(|e| format!("key column `{name}`: {e}"))
                })
                .collect::<Result<_, _>>()?;
        }
    }
    Ok(Some(event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_core::{Op, Value};

    #[test]
    fn reads_weir_and_debezium_records_with_and_without_schemas() {
        let plain = br#"{"before":null,"after":{"id":7,"email":"a@b.c"},"source":{"connector":"postgresql","db":"shop","schema":"public","table":"users","lsn":24023128,"txId":744},"op":"c","ts_ms":1}"#;
        let event = decode(Some(br#"{"id":7}"#), Some(plain)).unwrap().unwrap();
        assert_eq!(event.op, Op::Create);
        assert_eq!(event.key, vec![Column::new("id", Value::Int(7))]);
        assert_eq!(event.source.table, "users");
        assert_eq!(event.source.txid.as_deref(), Some("744"));

        let with_schema = format!(
            r#"{{"schema":{{"type":"struct"}},"payload":{}}}"#,
            std::str::from_utf8(plain).unwrap()
        );
        let key = br#"{"schema":{"type":"struct"},"payload":{"id":7}}"#;
        assert_eq!(
            decode(Some(key), Some(with_schema.as_bytes())).unwrap(),
            Some(event)
        );
        assert_eq!(decode(Some(b"{\"id\":7}"), None).unwrap(), None);
        assert_eq!(
            decode(None, Some(br#"{"schema":{},"payload":null}"#)).unwrap(),
            None
        );
    }

    #[test]
    fn bad_records_say_what_is_wrong() {
        let e = decode(None, Some(b"not json")).unwrap_err();
        assert!(e.starts_with("the record value is not JSON"), "{e}");
        let e = decode(None, Some(br#"{"after":{}}"#)).unwrap_err();
        assert!(e.contains("op"), "{e}");
    }

    #[test]
    fn offsets_point_after_the_last_record_of_each_partition() {
        let r = |partition, offset| InputRecord {
            topic: "t".into(),
            partition,
            offset,
            key: None,
            value: None,
        };
        let list = Input::offsets(&[r(0, 5), r(1, 2), r(0, 6), r(1, 3)]);
        let got: Vec<(i32, Offset)> = list
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset()))
            .collect();
        assert_eq!(got, [(0, Offset::Offset(7)), (1, Offset::Offset(4))]);
    }
}
