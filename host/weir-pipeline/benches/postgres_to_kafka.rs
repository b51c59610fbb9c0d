//! End-to-end throughput into Kafka: PostgreSQL -> weir -> Kafka
//! (exactly-once, `json`), beside PostgreSQL -> weir -> files from an
//! identical slot, and a plain librdkafka producer sending the same
//! envelopes (already encoded) to the same broker: the producer-side
//! ceiling.
//!
//! `cargo bench -p weir-pipeline --bench postgres_to_kafka [-- ROWS]`
//! (the broker comes from `scripts/test`'s tools, see
//! `weir_throwaway::kafka`).
//! `WEIR_BENCH_KAFKA='compression = "lz4"'` adds settings to the Kafka
//! sink's section.
//!
//! For each load shape it creates one slot per weir contender, loads ROWS
//! 8-column rows once, and times each contender from the same starting
//! point: weir into files (the baseline), weir into Kafka, then the plain
//! producer with the envelopes the file run wrote. It prints rows/s, the ratio to
//! the file sink and weir's peak resident memory.

use std::path::Path;
use std::time::Instant;

use common::{Row, child_run, print_table, weir_in_child};
use weir_throwaway::ThrowawayKafka;

mod common;

fn main() {
    let rows = match common::invocation() {
        common::Invocation::Child(args) => return child(&args),
        common::Invocation::Bench { rows } => rows,
    };
    let server = common::pg_bench_server();
    let broker = ThrowawayKafka::start().unwrap_or_else(|e| panic!("{e}"));
    let work = std::env::temp_dir().join(format!("weir-bench-kafka-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();

    let shapes = common::pg_load_shapes(rows);
    let mut results = Vec::new();
    for (n, (shape, load)) in shapes.iter().enumerate() {
        common::pg_load(&server, n, &["files", "kafka"], shape, load, rows);
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
        results.push(producer_run(&broker, &out, n, rows, shape));
    }
    let _ = std::fs::remove_dir_all(&work);
    print_table(&results, "weir -> files");
}

/// Times a plain librdkafka producer (the library weir uses; idempotent,
/// not transactional, the sink's default linger, compression and batch
/// size) sending the
/// envelopes the file run wrote, already encoded, keyed like weir's, to a
/// fresh topic, until every record is acknowledged. Debian's `kcat` would
/// be the usual tool, but its librdkafka (2.0) cannot read the test
/// broker's ApiVersions answer.
fn producer_run(
    broker: &ThrowawayKafka,
    files: &Path,
    n: usize,
    rows: u64,
    shape: &'static str,
) -> Row {
    use rdkafka::ClientConfig;
    use rdkafka::client::ClientContext;
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    use rdkafka::producer::{
        BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
    };
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Counts acknowledged records.
    struct Acks(AtomicU64);
    impl ClientContext for Acks {}
    impl ProducerContext for Acks {
        type DeliveryOpaque = ();
        fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
            if result.is_ok() {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(rows as usize);
    let mut paths: Vec<_> = std::fs::read_dir(files)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    for path in paths {
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let doc: serde_json::Value = serde_json::from_str(line).unwrap();
            records.push((
                doc["key"].to_string().into_bytes(),
                line.as_bytes().to_vec(),
            ));
        }
    }
    assert_eq!(records.len() as u64, rows, "the file run wrote every row");
    let producer: ThreadedProducer<Acks> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "50")
        .set("compression.type", "lz4")
        .set("batch.size", "1048576")
        .set("queue.buffering.max.kbytes", "65536")
        .create_with_context(Acks(AtomicU64::new(0)))
        .unwrap();
    let topic = format!("plain{n}");
    let started = Instant::now();
    for (key, value) in &records {
        let mut record = BaseRecord::to(&topic).key(key).payload(value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Err((e, _)) => panic!("producing: {e}"),
            }
        }
    }
    producer.flush(std::time::Duration::from_secs(120)).unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(
        producer.context().0.load(Ordering::Relaxed),
        rows,
        "the broker acknowledged every record"
    );
    Row {
        shape,
        contender: "librdkafka producer (pre-encoded)",
        secs,
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
             state_topic = \"{prefix}-state\"\n{}",
            std::env::var("WEIR_BENCH_KAFKA").unwrap_or_default()
        ),
    };
    let config = common::pg_pipeline(
        port.parse().unwrap(),
        slot,
        &format!("[[sinks]]\nname = \"out\"\n{sink}"),
        &dir,
    );
    child_run(config, rows.parse().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}
