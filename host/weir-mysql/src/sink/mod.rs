//! The MySQL / MariaDB apply sink (`kind = "mysql"` in `[[sinks]]`): a
//! [`Target`] for the exactly-once [`ApplySink`] of `weir-connect`.
//!
//! - **Statements** go over the text protocol with literal values
//!   ([`text`]): `INSERT ... VALUES (...), (...) ON DUPLICATE KEY UPDATE`,
//!   `DELETE ... WHERE key IN (...)`, and `DELETE FROM` for a truncate
//!   (`TRUNCATE` would commit the open transaction). Statements stay under
//!   4 MiB.
//! - **Session**: UTC, strict SQL mode (a value that does not fit is an
//!   error, not a silent truncation), `NO_AUTO_VALUE_ON_ZERO` (a key of 0 is
//!   a key).
//! - **DDL** commits implicitly in MySQL, so `create_tables` and
//!   `evolve_schema` roll the apply transaction back, run the DDL alone,
//!   and restart the pipeline from its checkpoint (a transient error):
//!   the replay applies into the new table or column, exactly once.

mod config;
mod text;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub use config::MysqlSinkConfig;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use serde_json::Value as Json;
use tracing::info;
use weir_connect::apply::{
    ApplySink, CheckpointRow, Step, StepFailure, StepKind, Target, TargetRuntime,
};
use weir_connect::own_position::{Held, Place};
use weir_core::{ErrorKind, StageError};

use self::text::{column_type, ident, literal};
use crate::error::client_kind;

/// The MySQL / MariaDB apply sink.
pub type MysqlSink = ApplySink<MysqlTarget>;

/// Most bytes in one statement.
const MAX_STATEMENT_BYTES: usize = 4 << 20;

/// See the module docs.
pub struct MysqlTarget {
    name: String,
    pipeline: String,
    config: MysqlSinkConfig,
    runtime: TargetRuntime,
    conn: Option<Connection>,
}

struct Connection {
    conn: Conn,
    /// A transaction is open (since the first write after a commit).
    open: bool,
    savepoint: bool,
    /// Target tables by destination.
    tables: HashMap<String, Arc<Table>>,
}

/// A target table, read from `information_schema`.
#[derive(Debug, Clone)]
struct Table {
    /// `database.table`, for messages.
    name: String,
    /// `` `database`.`table` ``.
    quoted: String,
    /// Columns a statement may write (generated ones left out).
    columns: HashSet<String>,
    generated: HashSet<String>,
    /// The primary key's columns, in key order.
    key: Vec<String>,
}

impl Table {
    /// Whether the table has no column `name` at all.
    fn lacks(&self, name: &str) -> bool {
        !self.columns.contains(name) && !self.generated.contains(name)
    }
}

impl MysqlTarget {
    /// The sink for `config`; it connects in `Sink::recover`.
    pub fn sink(
        config: MysqlSinkConfig,
        name: &str,
        pipeline: &str,
    ) -> Result<MysqlSink, StageError> {
        let runtime = TargetRuntime::new()?;
        let target = MysqlTarget {
            name: name.to_owned(),
            pipeline: pipeline.to_owned(),
            config,
            runtime,
            conn: None,
        };
        Ok(ApplySink::new(name, target))
    }

    fn checkpoint_quoted(&self) -> String {
        format!(
            "{}.{}",
            ident(&self.config.database),
            ident(&self.config.checkpoint_table)
        )
    }

    /// The target table of `destination`, or an operator error.
    fn target_of(&self, destination: &str) -> Result<(String, String), StageError> {
        let name = self
            .config
            .tables
            .get(destination)
            .map_or(destination, String::as_str);
        let (database, table) = self.config.split(name).ok_or_else(|| {
            StageError::operator(format!(
                "sink `{}`: destination `{destination}` is not `database.table`; map it to a \
                 table in the sink's `tables`",
                self.name
            ))
        })?;
        Ok((database.to_owned(), table.to_owned()))
    }

    /// Runs `sql`; a failure other than a data error drops the connection
    /// (the pipeline reconnects in `recover`).
    fn query(&mut self, sql: &str, context: &str) -> Result<(), StepFailure> {
        let conn = &mut self.conn.as_mut().expect("connected in recover").conn;
        let result = self.runtime.block_on(conn.query_drop(sql));
        result.map_err(|e| {
            let error = classify(&e, context, &self.config.user);
            let data = error.kind() == ErrorKind::Event;
            if !data {
                self.conn = None;
            }
            StepFailure { error, data }
        })
    }

