//! The writer against in-memory sinks and stores: group commit, batches
//! that end inside a transaction, failing flushes and saves, recovery,
//! commit order across destinations, per-sink inputs and events a sink
//! refuses.

use std::sync::{Arc, Mutex};

use serde_json::json;

use super::*;
use crate::sinks::test_event;

/// What an in-memory sink saw.
#[derive(Debug, Default)]
struct Seen {
    /// `(destination, id)` of every event written, in order.
    written: Vec<(String, i64)>,
    /// How many of `written` the last flush made durable.
    durable: usize,
    flushes: usize,
    /// The position `recover` was given.
    recovered: Option<Option<Json>>,
    dead: Vec<(String, i64)>,
    fail_flush: Option<ErrorKind>,
    /// Refuse the event with this id as its own fault.
    refuse: Option<i64>,
    /// Refuse it without saying which event.
    refuse_without_index: bool,
}

#[derive(Debug, Clone)]
struct MemorySink {
    name: String,
    seen: Arc<Mutex<Seen>>,
}

impl MemorySink {
    fn new(name: &str) -> Self {
        MemorySink {
            name: name.to_owned(),
            seen: Arc::default(),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }

    fn ids(&self) -> Vec<(String, i64)> {
        self.seen().written.clone()
    }
}

fn id_of(event: &ChangeEvent) -> i64 {
    match event.key[0].value {
        weir_core::Value::Int(id) => id,
        _ => unreachable!("test events have integer keys"),
    }
}

impl Sink for MemorySink {
    fn name(&self) -> &str {
        &self.name
    }

    fn recover(&mut self, position: Option<&Json>) -> Result<(), StageError> {
        let mut seen = self.seen();
        let len = position
            .and_then(|p| p["len"].as_u64())
            .map_or(0, |l| l as usize);
        seen.written.truncate(len);
        seen.durable = len;
        seen.recovered = Some(position.cloned());
        Ok(())
    }

    fn write(&mut self, events: &[Delivery<'_>]) -> Result<(), StageError> {
        let mut seen = self.seen();
        for (i, d) in events.iter().enumerate() {
            if seen.refuse == Some(id_of(d.event)) {
                if seen.refuse_without_index {
                    return Err(StageError::new(ErrorKind::Event, "no index"));
                }
                return Err(StageError::event(i, format!("refused {}", id_of(d.event))));
            }
            seen.written
                .push((d.destination.to_owned(), id_of(d.event)));
        }
        Ok(())
    }

    fn write_dead_letters(&mut self, letters: &[DeadLetter]) -> Result<(), StageError> {
        let mut seen = self.seen();
        for l in letters {
            let at = match &l.failed_at {
                FailedAt::Plugin(p) => format!("plugin {p}: {}", l.reason),
                FailedAt::Sink(s) => format!("sink {s} ({}): {}", l.kind, l.reason),
            };
            seen.dead.push((at, id_of(&l.event)));
        }
        Ok(())
    }

    fn flush(&mut self, _source: &Json) -> Result<Json, StageError> {
        let mut seen = self.seen();
        if let Some(kind) = seen.fail_flush {
            return Err(StageError::new(
                kind,
                format!("sink `{}`: disk gone", self.name),
            ));
        }
        seen.flushes += 1;
        seen.durable = seen.written.len();
        Ok(json!({ "len": seen.durable }))
    }
}

#[derive(Debug, Default)]
struct Stored {
    saved: Vec<Checkpoint>,
    fail_save: bool,
}

#[derive(Debug, Clone, Default)]
struct MemoryStore(Arc<Mutex<Stored>>);

impl CheckpointStore for MemoryStore {
    fn load(&mut self) -> Result<Option<Checkpoint>, StageError> {
        Ok(self.0.lock().unwrap().saved.last().cloned())
    }

