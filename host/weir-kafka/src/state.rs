//! The sink's own position: a record in a compacted state topic, written
//! in the same Kafka transaction as the changes it accounts for.
//!
//! Positions count deliveries: every event the sink was handed since it
//! first started, written or refused. The pipeline checkpoint holds the
//! count at its last save (`{"delivered": n}`); each Kafka commit records
//! the count after it, the count of the checkpoint it followed, and the
//! source position. After a crash between a Kafka commit and the checkpoint
//! save, the state record is ahead of the checkpoint by exactly the
//! deliveries that the replay from the checkpoint hands the sink again
//! first (`weir_core::Sink`, "sinks that keep their own position").

use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
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

/// The sink position the checkpoint records.
pub(crate) fn position(delivered: u64) -> Json {
    json!({ "delivered": delivered })
}

/// The delivery count in a checkpointed sink position (`None` on a first
/// start).
pub(crate) fn delivered_in(position: Option<&Json>) -> Result<Option<u64>, StageError> {
    match position {
        None => Ok(None),
        Some(p) => p
            .get("delivered")
            .and_then(Json::as_u64)
            .map(Some)
            .ok_or_else(|| {
                StageError::operator(format!(
                    "the checkpoint's position for this Kafka sink is {p}, not {{\"delivered\": n}}; \
                     was the sink's kind changed? Give the changed sink a new name"
                ))
            }),
    }
}

/// What to do after comparing the checkpoint with the state topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// Kafka holds exactly what the checkpoint says.
    InStep { delivered: u64 },
    /// Kafka holds the first `skip` deliveries the replay will bring.
    Ahead { delivered: u64, skip: u64 },
}

/// Compares the checkpoint's count with the last state record.
pub(crate) fn reconcile(
    local: Option<u64>,
    held: Option<&StateRecord>,
    key: &str,
    topic: &str,
) -> Result<Recovery, StageError> {
    match (local, held) {
        (None, None) => Ok(Recovery::InStep { delivered: 0 }),
        (Some(d), None) => Err(StageError::operator(format!(
            "the pipeline checkpoint says this sink delivered {d} events, but state topic `{topic}` \
             has no record for `{key}`: the topic was deleted or the cluster changed. Kafka may be \
             missing changes; to start over, remove the pipeline's state directory"
        ))),
        (None, Some(r)) => Err(StageError::operator(format!(
            "state topic `{topic}` says `{key}` delivered {} events, but the pipeline has no \
             checkpoint: its state directory was lost, or another pipeline uses this \
             transactional id. Set another `transactional_id` to start over (the topics keep \
             what was written)",
            r.delivered
        ))),
        (Some(d), Some(r)) if r.delivered == d => Ok(Recovery::InStep { delivered: d }),
        (Some(d), Some(r)) if r.base <= d && d < r.delivered => Ok(Recovery::Ahead {
            delivered: d,
            skip: r.delivered - d,
        }),
        (Some(d), Some(r)) => Err(StageError::operator(format!(
            "the pipeline checkpoint says this sink delivered {d} events, but state topic \
             `{topic}` says `{key}` delivered {} (after a checkpoint at {}): the checkpoint is \
             not the one Kafka's last commit followed (a restored state directory?). Set another \
             `transactional_id` to start over",
            r.delivered, r.base
        ))),
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

    fn record(delivered: u64, base: u64) -> StateRecord {
        StateRecord {
            delivered,
            base,
            source: json!({"lsn": "0/10"}),
            pipeline: "p".into(),
            sink: "k".into(),
        }
    }

    #[test]
    fn the_checkpoint_and_the_state_topic_are_reconciled() {
        let ok = |local, held: Option<StateRecord>| reconcile(local, held.as_ref(), "k", "t");
        assert_eq!(ok(None, None).unwrap(), Recovery::InStep { delivered: 0 });
        assert_eq!(
            ok(Some(7), Some(record(7, 3))).unwrap(),
            Recovery::InStep { delivered: 7 }
        );
        // Crashed after the Kafka commit, before the checkpoint save.
        assert_eq!(
            ok(Some(3), Some(record(7, 3))).unwrap(),
            Recovery::Ahead {
                delivered: 3,
                skip: 4
            }
        );
        // ... and again after a checkpoint saved partway through the replay.
        assert_eq!(
            ok(Some(5), Some(record(7, 3))).unwrap(),
            Recovery::Ahead {
                delivered: 5,
                skip: 2
            }
        );
        for (local, held) in [
            (Some(2), Some(record(7, 3))),
            (Some(9), Some(record(7, 3))),
            (None, Some(record(7, 3))),
            (Some(7), None),
        ] {
            let e = ok(local, held).unwrap_err();
            assert_eq!(e.kind(), weir_core::ErrorKind::Operator, "{e}");
        }
    }

    #[test]
    fn positions_read_back() {
        assert_eq!(delivered_in(Some(&position(42))).unwrap(), Some(42));
        assert_eq!(delivered_in(None).unwrap(), None);
        assert!(delivered_in(Some(&json!({"files": {}}))).is_err());
    }
}
