//! SQL apply sinks, whatever the database: [`plan`] groups deliveries into
//! multi-row statements, and [`ApplySink`] is the exactly-once [`Sink`]
//! around a database's [`Target`] (PostgreSQL in `weir-postgres`, MySQL
//! and MariaDB in `weir-mysql`).
//!
//! - **Transactions.** Everything written between two flushes is one
//!   target transaction; the flush writes the sink's checkpoint row (the
//!   delivery count of [`crate::own_position`], the source position and the
//!   refusals) in it and commits. A `kill -9` at any moment leaves the
//!   target at a commit, and the next start counts off what it holds.
//! - **Inserts first.** Creates and snapshot rows go as plain inserts,
//!   much cheaper for a database than upserts. Each write runs under a
//!   savepoint; when a statement fails on its data (a key the target
//!   already holds, a constraint, a value the column cannot hold), the sink
//!   rolls back to it and applies the write again with upserts.
//! - **Refusals.** When that fails on its data too, one event is at fault:
//!   the sink rolls back again and applies the write's events one at a
//!   time, each under its own savepoint, until the one at fault, which goes
//!   to the dead letters. The checkpoint row lists
//!   the refused deliveries, so a replay refuses them again
//!   (`docs/decisions/0020-sql-apply.md`).

pub mod plan;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use weir_core::{Delivery, ErrorKind, Sink, StageError};

pub use plan::{InsertAs, PlanError, Step, StepKind, StepRow, plan};

use crate::own_position::{Held, Ledger, Place, crash_point};

/// A runtime of a target's own, for async drivers called from the writer
/// thread: `block_on` there, and a drop anywhere (also on an async thread,
/// where a pipeline that fails to start drops its sinks) that does not
/// block.
pub struct TargetRuntime(Option<tokio::runtime::Runtime>);

impl TargetRuntime {
    /// A current-thread runtime with I/O and timers.
    pub fn new() -> Result<Self, StageError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| TargetRuntime(Some(rt)))
            .map_err(|e| StageError::operator(format!("cannot start a sink's runtime: {e}")))
    }

    /// Runs `future` to completion on this thread.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.0
            .as_ref()
            .expect("present until dropped")
            .block_on(future)
    }
}

impl Drop for TargetRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for TargetRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TargetRuntime")
    }
}

/// A delivery the target refused, by its number, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    pub delivered: u64,
    pub reason: String,
}

/// A sink's checkpoint row in its target.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointRow {
    pub held: Held,
    /// The refusals among the deliveries the row's commit accounts for
    /// (after `held.base`), as JSON (`[{"delivered": n, "reason": "..."}]`).
    pub refused: String,
}

/// A step that failed.
#[derive(Debug)]
pub struct StepFailure {
    pub error: StageError,
    /// The statement failed on its data: one of its events is at fault,
    /// and the transaction goes on after a rollback to the savepoint.
    pub data: bool,
}

impl From<StageError> for StepFailure {
    fn from(error: StageError) -> Self {
        StepFailure { error, data: false }
    }
}

/// What an apply sink needs from its database. Called from the writer
/// thread only; every error carries its kind.
pub trait Target: Send {
    /// Connects (again: any open transaction is gone), creates the
    /// checkpoint table when missing, and reads this sink's row.
    fn connect(&mut self) -> Result<Option<CheckpointRow>, StageError>;
    /// Opens a transaction if none is open, and sets the write's savepoint
    /// (replacing the previous one).
    fn savepoint(&mut self) -> Result<(), StageError>;
    /// Undoes everything since the savepoint.
    fn rollback_to_savepoint(&mut self) -> Result<(), StageError>;
    /// Applies one step inside the open transaction.
    fn run(&mut self, step: &Step<'_>) -> Result<(), StepFailure>;
    /// Writes the checkpoint row (with `source`, the source position the
    /// pipeline checkpoint will record) and commits; opens the
    /// transaction first if none is open.
    fn commit(&mut self, row: &CheckpointRow, source: &Json) -> Result<(), StageError>;
    /// Where the checkpoint row lives, for error messages.
    fn place(&self) -> Place;
    /// Most rows in one step.
    fn max_rows(&self) -> usize;
}

/// See the module docs.
pub struct ApplySink<T> {
    name: String,
    target: T,
    ledger: Ledger,
    /// Deliveries refused since the last flush.
    refused: Vec<Refusal>,
    /// Deliveries the target's last commit refused, for a replay.
    held_refused: Vec<Refusal>,
}

impl<T> std::fmt::Debug for ApplySink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplySink")
            .field("name", &self.name)
            .field("delivered", &self.ledger.delivered())
            .finish_non_exhaustive()
    }
}

