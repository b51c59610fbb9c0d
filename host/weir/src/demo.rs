//! `weir demo`: a whole pipeline on a throwaway PostgreSQL.
//!
//! Starts a fresh server, creates a small shop schema with PII columns and
//! some rows, then runs a pipeline (snapshot, then streaming) through the
//! bundled pii-mask and table-router plugins into JSON-lines files while a
//! workload changes the data. Shows live throughput, then a sample of the
//! masked output, and removes everything it made.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use tokio::sync::watch;
use tokio_postgres::NoTls;
use weir_pipeline::{PipelineConfig, Stats};
use weir_throwaway::ThrowawayPostgres;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory holding pii_mask.wasm and table_router.wasm (built by
    /// `weir plugin build plugins/pii-mask` and `plugins/table-router`).
    #[arg(long, default_value = "target/wasm32-wasip2/release")]
    plugins: PathBuf,
    /// How long the workload runs, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Keep the output files in this directory instead of deleting them.
    #[arg(long)]
    keep: Option<PathBuf>,
}

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

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let plugins = std::path::absolute(&args.plugins)?;
    let mask = plugins.join("pii_mask.wasm");
    let router = plugins.join("table_router.wasm");
    for p in [&mask, &router] {
        if !p.exists() {
            bail!(
                "{} is missing: build the bundled plugins first with `weir plugin build \
                 plugins/pii-mask` and `weir plugin build plugins/table-router` (scripts/demo \
                 does this), or point --plugins at them",
                p.display()
            );
        }
    }
    println!("==> Starting a throwaway PostgreSQL (initdb, wal_level=logical)");
    let server = ThrowawayPostgres::start(&[]).context("starting PostgreSQL")?;
    println!("    port {}, data in a temporary directory", server.port);
    server.psql("postgres", "CREATE DATABASE shop")?;
    server.psql("shop", SCHEMA)?;
    println!(
        "==> Created database `shop`: 2000 customers (name, email, phone, SSN, card), 5000 orders"
    );

    let work = tempdir()?;
    let out_dir = args.keep.clone().unwrap_or_else(|| work.join("out"));
    let config_path = work.join("pipeline.toml");
    std::fs::write(
        &config_path,
        pipeline_toml(&server, &work, &out_dir, &mask, &router)?,
    )?;
    let config = PipelineConfig::from_file(&config_path).map_err(|e| anyhow::anyhow!("{e}"))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(drive(&server, config, args.seconds));
    if result.is_ok() {
        show_sample(&out_dir)?;
    }
    if args.keep.is_none() {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        let _ = std::fs::remove_dir_all(&work);
        println!("\nOutput kept in {}", out_dir.display());
    }
    drop(server);
    println!("==> Stopped PostgreSQL and removed its files.");
    result
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("weir-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The demo's pipeline config, with the example plugin configs inlined.
fn pipeline_toml(
    server: &ThrowawayPostgres,
    work: &Path,
    out: &Path,
    mask: &Path,
    router: &Path,
) -> anyhow::Result<String> {
    let mask_config: toml::Table =
        include_str!("../../../examples/plugins/pii-mask.toml").parse()?;
    let router_config: toml::Table =
        include_str!("../../../examples/plugins/table-router.toml").parse()?;
    let mut doc: toml::Table = format!(
        r#"
name = "demo"
state_dir = "{state}"

[source]
kind = "postgres"
host = "127.0.0.1"
port = {port}
user = "postgres"
database = "shop"
snapshot_chunk_rows = 1000

[[sinks]]
name = "files"
kind = "file"
dir = "{out}"

# The demo's plugins are built from source here, not signed bundles.
[trust]
allow_unsigned = true
"#,
        state = work.join("state").display(),
        port = server.port,
        out = out.display(),
    )
    .parse()?;
    let mut plugin = toml::Table::new();
    plugin.insert("name".into(), "pii-mask".into());
    plugin.insert("path".into(), mask.display().to_string().into());
    plugin.insert("config".into(), toml::Value::Table(mask_config));
    doc.insert(
        "plugins".into(),
        toml::Value::Array(vec![toml::Value::Table(plugin)]),
    );
    let mut route = toml::Table::new();
    route.insert("name".into(), "table-router".into());
    route.insert("path".into(), router.display().to_string().into());
    route.insert("config".into(), toml::Value::Table(router_config));
    let mut router_section = toml::Table::new();
    router_section.insert("plugin".into(), toml::Value::Table(route));
    doc.insert("router".into(), toml::Value::Table(router_section));
    Ok(toml::to_string(&doc)?)
}

/// Runs the pipeline beside the workload, printing live numbers.
async fn drive(
    server: &ThrowawayPostgres,
    config: PipelineConfig,
    seconds: u64,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stats = Arc::new(Stats::default());
    let pipeline = {
        let stats = Arc::clone(&stats);
        tokio::spawn(async move { weir_pipeline::run(&config, stop_rx, stats).await })
    };
    println!("==> Pipeline: snapshot + stream -> pii-mask -> table-router -> JSON-lines files\n");

    let (client, connection) = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user=postgres dbname=shop",
            server.port
        ),
        NoTls,
    )
    .await?;
    tokio::spawn(connection);
    // Changes made before the slot exists belong to the snapshot, not the
    // stream: start the workload once the pipeline has created its slot.
    let wait = Instant::now() + Duration::from_secs(30);
    while client
        .query(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'weir_demo'",
            &[],
        )
        .await?
        .is_empty()
    {
        if pipeline.is_finished() || Instant::now() > wait {
            let _ = stop_tx.send(true);
            pipeline.await??;
            bail!("the pipeline did not create its replication slot");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let expected_snapshot = 7000u64;
    let mut changes = 0u64;
    let started = Instant::now();
    let mut last_print = (Instant::now(), 0u64);
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        if pipeline.is_finished() {
            break;
        }
        n += 1;
        let id: i64 = client
            .query_one(
                "WITH c AS (INSERT INTO customers (name, email, phone, ssn, card, region) \
                 VALUES ('New ' || $1::text, 'new' || $1::text || '@example.org', '+44 20 7946 0' || right($1::text, 3), \
                 '123-45-6789', '5500 0000 0000 0004', (ARRAY['eu','us','apac'])[1 + ($2::int8 % 3)]) RETURNING id) \
                 SELECT id FROM c",
                &[&n.to_string(), &(n as i64)],
            )
            .await?
            .get(0);
        client
            .batch_execute(&format!(
                "BEGIN; \
                 INSERT INTO orders (customer_id, amount, status) VALUES ({id}, 19.99, 'placed'), ({id}, 5.00, 'placed'); \
                 UPDATE orders SET status = 'shipped' WHERE id = {}; \
                 UPDATE customers SET phone = '+1 212 555 0{:03}' WHERE id = {}; \
                 COMMIT",
                1 + n % 5000,
                n % 1000,
                1 + n % 2000
            ))
            .await?;
        changes += 5;
        if last_print.0.elapsed() >= Duration::from_secs(1) {
            print_live(&stats, &mut last_print, started);
        }
    }
    let expected = expected_snapshot + changes;
    println!(
        "\n==> Workload done: {changes} changes in {n} transactions; waiting for the pipeline to catch up"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while stats.events_in.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        if pipeline.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if last_print.0.elapsed() >= Duration::from_secs(1) {
            print_live(&stats, &mut last_print, started);
        }
    }
    let _ = stop_tx.send(true);
    pipeline.await??;
    print_live(&stats, &mut last_print, started);
    let got = stats.events_in.load(Ordering::Relaxed);
    if got != expected {
        bail!("the pipeline captured {got} events, but {expected} were made");
    }
    println!("    all {expected} events captured (7000 snapshot rows + {changes} changes)");
    Ok(())
}

