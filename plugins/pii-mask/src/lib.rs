//! `pii-mask`: a transformer that masks personal data in change events.
//!
//! For each column of the before and after images, the rules are tried in
//! order and the first that matches decides what becomes of the value. A
//! rule matches by column name (`columns`, case-insensitive globs), by
//! value (`detector`: `email`, `phone`, `ssn` (SSNs and ITINs), `card`,
//! `iban`, `ip` or `any`), or by both. After the rules, columns whose
//! names hint at personal data (`ssn`, `tax_id`, `passport`, `dob`, ...;
//! `name_hints`) are masked whatever their values look like: for a masking
//! plugin a miss is worse than an extra mask. The key image is touched
//! only by rules that name the column: a detector or a hint alone never
//! rewrites a row's identity.
//!
//! Actions:
//! - `mask` keeps the value's shape: `a***@example.com`,
//!   `****-****-****-1111`, `***-**-6789`, `+* (***) ***-4567`,
//!   `**** **** **** **** **30 00` (IBAN), `***.***.*.**` (IP), and for
//!   other text as many `*` as it has characters (`keep_last` keeps that
//!   many trailing characters, or digits for cards, phones and SSNs,
//!   letters and digits for IBANs and IPs).
//!   A name rule picks the shape by running the detectors on the value.
//! - `hash` replaces text with the lower-case hex HMAC-SHA256 of its exact
//!   bytes under `hash_key`: the same value always hashes the same, so
//!   hashed columns still join.
//! - `redact` makes the value null; `drop` removes the column.
//!
//! Detectors look only at text values, trimmed, and match only when the
//! whole value is of their kind. Masking and hashing produce text, which
//! would not fit a column of another type, so a name rule that masks or
//! hashes a non-text value (an int, a decimal, a uuid, bytes, ...) redacts
//! it instead. Null values and unchanged TOAST values are left as they are
//! by every action but `drop`.
//!
//! With no configuration at all (`{}`), every column named like personal
//! data and every text value a detector recognises is masked, in every
//! table. The configuration is described in
//! [`PiiMaskConfig`].

mod action;
mod config;
mod detect;

use std::collections::HashMap;

use weir_plugin_sdk::{
    ColumnRef, Config, Event, Image, Outcome, SourceRef, Transformer, Value, ValueRef,
};
use wildmatch::WildMatch;

pub use action::{Hasher, mask_alphanumeric, mask_digits, mask_email, mask_text};
use config::{Action, DetectorName, Rule};
pub use config::{DEFAULT_NAME_HINTS, PiiMaskConfig, RuleConfig};
pub use detect::{Kind, classify, is_card, is_email, is_iban, is_ip, is_phone, is_ssn};

/// The masking transformer. Build it with [`Transformer::new`].
pub struct PiiMask {
    rules: Vec<Rule>,
    tables: Option<Vec<WildMatch>>,
    /// The plan of every column of the before and after images when no
    /// rule names columns (the key image is then never touched): no
    /// per-table state is needed at all.
    uniform: Option<ColumnPlan>,
    cache: TableCache,
}

impl std::fmt::Debug for PiiMask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Rules hold the hash key's state; show only their count.
        f.debug_struct("PiiMask")
            .field("rules", &self.rules.len())
            .field("tables", &self.tables)
            .field("cached_tables", &self.cache.entries.len())
            .finish()
    }
}

impl Transformer for PiiMask {
    fn new(config: Config) -> Result<Self, String> {
        let settings = config.parse::<PiiMaskConfig>()?.validate()?;
        let uniform = settings
            .rules
            .iter()
            .all(|r| r.columns.is_none())
            .then(|| ColumnPlan::new(&settings.rules, "", false));
        Ok(PiiMask {
            rules: settings.rules,
            tables: settings.tables,
            uniform,
            cache: TableCache::default(),
        })
    }

