//! What operating a pipeline costs and shows, in one run on a throwaway
//! PostgreSQL:
//!
//! 1. **Throughput with metrics on.** ROWS rows drained by weir with no
//!    admin API, and with the admin API serving and a scraper reading
//!    `/metrics` and `/v1/status` every `WEIR_BENCH_SCRAPE_MS` (default
//!    1000: what an open status page asks, where Prometheus scrapes every
//!    15 s or so), alternating off and on three times each, for a
//!    one-transaction load and a 10-rows-per-transaction one. The table
//!    gives each run's rows/s over the faster "metrics off" run of its
//!    load, then the medians. The pipeline's counters are kept either way
//!    (they are per batch and have no switch): "off" is no API and no
//!    scraping.
//! 2. **End-to-end latency** at a paced load of 10-row transactions at
//!    1,000 and 10,000 rows/s for `WEIR_BENCH_SECONDS` (default 20) each,
//!    into files and into Kafka (a throwaway Tansu broker, exactly-once):
//!    p50 and p99 from the pipeline's own histogram
//!    (`weir_end_to_end_latency_seconds`, read from `/metrics`; source
//!    commit to checkpoint), cross-checked against the commit time
//!    (`source.ts_us`) of every change an independent reader sees: lines
//!    appearing in the output files (polled every 2 ms: visible once
//!    written, slightly before the checkpoint), or records a
//!    `read_committed` consumer receives (visible once the Kafka
//!    transaction commits).
//!
//! `cargo bench -p weir-admin --bench operations [-- ROWS]` (default
//! 200,000 rows).

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Row, pg_load, pg_load_shapes, print_table, weir_in_child};
use weir_pipeline::latency::{BUCKETS, Snapshot, now_us};
use weir_pipeline::{PipelineConfig, Stats};

#[path = "../../weir-pipeline/benches/common/mod.rs"]
mod common;

/// The admin token of the bench's API.
const TOKEN: &str = "bench-token-0123456789";

