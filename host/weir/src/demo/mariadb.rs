//! The demo's MariaDB: a throwaway server, the shop schema, the workload.

use anyhow::Context;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use weir_throwaway::ThrowawayMariadb;

const SCHEMA: &str = "
CREATE DATABASE shop;
USE shop;
CREATE TABLE customers (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    email VARCHAR(200) NOT NULL,
    phone VARCHAR(40),
    ssn VARCHAR(20),
    card VARCHAR(30),
    region VARCHAR(10) NOT NULL,
    created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
);
CREATE TABLE orders (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    amount DECIMAL(10,2) NOT NULL,
    status VARCHAR(40) NOT NULL,
    notes JSON,
    placed_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
);
INSERT INTO customers (name, email, phone, ssn, card, region)
SELECT CONCAT('Customer ', seq), CONCAT('customer', seq, '@example.com'),
       CONCAT('+1 415 555 ', LPAD(seq % 10000, 4, '0')),
       CONCAT(LPAD(seq % 1000, 3, '0'), '-45-', LPAD(seq % 10000, 4, '0')),
       '4111 1111 1111 1111', ELT(1 + seq % 3, 'eu', 'us', 'apac')
FROM seq_1_to_2000;
INSERT INTO orders (customer_id, amount, status, notes)
SELECT 1 + seq % 2000, (seq % 500) + 0.99, 'placed', JSON_OBJECT('gift', seq % 7 = 0)
FROM seq_1_to_5000;
";

/// Starts the server and creates the shop database.
pub fn start() -> anyhow::Result<ThrowawayMariadb> {
    println!("==> Starting a throwaway MariaDB (mariadb-install-db, log_bin, binlog_format=ROW)");
    let server = ThrowawayMariadb::start(&[]).context("starting MariaDB")?;
    println!("    port {}, data in a temporary directory", server.port);
    server.sql(SCHEMA)?;
    Ok(server)
}

/// The pipeline's `[source]` section.
pub fn source_toml(server: &ThrowawayMariadb) -> String {
    format!(
        r#"[source]
kind = "mariadb"
host = "127.0.0.1"
port = {port}
user = "{user}"
password = "{password}"
databases = ["shop"]
"#,
        port = server.port,
        user = ThrowawayMariadb::USER,
        password = ThrowawayMariadb::PASSWORD,
    )
}

/// A client making the workload's transactions.
pub struct Workload(Conn);

impl Workload {
    pub async fn connect(server: &ThrowawayMariadb) -> anyhow::Result<Workload> {
        let opts = OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(server.port)
            .user(Some(ThrowawayMariadb::USER))
            .pass(Some(ThrowawayMariadb::PASSWORD))
            .db_name(Some("shop"))
            .prefer_socket(false);
        Ok(Workload(Conn::new(opts).await?))
    }

    /// The same round as on PostgreSQL. Every statement changes its rows
    /// (MySQL logs no event for an update that leaves a row as it was).
    pub async fn round(&mut self, n: u64) -> anyhow::Result<u64> {
        let region = ["eu", "us", "apac"][(n % 3) as usize];
        self.0
            .exec_drop(
                "INSERT INTO customers (name, email, phone, ssn, card, region) \
                 VALUES (CONCAT('New ', ?), CONCAT('new', ?, '@example.org'), CONCAT('+44 20 7946 0', RIGHT(?, 3)), \
                 '123-45-6789', '5500 0000 0000 0004', ?)",
                (n, n, n, region),
            )
            .await?;
        let id = self
            .0
            .last_insert_id()
            .context("no id for the new customer")?;
        self.0
            .query_drop(format!(
                "START TRANSACTION; \
                 INSERT INTO orders (customer_id, amount, status) VALUES ({id}, 19.99, 'placed'), ({id}, 5.00, 'placed'); \
                 UPDATE orders SET status = 'shipped {n}' WHERE id = {}; \
                 UPDATE customers SET phone = '+1 212 555 {n}' WHERE id = {}; \
                 COMMIT",
                1 + n % 5000,
                1 + n % 2000
            ))
            .await?;
        Ok(5)
    }
}
