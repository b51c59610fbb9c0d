//! Active-active: conflicts between an incoming change and the target's
//! row, found before the change is applied and settled by a resolver
//! plugin (`docs/active-active.md`, `docs/decisions/0022-active-active.md`).
//!
//! - **Detection** ([`detect`]): an update or delete whose before image no
//!   longer matches the target's row (every column the image has, or only
//!   the configured version column), an update or delete of a row that is
//!   not there, and a create whose key holds another row.
//! - **Resolution**: the resolver (the `resolver` world) gets the target's
//!   row with its version (commit time and region) and the incoming change
//!   with its own; its decision is applied in the same target transaction.
//!   A delete of a row that is not there needs no resolver: both sides
//!   agree the row is gone.
//! - **Versions**: the sink applies each source transaction in a target
//!   transaction of its own that carries the source's commit time and the
//!   source region's replication origin, so a row keeps the version it was
//!   written with wherever it is replicated to, and every region compares
//!   the same two versions when the same two changes meet.
//! - **The log**: every conflict is a JSON line in the conflicts log, with
//!   both versions and the decision, written before the transaction that
//!   applies the decision commits (so a crash can repeat a line, never
//!   lose one).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value as Json, json};
use weir_core::envelope::{row_to_json, value_to_json};
use weir_core::{ChangeEvent, Column, Conflict, Op, Resolution, Row, StageError, Value};

/// A resolver, as the sink calls it.
pub trait Resolve: Send {
    /// What the conflicts log names the resolver by (`name@version+digest`).
    fn version(&self) -> &str;
    /// Settles one conflict; an error is the plugin's failure (its kind
    /// and message), which sends the incoming change to the dead letters.
    fn resolve(&mut self, conflict: &Conflict) -> Result<Resolution, String>;
}

/// Makes the sink's resolver: once per start, so a restart loads it anew.
pub trait ResolverFactory: Send + Sync + fmt::Debug {
    fn make(&self) -> Result<Box<dyn Resolve>, StageError>;
}

/// What an apply sink needs to resolve conflicts.
#[derive(Debug, Clone)]
pub struct ConflictSetup {
    /// The target's region: the origin of the rows its own users write.
    pub region: String,
    /// The region the pipeline's source is in: the origin of the incoming
    /// changes.
    pub source_region: String,
    /// Compare only this column (a version or update timestamp), where
    /// both the before image and the target row have it.
    pub version_column: Option<String>,
    /// The conflicts log (JSON lines).
    pub log: PathBuf,
    pub resolver: Arc<dyn ResolverFactory>,
}

/// The replication origin that marks the changes a sink applies from
/// `region`: `weir_<region>`, which PostgreSQL sources skip by default.
pub fn origin_of_region(region: &str) -> String {
    format!("weir_{region}")
}

/// The target's row for an incoming change's key, with its version.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalRow {
    pub row: Row,
    /// When the transaction that wrote it committed, if the target knows.
    pub commit_time_us: Option<i64>,
    /// The replication origin that wrote it; `None` for the target's own
    /// users.
    pub origin: Option<String>,
}

/// What an incoming change meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// No conflict: apply the change.
    Apply,
    /// The target already holds the change (a create of the same row).
    Holds,
    Conflict(ConflictKind),
}

/// The kinds of conflict, named as PostgreSQL's own logical replication
/// names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    /// A create whose key holds another row.
    InsertExists,
    /// An update whose before image does not match the target's row.
    UpdateDiffers,
    /// An update of a row the target does not have.
    UpdateMissing,
    /// A delete whose before image does not match the target's row.
    DeleteDiffers,
    /// A delete of a row the target does not have.
    DeleteMissing,
}

impl ConflictKind {
    pub fn name(self) -> &'static str {
        match self {
            ConflictKind::InsertExists => "insert_exists",
            ConflictKind::UpdateDiffers => "update_differs",
            ConflictKind::UpdateMissing => "update_missing",
            ConflictKind::DeleteDiffers => "delete_differs",
            ConflictKind::DeleteMissing => "delete_missing",
        }
    }
}