    fn transform(&mut self, event: &mut Event<'_>) -> Outcome {
        let PiiMask {
            rules,
            tables,
            uniform,
            cache,
        } = self;
        match uniform {
            Some(plan) => {
                if let Some(globs) = tables
                    && !cache.entry(event.source(), globs).selected
                {
                    return Outcome::Keep;
                }
                for image in [Image::Before, Image::After] {
                    let len = event.image(image).map_or(0, |r| r.len());
                    for i in 0..len {
                        apply(rules, plan, event, image, i);
                    }
                }
            }
            None => {
                let entry = cache.entry(event.source(), tables.as_deref().unwrap_or(&[]));
                if !entry.selected {
                    return Outcome::Keep;
                }
                for image in [Image::Key, Image::Before, Image::After] {
                    let Some(row) = event.image(image) else {
                        continue;
                    };
                    let layout = entry.layout(rules, row.columns(), image == Image::Key);
                    if layout.inert {
                        continue;
                    }
                    for (i, plan) in layout.plans.iter().enumerate() {
                        apply(rules, plan, event, image, i);
                    }
                }
            }
        }
        Outcome::Keep
    }
}

weir_plugin_sdk::export_transformer!(PiiMask);

/// Which rules can apply to one column, decided from its name alone.
#[derive(Debug)]
enum ColumnPlan {
    /// No rule can apply.
    Skip,
    /// This rule applies whatever the value.
    Always(usize),
    /// The first of these rules whose detector recognises the value
    /// applies; a rule without a detector (only ever the last) applies to
    /// any value.
    Detect(Box<[usize]>),
}

impl ColumnPlan {
    /// The plan of column `name` of an image (`key_image`: the key image).
    fn new(rules: &[Rule], name: &str, key_image: bool) -> ColumnPlan {
        let mut candidates = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            if !rule.names(name, key_image) {
                continue;
            }
            candidates.push(i);
            if rule.detector.is_none() {
                break;
            }
        }
        match candidates[..] {
            [] => ColumnPlan::Skip,
            [only] if rules[only].detector.is_none() => ColumnPlan::Always(only),
            _ => ColumnPlan::Detect(candidates.into_boxed_slice()),
        }
    }
}

/// Decides column `index` of `image` and records the change, if any.
fn apply(rules: &[Rule], plan: &ColumnPlan, event: &mut Event<'_>, image: Image, index: usize) {
    if let ColumnPlan::Skip = plan {
        return;
    }
    let value = column(event, image, index).value;
    let (rule, kind) = match plan {
        ColumnPlan::Skip => return,
        ColumnPlan::Always(r) => (&rules[*r], None),
        ColumnPlan::Detect(candidates) => {
            let text = match value {
                ValueRef::Text(s) => Some(s.trim()),
                _ => None,
            };
            let found = candidates.iter().find_map(|&r| {
                let rule = &rules[r];
                match (rule.detector, text) {
                    (None, _) => Some((rule, None)),
                    (Some(d), Some(t)) => detect(d, t).map(|kind| (rule, Some(kind))),
                    (Some(_), None) => None,
                }
            });
            match found {
                Some(found) => found,
                None => return,
            }
        }
    };
    if rule.hint && matches!(value, ValueRef::Boolean(_)) {
        return;
    }
    match change(&rule.action, value, kind) {
        Some(Some(v)) => event.set(image, index, v),
        Some(None) => event.remove(image, index),
        None => {}
    }
}

/// Column `index` of `image`, copied out of the event so that the event
/// can be patched while the batch-borrowed value is still in use.
fn column<'a>(event: &Event<'a>, image: Image, index: usize) -> ColumnRef<'a> {
    event
        .image(image)
        .expect("only images the event has are visited")
        .columns()[index]
}

fn detect(detector: DetectorName, text: &str) -> Option<Kind> {
    let (found, kind) = match detector {
        DetectorName::Any => return classify(text),
        DetectorName::Email => (is_email(text), Kind::Email),
        DetectorName::Phone => (is_phone(text), Kind::Phone),
        DetectorName::Ssn => (is_ssn(text), Kind::Ssn),
        DetectorName::Card => (is_card(text), Kind::Card),
        DetectorName::Iban => (is_iban(text), Kind::Iban),
        DetectorName::Ip => (is_ip(text), Kind::Ip),
    };
    found.then_some(kind)
}

