//! `weir worker`: the plugin stage scaled out on Kafka.
//!
//! Workers in one consumer group read change topics (written by `weir run`
//! with a Kafka sink, or by Debezium), run the transformer chain and the
//! router on each round of records, and write the results to output topics
//! with Kafka's read-process-write exactly-once: a round's output, its
//! dead letters and its input offsets are one Kafka transaction
//! (`send_offsets_to_transaction`), so a round counts as read exactly when
//! its output is committed.
//!
//! - Each key keeps its order: a key lives in one input partition, a
//!   partition is read by one worker at a time in offset order, and the
//!   output is keyed (and so partitioned) by the event key.
//! - A crash, a `kill -9` or a lost broker aborts the open round (on a
//!   restart, the new producer of the same instance fences and aborts it;
//!   otherwise Kafka aborts it after the transaction timeout); whoever
//!   holds the partition next reads the round again from the committed
//!   offsets.
//! - Every instance needs its own transactional id, `weir-<name>-<instance>`:
//!   the instance name defaults to the host name, and workers sharing a
//!   machine take `--instance`.
//! - Plugin versions swap between rounds: a round is processed by one
//!   version. A source transaction spread over partitions (and so over
//!   workers) can still meet two versions during a rollout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tracing::{error, info, warn};
use weir_connect::{Backoff, Directive};
use weir_core::envelope::write_row;
use weir_core::{DeadLetter, FailedAt, StageError};
use weir_kafka::{Input, InputRecord, Output, Owner, input::decode};
use weir_plugin::{EngineOptions, PluginEngine};

use crate::config::WorkerConfig;
use crate::dead_letter::dead_letter_json;
use crate::processor::{Processor, Stamping};
use crate::runner::{PipelineError, Stats};
use crate::writer::RoutedBatch;

/// How long one poll waits for the first record of a round.
const POLL_WAIT: Duration = Duration::from_millis(200);

/// How often progress is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// The output's name in errors and dead letters.
const OUTPUT: &str = "output";

