//! MySQL / MariaDB for Weir: a source (row-based binlog capture) and an
//! apply sink (exactly-once).
//!
//! - [`config`]: the `[source] kind = "mysql"` (alias `"mariadb"`) section.
//! - [`checks`]: what the server must be set up with, each failing check
//!   naming the statement that fixes it.
//! - [`position`]: binlog file and position (and GTID state), and their order.
//! - [`gtid`]: MariaDB and MySQL GTIDs and the state a pipeline has read.
//! - [`lag`]: the binlog distance of the acknowledged position.
//! - [`rows`]: row images read against a layout built once per table map.
//! - [`values`]: binlog row values to typed [`weir_core::Value`]s.
//! - [`snapshot`]: the initial, consistent, lock-free snapshot (MariaDB).
//! - [`source`]: all of it together: the binlog stream as
//!   transaction-aligned batches.
//! - [`sink`]: the `[[sinks]] kind = "mysql"` apply sink.
//!
//! Tested against MariaDB 10.11. The MySQL-specific paths (GTID events, the
//! binary JSON type) follow the protocol but are untested here; see
//! `docs/mysql.md`.

pub mod checks;
pub mod config;
pub mod error;
pub mod gtid;
pub mod lag;
pub mod position;
pub mod rows;
pub mod sink;
pub mod snapshot;
pub mod source;
pub mod values;

pub use config::MysqlSourceConfig;
pub use error::MysqlError;
pub use position::{BinlogOrder, BinlogPosition};
pub use sink::{MysqlSink, MysqlSinkConfig, MysqlTarget};
pub use source::{MysqlSource, SourceSettings};