/// Compares `event` with the target's row (`None`: no row with its key).
/// An update or delete must carry the whole before image (on PostgreSQL,
/// `REPLICA IDENTITY FULL`): without it nothing can be compared, and the
/// error says so.
pub fn detect(
    event: &ChangeEvent,
    local: Option<&[Column]>,
    version_column: Option<&str>,
) -> Result<Detected, String> {
    let differs = |image: &[Column], local: &[Column]| differs(image, local, version_column);
    Ok(match event.op {
        Op::Create | Op::Read => match (local, &event.after) {
            (None, _) => Detected::Apply,
            (Some(l), Some(after)) if !differs(after, l) => Detected::Holds,
            (Some(_), _) => Detected::Conflict(ConflictKind::InsertExists),
        },
        Op::Update | Op::Delete => {
            let before = full_before(event, version_column)?;
            let (differ, missing) = if event.op == Op::Update {
                (ConflictKind::UpdateDiffers, ConflictKind::UpdateMissing)
            } else {
                (ConflictKind::DeleteDiffers, ConflictKind::DeleteMissing)
            };
            match local {
                None => Detected::Conflict(missing),
                Some(l) if differs(before, l) => Detected::Conflict(differ),
                Some(_) => Detected::Apply,
            }
        }
        Op::Truncate => Detected::Apply,
    })
}

/// The event's before image, if it is more than the key (or holds the
/// version column).
fn full_before<'e>(
    event: &'e ChangeEvent,
    version_column: Option<&str>,
) -> Result<&'e [Column], String> {
    let table = event.qualified_table();
    let fix = format!(
        "conflict detection compares the target's row with the change's before image, and the \
         {} of `{table}` carries {{}}; on a PostgreSQL source run `ALTER TABLE {table} REPLICA \
         IDENTITY FULL`",
        event.op.name()
    );
    let Some(before) = event.before.as_deref() else {
        return Err(fix.replace("{}", "none"));
    };
    let has_version = version_column.is_some_and(|v| before.iter().any(|c| c.name == v));
    let only_key = before
        .iter()
        .all(|c| event.key.iter().any(|k| k.name == c.name));
    let after_more = event.after.as_ref().is_some_and(|a| a.len() > before.len());
    if !has_version && only_key && (event.op == Op::Delete || after_more) {
        return Err(fix.replace("{}", "only the key"));
    }
    Ok(before)
}

/// Whether `image` differs from the target's row `local`: in the version
/// column where both have it, else in any column both have (values the
/// source did not send are not compared).
fn differs(image: &[Column], local: &[Column], version_column: Option<&str>) -> bool {
    let find = weir_core::column;
    if let Some(v) = version_column
        && let (Some(a), Some(b)) = (find(image, v), find(local, v))
        && *a != Value::Unchanged
    {
        return !same(a, b);
    }
    image.iter().any(|c| {
        c.value != Value::Unchanged && find(local, &c.name).is_some_and(|l| !same(&c.value, l))
    })
}

/// Value equality, with floats by bits where they are not equal numbers
/// (so a NaN equals itself).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x == y || x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

/// What the sink does about an incoming change.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing: the target keeps its row.
    Nothing,
    /// Apply the incoming change.
    Incoming,
    /// Write this row (a resolver's merge) over the target's.
    Merged(Row),
}

impl Action {
    /// The action for a resolver's decision, and the decision's name for
    /// the log.
    pub fn of(resolution: Resolution) -> (Action, &'static str, Option<String>) {
        match resolution {
            Resolution::KeepLocal => (Action::Nothing, "keep_local", None),
            Resolution::TakeIncoming => (Action::Incoming, "take_incoming", None),
            Resolution::Merged(row) => (Action::Merged(row), "merged", None),
            Resolution::Review(reason) => (Action::Nothing, "review", Some(reason)),
        }
    }
}

/// The region a target row's replication origin names: its own region for
/// none, `<region>` for `weir_<region>`, the origin itself otherwise.
pub fn region_of(origin: Option<&str>, own: &str) -> String {
    match origin {
        None => own.to_owned(),
        Some(o) => o.strip_prefix("weir_").unwrap_or(o).to_owned(),
    }
}

