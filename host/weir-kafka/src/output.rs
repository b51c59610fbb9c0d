//! The transactional producer shared by the sink and `weir worker`: a
//! topic per destination (created when missing), records encoded in the
//! configured format, tombstones after deletes, the producer's memory
//! bound, and fencing explained.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode as Code};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use tracing::{info, warn};
use weir_core::envelope::TransactionBlock;
use weir_core::{ChangeEvent, Delivery, Op, StageError};

use crate::config::{KafkaSinkConfig, TopicSettings};
use crate::encode::Encoder;
use crate::error::{classify, is_fenced, kind_of};
use crate::topics::{TopicMaker, TopicSpec, topic_name};

/// The header with the source transaction id.
pub const HEADER_TXID: &str = "weir.txid";
/// The header with the plugin versions that processed the event.
pub const HEADER_PLUGINS: &str = "weir.plugins";

/// Remembers the first record the brokers refused, for the next commit.
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

/// The call that would finish a transaction a failure left open: the one
/// that failed, since librdkafka allows retrying it (and nothing else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The commit timed out with the transaction in doubt.
    Commit,
    /// The abort timed out.
    Abort,
}

/// Producers whose transaction a failure left open because the broker did
/// not answer, by transactional id, each with the call that finishes it.
/// The next [`Output::start`] with that id finishes the transaction before
/// a new producer takes over: Kafka would abort it when the id initializes
/// again, but a broker that does not (Tansu, `docs/kafka.md`) would keep it
/// open and later show its records as committed, or hold `read_committed`
/// readers at it. Kept across outputs because a pipeline restart builds a
/// new sink.
static UNFINISHED: LazyLock<Mutex<HashMap<String, LeftOpen>>> = LazyLock::new(Mutex::default);

/// A producer with an unfinished transaction, and the call that finishes it.
type LeftOpen = (ThreadedProducer<Context>, Ending);

/// Keeps `producer` in [`UNFINISHED`] until a start with its id finishes
/// its transaction with `ending`.
fn park(transactional_id: &str, producer: ThreadedProducer<Context>, ending: Ending) {
    UNFINISHED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(transactional_id.to_owned(), (producer, ending));
}

/// Whether `error` is one librdkafka says the failed call may be retried
/// after (a timeout): the transaction is neither finished nor lost.
fn retriable(error: &KafkaError) -> bool {
    matches!(error, KafkaError::Transaction(e) if e.is_retriable() && !e.is_fatal())
}

/// Whether a failed commit left the transaction in doubt rather than
/// doomed: the wait for the records timed out (rdkafka flushes before it
/// commits), or the commit itself did, and a retried commit may finish it.
fn in_doubt(error: &KafkaError) -> bool {
    match error {
        KafkaError::Flush(code) => *code == Code::OperationTimedOut,
        KafkaError::Transaction(e) => retriable(error) && !e.txn_requires_abort(),
        _ => false,
    }
}

/// Who writes through an [`Output`], for its errors.
#[derive(Debug, Clone)]
pub struct Owner {
    /// `sink `kafka``, `worker `orders-mask``: how errors name the writer.
    pub label: String,
    /// Said when another producer took over the transactional id: the
    /// likely cause.
    pub fenced_hint: String,
}

/// A transactional producer writing events to their destinations' topics.
/// See the module docs.
pub struct Output {
    owner: Owner,
    transactional_id: String,
    /// Shared by the admin client and readers of the same cluster.
    client: ClientConfig,
    producer_config: ClientConfig,
    producer: Option<ThreadedProducer<Context>>,
    /// Creates missing topics; `None` when topics are not created (or
    /// before [`Output::start`]).
    maker: Option<TopicMaker>,
    settings: TopicSettings,
    prefix: String,
    tombstones: bool,
    message_max_bytes: usize,
    timeout: Duration,
    /// Topic by destination, for destinations whose topic is known to exist.
    topics: HashMap<String, String>,
    encoder: Encoder,
    in_transaction: bool,
    /// How to finish the transaction a failure left open, when the broker
    /// did not answer the call that should have finished it.
    unfinished: Option<Ending>,
}

