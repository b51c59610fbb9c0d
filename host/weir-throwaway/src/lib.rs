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
//! - [`kafka`]: a Kafka-protocol broker (Tansu), in memory.

pub mod kafka;
pub mod mariadb;
pub mod postgres;

pub use kafka::ThrowawayKafka;
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

/// A fresh, empty directory for one server, under the system's temporary
/// directory.
fn scratch_dir(prefix: &str) -> Result<std::path::PathBuf, ThrowawayError> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| failed("creating the data directory", e))?;
    Ok(dir)
}

fn failed(step: &str, detail: impl std::fmt::Display) -> ThrowawayError {
    ThrowawayError::Failed {
        step: step.to_owned(),
        detail: detail.to_string(),
    }
}

/// A port free right now: the OS picks one, and the server binds it right
/// after (callers retry on the rare race).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
