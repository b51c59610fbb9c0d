//! The Kafka sink: a transactional producer that writes each flush's
//! changes and the source position in one Kafka transaction.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode as Code};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use serde_json::Value as Json;
use tracing::{info, warn};
use weir_core::{ChangeEvent, Delivery, Op, Sink, StageError};

use crate::config::{KafkaSinkConfig, TopicSettings};
use crate::encode::Encoder;
use crate::error::{classify, is_fenced, kind_of};
use crate::state::{self, Recovery, StateRecord};
use crate::topics::{TopicMaker, TopicSpec, topic_name};

/// The header with the source transaction id.
pub const HEADER_TXID: &str = "weir.txid";
/// The header with the plugin versions that processed the event.
pub const HEADER_PLUGINS: &str = "weir.plugins";

/// Remembers the first record the brokers refused, for the next flush.
#[derive(Default)]
pub(crate) struct Context {
    failure: Mutex<Option<(Option<Code>, String)>>,
}

impl ClientContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, message)) = result {
            let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
            if failure.is_none() {
                *failure = Some((
                    error.rdkafka_error_code(),
                    format!(
                        "a record for topic `{}` was not delivered: {error}",
                        message.topic()
                    ),
                ));
            }
        }
    }
}

impl Context {
    fn failure_code(&self) -> Option<Code> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(|(code, _)| *code)
    }

    fn take_failure(&self) -> Option<(Option<Code>, String)> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// See the module docs.
pub struct KafkaSink {
    name: String,
    pipeline: String,
    transactional_id: String,
    /// Shared by the admin client and the state reader.
    client: ClientConfig,
    producer_config: ClientConfig,
    producer: Option<ThreadedProducer<Context>>,
    /// Creates missing topics; `None` when the sink does not create them
    /// (or before `recover`).
    maker: Option<TopicMaker>,
    topics_settings: TopicSettings,
    prefix: String,
    state_topic: String,
    tombstones: bool,
    message_max_bytes: usize,
    timeout: Duration,
    /// Topic by destination, for destinations whose topic is known to exist.
    topics: HashMap<String, String>,
    encoder: Encoder,
    /// Deliveries accounted for so far (written or refused).
    delivered: u64,
    /// `delivered` at the last flush: what the checkpoint holds.
    flushed: u64,
    /// `delivered` at the last Kafka commit.
    committed: u64,
    /// Deliveries Kafka already holds that the replay brings again.
    skip: u64,
    in_transaction: bool,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("name", &self.name)
            .field("transactional_id", &self.transactional_id)
            .field("delivered", &self.delivered)
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// A sink for `config`; connects in [`Sink::recover`].
    pub fn new(config: &KafkaSinkConfig, name: &str, pipeline: &str) -> Result<Self, StageError> {
        let mut client = ClientConfig::new();
        for (k, v) in &config.properties {
            client.set(k, v);
        }
        client
            .set("bootstrap.servers", config.brokers.join(","))
            .set("client.id", format!("weir-{pipeline}-{name}"));
        let transactional_id = config.transactional_id(pipeline, name);
        let mut producer_config = client.clone();
        producer_config
            .set("transactional.id", &transactional_id)
            .set("enable.idempotence", "true")
            // The Java client's default partitioner: consumers written
            // against Debezium topics co-partition unchanged.
            .set("partitioner", "murmur2_random")
            .set("compression.type", config.compression.as_str())
            .set("linger.ms", config.linger_ms.to_string())
            .set("batch.size", config.batch_bytes.to_string())
            .set("message.max.bytes", config.message_max_bytes.to_string())
            .set(
                "queue.buffering.max.kbytes",
                config.queue_kbytes.to_string(),
            )
            // Longer than a commit may take, so that a stalled commit
            // times out on our side first.
            .set(
                "transaction.timeout.ms",
                (u64::from(config.timeout_secs) * 2000)
                    .max(10_000)
                    .to_string(),
            )
            // A record not delivered in time fails the commit (and the
            // pipeline restarts) instead of waiting librdkafka's 5 minutes.
            .set(
                "message.timeout.ms",
                (u64::from(config.timeout_secs) * 1000).to_string(),
            );
        let prefix = config.prefix(pipeline).to_owned();
        Ok(KafkaSink {
            name: name.to_owned(),
            pipeline: pipeline.to_owned(),
            transactional_id,
            client,
            producer_config,
            producer: None,
            maker: None,
            topics_settings: config.topics.clone(),
            encoder: Encoder::new(config.format),
            prefix,
            state_topic: config.state_topic.clone(),
            tombstones: config.tombstones,
            message_max_bytes: config.message_max_bytes as usize,
            timeout: Duration::from_secs(u64::from(config.timeout_secs)),
            topics: HashMap::new(),
            delivered: 0,
            flushed: 0,
            committed: 0,
            skip: 0,
            in_transaction: false,
        })
    }

    fn producer(&self) -> &ThreadedProducer<Context> {
        self.producer
            .as_ref()
            .expect("the writer calls recover before anything else")
    }