/// The merged row as an update of the incoming change's key.
pub fn merged_event(incoming: &ChangeEvent, row: Row) -> ChangeEvent {
    ChangeEvent {
        op: Op::Update,
        source: incoming.source.clone(),
        key: incoming.key.clone(),
        before: None,
        after: Some(row),
    }
}

/// One conflict as the log writes it.
pub struct Entry<'a> {
    pub sink: &'a str,
    pub destination: &'a str,
    pub kind: ConflictKind,
    pub local: Option<&'a Conflict>,
    pub incoming: &'a ChangeEvent,
    pub decision: &'a str,
    pub merged: Option<&'a [Column]>,
    pub reason: Option<&'a str>,
    pub resolver: Option<&'a str>,
}

impl Entry<'_> {
    pub fn to_json(&self) -> Json {
        let row = |r: Option<&[Column]>| r.map_or(Json::Null, row_to_json);
        let incoming = self.incoming;
        let key: serde_json::Map<String, Json> = incoming
            .key
            .iter()
            .map(|c| (c.name.to_string(), value_to_json(&c.value)))
            .collect();
        let local = self.local.map_or(Json::Null, |c| {
            json!({
                "row": row_to_json(&c.local),
                "commit_time_us": c.local_meta.commit_time_us,
                "region": c.local_meta.origin,
            })
        });
        let source = match self.local {
            Some(c) => &c.incoming.source,
            None => &incoming.source,
        };
        json!({
            "sink": self.sink,
            "destination": self.destination,
            "kind": self.kind.name(),
            "key": key,
            "local": local,
            "incoming": {
                "op": incoming.op.code(),
                "before": row(incoming.before.as_deref()),
                "after": row(incoming.after.as_deref()),
                "commit_time_us": source.commit_time_us,
                "region": source.origin,
                "txid": source.txid,
                "position": source.position,
            },
            "decision": self.decision,
            "merged": row(self.merged),
            "reason": self.reason,
            "resolver": self.resolver,
        })
    }
}

/// The conflicts log: lines of the open transaction wait here until the
/// sink commits it, and are dropped with it.
#[derive(Debug)]
pub struct ConflictLog {
    path: PathBuf,
    file: Option<File>,
    pending: Vec<u8>,
    /// Conflicts written since the sink started, for its log lines.
    pub count: u64,
}