    fn save(&mut self, checkpoint: &Checkpoint) -> Result<(), StageError> {
        let mut stored = self.0.lock().unwrap();
        if stored.fail_save {
            return Err(StageError::transient(
                "checkpoint store: database is locked",
            ));
        }
        stored.saved.push(checkpoint.clone());
        Ok(())
    }
}

impl MemoryStore {
    fn sources(&self) -> Vec<Json> {
        let stored = self.0.lock().unwrap();
        stored.saved.iter().map(|c| c.source.clone()).collect()
    }
}

/// A writer over `sinks` (with their inputs) and a dead-letter sink.
struct Rig {
    sinks: Vec<(MemorySink, Option<Vec<String>>)>,
    dead: MemorySink,
    store: MemoryStore,
}

impl Rig {
    fn new(names: &[&str]) -> Self {
        Rig {
            sinks: names.iter().map(|n| (MemorySink::new(n), None)).collect(),
            dead: MemorySink::new("$dead-letters"),
            store: MemoryStore::default(),
        }
    }

    fn sink(&self, i: usize) -> &MemorySink {
        &self.sinks[i].0
    }

    /// Starts a writer, queues `batches`, closes the queue and runs the
    /// writer to the end. Returns its result, the resume state it started
    /// from and the acknowledgements it sent.
    fn run(&self, batches: Vec<RoutedBatch>) -> (Result<(), PipelineError>, Json, Vec<Json>) {
        self.run_with(batches, MAX_COMMIT_INTERVAL)
    }

