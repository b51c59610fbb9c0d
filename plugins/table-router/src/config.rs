//! The configuration users write, and its validation into compiled rules.
//!
//! Every problem is reported at once, each with the path of its field.

use std::collections::HashMap;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use wildmatch::WildMatch;

use crate::template::Template;

/// The template used when the configuration gives none.
pub const DEFAULT_TEMPLATE: &str = "{database}.{schema}.{table}";

/// The plugin's configuration. `{}` routes every event to
/// `{database}.{schema}.{table}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableRouterConfig {
    /// The destination template of events no other rule routes. Placeholders:
    /// `{database}`, `{schema}`, `{table}`, `{op}` (`create`, `update`,
    /// `delete`, `truncate`, `read`), `{connector}`, and `{column:NAME}`, the
    /// value of column NAME of the after image (the before image for
    /// deletes) as text. `{{` and `}}` are literal braces. Defaults to
    /// `{database}.{schema}.{table}`.
    #[serde(default, deserialize_with = "to")]
    pub to: Option<String>,

    /// Per-table destinations, tried in order before anything else: the
    /// first entry with a glob matching the event's table routes it. Each is
    /// `{"tables": [GLOB, ...], "to": TEMPLATE}`; see [`OverrideConfig`].
    ///
    /// Kept as raw JSON here so that each entry is parsed on its own and an
    /// error can say which one it is about.
    #[serde(default, deserialize_with = "overrides")]
    pub overrides: Option<Vec<serde_json::Value>>,

    /// Routing on a column value, tried after `overrides`; see
    /// [`ByColumnConfig`].
    #[serde(default, deserialize_with = "by_column")]
    pub by_column: Option<ByColumnConfig>,
}

/// One entry of `overrides`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideConfig {
    /// Table globs (`*`, `?`, case-insensitive), matched against the
    /// event's `schema.table` and its bare `table`.
    pub tables: Vec<String>,
    /// The destination template of the matching tables.
    pub to: String,
}

/// Routing on the value of one column.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByColumnConfig {
    /// The column whose value (as text) picks the route, read from the
    /// after image, or the before image for deletes. Events whose row lacks
    /// it are left to the `to` template.
    pub column: String,

    /// Column value -> destination template. Keys are compared with the
    /// value as text: `"true"`, `"42"`, `"eu"`.
    pub routes: serde_json::Map<String, serde_json::Value>,

    /// The destination template for values not in `routes` (and for null,
    /// bytes and unchanged values). Leave out to leave those events to the
    /// `to` template.
    #[serde(default)]
    pub default: Option<String>,

    /// Table globs this rule applies to (`*`, `?`, case-insensitive).
    /// Leave out to apply it to every table that has the column.
    #[serde(default)]
    pub tables: Option<Vec<String>>,
}

/// A compiled `overrides` entry.
#[derive(Debug)]
pub struct Override {
    pub tables: Vec<WildMatch>,
    pub to: Template,
}

/// A compiled `by_column`.
#[derive(Debug)]
pub struct ByColumn {
    /// None: every table.
    pub tables: Option<Vec<WildMatch>>,
    pub column: String,
    pub routes: HashMap<String, Template>,
    pub default: Option<Template>,
}

/// The configuration, validated and compiled.
#[derive(Debug)]
pub struct Settings {
    pub to: Template,
    pub overrides: Vec<Override>,
    pub by_column: Option<ByColumn>,
}

impl TableRouterConfig {
    /// Validates and compiles the configuration, reporting every problem.
    pub fn validate(self) -> Result<Settings, String> {
        let mut errors = Vec::new();
        let to = template(
            "to",
            self.to.as_deref().unwrap_or(DEFAULT_TEMPLATE),
            &mut errors,
        );
        let overrides = self
            .overrides
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .filter_map(|(i, doc)| compile_override(i, doc, &mut errors))
            .collect();
        let by_column = self
            .by_column
            .and_then(|b| compile_by_column(b, &mut errors));
        match to {
            Some(to) if errors.is_empty() => Ok(Settings {
                to,
                overrides,
                by_column,
            }),
            _ => Err(format!("invalid plugin config: {}", errors.join("; "))),
        }
    }
}

fn template(path: &str, text: &str, errors: &mut Vec<String>) -> Option<Template> {
    Template::parse(text)
        .map_err(|e| errors.push(format!("{path}: {e}")))
        .ok()
}

fn globs(path: &str, patterns: &[String], errors: &mut Vec<String>) -> Vec<WildMatch> {
    if patterns.is_empty() {
        errors.push(format!("{path}: an empty list matches no table"));
    }
    for (i, p) in patterns.iter().enumerate() {
        if p.is_empty() {
            errors.push(format!("{path}[{i}]: an empty pattern matches no table"));
        }
    }
    patterns
        .iter()
        .map(|p| WildMatch::new_case_insensitive(p))
        .collect()
}

fn compile_override(
    i: usize,
    doc: serde_json::Value,
    errors: &mut Vec<String>,
) -> Option<Override> {
    let config: OverrideConfig = serde_json::from_value(doc)
        .map_err(|e| errors.push(format!("overrides[{i}]: {e}")))
        .ok()?;
    let tables = globs(&format!("overrides[{i}].tables"), &config.tables, errors);
    let to = template(&format!("overrides[{i}].to"), &config.to, errors)?;
    Some(Override { tables, to })
}

fn compile_by_column(config: ByColumnConfig, errors: &mut Vec<String>) -> Option<ByColumn> {
    let before = errors.len();
    if config.column.is_empty() {
        errors.push("by_column.column: must not be empty".to_owned());
    }
    if config.routes.is_empty() {
        errors.push("by_column.routes: an empty map routes nothing".to_owned());
    }
    let mut routes = HashMap::with_capacity(config.routes.len());
    for (value, to) in &config.routes {
        let path = format!("by_column.routes.{value}");
        match to {
            serde_json::Value::String(text) => {
                if let Some(t) = template(&path, text, errors) {
                    routes.insert(value.clone(), t);
                }
            }
            other => errors.push(format!(
                "{path}: expected a destination template (a string), found {other}"
            )),
        }
    }
    let default = config
        .default
        .as_deref()
        .and_then(|text| template("by_column.default", text, errors));
    let tables = config
        .tables
        .as_deref()
        .map(|t| globs("by_column.tables", t, errors));
    (errors.len() == before).then_some(ByColumn {
        tables,
        column: config.column,
        routes,
        default,
    })
}

// `Config::parse` reports serde's message, which says what was wrong but
// not where; these name the field the message is about.

fn named<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D, field: &str) -> Result<T, D::Error> {
    let doc = serde_json::Value::deserialize(d)?;
    serde_json::from_value(doc).map_err(|e| D::Error::custom(format_args!("{field}: {e}")))
}

fn to<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    named(d, "to")
}

fn overrides<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    named(d, "overrides")
}

fn by_column<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    named(d, "by_column")
}
