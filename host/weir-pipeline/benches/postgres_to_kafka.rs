//! End-to-end throughput into Kafka: PostgreSQL -> weir -> Kafka
//! (exactly-once, `json`), beside PostgreSQL -> weir -> files from an
//! identical slot, and `kcat -P` producing the same envelopes (already
//! encoded) to the same broker: the producer-side ceiling.
//!
//! `cargo bench -p weir-pipeline --bench postgres_to_kafka [-- ROWS]`
//! (needs `kcat`: `apt-get install kafkacat`; the broker comes from
//! `scripts/test`'s tools, see `weir_throwaway::kafka`).
//!
//! For each load shape it creates one slot per weir contender, loads ROWS
//! 8-column rows once, and times each contender from the same starting
//! point: weir into files (the baseline), weir into Kafka, then `kcat`
//! with the envelopes the file run wrote. It prints rows/s, the ratio to
//! the file sink and weir's peak resident memory.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{Row, child_run, print_table, weir_in_child};
use weir_pipeline::PipelineConfig;
use weir_tests::ThrowawayPostgres;
use weir_throwaway::ThrowawayKafka;

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
    let kcat = ["kcat", "kafkacat"]
        .into_iter()
        .find(|k| Command::new(k).arg("-V").output().is_ok())
        .expect("kcat is missing: apt-get install kafkacat");
    let server = ThrowawayPostgres::start(&[("max_wal_size", "8GB"), ("checkpoint_timeout", "1h")])
        .unwrap_or_else(|e| panic!("{e}"));
    let broker = ThrowawayKafka::start().unwrap_or_else(|e| panic!("{e}"));
    server.psql("postgres", "CREATE DATABASE db").unwrap();
    server.psql("db", TABLE).unwrap();
    server
        .psql("db", "CREATE PUBLICATION bench FOR TABLE bench")
        .unwrap();
    let work = std::env::temp_dir().join(format!("weir-bench-kafka-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();

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
        for slot in ["files", "kafka"] {
            server
                .psql(
                    "db",
                    &format!("SELECT pg_create_logical_replication_slot('{slot}_{n}', 'pgoutput')"),
                )
                .unwrap();
        }
        eprintln!("loading {rows} rows ({shape})...");
        server.psql("db", load).unwrap();
        let port = server.port.to_string();
        let rows_arg = rows.to_string();
        let out = work.join(format!("files-{n}"));
        let out_arg = out.display().to_string();
        let bootstrap = broker.bootstrap();
        for (contender, sink) in [("weir -> files", "files"), ("weir -> kafka", "kafka")] {
            let slot = format!("{sink}_{n}");
            let prefix = format!("bench{n}");
            results.push(weir_in_child(
                shape,
                contender,
                rows,
                &[&port, &slot, sink, &rows_arg, &bootstrap, &out_arg, &prefix],
            ));
        }
        results.push(kcat_run(kcat, &bootstrap, &out, n, rows, shape));
    }
    let _ = std::fs::remove_dir_all(&work);
    print_table(&results, "weir -> files");
}

/// Times `kcat -P` producing the envelopes the file run wrote (key, tab,
/// value per line) to a fresh topic.
fn kcat_run(
    kcat: &str,
    bootstrap: &str,
    files: &Path,
    n: usize,
    rows: u64,
    shape: &'static str,
) -> Row {
    let input = files.with_extension("kcat");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    let mut count = 0u64;
    let mut paths: Vec<_> = std::fs::read_dir(files)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    for path in paths {
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let doc: serde_json::Value = serde_json::from_str(line).unwrap();
            writeln!(w, "{}\t{line}", doc["key"]).unwrap();
            count += 1;
        }
    }
    w.flush().unwrap();
    drop(w);
    assert_eq!(count, rows, "the file run wrote every row");
    let started = Instant::now();
    let status = Command::new(kcat)
        .args(["-P", "-b", bootstrap, "-t", &format!("kcat{n}"), "-K", "\t"])
        .args([
            "-X",
            "linger.ms=5",
            "-X",
            "batch.size=1048576",
            "-X",
            "enable.idempotence=true",
        ])
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(Stdio::null())
        .status()
        .expect("kcat runs");
    assert!(status.success(), "kcat failed");
    Row {
        shape,
        contender: "kcat -P (pre-encoded)",
        secs: started.elapsed().as_secs_f64(),
        rows,
        peak_rss_mb: None,
    }
}

/// One weir run in this process: `PORT SLOT files|kafka ROWS BROKER OUT
/// PREFIX`; prints the seconds and the peak resident memory in MB.
fn child(args: &[String]) {
    let [port, slot, sink, rows, broker, out, prefix] = args else {
        panic!("--child PORT SLOT SINK ROWS BROKER OUT PREFIX");
    };
    let dir = std::env::temp_dir().join(format!("weir-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sink = match sink.as_str() {
        "files" => format!("kind = \"file\"\ndir = \"{out}\""),
        _ => format!(
            "kind = \"kafka\"\nbrokers = [\"{broker}\"]\ntopic_prefix = \"{prefix}\"\n\
             state_topic = \"{prefix}-state\""
        ),
    };
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
[[sinks]]
name = "out"
{sink}
"#,
    );
    let config = PipelineConfig::from_str(&text, &dir, &|name| std::env::var(name).ok())
        .unwrap_or_else(|e| panic!("{e}"));
    child_run(config, rows.parse().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}
