//! The writer stage: delivers routed batches to the sinks in commit order,
//! sets dead letters aside, and for each batch that ends a transaction
//! makes every sink durable, saves the checkpoint and only then
//! acknowledges the position to the source.
//!
//! Batches queued behind each other are written before one flush (group
//! commit), except that grouping stops before a batch that ends inside a
//! transaction: what is whole is made durable first. Batches that end a
//! transaction are held and handed to each sink in one `write` when their
//! group is flushed (or [`MAX_HELD_BYTES`] are held), so a stream of small
//! transactions reaches a sink in large writes (a SQL sink's statements
//! and round trips are per write); a batch that ends inside a transaction
//! is written at once. The grouping adapts
//! to the load: when the last flush was less than [`COMMIT_WAIT`] ago, the
//! writer waits up to the rest of it for more batches, so a dense stream
//! of small transactions makes one flush per few milliseconds rather than
//! one per transaction, and a sparse one flushes at once. A group is
//! flushed once [`MAX_COMMIT_INTERVAL`] (or the configured interval) has
//! passed since the last flush, even while more batches wait: a source
//! that stays ahead of the sinks still sees its position acknowledged,
//! and a SQL target never holds more than that interval in one
//! transaction.
//!
//! It runs on its own thread, because sinks and checkpoint stores block
//! (`docs/decisions/0008-sync-writer-stage.md`), and sees sinks, the
//! dead-letter sink and the checkpoint store only through their traits.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tokio::sync::mpsc;
use tracing::{error, info, warn};
use weir_connect::Directive;
use weir_core::{
    ChangeEvent, Checkpoint, CheckpointStore, DeadLetter, Delivery, ErrorKind, FailedAt, Sink,
    StageError,
};

use crate::runner::{PipelineError, Stats};
use crate::sinks::Inputs;
use crate::stats::SinkMetrics;

/// Least time between two flushes while batches keep coming: up to this
/// long after a flush, the writer waits for more batches before the next.
pub const COMMIT_WAIT: Duration = Duration::from_millis(5);

/// Most bytes of whole transactions the writer holds before it writes
/// them to the sinks ahead of their flush.
pub const MAX_HELD_BYTES: usize = 1 << 20;

/// Longest time between two flushes while whole transactions keep coming
/// (`pipeline.max_commit_interval_ms`): a queue that never empties would
/// otherwise grow one group, and one target transaction, without end.
pub const MAX_COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// What one batch became after the plugins and the router: its events in
/// commit order, each with the destination the router chose.
#[derive(Debug, Default)]
pub struct RoutedBatch {
    /// The destination names used in this batch, each once.
    destinations: Vec<String>,
    index: HashMap<String, u32>,
    /// Events in commit order.
    events: Vec<ChangeEvent>,
    /// Each event's destination, as an index into `destinations`.
    routes: Vec<u32>,
    /// Events the plugins or the router failed on.
    pub dead: Vec<DeadLetter>,
    /// The source state to checkpoint once the batch is durable; `None`
    /// when it ends inside a transaction.
    pub resume: Option<Json>,
    /// The events' approximate size (set by whoever hands the batch on;
    /// see [`RoutedBatch::approx_bytes`]).
    pub bytes: usize,
}

impl RoutedBatch {
    /// An empty batch that ends at `resume`.
    pub fn new(resume: Option<Json>) -> Self {
        RoutedBatch {
            resume,
            ..RoutedBatch::default()
        }
    }

    /// Appends `event`, bound for `destination`.
    pub fn push(&mut self, destination: &str, event: ChangeEvent) {
        let route = self.route(destination);
        self.routes.push(route);
        self.events.push(event);
    }

    /// Appends `events`, each bound for the destination `name` writes
    /// (into a cleared string). An empty batch takes the vector as it is:
    /// events are some 300 bytes each, and moving them one by one into a
    /// growing vector was 5% of weir's CPU with a router template alone.
    pub fn extend(
        &mut self,
        events: Vec<ChangeEvent>,
        mut name: impl FnMut(&ChangeEvent, &mut String),
    ) {
        let mut destination = String::with_capacity(48);
        self.routes.reserve(events.len());
        for event in &events {
            name(event, &mut destination);
            let route = self.route(&destination);
            self.routes.push(route);
        }
        if self.events.is_empty() {
            self.events = events;
        } else {
            self.events.extend(events);
        }
    }

    /// The index of `destination`, added when new.
    fn route(&mut self, destination: &str) -> u32 {
        // Runs of events for one destination are the common case: compare
        // with the last one before hashing.
        if let Some(&last) = self.routes.last()
            && self.destinations[last as usize] == destination
        {
            return last;
        }
        match self.index.get(destination) {
            Some(i) => *i,
            None => {
                let i = u32::try_from(self.destinations.len()).expect("fewer than 2^32 names");
                self.destinations.push(destination.to_owned());
                self.index.insert(destination.to_owned(), i);
                i
            }
        }
    }

