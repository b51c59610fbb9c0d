//! The plugin stage of `weir run`: takes the source's batches, merges what
//! is queued, runs the transformer chain and the router over them on one
//! or more workers, and hands the results to the writer in the order the
//! source produced them.
//!
//! - The **lead** is the [`Processor`] as loaded and hot-reloaded. It runs
//!   on the stage's own thread (`weir-processor`), which also takes the
//!   batches in and hands them out. It alone takes new versions (at
//!   transaction boundaries), judges probation and runs shadow candidates.
//! - With `pipeline.plugin_workers` = N > 1, N - 1 **replicas** run on
//!   threads of their own (`weir-plugins-K`). Each is a [`Processor`] of
//!   the lead's versions with its own instances. Consecutive batches go
//!   round-robin to the lead and the replicas, and a **sequencer** thread
//!   (`weir-sequencer`) passes the results on in batch order.
//! - **In order** while the lead's plugins must see every batch: a version
//!   on probation (a rollback processes the tipping batch again with the
//!   version before, and no later batch may already have used the bad
//!   one) or a shadow candidate comparing. The lead then takes every batch
//!   itself. When that ends, each replica is replaced by a fresh one of the
//!   lead's versions (through its queue, behind the batches it already
//!   has), and work is spread again.
//!
//! So a transaction's batches all see one set of versions: a swap happens
//! only at a transaction boundary, on the lead, and every batch after it
//! goes to the lead until the replicas carry the new versions.
//! Decision `0029-plugin-workers.md`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, watch};
use tracing::info;
use weir_core::ChangeBatch;

use crate::processor::{Processor, Tally};
use crate::reload::PluginCalls;
use crate::runner::MAX_BATCH_BYTES;
use crate::stats::Stats;
use crate::writer::RoutedBatch;

/// Most events the stage merges from queued batches into one (it also
/// stops at [`MAX_BATCH_BYTES`]).
const MAX_MERGED_EVENTS: usize = 4096;

/// Batches handed out and not yet passed to the writer, per worker.
const IN_FLIGHT_PER_WORKER: usize = 2;

/// The source's batches, and the bytes queued in their channel.
pub(crate) struct Input {
    pub batches: mpsc::Receiver<ChangeBatch>,
    pub queued_bytes: Arc<AtomicU64>,
}

impl Input {
    /// The next batch, waiting for one; `None` once the source is done.
    fn next(&mut self) -> Option<ChangeBatch> {
        let batch = self.batches.blocking_recv()?;
        self.taken(&batch);
        Some(batch)
    }

    /// A batch already queued, if any.
    fn queued(&mut self) -> Option<ChangeBatch> {
        let batch = self.batches.try_recv().ok()?;
        self.taken(&batch);
        Some(batch)
    }

    fn taken(&self, batch: &ChangeBatch) {
        self.queued_bytes
            .fetch_sub(batch.bytes as u64, Ordering::Relaxed);
    }

    /// The next batch with whatever else is already queued merged into it:
    /// one plugin call and one writer round for many small transactions.
    /// The merged batch ends where its last part ends, so its position is
    /// that part's (even none, mid-transaction): a checkpoint never claims
    /// less than the sinks hold. While the pipeline is paused, waits until
    /// it is resumed or stops (what is queued is then written as usual).
    fn next_merged(
        &mut self,
        stats: &Stats,
        stopping: &watch::Receiver<bool>,
    ) -> Option<ChangeBatch> {
        let mut batch = self.next()?;
        while stats.paused.load(Ordering::Relaxed)
            && !*stopping.borrow()
            && !self.batches.is_closed()
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        while batch.events.len() < MAX_MERGED_EVENTS && batch.bytes < MAX_BATCH_BYTES {
            match self.queued() {
                Some(next) => {
                    batch.events.extend(next.events);
                    batch.resume = next.resume;
                    batch.bytes += next.bytes;
                }
                None => break,
            }
        }
        stats
            .events_in
            .fetch_add(batch.events.len() as u64, Ordering::Relaxed);
        stats
            .bytes_in
            .fetch_add(batch.bytes as u64, Ordering::Relaxed);
        Some(batch)
    }
}

