//! The PostgreSQL apply sink (`kind = "postgres"` in `[[sinks]]`): a
//! [`Target`] for the exactly-once [`ApplySink`] of `weir-connect`.
//!
//! Each step is one statement. An insert of `copy::MIN_ROWS` rows or more
//! is a `COPY` (module `copy`); the others take each column as one array
//! parameter (typed where module `arrays` can, `text[]` cast to the target
//! column's type otherwise): `INSERT ... SELECT ... FROM unnest(...) [ON
//! CONFLICT (key) DO UPDATE]`, `DELETE ... USING unnest(...)`, `TRUNCATE`;
//! prepared once per shape. DDL for `create_tables` and `evolve_schema`
//! runs inside the apply transaction, so it commits with the rows.

mod arrays;
mod config;
mod copy;
mod replay;
mod tables;
mod text;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;
use futures_util::SinkExt as _;

pub use config::PostgresSinkConfig;
use serde_json::Value as Json;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement};
use tracing::info;
use weir_connect::apply::{
    ApplySink, CheckpointRow, ConflictSetup, LocalRow, Step, StepFailure, StepKind, StepRow,
    Target, TargetRuntime,
};
use weir_connect::own_position::{Held, Place};
use weir_core::{Column, ErrorKind, SourceInfo, StageError, Value};

use self::arrays::ColumnArray;
use self::config::split_table;
use self::tables::Table;
use self::text::ident;
use crate::catalog::TypeCache;
use crate::error::sqlstate_kind;

/// The PostgreSQL apply sink.
pub type PostgresSink = ApplySink<PostgresTarget>;

/// See the module docs.
pub struct PostgresTarget {
    name: String,
    pipeline: String,
    config: PostgresSinkConfig,
    runtime: TargetRuntime,
    conn: Option<Conn>,
    /// The replication origin the session takes, if any.
    origin: Option<String>,
    /// The source LSN the open replay is marked with.
    replay_lsn: String,
}

/// One connection and what it has learned.
struct Conn {
    client: Client,
    /// A transaction is open (since the first write after a commit).
    open: bool,
    /// The write's savepoint exists.
    savepoint: bool,
    statements: HashMap<String, Statement>,
    /// Target tables by destination.
    tables: HashMap<String, Arc<Table>>,
    /// How the target's column types decode (conflict detection).
    types: TypeCache,
}

impl Conn {
    /// `sql` prepared on this connection, once.
    async fn prepared(&mut self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).await?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

impl PostgresTarget {
    /// The sink for `config`; it connects in `Sink::recover`. With
    /// `conflicts` (active-active), the session's replication origin is
    /// `weir_<source region>` unless the config names one.
    pub fn sink(
        config: PostgresSinkConfig,
        name: &str,
        pipeline: &str,
        conflicts: Option<ConflictSetup>,
    ) -> Result<PostgresSink, StageError> {
        let runtime = TargetRuntime::new()?;
        let origin = match (&config.replication_origin, &conflicts) {
            (None, Some(c)) => Some(weir_connect::apply::conflict::origin_of_region(
                &c.source_region,
            )),
            _ => config.origin(pipeline, name),
        };
        let target = PostgresTarget {
            name: name.to_owned(),
            pipeline: pipeline.to_owned(),
            config,
            runtime,
            conn: None,
            origin,
            replay_lsn: "0/0".to_owned(),
        };
        let sink = ApplySink::new(name, target);
        Ok(match conflicts {
            Some(c) => sink.with_conflicts(c),
            None => sink,
        })
    }

    fn checkpoint_quoted(&self) -> String {
        let (schema, table) = split_table(&self.config.checkpoint_table).expect("validated");
        format!("{}.{}", ident(schema), ident(table))
    }

