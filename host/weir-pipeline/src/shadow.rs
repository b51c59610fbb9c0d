//! Shadow deploys: a candidate version of a transformer runs beside the
//! live one on the same input. Its output is compared with the live
//! output, input event by input event, and never delivered. Differences
//! are counted (status, metrics) and the first [`SAMPLES`] of each
//! candidate version are written to `<state_dir>/shadow-<plugin>.jsonl`.
//!
//! `weir plugin diff OLD NEW --input events.jsonl` makes the same
//! comparison offline, through [`compare`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};
use tracing::warn;
use weir_core::{ChangeEvent, Column, Name, envelope};
use weir_plugin::{EventFailure, TransformerPlugin};

/// Differences written to the sample file per candidate version; the
/// counts go on past it.
pub const SAMPLES: u64 = 1000;

/// What a transformer made of one input event: the events it became
/// (none: dropped) or why it failed.
pub type Outcome = Result<Vec<ChangeEvent>, EventFailure>;

/// How the candidate's outcome for one input event differs from the
/// live version's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// The live version kept the event; the candidate dropped it.
    Dropped,
    /// The live version dropped the event; the candidate kept it.
    Kept,
    /// Both kept it, with these fields different: columns as
    /// `after.email`, `before.email`, `key.id`, and `op`, `table`,
    /// `source`, or `events` when they made a different number of events.
    Changed(Vec<String>),
    /// The candidate failed (with this failure kind) where the live
    /// version did not.
    Failed(&'static str),
    /// The live version failed where the candidate did not.
    Passed,
}

impl Difference {
    /// The outcome's name in counts, metrics and samples.
    pub fn label(&self) -> &'static str {
        match self {
            Difference::Dropped => "dropped",
            Difference::Kept => "kept",
            Difference::Changed(_) => "changed",
            Difference::Failed(_) => "failed",
            Difference::Passed => "passed",
        }
    }
}

/// Compares what the live version and the candidate made of the same
/// input event; `None` when they agree (failing both counts as agreeing).
pub fn compare(live: &Outcome, candidate: &Outcome) -> Option<Difference> {
    match (live, candidate) {
        (Err(_), Err(_)) => None,
        (Ok(_), Err(f)) => Some(Difference::Failed(f.kind.label())),
        (Err(_), Ok(_)) => Some(Difference::Passed),
        (Ok(l), Ok(c)) if l.is_empty() && c.is_empty() => None,
        (Ok(_), Ok(c)) if c.is_empty() => Some(Difference::Dropped),
        (Ok(l), Ok(_)) if l.is_empty() => Some(Difference::Kept),
        (Ok(l), Ok(c)) => {
            let mut fields = Vec::new();
            for (a, b) in l.iter().zip(c) {
                event_fields(a, b, &mut fields);
            }
            if l.len() != c.len() {
                fields.push("events".to_owned());
            }
            fields.sort_unstable();
            fields.dedup();
            (!fields.is_empty()).then_some(Difference::Changed(fields))
        }
    }
}

/// Adds to `fields` what differs between two events.
fn event_fields(a: &ChangeEvent, b: &ChangeEvent, fields: &mut Vec<String>) {
    if a.op != b.op {
        fields.push("op".to_owned());
    }
    if (&a.source.schema, &a.source.table) != (&b.source.schema, &b.source.table) {
        fields.push("table".to_owned());
    }
    // Version stamps are the host's, not the plugin's.
    let (mut sa, mut sb) = (a.source.clone(), b.source.clone());
    (sa.plugins, sb.plugins) = (None, None);
    (sa.schema, sb.schema) = (Name::default(), Name::default());
    (sa.table, sb.table) = (Name::default(), Name::default());
    if sa != sb {
        fields.push("source".to_owned());
    }
    row_fields("key", &a.key, &b.key, fields);
    let empty = Vec::new();
    for (image, x, y) in [
        ("before", &a.before, &b.before),
        ("after", &a.after, &b.after),
    ] {
        match (x, y) {
            (None, None) => {}
            (Some(x), Some(y)) => row_fields(image, x, y, fields),
            (Some(x), None) => row_fields(image, x, &empty, fields),
            (None, Some(y)) => row_fields(image, &empty, y, fields),
        }
    }
}

