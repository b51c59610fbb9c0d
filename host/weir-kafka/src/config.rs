//! `kind = "kafka"`: the Kafka sink's config section.

use std::collections::BTreeMap;

use serde::Deserialize;
use weir_connect::{BuildContext, Checker, SinkComponent};
use weir_core::{Sink, StageError};

use crate::sink::KafkaSink;
use crate::topics::valid_topic_name;

/// `kind = "kafka"`: one topic per destination, exactly-once through Kafka
/// transactions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// Brokers to bootstrap from, `host:port` each.
    pub brokers: Vec<String>,
    /// Topic of a destination: `<topic_prefix>.<destination>`, Debezium's
    /// `<prefix>.<schema>.<table>` with the default router template.
    /// Default: the pipeline's name. Empty: the destination alone.
    #[serde(default)]
    pub topic_prefix: Option<String>,
    /// Record value format.
    #[serde(default)]
    pub format: KafkaFormat,
    /// A tombstone (the key with a null value) after each delete, so that
    /// compaction can remove the key.
    #[serde(default = "default_true")]
    pub tombstones: bool,
    /// Topics the sink creates when missing.
    #[serde(default)]
    pub topics: TopicSettings,
    /// The compacted topic where each commit records the source position,
    /// in the same Kafka transaction as the changes. Shared by pipelines:
    /// records are keyed by pipeline and sink.
    #[serde(default = "default_state_topic")]
    pub state_topic: String,
    /// Debezium's transaction metadata: when set, a BEGIN and an END record
    /// (with the event count per table) for every source transaction go to
    /// this topic, and every change record's envelope gets a `transaction`
    /// block. Debezium's name for it is `<topic_prefix>.transaction`.
    #[serde(default)]
    pub transaction_topic: Option<String>,
    /// The producer's `transactional.id`. Default: `weir-<pipeline>-<sink>`.
    /// Two processes with the same id fence each other: the newer one
    /// writes, the older one stops.
    #[serde(default)]
    pub transactional_id: Option<String>,
    /// Record batch compression. Default `lz4`: cheap to compress, and
    /// fewer bytes for the brokers to take (`docs/decisions/0021-kafka-producer-defaults.md`).
    #[serde(default)]
    pub compression: Compression,
    /// How long the producer waits to fill a batch (`linger.ms`). A commit
    /// sends what waits at once, so under exactly-once this costs no
    /// latency a `read_committed` consumer sees.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u32,
    /// Most bytes in one record batch (`batch.size`).
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: u32,
    /// Largest record the sink sends (`message.max.bytes`); a larger one is
    /// the event's fault and goes to the dead letters. Keep it at or below
    /// the topics' `max.message.bytes`.
    #[serde(default = "default_message_max_bytes")]
    pub message_max_bytes: u32,
    /// Most kilobytes the producer holds unsent before a write waits
    /// (`queue.buffering.max.kbytes`): the sink's memory bound, and how
    /// backpressure reaches the source when the brokers are slow or gone.
    #[serde(default = "default_queue_kbytes")]
    pub queue_kbytes: u32,
    /// How long one commit, a topic lookup or a connection may take before
    /// the pipeline restarts from its last checkpoint, in seconds. Records
    /// and transactions get twice as long (at least 10 s): a commit that
    /// timed out is retried on the restart and still delivers them.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u32,
    /// Further librdkafka settings, passed as they are: `security.protocol`,
    /// `sasl.mechanism`, `sasl.username`, `sasl.password` (write
    /// `"${KAFKA_PASSWORD}"`), `ssl.ca.location`, ... Settings the sink owns
    /// (`bootstrap.servers`, `transactional.id`, `enable.idempotence`,
    /// `partitioner`, ...) are refused.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// How a record's key and value are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KafkaFormat {
    /// Debezium's JsonConverter with `schemas.enable=false`: the key's
    /// columns as an object, the envelope as the value.
    #[default]
    Json,
    /// With `schemas.enable=true`: `{"schema": …, "payload": …}` with the
    /// Kafka Connect schema of the key and of the envelope.
    JsonSchema,
}