    /// The events in commit order, each with its destination.
    pub fn deliveries(&self) -> impl Iterator<Item = Delivery<'_>> {
        self.routed().map(|(d, event)| Delivery {
            destination: &self.destinations[d as usize],
            event,
        })
    }

    /// The events with their destinations' indexes.
    fn routed(&self) -> impl Iterator<Item = (u32, &ChangeEvent)> {
        self.routes.iter().copied().zip(&self.events)
    }

    /// The events' approximate in-memory size.
    pub fn approx_bytes(&self) -> usize {
        self.events.iter().map(ChangeEvent::approx_bytes).sum()
    }

    /// How many events the batch holds (not counting dead letters).
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// A sink with the destinations it takes.
pub struct SinkSlot {
    sink: Box<dyn Sink>,
    inputs: Inputs,
    /// Set when the writer starts.
    metrics: Arc<SinkMetrics>,
}

impl SinkSlot {
    pub fn new(sink: Box<dyn Sink>, inputs: Inputs) -> Self {
        SinkSlot {
            sink,
            inputs,
            metrics: Arc::default(),
        }
    }
}

/// See the module docs.
pub struct Writer {
    sinks: Vec<SinkSlot>,
    dead_letters: Box<dyn Sink>,
    dead_letter_metrics: Arc<SinkMetrics>,
    store: Box<dyn CheckpointStore>,
    checkpoint: Checkpoint,
    acks: mpsc::UnboundedSender<Json>,
    stats: Arc<Stats>,
    /// Destinations no sink takes, warned about once each.
    untaken: HashSet<String>,
    /// The changes written since the last checkpoint, by source commit
    /// time (one entry per source transaction): what the next checkpoint
    /// makes durable, for the latency histogram.
    unflushed: Vec<(i64, u64)>,
    /// See [`MAX_COMMIT_INTERVAL`].
    max_commit_interval: Duration,
    /// Batches ending a transaction, written when their group is flushed.
    held: Vec<RoutedBatch>,
    /// Their approximate size.
    held_bytes: usize,
}

impl Writer {
    /// Loads the last checkpoint. Returns the writer and the source's resume
    /// state (`Null` on a first start). The sinks are brought back to the
    /// checkpoint when [`Writer::run`] begins, on the writer's thread, while
    /// the source already reads: sinks that connect somewhere (Kafka, a
    /// database) start up behind the source's own start.
    pub fn start(
        mut sinks: Vec<SinkSlot>,
        dead_letters: Box<dyn Sink>,
        mut store: Box<dyn CheckpointStore>,
        acks: mpsc::UnboundedSender<Json>,
        stats: Arc<Stats>,
    ) -> Result<(Writer, Json), PipelineError> {
        let checkpoint = store
            .load()
            .map_err(PipelineError::Checkpoint)?
            .unwrap_or_default();
        let resume = checkpoint.source.clone();
        for slot in &mut sinks {
            slot.metrics = stats.sink(slot.sink.name());
        }
        let writer = Writer {
            sinks,
            dead_letter_metrics: stats.sink(dead_letters.name()),
            dead_letters,
            store,
            checkpoint,
            acks,
            stats,
            untaken: HashSet::new(),
            unflushed: Vec::new(),
            max_commit_interval: MAX_COMMIT_INTERVAL,
            held: Vec::new(),
            held_bytes: 0,
        };
        Ok((writer, resume))
    }

    /// Flushes at least every `interval` while whole transactions keep
    /// coming (zero: after every batch that ends one).
    pub fn with_max_commit_interval(mut self, interval: Duration) -> Self {
        self.max_commit_interval = interval;
        self
    }

