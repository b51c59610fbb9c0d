//! What the server must be set up with before capture starts. Every failing
//! check is an operator error that names the statement that fixes it.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use tracing::warn;

use crate::error::{ER_SPECIFIC_ACCESS_DENIED, MysqlError};
use crate::position::BinlogPosition;
use crate::source::SourceSettings;

/// What the checks learned.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `VERSION()`.
    pub version: String,
    /// MariaDB rather than MySQL: GTIDs, the snapshot and some statements
    /// differ.
    pub mariadb: bool,
    /// The end of the binlog when the checks ran.
    pub end: BinlogPosition,
    /// The captured tables, `(database, table)`, by database and name.
    pub tables: Vec<(String, String)>,
}

/// Checks the binlog settings, the user's privileges and the captured
/// databases and tables.
pub async fn check_server(
    conn: &mut Conn,
    address: &str,
    settings: &SourceSettings,
) -> Result<ServerInfo, MysqlError> {
    let (log_bin, format, image, server_id, version): (String, String, String, String, String) =
        conn.query_first(
            "SELECT CAST(@@log_bin AS CHAR), @@binlog_format, @@binlog_row_image, \
             CAST(@@server_id AS CHAR), VERSION()",
        )
        .await
        .map_err(MysqlError::client(address, "reading the binlog settings"))?
        .ok_or_else(|| MysqlError::Setup(format!("MySQL at {address} returned no settings")))?;
    let fix = |what: &str| {
        format!("{what} (and set it in the server's config file so that it survives a restart)")
    };
    // `1` on some servers, `ON` on others.
    if !(log_bin == "1" || log_bin.eq_ignore_ascii_case("ON")) {
        return Err(MysqlError::Setup(format!(
            "binary logging is off on MySQL at {address}; start the server with `log_bin` and a `server_id` in its config file"
        )));
    }
    if !format.eq_ignore_ascii_case("ROW") {
        return Err(MysqlError::Setup(format!(
            "MySQL at {address} logs changes as `binlog_format = {format}`; weir reads row events: run {}",
            fix("SET GLOBAL binlog_format = 'ROW'")
        )));
    }
    if !image.eq_ignore_ascii_case("FULL") {
        return Err(MysqlError::Setup(format!(
            "MySQL at {address} logs `binlog_row_image = {image}`, which leaves columns out of row events; run {}",
            fix("SET GLOBAL binlog_row_image = 'FULL'")
        )));
    }
    let metadata: Option<(String, String)> = conn
        .query_first("SHOW GLOBAL VARIABLES LIKE 'binlog_row_metadata'")
        .await
        .map_err(MysqlError::client(address, "reading binlog_row_metadata"))?;
    match metadata {
        Some((_, value)) if !value.eq_ignore_ascii_case("FULL") => {
            return Err(MysqlError::Setup(format!(
                "MySQL at {address} logs `binlog_row_metadata = {value}`, so row events carry no column names or keys; run {}",
                fix("SET GLOBAL binlog_row_metadata = 'FULL'")
            )));
        }
        Some(_) => {}
        // Older servers (MariaDB before 10.5, MySQL before 8.0.1).
        None => {
            return Err(MysqlError::Setup(format!(
                "MySQL at {address} ({version}) has no `binlog_row_metadata`, so row events carry no column names; weir needs MariaDB 10.5 or MySQL 8.0.1 or later"
            )));
        }
    }
    if server_id == settings.server_id.to_string() {
        return Err(MysqlError::Setup(format!(
            "MySQL at {address} has server_id {server_id}, the replica id this pipeline would register with; set the source's `server_id` to another number"
        )));
    }

    // More columns than these two, and how many depends on the server.
    let status: Option<Row> = match conn.query_first("SHOW MASTER STATUS").await {
        Ok(row) => row,
        Err(mysql_async::Error::Server(e)) if e.code == ER_SPECIFIC_ACCESS_DENIED => {
            return Err(MysqlError::Setup(format!(
                "user `{user}` may not read the binlog position on MySQL at {address}: run GRANT BINLOG MONITOR ON *.* TO '{user}'@'%' (MariaDB 10.5 and later; GRANT REPLICATION CLIENT on MySQL), and GRANT REPLICATION SLAVE ON *.* TO '{user}'@'%'",
                user = settings.connect.user
            )));
        }
        Err(e) => {
            return Err(MysqlError::client(address, "reading the binlog position")(
                e,
            ));
        }
    };
    let mariadb = version.contains("MariaDB");
    let Some(end) = status.as_ref().and_then(master_status) else {
        return Err(MysqlError::Setup(format!(
            "MySQL at {address} reports no binlog position (SHOW MASTER STATUS is empty): binary logging is off; start the server with `log_bin`"
        )));
    };

    let schemas: Vec<String> = conn
        .query("SELECT schema_name FROM information_schema.schemata")
        .await
        .map_err(MysqlError::client(address, "listing databases"))?;
    for d in &settings.databases {
        if !schemas.contains(d) {
            return Err(MysqlError::Setup(format!(
                "database `{d}` (source.databases) does not exist on MySQL at {address}, or user `{}` may not see it",
                settings.connect.user
            )));
        }
    }
    // Only the captured databases: information_schema opens every table
    // it lists, which on a large server takes long.
    let placeholders = vec!["?"; settings.databases.len()].join(", ");
    let tables: Vec<(String, String, i64)> = conn
        .exec(
            format!(
                "SELECT t.table_schema, t.table_name, \
                 (SELECT count(*) FROM information_schema.table_constraints c \
                  WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name \
                  AND c.constraint_type = 'PRIMARY KEY') \
                 FROM information_schema.tables t \
                 WHERE t.table_type = 'BASE TABLE' AND t.table_schema IN ({placeholders}) \
                 ORDER BY t.table_schema, t.table_name"
            ),
            settings.databases.clone(),
        )
        .await
        .map_err(MysqlError::client(address, "listing tables"))?;
    for t in &settings.tables {
        if !tables
            .iter()
            .any(|(db, name, _)| format!("{db}.{name}") == *t)
        {
            return Err(MysqlError::Setup(format!(
                "table `{t}` (source.tables) does not exist on MySQL at {address}"
            )));
        }
    }
    for (db, name, keys) in &tables {
        if *keys == 0 && settings.captures(db, name) {
            warn!(table = %format!("{db}.{name}"),
                "The table has no primary key; its updates and deletes carry the whole row as key.");
        }
    }
    Ok(ServerInfo {
        version,
        mariadb,
        end,
        tables: tables
            .into_iter()
            .filter(|(db, name, _)| settings.captures(db, name))
            .map(|(db, name, _)| (db, name))
            .collect(),
    })
}