impl<T: Target> ApplySink<T> {
    /// A sink named `name` applying to `target`; connects in
    /// [`Sink::recover`].
    pub fn new(name: &str, target: T) -> Self {
        ApplySink {
            name: name.to_owned(),
            target,
            ledger: Ledger::default(),
            refused: Vec::new(),
            held_refused: Vec::new(),
        }
    }

    /// Applies `events` (all counted, none held by the target) under a
    /// savepoint: creates as plain inserts first, as upserts when that
    /// failed on its data (a key was taken), and one event at a time to
    /// find the event at fault when that failed too. Returns the index of
    /// the event at fault with the error.
    fn apply(&mut self, events: &[Delivery<'_>]) -> Result<(), (usize, StageError)> {
        let (steps, planned) = plan(events, self.target.max_rows(), InsertAs::Insert);
        let stop = planned.as_ref().map_or(events.len(), |p| p.event);
        let mut failed = self.attempt(&steps).map_err(|e| (0, e))?.is_some();
        if failed {
            self.target.rollback_to_savepoint().map_err(|e| (0, e))?;
            let (steps, _) = plan(&events[..stop], self.target.max_rows(), InsertAs::Upsert);
            failed = self.attempt(&steps).map_err(|e| (0, e))?.is_some();
        }
        if failed {
            // Find the event at fault, one event at a time.
            self.target.rollback_to_savepoint().map_err(|e| (0, e))?;
            for (i, d) in events[..stop].iter().enumerate() {
                let one = [*d];
                let (steps, _) = plan(&one, 1, InsertAs::Upsert);
                if let Some(error) = self.attempt(&steps).map_err(|e| (0, e))? {
                    self.target.rollback_to_savepoint().map_err(|e| (0, e))?;
                    return Err((i, error));
                }
            }
        }
        // Every event applied; the planner may have stopped at one it
        // cannot apply.
        match planned {
            Some(p) => Err((p.event, StageError::event(p.event, p.reason))),
            None => Ok(()),
        }
    }

    /// Sets the savepoint and runs `steps`: `Ok(Some(error))` when one
    /// failed on its data (the caller rolls back to the savepoint).
    fn attempt(&mut self, steps: &[Step<'_>]) -> Result<Option<StageError>, StageError> {
        self.target.savepoint()?;
        for step in steps {
            match self.target.run(step) {
                Ok(()) => {}
                Err(f) if f.data => return Ok(Some(f.error)),
                Err(f) => return Err(f.error),
            }
        }
        Ok(None)
    }
}

impl<T: Target> Sink for ApplySink<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn recover(&mut self, position: Option<&Json>) -> Result<(), StageError> {
        let row = self.target.connect()?;
        let (held, refused) = match row {
            None => (None, Vec::new()),
            Some(row) => {
                let refused = serde_json::from_str(&row.refused).map_err(|e| {
                    StageError::operator(format!(
                        "the `refused` column of sink `{}`'s checkpoint row is not what weir \
                         wrote: {e}",
                        self.name
                    ))
                })?;
                (Some(row.held), refused)
            }
        };
        self.ledger = Ledger::recover(position, held, &self.target.place(), &self.name)?;
        self.held_refused = refused;
        self.refused.clear();
        Ok(())
    }

    fn write(&mut self, events: &[Delivery<'_>]) -> Result<(), StageError> {
        // What the target already holds: counted off, and refused again
        // where it was refused.
        let mut start = 0;
        while start < events.len() && self.ledger.skipping() {
            self.ledger.count();
            let n = self.ledger.delivered();
            if let Some(r) = self.held_refused.iter().find(|r| r.delivered == n) {
                self.refused.push(r.clone());
                return Err(StageError::event(start, r.reason.clone()));
            }
            start += 1;
        }
        let rest = &events[start..];
        if rest.is_empty() {
            return Ok(());
        }
        for _ in rest {
            self.ledger.count();
        }
        match self.apply(rest) {
            Ok(()) => Ok(()),
            Err((at, error)) if error.kind() == ErrorKind::Event => {
                // The events after `at` are handed again.
                self.ledger.uncount((rest.len() - at - 1) as u64);
                let reason = error.to_string();
                self.refused.push(Refusal {
                    delivered: self.ledger.delivered(),
                    reason: reason.clone(),
                });
                Err(StageError::event(start + at, reason))
            }
            Err((_, error)) => Err(error),
        }
    }

    fn flush(&mut self, source: &Json) -> Result<Json, StageError> {
        if self.ledger.pending() {
            let row = CheckpointRow {
                held: self.ledger.record(),
                refused: serde_json::to_string(&self.refused).expect("refusals serialize"),
            };
            self.target.commit(&row, source)?;
            self.ledger.committed();
            crash_point("WEIR_SQL_CRASH_AFTER", row.held.delivered);
        }
        self.refused.clear();
        Ok(self.ledger.flushed())
    }
}