fn main() {
    let rows = match common::invocation() {
        common::Invocation::Child(args) => return child(&args),
        common::Invocation::Bench { rows } => rows,
    };
    let server = common::pg_bench_server();
    throughput(&server, rows);
    let seconds: u64 = std::env::var("WEIR_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    latency(&server, seconds);
}

fn throughput(server: &weir_tests::ThrowawayPostgres, rows: u64) {
    let runs = [
        ("off1", OFF),
        ("on1", ON),
        ("off2", OFF),
        ("on2", ON),
        ("off3", OFF),
        ("on3", ON),
    ];
    let slots: Vec<&str> = runs.iter().map(|(slot, _)| *slot).collect();
    let mut results: Vec<Row> = Vec::new();
    for (n, (shape, load)) in pg_load_shapes(rows).iter().enumerate() {
        pg_load(server, n, &slots, shape, load, rows);
        for (slot, contender) in runs {
            let mode = if slot.starts_with("on") { "on" } else { "off" };
            let port = server.port.to_string();
            let rows_arg = rows.to_string();
            results.push(weir_in_child(
                shape,
                contender,
                rows,
                &[&port, &format!("{slot}_{n}"), mode, &rows_arg],
            ));
        }
    }
    print_table(&results, OFF);
    // Each run against the faster "off" run favours "off"; medians do not.
    println!(
        "\n| load shape | median rows/s, metrics off | median rows/s, metrics on | on / off |"
    );
    println!("|---|---:|---:|---:|");
    for shape in results
        .iter()
        .map(|r| r.shape)
        .collect::<std::collections::BTreeSet<_>>()
    {
        let median = |contender: &str| {
            let mut rates: Vec<f64> = results
                .iter()
                .filter(|r| r.shape == shape && r.contender == contender)
                .map(|r| r.rows as f64 / r.secs)
                .collect();
            rates.sort_by(f64::total_cmp);
            rates[rates.len() / 2]
        };
        let (off, on) = (median(OFF), median(ON));
        println!("| {shape} | {off:.0} | {on:.0} | {:.2}x |", on / off);
    }
}

const OFF: &str = "metrics off";
const ON: &str = "metrics on, scraped";

/// One throughput run in this process: `PORT SLOT on|off ROWS`.
fn child(args: &[String]) {
    let [port, slot, mode, rows] = args else {
        panic!("--child PORT SLOT on|off ROWS");
    };
    let dir = scratch("child");
    let config = file_pipeline(port.parse().unwrap(), slot, &dir);
    if mode == "on" {
        common::child_run_observed(config, rows.parse().unwrap(), |stats, stop| async move {
            let address = serve_admin(stats, stop).await;
            let every = std::env::var("WEIR_BENCH_SCRAPE_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(1000);
            scrape(address, Duration::from_millis(every)).await;
        });
    } else {
        common::child_run(config, rows.parse().unwrap());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn scratch(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-bench-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn file_pipeline(port: u16, slot: &str, dir: &Path) -> PipelineConfig {
    common::pg_pipeline(
        port,
        slot,
        "[[sinks]]\nname = \"files\"\nkind = \"file\"\ndir = \"out\"\n",
        dir,
    )
}

/// Starts the admin API on a free loopback port; its address.
async fn serve_admin(
    stats: Arc<Stats>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::net::SocketAddr {
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let setup = weir_admin::Setup {
        address,
        tokens: weir_pipeline::config::Tokens {
            read: None,
            admin: Some(TOKEN.to_owned().into()),
        },
        tls: None,
        pipeline: "bench".into(),
        state_dir: std::env::temp_dir(),
        anomaly_interval: Duration::from_secs(1),
        stages: serde_json::Value::Null,
    };
    // Left running (a dropped handle detaches the task); it stops with
    // `stop`.
    drop(weir_admin::start(setup, stats, stop).await.unwrap());
    address
}

/// Reads `/metrics` and `/v1/status` every `every`, forever.
async fn scrape(address: std::net::SocketAddr, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        tokio::task::spawn_blocking(move || {
            assert!(get(address, "/metrics").contains("weir_events_in_total"));
            assert!(get(address, "/v1/status").contains("\"pipeline\""));
        })
        .await
        .unwrap();
    }
}

/// A GET's body (HTTP/1.1, one request per connection).
fn get(address: std::net::SocketAddr, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
    body.to_owned()
}

fn latency(server: &weir_tests::ThrowawayPostgres, seconds: u64) {
    let broker = weir_throwaway::ThrowawayKafka::start().unwrap_or_else(|e| panic!("{e}"));
    let mut table = Vec::new();
    for sink in [Sink::Files, Sink::Kafka(broker.bootstrap())] {
        for rate in [1_000u64, 10_000] {
            table.push(latency_at(server, &sink, rate, seconds));
        }
    }
    println!(
        "\n| sink | load (rows/s, 10 rows/txn) | achieved rows/s | p50 (histogram) | \
         p99 (histogram) | p50 (reader) | p99 (reader) | max (reader) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for l in table {
        println!(
            "| {} | {} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
            l.sink,
            l.rate,
            l.achieved,
            l.histogram_p50 * 1e3,
            l.histogram_p99 * 1e3,
            l.files_p50 * 1e3,
            l.files_p99 * 1e3,
            l.files_max * 1e3
        );
    }
}

/// Where the latency runs deliver.
enum Sink {
    Files,
    /// A Kafka broker's bootstrap address.
    Kafka(String),
}

struct Latencies {
    sink: &'static str,
    rate: u64,
    achieved: f64,
    histogram_p50: f64,
    histogram_p99: f64,
    files_p50: f64,
    files_p99: f64,
    files_max: f64,
}

/// One paced run at `rate` rows/s for `seconds` into `sink`.
fn latency_at(
    server: &weir_tests::ThrowawayPostgres,
    sink: &Sink,
    rate: u64,
    seconds: u64,
) -> Latencies {
    server.psql("db", "TRUNCATE bench").unwrap();
    let name = match sink {
        Sink::Files => "files",
        Sink::Kafka(_) => "kafka",
    };
    let slot = format!("latency_{name}_{rate}");
    server
        .psql(
            "db",
            &format!("SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"),
        )
        .unwrap();
    let dir = scratch(&slot);
    let config = match sink {
        Sink::Files => file_pipeline(server.port, &slot, &dir),
        Sink::Kafka(bootstrap) => common::pg_pipeline(
            server.port,
            &slot,
            &format!(
                "[[sinks]]\nname = \"kafka\"\nkind = \"kafka\"\nbrokers = [\"{bootstrap}\"]\n\
                 topic_prefix = \"{slot}\"\nstate_topic = \"{slot}-state\"\n"
            ),
            &dir,
        ),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stats = Arc::new(Stats::default());
        let address = serve_admin(Arc::clone(&stats), stop_rx.clone()).await;
        let pipeline = {
            let stats = Arc::clone(&stats);
            tokio::spawn(async move { weir_pipeline::run(&config, stop_rx, stats).await })
        };
        while stats.source.borrow().phase != weir_connect::Phase::Streaming {
            assert!(!pipeline.is_finished(), "{:?}", pipeline.await);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The load's changes: 10-row transactions at `rate` for `seconds`.
        let expected = rate / 10 * seconds * 10;
        let reader = match sink {
            Sink::Files => {
                let out = dir.join("out");
                std::thread::spawn(move || tail(&out, expected))
            }
            Sink::Kafka(bootstrap) => {
                let (bootstrap, topic) = (bootstrap.clone(), format!("{slot}.public.bench"));
                std::thread::spawn(move || consume(&bootstrap, &topic, expected))
            }
        };
        eprintln!("paced load: {rate} rows/s for {seconds} s...");
        let (rows, took) = paced_load(server.port, rate, seconds).await;
        assert_eq!(rows, expected);
        while stats.latency.snapshot().count < rows {
            assert!(!pipeline.is_finished(), "{:?}", pipeline.await);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut seen = tokio::task::spawn_blocking(move || reader.join().unwrap())
            .await
            .unwrap();
        let metrics = tokio::task::spawn_blocking(move || get(address, "/metrics"))
            .await
            .unwrap();
        let _ = stop_tx.send(true);
        pipeline.await.unwrap().unwrap();
        let histogram = parse_histogram(&metrics, "weir_end_to_end_latency_seconds");
        assert_eq!(histogram.count, rows, "every change in the histogram");
        assert_eq!(seen.len() as u64, rows, "every change seen by the reader");
        seen.sort_by(f64::total_cmp);
        let at = |q: f64| seen[((seen.len() as f64 * q) as usize).min(seen.len() - 1)];
        let _ = std::fs::remove_dir_all(&dir);
        Latencies {
            sink: name,
            rate,
            achieved: rows as f64 / took,
            histogram_p50: histogram.quantile(0.5).unwrap(),
            histogram_p99: histogram.quantile(0.99).unwrap(),
            files_p50: at(0.5),
            files_p99: at(0.99),
            files_max: *seen.last().unwrap(),
        }
    })
}

/// Inserts 10-row transactions at `rate` rows/s for `seconds`, each its
/// own statement on one pipelining connection; the rows inserted and the
/// seconds it took.
async fn paced_load(port: u16, rate: u64, seconds: u64) -> (u64, f64) {
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname=db"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let client = Arc::new(client);
    let txns = rate / 10 * seconds;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(10.0 / rate as f64));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut inflight = tokio::task::JoinSet::new();
    for t in 0..txns {
        ticks.tick().await;
        let client = Arc::clone(&client);
        inflight.spawn(async move {
            let first = t * 10 + 1;
            client
                .execute(
                    &format!(
                        "INSERT INTO bench SELECT i, 'Customer ' || i, 'user' || i || \
                         '@example.com', '+1 415 555 0000', 1.5, now(), true, 'note' \
                         FROM generate_series({first}, {}) i",
                        first + 9
                    ),
                    &[],
                )
                .await
                .unwrap();
        });
        while inflight.try_join_next().is_some() {}
    }
    while inflight.join_next().await.is_some() {}
    (txns * 10, started.elapsed().as_secs_f64())
}

/// How long a reader waits for the changes it expects.
const READER_DEADLINE: Duration = Duration::from_secs(300);

/// Follows the output files under `out` until it has seen `expected`
/// lines; for each, the seconds from its source commit (`source.ts_us`)
/// to when it was seen.
fn tail(out: &Path, expected: u64) -> Vec<f64> {
    let mut offsets: HashMap<PathBuf, u64> = HashMap::new();
    let mut seen = Vec::new();
    let started = Instant::now();
    loop {
        for entry in std::fs::read_dir(out).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "jsonl") {
                continue;
            }
            let offset = offsets.entry(path.clone()).or_default();
            let Ok(mut file) = std::fs::File::open(&path) else {
                continue;
            };
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(*offset)).unwrap();
            let now = now_us();
            for line in std::io::BufReader::new(file).split(b'\n') {
                let line = line.unwrap();
                let Ok(event) = serde_json::from_slice::<serde_json::Value>(&line) else {
                    // A line being written: read it whole next round.
                    break;
                };
                *offset += line.len() as u64 + 1;
                let commit = event["source"]["ts_us"].as_i64().expect("source.ts_us");
                seen.push((now - commit) as f64 / 1e6);
            }
        }
        if seen.len() as u64 >= expected || started.elapsed() > READER_DEADLINE {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Reads `topic` from the start as a `read_committed` consumer until it
/// has `expected` records; for each, the seconds from its source commit
/// (`source.ts_us`) to when it arrived.
fn consume(bootstrap: &str, topic: &str, expected: u64) -> Vec<f64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("{topic}-reader"))
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("fetch.wait.max.ms", "5")
        .create()
        .unwrap();
    let mut seen = Vec::new();
    let mut assigned = false;
    let started = Instant::now();
    while (seen.len() as u64) < expected && started.elapsed() < READER_DEADLINE {
        if !assigned {
            // The sink creates the topic with its first record. Every
            // partition is assigned from its start: no group join, whose
            // rebalance would delay the first records by seconds.
            let partitions: Vec<i32> = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(1))
                .ok()
                .and_then(|m| {
                    m.topics()
                        .iter()
                        .find(|t| t.name() == topic && t.error().is_none())
                        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
                })
                .unwrap_or_default();
            if !partitions.is_empty() {
                let mut list = rdkafka::TopicPartitionList::new();
                for p in partitions {
                    list.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
                        .unwrap();
                }
                consumer.assign(&list).unwrap();
                assigned = true;
            }
            continue;
        }
        match consumer.poll(Duration::from_millis(20)) {
            Some(Ok(message)) => {
                let now = now_us();
                // Deletes would carry no value; the load only inserts.
                let event: serde_json::Value =
                    serde_json::from_slice(message.payload().expect("a value")).unwrap();
                let commit = event["source"]["ts_us"].as_i64().expect("source.ts_us");
                seen.push((now - commit) as f64 / 1e6);
            }
            Some(Err(e)) => panic!("consumer: {e}"),
            None => {}
        }
    }
    seen
}

/// A histogram family's series (summed over labels) from `/metrics`.
fn parse_histogram(metrics: &str, family: &str) -> Snapshot {
    let mut cumulative: Vec<(f64, u64)> = Vec::new();
    let mut sum = 0.0;
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix(family) else {
            continue;
        };
        let value = line.rsplit(' ').next().unwrap();
        if rest.starts_with("_bucket") {
            let le = rest
                .split("le=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            cumulative.push((bound, value.parse().unwrap()));
        } else if rest.starts_with("_sum") {
            sum = value.parse().unwrap();
        }
    }
    assert_eq!(cumulative.len(), BUCKETS.len() + 1, "{family} in {metrics}");
    let mut below = 0;
    let counts: Vec<u64> = cumulative
        .iter()
        .map(|(_, c)| {
            let n = c - below;
            below = *c;
            n
        })
        .collect();
    Snapshot::of(&counts, sum)
}