/// The position in a `SHOW MASTER STATUS` row, with MySQL's executed GTID
/// set (its fifth column, empty when `gtid_mode` is off).
pub fn master_status(row: &Row) -> Option<BinlogPosition> {
    let mut end = BinlogPosition::new(row.get::<String, _>(0)?, row.get::<u64, _>(1)?);
    if row.len() > 4 {
        end.gtid = row
            .get::<String, _>(4)
            .filter(|g| !g.trim().is_empty())
            .map(|g| g.replace('\n', ""));
    }
    Some(end)
}

/// MariaDB's GTID state at a binlog position (`BINLOG_GTID_POS`); `None`
/// where no GTID was logged before it.
pub async fn mariadb_gtid_at(
    conn: &mut Conn,
    address: &str,
    at: &BinlogPosition,
) -> Result<Option<String>, MysqlError> {
    let gtid: Option<Option<String>> = conn
        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&at.file, at.pos))
        .await
        .map_err(MysqlError::client(
            address,
            "reading the GTID state at a binlog position",
        ))?;
    Ok(gtid.flatten().filter(|g| !g.is_empty()))
}

/// Checks that the binlog file a checkpoint resumes in is still on the
/// server: a purged one means changes were lost to the pipeline. (A resume
/// by GTID is checked by the server when the stream starts.)
pub async fn check_resume(
    conn: &mut Conn,
    address: &str,
    resume: &BinlogPosition,
) -> Result<(), MysqlError> {
    let logs: Vec<Row> = conn
        .query("SHOW BINARY LOGS")
        .await
        .map_err(MysqlError::client(address, "listing the binlog files"))?;
    if logs
        .iter()
        .any(|r| r.get::<String, _>(0).as_deref() == Some(resume.file.as_str()))
    {
        Ok(())
    } else {
        Err(purged(address, resume))
    }
}

/// The operator error for a resume point the server no longer has.
pub fn purged(address: &str, resume: &BinlogPosition) -> MysqlError {
    MysqlError::Setup(format!(
        "the checkpoint resumes at binlog {resume}, which MySQL at {address} no longer has (purged, or the server's binlog was reset): changes made since are lost to this pipeline. Remove the pipeline's state directory to start over from the binlog's current end (and copy the tables again), and keep binlogs longer (`binlog_expire_logs_seconds`, `expire_logs_days`)"
    ))
}