/// Adds `image.column` for each column whose value differs, or that only
/// one of the rows has.
fn row_fields(image: &str, a: &[Column], b: &[Column], fields: &mut Vec<String>) {
    let value =
        |row: &[Column], name: &str| row.iter().find(|c| c.name == name).map(|c| c.value.clone());
    for c in a {
        if value(b, &c.name).as_ref() != Some(&c.value) {
            fields.push(format!("{image}.{}", c.name));
        }
    }
    for c in b {
        if value(a, &c.name).is_none() {
            fields.push(format!("{image}.{}", c.name));
        }
    }
}

/// A candidate's differences so far, by outcome and by field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Input events compared.
    pub compared: u64,
    /// Differences by [`Difference::label`]; events not here agreed.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Changed events by field (`after.email`).
    pub fields: BTreeMap<String, u64>,
}

impl Counts {
    /// Counts one comparison.
    pub fn add(&mut self, difference: Option<&Difference>) {
        self.compared += 1;
        let Some(d) = difference else {
            return;
        };
        *self.outcomes.entry(d.label()).or_default() += 1;
        if let Difference::Changed(fields) = d {
            for f in fields {
                *self.fields.entry(f.clone()).or_default() += 1;
            }
        }
    }

    /// Input events where the candidate and the live version differed.
    pub fn differed(&self) -> u64 {
        self.outcomes.values().sum()
    }
}

/// One difference as a JSON document: the outcome, the fields that
/// differ, the table, and both sides (the events made, or the failure).
pub fn sample(difference: &Difference, live: &Outcome, candidate: &Outcome) -> Json {
    let side = |o: &Outcome| match o {
        Ok(events) => Json::Array(events.iter().map(envelope::to_envelope).collect()),
        Err(f) => json!({"failed": f.kind.label(), "reason": f.message}),
    };
    // Every difference has at least one side with an event.
    let event = [live, candidate]
        .into_iter()
        .find_map(|o| match o {
            Ok(events) => events.first(),
            Err(f) => Some(&*f.event),
        })
        .expect("a difference has an event on one side");
    let fields = match difference {
        Difference::Changed(f) => f.clone(),
        _ => Vec::new(),
    };
    json!({
        "outcome": difference.label(),
        "fields": fields,
        "table": format!("{}.{}", event.source.schema, event.source.table),
        "live": side(live),
        "candidate": side(candidate),
    })
}

/// A candidate version running in the shadow of a live transformer.
pub struct Shadow {
    plugin: TransformerPlugin,
    /// `name@version+digest`, as stamps show versions.
    pub version: String,
    pub counts: Counts,
    samples: SampleFile,
}

impl Shadow {
    /// A candidate whose samples go to `<state_dir>/shadow-<plugin>.jsonl`.
    pub fn new(plugin: TransformerPlugin, version: String, state_dir: &Path, name: &str) -> Self {
        Shadow {
            plugin,
            version,
            counts: Counts::default(),
            samples: SampleFile::new(state_dir.join(format!("shadow-{name}.jsonl"))),
        }
    }

    /// Runs the candidate over `input`, the events the live version
    /// (`live_version`) was given, and compares its outcomes with `live`.
    pub fn observe(&mut self, input: Vec<ChangeEvent>, live: &[Outcome], live_version: &str) {
        let candidate = self.plugin.transform(input);
        for (l, c) in live.iter().zip(&candidate) {
            let difference = compare(l, c);
            self.counts.add(difference.as_ref());
            if let Some(d) = difference
                && self.counts.differed() <= SAMPLES
            {
                let mut line = sample(&d, l, c);
                line["versions"] = json!({"live": live_version, "candidate": self.version});
                self.samples.write(&line);
            }
        }
        self.samples.flush();
    }
}

/// The sample file, appended to; a failure to write is logged once and
/// never stops the pipeline.
struct SampleFile {
    path: PathBuf,
    out: Option<std::io::BufWriter<std::fs::File>>,
    failed: bool,
}

impl SampleFile {
    fn new(path: PathBuf) -> Self {
        SampleFile {
            path,
            out: None,
            failed: false,
        }
    }

    fn write(&mut self, line: &Json) {
        if self.failed {
            return;
        }
        if self.out.is_none() {
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
            {
                Ok(f) => self.out = Some(std::io::BufWriter::new(f)),
                Err(e) => return self.fail(&e),
            }
        }
        let out = self.out.as_mut().expect("opened");
        if let Err(e) = writeln!(out, "{line}") {
            self.fail(&e);
        }
    }

