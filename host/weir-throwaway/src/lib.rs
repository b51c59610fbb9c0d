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

pub mod postgres;

pub use postgres::{ThrowawayError, ThrowawayPostgres};
