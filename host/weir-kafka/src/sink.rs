//! The Kafka sink: a transactional producer ([`Output`]) that writes each
//! flush's changes and the source position in one Kafka transaction, with
//! Debezium's transaction metadata when asked ([`crate::transactions`]).

use serde_json::Value as Json;
use weir_connect::own_position::{Ledger, Place, crash_point};
use weir_core::{Delivery, Sink, StageError};

use crate::config::KafkaSinkConfig;
use crate::output::{Output, Owner};
use crate::state::{self, StateRecord};
use crate::transactions::{Boundary, Transactions};

/// See the module docs.
pub struct KafkaSink {
    name: String,
    pipeline: String,
    output: Output,
    state_topic: String,
    ledger: Ledger,
    /// Debezium's transaction metadata, when the sink writes it.
    transactions: Option<Transactions>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("name", &self.name)
            .field("transactional_id", &self.output.transactional_id())
            .field("delivered", &self.ledger.delivered())
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
            ledger: Ledger::default(),
            transactions: config
                .transaction_topic
                .clone()
                .map(|topic| Transactions::new(topic, config.format)),
        })
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn recover(&mut self, position: Option<&Json>) -> Result<(), StageError> {
        // Finishes a transaction an earlier failure of this process left
        // open, then fences an older producer with this id and aborts its
        // open transaction, so what the state topic says next is final.
        self.output.start()?;
        self.output.ensure_own_topic(&self.state_topic, true)?;
        if let Some(t) = &mut self.transactions {
            self.output.ensure_own_topic(&t.topic, false)?;
            t.reset();
        }
        let key = self.output.transactional_id();
        let held = state::read_last(
            self.output.client(),
            &self.state_topic,
            key,
            self.output.timeout(),
        )?;
        let place = Place {
            home: format!("state topic `{}`", self.state_topic),
            key: key.to_owned(),
            start_over: "Set another `transactional_id` to start over (the topics keep what \
                         was written)"
                .to_owned(),
        };
        self.ledger = Ledger::recover(position, held.map(|h| h.held()), &place, &self.name)?;
        Ok(())
    }

    fn write(&mut self, events: &[Delivery<'_>]) -> Result<(), StageError> {
        for (i, d) in events.iter().enumerate() {
            // Kafka holds this one: encode it only to refuse it again if it
            // was refused the first time.
            let held = self.ledger.count();
            let mut place = None;
            if let Some(t) = &mut self.transactions {
                for b in t.before(d.event, held) {
                    self.output.write_record(&t.topic, &b.key, &b.value)?;
                }
                place = t.place(d.event);
            }
            if held {
                self.output.check(i, d, place.as_ref())?;
            } else {
                self.output.write(i, d, place.as_ref())?;
            }
            if let Some(t) = &mut self.transactions {
                t.count(d.event);
            }
        }
        Ok(())
    }

    fn flush(&mut self, source: &Json) -> Result<Json, StageError> {
        // A flush ends whole source transactions.
        if let Some(t) = &mut self.transactions
            && let Some(Boundary { key, value }) = t.end()
        {
            self.output.write_record(&t.topic, &key, &value)?;
        }
        if self.ledger.pending() {
            let held = self.ledger.record();
            let record = StateRecord {
                delivered: held.delivered,
                base: held.base,
                source: source.clone(),
                pipeline: self.pipeline.clone(),
                sink: self.name.clone(),
            };
            let value = serde_json::to_vec(&record).expect("a state record serializes");
            let key = self.output.transactional_id().as_bytes().to_vec();
            self.output.write_record(&self.state_topic, &key, &value)?;
            self.output.commit(None)?;
            self.ledger.committed();
            crash_point("WEIR_KAFKA_CRASH_AFTER", held.delivered);
        }
        Ok(self.ledger.flushed())
    }
}
