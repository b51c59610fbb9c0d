//! Bookkeeping for sinks that keep their own position (`weir_core::Sink`,
//! "sinks that keep their own position"): Kafka, SQL databases.
//!
//! Positions count deliveries: every event the sink was handed since it
//! first started, written or refused. The pipeline checkpoint holds the
//! count at its last save (`{"delivered": n}`); each commit to the target
//! records, in the same transaction as the output, the count after it and
//! the count of the checkpoint it followed ([`Held`]). After a crash between
//! the target's commit and the checkpoint save, the target is ahead of the
//! checkpoint by exactly the deliveries that the replay from the checkpoint
//! hands the sink again first; the [`Ledger`] counts them off.

use serde_json::{Value as Json, json};
use tracing::info;
use weir_core::StageError;

/// What the target's last commit recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Deliveries accounted for after the commit.
    pub delivered: u64,
    /// Deliveries the pipeline checkpoint held when the commit was made.
    pub base: u64,
}

/// Where a sink keeps its record, for error messages.
#[derive(Debug, Clone)]
pub struct Place {
    /// The record's home: ``state topic `weir.state` ``, ``table `weir_checkpoints` ``.
    pub home: String,
    /// The record's key there.
    pub key: String,
    /// How an operator starts the sink over, as a sentence.
    pub start_over: String,
}

impl Place {
    /// The row of sink `sink` of pipeline `pipeline` in a SQL checkpoint
    /// table, `home` naming the table.
    pub fn checkpoint_row(home: String, pipeline: &str, sink: &str) -> Place {
        Place {
            home,
            key: format!("{pipeline}/{sink}"),
            start_over: format!(
                "To start over, delete its row (pipeline = '{pipeline}', sink = '{sink}'); the \
                 tables keep what was applied"
            ),
        }
    }
}

/// A sink's count of deliveries, reconciled with its target on start.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Deliveries accounted for so far (written or refused).
    delivered: u64,
    /// `delivered` at the last flush: what the checkpoint holds.
    flushed: u64,
    /// `delivered` at the last commit to the target.
    committed: u64,
    /// Deliveries the target already holds that the replay brings again.
    skip: u64,
}

impl Ledger {
    /// Compares the checkpoint's sink position (`None` on a first start)
    /// with the target's last record and returns the ledger to go on with;
    /// an operator error when they cannot both be right.
    pub fn recover(
        checkpoint: Option<&Json>,
        held: Option<Held>,
        place: &Place,
        sink: &str,
    ) -> Result<Ledger, StageError> {
        let local = delivered_in(checkpoint)?;
        let key = &place.key;
        let home = &place.home;
        let start_over = &place.start_over;
        let (delivered, skip) = match (local, held) {
            (None, None) => (0, 0),
            (Some(d), None) => {
                return Err(StageError::operator(format!(
                    "the pipeline checkpoint says sink `{sink}` delivered {d} events, but {home} \
                     has no record for `{key}`: it was deleted or the target changed. The target \
                     may be missing changes; to start over, remove the pipeline's state directory"
                )));
            }
            (None, Some(r)) => {
                return Err(StageError::operator(format!(
                    "{home} says `{key}` delivered {} events, but the pipeline has no checkpoint: \
                     its state directory was lost, or another pipeline writes under this key. \
                     {start_over}",
                    r.delivered
                )));
            }
            (Some(d), Some(r)) if r.delivered == d => (d, 0),
            (Some(d), Some(r)) if r.base <= d && d < r.delivered => {
                info!(
                    sink,
                    skip = r.delivered - d,
                    "The target committed changes after the last checkpoint; the replay skips them."
                );
                (d, r.delivered - d)
            }
            (Some(d), Some(r)) => {
                return Err(StageError::operator(format!(
                    "the pipeline checkpoint says sink `{sink}` delivered {d} events, but {home} \
                     says `{key}` delivered {} (after a checkpoint at {}): the checkpoint is not \
                     the one the target's last commit followed (a restored state directory?). \
                     {start_over}",
                    r.delivered, r.base
                )));
            }
        };
        Ok(Ledger {
            delivered,
            flushed: delivered,
            committed: held.map_or(0, |h| h.delivered),
            skip,
        })
    }

    /// Counts one delivery; `true` when the target already holds it (the
    /// sink checks it again, to refuse it again if it was refused, but
    /// does not write it).
    pub fn count(&mut self) -> bool {
        self.delivered += 1;
        if self.skip > 0 {
            self.skip -= 1;
            true
        } else {
            false
        }
    }

    /// Whether the next delivery is one the target already holds.
    pub fn skipping(&self) -> bool {
        self.skip > 0
    }

