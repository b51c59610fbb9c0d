//! How SQL apply sinks turn deliveries into statements, whatever the
//! database: each event becomes an upsert, a delete by key or a truncate
//! of its destination table, and consecutive events of the same shape
//! (same table, same operation, same columns) share one multi-row
//! statement ([`Step`]).
//!
//! Order: steps run in the order of their first event, and an event joins
//! only the last step, so every table sees its changes in commit order and
//! a parent row written before its child still comes first. Within an
//! upsert step a key written twice keeps its last row (both rows set the
//! same columns, so the last one is what the table would end with); within
//! a delete step a key deleted twice is deleted once.
//!
//! Mapping, per event:
//! - create and snapshot read: insert of the after image, or upsert
//!   ([`InsertAs`]: sinks insert first and upsert when a key was taken);
//! - update: upsert of the after image; when the before image's key
//!   differs from the key (the primary key changed), a delete of the old
//!   key first;
//! - delete: delete by key;
//! - truncate: truncate of the table.
//!
//! Unchanged-TOAST placeholders ([`Value::Unchanged`]) are left out of an
//! upsert's columns, so they never overwrite the target's value.

use std::hash::{BuildHasher, Hash, Hasher};

use hashbrown::{DefaultHashBuilder, HashTable};
use weir_core::{ChangeEvent, Column, Delivery, Op, Value};

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepKind {
    /// Insert each row (a key that exists is the statement's failure).
    Insert,
    /// Insert each row, or update every given column where the key exists.
    Upsert,
    /// Delete the rows with these keys.
    Delete,
    /// Empty the table.
    Truncate,
}

/// One statement's worth of rows, all for one table and one shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Step<'a> {
    pub kind: StepKind,
    /// The destination the router chose (the sink maps it to a table).
    pub destination: &'a str,
    /// The columns every row gives, in the first row's order; the key's
    /// columns come first (`key_len` of them).
    pub columns: Vec<&'a str>,
    pub key_len: usize,
    /// Each row's values in `columns` order, with the index of its event
    /// in the write.
    pub rows: Vec<StepRow<'a>>,
}

/// A row of a [`Step`].
#[derive(Debug, Clone, PartialEq)]
pub struct StepRow<'a> {
    pub event: usize,
    pub values: Vec<&'a Value>,
}

impl<'a> Step<'a> {
    /// The key's columns.
    pub fn key(&self) -> &[&'a str] {
        &self.columns[..self.key_len]
    }

    /// Checks that a target table keyed by `target_key` (in key order) can
    /// take this step by its key; the operator's fix when not. `table` and
    /// `quoted` name the table for the message.
    pub fn check_key(
        &self,
        table: &str,
        quoted: &str,
        target_key: &[String],
    ) -> Result<(), String> {
        if target_key.is_empty() {
            return Err(format!(
                "table `{table}` has no primary key; run `ALTER TABLE {quoted} ADD PRIMARY KEY ({})`",
                self.key().join(", ")
            ));
        }
        let mut target: Vec<&str> = target_key.iter().map(String::as_str).collect();
        let mut source = self.key().to_vec();
        target.sort_unstable();
        source.sort_unstable();
        if target != source {
            return Err(format!(
                "table `{table}` has primary key ({}), but the source's key is ({}); give the \
                 target the source's key",
                target_key.join(", "),
                self.key().join(", ")
            ));
        }
        Ok(())
    }

    /// A type for each column, for a table or column the sink creates:
    /// `type_of` is given the column's first value that is not null (or
    /// `None` when every row has null) and whether it is a key column.
    pub fn column_types(
        &self,
        type_of: impl Fn(Option<&Value>, bool) -> &'static str,
    ) -> Vec<(&'a str, &'static str)> {
        self.columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let first = self
                    .rows
                    .iter()
                    .map(|r| r.values[i])
                    .find(|v| !matches!(v, Value::Null | Value::Unchanged));
                (*c, type_of(first, i < self.key_len))
            })
            .collect()
    }
}