fn print_live(stats: &Stats, last: &mut (Instant, u64), started: Instant) {
    let out = stats.events_out.load(Ordering::Relaxed);
    let rate = (out - last.1) as f64 / last.0.elapsed().as_secs_f64().max(0.001);
    *last = (Instant::now(), out);
    println!(
        "    t={:>4.1}s  events in {:>7}  written {:>7}  {:>8.0} events/s  checkpoints {:>5}  dead letters {}",
        started.elapsed().as_secs_f64(),
        stats.events_in.load(Ordering::Relaxed),
        out,
        rate,
        stats.checkpoints.load(Ordering::Relaxed),
        stats.dead_letters.load(Ordering::Relaxed),
    );
}

/// Lists the output files and shows a few masked customer rows.
fn show_sample(out: &Path) -> anyhow::Result<()> {
    println!("\n==> Output files (one per destination the router chose):");
    let mut files: Vec<_> = std::fs::read_dir(out)?
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for f in &files {
        let lines = std::fs::read_to_string(f)?.lines().count();
        println!(
            "    {:<48} {lines:>6} events",
            f.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    let Some(customers) = files.iter().find(|f| {
        f.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("customers-eu"))
    }) else {
        return Ok(());
    };
    println!(
        "\n==> A sample of masked customer events ({}):",
        customers.display()
    );
    let text = std::fs::read_to_string(customers)?;
    let picks: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i == 0 || *i == 1)
        .map(|(_, l)| l)
        .chain(text.lines().rev().find(|l| l.contains("\"op\":\"u\"")))
        .collect();
    for line in picks {
        let doc: serde_json::Value = serde_json::from_str(line)?;
        println!(
            "    op={} after={}",
            doc["op"],
            serde_json::to_string(&doc["after"])?
        );
    }
    println!("    (email hashed with HMAC-SHA256, SSN dropped, name/phone/card masked)");
    Ok(())
}