    /// The target table of `destination`, or an operator error.
    fn target_of(&self, destination: &str) -> Result<(String, String), StageError> {
        let name = self
            .config
            .tables
            .get(destination)
            .map_or(destination, String::as_str);
        let (schema, table) = split_table(name).ok_or_else(|| {
            StageError::operator(format!(
                "sink `{}`: destination `{destination}` is not `schema.table`; map it to a table \
                 in the sink's `tables`",
                self.name
            ))
        })?;
        Ok((schema.to_owned(), table.to_owned()))
    }

    /// Runs `sql` (one or more statements without parameters); a failure
    /// drops the connection (the pipeline reconnects in `recover`).
    fn batch(&mut self, sql: &str, context: &str) -> Result<(), StageError> {
        let conn = self.conn.as_mut().expect("connected in recover");
        let result = self.runtime.block_on(conn.client.batch_execute(sql));
        result.map_err(|e| {
            self.conn = None;
            classify(&e, context)
        })
    }
}

/// A tokio-postgres error as a stage error: lost connections and the
/// server's transient states are retried, data errors are the event's
/// fault, the rest needs the operator.
fn classify(e: &tokio_postgres::Error, context: &str) -> StageError {
    let kind = match e.as_db_error() {
        _ if e.is_closed() => ErrorKind::Transient,
        None => ErrorKind::Transient,
        Some(db) => sqlstate_kind(db.code().code()),
    };
    let message = match e.as_db_error() {
        Some(db) => {
            let mut m = format!(
                "{context}: {} (SQLSTATE {})",
                db.message(),
                db.code().code()
            );
            if let Some(detail) = db.detail() {
                m.push_str("; ");
                m.push_str(detail);
            }
            m
        }
        None => format!("{context}: {e}"),
    };
    match kind {
        ErrorKind::Transient => StageError::transient(message),
        ErrorKind::Event => StageError::event(0, message),
        _ => StageError::operator(message),
    }
}

/// Takes replication origin `origin` (created when missing) for the
/// session, so that what it writes carries it.
async fn setup_origin(client: &Client, origin: &str, user: &str) -> Result<(), StageError> {
    let result = async {
        client
            .execute(
                "SELECT pg_replication_origin_create($1) \
                 WHERE NOT EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = $1)",
                &[&origin],
            )
            .await?;
        client
            .execute("SELECT pg_replication_origin_session_setup($1)", &[&origin])
            .await
    }
    .await;
    result.map(drop).map_err(|e| {
        let code = e.as_db_error().map(|db| db.code().code());
        if is_privilege(&e) {
            StageError::operator(format!(
                "user `{user}` may not use replication origin `{origin}`: run `GRANT EXECUTE ON \
                 FUNCTION pg_replication_origin_create(text), \
                 pg_replication_origin_session_setup(text) TO {}` and `GRANT SELECT ON \
                 pg_replication_origin TO {}`, or set `replication_origin = \"\"` (then a \
                 pipeline in the opposite direction captures what this sink applies)",
                ident(user),
                ident(user)
            ))
        } else if matches!(code, Some("55006" | "23505")) {
            // Still held by the session of a process that just died, or
            // created by another at the same moment: retry.
            StageError::transient(format!("replication origin `{origin}`: {e}"))
        } else {
            classify(&e, &format!("cannot set up replication origin `{origin}`"))
        }
    })
}

fn is_privilege(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| db.code().code() == "42501")
}

