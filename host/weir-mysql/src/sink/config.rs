//! `kind = "mysql"` (or `"mariadb"`) in `[[sinks]]`: the MySQL / MariaDB
//! apply sink's config section.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Deserialize;
use weir_connect::{BuildContext, Checker, SinkComponent};
use weir_core::{Sink, StageError};

use super::MysqlTarget;
use crate::source::ConnectParams;

/// `kind = "mysql"`: applies changes to tables of a MySQL or MariaDB
/// server, exactly-once through a checkpoint row written in the same
/// transaction.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlSinkConfig {
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// User to apply as: it needs `SELECT`, `INSERT`, `UPDATE` and `DELETE`
    /// on the target tables, and `CREATE` in `database` unless the
    /// checkpoint table exists.
    pub user: String,
    /// Password; write `"${TARGET_PASSWORD}"` to take it from the
    /// environment. Never logged or printed.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// The database of the checkpoint table, and of destinations that name
    /// a table alone.
    pub database: String,
    /// Target table of a destination, as `database.table`, where it is not
    /// the destination itself (`"public.orders" = "shop.orders"`). A
    /// destination not listed must be `database.table` or `table` (in
    /// `database`).
    #[serde(default)]
    pub tables: BTreeMap<String, String>,
    /// Create a missing target table, with column types taken from the
    /// values of the first rows it receives (`docs/sql-sinks.md`).
    #[serde(default)]
    pub create_tables: bool,
    /// Add a column the target table lacks when an event has it.
    #[serde(default)]
    pub evolve_schema: bool,
    /// The table in `database` holding each sink's position, written in the
    /// same transaction as the changes; created when missing.
    #[serde(default = "default_checkpoint_table")]
    pub checkpoint_table: String,
    /// Most rows in one multi-row statement (statements also stay under
    /// 4 MiB, below every server's default `max_allowed_packet`).
    #[serde(default = "default_max_statement_rows")]
    pub max_statement_rows: usize,
    /// The session `server_id` the sink applies under: the binlog records
    /// it with each change, and MySQL sources skip it by default, so a
    /// pipeline in the opposite direction does not capture these changes
    /// again. Default: 1464158546 (`WEIR`); 0 keeps the server's own (then
    /// such a pipeline captures them). Setting it needs `SUPER` (MariaDB)
    /// or `SESSION_VARIABLES_ADMIN` (MySQL 8).
    #[serde(default = "default_server_id")]
    pub server_id: u32,
}

const fn default_server_id() -> u32 {
    crate::config::APPLY_SERVER_ID
}

fn default_host() -> String {
    "localhost".to_owned()
}
const fn default_port() -> u16 {
    3306
}
fn default_checkpoint_table() -> String {
    "weir_checkpoints".to_owned()
}
const fn default_max_statement_rows() -> usize {
    2000
}

impl MysqlSinkConfig {
    pub(crate) fn connect_params(&self) -> ConnectParams {
        ConnectParams {
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            password: self.password.clone(),
        }
    }

    /// `database.table` for a name that may lack its database.
    pub(crate) fn split<'a>(&'a self, name: &'a str) -> Option<(&'a str, &'a str)> {
        let (database, table) = match name.split_once('.') {
            Some((d, t)) => (d, t),
            None => (self.database.as_str(), name),
        };
        (!database.is_empty() && !table.is_empty() && !table.contains('.'))
            .then_some((database, table))
    }
}

impl SinkComponent for MysqlSinkConfig {
    fn validate(&self, c: &mut Checker) {
        for (key, value) in [
            ("host", &self.host),
            ("user", &self.user),
            ("database", &self.database),
            ("checkpoint_table", &self.checkpoint_table),
        ] {
            if value.is_empty() {
                c.err(key, "must not be empty");
            }
        }
        if self.checkpoint_table.contains('.') {
            c.err(
                "checkpoint_table",
                "is a table name alone; it lives in `database`",
            );
        }
        if self.port == 0 {
            c.err("port", "must be a port number from 1 to 65535");
        }
        for (destination, table) in &self.tables {
            if self.split(table).is_none() {
                c.err(
                    &format!("tables.\"{destination}\""),
                    format!("`{table}` is not `database.table`"),
                );
            }
        }
        if self.max_statement_rows == 0 {
            c.err("max_statement_rows", "must be 1 or more");
        }
    }

    fn build(&self, name: &str, cx: &BuildContext) -> Result<Box<dyn Sink>, StageError> {
        Ok(Box::new(MysqlTarget::sink(
            self.clone(),
            name,
            &cx.pipeline,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> MysqlSinkConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn names_without_a_database_are_in_the_sinks() {
        let c = config("user = \"u\"\ndatabase = \"shop\"");
        assert_eq!(c.split("orders"), Some(("shop", "orders")));
        assert_eq!(c.split("crm.people"), Some(("crm", "people")));
        assert_eq!(c.split("a.b.c"), None);
        let mut check = Checker::new("sinks[0]");
        c.validate(&mut check);
        assert!(check.into_errors().is_empty());
    }

    #[test]
    fn every_problem_is_reported() {
        let c = config(
            "user = \"\"\ndatabase = \"d\"\nport = 0\ncheckpoint_table = \"x.y\"\n\
             max_statement_rows = 0\ntables = { \"a\" = \"b.c.d\" }",
        );
        let mut check = Checker::new("sinks[0]");
        c.validate(&mut check);
        assert_eq!(check.into_errors().len(), 5);
    }
}