    /// The step's table, read once per connection. Where it is missing or
    /// lacks a column and the config allows the DDL: rolls back, runs the
    /// DDL and asks for a restart (see the module docs).
    fn table(&mut self, step: &Step<'_>) -> Result<Option<Arc<Table>>, StageError> {
        let cached = self
            .conn
            .as_ref()
            .expect("connected in recover")
            .tables
            .get(step.destination)
            .map(Arc::clone);
        if let Some(t) = &cached
            && !step.columns.iter().any(|c| t.lacks(c))
        {
            return Ok(cached);
        }
        let (database, table_name) = self.target_of(step.destination)?;
        let table = match cached {
            Some(t) => t,
            None => match self.describe(&database, &table_name)? {
                Some(t) => Arc::new(t),
                None if !matches!(step.kind, StepKind::Insert | StepKind::Upsert) => {
                    return Ok(None);
                }
                None if self.config.create_tables => {
                    let sql = create_statement(&database, &table_name, step);
                    return Err(self.ddl_then_restart(&sql, &format!("{database}.{table_name}")));
                }
                None => {
                    return Err(StageError::operator(format!(
                        "sink `{}`: table `{database}.{table_name}` does not exist; create it, \
                         or set `create_tables = true`",
                        self.name
                    )));
                }
            },
        };
        let missing: Vec<(&str, &'static str)> = step
            .column_types(column_type)
            .into_iter()
            .filter(|(c, _)| table.lacks(c))
            .collect();
        if let Some((column, _)) = missing.first() {
            if !self.config.evolve_schema {
                return Err(StageError::operator(format!(
                    "sink `{}`: table `{}` has no column `{column}`, which the source's `{}` \
                     has; add it, or set `evolve_schema = true`",
                    self.name, table.name, step.destination
                )));
            }
            let adds: Vec<String> = missing
                .iter()
                .map(|(c, ty)| format!("ADD COLUMN IF NOT EXISTS {} {ty} NULL", ident(c)))
                .collect();
            let sql = format!("ALTER TABLE {} {}", table.quoted, adds.join(", "));
            return Err(self.ddl_then_restart(&sql, &table.name));
        }
        self.conn
            .as_mut()
            .expect("connected in recover")
            .tables
            .insert(step.destination.to_owned(), Arc::clone(&table));
        Ok(Some(table))
    }

    fn describe(&mut self, database: &str, table: &str) -> Result<Option<Table>, StageError> {
        let conn = &mut self.conn.as_mut().expect("connected in recover").conn;
        let context = "cannot read the target table's columns";
        let user = self.config.user.clone();
        let (columns, key) = self
            .runtime
            .block_on(async {
                let columns: Vec<(String, String)> = conn
                    .exec(
                        "SELECT COLUMN_NAME, EXTRA FROM information_schema.COLUMNS \
                         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                        (database, table),
                    )
                    .await?;
                let key: Vec<String> = conn
                    .exec(
                        "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
                         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' \
                         ORDER BY ORDINAL_POSITION",
                        (database, table),
                    )
                    .await?;
                Ok::<_, mysql_async::Error>((columns, key))
            })
            .map_err(|e| {
                self.conn = None;
                classify(&e, context, &user)
            })?;
        if columns.is_empty() {
            return Ok(None);
        }
        let (generated, writable): (Vec<_>, Vec<_>) = columns
            .into_iter()
            .partition(|(_, extra)| extra.to_ascii_uppercase().contains("GENERATED"));
        Ok(Some(Table {
            name: format!("{database}.{table}"),
            quoted: format!("{}.{}", ident(database), ident(table)),
            columns: writable.into_iter().map(|(c, _)| c).collect(),
            generated: generated.into_iter().map(|(c, _)| c).collect(),
            key,
        }))
    }

    /// Rolls back the open transaction, runs `sql` (DDL commits on its
    /// own), and returns the transient error that restarts the pipeline
    /// from its checkpoint.
    fn ddl_then_restart(&mut self, sql: &str, table: &str) -> StageError {
        let name = self.name.clone();
        let user = self.config.user.clone();
        let conn = &mut self.conn.as_mut().expect("connected in recover").conn;
        let result = self.runtime.block_on(async {
            conn.query_drop("ROLLBACK").await?;
            conn.query_drop(sql).await
        });
        self.conn = None;
        match result {
            Ok(()) => {
                info!(sink = %name, table, statement = sql, "Changed the target table.");
                StageError::transient(format!(
                    "sink `{name}` changed table `{table}` (`{sql}`); the pipeline replays from \
                     its last checkpoint into it"
                ))
            }
            Err(e) if is_privilege(&e) => StageError::operator(format!(
                "user `{user}` may not change `{table}`; grant it the privilege, or run this \
                 yourself: {sql}"
            )),
            Err(e) => classify(&e, &format!("cannot run `{sql}`"), &user),
        }
    }
}

fn is_privilege(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if matches!(s.code, 1044 | 1142 | 1143 | 1227))
}

