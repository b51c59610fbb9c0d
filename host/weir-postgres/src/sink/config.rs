//! `kind = "postgres"` in `[[sinks]]`: the SQL apply sink's config section.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Deserialize;
use weir_connect::{BuildContext, Checker, SinkComponent};
use weir_core::{Sink, StageError};

use super::PostgresTarget;
use crate::replication::ConnectParams;

/// `kind = "postgres"`: applies changes to tables of a PostgreSQL
/// database, exactly-once through a checkpoint row written in the same
/// transaction.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSinkConfig {
    /// Server host name, address, or socket directory.
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// User to apply as: it needs `INSERT`, `UPDATE`, `DELETE` (and
    /// `TRUNCATE` for truncates) on the target tables, and `CREATE` on the
    /// checkpoint table's schema unless the table exists.
    pub user: String,
    /// Password, if the server asks for one; write `"${TARGET_PASSWORD}"`
    /// to take it from the environment. Never logged or printed.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// Database to apply to.
    pub database: String,
    /// Target table of a destination, as `schema.table`, where it is not
    /// the destination itself (`"public.orders" = "archive.orders"`). A
    /// destination not listed must be `schema.table` or `table` (in
    /// `public`).
    #[serde(default)]
    pub tables: BTreeMap<String, String>,
    /// Create a missing target table (and schema), with column types taken
    /// from the values of the first rows it receives (`docs/sql-sinks.md`).
    #[serde(default)]
    pub create_tables: bool,
    /// Add a column the target table lacks when an event has it. When
    /// false, such an event stops the pipeline with the table and column.
    #[serde(default)]
    pub evolve_schema: bool,
    /// The table, as `schema.table`, holding each sink's position, written
    /// in the same transaction as the changes; created when missing.
    #[serde(default = "default_checkpoint_table")]
    pub checkpoint_table: String,
    /// Most rows in one multi-row statement.
    #[serde(default = "default_max_statement_rows")]
    pub max_statement_rows: usize,
    /// The replication origin the applying session takes
    /// (`pg_replication_origin_session_setup`): PostgreSQL marks what the
    /// sink writes with it, and PostgreSQL sources skip `weir_*` origins,
    /// so a pipeline in the opposite direction does not capture these
    /// changes again. Default: `weir_<pipeline>.<sink>`; `""` for none.
    /// Needs superuser, or `EXECUTE` on the replication origin functions.
    #[serde(default)]
    pub replication_origin: Option<String>,
}

fn default_host() -> String {
    "localhost".to_owned()
}
const fn default_port() -> u16 {
    5432
}
fn default_checkpoint_table() -> String {
    "public.weir_checkpoints".to_owned()
}
const fn default_max_statement_rows() -> usize {
    5000
}

/// A `schema.table` name split in two; `table` alone is in `public`.
pub(crate) fn split_table(name: &str) -> Option<(&str, &str)> {
    let (schema, table) = match name.split_once('.') {
        Some((s, t)) => (s, t),
        None => ("public", name),
    };
    (!schema.is_empty() && !table.is_empty() && !table.contains('.')).then_some((schema, table))
}

impl PostgresSinkConfig {
    /// The replication origin for sink `sink` of pipeline `pipeline`, if any.
    pub fn origin(&self, pipeline: &str, sink: &str) -> Option<String> {
        match &self.replication_origin {
            None => Some(format!("weir_{pipeline}.{sink}")),
            Some(o) if o.is_empty() => None,
            Some(o) => Some(o.clone()),
        }
    }

    /// Where and how to connect, for a pipeline named `pipeline`.
    pub fn connect_params(&self, pipeline: &str, sink: &str) -> ConnectParams {
        ConnectParams {
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            password: self.password.clone(),
            database: self.database.clone(),
            application_name: format!("weir {pipeline} {sink}"),
        }
    }
}

impl SinkComponent for PostgresSinkConfig {
    fn validate(&self, c: &mut Checker) {
        for (key, value) in [
            ("host", &self.host),
            ("user", &self.user),
            ("database", &self.database),
        ] {
            if value.is_empty() {
                c.err(key, "must not be empty");
            }
        }
        if self.port == 0 {
            c.err("port", "must be a port number from 1 to 65535");
        }
        if split_table(&self.checkpoint_table).is_none() {
            c.err(
                "checkpoint_table",
                format!("`{}` is not `schema.table`", self.checkpoint_table),
            );
        }
        for (destination, table) in &self.tables {
            if split_table(table).is_none() {
                c.err(
                    &format!("tables.\"{destination}\""),
                    format!("`{table}` is not `schema.table`"),
                );
            }
        }
        if self.max_statement_rows == 0 {
            c.err("max_statement_rows", "must be 1 or more");
        }
    }

    fn build(&self, name: &str, cx: &BuildContext) -> Result<Box<dyn Sink>, StageError> {
        Ok(Box::new(PostgresTarget::sink(
            self.clone(),
            name,
            &cx.pipeline,
            cx.conflicts.clone(),
        )?))
    }

    fn resolves_conflicts(&self, source_region: &str) -> Result<(), String> {
        let wanted = weir_connect::apply::conflict::origin_of_region(source_region);
        match &self.replication_origin {
            None => Ok(()),
            Some(o) if *o == wanted => Ok(()),
            Some(o) => Err(format!(
                "with `conflicts`, the sink marks what it applies with replication origin \
                 `{wanted}` (from `conflicts.source_region`), but `replication_origin` is `{o}`; \
                 leave `replication_origin` out"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let c: PostgresSinkConfig = toml::from_str(text).unwrap();
        let mut check = Checker::new("sinks[0]");
        c.validate(&mut check);
        check
            .into_errors()
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn defaults_and_problems() {
        assert!(problems("user = \"u\"\ndatabase = \"d\"").is_empty());
        let p = problems(
            "user = \"\"\ndatabase = \"d\"\nport = 0\ncheckpoint_table = \"a.b.c\"\n\
             max_statement_rows = 0\ntables = { \"x\" = \".y\" }",
        );
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(
            p.iter().any(|e| e.contains("sinks[0].tables.\"x\"")),
            "{p:?}"
        );
    }

    #[test]
    fn table_names_split_into_schema_and_table() {
        assert_eq!(split_table("public.orders"), Some(("public", "orders")));
        assert_eq!(split_table("orders"), Some(("public", "orders")));
        assert_eq!(split_table("a.b.c"), None);
        assert_eq!(split_table("a."), None);
    }
}
