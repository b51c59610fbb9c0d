//! The Kafka sink: a transactional producer ([`Output`]) that writes each
//! flush's changes and the source position in one Kafka transaction.

use serde_json::Value as Json;
use tracing::info;
use weir_core::{Delivery, Sink, StageError};

use crate::config::KafkaSinkConfig;
use crate::output::{Output, Owner};
use crate::state::{self, Recovery, StateRecord};

/// See the module docs.
pub struct KafkaSink {
    name: String,
    pipeline: String,
    output: Output,
    state_topic: String,
    /// Deliveries accounted for so far (written or refused).
    delivered: u64,
    /// `delivered` at the last flush: what the checkpoint holds.
    flushed: u64,
    /// `delivered` at the last Kafka commit.
    committed: u64,
    /// Deliveries Kafka already holds that the replay brings again.
    skip: u64,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("name", &self.name)
            .field("transactional_id", &self.output.transactional_id())
            .field("delivered", &self.delivered)
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// A sink for `config`; connects in [`Sink::recover`].
    pub fn new(config: &KafkaSinkConfig, name: &str, pipeline: &str) -> Result<Self, StageError> {
        let output = Output::new(
            config,
            &format!("weir-{pipeline}-{name}"),
            config.transactional_id(pipeline, name),
            config.prefix(pipeline).to_owned(),
            Owner {
                label: format!("sink `{name}`"),
                fenced_hint: format!("a second instance of pipeline `{pipeline}`?"),
            },
        );
        Ok(KafkaSink {
            name: name.to_owned(),
            pipeline: pipeline.to_owned(),
            output,
            state_topic: config.state_topic.clone(),
            delivered: 0,
            flushed: 0,
            committed: 0,
            skip: 0,
        })
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn recover(&mut self, position: Option<&Json>) -> Result<(), StageError> {
        let local = state::delivered_in(position)?;
        // Fences an older producer with this id and aborts its open
        // transaction, so what the state topic says next is final.
        self.output.start()?;
        self.output.ensure_own_topic(&self.state_topic, true)?;
        let held = state::read_last(
            self.output.client(),
            &self.state_topic,
            self.output.transactional_id(),
            self.output.timeout(),
        )?;
        match state::reconcile(
            local,
            held.as_ref(),
            self.output.transactional_id(),
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
                self.output.check(i, d)?;
                continue;
            }
            self.output.write(i, d)?;
        }
        Ok(())
    }

    fn flush(&mut self, source: &Json) -> Result<Json, StageError> {
        if self.delivered > self.committed {
            let record = StateRecord {
                delivered: self.delivered,
                base: self.flushed,
                source: source.clone(),
                pipeline: self.pipeline.clone(),
                sink: self.name.clone(),
            };
            let value = serde_json::to_vec(&record).expect("a state record serializes");
            let key = self.output.transactional_id().as_bytes().to_vec();
            self.output.write_record(&self.state_topic, &key, &value)?;
            self.output.commit(None)?;
            self.committed = self.delivered;
            crash_point("WEIR_KAFKA_CRASH_AFTER", self.delivered);
        }
        self.flushed = self.delivered;
        Ok(state::position(self.delivered))
    }
}

/// Fault injection for the tests: with the environment variable `var` set
/// to a number, the process aborts (no cleanup, no goodbye to the brokers,
/// like `kill -9`) as soon as `count` reaches it. The sink counts
/// deliveries at each Kafka commit (`WEIR_KAFKA_CRASH_AFTER`: between the
/// Kafka commit and the checkpoint save, the moment the sink's own position
/// exists for); `weir worker` counts commits (`WEIR_WORKER_CRASH_AFTER`).
pub fn crash_point(var: &str, count: u64) {
    let at: Option<u64> = std::env::var(var).ok().and_then(|v| v.parse().ok());
    if at.is_some_and(|at| count >= at) {
        eprintln!("{var}: aborting at {count}");
        std::process::abort();
    }
}
