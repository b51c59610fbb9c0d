//! The PostgreSQL apply sink's large inserts (`COPY`, binary where every
//! column allows it, text otherwise): rows captured by the source arrive in
//! the target exactly as the source holds them, and a second apply of the
//! same rows falls back to upserts.

use std::time::Duration;

use serde_json::{Value as Json, json};
use weir_core::{ChangeEvent, Delivery, Sink};
use weir_postgres::{PostgresSinkConfig, PostgresTarget};
use weir_throwaway::ThrowawayPostgres;

use crate::{config, server, sql, start};

/// Only types with a binary form the sink writes.
const TABLES: &str = "
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE binary_kinds (
    id bigint PRIMARY KEY, c_small smallint, c_int int, c_num numeric(30,10),
    c_plain numeric, c_double double precision, c_bool boolean, c_text text,
    c_varchar varchar(20), c_bytea bytea, c_json json, c_jsonb jsonb, c_date date,
    c_time time, c_ts timestamp(3), c_tstz timestamptz, c_uuid uuid
);
CREATE TABLE text_kinds (
    id int PRIMARY KEY, c_real real, c_char char(3), c_enum mood, c_inet inet,
    c_num numeric, c_date date, c_ts timestamp, c_text text
);";

/// 100 rows of each table: every value kind, awkward text, a null in
/// every column of every seventh row. `text_kinds` has types without a
/// binary form the sink writes, and values (NaN, infinity) that have none.
const ROWS: &str = r#"
INSERT INTO binary_kinds SELECT i, -i, i * 1000, i * 1234.5678901 - 50000,
    CASE i % 3 WHEN 0 THEN 0 WHEN 1 THEN -0.000001 * i ELSE 123456789012345678901234 END,
    i / 7.0, i % 2 = 0, E'tab\there, newline\nthere, back\\slash ' || i, 'v' || i,
    decode(lpad(to_hex(i), 4, '0'), 'hex'), ('{"n": ' || i || '}')::json,
    ('{"n": [' || i || ', null]}')::jsonb, DATE '2024-02-29' + i - 50, TIME '00:00:00.000001' + i * INTERVAL '17 minutes',
    TIMESTAMP '1999-12-31 23:59:59.123' + i * INTERVAL '1 day', TIMESTAMPTZ '1970-01-01 00:00:00+00' - i * INTERVAL '1 year',
    md5(i::text)::uuid
  FROM generate_series(1, 100) i WHERE i % 7 <> 0;
INSERT INTO binary_kinds (id) SELECT i FROM generate_series(7, 100, 7) i;
INSERT INTO text_kinds SELECT i, i / 4.0, 'c' || (i % 10), 'happy', ('10.0.0.' || i)::inet,
    CASE WHEN i % 2 = 0 THEN 'NaN'::numeric ELSE i / 3.0 END, DATE 'infinity', TIMESTAMP '-infinity',
    E'héllo\t' || i
  FROM generate_series(1, 100) i WHERE i % 7 <> 0;
INSERT INTO text_kinds (id) SELECT i FROM generate_series(7, 100, 7) i;
"#;

/// The table's rows as psql prints them, in key order.
fn dump(server: &ThrowawayPostgres, database: &str, table: &str) -> String {
    server
        .psql(database, &format!("SELECT * FROM {table} ORDER BY id"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Applies `events` through a new sink named `name` into `replica`, on a
/// thread of its own (the sink blocks on its own runtime).
fn apply(server: &ThrowawayPostgres, name: &str, events: Vec<ChangeEvent>) {
    let config: PostgresSinkConfig = toml::from_str(&format!(
        "host = \"127.0.0.1\"\nport = {}\nuser = \"postgres\"\ndatabase = \"replica\"\n\
         replication_origin = \"\"",
        server.port
    ))
    .unwrap();
    let name = name.to_owned();
    std::thread::spawn(move || {
        let mut sink = PostgresTarget::sink(config, &name, "copy-test", None).unwrap();
        sink.recover(None).unwrap();
        let tables: Vec<String> = events.iter().map(ChangeEvent::qualified_table).collect();
        let deliveries: Vec<Delivery<'_>> = events
            .iter()
            .zip(&tables)
            .map(|(event, table)| Delivery {
                destination: table,
                event,
            })
            .collect();
        sink.write(&deliveries).unwrap();
        sink.flush(&json!({ "lsn": 1 })).unwrap();
    })
    .join()
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_inserts_arrive_as_the_source_holds_them_in_binary_and_text() {
    let server = server(&[("log_statement", "all")], TABLES);
    server.psql("postgres", "CREATE DATABASE replica").unwrap();
    server.psql("replica", TABLES).unwrap();
    sql(&server, ROWS);
    let mut cfg = config(&server);
    cfg.snapshot = true;
    let mut source = start(cfg, Json::Null);
    let events = source.collect(200, Duration::from_secs(60)).await;
    source.stop().await;

    apply(&server, "first", events.clone());
    for table in ["binary_kinds", "text_kinds"] {
        let count = format!("SELECT count(*) FROM {table}");
        assert_eq!(server.psql("replica", &count).unwrap().trim(), "100");
        assert_eq!(
            dump(&server, "replica", table),
            dump(&server, "db", table),
            "{table}"
        );
    }
    let log = std::fs::read_to_string(server.log_path()).unwrap();
    let copies: Vec<&str> = log.lines().filter(|l| l.contains("FROM STDIN")).collect();
    assert!(
        copies
            .iter()
            .any(|l| l.contains("binary_kinds") && l.ends_with("FROM STDIN (FORMAT binary)")),
        "{copies:#?}"
    );
    assert!(
        copies
            .iter()
            .any(|l| l.contains("text_kinds") && l.ends_with("FROM STDIN")),
        "{copies:#?}"
    );

    // The same rows again, by another sink: every key is taken, so the
    // `COPY` fails and the sink upserts instead.
    apply(&server, "second", events);
    for table in ["binary_kinds", "text_kinds"] {
        assert_eq!(
            dump(&server, "replica", table),
            dump(&server, "db", table),
            "{table}"
        );
    }
    let checkpoints = server
        .psql(
            "replica",
            "SELECT sink, delivered FROM weir_checkpoints ORDER BY sink",
        )
        .unwrap();
    assert_eq!(checkpoints.trim(), "first|200\nsecond|200");
}
