//! The configuration users write, and its validation into compiled criteria.
//!
//! Every problem is reported at once, each with the path of its field.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use weir_plugin_sdk::Op;
use wildmatch::WildMatch;

use crate::predicate::{Operand, Predicate, Test};

/// The plugin's configuration. At least one of `tables`, `ops` and `where`
/// must be given: a filter without criteria would keep or drop everything.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// `keep`: pass the events that match and drop the rest.
    /// `drop`: drop the events that match and pass the rest.
    #[serde(deserialize_with = "mode")]
    pub mode: Mode,

    /// Table globs (`*` any run of characters, `?` one character,
    /// case-insensitive). An event matches when one of them matches its
    /// `schema.table` or its bare `table`. Leave out to match every table.
    #[serde(default, deserialize_with = "tables")]
    pub tables: Option<Vec<String>>,

    /// Operations: `create`, `update`, `delete`, `truncate`, `read`
    /// (snapshot rows). Leave out to match every operation.
    #[serde(default, deserialize_with = "ops")]
    pub ops: Option<Vec<OpName>>,

    /// Column predicates, all of which must hold, on the after image (the
    /// before image for deletes). Each is
    /// `{"column": NAME, "op": OP, "value": VALUE}`; see [`PredicateConfig`].
    ///
    /// Kept as raw JSON here so that each predicate is parsed on its own
    /// and an error can say which one it is about.
    #[serde(default, rename = "where", deserialize_with = "predicates")]
    pub predicates: Option<Vec<serde_json::Value>>,
}

/// What the filter does with the events that match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Keep,
    Drop,
}

/// An operation as it is spelled in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpName {
    Create,
    Update,
    Delete,
    Truncate,
    Read,
}

impl From<OpName> for Op {
    fn from(op: OpName) -> Op {
        match op {
            OpName::Create => Op::Create,
            OpName::Update => Op::Update,
            OpName::Delete => Op::Delete,
            OpName::Truncate => Op::Truncate,
            OpName::Read => Op::Read,
        }
    }
}

/// One column predicate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredicateConfig {
    /// The column tested. A row without it never satisfies the predicate.
    pub column: String,

    /// `eq`, `ne`, `lt`, `le`, `gt`, `ge` compare with `value`; `in` tests
    /// membership of the list `value`; `is_null` and `not_null` take no
    /// value.
    pub op: PredicateOp,

    /// A number, string or boolean (a non-empty list of them for `in`).
    /// Numbers compare numerically with int, float and decimal columns and
    /// with the raw units of date (days), time and timestamp columns
    /// (microseconds); strings compare as text with text, decimal, uuid and
    /// json columns; booleans with boolean columns.
    #[serde(default)]
    pub value: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredicateOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    IsNull,
    NotNull,
}

impl PredicateOp {
    fn name(self) -> &'static str {
        match self {
            PredicateOp::Eq => "eq",
            PredicateOp::Ne => "ne",
            PredicateOp::Lt => "lt",
            PredicateOp::Le => "le",
            PredicateOp::Gt => "gt",
            PredicateOp::Ge => "ge",
            PredicateOp::In => "in",
            PredicateOp::IsNull => "is_null",
            PredicateOp::NotNull => "not_null",
        }
    }
}

/// The configuration, validated and compiled.
#[derive(Debug)]
pub struct Settings {
    pub mode: Mode,
    /// Bit set of [`op_bit`]s; all bits set when `ops` was left out.
    pub ops: u8,
    /// Empty: every table.
    pub tables: Vec<WildMatch>,
    pub predicates: Vec<Predicate>,
}

/// The bit of `op` in [`Settings::ops`].
pub const fn op_bit(op: Op) -> u8 {
    match op {
        Op::Create => 1,
        Op::Update => 2,
        Op::Delete => 4,
        Op::Truncate => 8,
        Op::Read => 16,
    }
}

