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
//! - **Active-active.** With a [`ConflictSetup`], each source transaction
//!   is applied in a target transaction of its own, event by event, and
//!   each event is first compared with the target's row; [`conflict`]
//!   tells how.

pub mod conflict;
pub mod plan;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use tracing::info;
use weir_core::{
    ChangeEvent, Column, Conflict, Delivery, ErrorKind, Name, Op, Sink, SourceInfo, StageError,
    VersionMeta,
};

pub use conflict::{ConflictSetup, LocalRow, Resolve, ResolverFactory};
pub use plan::{InsertAs, PlanError, Step, StepKind, StepRow, plan};

use conflict::{Action, ConflictKind, ConflictLog, Detected, Entry};

use crate::own_position::{self, Held, Ledger, Place, crash_point};

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

    /// Active-active: opens a transaction (none is open) that replays the
    /// source transaction of `source`: what it writes carries the source's
    /// commit time and the session's replication origin.
    fn begin_replay(&mut self, source: &SourceInfo) -> Result<(), StageError> {
        let _ = source;
        Err(not_resolving())
    }

    /// Active-active: marks the open replay with a later commit time,
    /// `commit_time_us` (a merge that kept a later local version's values
    /// carries that version).
    fn restamp(&mut self, commit_time_us: i64) -> Result<(), StageError> {
        let _ = commit_time_us;
        Err(not_resolving())
    }

    /// Active-active: the target's row with `key` in `destination`'s table
    /// (`None` when there is none, or no table), locked until the commit.
    fn local_row(
        &mut self,
        destination: &str,
        key: &[Column],
    ) -> Result<Option<LocalRow>, StageError> {
        let _ = (destination, key);
        Err(not_resolving())
    }
}

/// What a target without active-active support answers to its calls.
fn not_resolving() -> StageError {
    StageError::operator(
        "this sink kind does not resolve conflicts; remove its `conflicts` section",
    )
}