/// Runs one worker instance until `stop` is set (the round in flight is
/// finished and committed first) or it fails. Transient failures (a lost
/// broker, a rebalance in the middle of a commit) restart it from the
/// committed offsets after a growing delay; everything else returns.
pub fn run_worker(
    config: &WorkerConfig,
    instance: &str,
    stop: &AtomicBool,
    stats: &Stats,
) -> Result<(), PipelineError> {
    let engine = PluginEngine::new(EngineOptions::default()).map_err(PipelineError::Engine)?;
    let dir = config.instance_dir(instance);
    let (mut processor, reloading) =
        Processor::start(&engine, config.plugin_setup(&dir), Stamping::Append)?;
    let mut backoff = Backoff::default();
    let result = loop {
        backoff.attempt();
        let error = match serve(config, instance, &mut processor, stop, stats) {
            Ok(()) => break Ok(()),
            Err(e) => e,
        };
        match Directive::for_kind(error.kind()) {
            Directive::Retry if !stop.load(Ordering::Relaxed) => {
                let delay = backoff.next_delay();
                warn!(error = %error, retry_in_s = delay.as_secs(),
                    "Worker interrupted; restarting from the committed offsets.");
                let until = Instant::now() + delay;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            _ => break Err(error),
        }
    };
    reloading.stop();
    result
}

/// One connection's worth of rounds: until `stop` or the first failure.
fn serve(
    config: &WorkerConfig,
    instance: &str,
    processor: &mut Processor,
    stop: &AtomicBool,
    stats: &Stats,
) -> Result<(), PipelineError> {
    let client_id = format!("weir-{}-{instance}", config.name);
    let sink_error = |error| PipelineError::Sink {
        name: OUTPUT.to_owned(),
        error,
    };
    let mut output = Output::new(
        &config.output,
        &client_id,
        config.transactional_id(instance),
        config.output.prefix(&config.name).to_owned(),
        Owner {
            label: format!("worker `{}` instance `{instance}`", config.name),
            fenced_hint: "another worker started with the same instance name? give each its own \
                          `--instance`"
                .to_owned(),
        },
    );
    // Finishes a round an earlier failure left open (a commit the brokers
    // did not answer), fences an earlier run of this instance and aborts
    // its open round.
    output.start().map_err(sink_error)?;
    output
        .ensure_own_topic(&config.dead_letter_topic, false)
        .map_err(sink_error)?;
    let group = config.group();
    let mut input =
        Input::connect(&config.input, &group, &client_id).map_err(PipelineError::Source)?;
    info!(worker = %config.name, instance, group = %group,
        transactional_id = %output.transactional_id(), "Worker started.");
    let mut progress = Progress::new();
    while !stop.load(Ordering::Relaxed) {
        progress.log(stats);
        let records = input
            .poll(config.pipeline.max_batch_events, POLL_WAIT)
            .map_err(PipelineError::Source)?;
        if records.is_empty() {
            continue;
        }
        round(config, processor, &mut output, &records, stats).map_err(sink_error)?;
        let generation = input.group_metadata().map_err(PipelineError::Source)?;
        output
            .commit(Some((&Input::offsets(&records), &generation)))
            .map_err(sink_error)?;
        let commits = stats.checkpoints.fetch_add(1, Ordering::Relaxed) + 1;
        weir_connect::own_position::crash_point("WEIR_WORKER_CRASH_AFTER", commits);
    }
    info!(worker = %config.name, instance, "Worker stopped after its last commit.");
    Ok(())
}

/// Decodes, processes and writes one round's records (without
/// committing).
fn round(
    config: &WorkerConfig,
    processor: &mut Processor,
    output: &mut Output,
    records: &[InputRecord],
    stats: &Stats,
) -> Result<(), StageError> {
    stats
        .events_in
        .fetch_add(records.len() as u64, Ordering::Relaxed);
    let mut events = Vec::with_capacity(records.len());
    let mut dead_letters = 0u64;
    for r in records {
        match decode(r.key.as_deref(), r.value.as_deref()) {
            Ok(Some(event)) => events.push(event),
            // A tombstone: the output writes its own after each delete.
            Ok(None) => {}
            Err(reason) => {
                error!(topic = %r.topic, partition = r.partition, offset = r.offset,
                    reason = %reason, "Record is not a change event; sent to the dead-letter topic.");
                let letter = json!({
                    "input": {"topic": r.topic, "partition": r.partition, "offset": r.offset},
                    "kind": "not_a_change",
                    "reason": reason,
                    "key": r.key.as_deref().map(String::from_utf8_lossy),
                    "value": r.value.as_deref().map(String::from_utf8_lossy),
                });
                let value = serde_json::to_vec(&letter).expect("JSON values serialize");
                output.write_record(
                    &config.dead_letter_topic,
                    r.key.as_deref().unwrap_or_default(),
                    &value,
                )?;
                dead_letters += 1;
            }
        }
    }
    let mut routed = RoutedBatch::new(None);
    processor.run(events, true, &mut routed);
    let mut refused = Vec::new();
    for (i, d) in routed.deliveries().enumerate() {
        match output.write(i, &d, None) {
            Ok(()) => {}
            Err(e) if e.event_index().is_some() => refused.push(DeadLetter {
                failed_at: FailedAt::Sink(OUTPUT.to_owned()),
                kind: "event".to_owned(),
                reason: e.to_string(),
                event: d.event.clone(),
            }),
            Err(e) => return Err(e),
        }
    }
    let mut key = Vec::new();
    for letter in routed.dead.iter().chain(&refused) {
        error!(failed_at = ?letter.failed_at, kind = %letter.kind, reason = %letter.reason,
            "Event set aside; sent to the dead-letter topic.");
        key.clear();
        write_row(&letter.event.key, &mut key);
        let value = serde_json::to_vec(&dead_letter_json(letter)).expect("JSON values serialize");
        output.write_record(&config.dead_letter_topic, &key, &value)?;
        dead_letters += 1;
    }
    stats
        .events_out
        .fetch_add((routed.len() - refused.len()) as u64, Ordering::Relaxed);
    stats
        .dead_letters
        .fetch_add(dead_letters, Ordering::Relaxed);
    Ok(())
}

/// Logs throughput every [`PROGRESS_EVERY`].
struct Progress {
    at: Instant,
    out: u64,
}

impl Progress {
    fn new() -> Self {
        Progress {
            at: Instant::now(),
            out: 0,
        }
    }

    fn log(&mut self, stats: &Stats) {
        if self.at.elapsed() < PROGRESS_EVERY {
            return;
        }
        let out = stats.events_out.load(Ordering::Relaxed);
        let rate = (out - self.out) as f64 / self.at.elapsed().as_secs_f64();
        (self.at, self.out) = (Instant::now(), out);
        info!(
            records_in = stats.events_in.load(Ordering::Relaxed),
            events_out = out,
            events_per_sec = rate as u64,
            dead_letters = stats.dead_letters.load(Ordering::Relaxed),
            commits = stats.checkpoints.load(Ordering::Relaxed),
            "Worker progress."
        );
    }
}