/// A client error as a stage error: lost connections and the server's
/// transient states are retried, data errors are the event's fault, a
/// missing privilege names the `GRANT`, the rest needs the operator.
fn classify(e: &mysql_async::Error, context: &str, user: &str) -> StageError {
    let message = format!("{context}: {e}");
    if is_privilege(e) {
        return StageError::operator(format!(
            "{message}; grant `{user}` SELECT, INSERT, UPDATE and DELETE on the target tables"
        ));
    }
    match client_kind(e) {
        ErrorKind::Transient => StageError::transient(message),
        ErrorKind::Event => StageError::event(0, message),
        _ => StageError::operator(message),
    }
}

impl Target for MysqlTarget {
    fn connect(&mut self) -> Result<Option<CheckpointRow>, StageError> {
        self.conn = None;
        let params = self.config.connect_params();
        let address = params.address();
        let user = self.config.user.clone();
        let checkpoint = self.checkpoint_quoted();
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {checkpoint} (\
                pipeline VARCHAR(190) NOT NULL, sink VARCHAR(190) NOT NULL, \
                delivered BIGINT NOT NULL, base BIGINT NOT NULL, refused LONGTEXT NOT NULL, \
                source LONGTEXT, updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), \
                PRIMARY KEY (pipeline, sink)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        );
        let key = (self.pipeline.clone(), self.name.clone());
        let opts: OptsBuilder = params.opts().db_name(Some(self.config.database.clone()));
        let server_id = self.config.server_id;
        let (conn, row) = self
            .runtime
            .block_on(async {
                let mut conn = Conn::new(opts).await?;
                conn.query_drop(
                    "SET SESSION time_zone = '+00:00', SESSION sql_mode = \
                     'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,\
                     NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO'",
                )
                .await?;
                if server_id != 0 {
                    conn.query_drop(format!("SET SESSION server_id = {server_id}"))
                        .await?;
                }
                conn.query_drop(&create).await?;
                let row: Option<(i64, i64, String)> = conn
                    .exec_first(
                        format!(
                            "SELECT delivered, base, refused FROM {checkpoint} \
                             WHERE pipeline = ? AND sink = ?"
                        ),
                        key,
                    )
                    .await?;
                Ok::<_, mysql_async::Error>((conn, row))
            })
            .map_err(|e| {
                if is_privilege(&e) {
                    StageError::operator(format!(
                        "user `{user}` lacks a privilege to set up the sink ({e}): setting the \
                         session's `server_id` needs SUPER (MariaDB) or SESSION_VARIABLES_ADMIN \
                         (MySQL), or set `server_id = 0` (then a pipeline in the opposite \
                         direction captures what this sink applies); creating the checkpoint \
                         table needs CREATE in `{}`, or create it yourself: {create}",
                        self.config.database
                    ))
                } else {
                    classify(&e, &format!("MySQL at {address}"), &user)
                }
            })?;
        self.conn = Some(Connection {
            conn,
            open: false,
            savepoint: false,
            tables: HashMap::new(),
        });
        info!(sink = %self.name, target = %address, database = %self.config.database,
            "Applying to MySQL.");
        Ok(row.map(|(delivered, base, refused)| CheckpointRow {
            held: Held {
                delivered: delivered as u64,
                base: base as u64,
            },
            refused,
        }))
    }

    fn savepoint(&mut self) -> Result<(), StageError> {
        let c = self.conn.as_ref().expect("connected in recover");
        let sql = match (c.open, c.savepoint) {
            (false, _) => "START TRANSACTION; SAVEPOINT weir_write",
            (true, false) => "SAVEPOINT weir_write",
            // Setting a savepoint of the same name replaces it.
            (true, true) => "SAVEPOINT weir_write",
        };
        self.query(sql, "cannot set a savepoint")
            .map_err(|f| f.error)?;
        let c = self.conn.as_mut().expect("connected in recover");
        c.open = true;
        c.savepoint = true;
        Ok(())
    }

    fn rollback_to_savepoint(&mut self) -> Result<(), StageError> {
        self.query(
            "ROLLBACK TO SAVEPOINT weir_write",
            "cannot roll back to the savepoint",
        )
        .map_err(|f| f.error)
    }

    fn run(&mut self, step: &Step<'_>) -> Result<(), StepFailure> {
        let Some(table) = self.table(step)? else {
            // A delete for a table that does not exist yet: nothing to do.
            return Ok(());
        };
        let context = format!("applying to `{}`", table.name);
        for sql in statements(&table, step).map_err(|e| StepFailure {
            error: StageError::operator(format!("sink `{}`: {e}", self.name)),
            data: false,
        })? {
            match sql {
                Ok(sql) => self.query(&sql, &context)?,
                Err(reason) => {
                    return Err(StepFailure {
                        error: StageError::event(0, format!("{context}: {reason}")),
                        data: true,
                    });
                }
            }
        }
        Ok(())
    }

    fn commit(&mut self, row: &CheckpointRow, source: &Json) -> Result<(), StageError> {
        let checkpoint = self.checkpoint_quoted();
        let sql = format!(
            "INSERT INTO {checkpoint} (pipeline, sink, delivered, base, refused, source) \
             VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE delivered = VALUES(delivered), \
             base = VALUES(base), refused = VALUES(refused), source = VALUES(source), \
             updated_at = CURRENT_TIMESTAMP(6)"
        );
        let params = (
            self.pipeline.clone(),
            self.name.clone(),
            row.held.delivered as i64,
            row.held.base as i64,
            row.refused.clone(),
            source.to_string(),
        );
        let user = self.config.user.clone();
        let c = self.conn.as_mut().expect("connected in recover");
        let open = c.open;
        let result = self.runtime.block_on(async {
            if !open {
                c.conn.query_drop("START TRANSACTION").await?;
            }
            c.conn.exec_drop(sql, params).await?;
            c.conn.query_drop("COMMIT").await
        });
        match result {
            Ok(()) => {
                c.open = false;
                c.savepoint = false;
                Ok(())
            }
            Err(e) => {
                self.conn = None;
                Err(classify(&e, "cannot commit", &user))
            }
        }
    }

    fn place(&self) -> Place {
        Place::checkpoint_row(
            format!(
                "table `{}.{}`",
                self.config.database, self.config.checkpoint_table
            ),
            &self.pipeline,
            &self.name,
        )
    }

    fn max_rows(&self) -> usize {
        self.config.max_statement_rows
    }
}