    fn flush(&mut self) {
        if let Some(out) = &mut self.out
            && let Err(e) = out.flush()
        {
            self.fail(&e);
        }
    }

    fn fail(&mut self, e: &std::io::Error) {
        warn!(file = %self.path.display(), error = %e, "Cannot write shadow samples; counting goes on.");
        self.failed = true;
        self.out = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_core::{Op, SourceInfo, Value};
    use weir_plugin::FailureKind;

    fn event(email: &str) -> ChangeEvent {
        ChangeEvent {
            op: Op::Create,
            source: SourceInfo {
                schema: "public".into(),
                table: "users".into(),
                ..SourceInfo::default()
            },
            key: vec![Column::new("id", Value::Int(1))],
            before: None,
            after: Some(vec![
                Column::new("id", Value::Int(1)),
                Column::new("email", Value::Text(email.into())),
            ]),
        }
    }

    fn failure(e: ChangeEvent) -> EventFailure {
        EventFailure {
            plugin: "p".into(),
            index: 0,
            kind: FailureKind::Trap,
            message: "boom".into(),
            event: Box::new(e),
        }
    }

    #[test]
    fn outcomes_are_told_apart() {
        let kept: Outcome = Ok(vec![event("a@x.org")]);
        let masked: Outcome = Ok(vec![event("***")]);
        let dropped: Outcome = Ok(vec![]);
        let failed: Outcome = Err(failure(event("a@x.org")));
        assert_eq!(compare(&kept, &kept), None);
        assert_eq!(compare(&dropped, &dropped), None);
        assert_eq!(compare(&failed, &failed), None);
        assert_eq!(compare(&kept, &dropped), Some(Difference::Dropped));
        assert_eq!(compare(&dropped, &kept), Some(Difference::Kept));
        assert_eq!(compare(&kept, &failed), Some(Difference::Failed("trap")));
        assert_eq!(compare(&failed, &kept), Some(Difference::Passed));
        assert_eq!(
            compare(&kept, &masked),
            Some(Difference::Changed(vec!["after.email".into()]))
        );
        let twice: Outcome = Ok(vec![event("a@x.org"), event("a@x.org")]);
        assert_eq!(
            compare(&kept, &twice),
            Some(Difference::Changed(vec!["events".into()]))
        );
    }

    #[test]
    fn columns_only_one_side_has_differ_and_stamps_do_not() {
        let mut extra = event("a@x.org");
        extra
            .after
            .as_mut()
            .unwrap()
            .push(Column::new("note", Value::Null));
        extra.source.plugins = Some("mask=mask@2".into());
        let mut renamed = event("a@x.org");
        renamed.source.table = "people".into();
        renamed.op = Op::Update;
        assert_eq!(
            compare(&Ok(vec![event("a@x.org")]), &Ok(vec![extra])),
            Some(Difference::Changed(vec!["after.note".into()]))
        );
        assert_eq!(
            compare(&Ok(vec![event("a@x.org")]), &Ok(vec![renamed])),
            Some(Difference::Changed(vec!["op".into(), "table".into()]))
        );
    }

    #[test]
    fn counts_add_up_by_outcome_and_field() {
        let mut counts = Counts::default();
        counts.add(None);
        counts.add(Some(&Difference::Dropped));
        counts.add(Some(&Difference::Changed(vec!["after.email".into()])));
        counts.add(Some(&Difference::Changed(vec![
            "after.email".into(),
            "key.id".into(),
        ])));
        assert_eq!(counts.compared, 4);
        assert_eq!(counts.differed(), 3);
        assert_eq!(counts.outcomes["changed"], 2);
        assert_eq!(counts.fields["after.email"], 2);
        assert_eq!(counts.fields["key.id"], 1);
    }

    #[test]
    fn a_sample_shows_both_sides() {
        let live: Outcome = Ok(vec![event("a@x.org")]);
        let candidate: Outcome = Err(failure(event("a@x.org")));
        let d = compare(&live, &candidate).unwrap();
        let line = sample(&d, &live, &candidate);
        assert_eq!(line["outcome"], "failed");
        assert_eq!(line["table"], "public.users");
        assert_eq!(line["live"][0]["after"]["email"], "a@x.org");
        assert_eq!(line["candidate"]["failed"], "trap");
    }
}