    /// [`Rig::run`], flushing at least every `interval`.
    fn run_with(
        &self,
        batches: Vec<RoutedBatch>,
        interval: Duration,
    ) -> (Result<(), PipelineError>, Json, Vec<Json>) {
        let slots = self
            .sinks
            .iter()
            .map(|(s, inputs)| SinkSlot::new(Box::new(s.clone()), Inputs::new(inputs.as_deref())))
            .collect();
        let (acks_tx, mut acks_rx) = mpsc::unbounded_channel();
        let (writer, resume) = Writer::start(
            slots,
            Box::new(self.dead.clone()),
            Box::new(self.store.clone()),
            acks_tx,
            Arc::new(Stats::default()),
        )
        .unwrap();
        let writer = writer.with_max_commit_interval(interval);
        let (tx, rx) = std::sync::mpsc::channel();
        for b in batches {
            tx.send(b).unwrap();
        }
        drop(tx);
        let result = writer.run(rx);
        let mut acks = Vec::new();
        while let Ok(a) = acks_rx.try_recv() {
            acks.push(a);
        }
        (result, resume, acks)
    }
}

fn lsn(n: u64) -> Json {
    json!({ "lsn": n })
}

/// A batch of `(destination, id)` events ending at `resume`.
fn batch(events: &[(&str, i64)], resume: Option<u64>) -> RoutedBatch {
    let mut b = RoutedBatch::new(resume.map(lsn));
    for (destination, id) in events {
        let table = destination.rsplit('.').next().unwrap();
        b.push(destination, test_event(*id, table));
    }
    b
}

fn pairs(events: &[(&str, i64)]) -> Vec<(String, i64)> {
    events.iter().map(|(d, i)| ((*d).to_owned(), *i)).collect()
}

#[test]
fn queued_batches_share_one_flush_and_one_checkpoint() {
    let rig = Rig::new(&["a", "b"]);
    let (result, resume, acks) = rig.run(vec![
        batch(&[("public.t", 1)], Some(10)),
        batch(&[("public.t", 2)], Some(20)),
        batch(&[("public.t", 3)], Some(30)),
    ]);
    result.unwrap();
    assert_eq!(resume, Json::Null, "first start");
    assert_eq!(rig.store.sources(), [lsn(30)]);
    assert_eq!(acks, [lsn(30)]);
    for i in 0..2 {
        // One group flush; nothing at shutdown (nothing was left unflushed).
        assert_eq!(rig.sink(i).seen().flushes, 1);
        assert_eq!(
            rig.sink(i).ids(),
            pairs(&[("public.t", 1), ("public.t", 2), ("public.t", 3)])
        );
    }
    let saved = rig.store.0.lock().unwrap().saved[0].clone();
    assert_eq!(saved.sinks["a"], json!({"len": 3}));
    assert_eq!(saved.sinks["$dead-letters"], json!({"len": 0}));
}

#[test]
fn a_queue_that_never_empties_is_still_flushed_every_interval() {
    let rig = Rig::new(&["a"]);
    // Every batch is queued before the writer starts, so the queue never
    // empties; with a zero interval each whole transaction is flushed.
    let (result, _, acks) = rig.run_with(
        vec![
            batch(&[("public.t", 1)], Some(10)),
            batch(&[("public.t", 2)], None),
            batch(&[("public.t", 3)], Some(30)),
            batch(&[("public.t", 4)], Some(40)),
        ],
        Duration::ZERO,
    );
    result.unwrap();
    assert_eq!(rig.store.sources(), [lsn(10), lsn(30), lsn(40)]);
    assert_eq!(acks, [lsn(10), lsn(30), lsn(40)]);
    assert_eq!(rig.sink(0).seen().flushes, 3);
}

#[test]
fn a_batch_ending_inside_a_transaction_is_never_checkpointed_alone() {
    let rig = Rig::new(&["a"]);
    let (result, _, acks) = rig.run(vec![
        batch(&[("public.t", 1)], Some(10)),
        // A transaction in two chunks: only its last carries a position.
        batch(&[("public.t", 2)], None),
        batch(&[("public.t", 3)], Some(30)),
        // The start of a transaction the source never finished.
        batch(&[("public.t", 4)], None),
    ]);
    result.unwrap();
    // What was whole before the chunk was made durable first.
    assert_eq!(rig.store.sources(), [lsn(10), lsn(30)]);
    assert_eq!(acks, [lsn(10), lsn(30)]);
    let saved = rig.store.0.lock().unwrap().saved.clone();
    assert_eq!(
        saved[1].sinks["a"],
        json!({"len": 3}),
        "event 4 is not covered"
    );
}

#[test]
fn a_failing_flush_saves_no_checkpoint_and_acknowledges_nothing() {
    let rig = Rig::new(&["a", "b"]);
    rig.sink(1).seen().fail_flush = Some(ErrorKind::Transient);
    let (result, _, acks) = rig.run(vec![batch(&[("public.t", 1)], Some(10))]);
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert_eq!(err.to_string(), "sink `b`: disk gone");
    assert!(rig.store.sources().is_empty());
    assert!(acks.is_empty());
}

#[test]
fn a_failing_checkpoint_save_acknowledges_nothing() {
    let rig = Rig::new(&["a"]);
    rig.store.0.lock().unwrap().fail_save = true;
    let (result, _, acks) = rig.run(vec![batch(&[("public.t", 1)], Some(10))]);
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(err.to_string().contains("database is locked"), "{err}");
    assert!(acks.is_empty());
}

#[test]
fn a_restart_recovers_every_sink_to_the_checkpoint() {
    let rig = Rig::new(&["a"]);
    let (result, _, _) = rig.run(vec![
        batch(&[("public.t", 1), ("public.t", 2)], Some(10)),
        batch(&[("public.t", 3)], None),
    ]);
    result.unwrap();
    // Event 3 was written (and flushed at shutdown) but never checkpointed.
    assert_eq!(rig.sink(0).ids().len(), 3);

    let mut restarted = Rig::new(&["a", "new"]);
    restarted.sinks[0].0 = rig.sink(0).clone();
    restarted.store = rig.store.clone();
    let (result, resume, _) = restarted.run(Vec::new());
    result.unwrap();
    assert_eq!(resume, lsn(10));
    assert_eq!(
        restarted.sink(0).seen().recovered,
        Some(Some(json!({"len": 2})))
    );
    assert_eq!(
        restarted.sink(0).ids(),
        pairs(&[("public.t", 1), ("public.t", 2)])
    );
    assert_eq!(
        restarted.sink(1).seen().recovered,
        Some(None),
        "a sink the checkpoint does not know"
    );
    assert_eq!(
        restarted.dead.seen().recovered,
        Some(Some(json!({"len": 0})))
    );
}

#[test]
fn events_reach_sinks_in_commit_order_across_destinations() {
    let rig = Rig::new(&["a"]);
    // One transaction: a parent row, its child, another parent, its child.
    let tx = [
        ("public.customers", 1),
        ("public.orders", 2),
        ("public.customers", 3),
        ("public.orders", 4),
    ];
    let (result, _, _) = rig.run(vec![batch(&tx, Some(10))]);
    result.unwrap();
    assert_eq!(rig.sink(0).ids(), pairs(&tx));
}

#[test]
fn each_sink_takes_the_destinations_its_inputs_match() {
    let mut rig = Rig::new(&["orders", "rest", "all"]);
    rig.sinks[0].1 = Some(vec!["public.orders*".into()]);
    rig.sinks[1].1 = Some(vec!["public.customers".into(), "audit.?".into()]);
    let events = [
        ("public.customers", 1),
        ("public.orders", 2),
        ("public.orders_archive", 3),
        ("audit.x", 4),
        ("other.t", 5),
    ];
    let (result, _, _) = rig.run(vec![batch(&events, Some(10))]);
    result.unwrap();
    assert_eq!(
        rig.sink(0).ids(),
        pairs(&[("public.orders", 2), ("public.orders_archive", 3)])
    );
    assert_eq!(
        rig.sink(1).ids(),
        pairs(&[("public.customers", 1), ("audit.x", 4)])
    );
    assert_eq!(rig.sink(2).ids(), pairs(&events));
}

#[test]
fn an_event_a_sink_refuses_becomes_a_dead_letter_and_the_rest_flows_on() {
    let rig = Rig::new(&["a", "b"]);
    rig.sink(0).seen().refuse = Some(2);
    let mut first = batch(
        &[("public.t", 1), ("public.t", 2), ("public.t", 3)],
        Some(10),
    );
    first.dead.push(DeadLetter {
        failed_at: FailedAt::Plugin("mask".into()),
        kind: "trap".into(),
        reason: "wasm trap".into(),
        event: test_event(9, "t"),
    });
    let (result, _, acks) = rig.run(vec![first]);
    result.unwrap();
    assert_eq!(acks, [lsn(10)]);
    assert_eq!(
        rig.sink(0).ids(),
        pairs(&[("public.t", 1), ("public.t", 3)])
    );
    assert_eq!(
        rig.sink(1).ids(),
        pairs(&[("public.t", 1), ("public.t", 2), ("public.t", 3)]),
        "other sinks are not affected"
    );
    assert_eq!(
        rig.dead.seen().dead,
        [
            ("plugin mask: wasm trap".to_owned(), 9),
            ("sink a (event): refused 2".to_owned(), 2)
        ]
    );
    let saved = rig.store.0.lock().unwrap().saved[0].clone();
    assert_eq!(
        saved.sinks["$dead-letters"],
        json!({"len": 0}),
        "the fake counts events only"
    );
}

#[test]
fn an_event_error_that_names_no_event_stops_the_pipeline() {
    let rig = Rig::new(&["a"]);
    {
        let mut seen = rig.sink(0).seen();
        seen.refuse = Some(1);
        seen.refuse_without_index = true;
    }
    let (result, _, acks) = rig.run(vec![batch(&[("public.t", 1)], Some(10))]);
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Operator);
    assert_eq!(
        err.to_string(),
        "sink `a` refused an event it did not point at (no index); this is a bug in the sink"
    );
    assert!(acks.is_empty());
}