impl Target for PostgresTarget {
    fn connect(&mut self) -> Result<Option<CheckpointRow>, StageError> {
        self.conn = None;
        let params = self.config.connect_params(&self.pipeline, &self.name);
        let address = params.address();
        let checkpoint = self.checkpoint_quoted();
        let (schema, _) = split_table(&self.config.checkpoint_table).expect("validated");
        let (pipeline, name) = (self.pipeline.clone(), self.name.clone());
        let user = self.config.user.clone();
        let origin = self.origin.clone();
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {checkpoint} (\
                pipeline text NOT NULL, sink text NOT NULL, delivered bigint NOT NULL, \
                base bigint NOT NULL, refused jsonb NOT NULL DEFAULT '[]', source jsonb, \
                updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (pipeline, sink))"
        );
        let (client, row) = self.runtime.block_on(async {
            let (client, connection) =
                params.sql_config().connect(NoTls).await.map_err(|e| {
                    classify(&e, &format!("cannot connect to PostgreSQL at {address}"))
                })?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            // Sinks of other pipelines may create the table at the same
            // moment; the loser of that race finds it there on a retry.
            // (23505 and 42710 on the table's row type, 42P07 on the table.)
            let raced = |r: &Result<(), tokio_postgres::Error>| {
                r.as_ref().is_err_and(|e| {
                    e.as_db_error()
                        .is_some_and(|db| matches!(db.code().code(), "23505" | "42P07" | "42710"))
                })
            };
            let mut created = client.batch_execute(&create).await;
            for _ in 0..3 {
                if !raced(&created) {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                created = client.batch_execute(&create).await;
            }
            created.map_err(|e| {
                if is_privilege(&e) {
                    StageError::operator(format!(
                        "user `{user}` may not create the checkpoint table; run `GRANT CREATE ON \
                         SCHEMA {} TO {}` or create it yourself: {create}",
                        ident(schema),
                        ident(&user)
                    ))
                } else {
                    classify(&e, "cannot create the checkpoint table")
                }
            })?;
            if let Some(origin) = &origin {
                setup_origin(&client, origin, &user).await?;
            }
            let row = client
                .query_opt(
                    &format!(
                        "SELECT delivered, base, refused::text FROM {checkpoint} \
                         WHERE pipeline = $1 AND sink = $2"
                    ),
                    &[&pipeline, &name],
                )
                .await
                .map_err(|e| classify(&e, "cannot read the checkpoint table"))?;
            Ok::<_, StageError>((client, row))
        })?;
        let row = row.map(|row| CheckpointRow {
            held: Held {
                delivered: row.get::<_, i64>(0) as u64,
                base: row.get::<_, i64>(1) as u64,
            },
            refused: row.get(2),
        });
        self.conn = Some(Conn {
            client,
            open: false,
            savepoint: false,
            statements: HashMap::new(),
            tables: HashMap::new(),
            types: TypeCache::default(),
        });
        info!(sink = %self.name, target = %address, database = %self.config.database,
            "Applying to PostgreSQL.");
        Ok(row)
    }

    fn savepoint(&mut self) -> Result<(), StageError> {
        let conn = self.conn.as_mut().expect("connected in recover");
        let sql = match (conn.open, conn.savepoint) {
            (false, _) => "BEGIN; SAVEPOINT weir_write",
            (true, false) => "SAVEPOINT weir_write",
            (true, true) => "RELEASE SAVEPOINT weir_write; SAVEPOINT weir_write",
        };
        self.batch(sql, "cannot set a savepoint")?;
        let conn = self.conn.as_mut().expect("connected in recover");
        conn.open = true;
        conn.savepoint = true;
        Ok(())
    }

    fn rollback_to_savepoint(&mut self) -> Result<(), StageError> {
        // Tables created or altered since the savepoint are gone again.
        self.conn
            .as_mut()
            .expect("connected in recover")
            .tables
            .clear();
        self.batch(
            "ROLLBACK TO SAVEPOINT weir_write",
            "cannot roll back to the savepoint",
        )
    }

