//! `filter`: a transformer that keeps or drops change events by table,
//! operation and column values.
//!
//! ```json
//! {
//!   "mode": "keep",
//!   "tables": ["public.orders*"],
//!   "ops": ["create", "update"],
//!   "where": [
//!     {"column": "status", "op": "in", "value": ["paid", "shipped"]},
//!     {"column": "amount", "op": "ge", "value": 100}
//!   ]
//! }
//! ```
//!
//! An event *matches* when every criterion given holds:
//! - `tables`: one of the globs (`*`, `?`, case-insensitive) matches the
//!   event's `schema.table` or its bare `table`;
//! - `ops`: its operation is listed (`create`, `update`, `delete`,
//!   `truncate`, `read`);
//! - `where`: every predicate holds on its after image, or on its before
//!   image for deletes.
//!
//! With `"mode": "keep"` matching events pass and all others are dropped;
//! with `"mode": "drop"` matching events are dropped and all others pass.
//! Events that pass are never changed.
//!
//! A predicate is `{"column", "op", "value"}` with op `eq`, `ne`, `lt`,
//! `le`, `gt`, `ge` (compare with `value`), `in` (`value` is a list),
//! `is_null` or `not_null` (no `value`). Numbers compare numerically with
//! int, float and decimal columns, and with the raw units of date (days
//! since 1970-01-01), time and timestamp columns (microseconds); strings
//! compare as text (byte order) with text, decimal, uuid and json columns;
//! booleans with boolean columns. A predicate does not hold when the row
//! lacks the column, when the value is null (except for `is_null`) or an
//! unchanged TOAST value, or when value and operand are of different kinds
//! — `ne` included, as in SQL. So `"mode": "keep"` with a predicate on
//! a column some tables lack drops every event of those tables.
//!
//! The configuration is described field by field in [`FilterConfig`].

mod config;
mod predicate;

use weir_plugin_sdk::{Config, Event, Op, Outcome, SourceRef, Transformer};
use wildmatch::WildMatch;

use config::op_bit;
pub use config::{FilterConfig, Mode, OpName, PredicateConfig, PredicateOp};
use predicate::Predicate;

/// The filter transformer. Build it with [`Transformer::new`].
#[derive(Debug)]
pub struct Filter {
    /// Whether matching events are the ones kept.
    keep_matching: bool,
    ops: u8,
    tables: Vec<WildMatch>,
    predicates: Vec<Predicate>,
    /// Scratch space for `schema.table`, reused so that matching a table
    /// does not allocate per event.
    qualified: String,
}

impl Transformer for Filter {
    fn new(config: Config) -> Result<Self, String> {
        let settings = config.parse::<FilterConfig>()?.validate()?;
        Ok(Filter {
            keep_matching: settings.mode == Mode::Keep,
            ops: settings.ops,
            tables: settings.tables,
            predicates: settings.predicates,
            qualified: String::new(),
        })
    }

    fn transform(&mut self, event: &mut Event<'_>) -> Outcome {
        if self.matches(event) == self.keep_matching {
            Outcome::Keep
        } else {
            Outcome::Drop
        }
    }
}

weir_plugin_sdk::export_transformer!(Filter);

impl Filter {
    /// Whether every configured criterion holds for `event`, cheapest first.
    fn matches(&mut self, event: &Event<'_>) -> bool {
        if self.ops & op_bit(event.op()) == 0 {
            return false;
        }
        if !self.tables.is_empty() && !self.table_matches(event.source()) {
            return false;
        }
        if self.predicates.is_empty() {
            return true;
        }
        let row = match event.op() {
            Op::Delete => event.before(),
            _ => event.after(),
        };
        self.predicates.iter().all(|p| p.holds(row))
    }

    fn table_matches(&mut self, source: &SourceRef<'_>) -> bool {
        if !source.schema.is_empty() {
            self.qualified.clear();
            self.qualified.push_str(source.schema);
            self.qualified.push('.');
            self.qualified.push_str(source.table);
            if self.tables.iter().any(|g| g.matches(&self.qualified)) {
                return true;
            }
        }
        self.tables.iter().any(|g| g.matches(source.table))
    }
}

#[cfg(test)]
mod tests;