/// How many workers the stage runs: `configured`, but one when there is
/// no plugin (a router template is cheaper to render than to hand off).
pub(crate) fn workers(lead: &Processor, configured: usize) -> usize {
    if lead.has_plugins() {
        configured.max(1)
    } else {
        1
    }
}

/// Most batches the stage holds at once with `workers` workers, beyond the
/// one each worker is running: its queue of results in order, and each
/// replica's queue.
pub(crate) fn in_flight(workers: usize) -> usize {
    if workers <= 1 {
        0
    } else {
        workers * IN_FLIGHT_PER_WORKER + (workers - 1)
    }
}

/// Starts the stage: `workers` workers (see [`workers`]), the lead among
/// them. Ends when the source is done or the writer stops taking batches.
pub(crate) fn start(
    input: Input,
    output: SyncSender<RoutedBatch>,
    lead: Processor,
    workers: usize,
    stats: Arc<Stats>,
    stopping: watch::Receiver<bool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("weir-processor".into())
        .spawn(move || {
            let calls = Calls::new(workers);
            if workers <= 1 {
                return dispatch(
                    input,
                    lead,
                    Vec::new(),
                    Out::Direct(output),
                    &stats,
                    &stopping,
                    &calls,
                );
            }
            info!(workers, "Plugin stage runs on {workers} workers.");
            let (pending_tx, pending_rx) = sync_channel(workers * IN_FLIGHT_PER_WORKER);
            let sequencer = std::thread::Builder::new()
                .name("weir-sequencer".into())
                .spawn(move || sequence(pending_rx, output))
                .expect("the sequencer thread starts");
            let mut queues = Vec::new();
            let mut threads = vec![sequencer];
            for k in 1..workers {
                let (tx, rx) = sync_channel::<Job>(1);
                let replica = lead.replica();
                let (stats, calls) = (Arc::clone(&stats), calls.clone());
                let thread = std::thread::Builder::new()
                    .name(format!("weir-plugins-{k}"))
                    .spawn(move || serve(rx, replica, k, &stats, &calls))
                    .expect("a plugin worker thread starts");
                queues.push(tx);
                threads.push(thread);
            }
            dispatch(
                input,
                lead,
                queues,
                Out::Sequenced(pending_tx),
                &stats,
                &stopping,
                &calls,
            );
            // The queues are closed: the replicas finish what they have,
            // and the sequencer passes it on.
            for t in threads {
                if let Err(panic) = t.join() {
                    std::panic::resume_unwind(panic);
                }
            }
        })
}

/// Where processed batches go: straight to the writer (one worker), or
/// in order through the sequencer.
enum Out {
    Direct(SyncSender<RoutedBatch>),
    /// Per batch, in batch order, where its result will arrive.
    Sequenced(SyncSender<Receiver<RoutedBatch>>),
}

impl Out {
    /// Passes on a batch the lead processed; false once nothing takes them.
    fn ready(&self, routed: RoutedBatch) -> bool {
        match self {
            Out::Direct(tx) => tx.send(routed).is_ok(),
            Out::Sequenced(tx) => {
                let (result, wait) = sync_channel(1);
                let _ = result.send(routed);
                tx.send(wait).is_ok()
            }
        }
    }
}

/// What a replica's queue carries.
enum Job {
    Run {
        batch: ChangeBatch,
        result: SyncSender<RoutedBatch>,
    },
    /// Becomes this replica (the lead's versions changed).
    Replace(Box<Processor>),
}