impl Output {
    /// An output for `config` writing as `transactional_id` under topic
    /// `prefix`; connects in [`Output::start`].
    pub fn new(
        config: &KafkaSinkConfig,
        client_id: &str,
        transactional_id: String,
        prefix: String,
        owner: Owner,
    ) -> Self {
        let mut client = ClientConfig::new();
        for (k, v) in &config.properties {
            client.set(k, v);
        }
        client
            .set("bootstrap.servers", config.brokers.join(","))
            .set("client.id", client_id);
        let transaction_ms = (u64::from(config.timeout_secs) * 2000).max(10_000);
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
            // Longer than a commit call waits, so that a stalled commit
            // times out on our side first and can be retried; records get
            // as long as the transaction. A record that timed out dooms its
            // transaction to an abort that needs the producer's epoch
            // bumped, which some Kafka-protocol brokers cannot do; within
            // this time a retried commit still delivers it.
            .set("transaction.timeout.ms", transaction_ms.to_string())
            .set("message.timeout.ms", transaction_ms.to_string());
        Output {
            owner,
            transactional_id,
            client,
            producer_config,
            producer: None,
            maker: None,
            settings: config.topics.clone(),
            prefix,
            tombstones: config.tombstones,
            message_max_bytes: config.message_max_bytes as usize,
            timeout: Duration::from_secs(u64::from(config.timeout_secs)),
            topics: HashMap::new(),
            encoder: Encoder::new(config.format, config.transaction_topic.is_some()),
            in_transaction: false,
            unfinished: None,
        }
    }

    /// The settings every client of this cluster shares (brokers,
    /// security).
    pub fn client(&self) -> &ClientConfig {
        &self.client
    }

    pub fn transactional_id(&self) -> &str {
        &self.transactional_id
    }

    /// How long one call may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Creates the producer, which fences an older producer with the same
    /// transactional id and aborts its open transaction, and the topic
    /// maker when topics are created.
    pub fn start(&mut self) -> Result<(), StageError> {
        self.finish_left_open()?;
        let producer: ThreadedProducer<Context> = self
            .producer_config
            .create_with_context(Context::default())
            .map_err(|e| {
                classify(
                    e,
                    &format!("{}: cannot create the producer", self.owner.label),
                )
            })?;
        producer
            .init_transactions(self.timeout)
            .map_err(|e| self.kafka_error(e, "cannot start the transactional producer"))?;
        self.producer = Some(producer);
        if self.settings.create {
            self.maker = Some(TopicMaker::new(&self.client, self.timeout)?);
        }
        Ok(())
    }

