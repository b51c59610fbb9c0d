//! End-to-end throughput: PostgreSQL -> weir -> JSON-lines files, beside
//! `pg_recvlogical` draining an identical slot in the same run.
//!
//! `cargo bench -p weir-pipeline --bench postgres_to_files [-- ROWS]`
//!
//! For each load shape (one big transaction; many small ones) it creates
//! one slot per contender, loads ROWS 8-column rows once, and then times
//! each contender draining its slot from the same starting point: first
//! `pg_recvlogical` (pgoutput, to /dev/null), then weir without plugins,
//! then weir with the bundled pii-mask, then `pg_recvlogical` again (the
//! faster of its two runs is the baseline, so neither side is favoured by
//! a warmer cache). It prints rows/s, the ratio to `pg_recvlogical`, and
//! weir's peak resident memory per run. Ratios, not
//! absolute numbers, are what to compare across machines.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{Row, child_run, plugins_toml, print_table, weir_in_child};
use weir_pipeline::PipelineConfig;
use weir_tests::ThrowawayPostgres;

mod common;

const TABLE: &str = "CREATE TABLE bench (
    id bigint PRIMARY KEY, customer text, email text, phone text,
    amount numeric(12,2), placed_at timestamptz, paid boolean, note text
)";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(&args[i + 1..]);
    }
    let rows: u64 = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let server = ThrowawayPostgres::start(&[("max_wal_size", "8GB"), ("checkpoint_timeout", "1h")])
        .unwrap_or_else(|e| panic!("{e}"));
    server.psql("postgres", "CREATE DATABASE db").unwrap();
    server.psql("db", TABLE).unwrap();
    server
        .psql("db", "CREATE PUBLICATION bench FOR TABLE bench")
        .unwrap();
    let mask = weir_tests::components::bundled("pii-mask");

    let shapes: [(&str, String); 2] = [
        (
            "one transaction",
            format!(
                "INSERT INTO bench SELECT i, 'Customer ' || i, 'user' || i || '@example.com', \
                 '+1 415 555 ' || lpad((i % 10000)::text, 4, '0'), (i % 1000) + 0.5, \
                 now(), i % 2 = 0, 'note ' || i FROM generate_series(1, {rows}) i"
            ),
        ),
        (
            "10 rows/transaction",
            format!(
                "DO $$ BEGIN FOR t IN 0..{} LOOP \
                 INSERT INTO bench SELECT i, 'Customer ' || i, 'user' || i || '@example.com', \
                 '+1 415 555 ' || lpad((i % 10000)::text, 4, '0'), (i % 1000) + 0.5, \
                 now(), i % 2 = 0, 'note ' || i FROM generate_series(t * 10 + 1, t * 10 + 10) i; \
                 COMMIT; END LOOP; END $$",
                rows / 10 - 1
            ),
        ),
    ];
    let mut results = Vec::new();
    for (n, (shape, load)) in shapes.iter().enumerate() {
        server.psql("db", "TRUNCATE bench").unwrap();
        for slot in ["recv", "plain", "mask", "recv2"] {
            server
                .psql(
                    "db",
                    &format!("SELECT pg_create_logical_replication_slot('{slot}_{n}', 'pgoutput')"),
                )
                .unwrap();
        }
        eprintln!("loading {rows} rows ({shape})...");
        server.psql("db", load).unwrap();
        let end = server.psql("db", "SELECT pg_current_wal_lsn()").unwrap();
        let end = end.trim();

        let recv = |slot: &str| recvlogical(&server, slot, end, rows, shape);
        results.push(recv(&format!("recv_{n}")));
        for (contender, slot, plugin) in [
            ("weir", format!("plain_{n}"), "none"),
            ("weir + pii-mask", format!("mask_{n}"), mask),
        ] {
            let port = server.port.to_string();
            let rows_arg = rows.to_string();
            results.push(weir_in_child(
                shape,
                contender,
                rows,
                &[&port, &slot, plugin, &rows_arg],
            ));
        }
        // pg_recvlogical again, last: neither side gets the colder cache.
        results.push(recv(&format!("recv2_{n}")));
    }
    print_table(&results, "pg_recvlogical");
}

/// Times `pg_recvlogical` draining `slot` up to `end`.
fn recvlogical(
    server: &ThrowawayPostgres,
    slot: &str,
    end: &str,
    rows: u64,
    shape: &'static str,
) -> Row {
    let started = Instant::now();
    let status = Command::new(server.bindir().join("pg_recvlogical"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-U",
            "postgres",
        ])
        .args(["-d", "db", "--slot", slot, "--start"])
        .args(["--endpos", end, "--no-loop", "-f", "/dev/null"])
        .args(["-o", "proto_version=1", "-o", "publication_names=bench"])
        .status()
        .expect("pg_recvlogical runs");
    assert!(status.success(), "pg_recvlogical failed");
    Row {
        shape,
        contender: "pg_recvlogical",
        secs: started.elapsed().as_secs_f64(),
        rows,
        peak_rss_mb: None,
    }
}

/// One weir run in this process: `PORT SLOT PLUGIN|none ROWS`; prints the
/// seconds and the peak resident memory in MB.
fn child(args: &[String]) {
    let [port, slot, plugin, rows] = args else {
        panic!("--child PORT SLOT PLUGIN ROWS");
    };
    let dir = std::env::temp_dir().join(format!("weir-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let plugin = (plugin != "none").then_some(plugin.as_str());
    let config = config(port.parse().unwrap(), &dir, slot, plugin);
    child_run(config, rows.parse().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

fn config(port: u16, dir: &Path, slot: &str, plugin: Option<&str>) -> PipelineConfig {
    let plugins = plugins_toml(plugin);
    let text = format!(
        r#"
name = "bench"
state_dir = "state"
[source]
kind = "postgres"
host = "127.0.0.1"
port = {port}
user = "postgres"
database = "db"
publication = "bench"
slot = "{slot}"
snapshot = "never"
{plugins}
[[sinks]]
name = "files"
kind = "file"
dir = "out"
"#,
    );
    PipelineConfig::from_str(&text, dir, &|name| std::env::var(name).ok())
        .unwrap_or_else(|e| panic!("{e}"))
}