/// What `action` makes of `value`: None to leave it, Some(None) to remove
/// the column, Some(Some(v)) to replace it. `kind` is what a detector found
/// the (trimmed) value to be, if a detector decided the rule.
fn change(action: &Action, value: ValueRef<'_>, kind: Option<Kind>) -> Option<Option<Value>> {
    if let Action::Drop = action {
        return Some(None);
    }
    let text = match value {
        ValueRef::Null | ValueRef::Unchanged => return None,
        ValueRef::Text(s) => s,
        // Masked or hashed text would not fit a column of another type.
        _ => return Some(Some(Value::Null)),
    };
    let new = match action {
        Action::Mask { keep_last } => {
            let trimmed = text.trim();
            if trimmed.is_empty() {
                return None;
            }
            let kind = kind.or_else(|| classify(trimmed));
            Value::Text(action::mask(trimmed, kind, *keep_last))
        }
        Action::Hash(hasher) => Value::Text(hasher.hash(text)),
        Action::Redact => Value::Null,
        Action::Drop => unreachable!("handled above"),
    };
    Some(Some(new))
}

/// Per-table state: whether the table is selected, and the column plans
/// of the image layouts seen, so that globs run once per layout rather
/// than once per column per event.
#[derive(Default)]
struct TableCache {
    /// Table name -> indexes into `entries` (one per schema).
    by_table: HashMap<Box<str>, Vec<usize>>,
    entries: Vec<TableEntry>,
    /// The entry of the previous event: batches tend to run by table.
    last: Option<usize>,
}

struct TableEntry {
    schema: Box<str>,
    table: Box<str>,
    selected: bool,
    /// Layouts of the before and after images, then of the key image.
    layouts: [Vec<Layout>; 2],
}

/// Layouts remembered per table and image kind. A table has one or two
/// (full rows, key-only before images); more appear only after DDL.
const MAX_LAYOUTS: usize = 8;

struct Layout {
    names: Box<[Box<str>]>,
    plans: Box<[ColumnPlan]>,
    /// No column of this layout can change.
    inert: bool,
}

impl Layout {
    fn fits(&self, columns: &[ColumnRef<'_>]) -> bool {
        self.names.len() == columns.len()
            && self.names.iter().zip(columns).all(|(n, c)| **n == *c.name)
    }
}

impl TableCache {
    /// The entry of the event's table; `tables` empty selects every table.
    fn entry(&mut self, source: &SourceRef<'_>, tables: &[WildMatch]) -> &mut TableEntry {
        if let Some(i) = self.last
            && self.is(i, source)
        {
            return &mut self.entries[i];
        }
        let found = self
            .by_table
            .get(source.table)
            .and_then(|ids| ids.iter().copied().find(|&i| self.is(i, source)));
        let i = match found {
            Some(i) => i,
            None => {
                let selected = tables.is_empty() || {
                    let name = if source.schema.is_empty() {
                        source.table.to_owned()
                    } else {
                        format!("{}.{}", source.schema, source.table)
                    };
                    tables.iter().any(|g| g.matches(&name))
                };
                self.entries.push(TableEntry {
                    schema: source.schema.into(),
                    table: source.table.into(),
                    selected,
                    layouts: Default::default(),
                });
                let i = self.entries.len() - 1;
                self.by_table
                    .entry(source.table.into())
                    .or_default()
                    .push(i);
                i
            }
        };
        self.last = Some(i);
        &mut self.entries[i]
    }

    fn is(&self, i: usize, source: &SourceRef<'_>) -> bool {
        let e = &self.entries[i];
        *e.table == *source.table && *e.schema == *source.schema
    }
}

impl TableEntry {
    /// The plans for an image with these columns, built on first sight.
    fn layout(&mut self, rules: &[Rule], columns: &[ColumnRef<'_>], key_image: bool) -> &Layout {
        let layouts = &mut self.layouts[usize::from(key_image)];
        let i = match layouts.iter().position(|l| l.fits(columns)) {
            Some(i) => i,
            None => {
                if layouts.len() == MAX_LAYOUTS {
                    layouts.remove(0);
                }
                let plans: Box<[ColumnPlan]> = columns
                    .iter()
                    .map(|c| ColumnPlan::new(rules, c.name, key_image))
                    .collect();
                layouts.push(Layout {
                    names: columns.iter().map(|c| c.name.into()).collect(),
                    inert: plans.iter().all(|p| matches!(p, ColumnPlan::Skip)),
                    plans,
                });
                layouts.len() - 1
            }
        };
        &layouts[i]
    }
}