    /// Finishes the transaction an earlier output with this transactional
    /// id left open ([`UNFINISHED`]); a transient error while the broker
    /// still does not answer, so the pipeline retries with backoff.
    fn finish_left_open(&self) -> Result<(), StageError> {
        let left_open = UNFINISHED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.transactional_id);
        let Some((producer, mut ending)) = left_open else {
            return Ok(());
        };
        loop {
            let finished = match ending {
                Ending::Commit => producer.commit_transaction(self.timeout),
                Ending::Abort => producer.abort_transaction(self.timeout),
            };
            match finished {
                Ok(()) => {
                    info!(writer = %self.owner.label, ending = ?ending, "Finished the Kafka \
                        transaction the last failure left open.");
                    return Ok(());
                }
                Err(e)
                    if (ending == Ending::Commit && in_doubt(&e))
                        || (ending == Ending::Abort && retriable(&e)) =>
                {
                    park(&self.transactional_id, producer, ending);
                    return Err(StageError::transient(format!(
                        "{}: the Kafka transaction the last failure left open is not finished \
                         yet; waiting for the broker ({e})",
                        self.owner.label
                    )));
                }
                Err(KafkaError::Transaction(e))
                    if ending == Ending::Commit && e.txn_requires_abort() =>
                {
                    ending = Ending::Abort;
                }
                Err(e) => {
                    // Fatal, or not the producer's to finish any more:
                    // the new producer fences it.
                    warn!(writer = %self.owner.label, error = %e, "Could not finish the Kafka \
                        transaction the last failure left open; the new producer fences it.");
                    return Ok(());
                }
            }
        }
    }

    fn producer(&self) -> &ThreadedProducer<Context> {
        self.producer
            .as_ref()
            .expect("`start` comes before anything else")
    }

    /// Creates a topic of the output's own (a state or dead-letter topic)
    /// when topics are created; otherwise it must exist already.
    pub fn ensure_own_topic(&self, name: &str, compact: bool) -> Result<(), StageError> {
        if let Some(maker) = &self.maker {
            let config = if compact {
                vec![("cleanup.policy", "compact")]
            } else {
                Vec::new()
            };
            maker.create(&TopicSpec {
                name,
                partitions: 1,
                replication_factor: self.settings.replication_factor,
                config,
            })?;
        }
        Ok(())
    }

    /// Makes sure the topic of `destination` exists and is in `topics`:
    /// created when missing, or an operator error naming it when topics
    /// are not created.
    fn ensure_topic(&mut self, destination: &str) -> Result<(), StageError> {
        if self.topics.contains_key(destination) {
            return Ok(());
        }
        let topic = topic_name(&self.prefix, destination);
        let settings = &self.settings;
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
                "topic `{topic}` (destination `{destination}`) does not exist, and {} does \
                 not create topics (`topics.create = false`); create it, or route the \
                 destination elsewhere",
                self.owner.label
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
        // the fatal error it keeps says why. So does the delivery report of
        // the record the broker refused.
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
                "{}: another process took over transactional id `{}` ({}); this one stops \
                 and writes nothing more ({error})",
                self.owner.label, self.transactional_id, self.owner.fenced_hint
            ));
        }
        classify(error, &format!("{}: {what}", self.owner.label))
    }

    /// Gives up the open transaction after a failure; the caller restarts
    /// from its last committed position and a new producer takes over.
    pub fn abort(&mut self) {
        if self.in_transaction {
            self.in_transaction = false;
            if let Err(e) = self.producer().abort_transaction(self.timeout) {
                if retriable(&e) {
                    self.unfinished = Some(Ending::Abort);
                }
                warn!(writer = %self.owner.label, error = %e, "Could not abort the Kafka \
                    transaction; the next start finishes or fences it.");
            }
        }
    }

    /// Encodes the `i`th delivery without sending it, to check its size: an
    /// event's error when it is too large.
    pub fn check(
        &mut self,
        i: usize,
        d: &Delivery<'_>,
        transaction: Option<&TransactionBlock<'_>>,
    ) -> Result<(), StageError> {
        let topic = topic_name(&self.prefix, d.destination);
        self.encoder.encode(d.event, &topic, transaction);
        self.check_size(i, d)
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

    /// Writes the `i`th delivery (and a tombstone after a delete) in the
    /// open transaction, opening one if needed, with its place in its
    /// source transaction when the output writes transaction metadata. An
    /// event's error leaves the transaction open; any other aborts it.
    pub fn write(
        &mut self,
        i: usize,
        d: &Delivery<'_>,
        transaction: Option<&TransactionBlock<'_>>,
    ) -> Result<(), StageError> {
        self.ensure_topic(d.destination)?;
        self.begin()?;
        let topic = &self.topics[d.destination];
        self.encoder.encode(d.event, topic, transaction);
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
        Ok(())
    }

    /// Writes one record of the output's own (a state record, a dead
    /// letter) to `topic` in the open transaction, opening one if needed.
    pub fn write_record(
        &mut self,
        topic: &str,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), StageError> {
        self.begin()?;
        if let Err(error) = send(self.producer(), self.timeout, topic, key, Some(value), None) {
            let error = self.kafka_error(error, &format!("cannot write to topic `{topic}`"));
            self.abort();
            return Err(error);
        }
        Ok(())
    }

    /// Commits the open transaction, with the consumer offsets of a
    /// read-process-write round when given (Kafka commits them for the
    /// group only if the transaction commits). On failure the transaction
    /// is aborted or in doubt, and the caller restarts from its last
    /// committed position.
    pub fn commit(
        &mut self,
        offsets: Option<(&TopicPartitionList, &ConsumerGroupMetadata)>,
    ) -> Result<(), StageError> {
        self.begin()?;
        let producer = self.producer();
        let mut committed = Ok(());
        if let Some((offsets, group)) = offsets {
            committed = producer.send_offsets_to_transaction(offsets, group, self.timeout);
        }
        let committed = committed.and_then(|()| producer.commit_transaction(self.timeout));
        let failure = producer.context().take_failure();
        if let Err(e) = &committed
            && in_doubt(e)
        {
            // Records still on their way, or the commit under way at the
            // broker: only a retried commit finishes the transaction.
            let error = self.kafka_error(e.clone(), "cannot commit the Kafka transaction");
            self.in_transaction = false;
            self.unfinished = Some(Ending::Commit);
            return Err(error);
        }
        if let Err(e) = committed {
            let error = match failure {
                Some((code, failure)) => {
                    StageError::new(kind_of(code), format!("{}: {failure}", self.owner.label))
                }
                None => self.kafka_error(e, "cannot commit the Kafka transaction"),
            };
            // Aborted or in doubt: the new producer of the restart settles
            // it either way.
            self.abort();
            return Err(error);
        }
        self.in_transaction = false;
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        // What was written after the last commit belongs to an unfinished
        // round: never commit it.
        self.abort();
        if let (Some(ending), Some(producer)) = (self.unfinished, self.producer.take()) {
            park(&self.transactional_id, producer, ending);
        }
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
/// producer's queue is full: that is the output's memory bound, and the
/// wait holds the caller (in a pipeline, through its bounded channels, the
/// source).
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