    /// Makes sure the topic of `destination` exists and is in `topics`:
    /// created when missing, or an operator error naming it when the sink
    /// does not create topics.
    fn ensure_topic(&mut self, destination: &str) -> Result<(), StageError> {
        if self.topics.contains_key(destination) {
            return Ok(());
        }
        let topic = topic_name(&self.prefix, destination);
        let settings = &self.topics_settings;
        if let Some(maker) = &self.maker {
            let mut config: Vec<(&str, &str)> = settings
                .config
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            if settings.compact {
                config.push(("cleanup.policy", "compact"));
            }
            maker.create(&TopicSpec {
                name: &topic,
                partitions: settings.partitions,
                replication_factor: settings.replication_factor,
                config,
            })?;
        } else if !self.topic_exists(&topic)? {
            return Err(StageError::operator(format!(
                "topic `{topic}` (destination `{destination}`) does not exist, and sink `{}` does \
                 not create topics (`topics.create = false`); create it, or route the \
                 destination elsewhere",
                self.name
            )));
        }
        self.topics.insert(destination.to_owned(), topic);
        Ok(())
    }

    fn topic_exists(&self, topic: &str) -> Result<bool, StageError> {
        let metadata = self
            .producer()
            .client()
            .fetch_metadata(None, self.timeout)
            .map_err(|e| classify(e, "cannot list the cluster's topics"))?;
        Ok(metadata.topics().iter().any(|t| t.name() == topic))
    }

    fn begin(&mut self) -> Result<(), StageError> {
        if !self.in_transaction {
            self.producer()
                .begin_transaction()
                .map_err(|e| self.kafka_error(e, "cannot begin a Kafka transaction"))?;
            self.in_transaction = true;
        }
        Ok(())
    }

    /// A Kafka error, with fencing explained.
    fn kafka_error(&self, error: KafkaError, what: &str) -> StageError {
        // A fenced producer fails later calls with a generic state error;
        // the fatal error it keeps says why.
        // So does the delivery report of the record the broker refused.
        let fatal = self
            .producer
            .as_ref()
            .and_then(|p| p.client().fatal_error())
            .map(|(code, _)| code);
        let refused = self
            .producer
            .as_ref()
            .and_then(|p| p.context().failure_code());
        if is_fenced(error.rdkafka_error_code()) || is_fenced(fatal) || is_fenced(refused) {
            return StageError::operator(format!(
                "sink `{}`: another process took over transactional id `{}` (a second instance \
                 of pipeline `{}`?); this one stops and writes nothing more ({error})",
                self.name, self.transactional_id, self.pipeline
            ));
        }
        classify(error, &format!("sink `{}`: {what}", self.name))
    }

    /// Gives up the open transaction after a failure; the pipeline restarts
    /// from its checkpoint and a new producer takes over.
    fn abort(&mut self) {
        if self.in_transaction {
            self.in_transaction = false;
            if let Err(e) = self.producer().abort_transaction(self.timeout) {
                warn!(sink = %self.name, error = %e, "Could not abort the Kafka transaction; \
                    the next start fences it.");
            }
        }
    }