    fn run(&mut self, step: &Step<'_>) -> Result<(), StepFailure> {
        let (schema, table_name) = self.target_of(step.destination)?;
        let Some(table) = self.table(step, &schema, &table_name)? else {
            // A delete or truncate for a table that does not exist yet
            // (and may be created): nothing to do.
            return Ok(());
        };
        let operator = |e: String| StageError::operator(format!("sink `{}`: {e}", self.name));
        let conn = self.conn.as_mut().expect("connected in recover");
        let result = if step.kind == StepKind::Insert && step.rows.len() >= copy::MIN_ROWS {
            let (sql, rows) = copy_in(&table, step).map_err(operator)?;
            self.runtime.block_on(async {
                let sink = conn.client.copy_in::<_, bytes::Bytes>(&sql).await?;
                futures_util::pin_mut!(sink);
                sink.send(rows.freeze()).await?;
                sink.finish().await
            })
        } else {
            let (sql, params) = statement(&table, step).map_err(operator)?;
            self.runtime.block_on(async {
                let statement = conn.prepared(&sql).await?;
                let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_param()).collect();
                conn.client.execute(&statement, &refs).await
            })
        };
        result.map(drop).map_err(|e| {
            let context = format!("applying to `{}`", table.name);
            if is_privilege(&e) {
                return StepFailure {
                    error: StageError::operator(format!(
                        "{context}: user `{}` lacks a privilege; run `GRANT SELECT, INSERT, \
                         UPDATE, DELETE, TRUNCATE ON {} TO {}`",
                        self.config.user,
                        table.quoted,
                        ident(&self.config.user)
                    )),
                    data: false,
                };
            }
            let error = classify(&e, &context);
            let data = error.kind() == ErrorKind::Event;
            if !data {
                self.conn = None;
            }
            StepFailure { error, data }
        })
    }

    fn commit(&mut self, row: &CheckpointRow, source: &Json) -> Result<(), StageError> {
        let checkpoint = self.checkpoint_quoted();
        let sql = format!(
            "INSERT INTO {checkpoint} (pipeline, sink, delivered, base, refused, source) \
             VALUES ($1, $2, $3, $4, $5::text::jsonb, $6::text::jsonb) \
             ON CONFLICT (pipeline, sink) DO UPDATE SET delivered = EXCLUDED.delivered, \
             base = EXCLUDED.base, refused = EXCLUDED.refused, source = EXCLUDED.source, \
             updated_at = now()"
        );
        let source = source.to_string();
        let (delivered, base) = (row.held.delivered as i64, row.held.base as i64);
        let (pipeline, name) = (self.pipeline.clone(), self.name.clone());
        let conn = self.conn.as_mut().expect("connected in recover");
        let result = self.runtime.block_on(async {
            if !conn.open {
                conn.client
                    .batch_execute("BEGIN")
                    .await
                    .map_err(|e| classify(&e, "cannot begin a transaction"))?;
            }
            conn.client
                .execute(
                    &sql,
                    &[&pipeline, &name, &delivered, &base, &row.refused, &source],
                )
                .await
                .map_err(|e| classify(&e, "cannot write the checkpoint row"))?;
            conn.client
                .batch_execute("COMMIT")
                .await
                .map_err(|e| classify(&e, "cannot commit"))
        });
        match result {
            Ok(()) => {
                conn.open = false;
                conn.savepoint = false;
                Ok(())
            }
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }

    fn place(&self) -> Place {
        Place::checkpoint_row(
            format!(
                "table `{}` in database `{}`",
                self.config.checkpoint_table, self.config.database
            ),
            &self.pipeline,
            &self.name,
        )
    }

    fn max_rows(&self) -> usize {
        self.config.max_statement_rows
    }

    fn begin_replay(&mut self, source: &SourceInfo) -> Result<(), StageError> {
        self.begin_replay_tx(source)
    }

    fn restamp(&mut self, commit_time_us: i64) -> Result<(), StageError> {
        self.stamp(commit_time_us, false)
    }

    fn local_row(
        &mut self,
        destination: &str,
        key: &[Column],
    ) -> Result<Option<LocalRow>, StageError> {
        self.local_row_of(destination, key)
    }
}