/// Record batch compression (`compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    #[default]
    Lz4,
    Zstd,
}

impl Compression {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// `[sinks.topics]`: how missing topics are created.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSettings {
    /// Create a destination's topic (and the state topic) when it does not
    /// exist. When false, a missing topic stops the pipeline with its name.
    #[serde(default = "default_true")]
    pub create: bool,
    /// Partitions of a created topic.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Replicas of each partition of a created topic (and the state topic).
    #[serde(default = "default_replication_factor")]
    pub replication_factor: i32,
    /// `cleanup.policy=compact` on created change topics, so each key keeps
    /// its last change (with `tombstones`, deleted keys go).
    #[serde(default)]
    pub compact: bool,
    /// Further topic settings for created change topics
    /// (`retention.ms = "604800000"`).
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

impl Default for TopicSettings {
    fn default() -> Self {
        TopicSettings {
            create: true,
            partitions: default_partitions(),
            replication_factor: default_replication_factor(),
            compact: false,
            config: BTreeMap::new(),
        }
    }
}

const fn default_true() -> bool {
    true
}
fn default_state_topic() -> String {
    KafkaSinkConfig::DEFAULT_STATE_TOPIC.to_owned()
}
const fn default_linger_ms() -> u32 {
    50
}
const fn default_batch_bytes() -> u32 {
    1 << 20
}
const fn default_message_max_bytes() -> u32 {
    1_000_000
}
const fn default_queue_kbytes() -> u32 {
    64 * 1024
}
const fn default_timeout_secs() -> u32 {
    30
}
const fn default_partitions() -> i32 {
    1
}
const fn default_replication_factor() -> i32 {
    1
}

/// librdkafka settings the sink sets itself; `properties` may not.
pub(crate) const OWNED_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "transactional.id",
    "enable.idempotence",
    "partitioner",
    "compression.type",
    "compression.codec",
    "linger.ms",
    "queue.buffering.max.ms",
    "batch.size",
    "message.max.bytes",
    "queue.buffering.max.kbytes",
    "transaction.timeout.ms",
    "message.timeout.ms",
    "isolation.level",
    "enable.auto.commit",
    "group.id",
];

impl KafkaSinkConfig {
    /// The state topic unless `state_topic` says otherwise.
    pub const DEFAULT_STATE_TOPIC: &'static str = "weir-checkpoints";

    /// The topic prefix in effect for `pipeline`.
    pub fn prefix<'a>(&'a self, pipeline: &'a str) -> &'a str {
        self.topic_prefix.as_deref().unwrap_or(pipeline)
    }

    /// The transactional id in effect for sink `sink` of `pipeline`.
    pub fn transactional_id(&self, pipeline: &str, sink: &str) -> String {
        self.transactional_id
            .clone()
            .unwrap_or_else(|| format!("weir-{pipeline}-{sink}"))
    }
}

/// Checks a `brokers` list: at least one, each `host:port`.
pub(crate) fn check_brokers(brokers: &[String], c: &mut Checker) {
    if brokers.is_empty() {
        c.err("brokers", "name at least one broker, as `host:port`");
    }
    for (i, b) in brokers.iter().enumerate() {
        let ok = b
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            c.err(
                &format!("brokers[{i}]"),
                format!("`{b}` is not `host:port` (for example `kafka-1:9092`)"),
            );
        }
    }
}

/// Checks that `field`'s `topic` is a valid topic name.
fn check_topic(field: &str, topic: &str, c: &mut Checker) {
    if !valid_topic_name(topic) {
        c.err(
            field,
            format!(
                "`{topic}` is not a valid topic name; use letters, digits, `.`, `_` and `-` (at most 249)"
            ),
        );
    }
}

