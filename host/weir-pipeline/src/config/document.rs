//! Reading a pipeline's TOML text: syntax, `${ENV}` interpolation of every
//! string value, and deserializing each section with the field path of
//! every structural error (a missing field, an unknown field, a value of
//! the wrong type or out of range), collecting them all rather than
//! stopping at the first.
//!
//! serde stops at a section's first error. To find the next, the reader
//! removes the key at fault from a copy of the section and reads it again,
//! until it reads or a field is missing (serde reports one missing field at
//! a time, after every present field is fine). Spans into the original
//! text survive the removal, so every error keeps its line, column and
//! snippet of the raw text.

use std::borrow::Cow;
use std::ops::Range;

use serde::de::{self, Deserializer as _};
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue, ValueDeserializer};
use weir_connect::{ConfigError, ConfigErrors};

use super::interpolate::interpolate;

/// Most structural errors reported for one section; past that the file is
/// more wrong than right.
const MAX_ERRORS_PER_SECTION: usize = 32;

/// Top-level sections in the order their errors are reported.
const SECTION_ORDER: [&str; 9] = [
    "name",
    "state_dir",
    "source",
    "plugins",
    "router",
    "sinks",
    "pipeline",
    "trust",
    "admin",
];

/// A parsed config text with its interpolated values, and the errors found
/// so far.
pub(super) struct Document<'t> {
    text: &'t str,
    /// The document after interpolation. Spans point into `text`.
    root: Spanned<DeTable<'t>>,
    /// `(value, raw text)` of every interpolated string: values are
    /// replaced by their raw text in error messages, so that a secret never
    /// shows in one.
    interpolated: Vec<(String, String)>,
    /// Problems found, in order. A field whose interpolation failed keeps
    /// its raw text; the caller leaves its path out of later checks.
    pub errors: Vec<ConfigError>,
}

impl<'t> Document<'t> {
    /// Parses `text` and interpolates `${NAME}` in every string value with
    /// `env`. A syntax error is the one error returned.
    pub fn parse(
        text: &'t str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Document<'t>, ConfigErrors> {
        let mut root =
            DeTable::parse(text).map_err(|e| ConfigErrors::one("", e.to_string().trim_end()))?;
        let mut doc = Document {
            text,
            root: Spanned::new(0..0, DeTable::new()),
            interpolated: Vec::new(),
            errors: Vec::new(),
        };
        let mut keys: Vec<(usize, usize, String)> = root
            .get_ref()
            .keys()
            .enumerate()
            .map(|(i, k)| {
                let key = k.get_ref().to_string();
                let rank = SECTION_ORDER
                    .iter()
                    .position(|s| *s == key)
                    .unwrap_or(SECTION_ORDER.len());
                (rank, i, key)
            })
            .collect();
        keys.sort();
        for (_, _, key) in keys {
            if let Some(value) = root.get_mut().get_mut(key.as_str()) {
                doc.interpolate_value(&key, value, env);
            }
        }
        doc.root = root;
        Ok(doc)
    }

    fn interpolate_value(
        &mut self,
        path: &str,
        value: &mut Spanned<DeValue<'t>>,
        env: &dyn Fn(&str) -> Option<String>,
    ) {
        match value.get_mut() {
            DeValue::String(s) if s.contains('$') => match interpolate(s, env) {
                Ok(new) => {
                    if new != **s {
                        self.interpolated.push((new.clone(), s.to_string()));
                    }
                    *s = Cow::Owned(new);
                }
                Err(message) => {
                    self.errors.push(ConfigError {
                        path: path.to_owned(),
                        message,
                    });
                }
            },
            DeValue::Array(a) => {
                for (n, e) in a.iter_mut().enumerate() {
                    self.interpolate_value(&format!("{path}[{n}]"), e, env);
                }
            }
            DeValue::Table(t) => {
                for (k, e) in t.iter_mut() {
                    self.interpolate_value(&format!("{path}.{}", k.get_ref()), e, env);
                }
            }
            _ => {}
        }
    }

    /// The whole document as a table value.
    pub fn root(&self) -> Spanned<DeValue<'t>> {
        Spanned::new(
            self.root.span(),
            DeValue::Table(self.root.get_ref().clone()),
        )
    }

    /// The top-level value under `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Spanned<DeValue<'t>>> {
        self.root.get_ref().get(key)
    }

    /// Records an error about `value` at `path`, with the value's line and
    /// snippet.
    pub fn error_at(&mut self, path: &str, value: &Spanned<DeValue<'t>>, message: &str) {
        let mut e = spanned_error(value, message);
        e.set_input(Some(self.text));
        let message = self.redact(e.to_string().trim_end());
        self.errors.push(ConfigError {
            path: path.to_owned(),
            message,
        });
    }

    /// Reads `value` (the section at `path`) with `read`, recording every
    /// structural error. Returns what was read, even when some keys had to
    /// be left out (their errors are recorded); `None` when it could not be
    /// read at all.
    pub fn read<T>(
        &mut self,
        path: &str,
        value: Spanned<DeValue<'t>>,
        read: impl Fn(ValueDeserializer<'t>) -> Result<T, toml::de::Error>,
    ) -> Option<T> {
        let mut work = value;
        let mut reported: Vec<String> = Vec::new();
        for _ in 0..MAX_ERRORS_PER_SECTION {
            let mut e = match read(ValueDeserializer::from(work.clone())) {
                Ok(t) => return Some(t),
                Err(e) => e,
            };
            let span = e.span();
            let mut at = span
                .clone()
                .filter(|s| *s != self.root.span())
                .map(|s| key_path_at(self.root.get_ref(), s))
                .filter(|p| p.starts_with(path))
                .unwrap_or_else(|| path.to_owned());
            let missing = e
                .message()
                .strip_prefix("missing field `")
                .and_then(|m| m.strip_suffix('`'))
                .map(str::to_owned);
            if let Some(field) = &missing {
                at = if at.is_empty() {
                    field.clone()
                } else {
                    format!("{at}.{field}")
                };
                if reported.contains(&at) {
                    // Removed for an error of its own, already reported.
                    return None;
                }
            }
            e.set_input(Some(self.text));
            let message = self.redact(e.to_string().trim_end());
            reported.push(at.clone());
            self.errors.push(ConfigError { path: at, message });
            let removed = missing.is_none() && span.is_some_and(|s| remove_at(&mut work, &s));
            if !removed {
                return None;
            }
        }
        None
    }

    /// `message` with every interpolated value replaced by its raw text.
    fn redact(&self, message: &str) -> String {
        let mut message = message.to_owned();
        for (value, raw) in &self.interpolated {
            if !value.is_empty() && message.contains(value.as_str()) {
                message = message.replace(value.as_str(), raw);
            }
        }
        message
    }
}

