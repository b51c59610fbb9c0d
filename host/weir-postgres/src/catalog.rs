//! What the source needs to know from the server's catalogs before it
//! starts: whether logical replication can work at all, which tables it
//! captures, their columns, types and keys. Every check that fails says what
//! to run to fix it.

use std::collections::BTreeMap;
use std::collections::HashMap;

use tokio_postgres::Client;
use tracing::{info, warn};

use crate::error::PgError;
use crate::replication::{quote_ident, quote_literal};
use crate::types::PgType;

/// A captured table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub schema: String,
    pub name: String,
    pub columns: Vec<ColumnInfo>,
    /// Indexes into `columns` of the primary key, in key order; empty when
    /// the table has none (it is then captured under REPLICA IDENTITY FULL).
    pub primary_key: Vec<usize>,
}

impl TableInfo {
    /// `"schema"."table"`, quoted for SQL.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }

    /// `schema.table`, as users write it.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// A column of a captured table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub name: String,
    pub ty: PgType,
}

/// The state of an existing replication slot.
#[derive(Debug, Clone)]
pub struct SlotInfo {
    pub confirmed_flush: Option<crate::Lsn>,
}

/// Fails unless the server can serve logical replication to this user.
pub async fn check_server(client: &Client, user: &str) -> Result<(), PgError> {
    let row = client
        .query_one("SELECT current_setting('wal_level')", &[])
        .await
        .map_err(PgError::sql("reading wal_level"))?;
    let wal_level: String = row.get(0);
    if wal_level != "logical" {
        return Err(PgError::Setup(format!(
            "the server's wal_level is `{wal_level}`, but logical replication needs `logical`: \
             run `ALTER SYSTEM SET wal_level = logical;` and restart PostgreSQL"
        )));
    }
    let row = client
        .query_one(
            "SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(PgError::sql("reading the user's privileges"))?;
    if !row.get::<_, bool>(0) {
        return Err(PgError::Setup(format!(
            "user `{user}` lacks the REPLICATION privilege: run `ALTER ROLE {} REPLICATION;` \
             as a superuser",
            quote_ident(user)
        )));
    }
    Ok(())
}

/// The slot `slot`, if it exists; fails if another process is streaming
/// from it or it belongs to another database or plugin.
pub async fn check_slot(
    client: &Client,
    slot: &str,
    database: &str,
) -> Result<Option<SlotInfo>, PgError> {
    let rows = client
        .query(
            "SELECT active, active_pid, plugin, database, confirmed_flush_lsn::text \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(PgError::sql(format!("looking up replication slot {slot}")))?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let active: bool = row.get(0);
    let pid: Option<i32> = row.get(1);
    let plugin: Option<String> = row.get(2);
    let slot_db: Option<String> = row.get(3);
    if active {
        return Err(PgError::Setup(format!(
            "replication slot `{slot}` is in use by another process (pid {}): stop the other \
             consumer, or run `SELECT pg_terminate_backend({});` if it is a stale weir, or \
             configure a different slot",
            pid.unwrap_or_default(),
            pid.unwrap_or_default()
        )));
    }
    if plugin.as_deref() != Some("pgoutput") {
        return Err(PgError::Setup(format!(
            "replication slot `{slot}` uses output plugin `{}`, but weir needs `pgoutput`: \
             configure another slot name, or drop this one with \
             `SELECT pg_drop_replication_slot('{slot}');`",
            plugin.unwrap_or_else(|| "none (physical slot)".into())
        )));
    }
    if slot_db.as_deref() != Some(database) {
        return Err(PgError::Setup(format!(
            "replication slot `{slot}` belongs to database `{}`, not `{database}`: configure \
             another slot name",
            slot_db.unwrap_or_default()
        )));
    }
    let confirmed: Option<String> = row.get(4);
    Ok(Some(SlotInfo {
        confirmed_flush: confirmed.and_then(|s| s.parse().ok()),
    }))
}

/// Makes sure publication `publication` exists, creating it for `tables`
/// (`schema.table`, or all tables when empty), and returns the tables it
/// publishes.
pub async fn ensure_publication(
    client: &Client,
    publication: &str,
    tables: &[String],
) -> Result<Vec<(String, String)>, PgError> {
    let exists = !client
        .query(
            "SELECT 1 FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(PgError::sql("looking up the publication"))?
        .is_empty();
    if !exists {
        let target = if tables.is_empty() {
            "ALL TABLES".to_owned()
        } else {
            let mut names = Vec::new();
            for t in tables {
                let (schema, name) = split_table(t);
                let found = client
                    .query(
                        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                         WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
                        &[&schema, &name],
                    )
                    .await
                    .map_err(PgError::sql("looking up captured tables"))?;
                if found.is_empty() {
                    return Err(PgError::Setup(format!(
                        "table `{schema}.{name}` (source.tables) does not exist in the database"
                    )));
                }
                names.push(format!("{}.{}", quote_ident(schema), quote_ident(name)));
            }
            format!("TABLE {}", names.join(", "))
        };
        client
            .batch_execute(&format!(
                "CREATE PUBLICATION {} FOR {target}",
                quote_ident(publication)
            ))
            .await
            .map_err(PgError::sql(format!("creating publication {publication}")))?;
        info!(publication, "Publication created.");
    }
    let rows = client
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables \
             WHERE pubname = $1 ORDER BY 1, 2",
            &[&publication],
        )
        .await
        .map_err(PgError::sql("listing the publication's tables"))?;
    let published: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    if exists && !tables.is_empty() {
        for t in tables {
            let (schema, name) = split_table(t);
            if !published.iter().any(|(s, n)| s == schema && n == name) {
                warn!(
                    publication,
                    table = %t,
                    "The existing publication does not include a configured table; its changes \
                     will not be captured. Add it with ALTER PUBLICATION ... ADD TABLE."
                );
            }
        }
    }
    Ok(published)
}

/// Columns, types and keys of each table, checking that updates and
/// deletes will carry a usable before image.
pub async fn describe_tables(
    client: &Client,
    tables: &[(String, String)],
    types: &mut TypeCache,
) -> Result<Vec<TableInfo>, PgError> {
    let mut out = Vec::with_capacity(tables.len());
    let mut problems = Vec::new();
    for (schema, name) in tables {
        let rel = client
            .query_one(
                "SELECT c.oid, c.relreplident::text FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[schema, name],
            )
            .await
            .map_err(PgError::sql(format!("describing table {schema}.{name}")))?;
        let oid: u32 = rel.get(0);
        let identity: String = rel.get(1);
        let cols = client
            .query(
                "SELECT a.attname::text, a.atttypid, \
                 COALESCE((SELECT array_position(string_to_array(i.indkey::text, ' ')::int2[], \
                           a.attnum) FROM pg_index i \
                           WHERE i.indrelid = a.attrelid AND i.indisprimary), 0)::int4 \
                 FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 \
                 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&oid],
            )
            .await
            .map_err(PgError::sql(format!("describing table {schema}.{name}")))?;
        let mut columns = Vec::with_capacity(cols.len());
        let mut key: Vec<(i32, usize)> = Vec::new();
        for (i, c) in cols.iter().enumerate() {
            let type_oid: u32 = c.get(1);
            columns.push(ColumnInfo {
                name: c.get(0),
                ty: types.resolve(client, type_oid).await?,
            });
            let pos: i32 = c.get(2);
            if pos > 0 {
                key.push((pos, i));
            }
        }
        key.sort_unstable();
        let table = TableInfo {
            schema: schema.clone(),
            name: name.clone(),
            columns,
            primary_key: key.into_iter().map(|(_, i)| i).collect(),
        };
        match identity.as_str() {
            "d" if table.primary_key.is_empty() => problems.push(format!(
                "table `{}` has no primary key and REPLICA IDENTITY DEFAULT, so its updates and \
                 deletes would carry no before image: add a primary key, or run \
                 `ALTER TABLE {} REPLICA IDENTITY FULL;`",
                table.qualified(),
                table.quoted()
            )),
            "n" => problems.push(format!(
                "table `{}` has REPLICA IDENTITY NOTHING, so its updates and deletes would carry \
                 no before image: run `ALTER TABLE {} REPLICA IDENTITY FULL;` (or DEFAULT with a \
                 primary key)",
                table.qualified(),
                table.quoted()
            )),
            _ => {}
        }
        out.push(table);
    }
    if !problems.is_empty() {
        return Err(PgError::Setup(problems.join("\n")));
    }
    Ok(out)
}

/// Type OIDs seen so far and how their values decode.
#[derive(Debug, Default)]
pub struct TypeCache {
    known: HashMap<u32, PgType>,
}

impl TypeCache {
    /// How values of type `oid` decode, looking user-defined types (enums,
    /// arrays of them, domains...) up in `pg_type` once.
    pub async fn resolve(&mut self, client: &Client, oid: u32) -> Result<PgType, PgError> {
        if let Some(ty) = PgType::from_oid(oid) {
            return Ok(ty);
        }
        if let Some(ty) = self.known.get(&oid) {
            return Ok(*ty);
        }
        let rows = client
            .query(
                "SELECT typcategory::text FROM pg_type WHERE oid = $1",
                &[&oid],
            )
            .await
            .map_err(PgError::sql(format!("looking up type {oid}")))?;
        let category = rows
            .first()
            .and_then(|r| r.get::<_, String>(0).chars().next())
            .unwrap_or('X');
        let ty = PgType::from_category(category);
        self.known.insert(oid, ty);
        Ok(ty)
    }
}

/// The planner's row estimate (`pg_class.reltuples`) per `schema.table`,
/// for snapshot progress, in one query; tables never analyzed have none.
/// A failed query only costs the estimates.
pub async fn estimated_rows(client: &Client, tables: &[TableInfo]) -> BTreeMap<String, u64> {
    let schemas: Vec<&str> = tables.iter().map(|t| t.schema.as_str()).collect();
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    let rows = client
        .query(
            "SELECT n.nspname, c.relname, c.reltuples::float8 \
             FROM unnest($1::text[], $2::text[]) AS t(nspname, relname) \
             JOIN pg_namespace n ON n.nspname = t.nspname \
             JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.relname",
            &[&schemas, &names],
        )
        .await;
    match rows {
        Ok(rows) => rows
            .iter()
            .filter_map(|row| {
                let n: f64 = row.get(2);
                (n >= 0.0).then(|| {
                    let (schema, name): (&str, &str) = (row.get(0), row.get(1));
                    (format!("{schema}.{name}"), n as u64)
                })
            })
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "No row estimates for the snapshot.");
            BTreeMap::new()
        }
    }
}

/// `schema.table` or `table` (in `public`).
pub fn split_table(name: &str) -> (&str, &str) {
    name.split_once('.').unwrap_or(("public", name))
}

/// A row-value literal list for keyset pagination: `('a', 'b')`.
pub fn key_literal(values: &[String]) -> String {
    let parts: Vec<String> = values.iter().map(|v| quote_literal(v)).collect();
    format!("({})", parts.join(", "))
}
