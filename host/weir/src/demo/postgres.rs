//! The demo's PostgreSQL: a throwaway server, the shop schema, the workload.

use anyhow::Context;
use tokio_postgres::{Client, NoTls};
use weir_throwaway::ThrowawayPostgres;

const SCHEMA: &str = "
CREATE TABLE customers (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    phone text,
    ssn text,
    card text,
    region text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    amount numeric(10,2) NOT NULL,
    status text NOT NULL,
    notes jsonb,
    placed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customers (name, email, phone, ssn, card, region)
SELECT 'Customer ' || i, 'customer' || i || '@example.com', '+1 415 555 ' || lpad((i % 10000)::text, 4, '0'),
       lpad((i % 1000)::text, 3, '0') || '-45-' || lpad((i % 10000)::text, 4, '0'),
       '4111 1111 1111 1111', (ARRAY['eu','us','apac'])[1 + i % 3]
FROM generate_series(1, 2000) i;
INSERT INTO orders (customer_id, amount, status, notes)
SELECT 1 + i % 2000, (i % 500) + 0.99, 'placed', jsonb_build_object('gift', i % 7 = 0)
FROM generate_series(1, 5000) i;
";

/// Starts the server and creates the shop database.
pub fn start() -> anyhow::Result<ThrowawayPostgres> {
    println!("==> Starting a throwaway PostgreSQL (initdb, wal_level=logical)");
    let server = ThrowawayPostgres::start(&[]).context("starting PostgreSQL")?;
    println!("    port {}, data in a temporary directory", server.port);
    server.psql("postgres", "CREATE DATABASE shop")?;
    server.psql("shop", SCHEMA)?;
    Ok(server)
}

/// The pipeline's `[source]` section.
pub fn source_toml(server: &ThrowawayPostgres) -> String {
    format!(
        r#"[source]
kind = "postgres"
host = "127.0.0.1"
port = {port}
user = "postgres"
database = "shop"
snapshot_chunk_rows = 1000
"#,
        port = server.port
    )
}

/// A client making the workload's transactions.
pub struct Workload(Client);

impl Workload {
    pub async fn connect(server: &ThrowawayPostgres) -> anyhow::Result<Workload> {
        let (client, connection) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user=postgres dbname=shop",
                server.port
            ),
            NoTls,
        )
        .await?;
        tokio::spawn(connection);
        Ok(Workload(client))
    }

    /// One round: a new customer, then one transaction with two orders for
    /// them, a shipped order and a changed phone number. Returns the number
    /// of row changes made.
    pub async fn round(&mut self, n: u64) -> anyhow::Result<u64> {
        let id: i64 = self
            .0
            .query_one(
                "WITH c AS (INSERT INTO customers (name, email, phone, ssn, card, region) \
                 VALUES ('New ' || $1::text, 'new' || $1::text || '@example.org', '+44 20 7946 0' || right($1::text, 3), \
                 '123-45-6789', '5500 0000 0000 0004', (ARRAY['eu','us','apac'])[1 + ($2::int8 % 3)]) RETURNING id) \
                 SELECT id FROM c",
                &[&n.to_string(), &(n as i64)],
            )
            .await?
            .get(0);
        self.0
            .batch_execute(&format!(
                "BEGIN; \
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
