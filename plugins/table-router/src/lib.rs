//! `table-router`: a router that names each event's destination from a
//! template, with per-table overrides and routing on a column value.
//!
//! ```json
//! {
//!   "to": "{database}.{schema}.{table}",
//!   "overrides": [
//!     {"tables": ["public.audit_*"], "to": "audit"},
//!     {"tables": ["public.events"], "to": "events-{column:kind}"}
//!   ],
//!   "by_column": {
//!     "tables": ["public.orders"],
//!     "column": "region",
//!     "routes": {"eu": "orders-eu", "us": "orders-us"},
//!     "default": "orders-other"
//!   }
//! }
//! ```
//!
//! Each event gets exactly one destination, from the first rule that
//! applies:
//! 1. `overrides`, in order: the first entry with a glob (`*`, `?`,
//!    case-insensitive) matching the event's `schema.table` or bare `table`;
//! 2. `by_column`, when its `tables` (if given) match and the row has the
//!    column: the route of the column's value as text, else `default`, else
//!    on to rule 3;
//! 3. `to`, by default `{database}.{schema}.{table}`.
//!
//! Templates may use `{database}`, `{schema}`, `{table}`, `{op}` (`create`,
//! `update`, `delete`, `truncate` or `read`), `{connector}` and
//! `{column:NAME}`: the value of column NAME of the after image (the before
//! image for deletes) as text — text, decimal, uuid and json as they are,
//! numbers, dates (days), times and timestamps (microseconds) in decimal,
//! booleans as `true`/`false`. `{{` and `}}` are literal braces.
//!
//! Routing an event fails, naming the template and the column, when a
//! `{column:NAME}` placeholder meets a row without that column, a null,
//! bytes or an unchanged TOAST value, or an event without a row (a
//! truncate); and when a template renders an empty name.
//!
//! The configuration is described field by field in [`TableRouterConfig`].

mod config;
mod template;

use weir_plugin_sdk::{Config, Event, Router, SourceRef};
use wildmatch::WildMatch;

use config::{ByColumn, Override};
pub use config::{ByColumnConfig, DEFAULT_TEMPLATE, OverrideConfig, TableRouterConfig};
pub use template::Template;
use template::{row_value, write_value};

/// The table router. Build it with [`Router::new`].
#[derive(Debug)]
pub struct TableRouter {
    to: Template,
    overrides: Vec<Override>,
    by_column: Option<ByColumn>,
    /// Scratch space for `schema.table` and for a `by_column` value, reused
    /// so that choosing a route does not allocate.
    qualified: String,
    value: String,
}

impl Router for TableRouter {
    fn new(config: Config) -> Result<Self, String> {
        let settings = config.parse::<TableRouterConfig>()?.validate()?;
        Ok(TableRouter {
            to: settings.to,
            overrides: settings.overrides,
            by_column: settings.by_column,
            qualified: String::new(),
            value: String::new(),
        })
    }

    fn route(&mut self, event: &Event<'_>) -> Result<Vec<String>, String> {
        Ok(vec![self.template_for(event).render(event)?])
    }
}

weir_plugin_sdk::export_router!(TableRouter);

impl TableRouter {
    /// The template of the first rule that applies to `event`.
    fn template_for(&mut self, event: &Event<'_>) -> &Template {
        let source = event.source();
        if !self.overrides.is_empty() || self.by_column.as_ref().is_some_and(|b| b.tables.is_some())
        {
            self.qualified.clear();
            if !source.schema.is_empty() {
                self.qualified.push_str(source.schema);
                self.qualified.push('.');
                self.qualified.push_str(source.table);
            }
        }
        if let Some(o) = self
            .overrides
            .iter()
            .find(|o| table_matches(&o.tables, &self.qualified, source))
        {
            return &o.to;
        }
        if let Some(b) = &self.by_column
            && b.tables
                .as_deref()
                .is_none_or(|t| table_matches(t, &self.qualified, source))
            && let Ok(value) = row_value(event, &b.column)
        {
            self.value.clear();
            let route = match write_value(value, &mut self.value) {
                Ok(()) => b.routes.get(self.value.as_str()),
                Err(_) => None,
            };
            if let Some(t) = route.or(b.default.as_ref()) {
                return t;
            }
        }
        &self.to
    }
}

/// Whether one of `globs` matches `qualified` (`schema.table`, empty when
/// the source has no schema) or the bare table name.
fn table_matches(globs: &[WildMatch], qualified: &str, source: &SourceRef<'_>) -> bool {
    globs
        .iter()
        .any(|g| (!qualified.is_empty() && g.matches(qualified)) || g.matches(source.table))
}

#[cfg(test)]
mod tests;