/// Why an event cannot be applied: the event's fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub event: usize,
    pub reason: String,
}

/// How creates and snapshot rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertAs {
    /// Plain inserts: far cheaper for the database than upserts (a
    /// PostgreSQL `INSERT ... ON CONFLICT` costs about 1.7 times a plain
    /// one), and right unless the target already holds the key.
    Insert,
    /// Upserts, for when a plain insert found its key taken.
    Upsert,
}

/// Builds the steps for `events`, at most `max_rows` rows per step. Stops
/// at the first event that cannot be applied, returning the steps before
/// it and the error.
pub fn plan<'a>(
    events: &'a [Delivery<'a>],
    max_rows: usize,
    inserts: InsertAs,
) -> (Vec<Step<'a>>, Option<PlanError>) {
    let mut planner = Planner {
        steps: Vec::new(),
        keys: HashTable::new(),
        hasher: DefaultHashBuilder::default(),
        spare: Vec::new(),
        max_rows: max_rows.max(1),
        inserts,
    };
    for (i, d) in events.iter().enumerate() {
        if let Err(reason) = planner.add(i, d) {
            return (planner.steps, Some(PlanError { event: i, reason }));
        }
    }
    (planner.steps, None)
}

struct Planner<'a> {
    steps: Vec<Step<'a>>,
    /// The last step's rows (their indexes) by key values, to fold a
    /// repeated key. The key values are the rows' own, so the index holds
    /// no copy of them.
    keys: HashTable<usize>,
    hasher: DefaultHashBuilder,
    /// A column list to fill for the next upsert row.
    spare: Vec<&'a str>,
    max_rows: usize,
    inserts: InsertAs,
}

/// A row's key values, hashed and compared as [`KeyPart`]s.
struct KeyOf<'r, 'a>(&'r [&'a Value]);

impl Hash for KeyOf<'_, '_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for v in self.0 {
            key_part(v).hash(state);
        }
    }
}

impl KeyOf<'_, '_> {
    fn matches(&self, other: &[&Value]) -> bool {
        self.0.len() == other.len()
            && self
                .0
                .iter()
                .zip(other)
                .all(|(a, b)| key_part(a) == key_part(b))
    }
}

/// A key value that can be hashed: floats by their bits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyPart<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(&'a str),
    Bytes(&'a [u8]),
    Day(i32),
    Micros(u8, i64),
    Unchanged,
}

fn key_part(v: &Value) -> KeyPart<'_> {
    match v {
        Value::Null => KeyPart::Null,
        Value::Boolean(b) => KeyPart::Bool(*b),
        Value::Int(i) => KeyPart::Int(*i),
        Value::Float(f) => KeyPart::Float(f.to_bits()),
        Value::Decimal(s) | Value::Text(s) | Value::Json(s) | Value::Uuid(s) => KeyPart::Str(s),
        Value::Bytes(b) => KeyPart::Bytes(b),
        Value::Date(d) => KeyPart::Day(*d),
        Value::Time(t) => KeyPart::Micros(0, *t),
        Value::Timestamp(t) => KeyPart::Micros(1, *t),
        Value::Timestamptz(t) => KeyPart::Micros(2, *t),
        Value::Unchanged => KeyPart::Unchanged,
    }
}