impl PostgresTarget {
    /// The step's table, read once per connection; created or given the
    /// step's columns where the config allows. `None` when the table does
    /// not exist and the step writes no row.
    fn table(
        &mut self,
        step: &Step<'_>,
        schema: &str,
        table_name: &str,
    ) -> Result<Option<Arc<Table>>, StageError> {
        let conn = self.conn.as_mut().expect("connected in recover");
        let cached = conn.tables.get(step.destination).map(Arc::clone);
        let mut table = match cached {
            Some(t) if tables::missing_columns(&t, step).is_empty() => return Ok(Some(t)),
            Some(t) => Table::clone(&t),
            None => {
                let described = self
                    .runtime
                    .block_on(tables::describe(&conn.client, schema, table_name))
                    .map_err(|e| classify(&e, "cannot read the target table's columns"))?;
                match described {
                    Some(t) => t,
                    None if !matches!(step.kind, StepKind::Insert | StepKind::Upsert) => {
                        return Ok(None);
                    }
                    None if self.config.create_tables => {
                        let sql = tables::create_statement(schema, table_name, step);
                        self.ddl(&sql, schema, table_name)?;
                        info!(sink = %self.name, table = %format!("{schema}.{table_name}"),
                            "Created the target table.");
                        self.describe_again(schema, table_name)?
                    }
                    None => {
                        return Err(StageError::operator(format!(
                            "sink `{}`: table `{schema}.{table_name}` does not exist in database \
                             `{}`; create it, or set `create_tables = true`",
                            self.name, self.config.database
                        )));
                    }
                }
            }
        };
        let missing = tables::missing_columns(&table, step);
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
                .map(|(c, ty)| format!("ADD COLUMN IF NOT EXISTS {} {ty}", ident(c)))
                .collect();
            let sql = format!("ALTER TABLE {} {}", table.quoted, adds.join(", "));
            self.ddl(&sql, schema, table_name)?;
            info!(sink = %self.name, table = %table.name, columns = ?missing,
                "Added columns to the target table.");
            table = self.describe_again(schema, table_name)?;
        }
        let table = Arc::new(table);
        let conn = self.conn.as_mut().expect("connected in recover");
        conn.tables
            .insert(step.destination.to_owned(), Arc::clone(&table));
        Ok(Some(table))
    }

    fn ddl(&mut self, sql: &str, schema: &str, table: &str) -> Result<(), StageError> {
        let conn = self.conn.as_mut().expect("connected in recover");
        self.runtime
            .block_on(conn.client.batch_execute(sql))
            .map_err(|e| {
                if is_privilege(&e) {
                    StageError::operator(format!(
                        "user `{}` may not change `{schema}.{table}`; grant it the privilege, or \
                         run this yourself: {sql}",
                        self.config.user
                    ))
                } else {
                    classify(&e, &format!("cannot run `{sql}`"))
                }
            })
    }

    fn describe_again(&mut self, schema: &str, table: &str) -> Result<Table, StageError> {
        let conn = self.conn.as_mut().expect("connected in recover");
        self.runtime
            .block_on(tables::describe(&conn.client, schema, table))
            .map_err(|e| classify(&e, "cannot read the target table's columns"))?
            .ok_or_else(|| {
                StageError::transient(format!("table `{schema}.{table}` vanished after its DDL"))
            })
    }
}

/// The step's columns the table takes, each with its index in the step,
/// once the step's key is checked against the table's. Generated columns
/// are the server's to compute, so they are left out.
fn columns<'a>(table: &Table, step: &Step<'a>) -> Result<Vec<(usize, &'a str)>, String> {
    step.check_key(&table.name, &table.quoted, &table.key)?;
    Ok(step
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| table.types.contains_key(**c))
        .map(|(i, c)| (i, *c))
        .collect())
}