impl SinkComponent for KafkaSinkConfig {
    fn validate(&self, c: &mut Checker) {
        check_brokers(&self.brokers, c);
        if let Some(prefix) = &self.topic_prefix
            && !prefix.is_empty()
            && !valid_topic_name(prefix)
        {
            c.err(
                "topic_prefix",
                format!(
                    "`{prefix}` cannot start a topic name; use letters, digits, `.`, `_` and `-`"
                ),
            );
        }
        check_topic("state_topic", &self.state_topic, c);
        if let Some(topic) = &self.transaction_topic {
            check_topic("transaction_topic", topic, c);
        }
        if self.transactional_id.as_deref() == Some("") {
            c.err(
                "transactional_id",
                "must not be empty; leave it out for `weir-<pipeline>-<sink>`",
            );
        }
        if self.topics.partitions < 1 {
            c.err("topics.partitions", "must be 1 or more");
        }
        if self.topics.replication_factor < 1 && self.topics.replication_factor != -1 {
            c.err(
                "topics.replication_factor",
                "must be 1 or more (or -1 for the broker's default)",
            );
        }
        if self.message_max_bytes < 1000 {
            c.err("message_max_bytes", "must be at least 1000");
        }
        if self.batch_bytes == 0 {
            c.err("batch_bytes", "must be more than 0");
        }
        if self.queue_kbytes == 0 {
            c.err("queue_kbytes", "must be more than 0");
        }
        if self.timeout_secs == 0 {
            c.err("timeout_secs", "must be more than 0");
        }
        for key in self.properties.keys() {
            if OWNED_PROPERTIES.contains(&key.as_str()) {
                c.err(
                    &format!("properties.\"{key}\""),
                    format!("the sink sets `{key}` itself; use the sink's own setting instead"),
                );
            }
        }
    }

    fn build(&self, name: &str, cx: &BuildContext) -> Result<Box<dyn Sink>, StageError> {
        Ok(Box::new(KafkaSink::new(self, name, &cx.pipeline)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> KafkaSinkConfig {
        toml::from_str(toml_text).unwrap()
    }

    fn problems(c: &KafkaSinkConfig) -> Vec<String> {
        let mut check = Checker::new("sinks[0]");
        c.validate(&mut check);
        check
            .into_errors()
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn defaults_follow_debezium_and_the_pipeline_name() {
        let c = config(r#"brokers = ["localhost:9092"]"#);
        assert!(problems(&c).is_empty());
        assert_eq!(c.prefix("shop"), "shop");
        assert_eq!(c.transactional_id("shop", "events"), "weir-shop-events");
        assert_eq!(c.format, KafkaFormat::Json);
        assert!(c.tombstones && c.topics.create);
        assert_eq!(c.state_topic, "weir-checkpoints");
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let c = config(
            r#"
            brokers = ["nohost", "h:99999"]
            topic_prefix = "bad prefix"
            state_topic = "a/b"
            transaction_topic = "shop transactions"
            transactional_id = ""
            properties = { "transactional.id" = "x", "sasl.username" = "u" }
            [topics]
            partitions = 0
            replication_factor = 0
            "#,
        );
        assert_eq!(
            problems(&c),
            [
                "sinks[0].brokers[0]: `nohost` is not `host:port` (for example `kafka-1:9092`)",
                "sinks[0].brokers[1]: `h:99999` is not `host:port` (for example `kafka-1:9092`)",
                "sinks[0].topic_prefix: `bad prefix` cannot start a topic name; use letters, digits, `.`, `_` and `-`",
                "sinks[0].state_topic: `a/b` is not a valid topic name; use letters, digits, `.`, `_` and `-` (at most 249)",
                "sinks[0].transaction_topic: `shop transactions` is not a valid topic name; use letters, digits, `.`, `_` and `-` (at most 249)",
                "sinks[0].transactional_id: must not be empty; leave it out for `weir-<pipeline>-<sink>`",
                "sinks[0].topics.partitions: must be 1 or more",
                "sinks[0].topics.replication_factor: must be 1 or more (or -1 for the broker's default)",
                "sinks[0].properties.\"transactional.id\": the sink sets `transactional.id` itself; use the sink's own setting instead",
            ]
        );
    }

    #[test]
    fn formats_and_codecs_read_as_documented() {
        let c = config(
            r#"
            brokers = ["k:9092"]
            format = "json-schema"
            compression = "zstd"
            "#,
        );
        assert_eq!(c.format, KafkaFormat::JsonSchema);
        assert_eq!(c.compression.as_str(), "zstd");
    }
}
