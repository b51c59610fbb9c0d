//! `weir worker` throughput: the pii-mask plugin (every detector) on a
//! 4-partition change topic, by one worker and by two workers of the same
//! group, each worker in its own process, against the same broker.
//!
//! `cargo bench -p weir-pipeline --bench kafka_worker [-- ROWS]` (default
//! 200,000; the broker comes from `scripts/test`'s tools, see
//! `weir_throwaway::kafka`).
//! Knobs for experiments: `WEIR_BENCH_BATCH` (records per round, default
//! 4096), `WEIR_BENCH_OUTPUT` (lines added to `[output]`, e.g.
//! `linger_ms = 0`), `WEIR_BENCH_INPUT` (entries added to
//! `input.properties`, e.g. `"fetch.wait.max.ms" = "10"`).
//!
//! The input is written once: ROWS Debezium-style envelopes of an 8-column
//! row with PII (name, email, phone, a free-text note), keyed by id. Each
//! contender is a new consumer group reading it from the start; its time
//! runs from the group's first committed offset (so the group join, which
//! the test broker makes slow, is left out) until the committed offsets
//! reach the end of every partition. Ratios are against one worker.

use std::process::{Child, Command};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use common::{Row, print_table};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;
use weir_pipeline::{Stats, WorkerConfig};
use weir_throwaway::ThrowawayKafka;

mod common;

const INPUT: &str = "bench.public.orders";
const PARTITIONS: i32 = 4;

fn main() {
    let rows = match common::invocation() {
        common::Invocation::Child(args) => return child(&args),
        common::Invocation::Bench { rows } => rows,
    };
    let broker = ThrowawayKafka::start().unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = broker.bootstrap();
    create_input(&bootstrap);
    produce(&bootstrap, rows);
    let mut results = Vec::new();
    for (n, (contender, workers)) in [("1 worker", 1), ("2 workers", 2), ("1 worker, again", 1)]
        .into_iter()
        .enumerate()
    {
        let group = format!("bench-{n}");
        let children: Vec<Child> = (0..workers)
            .map(|w| {
                Command::new(std::env::current_exe().unwrap())
                    .args(["--child", &bootstrap, &group, &format!("w{w}")])
                    .spawn()
                    .expect("the bench re-runs itself")
            })
            .collect();
        let secs = time_group(&bootstrap, &group, rows);
        for mut c in children {
            let _ = c.kill();
            let _ = c.wait();
        }
        results.push(Row {
            shape: "pii-mask, 4 partitions",
            contender,
            secs,
            rows,
            peak_rss_mb: None,
        });
    }
    print_table(&results, "1 worker");
}

fn create_input(bootstrap: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let topic = NewTopic::new(INPUT, PARTITIONS, TopicReplication::Fixed(1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for r in runtime
        .block_on(admin.create_topics([&topic], &AdminOptions::new()))
        .unwrap()
    {
        r.unwrap();
    }
}

/// Writes `rows` change envelopes, keyed by id.
fn produce(bootstrap: &str, rows: u64) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "20")
        .set("compression.type", "none")
        .create()
        .unwrap();
    for id in 0..rows {
        let value = json!({
            "before": null,
            "after": {
                "id": id, "customer": format!("Customer {id}"),
                "email": format!("user{id}@example.com"), "phone": "+1 (555) 123-4567",
                "amount": "19.99", "placed_at": "2026-01-01T00:00:00Z", "paid": true,
                "note": format!("call me at 555-123-{:04}", id % 10000),
            },
            "source": {"connector": "postgresql", "db": "db", "schema": "public",
                "table": "orders", "txId": id, "lsn": id, "ts_ms": 0},
            "op": "c", "ts_ms": 0,
        })
        .to_string();
        let key = format!("{{\"id\":{id}}}");
        let mut record = BaseRecord::to(INPUT).key(&key).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
}

/// Seconds from the group's first committed offset until its committed
/// offsets cover all `rows` records.
fn time_group(bootstrap: &str, group: &str, rows: u64) -> f64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition(INPUT, p);
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut started: Option<Instant> = None;
    loop {
        assert!(Instant::now() < deadline, "group {group} did not finish");
        let committed: u64 = consumer
            .committed_offsets(list.clone(), Duration::from_secs(10))
            .map(|l| {
                l.elements()
                    .iter()
                    .map(|e| match e.offset() {
                        Offset::Offset(o) => o as u64,
                        _ => 0,
                    })
                    .sum()
            })
            .unwrap_or(0);
        if committed > 0 && started.is_none() {
            started = Some(Instant::now());
        }
        if committed >= rows {
            return started.expect("set above").elapsed().as_secs_f64();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The child's side: one worker of `group` until killed.
fn child(args: &[String]) {
    let [bootstrap, group, instance] = args else {
        panic!("--child BOOTSTRAP GROUP INSTANCE");
    };
    let dir = std::env::temp_dir().join(format!("weir-bench-worker-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        r#"
name = "masked"
state_dir = "{}"
[pipeline]
watch_plugins = false
max_batch_events = {batch}
[input]
brokers = ["{bootstrap}"]
topics = ["{INPUT}"]
group_id = "{group}"
properties = {{ "session.timeout.ms" = "6000"{input_extra} }}
{plugins}
[output]
brokers = ["{bootstrap}"]
topic_prefix = "{group}"
{output_extra}
[output.topics]
partitions = {PARTITIONS}
"#,
        dir.display(),
        output_extra = std::env::var("WEIR_BENCH_OUTPUT").unwrap_or_default(),
        input_extra = std::env::var("WEIR_BENCH_INPUT")
            .map(|p| format!(", {p}"))
            .unwrap_or_default(),
        batch = std::env::var("WEIR_BENCH_BATCH").unwrap_or_else(|_| "4096".into()),
        plugins = common::plugins_toml(Some(weir_tests::components::bundled("pii-mask"))),
    );
    let config = WorkerConfig::from_str(&text, &dir, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let stop = AtomicBool::new(false);
    // Runs until the bench kills it.
    weir_pipeline::worker::run_worker(&config, instance, &stop, &Stats::default()).unwrap();
}
