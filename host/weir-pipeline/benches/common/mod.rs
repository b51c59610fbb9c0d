//! What the end-to-end benches share: a weir run in a child process (so
//! that its peak resident memory is its own), draining a pipeline until a
//! number of events is written, and the table of results.

// Each bench compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use weir_pipeline::{PipelineConfig, Stats};

// The allocator `weir` runs with (decision 0017).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What a bench binary was asked to do: a run of one contender in this
/// process (`--child ARGS…`), or the whole bench over ROWS rows.
pub enum Invocation {
    Child(Vec<String>),
    Bench { rows: u64 },
}

/// Reads the command line: `--child ARGS…`, or an optional ROWS
/// (default 200,000).
pub fn invocation() -> Invocation {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return Invocation::Child(args[i + 1..].to_vec());
    }
    let rows = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    Invocation::Bench { rows }
}

/// The PostgreSQL benches' table: 8 columns, some of them PII.
pub const PG_TABLE: &str = "CREATE TABLE bench (
    id bigint PRIMARY KEY, customer text, email text, phone text,
    amount numeric(12,2), placed_at timestamptz, paid boolean, note text
)";

/// A throwaway PostgreSQL for the benches: database `db` with
/// [`PG_TABLE`] and publication `bench`, WAL kept for large loads.
pub fn pg_bench_server() -> weir_tests::ThrowawayPostgres {
    let server = weir_tests::ThrowawayPostgres::start(&[
        ("max_wal_size", "8GB"),
        ("checkpoint_timeout", "1h"),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    server.psql("postgres", "CREATE DATABASE db").unwrap();
    server.psql("db", PG_TABLE).unwrap();
    server
        .psql("db", "CREATE PUBLICATION bench FOR TABLE bench")
        .unwrap();
    server
}

/// Empties the table, creates a pgoutput slot `<name>_<n>` for each of
/// `slots` (so each contender reads from the same point), then runs `load`.
pub fn pg_load(
    server: &weir_tests::ThrowawayPostgres,
    n: usize,
    slots: &[&str],
    shape: &str,
    load: &str,
    rows: u64,
) {
    server.psql("db", "TRUNCATE bench").unwrap();
    for slot in slots {
        server
            .psql(
                "db",
                &format!("SELECT pg_create_logical_replication_slot('{slot}_{n}', 'pgoutput')"),
            )
            .unwrap();
    }
    eprintln!("loading {rows} rows ({shape})...");
    server.psql("db", load).unwrap();
}

/// The PostgreSQL benches' load shapes over `rows` rows of [`PG_TABLE`]:
/// one transaction, and transactions of 10 rows.
pub fn pg_load_shapes(rows: u64) -> [(&'static str, String); 2] {
    let select = "SELECT i, 'Customer ' || i, 'user' || i || '@example.com', \
                  '+1 415 555 ' || lpad((i % 10000)::text, 4, '0'), (i % 1000) + 0.5, \
                  now(), i % 2 = 0, 'note ' || i";
    [
        (
            "one transaction",
            format!("INSERT INTO bench {select} FROM generate_series(1, {rows}) i"),
        ),
        (
            "10 rows/transaction",
            format!(
                "DO $$ BEGIN FOR t IN 0..{} LOOP \
                 INSERT INTO bench {select} FROM generate_series(t * 10 + 1, t * 10 + 10) i; \
                 COMMIT; END LOOP; END $$",
                rows / 10 - 1
            ),
        ),
    ]
}

/// A bench pipeline: the `bench` publication through `slot` of the
/// throwaway PostgreSQL on `port` (no snapshot), then `rest` (plugins and
/// sinks) verbatim; relative paths resolve against `dir`.
pub fn pg_pipeline(port: u16, slot: &str, rest: &str, dir: &std::path::Path) -> PipelineConfig {
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
{rest}
"#,
    );
    PipelineConfig::from_str(&text, dir, &|name| std::env::var(name).ok())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// One contender's run.
pub struct Row {
    pub shape: &'static str,
    pub contender: &'static str,
    pub secs: f64,
    pub rows: u64,
    pub peak_rss_mb: Option<f64>,
}

/// The `[[plugins]]` section for the bundled pii-mask at `path`, if any.
pub fn plugins_toml(path: Option<&str>) -> String {
    path.map(|p| {
        format!(
            "[[plugins]]\nname = \"pii-mask\"\npath = \"{p}\"\n[trust]\nallow_unsigned = true\n"
        )
    })
    .unwrap_or_default()
}

/// The command that re-runs this bench as contender `contender` of
/// `shape`. WEIR_BENCH_PERF=DIR records each run with `perf` into
/// DIR/<shape>-<contender>.data (with WEIR_PERFMAP=1, guest code is named
/// too): where the time goes, per thread (stage) and function.
pub fn child_command(shape: &str, contender: &str) -> Command {
    let exe = std::env::current_exe().unwrap();
    match std::env::var_os("WEIR_BENCH_PERF") {
        Some(dir) => {
            let file = format!("{shape}-{contender}.data").replace([' ', '/', '+', '>'], "_");
            let mut perf = Command::new("perf");
            perf.args(["record", "-F", "999", "-q", "-o"])
                .arg(Path::new(&dir).join(file))
                .arg("--")
                .arg(exe);
            perf
        }
        None => Command::new(exe),
    }
}

/// Runs this bench again as `--child ARGS…` and reads the seconds and
/// peak memory it printed.
pub fn weir_in_child(
    shape: &'static str,
    contender: &'static str,
    rows: u64,
    args: &[&str],
) -> Row {
    let out = child_command(shape, contender)
        .arg("--child")
        .args(args)
        .output()
        .expect("the bench re-runs itself");
    let (secs, peak_rss_mb) = child_result(&out, shape, contender);
    Row {
        shape,
        contender,
        secs,
        rows,
        peak_rss_mb,
    }
}

/// What a finished child run printed: its seconds and peak memory in MB.
/// Shows its `summary:` line (every line with WEIR_BENCH_TRACE) and fails
/// the bench if the run failed.
pub fn child_result(
    out: &std::process::Output,
    shape: &str,
    contender: &str,
) -> (f64, Option<f64>) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let trace = std::env::var_os("WEIR_BENCH_TRACE").is_some();
    for line in stderr
        .lines()
        .filter(|l| trace || l.starts_with("summary:"))
    {
        eprintln!("{shape}, {contender}: {line}");
    }
    assert!(out.status.success(), "{contender} failed: {stdout}{stderr}");
    let mut fields = stdout.split_whitespace().map(|f| f.parse::<f64>().unwrap());
    (fields.next().unwrap(), fields.next())
}

/// The child's side: runs `config` until `rows` events are written and
/// prints the seconds and the peak resident memory in MB.
pub fn child_run(config: PipelineConfig, rows: u64) {
    child_run_observed(config, rows, |_, _| async {});
}

/// [`child_run`], with `observe` started beside the pipeline (before it)
/// on the pipeline's counters and stop signal: an admin API, a scraper.
pub fn child_run_observed<F, Fut>(config: PipelineConfig, rows: u64, observe: F)
where
    F: FnOnce(Arc<Stats>, watch::Receiver<bool>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let secs = runtime.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stats = Arc::new(Stats::default());
        let observer = tokio::spawn(observe(Arc::clone(&stats), stop_rx.clone()));
        let secs = drain(config, rows, stats, stop_tx, stop_rx).await;
        observer.abort();
        secs
    });
    println!("{secs} {}", peak_rss_mb().unwrap_or(0.0));
}