    /// Takes back the last `n` counts of deliveries the target did not
    /// already hold: the sink neither wrote nor refused them (the pipeline
    /// hands them again).
    pub fn uncount(&mut self, n: u64) {
        self.delivered -= n;
    }

    /// Whether anything was counted since the last commit to the target.
    pub fn pending(&self) -> bool {
        self.delivered > self.committed
    }

    /// The record the next commit writes.
    pub fn record(&self) -> Held {
        Held {
            delivered: self.delivered,
            base: self.flushed,
        }
    }

    /// The commit of [`Ledger::record`] succeeded.
    pub fn committed(&mut self) {
        self.committed = self.delivered;
    }

    /// Deliveries accounted for so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// The flush is over: the position the checkpoint records.
    pub fn flushed(&mut self) -> Json {
        self.flushed = self.delivered;
        position(self.delivered)
    }
}

/// The sink position the checkpoint records.
pub fn position(delivered: u64) -> Json {
    json!({ "delivered": delivered })
}

/// The delivery count in a checkpointed sink position (`None` on a first
/// start).
fn delivered_in(position: Option<&Json>) -> Result<Option<u64>, StageError> {
    match position {
        None => Ok(None),
        Some(p) => p
            .get("delivered")
            .and_then(Json::as_u64)
            .map(Some)
            .ok_or_else(|| {
                StageError::operator(format!(
                    "the checkpoint's position for this sink is {p}, not {{\"delivered\": n}}; \
                     was the sink's kind changed? Give the changed sink a new name"
                ))
            }),
    }
}

/// Fault injection for the tests: with the environment variable `var` set
/// to a number, the process aborts (no cleanup, no goodbye to the brokers,
/// like `kill -9`) as soon as `count` reaches it. Sinks count deliveries at
/// each commit to their target, between that commit and the checkpoint
/// save, the moment their own position exists for
/// (`WEIR_KAFKA_CRASH_AFTER`, `WEIR_SQL_CRASH_AFTER`); `weir worker` counts
/// commits (`WEIR_WORKER_CRASH_AFTER`).
pub fn crash_point(var: &str, count: u64) {
    let at: Option<u64> = std::env::var(var).ok().and_then(|v| v.parse().ok());
    if at.is_some_and(|at| count >= at) {
        eprintln!("{var}: aborting at {count}");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(delivered: u64, base: u64) -> Option<Held> {
        Some(Held { delivered, base })
    }

    fn recover(local: Option<u64>, held: Option<Held>) -> Result<Ledger, StageError> {
        let place = Place {
            home: "table `t`".into(),
            key: "k".into(),
            start_over: "Start over.".into(),
        };
        Ledger::recover(local.map(position).as_ref(), held, &place, "s")
    }

    #[test]
    fn the_checkpoint_and_the_target_are_reconciled() {
        let l = recover(None, None).unwrap();
        assert_eq!((l.delivered, l.skip, l.committed), (0, 0, 0));
        let l = recover(Some(7), held(7, 3)).unwrap();
        assert_eq!((l.delivered, l.skip, l.committed), (7, 0, 7));
        // Crashed after the target's commit, before the checkpoint save.
        let l = recover(Some(3), held(7, 3)).unwrap();
        assert_eq!((l.delivered, l.skip, l.committed), (3, 4, 7));
        // ... and again after a checkpoint saved partway through the replay.
        let l = recover(Some(5), held(7, 3)).unwrap();
        assert_eq!((l.delivered, l.skip), (5, 2));
        for (local, held) in [
            (Some(2), held(7, 3)),
            (Some(9), held(7, 3)),
            (None, held(7, 3)),
            (Some(7), None),
        ] {
            let e = recover(local, held).unwrap_err();
            assert_eq!(e.kind(), weir_core::ErrorKind::Operator, "{e}");
        }
    }

    #[test]
    fn a_replay_is_counted_off_then_written() {
        let mut l = recover(Some(3), held(5, 3)).unwrap();
        assert!(l.count());
        assert!(l.count());
        assert!(!l.count());
        assert_eq!(l.delivered(), 6);
        assert!(l.pending());
        assert_eq!(
            l.record(),
            Held {
                delivered: 6,
                base: 3
            }
        );
        l.committed();
        assert!(!l.pending());
        assert_eq!(l.flushed(), position(6));
        assert_eq!(l.record().base, 6);
    }

    #[test]
    fn positions_read_back() {
        assert_eq!(delivered_in(Some(&position(42))).unwrap(), Some(42));
        assert_eq!(delivered_in(None).unwrap(), None);
        assert!(delivered_in(Some(&json!({"files": {}}))).is_err());
    }
}
