//! End-to-end throughput: PostgreSQL -> weir -> JSON-lines files, beside
//! `pg_recvlogical` draining an identical slot in the same run.
//!
//! `cargo bench -p weir-pipeline --bench postgres_to_files [-- ROWS]`
//!
//! For each load shape (one big transaction; many small ones) it creates
//! one slot per contender, loads ROWS 8-column rows once, and then times
//! each contender draining its slot from the same starting point: first
//! `pg_recvlogical` (pgoutput, into a file), then weir without plugins,
//! then weir with the bundled pii-mask (no config: every detector) on the
//! default plugin workers (the machine's cores) and on one, then the
//! Python pii-mask (`examples/plugins/python/pii-mask`, built with the
//! componentize-py `scripts/test` installs; skipped with a note when it
//! is missing) on one and on two workers, then `pg_recvlogical` again
//! (the faster of its two runs is the baseline, so neither side is
//! favoured by a warmer cache). It prints rows/s, the ratio to
//! `pg_recvlogical`, and weir's peak resident memory per run. Ratios, not
//! absolute numbers, are what to compare across machines.
//!
//! `WEIR_BENCH_ONLY=python,1 worker` runs only the weir contenders whose
//! name contains one of the comma-separated parts, in any case (and both
//! baselines);
//! `WEIR_BENCH_CHANNEL_BYTES=N` sets `pipeline.channel_bytes` for them.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{Row, child_run, plugins_toml, print_table, weir_in_child};
use weir_pipeline::PipelineConfig;
use weir_plugin_build::guest::{GuestProject, Lang};
use weir_tests::ThrowawayPostgres;

mod common;

fn main() {
    let rows = match common::invocation() {
        common::Invocation::Child(args) => return child(&args),
        common::Invocation::Bench { rows } => rows,
    };
    let server = common::pg_bench_server();
    let mask = weir_tests::components::bundled("pii-mask");
    warm_compile_cache(mask);
    let python = python_pii_mask().filter(|_| {
        std::env::var("WEIR_BENCH_ONLY").map_or(true, |only| only.to_lowercase().contains("python"))
    });
    let mut contenders = vec![
        ("weir", "none", "default"),
        ("weir + pii-mask", mask, "default"),
        ("weir + pii-mask, 1 worker", mask, "1"),
    ];
    if let Some(python) = &python {
        contenders.push(("weir + Python pii-mask, 1 worker", python, "1"));
        contenders.push(("weir + Python pii-mask, 2 workers", python, "2"));
    }
    contenders.retain(|(name, _, _)| common::only(name));
    let slots: Vec<String> = (0..contenders.len()).map(|i| format!("weir{i}")).collect();
    let mut all_slots = vec!["recv"];
    all_slots.extend(slots.iter().map(String::as_str));
    all_slots.push("recv2");

    let shapes = common::pg_load_shapes(rows);
    let mut results = Vec::new();
    for (n, (shape, load)) in shapes.iter().enumerate() {
        common::pg_load(&server, n, &all_slots, shape, load, rows);
        let end = server.psql("db", "SELECT pg_current_wal_lsn()").unwrap();
        let end = end.trim();

        let recv = |slot: &str| recvlogical(&server, slot, end, rows, shape);
        results.push(recv(&format!("recv_{n}")));
        for ((contender, plugin, workers), slot) in contenders.iter().zip(&slots) {
            let port = server.port.to_string();
            let rows_arg = rows.to_string();
            let slot = format!("{slot}_{n}");
            results.push(weir_in_child(
                shape,
                contender,
                rows,
                &[&port, &slot, plugin, &rows_arg, workers],
            ));
        }
        // pg_recvlogical again, last: neither side gets the colder cache.
        results.push(recv(&format!("recv2_{n}")));
    }
    print_table(&results, "pg_recvlogical");
}