impl ConflictLog {
    pub fn new(path: PathBuf) -> Self {
        ConflictLog {
            path,
            file: None,
            pending: Vec::new(),
            count: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds a line for the open transaction.
    pub fn add(&mut self, entry: &Json) {
        serde_json::to_writer(&mut self.pending, entry).expect("JSON serializes");
        self.pending.push(b'\n');
        self.count += 1;
    }

    /// The open transaction was rolled back.
    pub fn discard(&mut self) {
        self.pending.clear();
    }

    /// Appends the open transaction's lines (before its commit).
    pub fn write(&mut self) -> Result<(), StageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = &self.path;
        let fail = |e: std::io::Error| {
            StageError::operator(format!(
                "cannot write the conflicts log {}: {e}",
                path.display()
            ))
        };
        if self.file.is_none() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(fail)?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(fail)?;
            self.file = Some(file);
        }
        let file = self.file.as_mut().expect("opened above");
        file.write_all(&self.pending).map_err(fail)?;
        self.pending.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_core::SourceInfo;

    fn row(pairs: &[(&str, Value)]) -> Row {
        pairs
            .iter()
            .map(|(n, v)| Column::new(*n, v.clone()))
            .collect()
    }

    fn event(op: Op, before: Option<Row>, after: Option<Row>) -> ChangeEvent {
        ChangeEvent {
            op,
            source: SourceInfo {
                schema: "public".into(),
                table: "items".into(),
                ..SourceInfo::default()
            },
            key: row(&[("id", Value::Int(1))]),
            before,
            after,
        }
    }

    fn r(n: i64, name: &str) -> Row {
        row(&[
            ("id", Value::Int(1)),
            ("n", Value::Int(n)),
            ("name", Value::Text(name.into())),
        ])
    }

    #[test]
    fn updates_compare_the_before_image_with_the_target_row() {
        let update = event(Op::Update, Some(r(1, "a")), Some(r(2, "a")));
        assert_eq!(detect(&update, Some(&r(1, "a")), None), Ok(Detected::Apply));
        assert_eq!(
            detect(&update, Some(&r(1, "b")), None),
            Ok(Detected::Conflict(ConflictKind::UpdateDiffers))
        );
        assert_eq!(
            detect(&update, None, None),
            Ok(Detected::Conflict(ConflictKind::UpdateMissing))
        );
        // With a version column, only it is compared.
        assert_eq!(
            detect(&update, Some(&r(1, "b")), Some("n")),
            Ok(Detected::Apply)
        );
        assert_eq!(
            detect(&update, Some(&r(5, "a")), Some("n")),
            Ok(Detected::Conflict(ConflictKind::UpdateDiffers))
        );
        // Unchanged TOAST values and columns the target lacks are not compared.
        let mut toast = r(1, "a");
        toast[2].value = Value::Unchanged;
        let update = event(Op::Update, Some(toast), Some(r(2, "a")));
        assert_eq!(detect(&update, Some(&r(1, "z")), None), Ok(Detected::Apply));
        assert_eq!(
            detect(&update, Some(&r(1, "a")[..2]), None),
            Ok(Detected::Apply)
        );
    }

    #[test]
    fn creates_and_deletes() {
        let create = event(Op::Create, None, Some(r(1, "a")));
        assert_eq!(detect(&create, None, None), Ok(Detected::Apply));
        assert_eq!(detect(&create, Some(&r(1, "a")), None), Ok(Detected::Holds));
        assert_eq!(
            detect(&create, Some(&r(2, "a")), None),
            Ok(Detected::Conflict(ConflictKind::InsertExists))
        );
        let delete = event(Op::Delete, Some(r(1, "a")), None);
        assert_eq!(detect(&delete, Some(&r(1, "a")), None), Ok(Detected::Apply));
        assert_eq!(
            detect(&delete, Some(&r(3, "a")), None),
            Ok(Detected::Conflict(ConflictKind::DeleteDiffers))
        );
        assert_eq!(
            detect(&delete, None, None),
            Ok(Detected::Conflict(ConflictKind::DeleteMissing))
        );
    }

    #[test]
    fn a_before_image_of_only_the_key_is_refused_with_the_fix() {
        let update = event(Op::Update, None, Some(r(2, "a")));
        let e = detect(&update, Some(&r(1, "a")), None).unwrap_err();
        assert!(e.contains("carries none"), "{e}");
        assert!(e.contains("REPLICA IDENTITY FULL"), "{e}");
        let delete = event(Op::Delete, Some(row(&[("id", Value::Int(1))])), None);
        let e = detect(&delete, Some(&r(1, "a")), None).unwrap_err();
        assert!(e.contains("only the key"), "{e}");
    }

    #[test]
    fn regions_of_origins() {
        assert_eq!(region_of(None, "west"), "west");
        assert_eq!(region_of(Some("weir_east"), "west"), "east");
        assert_eq!(region_of(Some("pg_16384"), "west"), "pg_16384");
        assert_eq!(origin_of_region("east"), "weir_east");
    }

    #[test]
    fn the_log_keeps_lines_until_written_and_drops_them_on_discard() {
        let dir = std::env::temp_dir().join(format!("weir-conflicts-{}", std::process::id()));
        let path = dir.join("c.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut log = ConflictLog::new(path.clone());
        let incoming = event(Op::Update, Some(r(1, "a")), Some(r(2, "a")));
        let entry = Entry {
            sink: "west",
            destination: "public.items",
            kind: ConflictKind::UpdateDiffers,
            local: None,
            incoming: &incoming,
            decision: "keep_local",
            merged: None,
            reason: None,
            resolver: Some("resolvers+abc"),
        };
        log.add(&entry.to_json());
        log.discard();
        log.write().unwrap();
        assert!(!path.exists());
        log.add(&entry.to_json());
        log.write().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let line: Json = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["kind"], "update_differs");
        assert_eq!(line["key"]["id"], 1);
        assert_eq!(line["incoming"]["after"]["n"], 2);
        assert_eq!(line["decision"], "keep_local");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