impl FilterConfig {
    /// Validates and compiles the configuration, reporting every problem.
    pub fn validate(self) -> Result<Settings, String> {
        let mut errors = Vec::new();

        if self.tables.is_none() && self.ops.is_none() && self.predicates.is_none() {
            errors.push(
                "the filter has no criteria: give at least one of `tables`, `ops` and `where`"
                    .to_owned(),
            );
        }

        let tables = match self.tables {
            None => Vec::new(),
            Some(t) if t.is_empty() => {
                errors.push(
                    "tables: an empty list matches no table; leave `tables` out to match every table"
                        .to_owned(),
                );
                Vec::new()
            }
            Some(t) => {
                for (i, pattern) in t.iter().enumerate() {
                    if pattern.is_empty() {
                        errors.push(format!("tables[{i}]: an empty pattern matches no table"));
                    }
                }
                t.iter()
                    .map(|p| WildMatch::new_case_insensitive(p))
                    .collect()
            }
        };

        let ops = match self.ops {
            None => u8::MAX,
            Some(o) if o.is_empty() => {
                errors.push(
                    "ops: an empty list matches no event; leave `ops` out to match every operation"
                        .to_owned(),
                );
                0
            }
            Some(o) => o.into_iter().fold(0, |bits, op| bits | op_bit(op.into())),
        };

        let predicates = match self.predicates {
            None => Vec::new(),
            Some(raw) if raw.is_empty() => {
                errors.push(
                    "where: an empty list tests nothing; leave `where` out to match every row"
                        .to_owned(),
                );
                Vec::new()
            }
            Some(raw) => raw
                .into_iter()
                .enumerate()
                .filter_map(|(i, doc)| compile_predicate(i, doc, &mut errors))
                .collect(),
        };

        if errors.is_empty() {
            Ok(Settings {
                mode: self.mode,
                ops,
                tables,
                predicates,
            })
        } else {
            Err(format!("invalid plugin config: {}", errors.join("; ")))
        }
    }
}

fn compile_predicate(
    i: usize,
    doc: serde_json::Value,
    errors: &mut Vec<String>,
) -> Option<Predicate> {
    let config: PredicateConfig = match serde_json::from_value(doc) {
        Ok(c) => c,
        Err(e) => {
            errors.push(format!("where[{i}]: {e}"));
            return None;
        }
    };
    let before = errors.len();
    if config.column.is_empty() {
        errors.push(format!("where[{i}].column: must not be empty"));
    }
    let op = config.op;
    let test = match (op, config.value) {
        (PredicateOp::IsNull | PredicateOp::NotNull, Some(_)) => {
            errors.push(format!(
                "where[{i}].value: op `{}` takes no value",
                op.name()
            ));
            None
        }
        (PredicateOp::IsNull, None) => Some(Test::IsNull),
        (PredicateOp::NotNull, None) => Some(Test::NotNull),
        (_, None) => {
            errors.push(format!(
                "where[{i}].value: op `{}` needs a value (test for null with `is_null`)",
                op.name()
            ));
            None
        }
        (PredicateOp::In, Some(serde_json::Value::Array(items))) if !items.is_empty() => {
            let operands: Vec<Operand> = items
                .iter()
                .enumerate()
                .filter_map(|(j, item)| match Operand::from_json(item) {
                    Ok(o) => Some(o),
                    Err(found) => {
                        errors.push(format!(
                            "where[{i}].value[{j}]: expected a number, string or boolean, found {found}"
                        ));
                        None
                    }
                })
                .collect();
            Some(Test::In(operands))
        }
        (PredicateOp::In, Some(_)) => {
            errors.push(format!(
                "where[{i}].value: op `in` needs a non-empty list of numbers, strings or booleans"
            ));
            None
        }
        (cmp, Some(value)) => match Operand::from_json(&value) {
            Ok(operand) => Some(Test::Compare(cmp_of(cmp), operand)),
            Err(found) => {
                errors.push(format!(
                    "where[{i}].value: op `{}` needs a number, string or boolean, found {found}",
                    cmp.name()
                ));
                None
            }
        },
    };
    if errors.len() > before {
        return None;
    }
    Some(Predicate {
        column: config.column,
        test: test?,
    })
}

fn cmp_of(op: PredicateOp) -> crate::predicate::Cmp {
    use crate::predicate::Cmp;
    match op {
        PredicateOp::Eq => Cmp::Eq,
        PredicateOp::Ne => Cmp::Ne,
        PredicateOp::Lt => Cmp::Lt,
        PredicateOp::Le => Cmp::Le,
        PredicateOp::Gt => Cmp::Gt,
        PredicateOp::Ge => Cmp::Ge,
        PredicateOp::In | PredicateOp::IsNull | PredicateOp::NotNull => {
            unreachable!("only comparison ops reach here")
        }
    }
}

// `Config::parse` reports serde's message, which says what was wrong but
// not where; these name the field the message is about.

fn named<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D, field: &str) -> Result<T, D::Error> {
    let doc = serde_json::Value::deserialize(d)?;
    serde_json::from_value(doc).map_err(|e| D::Error::custom(format_args!("{field}: {e}")))
}

fn mode<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    named(d, "mode")
}

fn tables<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    named(d, "tables")
}

fn ops<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    named(d, "ops")
}

fn predicates<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    named(d, "where")
}
