//! The configuration users write, and its validation into a strategy.
//!
//! Every problem is reported at once, each with the path of its field.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

use crate::Strategy;

/// The plugin's configuration: a strategy and the settings it takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolversConfig {
    /// `last-writer-wins`, `region-priority` or `counter`.
    #[serde(deserialize_with = "strategy")]
    pub strategy: StrategyName,

    /// For `region-priority` (required there, refused elsewhere): origins,
    /// highest priority first. Origins not listed, and changes without an
    /// origin, rank below every listed one.
    #[serde(default, deserialize_with = "priority")]
    pub priority: Option<Vec<String>>,

    /// For `counter` (required there, refused elsewhere): the columns
    /// merged by adding the incoming change's delta to the local value.
    #[serde(default, deserialize_with = "columns")]
    pub columns: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyName {
    LastWriterWins,
    RegionPriority,
    Counter,
}

impl ResolversConfig {
    /// Validates the configuration, reporting every problem.
    pub fn validate(self) -> Result<Strategy, String> {
        let mut errors = Vec::new();
        let priority = list(
            "priority",
            self.priority,
            self.strategy == StrategyName::RegionPriority,
            "region-priority",
            "origins, highest priority first",
            &mut errors,
        );
        let columns = list(
            "columns",
            self.columns,
            self.strategy == StrategyName::Counter,
            "counter",
            "counter columns",
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(format!("invalid plugin config: {}", errors.join("; ")));
        }
        Ok(match self.strategy {
            StrategyName::LastWriterWins => Strategy::LastWriterWins,
            StrategyName::RegionPriority => Strategy::RegionPriority(priority),
            StrategyName::Counter => Strategy::Counter(columns),
        })
    }
}

/// Checks a list setting that strategy `owner` requires and the others
/// refuse: non-empty, no empty or repeated entries.
fn list(
    field: &str,
    given: Option<Vec<String>>,
    wanted: bool,
    owner: &str,
    what: &str,
    errors: &mut Vec<String>,
) -> Vec<String> {
    let items = match (given, wanted) {
        (None, false) => return Vec::new(),
        (Some(_), false) => {
            errors.push(format!("{field}: applies only to strategy `{owner}`"));
            return Vec::new();
        }
        (None, true) => {
            errors.push(format!(
                "{field}: required by strategy `{owner}`: list the {what}"
            ));
            return Vec::new();
        }
        (Some(items), true) => items,
    };
    if items.is_empty() {
        errors.push(format!("{field}: an empty list; list the {what}"));
    }
    for (i, item) in items.iter().enumerate() {
        if item.is_empty() {
            errors.push(format!("{field}[{i}]: must not be empty"));
        } else if items[..i].contains(item) {
            errors.push(format!("{field}[{i}]: {item:?} is listed twice"));
        }
    }
    items
}

// `Config::parse` reports serde's message, which says what was wrong but
// not where; these name the field the message is about.

fn named<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D, field: &str) -> Result<T, D::Error> {
    let doc = serde_json::Value::deserialize(d)?;
    serde_json::from_value(doc).map_err(|e| D::Error::custom(format_args!("{field}: {e}")))
}

fn strategy<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    named(d, "strategy")
}

fn priority<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    named(d, "priority")
}

fn columns<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    named(d, "columns")
}