impl<'a> Planner<'a> {
    fn add(&mut self, i: usize, d: &Delivery<'a>) -> Result<(), String> {
        let event: &'a ChangeEvent = d.event;
        if event.op == Op::Truncate {
            self.push(
                i,
                d.destination,
                StepKind::Truncate,
                Vec::new(),
                0,
                Vec::new(),
            );
            return Ok(());
        }
        if event.key.is_empty() {
            return Err(format!(
                "`{}.{}` has no primary key: SQL sinks apply changes by key",
                event.source.schema, event.source.table
            ));
        }
        let key_names = || -> Vec<&'a str> { event.key.iter().map(|c| c.name.as_str()).collect() };
        match event.op {
            Op::Delete => {
                let values = key_values(&event.key, "key")?;
                self.push(
                    i,
                    d.destination,
                    StepKind::Delete,
                    key_names(),
                    values.len(),
                    values,
                );
            }
            Op::Create | Op::Read | Op::Update => {
                let after = event
                    .after
                    .as_ref()
                    .ok_or_else(|| format!("a {} event without an after image", event.op.name()))?;
                if event.op == Op::Update
                    && let Some(before) = &event.before
                    && let Some(old) = old_key(&event.key, before, after)?
                {
                    let n = old.len();
                    self.push(i, d.destination, StepKind::Delete, key_names(), n, old);
                }
                let mut columns = std::mem::take(&mut self.spare);
                columns.clear();
                let values = upsert_row(&event.key, after, &mut columns)?;
                let kind = match (event.op, self.inserts) {
                    (Op::Create | Op::Read, InsertAs::Insert) => StepKind::Insert,
                    _ => StepKind::Upsert,
                };
                self.push(i, d.destination, kind, columns, event.key.len(), values);
            }
            Op::Truncate => unreachable!("handled above"),
        }
        Ok(())
    }

    fn push(
        &mut self,
        event: usize,
        destination: &'a str,
        kind: StepKind,
        columns: Vec<&'a str>,
        key_len: usize,
        values: Vec<&'a Value>,
    ) {
        let hash = self.hasher.hash_one(KeyOf(&values[..key_len]));
        // An event that joins the last step leaves its column list (the
        // same as the step's) for the next event to fill.
        if let Some(last) = self.steps.last_mut()
            && last.kind == kind
            && last.destination == destination
            && last.columns == columns
        {
            let rows = &last.rows;
            let found = if kind == StepKind::Truncate {
                None
            } else {
                let key = KeyOf(&values[..key_len]);
                self.keys
                    .find(hash, |&at| key.matches(&rows[at].values[..key_len]))
                    .copied()
            };
            if kind == StepKind::Truncate || found.is_some() || rows.len() < self.max_rows {
                match (kind, found) {
                    (StepKind::Truncate, _) => {}
                    (StepKind::Insert | StepKind::Upsert, Some(at)) => {
                        last.rows[at] = StepRow { event, values }
                    }
                    (StepKind::Delete, Some(_)) => {}
                    (_, None) => {
                        let hasher = &self.hasher;
                        self.keys.insert_unique(hash, rows.len(), |&at| {
                            hasher.hash_one(KeyOf(&rows[at].values[..key_len]))
                        });
                        last.rows.push(StepRow { event, values });
                    }
                }
                self.spare = columns;
                return;
            }
        }
        self.keys.clear();
        let rows = if kind == StepKind::Truncate {
            Vec::new()
        } else {
            // The table was just cleared: nothing in it to rehash.
            self.keys.insert_unique(hash, 0, |_| hash);
            vec![StepRow { event, values }]
        };
        self.steps.push(Step {
            kind,
            destination,
            columns,
            key_len,
            rows,
        });
    }
}

/// The values of the key's columns.
fn key_values<'a>(key: &'a [Column], image: &str) -> Result<Vec<&'a Value>, String> {
    key.iter()
        .map(|c| match c.value {
            Value::Unchanged => Err(format!("the {image}'s column `{}` has no value", c.name)),
            ref v => Ok(v),
        })
        .collect()
}

/// The old key of an update whose before image shows another key than its
/// after image, or `None` when the key did not change (or the before image
/// lacks it). Sources differ in which image the event's key comes from;
/// only its column names are used here.
fn old_key<'a>(
    key: &'a [Column],
    before: &'a [Column],
    after: &'a [Column],
) -> Result<Option<Vec<&'a Value>>, String> {
    let value = |image: &'a [Column], name: &str| {
        image
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.value)
            .filter(|v| !matches!(v, Value::Unchanged))
    };
    let mut old = Vec::with_capacity(key.len());
    let mut changed = false;
    for k in key {
        let (Some(was), Some(is)) = (value(before, &k.name), value(after, &k.name)) else {
            return Ok(None);
        };
        changed |= was != is;
        old.push(was);
    }
    Ok(changed.then_some(old))
}