    /// Brings every sink (and the dead-letter sink) back to the checkpoint,
    /// then writes every batch from `input` until it closes or a stage
    /// fails.
    pub fn run(
        mut self,
        input: std::sync::mpsc::Receiver<RoutedBatch>,
    ) -> Result<(), PipelineError> {
        self.recover()?;
        let mut last_flush = Instant::now() - COMMIT_WAIT;
        while let Ok(first) = input.recv() {
            // Write everything already queued, then make it durable once.
            let mut pending: Option<Json> = None;
            let mut next = Some(first);
            while let Some(batch) = next.take() {
                self.stats
                    .sink_queue
                    .fetch_sub(batch.bytes as u64, Ordering::Relaxed);
                let resume = batch.resume.clone();
                self.hold(batch)?;
                if resume.is_some() {
                    pending = resume;
                }
                if pending.is_some() && last_flush.elapsed() >= self.max_commit_interval {
                    // The queue has not emptied for a while: make what is
                    // whole durable now, and group on.
                    self.flush(pending.take().expect("checked"))?;
                    last_flush = Instant::now();
                    next = input.try_recv().ok();
                } else if pending.is_some() {
                    next = input.try_recv().ok();
                    let since = last_flush.elapsed();
                    if next.is_none() && since < COMMIT_WAIT {
                        // A flush moments ago: the stream is dense, so wait
                        // a little for more to share the next one.
                        next = input.recv_timeout(COMMIT_WAIT - since).ok();
                    }
                    // Stop grouping at a batch that ends mid-transaction: its
                    // successor may be large; flush what is whole first.
                    if next.as_ref().is_some_and(|n| n.resume.is_none())
                        && let Some(resume) = pending.take()
                    {
                        self.flush(resume)?;
                        last_flush = Instant::now();
                    }
                }
            }
            if let Some(resume) = pending {
                self.flush(resume)?;
                last_flush = Instant::now();
            }
        }
        // Output after the last checkpoint (part of a transaction) is not
        // flushed: it has no position to commit with, and the next start cuts
        // it off (files) or never sees it (an aborted Kafka transaction).
        info!(
            events = self.stats.events_out.load(Ordering::Relaxed),
            "Writer stopped after the last checkpoint."
        );
        Ok(())
    }

    /// Brings every sink and the dead-letter sink back to the checkpoint.
    fn recover(&mut self) -> Result<(), PipelineError> {
        for slot in &mut self.sinks {
            let name = slot.sink.name().to_owned();
            slot.sink
                .recover(self.checkpoint.sinks.get(&name))
                .map_err(|error| PipelineError::Sink { name, error })?;
        }
        self.dead_letters
            .recover(self.checkpoint.sinks.get(self.dead_letters.name()))
            .map_err(PipelineError::DeadLetter)
    }

    /// Takes one batch: a batch that ends a transaction is held, to be
    /// written with the others of its group when the group is flushed (or
    /// once [`MAX_HELD_BYTES`] are held); one that ends inside a
    /// transaction is written at once, after what is held.
    fn hold(&mut self, batch: RoutedBatch) -> Result<(), PipelineError> {
        if batch.resume.is_none() {
            self.write_held()?;
            return self.write_batches(vec![batch]);
        }
        self.held_bytes += batch.bytes;
        self.held.push(batch);
        if self.held_bytes >= MAX_HELD_BYTES {
            self.write_held()?;
        }
        Ok(())
    }

    /// Writes the held batches.
    fn write_held(&mut self) -> Result<(), PipelineError> {
        self.held_bytes = 0;
        let held = std::mem::take(&mut self.held);
        self.write_batches(held)
    }