/// Runs a pipeline until `rows` events are written; returns the seconds.
async fn drain(
    config: PipelineConfig,
    rows: u64,
    stats: Arc<Stats>,
    stop_tx: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
) -> f64 {
    let started = Instant::now();
    let task = {
        let stats = Arc::clone(&stats);
        tokio::spawn(async move { weir_pipeline::run(&config, stop_rx, stats).await })
    };
    while stats.events_out.load(Ordering::Relaxed) < rows {
        assert!(
            !task.is_finished(),
            "the pipeline stopped early: {:?}",
            task.await
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        if std::env::var_os("WEIR_BENCH_TRACE").is_some() {
            eprintln!(
                "{:>6.3}s in {} out {} checkpoints {}",
                started.elapsed().as_secs_f64(),
                stats.events_in.load(Ordering::Relaxed),
                stats.events_out.load(Ordering::Relaxed),
                stats.checkpoints.load(Ordering::Relaxed)
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    // How the writer grouped the run (one line; a parent bench may show it).
    let sinks: Vec<String> = weir_pipeline::stats::lock(&stats.sinks)
        .iter()
        .map(|(name, m)| {
            let (w, f) = (m.write.snapshot(), m.flush.snapshot());
            format!(
                "{name}: {} writes {:.2}s, {} flushes {:.2}s",
                w.count, w.sum_seconds, f.count, f.sum_seconds
            )
        })
        .collect();
    eprintln!(
        "summary: {secs:.2}s, {:.2}s of CPU, {} events in {} checkpoints; {}; sleeps: {}",
        cpu_seconds().unwrap_or(0.0),
        stats.events_out.load(Ordering::Relaxed),
        stats.checkpoints.load(Ordering::Relaxed),
        sinks.join("; "),
        sleeps()
    );
    let restarts = stats.restarts.load(Ordering::Relaxed);
    if restarts > 0 {
        // A restart replays from the last checkpoint: the run is not one
        // drain, and says so.
        eprintln!(
            "the pipeline restarted {restarts} times; last error: {:?}",
            weir_pipeline::stats::lock(&stats.last_error)
        );
    }
    let _ = stop_tx.send(true);
    task.await.unwrap().unwrap();
    assert_eq!(
        stats.events_out.load(Ordering::Relaxed),
        rows,
        "no more events than rows loaded"
    );
    secs
}

/// This process's CPU time so far (user and system), in seconds.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command (which may hold spaces) from the third on;
    // utime and stime are in clock ticks, 100 a second on Linux.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// How often each kind of thread gave up the CPU (voluntary context
/// switches: waits for data, locks or timers), busiest first: each costs a
/// trip through the scheduler.
fn sleeps() -> String {
    let mut by_name = std::collections::BTreeMap::<String, u64>::new();
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_owned())
        };
        let (Some(name), Some(n)) = (field("Name:"), field("voluntary_ctxt_switches:")) else {
            continue;
        };
        *by_name.entry(name).or_default() += n.parse::<u64>().unwrap_or(0);
    }
    let mut counts: Vec<(String, u64)> = by_name.into_iter().collect();
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    let counts: Vec<String> = counts
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    counts.join(", ")
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Whether contender `name` runs: `WEIR_BENCH_ONLY` (comma-separated
/// parts) names contenders by a part of their name; unset, all run.
pub fn only(name: &str) -> bool {
    std::env::var("WEIR_BENCH_ONLY").map_or(true, |only| {
        only.split(',')
            .map(str::trim)
            .any(|part| name.to_lowercase().contains(&part.to_lowercase()))
    })
}

/// Prints the results as a Markdown table; the baseline of a shape is the
/// faster of its runs whose contender starts with `baseline`.
pub fn print_table(results: &[Row], baseline: &str) {
    println!("\n| load shape | contender | rows | seconds | rows/s | vs {baseline} | peak RSS |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for r in results {
        let base = results
            .iter()
            .filter(|b| b.shape == r.shape && b.contender.starts_with(baseline))
            .min_by(|a, b| a.secs.total_cmp(&b.secs))
            .expect("baseline");
        let rate = r.rows as f64 / r.secs;
        let base_rate = base.rows as f64 / base.secs;
        println!(
            "| {} | {} | {} | {:.2} | {:.0} | {:.2}x | {} |",
            r.shape,
            r.contender,
            r.rows,
            r.secs,
            rate,
            rate / base_rate,
            r.peak_rss_mb
                .map_or("-".to_owned(), |mb| format!("{mb:.0} MB")),
        );
    }
}
