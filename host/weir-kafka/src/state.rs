//! The sink's own position: a record in a compacted state topic, written
//! in the same Kafka transaction as the changes it accounts for. Each
//! record holds the delivery count after its commit, the count of the
//! checkpoint it followed, and the source position; the sink reconciles it
//! with the checkpoint through `weir_connect::own_position`.

use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
#[cfg(test)]
use serde_json::json;
use weir_connect::own_position::Held;
use weir_core::StageError;

use crate::error::classify;

/// One commit's record in the state topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateRecord {
    /// Deliveries accounted for after this commit.
    pub delivered: u64,
    /// Deliveries the pipeline checkpoint held when this commit was made.
    pub base: u64,
    /// The source position the pipeline checkpoint records with it.
    pub source: Json,
    /// Who wrote it, for operators reading the topic.
    pub pipeline: String,
    pub sink: String,
}

impl StateRecord {
    /// What the record says for the ledger.
    pub(crate) fn held(&self) -> Held {
        Held {
            delivered: self.delivered,
            base: self.base,
        }
    }
}

/// The state reader's client: reaching a partition's end is how it knows
/// it is done, not an error worth a log line.
struct Reader;

impl ClientContext for Reader {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::error!(error = %error, reason, "Kafka client error while reading the state topic.");
        }
    }
}

impl ConsumerContext for Reader {}

/// Reads the last committed record with `key` from `topic`
/// (`read_committed`), or `None` when there is none or the topic does not
/// exist.
pub(crate) fn read_last(
    client: &ClientConfig,
    topic: &str,
    key: &str,
    timeout: Duration,
) -> Result<Option<StateRecord>, StageError> {
    let what = || format!("cannot read state topic `{topic}`");
    let consumer: BaseConsumer<Reader> = client
        .clone()
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        // The end of a partition shows only when a fetch returns; do not
        // let the broker hold an empty fetch for its default half second.
        .set("fetch.wait.max.ms", "10")
        .set("group.id", "weir-state-reader")
        .create_with_context(Reader)
        .map_err(|e| classify(e, &what()))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| classify(e, &what()))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Ok(None);
    }
    let mut list = TopicPartitionList::new();
    for p in &partitions {
        list.add_partition_offset(topic, *p, Offset::Beginning)
            .map_err(|e| classify(e, &what()))?;
    }
    consumer.assign(&list).map_err(|e| classify(e, &what()))?;
    let deadline = Instant::now() + timeout;
    let mut open = partitions.len();
    let mut last: Option<StateRecord> = None;
    while open > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(StageError::transient(format!(
                "{}: not read to its end within {} s",
                what(),
                timeout.as_secs()
            )));
        }
        match consumer.poll(left.min(Duration::from_millis(200))) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => open -= 1,
            Some(Err(e)) => return Err(classify(e, &what())),
            Some(Ok(message)) => {
                if message.key() != Some(key.as_bytes()) {
                    continue;
                }
                last = match message.payload() {
                    None => None,
                    Some(bytes) => Some(serde_json::from_slice(bytes).map_err(|e| {
                        StageError::operator(format!(
                            "{}: the record for `{key}` at offset {} is not a Weir state \
                             record ({e})",
                            what(),
                            message.offset()
                        ))
                    })?),
                };
            }
        }
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_record_reads_back_as_written() {
        let record = StateRecord {
            delivered: 7,
            base: 3,
            source: json!({"lsn": "0/10"}),
            pipeline: "p".into(),
            sink: "k".into(),
        };
        let bytes = serde_json::to_vec(&record).unwrap();
        let back: StateRecord = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, record);
        assert_eq!(
            back.held(),
            Held {
                delivered: 7,
                base: 3
            }
        );
    }
}