/// An apply sink's conflict handling, once started.
struct Resolving {
    setup: ConflictSetup,
    resolver: Option<Box<dyn Resolve>>,
    log: ConflictLog,
    /// The source transaction the open target transaction replays.
    replaying: Option<(Option<Name>, i64)>,
    /// The commit time the open replay must carry, when a merge made it
    /// later than the source transaction's.
    restamp: Option<i64>,
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
    /// Active-active only.
    resolving: Option<Resolving>,
    /// The source position of the last flush, for commits between flushes.
    source: Json,
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
            resolving: None,
            source: Json::Null,
        }
    }

    /// Resolves conflicts as `setup` says (active-active).
    pub fn with_conflicts(mut self, setup: ConflictSetup) -> Self {
        self.resolving = Some(Resolving {
            log: ConflictLog::new(setup.log.clone()),
            setup,
            resolver: None,
            replaying: None,
            restamp: None,
        });
        self
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

/// The source transaction an event belongs to.
fn transaction_of(event: &ChangeEvent) -> (Option<Name>, i64) {
    (event.source.txid.clone(), event.source.commit_time_us)
}

impl<T: Target> ApplySink<T> {
    /// Active-active: applies `events` (none held by the target) event by
    /// event, each source transaction in a target transaction of its own.
    /// On an event's fault, returns its index with the error; the events
    /// after it are not counted.
    fn write_resolving(&mut self, events: &[Delivery<'_>]) -> Result<(), (usize, StageError)> {
        for (i, d) in events.iter().enumerate() {
            let txn = transaction_of(d.event);
            let r = self.resolving.as_mut().expect("resolving");
            if r.replaying.as_ref() != Some(&txn) {
                if r.replaying.is_some() {
                    self.commit_replay().map_err(|e| (i, e))?;
                }
                self.target
                    .begin_replay(&d.event.source)
                    .map_err(|e| (i, e))?;
                self.resolving.as_mut().expect("resolving").replaying = Some(txn);
            }
            self.ledger.count();
            self.resolve_one(d).map_err(|e| (i, e))?;
        }
        Ok(())
    }

    /// Commits the open replay with the checkpoint row.
    fn commit_replay(&mut self) -> Result<(), StageError> {
        let source = self.source.clone();
        self.commit(&source)?;
        if let Some(r) = self.resolving.as_mut() {
            r.replaying = None;
        }
        Ok(())
    }

    /// Writes the checkpoint row (and, resolving, the conflicts of the
    /// transaction and the later commit time a merge asked for) and
    /// commits.
    fn commit(&mut self, source: &Json) -> Result<(), StageError> {
        if let Some(r) = self.resolving.as_mut() {
            r.log.write()?;
            if let Some(at) = r.restamp.take() {
                self.target.restamp(at)?;
            }
        }
        let row = CheckpointRow {
            held: self.ledger.record(),
            refused: serde_json::to_string(&self.refused).expect("refusals serialize"),
        };
        self.target.commit(&row, source)?;
        self.ledger.committed();
        crash_point("WEIR_SQL_CRASH_AFTER", row.held.delivered);
        Ok(())
    }

    /// Compares one event with the target's row, settles a conflict, and
    /// applies what was decided.
    fn resolve_one(&mut self, d: &Delivery<'_>) -> Result<(), StageError> {
        let event = d.event;
        if event.op == Op::Truncate {
            return self.apply_one(d);
        }
        let r = self.resolving.as_ref().expect("resolving");
        let version_column = r.setup.version_column.clone();
        let local = self.target.local_row(d.destination, &event.key)?;
        let detected = conflict::detect(
            event,
            local.as_ref().map(|l| l.row.as_slice()),
            version_column.as_deref(),
        )
        .map_err(StageError::operator)?;
        let kind = match detected {
            Detected::Apply => return self.apply_one(d),
            Detected::Holds => return Ok(()),
            Detected::Conflict(kind) => kind,
        };
        let r = self.resolving.as_mut().expect("resolving");
        let mut incoming = event.clone();
        if incoming.source.origin.is_none() {
            incoming.source.origin = Some(r.setup.source_region.as_str().into());
        }
        let local_region = local
            .as_ref()
            .map(|l| conflict::region_of(l.origin.as_deref(), &r.setup.region));
        if let Some(l) = &local
            && l.commit_time_us == Some(event.source.commit_time_us)
            && local_region.as_deref() == incoming.source.origin.as_deref()
        {
            // The row carries this change's own version: it was applied
            // already (a replay after a crash).
            return Ok(());
        }
        if kind == ConflictKind::DeleteMissing {
            // Both sides agree the row is gone.
            let entry = Entry {
                sink: &self.name,
                destination: d.destination,
                kind,
                local: None,
                incoming: &incoming,
                decision: "nothing_to_delete",
                merged: None,
                reason: None,
                resolver: None,
            };
            r.log.add(&entry.to_json());
            return Ok(());
        }
        let conflict = Conflict {
            local_meta: match &local {
                Some(l) => VersionMeta {
                    commit_time_us: l.commit_time_us.unwrap_or(0),
                    origin: local_region,
                    txid: None,
                },
                // A missing row is older than any change.
                None => VersionMeta::default(),
            },
            local: local.map(|l| l.row).unwrap_or_default(),
            incoming,
        };
        let resolver = r.resolver.as_mut().expect("made in recover");
        let resolution = resolver.resolve(&conflict).map_err(|e| {
            StageError::event(
                0,
                format!(
                    "resolver {} failed on a {} conflict: {e}",
                    resolver.version(),
                    kind.name()
                ),
            )
        })?;
        let (action, decision, reason) = Action::of(resolution);
        if matches!(action, Action::Merged(_))
            && conflict.local_meta.commit_time_us > event.source.commit_time_us
        {
            // The merged row is as recent as the later of its two versions.
            let at = r.restamp.get_or_insert(event.source.commit_time_us);
            *at = (*at).max(conflict.local_meta.commit_time_us);
        }
        let merged = match &action {
            Action::Merged(row) => Some(row.as_slice()),
            _ => None,
        };
        let entry = Entry {
            sink: &self.name,
            destination: d.destination,
            kind,
            local: Some(&conflict),
            incoming: event,
            decision,
            merged,
            reason: reason.as_deref(),
            resolver: Some(resolver.version()),
        };
        r.log.add(&entry.to_json());
        match action {
            Action::Nothing => Ok(()),
            Action::Incoming => self.apply_one(d),
            Action::Merged(row) => {
                let event = conflict::merged_event(event, row);
                self.apply_one(&Delivery {
                    destination: d.destination,
                    event: &event,
                })
            }
        }
    }

    /// Applies one event under a savepoint: a failure on its data rolls it
    /// back and is the event's fault.
    fn apply_one(&mut self, d: &Delivery<'_>) -> Result<(), StageError> {
        let one = [*d];
        let (steps, planned) = plan(&one, 1, InsertAs::Upsert);
        if let Some(p) = planned {
            return Err(StageError::event(0, p.reason));
        }
        if let Some(error) = self.attempt(&steps)? {
            self.target.rollback_to_savepoint()?;
            return Err(error);
        }
        Ok(())
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
        // Resolving, the sink commits each source transaction, so it may
        // have committed before the pipeline's first checkpoint. With no
        // checkpoint the source starts again where it first started (an
        // active-active source takes no snapshot), so the replay hands the
        // same deliveries first: count off what the target holds.
        let first_start = own_position::position(0);
        let position = match (position, held) {
            (None, Some(h)) if self.resolving.is_some() && h.base == 0 => {
                info!(sink = %self.name, delivered = h.delivered,
                    "The target applied changes before the pipeline's first checkpoint; the \
                     replay skips them.");
                Some(&first_start)
            }
            (p, _) => p,
        };
        self.ledger = Ledger::recover(position, held, &self.target.place(), &self.name)?;
        self.held_refused = refused;
        self.refused.clear();
        if let Some(r) = self.resolving.as_mut() {
            r.replaying = None;
            r.restamp = None;
            r.log.discard();
            if r.resolver.is_none() {
                r.resolver = Some(r.setup.resolver.make()?);
            }
        }
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
        if self.resolving.is_some() {
            return self.write_resolving(rest).map_err(|(at, error)| {
                if error.kind() != ErrorKind::Event {
                    return error;
                }
                // Counted; the events after it were not.
                let reason = error.to_string();
                self.refused.push(Refusal {
                    delivered: self.ledger.delivered(),
                    reason: reason.clone(),
                });
                StageError::event(start + at, reason)
            });
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
        self.source = source.clone();
        if self.ledger.pending() {
            self.commit(source)?;
        }
        if let Some(r) = self.resolving.as_mut() {
            r.replaying = None;
        }
        self.refused.clear();
        Ok(self.ledger.flushed())
    }
}