/// `CREATE TABLE ...` for a table that takes the step's rows, keyed by the
/// step's key columns.
fn create_statement(database: &str, table: &str, step: &Step<'_>) -> String {
    let columns: Vec<String> = step
        .column_types(column_type)
        .into_iter()
        .enumerate()
        .map(|(i, (c, ty))| {
            let null = if i < step.key_len { "NOT NULL" } else { "NULL" };
            format!("{} {ty} {null}", ident(c))
        })
        .collect();
    let key: Vec<String> = step.columns[..step.key_len]
        .iter()
        .map(|c| ident(c))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {}.{} ({}, PRIMARY KEY ({})) ENGINE=InnoDB \
         DEFAULT CHARSET=utf8mb4",
        ident(database),
        ident(table),
        columns.join(", "),
        key.join(", ")
    )
}

/// The statements for `step` on `table`, each under
/// [`MAX_STATEMENT_BYTES`]; an `Err` item for a row whose values MySQL
/// cannot hold. The outer error is the operator's (keys that differ).
fn statements(table: &Table, step: &Step<'_>) -> Result<Vec<Result<String, String>>, String> {
    if step.kind == StepKind::Truncate {
        // `TRUNCATE` would commit the apply transaction.
        return Ok(vec![Ok(format!("DELETE FROM {}", table.quoted))]);
    }
    let key = step.key();
    step.check_key(&table.name, &table.quoted, &table.key)?;
    let columns: Vec<(usize, &str)> = step
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| table.columns.contains(**c))
        .map(|(i, c)| (i, *c))
        .collect();
    let names: Vec<String> = columns.iter().map(|(_, c)| ident(c)).collect();
    let (head, tail) = match step.kind {
        StepKind::Insert => (
            format!(
                "INSERT INTO {} ({}) VALUES ",
                table.quoted,
                names.join(", ")
            ),
            String::new(),
        ),
        StepKind::Upsert => {
            let updates: Vec<String> = columns
                .iter()
                .skip(step.key_len)
                .map(|(_, c)| format!("{0} = VALUES({0})", ident(c)))
                .collect();
            let updates = if updates.is_empty() {
                // Every column is the key: nothing to update.
                format!("{0} = {0}", ident(key[0]))
            } else {
                updates.join(", ")
            };
            (
                format!(
                    "INSERT INTO {} ({}) VALUES ",
                    table.quoted,
                    names.join(", ")
                ),
                format!(" ON DUPLICATE KEY UPDATE {updates}"),
            )
        }
        StepKind::Delete if names.len() == 1 => (
            format!("DELETE FROM {} WHERE {} IN (", table.quoted, names[0]),
            ")".to_owned(),
        ),
        StepKind::Delete => (
            format!(
                "DELETE FROM {} WHERE ({}) IN (",
                table.quoted,
                names.join(", ")
            ),
            ")".to_owned(),
        ),
        StepKind::Truncate => unreachable!("handled above"),
    };
    let bare = step.kind == StepKind::Delete && names.len() == 1;
    let mut out = Vec::new();
    let mut sql = String::new();
    let mut row = String::new();
    for r in &step.rows {
        row.clear();
        if !bare {
            row.push('(');
        }
        for (n, (i, _)) in columns.iter().enumerate() {
            if n > 0 {
                row.push_str(", ");
            }
            if let Err(reason) = literal(r.values[*i], &mut row) {
                out.push(Err(reason));
                return Ok(out);
            }
        }
        if !bare {
            row.push(')');
        }
        if !sql.is_empty() && sql.len() + row.len() + tail.len() > MAX_STATEMENT_BYTES {
            sql.push_str(&tail);
            out.push(Ok(std::mem::take(&mut sql)));
        }
        if sql.is_empty() {
            sql.push_str(&head);
        } else {
            sql.push_str(", ");
        }
        sql.push_str(&row);
    }
    if !sql.is_empty() {
        sql.push_str(&tail);
        out.push(Ok(sql));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_connect::apply::StepRow;
    use weir_core::Value;

    fn table() -> Table {
        Table {
            name: "shop.t".into(),
            quoted: "`shop`.`t`".into(),
            columns: ["id", "name"].into_iter().map(String::from).collect(),
            generated: HashSet::new(),
            key: vec!["id".into()],
        }
    }

    #[test]
    fn steps_become_multi_row_statements() {
        let (one, two, a) = (Value::Int(1), Value::Int(2), Value::Text("a".into()));
        let upsert = Step {
            kind: StepKind::Upsert,
            destination: "shop.t",
            columns: vec!["id", "name"],
            key_len: 1,
            rows: vec![
                StepRow {
                    event: 0,
                    values: vec![&one, &a],
                },
                StepRow {
                    event: 1,
                    values: vec![&two, &Value::Null],
                },
            ],
        };
        assert_eq!(
            statements(&table(), &upsert).unwrap(),
            vec![Ok(
                "INSERT INTO `shop`.`t` (`id`, `name`) VALUES (1, _utf8mb4 X'61'), \
                     (2, NULL) ON DUPLICATE KEY UPDATE `name` = VALUES(`name`)"
                    .to_owned()
            )]
        );
        let delete = Step {
            kind: StepKind::Delete,
            columns: vec!["id"],
            rows: upsert
                .rows
                .iter()
                .map(|r| StepRow {
                    event: r.event,
                    values: vec![r.values[0]],
                })
                .collect(),
            ..upsert.clone()
        };
        assert_eq!(
            statements(&table(), &delete).unwrap(),
            vec![Ok("DELETE FROM `shop`.`t` WHERE `id` IN (1, 2)".to_owned())]
        );
        let mut keyless = table();
        keyless.key.clear();
        assert!(
            statements(&keyless, &upsert)
                .unwrap_err()
                .contains("ADD PRIMARY KEY")
        );
    }
}