/// An upsert's columns (into `columns`) and values: the key's columns
/// first (from the after image), then the after image's other columns that
/// carry a value.
fn upsert_row<'a>(
    key: &'a [Column],
    after: &'a [Column],
    columns: &mut Vec<&'a str>,
) -> Result<Vec<&'a Value>, String> {
    columns.reserve(after.len());
    let mut values = Vec::with_capacity(after.len());
    for k in key {
        let c = after
            .iter()
            .find(|c| c.name == k.name)
            .ok_or_else(|| format!("the after image has no key column `{}`", k.name))?;
        if matches!(c.value, Value::Unchanged) {
            return Err(format!(
                "the after image's key column `{}` has no value",
                k.name
            ));
        }
        columns.push(c.name.as_str());
        values.push(&c.value);
    }
    for c in after {
        if matches!(c.value, Value::Unchanged) || key.iter().any(|k| k.name == c.name) {
            continue;
        }
        columns.push(c.name.as_str());
        values.push(&c.value);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_core::SourceInfo;

    fn event(op: Op, id: i64, n: i64) -> ChangeEvent {
        let row = vec![
            Column::new("id", Value::Int(id)),
            Column::new("n", Value::Int(n)),
        ];
        ChangeEvent {
            op,
            source: SourceInfo {
                schema: "public".into(),
                table: "t".into(),
                ..SourceInfo::default()
            },
            key: vec![Column::new("id", Value::Int(id))],
            before: None,
            after: (op != Op::Delete).then_some(row),
        }
    }

    fn shape(steps: &[Step<'_>]) -> Vec<(StepKind, &'static str, Vec<usize>)> {
        steps
            .iter()
            .map(|s| {
                let dest: &'static str = Box::leak(s.destination.to_owned().into_boxed_str());
                (s.kind, dest, s.rows.iter().map(|r| r.event).collect())
            })
            .collect()
    }

    fn deliveries<'a>(events: &'a [(&'a str, ChangeEvent)]) -> Vec<Delivery<'a>> {
        events
            .iter()
            .map(|(destination, event)| Delivery { destination, event })
            .collect()
    }

    #[test]
    fn consecutive_events_of_one_shape_share_a_step_in_commit_order() {
        use StepKind::*;
        let events = [
            ("a", event(Op::Create, 1, 0)),
            ("a", event(Op::Update, 2, 0)),
            ("b", event(Op::Read, 1, 0)),
            ("a", event(Op::Create, 3, 0)),
            ("a", event(Op::Delete, 3, 0)),
            ("a", event(Op::Delete, 1, 0)),
            ("a", event(Op::Truncate, 0, 0)),
            ("a", event(Op::Truncate, 0, 0)),
        ];
        let d = deliveries(&events);
        let (steps, err) = plan(&d, 100, InsertAs::Upsert);
        assert_eq!(err, None);
        assert_eq!(
            shape(&steps),
            vec![
                (Upsert, "a", vec![0, 1]),
                (Upsert, "b", vec![2]),
                (Upsert, "a", vec![3]),
                (Delete, "a", vec![4, 5]),
                (Truncate, "a", vec![]),
            ]
        );
        assert_eq!(steps[0].columns, ["id", "n"]);
        assert_eq!(steps[3].columns, ["id"]);
    }

    #[test]
    fn creates_and_snapshot_rows_are_plain_inserts_until_asked_for_upserts() {
        let events = [
            ("a", event(Op::Create, 1, 0)),
            ("a", event(Op::Read, 2, 0)),
            ("a", event(Op::Update, 3, 0)),
        ];
        let d = deliveries(&events);
        let kinds = |inserts| {
            plan(&d, 100, inserts)
                .0
                .iter()
                .map(|s| (s.kind, s.rows.len()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(InsertAs::Insert),
            [(StepKind::Insert, 2), (StepKind::Upsert, 1)]
        );
        assert_eq!(kinds(InsertAs::Upsert), [(StepKind::Upsert, 3)]);
    }

    #[test]
    fn a_repeated_key_keeps_its_last_row_and_steps_respect_max_rows() {
        let events = [
            ("a", event(Op::Create, 1, 1)),
            ("a", event(Op::Update, 1, 2)),
            ("a", event(Op::Update, 2, 1)),
            ("a", event(Op::Update, 1, 3)),
            ("a", event(Op::Update, 3, 1)),
        ];
        let d = deliveries(&events);
        let (steps, _) = plan(&d, 2, InsertAs::Upsert);
        assert_eq!(
            shape(&steps),
            vec![
                (StepKind::Upsert, "a", vec![3, 2]),
                (StepKind::Upsert, "a", vec![4])
            ]
        );
        assert_eq!(steps[0].rows[0].values, [&Value::Int(1), &Value::Int(3)]);
    }

    #[test]
    fn a_changed_key_deletes_the_old_row_and_unchanged_toast_is_left_out() {
        let mut moved = event(Op::Update, 2, 5);
        moved.before = Some(vec![Column::new("id", Value::Int(1))]);
        let mut toasted = event(Op::Update, 3, 0);
        toasted.after.as_mut().unwrap()[1].value = Value::Unchanged;
        let mut same_key = event(Op::Update, 4, 0);
        same_key.before = Some(vec![Column::new("id", Value::Int(4))]);
        let events = [("a", moved), ("a", toasted), ("a", same_key)];
        let d = deliveries(&events);
        let (steps, err) = plan(&d, 100, InsertAs::Upsert);
        assert_eq!(err, None);
        assert_eq!(
            shape(&steps),
            vec![
                (StepKind::Delete, "a", vec![0]),
                (StepKind::Upsert, "a", vec![0]),
                (StepKind::Upsert, "a", vec![1]),
                (StepKind::Upsert, "a", vec![2]),
            ]
        );
        assert_eq!(steps[0].rows[0].values, [&Value::Int(1)]);
        assert_eq!(steps[2].columns, ["id"]);
    }

    #[test]
    fn a_changed_key_is_seen_whichever_image_the_event_key_came_from() {
        // The MySQL source keys an update by its before image.
        let mut moved = event(Op::Update, 1, 5);
        moved.before = Some(vec![
            Column::new("id", Value::Int(1)),
            Column::new("n", Value::Int(0)),
        ]);
        moved.after.as_mut().unwrap()[0].value = Value::Int(2);
        let events = [("a", moved)];
        let d = deliveries(&events);
        let (steps, err) = plan(&d, 100, InsertAs::Upsert);
        assert_eq!(err, None);
        assert_eq!(steps[0].kind, StepKind::Delete);
        assert_eq!(steps[0].rows[0].values, [&Value::Int(1)]);
        assert_eq!(steps[1].kind, StepKind::Upsert);
        assert_eq!(steps[1].rows[0].values, [&Value::Int(2), &Value::Int(5)]);
    }

    #[test]
    fn an_event_without_a_key_stops_the_plan_at_it() {
        let mut keyless = event(Op::Create, 2, 0);
        keyless.key.clear();
        let events = [("a", event(Op::Create, 1, 0)), ("a", keyless)];
        let d = deliveries(&events);
        let (steps, err) = plan(&d, 100, InsertAs::Upsert);
        assert_eq!(steps.len(), 1);
        let err = err.unwrap();
        assert_eq!(err.event, 1);
        assert!(err.reason.contains("no primary key"), "{}", err.reason);
    }
}