    /// Delivers batches, in order, to every sink that takes their
    /// destinations (one `write` per sink for all of them), and their dead
    /// letters to the dead-letter sink.
    fn write_batches(&mut self, mut batches: Vec<RoutedBatch>) -> Result<(), PipelineError> {
        if batches.is_empty() {
            return Ok(());
        }
        let mut dead: Vec<DeadLetter> = batches
            .iter_mut()
            .flat_map(|b| std::mem::take(&mut b.dead))
            .collect();
        let mut taken: Vec<Vec<bool>> = batches
            .iter()
            .map(|b| vec![false; b.destinations.len()])
            .collect();
        for slot in &mut self.sinks {
            let mut deliveries: Vec<Delivery<'_>> = Vec::new();
            for (batch, taken) in batches.iter().zip(&mut taken) {
                let takes: Vec<bool> = batch
                    .destinations
                    .iter()
                    .map(|d| slot.inputs.takes(d))
                    .collect();
                for (t, s) in taken.iter_mut().zip(&takes) {
                    *t |= *s;
                }
                deliveries.extend(batch.routed().filter(|(d, _)| takes[*d as usize]).map(
                    |(d, event)| Delivery {
                        destination: &batch.destinations[d as usize],
                        event,
                    },
                ));
            }
            write_to(slot.sink.as_mut(), &slot.metrics, &deliveries, &mut dead)?;
        }
        for (batch, taken) in batches.iter().zip(taken) {
            for (destination, taken) in batch.destinations.iter().zip(taken) {
                if !taken && self.untaken.insert(destination.clone()) {
                    warn!(
                        destination = %destination,
                        "No sink takes this destination; its events are dropped. Add it to a sink's `inputs`."
                    );
                }
            }
            self.stats
                .events_out
                .fetch_add(batch.events.len() as u64, Ordering::Relaxed);
            self.stats
                .bytes_out
                .fetch_add(batch.bytes as u64, Ordering::Relaxed);
            self.count_destinations(&batch.destinations, &batch.routes);
            // Snapshot rows were not committed by a transaction of their own.
            for e in batch.events.iter().filter(|e| e.op != weir_core::Op::Read) {
                let at = e.source.commit_time_us;
                match self.unflushed.last_mut() {
                    Some((t, n)) if *t == at => *n += 1,
                    _ => self.unflushed.push((at, 1)),
                }
            }
        }
        if !dead.is_empty() {
            for letter in &dead {
                let (stage, name) = match &letter.failed_at {
                    FailedAt::Plugin(name) => ("plugin", name),
                    FailedAt::Sink(name) => ("sink", name),
                };
                error!(
                    stage,
                    name = %name,
                    kind = %letter.kind,
                    table = %letter.event.qualified_table(),
                    position = %letter.event.source.position,
                    reason = %letter.reason,
                    "Event set aside as a dead letter."
                );
            }
            let started = Instant::now();
            self.dead_letters
                .write_dead_letters(&dead)
                .inspect_err(|e| self.dead_letter_metrics.failed(e.kind()))
                .map_err(PipelineError::DeadLetter)?;
            self.dead_letter_metrics.write.observe(started.elapsed());
            self.dead_letter_metrics
                .events
                .fetch_add(dead.len() as u64, Ordering::Relaxed);
            self.stats
                .dead_letters
                .fetch_add(dead.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Counts the batch's events per destination: one count per
    /// destination per batch, not per event.
    fn count_destinations(&self, destinations: &[String], routes: &[u32]) {
        let mut counts = vec![0u64; destinations.len()];
        for d in routes {
            counts[*d as usize] += 1;
        }
        let mut shown = crate::stats::lock(&self.stats.destinations);
        for (name, n) in destinations.iter().zip(counts) {
            match shown.get_mut(name) {
                Some(total) => *total += n,
                None => {
                    shown.insert(name.clone(), n);
                }
            }
        }
    }

    /// Writes what is held, makes every sink durable, saves the
    /// checkpoint, then acknowledges.
    fn flush(&mut self, resume: Json) -> Result<(), PipelineError> {
        self.write_held()?;
        for slot in &mut self.sinks {
            let name = slot.sink.name().to_owned();
            let started = Instant::now();
            let position = slot
                .sink
                .flush(&resume)
                .inspect_err(|e| slot.metrics.failed(e.kind()))
                .map_err(|error| PipelineError::Sink {
                    name: name.clone(),
                    error,
                })?;
            slot.metrics.flush.observe(started.elapsed());
            *crate::stats::lock(&slot.metrics.position) = Some(position.clone());
            self.checkpoint.sinks.insert(name, position);
        }
        let started = Instant::now();
        let position = self
            .dead_letters
            .flush(&resume)
            .inspect_err(|e| self.dead_letter_metrics.failed(e.kind()))
            .map_err(PipelineError::DeadLetter)?;
        self.dead_letter_metrics.flush.observe(started.elapsed());
        self.checkpoint
            .sinks
            .insert(self.dead_letters.name().to_owned(), position);
        self.checkpoint.source = resume.clone();
        self.store
            .save(&self.checkpoint)
            .map_err(PipelineError::Checkpoint)?;
        self.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
        let now = crate::latency::now_us();
        self.stats.last_checkpoint_us.store(now, Ordering::Relaxed);
        for (at, n) in self.unflushed.drain(..) {
            self.stats.latency.observe(at, now, n);
        }
        // The source may be gone during shutdown; the checkpoint is what counts.
        let _ = self.acks.send(resume);
        Ok(())
    }
}

/// Writes `deliveries` to `sink`; events the sink refuses as their own
/// fault join `dead`, and the rest is written on.
fn write_to(
    sink: &mut dyn Sink,
    metrics: &SinkMetrics,
    deliveries: &[Delivery<'_>],
    dead: &mut Vec<DeadLetter>,
) -> Result<(), PipelineError> {
    metrics
        .events
        .fetch_add(deliveries.len() as u64, Ordering::Relaxed);
    let mut rest = deliveries;
    loop {
        let started = Instant::now();
        let written = sink.write(rest);
        metrics.write.observe(started.elapsed());
        let error = match written {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        metrics.failed(error.kind());
        let name = sink.name().to_owned();
        match (Directive::for_kind(error.kind()), error.event_index()) {
            (Directive::DeadLetter, Some(i)) if i < rest.len() => {
                dead.push(DeadLetter {
                    failed_at: FailedAt::Sink(name),
                    kind: ErrorKind::Event.label().to_owned(),
                    reason: error.to_string(),
                    event: rest[i].event.clone(),
                });
                rest = &rest[i + 1..];
            }
            (Directive::DeadLetter, _) => {
                return Err(PipelineError::Sink {
                    error: StageError::operator(format!(
                        "sink `{name}` refused an event it did not point at ({error}); this is a bug in the sink"
                    )),
                    name,
                });
            }
            _ => return Err(PipelineError::Sink { name, error }),
        }
    }
}

#[cfg(test)]
mod tests;