/// The stage's own thread: takes batches in, runs them on the lead or
/// hands them to the replicas in turn.
fn dispatch(
    mut input: Input,
    mut lead: Processor,
    replicas: Vec<SyncSender<Job>>,
    out: Out,
    stats: &Stats,
    stopping: &watch::Receiver<bool>,
    calls: &Calls,
) {
    // Whether the last batch ended at a transaction boundary: only there
    // may a new plugin version take over.
    let mut at_boundary = true;
    let mut counted = Tally::default();
    publish_plugins(&lead, stats, &mut counted);
    // The lead's generation the replicas run.
    let mut replicated = lead.generation();
    // Whose turn it is: 0 the lead, k replica k.
    let mut turn = 0;
    while let Some(batch) = input.next_merged(stats, stopping) {
        let starts_at_boundary = at_boundary;
        at_boundary = batch.resume.is_some();
        if starts_at_boundary {
            lead.take_swaps();
        }
        let spread = !replicas.is_empty() && !lead.needs_order();
        if spread && replicated != lead.generation() {
            for queue in &replicas {
                if queue.send(Job::Replace(Box::new(lead.replica()))).is_err() {
                    return;
                }
            }
            replicated = lead.generation();
            info!("Plugin workers now run the lead's versions again.");
        }
        if spread && turn > 0 {
            let (result, wait) = sync_channel(1);
            let Out::Sequenced(pending) = &out else {
                unreachable!("replicas run only with a sequencer")
            };
            // The place in the order first, then the work.
            if pending.send(wait).is_err()
                || replicas[turn - 1].send(Job::Run { batch, result }).is_err()
            {
                return;
            }
        } else {
            let routed = run(&mut lead, batch, starts_at_boundary, stats);
            publish_plugins(&lead, stats, &mut counted);
            calls.publish(0, &lead, stats);
            if !out.ready(routed) {
                // The writer failed; it reports why.
                return;
            }
        }
        turn = if spread {
            (turn + 1) % (replicas.len() + 1)
        } else {
            0
        };
    }
}

/// A replica's thread: runs the batches its queue brings.
fn serve(jobs: Receiver<Job>, mut replica: Processor, worker: usize, stats: &Stats, calls: &Calls) {
    for job in jobs {
        match job {
            Job::Replace(fresh) => replica.replace_with(*fresh),
            Job::Run { batch, result } => {
                // Not a boundary for the replica: it takes no versions itself.
                let routed = run(&mut replica, batch, false, stats);
                calls.publish(worker, &replica, stats);
                let _ = result.send(routed);
            }
        }
    }
}

/// The sequencer's thread: passes results on in batch order.
fn sequence(pending: Receiver<Receiver<RoutedBatch>>, output: SyncSender<RoutedBatch>) {
    for wait in pending {
        // A worker gone without a result panicked; the stage reports it.
        let Ok(routed) = wait.recv() else { return };
        if output.send(routed).is_err() {
            return;
        }
    }
}

/// Runs one batch through `processor`.
fn run(
    processor: &mut Processor,
    batch: ChangeBatch,
    at_boundary: bool,
    stats: &Stats,
) -> RoutedBatch {
    let mut routed = RoutedBatch::new(batch.resume);
    let passthrough = !processor.has_plugins();
    processor.run(batch.events, at_boundary, &mut routed);
    // Without plugins the events leave as they came (a router template
    // only names their destination): their size is known already.
    routed.bytes = if passthrough {
        batch.bytes
    } else {
        routed.approx_bytes()
    };
    stats
        .sink_queue
        .fetch_add(routed.bytes as u64, Ordering::Relaxed);
    routed
}

/// Publishes the lead's plugin states in `stats`; `counted` is the
/// stage's swaps and rollbacks already added to the pipeline's counts (a
/// restarted pipeline's stage counts from zero again).
fn publish_plugins(lead: &Processor, stats: &Stats, counted: &mut Tally) {
    let (states, tally) = lead.plugin_states();
    *crate::stats::lock(&stats.plugins) = states;
    stats.rollbacks.fetch_add(
        tally.rollbacks.saturating_sub(counted.rollbacks),
        Ordering::Relaxed,
    );
    stats
        .reloads
        .fetch_add(tally.swaps.saturating_sub(counted.swaps), Ordering::Relaxed);
    *counted = tally;
}

/// Each worker's plugin calls, added up into the pipeline's.
#[derive(Clone)]
struct Calls(Arc<Mutex<Vec<Vec<PluginCalls>>>>);

impl Calls {
    fn new(workers: usize) -> Self {
        Calls(Arc::new(Mutex::new(vec![Vec::new(); workers.max(1)])))
    }

    /// Records `processor`'s calls as worker `worker`'s, and the sum of
    /// every worker's in `stats`.
    fn publish(&self, worker: usize, processor: &Processor, stats: &Stats) {
        let now = processor.plugin_calls();
        if now.is_empty() {
            return;
        }
        let mut all = crate::stats::lock(self.0.as_ref());
        all[worker].clear();
        all[worker].extend(now.iter().cloned());
        let sum = PluginCalls::sum(all.iter().map(Vec::as_slice));
        *crate::stats::lock(&stats.plugin_calls) = sum;
    }
}
