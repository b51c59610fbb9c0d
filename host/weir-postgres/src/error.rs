//! The PostgreSQL connector's one error type, and the SQLSTATE mapping
//! that decides its [`ErrorKind`]: retry, stop for the operator, or set
//! one event aside.

use std::fmt;

pub use weir_core::ErrorKind;
use weir_core::StageError;

/// An ErrorResponse from the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerError {
    /// SQLSTATE code.
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.code)?;
        if let Some(detail) = &self.detail {
            write!(f, "; {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong in the PostgreSQL source.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("cannot connect to PostgreSQL at {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("connection to PostgreSQL at {address} failed: {source}")]
    Io {
        address: String,
        source: std::io::Error,
    },
    #[error("PostgreSQL at {address} sent something weir does not understand: {reason}")]
    Protocol { address: String, reason: String },
    #[error("authentication as `{user}` failed: {reason}")]
    Auth { user: String, reason: String },
    #[error("PostgreSQL refused {context}: {error}")]
    Server { context: String, error: ServerError },
    #[error("{context}: {source}")]
    Sql {
        context: String,
        source: tokio_postgres::Error,
    },
    #[error("the server ended the replication stream")]
    StreamEnded,
    #[error("cannot decode a replication message at {lsn}: {source}")]
    Decode {
        lsn: crate::Lsn,
        source: crate::pgoutput::DecodeError,
    },
    /// The server is not set up for logical replication, or a table cannot
    /// be captured as configured. The message says what to run.
    #[error("{0}")]
    Setup(String),
}

impl PgError {
    /// What the pipeline should do about it: connection losses and the
    /// server's transient conditions are retried, everything else needs
    /// an operator (the message says what to do).
    pub fn kind(&self) -> ErrorKind {
        match self {
            PgError::Connect { .. } | PgError::Io { .. } | PgError::StreamEnded => {
                ErrorKind::Transient
            }
            PgError::Server { error, .. } => sqlstate_kind(&error.code),
            PgError::Sql { source, .. } => match source.as_db_error() {
                _ if source.is_closed() => ErrorKind::Transient,
                None => ErrorKind::Transient,
                Some(db) => sqlstate_kind(db.code().code()),
            },
            PgError::Protocol { .. }
            | PgError::Auth { .. }
            | PgError::Decode { .. }
            | PgError::Setup(_) => ErrorKind::Operator,
        }
    }

    pub(crate) fn sql(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> PgError {
        let context = context.into();
        move |source| PgError::Sql { context, source }
    }
}

/// The kind of a server error, by its SQLSTATE class
/// (<https://www.postgresql.org/docs/current/errcodes-appendix.html>).
///
/// - Retried: `08` connection exception, `40` transaction rollback
///   (serialization failure, deadlock), `53` insufficient resources (too
///   many connections, disk full while the operator frees space), `57`
///   operator intervention (admin shutdown, crash recovery), `58` system
///   error.
/// - One event's fault: `22` data exception and `23` integrity constraint
///   violation, raised by a statement that writes one event (the SQL sink's
///   apply); the source never writes, so it never sees them for an event.
/// - Everything else (privileges, missing objects, bad configuration)
///   needs an operator.
pub fn sqlstate_kind(code: &str) -> ErrorKind {
    match code.get(..2) {
        Some("08" | "40" | "53" | "57" | "58") => ErrorKind::Transient,
        Some("22" | "23") => ErrorKind::Event,
        _ => ErrorKind::Operator,
    }
}

impl From<PgError> for StageError {
    fn from(e: PgError) -> StageError {
        weir_connect::source_error(e.kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstate_classes_decide_the_kind() {
        for (code, kind) in [
            ("08006", ErrorKind::Transient),
            ("40001", ErrorKind::Transient),
            ("40P01", ErrorKind::Transient),
            ("53300", ErrorKind::Transient),
            ("57P01", ErrorKind::Transient),
            ("58030", ErrorKind::Transient),
            ("23505", ErrorKind::Event),
            ("22003", ErrorKind::Event),
            ("42501", ErrorKind::Operator),
            ("42P01", ErrorKind::Operator),
            ("55000", ErrorKind::Operator),
            ("", ErrorKind::Operator),
        ] {
            assert_eq!(sqlstate_kind(code), kind, "{code}");
        }
        let server = |code: &str| PgError::Server {
            context: "creating the slot".into(),
            error: ServerError {
                code: code.into(),
                ..ServerError::default()
            },
        };
        assert_eq!(
            StageError::from(server("57P01")).kind(),
            ErrorKind::Transient
        );
        assert_eq!(
            StageError::from(server("23505")).kind(),
            ErrorKind::Operator
        );
        assert_eq!(
            StageError::from(PgError::Setup("wal_level".into())).kind(),
            ErrorKind::Operator
        );
    }
}
