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

fn main() {
    let rows = match common::invocation() {
        common::Invocation::Child(args) => return child(&args),
        common::Invocation::Bench { rows } => rows,
    };
    let server = common::pg_bench_server();
    let mask = weir_tests::components::bundled("pii-mask");

    let shapes = common::pg_load_shapes(rows);
    let mut results = Vec::new();
    for (n, (shape, load)) in shapes.iter().enumerate() {
        common::pg_load(
            &server,
            n,
            &["recv", "plain", "mask", "recv2"],
            shape,
            load,
            rows,
        );
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
    let rest = format!(
        "{}\n[[sinks]]\nname = \"files\"\nkind = \"file\"\ndir = \"out\"\n",
        plugins_toml(plugin)
    );
    common::pg_pipeline(port, slot, &rest, dir)
}
