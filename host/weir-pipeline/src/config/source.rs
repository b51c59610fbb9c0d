//! `[source]`: the source kinds a pipeline can read from. Adding a kind is
//! one line below and one crate that implements
//! [`weir_connect::SourceComponent`] on its config struct.

use super::kinds::component_kinds;

component_kinds! {
    /// A change source, chosen by `kind`.
    pub enum SourceConfig: dyn weir_connect::SourceComponent {
        /// PostgreSQL logical replication with the `pgoutput` plugin.
        Postgres(weir_postgres::PostgresSourceConfig) = "postgres";
        /// MySQL or MariaDB row-based binlog.
        Mysql(weir_mysql::MysqlSourceConfig) = "mysql" | "mariadb";
    }
}