/// An insert `step` on `table` as a `COPY` statement and its rows, in
/// binary where every column and value allows it ([`copy`]).
fn copy_in(table: &Table, step: &Step<'_>) -> Result<(String, BytesMut), String> {
    let columns = columns(table, step)?;
    let names: Vec<&str> = columns.iter().map(|(_, c)| *c).collect();
    let capacity = step.rows.len() * 16 * columns.len();
    let forms: Option<Vec<copy::Binary>> = columns
        .iter()
        .map(|(_, c)| copy::Binary::of(&table.types[*c]))
        .collect();
    if let Some(rows) = forms.and_then(|forms| {
        copy::binary_rows(
            &forms,
            step.rows.iter().map(|r| values(&columns, r)),
            capacity,
        )
    }) {
        return Ok((copy::statement(&table.quoted, &names, true), rows));
    }
    let mut rows = BytesMut::with_capacity(capacity);
    for r in &step.rows {
        copy::push_row(&mut rows, values(&columns, r));
    }
    Ok((copy::statement(&table.quoted, &names, false), rows))
}

/// The values of `row` in the order of `columns` (indices into the step's).
fn values<'a, 'b>(
    columns: &'b [(usize, &str)],
    row: &'b StepRow<'a>,
) -> impl Iterator<Item = &'a Value> + 'b {
    columns.iter().map(|(i, _)| row.values[*i])
}

/// The statement for `step` on `table`, and its parameters: one array per
/// column.
fn statement<'a>(table: &Table, step: &Step<'a>) -> Result<(String, Vec<ColumnArray<'a>>), String> {
    if step.kind == StepKind::Truncate {
        return Ok((format!("TRUNCATE {}", table.quoted), Vec::new()));
    }
    let key = step.key();
    let columns = columns(table, step)?;
    let params: Vec<ColumnArray<'a>> = columns
        .iter()
        .map(|(i, c)| {
            let values: Vec<&Value> = step.rows.iter().map(|r| r.values[*i]).collect();
            ColumnArray::build(&table.types[*c], &values)
        })
        .collect();
    let unnest: Vec<String> = params
        .iter()
        .zip(&columns)
        .enumerate()
        .map(|(n, (p, (_, c)))| format!("${}::{}", n + 1, p.param_type(&table.types[*c])))
        .collect();
    let aliases: Vec<String> = (0..columns.len()).map(|n| format!("c{n}")).collect();
    let cast = |n: usize, c: &str| {
        if params[n].cast() {
            format!("u.c{n}::{}", table.types[c])
        } else {
            format!("u.c{n}")
        }
    };
    let from = format!("unnest({}) AS u({})", unnest.join(", "), aliases.join(", "));
    let sql = match step.kind {
        StepKind::Insert | StepKind::Upsert => {
            let names: Vec<String> = columns.iter().map(|(_, c)| ident(c)).collect();
            let values: Vec<String> = columns
                .iter()
                .enumerate()
                .map(|(n, (_, c))| cast(n, c))
                .collect();
            let insert = format!(
                "INSERT INTO {} ({}) SELECT {} FROM {from}",
                table.quoted,
                names.join(", "),
                values.join(", ")
            );
            if step.kind == StepKind::Insert {
                return Ok((insert, params));
            }
            let updates: Vec<String> = columns
                .iter()
                .skip(step.key_len)
                .map(|(_, c)| format!("{0} = EXCLUDED.{0}", ident(c)))
                .collect();
            let keys: Vec<String> = key.iter().map(|c| ident(c)).collect();
            let action = if updates.is_empty() {
                "NOTHING".to_owned()
            } else {
                format!("UPDATE SET {}", updates.join(", "))
            };
            format!("{insert} ON CONFLICT ({}) DO {action}", keys.join(", "))
        }
        StepKind::Delete => {
            let matches: Vec<String> = columns
                .iter()
                .enumerate()
                .map(|(n, (_, c))| format!("t.{} = {}", ident(c), cast(n, c)))
                .collect();
            format!(
                "DELETE FROM {} AS t USING {from} WHERE {}",
                table.quoted,
                matches.join(" AND ")
            )
        }
        StepKind::Truncate => unreachable!("handled above"),
    };
    Ok((sql, params))
}