/// A toml error carrying `message` and the span of `value`.
fn spanned_error(value: &Spanned<DeValue<'_>>, message: &str) -> toml::de::Error {
    struct Refuse<'m>(&'m str);
    impl<'de> de::Visitor<'de> for Refuse<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            Err(E::custom(self.0))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            Err(E::custom(self.0))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            Err(E::custom(self.0))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            Err(E::custom(self.0))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Err(E::custom(self.0))
        }
        fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
            Err(de::Error::custom(self.0))
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
            Err(de::Error::custom(self.0))
        }
    }
    match ValueDeserializer::from(value.clone()).deserialize_any(Refuse(message)) {
        Err(e) => e,
        Ok(()) => unreachable!("the visitor refuses every value"),
    }
}

/// Removes, from `value`, the deepest key or array element whose key or
/// value span holds `target`. Returns whether something was removed.
fn remove_at(value: &mut Spanned<DeValue<'_>>, target: &Range<usize>) -> bool {
    let holds = |span: Range<usize>| span.start <= target.start && target.end <= span.end;
    // Go deeper when the target lies strictly inside the child's value and
    // something in there holds it; else the child itself is at fault.
    let deeper = |child: &mut Spanned<DeValue<'_>>| {
        holds(child.span()) && child.span() != *target && remove_at(child, target)
    };
    match value.get_mut() {
        DeValue::Table(t) => {
            let Some(key) = t
                .iter()
                .find(|(k, v)| holds(k.span()) || holds(v.span()))
                .map(|(k, _)| k.get_ref().to_string())
            else {
                return false;
            };
            let child = t.get_mut(key.as_str()).expect("found above");
            if !deeper(child) {
                t.remove(key.as_str());
            }
            true
        }
        DeValue::Array(a) => {
            let Some(i) = a.iter().position(|v| holds(v.span())) else {
                return false;
            };
            if !deeper(&mut a.as_mut()[i]) {
                let mut kept = DeArray::new();
                for (n, v) in a.iter().enumerate() {
                    if n != i {
                        kept.push(v.clone());
                    }
                }
                *a = kept;
            }
            true
        }
        _ => false,
    }
}

/// The path (`sinks[1].dir`) of the deepest key or value of the document
/// whose span holds `span`, or `""` if none does.
pub(super) fn key_path_at(root: &DeTable<'_>, span: Range<usize>) -> String {
    let mut best: Option<(usize, String)> = None;
    search_table(root, "", &span, &mut best);
    best.map(|(_, p)| p).unwrap_or_default()
}

fn search_table(
    table: &DeTable<'_>,
    prefix: &str,
    target: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        consider(key.span(), &path, target, best);
        search_value(value, &path, target, best);
    }
}

fn search_value(
    value: &Spanned<DeValue<'_>>,
    path: &str,
    target: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    consider(value.span(), path, target, best);
    match value.get_ref() {
        DeValue::Table(t) => search_table(t, path, target, best),
        DeValue::Array(a) => {
            for (n, e) in a.iter().enumerate() {
                search_value(e, &format!("{path}[{n}]"), target, best);
            }
        }
        _ => {}
    }
}

/// Keeps `path` if its span holds `target` and is the narrowest so far.
fn consider(
    span: Range<usize>,
    path: &str,
    target: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    let holds = span.start <= target.start && target.end <= span.end;
    let width = span.len();
    if holds && best.as_ref().is_none_or(|(w, _)| width <= *w) {
        *best = Some((width, path.to_owned()));
    }
}

/// `table` without the keys in `drop`, spans kept.
pub(super) fn without<'t>(table: &Spanned<DeValue<'t>>, drop: &[&str]) -> Spanned<DeValue<'t>> {
    pick(table, |k| !drop.contains(&k))
}

/// `table` with only the keys in `keep`, spans kept.
pub(super) fn only<'t>(table: &Spanned<DeValue<'t>>, keep: &[&str]) -> Spanned<DeValue<'t>> {
    pick(table, |k| keep.contains(&k))
}

fn pick<'t>(table: &Spanned<DeValue<'t>>, keep: impl Fn(&str) -> bool) -> Spanned<DeValue<'t>> {
    let mut out = DeTable::new();
    if let DeValue::Table(t) = table.get_ref() {
        for (k, v) in t.iter() {
            if keep(k.get_ref()) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Spanned::new(table.span(), DeValue::Table(out))
}
