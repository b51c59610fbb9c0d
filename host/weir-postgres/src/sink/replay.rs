//! Active-active on PostgreSQL: each source transaction replays in a
//! target transaction marked with its commit time
//! (`pg_replication_origin_xact_setup`), and a target row's version is read
//! back from the commit timestamp and origin of the transaction that wrote
//! it (`pg_xact_commit_timestamp_origin(xmin)`, which needs
//! `track_commit_timestamp = on`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use weir_connect::apply::LocalRow;
use weir_core::{Column, SourceInfo, StageError, Value};

use super::arrays::ColumnArray;
use super::tables::{self, Table};
use super::text::ident;
use super::{PostgresTarget, classify, is_privilege};
use crate::lsn::Lsn;
use crate::types::{PgType, decode_text};

impl PostgresTarget {
    pub(super) fn begin_replay_tx(&mut self, source: &SourceInfo) -> Result<(), StageError> {
        // The origin's progress is Weir's checkpoint row, not this LSN; a
        // source without LSNs (MySQL) replays at 0/0.
        self.replay_lsn = source
            .position
            .parse::<Lsn>()
            .map_or_else(|_| "0/0".to_owned(), |l| l.to_string());
        self.stamp(source.commit_time_us, true)
    }

    /// Marks the open transaction (begun first when `begin`) as committed
    /// at `us` microseconds since the epoch.
    pub(super) fn stamp(&mut self, us: i64, begin: bool) -> Result<(), StageError> {
        let at = if us >= 0 {
            SystemTime::UNIX_EPOCH + Duration::from_micros(us.unsigned_abs())
        } else {
            SystemTime::UNIX_EPOCH - Duration::from_micros(us.unsigned_abs())
        };
        let lsn = &self.replay_lsn;
        let conn = self.conn.as_mut().expect("connected in recover");
        let result = self.runtime.block_on(async {
            if begin {
                conn.client.batch_execute("BEGIN").await?;
            }
            conn.client
                .execute(
                    "SELECT pg_replication_origin_xact_setup($1::text::pg_lsn, $2)",
                    &[lsn, &at],
                )
                .await
        });
        match result {
            Ok(_) => {
                if begin {
                    conn.open = true;
                    conn.savepoint = false;
                }
                Ok(())
            }
            Err(e) => {
                self.conn = None;
                Err(classify(&e, "cannot begin a replayed transaction"))
            }
        }
    }

    pub(super) fn local_row_of(
        &mut self,
        destination: &str,
        key: &[Column],
    ) -> Result<Option<LocalRow>, StageError> {
        let Some(table) = self.known_table(destination)? else {
            return Ok(None);
        };
        let columns: Vec<String> = table
            .oids
            .iter()
            .enumerate()
            .map(|(i, (c, _))| format!("t.{}::text AS c{i}", ident(c)))
            .collect();
        let mut params = Vec::with_capacity(key.len());
        let mut matches = Vec::with_capacity(key.len());
        for (n, c) in key.iter().enumerate() {
            let Some(ty) = table.types.get(c.name.as_str()) else {
                return Err(StageError::operator(format!(
                    "sink `{}`: table `{}` has no column `{}`, which is in the source's key",
                    self.name, table.name, c.name
                )));
            };
            let array = ColumnArray::build(ty, &[&c.value]);
            let cast = if array.cast() {
                format!("::{ty}")
            } else {
                String::new()
            };
            matches.push(format!(
                "t.{} = (${}::{})[1]{cast}",
                ident(&c.name),
                n + 1,
                array.param_type(ty)
            ));
            params.push(array);
        }
        // The row is read and locked in the CTE, its version outside it:
        // when the lock waits for a concurrent writer, PostgreSQL reads the
        // row again, and only expressions over the locked row see the new
        // version (a function joined beside it would keep the old one's).
        let sql = format!(
            "WITH r AS (SELECT {}, t.xmin AS weir_xmin FROM {} AS t WHERE {} FOR UPDATE OF t) \
             SELECT r.*, (EXTRACT(epoch FROM x.timestamp) * 1000000)::int8, o.roname::text \
             FROM r \
             LEFT JOIN LATERAL pg_xact_commit_timestamp_origin(r.weir_xmin) AS x ON true \
             LEFT JOIN pg_replication_origin AS o ON o.roident = x.roident",
            columns.join(", "),
            table.quoted,
            matches.join(" AND ")
        );
        let conn = self.conn.as_mut().expect("connected in recover");
        let result = self.runtime.block_on(async {
            let mut decoders = Vec::with_capacity(table.oids.len());
            for (_, oid) in &table.oids {
                decoders.push(conn.types.resolve(&conn.client, *oid).await);
            }
            let statement = conn.prepared(&sql).await?;
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                params.iter().map(|p| p.as_param()).collect();
            let row = conn.client.query_opt(&statement, &refs).await?;
            Ok::<_, tokio_postgres::Error>((decoders, row))
        });
        let (decoders, row) = result.map_err(|e| {
            let user = &self.config.user;
            let error = if is_privilege(&e) {
                StageError::operator(format!(
                    "reading `{}` for conflict detection: user `{user}` lacks a privilege; run \
                     `GRANT SELECT, UPDATE ON {} TO {}` and `GRANT SELECT ON \
                     pg_replication_origin TO {}`",
                    table.name,
                    table.quoted,
                    ident(user),
                    ident(user)
                ))
            } else if e.as_db_error().is_some_and(|db| {
                db.code().code() == "55000" && db.message().contains("commit timestamp")
            }) {
                StageError::operator(format!(
                    "conflict detection reads when each target row was written, and database \
                     `{}` does not track it: run `ALTER SYSTEM SET track_commit_timestamp = on` \
                     and restart the server",
                    self.config.database
                ))
            } else {
                classify(
                    &e,
                    &format!("reading `{}` for conflict detection", table.name),
                )
            };
            if error.kind() != weir_core::ErrorKind::Event {
                self.conn = None;
            }
            error
        })?;
        let Some(row) = row else { return Ok(None) };
        let mut values = Vec::with_capacity(table.oids.len());
        for (i, ((name, _), ty)) in table.oids.iter().zip(decoders).enumerate() {
            let ty = ty.unwrap_or(PgType::Other);
            let value = match row.get::<_, Option<&str>>(i) {
                None => Value::Null,
                Some(text) => decode_text(ty, text).map_err(|e| {
                    StageError::operator(format!(
                        "reading `{}`.`{name}` for conflict detection: {e}",
                        table.name
                    ))
                })?,
            };
            values.push(Column::new(name.clone(), value));
        }
        // After the columns: the xmin, the commit time, the origin.
        let n = table.oids.len() + 1;
        Ok(Some(LocalRow {
            row: values,
            commit_time_us: row.get(n),
            origin: row.get(n + 1),
        }))
    }

    /// `destination`'s table, from the cache or the catalog; `None` when
    /// it does not exist.
    fn known_table(&mut self, destination: &str) -> Result<Option<Arc<Table>>, StageError> {
        let conn = self.conn.as_mut().expect("connected in recover");
        if let Some(t) = conn.tables.get(destination) {
            return Ok(Some(Arc::clone(t)));
        }
        let (schema, table) = self.target_of(destination)?;
        let conn = self.conn.as_mut().expect("connected in recover");
        let described = self
            .runtime
            .block_on(tables::describe(&conn.client, &schema, &table))
            .map_err(|e| classify(&e, "cannot read the target table's columns"))?;
        Ok(described.map(|t| {
            let t = Arc::new(t);
            conn.tables.insert(destination.to_owned(), Arc::clone(&t));
            t
        }))
    }
}