/// Times `pg_recvlogical` draining `slot` up to `end` into a file. A run
/// whose file holds fewer lines than rows (`--endpos` can stop on a
/// keepalive before the data) is reported as such and is no baseline.
fn recvlogical(
    server: &ThrowawayPostgres,
    slot: &str,
    end: &str,
    rows: u64,
    shape: &'static str,
) -> Row {
    let file = std::env::temp_dir().join(format!("weir-bench-recv-{}-{slot}", std::process::id()));
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
        .args(["--endpos", end, "--no-loop", "-f"])
        .arg(&file)
        .args(["-o", "proto_version=1", "-o", "publication_names=bench"])
        .status()
        .expect("pg_recvlogical runs");
    let secs = started.elapsed().as_secs_f64();
    assert!(status.success(), "pg_recvlogical failed");
    // One message a line (a pgoutput message may hold more newlines).
    let lines = std::fs::read(&file).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
    let _ = std::fs::remove_file(&file);
    let contender = if (lines as u64) < rows {
        eprintln!("pg_recvlogical stopped early on {slot}: {lines} lines for {rows} rows");
        "stopped early: pg_recvlogical"
    } else {
        "pg_recvlogical"
    };
    Row {
        shape,
        contender,
        secs,
        rows,
        peak_rss_mb: None,
    }
}

/// The Python pii-mask built with componentize-py, or `None` (with a
/// note) when componentize-py is not installed.
fn python_pii_mask() -> Option<String> {
    for (var, path) in weir_tests::installed_componentizers() {
        // SAFETY: single-threaded here, before anything reads the environment.
        unsafe { std::env::set_var(var, path) };
    }
    if std::env::var_os("WEIR_COMPONENTIZE_PY").is_none() {
        eprintln!(
            "componentize-py not found (run scripts/test once, or set WEIR_COMPONENTIZE_PY): \
             the Python pii-mask runs are skipped"
        );
        return None;
    }
    eprintln!("building examples/plugins/python/pii-mask...");
    let dir = weir_tests::repo_root().join("examples/plugins/python/pii-mask");
    let project = GuestProject::read(&dir, Lang::Python).unwrap_or_else(|e| panic!("{e}"));
    let wasm = project.build().unwrap_or_else(|e| panic!("{e}"));
    let wasm = wasm.to_str().expect("a UTF-8 path").to_owned();
    warm_compile_cache(&wasm);
    Some(wasm)
}

/// Compiles `component` into the compile cache the runs use, so that no
/// timed run pays for compiling it. Each build of the Python plugin is a
/// new component: without this, the first run to load it compiled it
/// (about 8 s and 400 MB for the Python pii-mask).
fn warm_compile_cache(component: &str) {
    let engine = weir_plugin::PluginEngine::new(weir_plugin::EngineOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let spec = weir_plugin::PluginSpec::new("warm-up", component);
    weir_plugin::TransformerPlugin::load(&engine, &spec).unwrap_or_else(|e| panic!("{e}"));
}

/// One weir run in this process: `PORT SLOT PLUGIN|none ROWS WORKERS`
/// (`default`: the machine's cores); prints the seconds and the peak
/// resident memory in MB.
fn child(args: &[String]) {
    let [port, slot, plugin, rows, workers] = args else {
        panic!("--child PORT SLOT PLUGIN ROWS WORKERS");
    };
    let dir = std::env::temp_dir().join(format!("weir-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let plugin = (plugin != "none").then_some(plugin.as_str());
    let mut config = config(port.parse().unwrap(), &dir, slot, plugin);
    config.pipeline.plugin_workers = workers.parse().ok();
    // WEIR_BENCH_CHANNEL_BYTES: the bytes between stages, to see what
    // the channels cost in memory and buy in speed.
    if let Some(bytes) = std::env::var("WEIR_BENCH_CHANNEL_BYTES")
        .ok()
        .and_then(|b| b.parse().ok())
    {
        config.pipeline.channel_bytes = bytes;
    }
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