    /// Refuses the encoded record when it is larger than the limit.
    fn check_size(&self, i: usize, d: &Delivery<'_>) -> Result<(), StageError> {
        let size = self.encoder.size();
        if size > self.message_max_bytes {
            return Err(StageError::event(
                i,
                format!(
                    "the record for `{}` is {size} bytes, more than `message_max_bytes` ({})",
                    d.destination, self.message_max_bytes
                ),
            ));
        }
        Ok(())
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn recover(&mut self, position: Option<&Json>) -> Result<(), StageError> {
        let local = state::delivered_in(position)?;
        let producer: ThreadedProducer<Context> = self
            .producer_config
            .create_with_context(Context::default())
            .map_err(|e| {
                classify(
                    e,
                    &format!("sink `{}`: cannot create the producer", self.name),
                )
            })?;
        // Fences an older producer with this id and aborts its open
        // transaction, so what the state topic says next is final.
        producer
            .init_transactions(self.timeout)
            .map_err(|e| self.kafka_error(e, "cannot start the transactional producer"))?;
        self.producer = Some(producer);
        if self.topics_settings.create {
            let maker = TopicMaker::new(&self.client, self.timeout)?;
            maker.create(&TopicSpec {
                name: &self.state_topic,
                partitions: 1,
                replication_factor: self.topics_settings.replication_factor,
                config: vec![("cleanup.policy", "compact")],
            })?;
            self.maker = Some(maker);
        }
        let held = state::read_last(
            &self.client,
            &self.state_topic,
            &self.transactional_id,
            self.timeout,
        )?;
        match state::reconcile(
            local,
            held.as_ref(),
            &self.transactional_id,
            &self.state_topic,
        )? {
            Recovery::InStep { delivered } => {
                self.delivered = delivered;
                self.skip = 0;
            }
            Recovery::Ahead { delivered, skip } => {
                info!(sink = %self.name, skip,
                    "Kafka committed changes after the last checkpoint; the replay skips them.");
                self.delivered = delivered;
                self.skip = skip;
            }
        }
        self.flushed = self.delivered;
        self.committed = held.map_or(0, |h| h.delivered);
        Ok(())
    }

    fn write(&mut self, events: &[Delivery<'_>]) -> Result<(), StageError> {
        for (i, d) in events.iter().enumerate() {
            self.delivered += 1;
            if self.skip > 0 {
                // Kafka holds this one: encode it only to refuse it again if
                // it was refused the first time.
                self.skip -= 1;
                let topic = topic_name(&self.prefix, d.destination);
                self.encoder.encode(d.event, &topic);
                self.check_size(i, d)?;
                continue;
            }
            self.ensure_topic(d.destination)?;
            self.begin()?;
            let topic = &self.topics[d.destination];
            self.encoder.encode(d.event, topic);
            self.check_size(i, d)?;
            let producer = self.producer();
            let (key, value) = self.encoder.record();
            let mut sent = send(
                producer,
                self.timeout,
                topic,
                key,
                Some(value),
                Some(d.event),
            );
            if sent.is_ok() && d.event.op == Op::Delete && self.tombstones {
                sent = send(producer, self.timeout, topic, key, None, Some(d.event));
            }
            if let Err(error) = sent {
                if error.rdkafka_error_code() == Some(Code::MessageSizeTooLarge) {
                    return Err(StageError::event(
                        i,
                        format!(
                            "the record for `{}` is too large for the producer: {error}",
                            d.destination
                        ),
                    ));
                }
                let what = format!("cannot write to topic `{topic}`");
                let error = self.kafka_error(error, &what);
                self.abort();
                return Err(error);
            }
        }
        Ok(())
    }

    fn flush(&mut self, source: &Json) -> Result<Json, StageError> {
        if self.delivered > self.committed {
            self.begin()?;
            let record = StateRecord {
                delivered: self.delivered,
                base: self.flushed,
                source: source.clone(),
                pipeline: self.pipeline.clone(),
                sink: self.name.clone(),
            };
            let value = serde_json::to_vec(&record).expect("a state record serializes");
            let producer = self.producer();
            let sent = send(
                producer,
                self.timeout,
                &self.state_topic,
                self.transactional_id.as_bytes(),
                Some(&value),
                None,
            );
            let committed = sent.and_then(|()| producer.commit_transaction(self.timeout));
            let failure = producer.context().take_failure();
            if let Err(e) = committed {
                let error = match failure {
                    Some((code, failure)) => {
                        StageError::new(kind_of(code), format!("sink `{}`: {failure}", self.name))
                    }
                    None => self.kafka_error(e, "cannot commit the Kafka transaction"),
                };
                // Aborted or in doubt: the new producer of the restart
                // settles it either way.
                self.abort();
                return Err(error);
            }
            self.in_transaction = false;
            self.committed = self.delivered;
            crash_point(self.delivered);
        }
        self.flushed = self.delivered;
        Ok(state::position(self.delivered))
    }
}

/// The headers of `event`'s records.
fn headers(event: &ChangeEvent) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new_with_capacity(2);
    if let Some(txid) = &event.source.txid {
        headers = headers.insert(Header {
            key: HEADER_TXID,
            value: Some(txid.as_str()),
        });
    }
    if let Some(plugins) = &event.source.plugins {
        headers = headers.insert(Header {
            key: HEADER_PLUGINS,
            value: Some(plugins.as_str()),
        });
    }
    headers
}

/// Sends one record (with `event`'s headers, if given), waiting while the
/// producer's queue is full: that is
/// the sink's memory bound, and the wait holds the writer and so, through
/// the pipeline's bounded channels, the source.
fn send(
    producer: &ThreadedProducer<Context>,
    timeout: Duration,
    topic: &str,
    key: &[u8],
    value: Option<&[u8]>,
    event: Option<&ChangeEvent>,
) -> Result<(), KafkaError> {
    let mut record = BaseRecord::to(topic).key(key);
    if let Some(event) = event {
        record = record.headers(headers(event));
    }
    if let Some(value) = value {
        record = record.payload(value);
    }
    let started = Instant::now();
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(Code::QueueFull), back))
                if started.elapsed() < timeout =>
            {
                record = back;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err((error, _)) => return Err(error),
        }
    }
}

impl Drop for KafkaSink {
    fn drop(&mut self) {
        // What was written after the last flush is part of an unfinished
        // source transaction: never commit it.
        self.abort();
    }
}

/// Fault injection for the tests: with `WEIR_KAFKA_CRASH_AFTER` set to a
/// number, the process aborts right after the first Kafka commit that takes
/// the delivery count to it or beyond — between the Kafka commit and the
/// checkpoint save, the moment the sink's own position exists for.
fn crash_point(delivered: u64) {
    static AT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| {
        std::env::var("WEIR_KAFKA_CRASH_AFTER")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if at.is_some_and(|at| delivered >= at) {
        eprintln!(
            "WEIR_KAFKA_CRASH_AFTER: aborting after the Kafka commit at {delivered} deliveries"
        );
        std::process::abort();
    }
}
