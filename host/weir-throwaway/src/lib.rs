//! Throwaway servers for the test suite, the benchmarks and `weir demo`:
//! real database servers started from the installed binaries, each in a
//! temporary directory on a free port, removed when dropped. No Docker, no
//! shared server, nothing left behind.
//!
//! This crate is kept out of the connector crates so that production code
//! never ships a test server; the `weir` binary links it only for `weir
//! demo` (its `demo` feature, on by default).
//!
//! - [`postgres`]: PostgreSQL with `wal_level = logical`.
//! - [`mariadb`]: MariaDB with a row-based binlog.

pub mod mariadb;
pub mod postgres;

pub use mariadb::ThrowawayMariadb;
pub use postgres::ThrowawayPostgres;

/// Why a throwaway server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ThrowawayError {
    #[error(
        "{server} server binaries ({binaries}) were not found: install them with \
         `apt-get install {package}` (Debian package `{package}`)"
    )]
    NotInstalled {
        server: &'static str,
        binaries: &'static str,
        package: &'static str,
    },
    #[error(
        "running as root, but there is no `postgres` system user to run the server as: install the Debian package `postgresql`, which creates it"
    )]
    NoPostgresUser,
    #[error("{step} failed: {detail}")]
    Failed { step: String, detail: String },
}
