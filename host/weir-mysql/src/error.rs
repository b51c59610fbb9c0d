//! The MySQL source's one error type, and the server error codes that
//! decide its [`ErrorKind`].

use weir_core::{ErrorKind, StageError};

/// Everything that can go wrong in the MySQL source.
#[derive(Debug, thiserror::Error)]
pub enum MysqlError {
    #[error("MySQL at {address}: {context}: {source}")]
    Client {
        address: String,
        context: String,
        source: mysql_async::Error,
    },
    #[error("MySQL at {address} ended the binlog stream")]
    StreamEnded { address: String },
    #[error("MySQL at {address} sent a binlog event weir cannot read: {reason}")]
    Decode { address: String, reason: String },
    /// The server is not set up for row-based capture, or the config names
    /// something it does not have. The message says what to run.
    #[error("{0}")]
    Setup(String),
}

impl MysqlError {
    /// What the pipeline should do about it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            MysqlError::Client { source, .. } => client_kind(source),
            MysqlError::StreamEnded { .. } => ErrorKind::Transient,
            MysqlError::Decode { .. } | MysqlError::Setup(_) => ErrorKind::Operator,
        }
    }

    pub(crate) fn client(
        address: &str,
        context: impl Into<String>,
    ) -> impl FnOnce(mysql_async::Error) -> MysqlError {
        let address = address.to_owned();
        let context = context.into();
        move |source| MysqlError::Client {
            address,
            context,
            source,
        }
    }
}

/// The kind of a client error: lost connections and the server's transient
/// conditions are retried; refusals need an operator.
pub fn client_kind(e: &mysql_async::Error) -> ErrorKind {
    match e {
        mysql_async::Error::Server(s) => server_code_kind(s.code),
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => ErrorKind::Transient,
        mysql_async::Error::Other(_) | mysql_async::Error::Url(_) => ErrorKind::Operator,
    }
}

/// Access denied for a privilege the statement needs.
pub(crate) const ER_SPECIFIC_ACCESS_DENIED: u16 = 1227;
/// The replication error for a binlog position (or GTID state) the server
/// cannot read from.
pub(crate) const ER_MASTER_FATAL_ERROR_READING_BINLOG: u16 = 1236;

/// The kind of a server error code
/// (<https://mariadb.com/kb/en/mariadb-error-code-reference/>).
pub fn server_code_kind(code: u16) -> ErrorKind {
    match code {
        // Too many connections, out of resources, server shutdown, lost
        // connection, lock wait timeout, deadlock, read-only for a moment.
        1040 | 1041 | 1053 | 1152 | 1153 | 1159 | 1160 | 1161 | 1205 | 1213 | 2006 | 2013 => {
            ErrorKind::Transient
        }
        // A row that does not fit (for the SQL apply sink): a NOT NULL
        // column, a duplicate key, truncated or incorrect values, out of
        // range, too long, a foreign key, a CHECK constraint (MySQL 3819,
        // MariaDB 4025), invalid JSON (MySQL).
        1048 | 1062 | 1264 | 1265 | 1292 | 1366 | 1406 | 1451 | 1452 | 1690 | 3140 | 3819
        | 4025 => ErrorKind::Event,
        _ => ErrorKind::Operator,
    }
}

impl From<MysqlError> for StageError {
    fn from(e: MysqlError) -> StageError {
        weir_connect::source_error(e.kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_codes_decide_the_kind() {
        assert_eq!(server_code_kind(1040), ErrorKind::Transient);
        assert_eq!(server_code_kind(1213), ErrorKind::Transient);
        assert_eq!(server_code_kind(1062), ErrorKind::Event);
        // Access denied, purged binlog.
        assert_eq!(server_code_kind(1045), ErrorKind::Operator);
        assert_eq!(server_code_kind(1236), ErrorKind::Operator);
    }
}
