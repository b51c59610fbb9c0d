//! The PostgreSQL source's one error type.

use std::fmt;

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

/// What the pipeline should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The server or network failed; reconnecting after a delay may succeed.
    Transient,
    /// The server or its data is set up in a way weir cannot work with; an
    /// operator must act (the message says how).
    Operator,
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
    /// Whether retrying can help.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PgError::Connect { .. } | PgError::Io { .. } | PgError::StreamEnded => {
                ErrorKind::Transient
            }
            // Admin shutdown, crash recovery, too many connections.
            PgError::Server { error, .. }
                if error.code.starts_with("57") || error.code == "53300" =>
            {
                ErrorKind::Transient
            }
            PgError::Sql { source, .. } if source.is_closed() || source.as_db_error().is_none() => {
                ErrorKind::Transient
            }
            _ => ErrorKind::Operator,
        }
    }

    pub(crate) fn sql(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> PgError {
        let context = context.into();
        move |source| PgError::Sql { context, source }
    }
}
