//! `weir demo`: a whole pipeline on a throwaway PostgreSQL or MariaDB.
//!
//! Starts a fresh server, creates a small shop schema with PII columns and
//! some rows, then runs a pipeline (snapshot, then streaming) through the
//! bundled pii-mask and table-router plugins into JSON-lines files while a
//! workload changes the data. Shows live throughput, then a sample of the
//! masked output, and removes everything it made.
//!
//! With `--active-active`, two throwaway PostgreSQL regions instead, both
//! taking conflicting writes, and a pipeline per direction that settles
//! the conflicts with the bundled resolver plugin ([`active_active`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Args, ValueEnum};
use tokio::sync::watch;
use weir_connect::Phase;
use weir_pipeline::{PipelineConfig, Stats};
use weir_throwaway::{ThrowawayMariadb, ThrowawayPostgres};

mod active_active;
mod kafka;
mod mariadb;
mod postgres;

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
    /// The database the changes come from.
    #[arg(long, value_enum, default_value_t = DemoSource::Postgres)]
    source: DemoSource,
    /// Where the changes go: JSON-lines files, or topics on a throwaway
    /// Kafka-protocol broker (exactly-once, read back at the end).
    #[arg(long, value_enum, default_value_t = DemoSink::Files)]
    sink: DemoSink,
    /// Instead: two PostgreSQL regions taking conflicting writes, a
    /// pipeline each way, conflicts settled by the bundled resolver plugin
    /// (needs resolvers.wasm, from `weir plugin build plugins/resolvers`).
    #[arg(long, conflicts_with_all = ["source", "sink", "keep"])]
    active_active: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DemoSink {
    Files,
    Kafka,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DemoSource {
    Postgres,
    Mariadb,
}

/// The throwaway server the changes come from.
enum Server {
    Postgres(ThrowawayPostgres),
    Mariadb(ThrowawayMariadb),
}

impl Server {
    fn start(source: DemoSource) -> anyhow::Result<Server> {
        Ok(match source {
            DemoSource::Postgres => Server::Postgres(postgres::start()?),
            DemoSource::Mariadb => Server::Mariadb(mariadb::start()?),
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Server::Postgres(_) => "PostgreSQL",
            Server::Mariadb(_) => "MariaDB",
        }
    }

    fn source_toml(&self) -> String {
        match self {
            Server::Postgres(s) => postgres::source_toml(s),
            Server::Mariadb(s) => mariadb::source_toml(s),
        }
    }

    /// The customers table as the router's `by_column` names it
    /// (`schema.table`; MySQL's schema is its database).
    fn customers(&self) -> &'static str {
        match self {
            Server::Postgres(_) => "public.customers",
            Server::Mariadb(_) => "shop.customers",
        }
    }

    async fn workload(&self) -> anyhow::Result<Workload> {
        Ok(match self {
            Server::Postgres(s) => Workload::Postgres(postgres::Workload::connect(s).await?),
            Server::Mariadb(s) => Workload::Mariadb(mariadb::Workload::connect(s).await?),
        })
    }
}

enum Workload {
    Postgres(postgres::Workload),
    Mariadb(mariadb::Workload),
}

impl Workload {
    /// One round of changes; returns how many rows changed.
    async fn round(&mut self, n: u64) -> anyhow::Result<u64> {
        match self {
            Workload::Postgres(w) => w.round(n).await,
            Workload::Mariadb(w) => w.round(n).await,
        }
    }
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let plugins = std::path::absolute(&args.plugins)?;
    if args.active_active {
        return active_active::run(&plugins, args.seconds);
    }
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
    let server = Server::start(args.source)?;
    let broker = match args.sink {
        DemoSink::Files => None,
        DemoSink::Kafka => Some(kafka::start()?),
    };
    println!(
        "==> Created database `shop`: 2000 customers (name, email, phone, SSN, card), 5000 orders"
    );

    let work = tempdir()?;
    let out_dir = args.keep.clone().unwrap_or_else(|| work.join("out"));
    let config_path = work.join("pipeline.toml");
    std::fs::write(
        &config_path,
        pipeline_toml(
            &server,
            &work,
            &sink_toml(broker.as_ref(), &out_dir),
            &mask,
            &router,
        )?,
    )?;
    let config = PipelineConfig::from_file(&config_path).map_err(|e| anyhow::anyhow!("{e}"))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let sink = match args.sink {
        DemoSink::Files => "JSON-lines files",
        DemoSink::Kafka => "Kafka topics (exactly-once)",
    };
    let result = runtime.block_on(drive(&server, config, sink, args.seconds));
    if result.is_ok() {
        match &broker {
            None => show_sample(&out_dir)?,
            Some(broker) => kafka::show_sample(broker)?,
        }
    }
    if args.keep.is_none() {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        let _ = std::fs::remove_dir_all(&work);
        println!("\nOutput kept in {}", out_dir.display());
    }
    let name = server.name();
    drop(server);
    println!("==> Stopped {name} and removed its files.");
    if let Some(broker) = broker {
        drop(broker);
        println!("==> Stopped the Kafka-protocol broker.");
    }
    result
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("weir-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The demo's sink: files in `out`, or the throwaway broker.
fn sink_toml(broker: Option<&weir_throwaway::ThrowawayKafka>, out: &Path) -> String {
    match broker {
        None => format!(
            "[[sinks]]\nname = \"files\"\nkind = \"file\"\ndir = \"{}\"\n",
            out.display()
        ),
        Some(broker) => kafka::sink_toml(broker),
    }
}

/// The demo's pipeline config, with the example plugin configs inlined.
fn pipeline_toml(
    server: &Server,
    work: &Path,
    sink: &str,
    mask: &Path,
    router: &Path,
) -> anyhow::Result<String> {
    let mask_config: toml::Table =
        include_str!("../../../examples/plugins/pii-mask.toml").parse()?;
    let mut router_config: toml::Table =
        include_str!("../../../examples/plugins/table-router.toml").parse()?;
    if let Some(toml::Value::Table(by_column)) = router_config.get_mut("by_column") {
        by_column.insert("tables".into(), vec![server.customers()].into());
    }
    let mut doc: toml::Table = format!(
        r#"
name = "demo"
state_dir = "{state}"

{source}
{sink}
# The demo's plugins are built from source here, not signed bundles.
[trust]
allow_unsigned = true
"#,
        state = work.join("state").display(),
        source = server.source_toml(),
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
    server: &Server,
    config: PipelineConfig,
    sink: &str,
    seconds: u64,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stats = Arc::new(Stats::default());
    let pipeline = {
        let stats = Arc::clone(&stats);
        tokio::spawn(async move { weir_pipeline::run(&config, stop_rx, stats).await })
    };
    println!("==> Pipeline: snapshot + stream -> pii-mask -> table-router -> {sink}\n");

    let mut workload = server.workload().await?;
    // Changes made before the stream's start belong to the snapshot (and an
    // update there would count once, not twice): start the workload once
    // the source streams.
    let mut progress = stats.source.subscribe();
    let streaming = progress.wait_for(|p| p.phase == Phase::Streaming);
    // (`is_ok_and` drops the borrow at once: holding it would block the
    // source's progress reports.)
    let streaming = tokio::time::timeout(Duration::from_secs(60), streaming)
        .await
        .is_ok_and(|r| r.is_ok());
    if !streaming {
        let _ = stop_tx.send(true);
        pipeline.await??;
        bail!("the pipeline did not start streaming within a minute");
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
        changes += workload.round(n).await?;
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
