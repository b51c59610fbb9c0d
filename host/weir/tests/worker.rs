//! `weir worker` against a throwaway Kafka-protocol broker: workers in one
//! group read a 4-partition change topic in Debezium's format, mask it
//! with the pii-mask plugin and write it back; workers join, one is killed
//! with `kill -9` and another takes its place, all under load. Every
//! change arrives exactly once, each key in order, deletes followed by
//! tombstones, and a record that is not a change goes to the dead-letter
//! topic.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::{Value as Json, json};
use weir_tests::components;
use weir_throwaway::ThrowawayKafka;

use crate::kafka::{murmur2, read_topic};
use crate::{succeeds, weir};

const INPUT: &str = "shop.public.users";
const OUTPUT: &str = "masked.public.users";
const DEAD_LETTERS: &str = "masked.dead-letters";
const PARTITIONS: i32 = 4;
const KEYS: i64 = 40;
/// Changes per key: a create, updates, and for every tenth key a delete
/// at the end.
const CHANGES: i64 = 40;

/// An empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-worker-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let results = runtime
        .block_on(admin.create_topics([&topic], &AdminOptions::new()))
        .unwrap();
    for r in results {
        r.unwrap();
    }
}

/// The `seq`th change of key `id`, as Debezium's PostgreSQL connector
/// writes it (`schemas.enable=false`: the key is only the record key).
fn change(id: i64, seq: i64) -> Json {
    let row = |seq: i64| json!({"id": id, "seq": seq, "email": format!("user{id}@example.com")});
    let (op, before, after) = match seq {
        0 => ("c", Json::Null, row(0)),
        s if s == CHANGES - 1 && id % 10 == 0 => ("d", row(s - 1), Json::Null),
        s => ("u", row(s - 1), row(s)),
    };
    json!({
        "before": before,
        "after": after,
        "source": {
            "version": "2.7.3.Final", "connector": "postgresql", "name": "shop",
            "ts_ms": 1_700_000_000_000i64 + seq, "snapshot": "false", "db": "shop",
            "sequence": "[null,\"1\"]", "schema": "public", "table": "users",
            "txId": seq * 1000 + id, "lsn": 100_000 + seq * 1000 + id, "xmin": null
        },
        "op": op,
        "ts_ms": 1_700_000_000_000i64 + seq,
    })
}

/// Writes every change, key by key round-robin, pausing `pause` between
/// rounds; a record that is not a change event first.
fn produce(bootstrap: &str, pause: Duration, done: &AtomicBool) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let send = |key: &str, value: &str| {
        producer
            .send(BaseRecord::to(INPUT).key(key).payload(value))
            .map_err(|(e, _)| e)
            .unwrap();
    };
    send(r#"{"id":-1}"#, "this is not a change event");
    for seq in 0..CHANGES {
        for id in 1..=KEYS {
            send(&format!(r#"{{"id":{id}}}"#), &change(id, seq).to_string());
        }
        producer.flush(Duration::from_secs(10)).unwrap();
        std::thread::sleep(pause);
    }
    done.store(true, Ordering::Relaxed);
}

fn worker_config(dir: &Path, bootstrap: &str) -> PathBuf {
    let path = dir.join("worker.toml");
    std::fs::write(
        &path,
        format!(
            r#"
name = "masked"
state_dir = "state"

[pipeline]
max_batch_events = 100

[input]
brokers = ["{bootstrap}"]
topics = ["{INPUT}"]
properties = {{ "session.timeout.ms" = "6000", "heartbeat.interval.ms" = "500" }}

[[plugins]]
name = "pii-mask"
path = "{}"

[trust]
allow_unsigned = true

[output]
brokers = ["{bootstrap}"]
timeout_secs = 5
[output.topics]
partitions = {PARTITIONS}
"#,
            components::PII_MASK
        ),
    )
    .unwrap();
    path
}

/// A running `weir worker` with its log file.
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn start(config: &Path, instance: &str) -> Worker {
        Worker::start_with(config, instance, &[])
    }

    fn start_with(config: &Path, instance: &str, env: &[(&str, &str)]) -> Worker {
        let log = config.with_file_name(format!("worker-{instance}.log"));
        let child = weir()
            .envs(env.iter().copied())
            .args(["worker", "--config"])
            .arg(config)
            .args(["--instance", instance])
            .env(
                "WEIR_LOG",
                "info,wasmtime=warn,cranelift=warn,librdkafka=warn",
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Worker { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to end by itself (a crash point).
    fn wait_for_crash(mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "no crash:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            self.log().contains("WEIR_WORKER_CRASH_AFTER: aborting"),
            "{}",
            self.log()
        );
    }

    /// SIGTERM, then a clean exit within 30 s.
    fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "worker exited with {status}:\n{}",
                    self.log()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "worker did not stop:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A failed test leaves no worker behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the output holds at least `n` change events.
fn wait_for_output(bootstrap: &str, n: usize, timeout: Duration, workers: &mut [&mut Worker]) {
    let deadline = Instant::now() + timeout;
    loop {
        for w in workers.iter_mut() {
            if let Some(status) = w.child.try_wait().unwrap() {
                panic!("a worker exited with {status}:\n{}", w.log());
            }
        }
        let have = read_topic(bootstrap, OUTPUT)
            .iter()
            .filter(|r| r.value.is_some())
            .count();
        if have >= n {
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = workers.iter().map(|w| w.log()).collect();
            panic!(
                "{have} of {n} events in {OUTPUT}; worker logs:\n{}",
                logs.join("\n---\n")
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn workers_rebalance_and_survive_a_crash_with_every_change_once_and_in_order() {
    let kafka = ThrowawayKafka::start().unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = kafka.bootstrap();
    let dir = scratch("rebalance");
    create_topic(&bootstrap, INPUT, PARTITIONS);
    let config = worker_config(&dir, &bootstrap);

    let done = Arc::new(AtomicBool::new(false));
    let producer = {
        let (bootstrap, done) = (bootstrap.clone(), Arc::clone(&done));
        std::thread::spawn(move || produce(&bootstrap, Duration::from_millis(400), &done))
    };
    // The first worker crashes (SIGABRT, no cleanup) right after its
    // 20th commit, with records fetched but not committed behind it.
    let mut a = Worker::start_with(&config, "a", &[("WEIR_WORKER_CRASH_AFTER", "20")]);
    wait_for_output(&bootstrap, 150, Duration::from_secs(60), &mut [&mut a]);
    // A second worker joins: the partitions are shared out again.
    let b = Worker::start(&config, "b");
    a.wait_for_crash();
    // A third takes the dead one's place.
    let mut b = b;
    let mut c = Worker::start(&config, "c");
    producer.join().unwrap();
    assert!(done.load(Ordering::Relaxed));
    let expected = (KEYS * CHANGES) as usize;
    wait_for_output(
        &bootstrap,
        expected,
        Duration::from_secs(120),
        &mut [&mut b, &mut c],
    );
    let logs = format!("{}\n---\n{}", b.log(), c.log());
    b.stop();
    c.stop();

    let records = read_topic(&bootstrap, OUTPUT);
    let mut seen: HashMap<(i64, i64), usize> = HashMap::new();
    let mut last: BTreeMap<i64, (i64, bool)> = BTreeMap::new();
    for r in &records {
        let key: Json = serde_json::from_slice(r.key.as_deref().unwrap()).unwrap();
        let id = key["id"].as_i64().unwrap();
        assert_eq!(
            r.partition,
            (murmur2(r.key.as_deref().unwrap()) & 0x7fff_ffff) % PARTITIONS,
            "key {key} partitioned like the Java client"
        );
        let Some(event) = &r.value else {
            // A tombstone follows its key's delete.
            assert_eq!(
                last.get(&id),
                Some(&(CHANGES - 1, true)),
                "tombstone of {id}"
            );
            continue;
        };
        let image = if event["op"] == "d" {
            &event["before"]
        } else {
            &event["after"]
        };
        let seq = if event["op"] == "d" {
            CHANGES - 1
        } else {
            image["seq"].as_i64().unwrap()
        };
        assert_eq!(image["email"], "u***@example.com", "masked: {event}");
        assert!(
            r.headers
                .get("weir.plugins")
                .is_some_and(|p| p.starts_with("pii-mask=")),
            "{:?}",
            r.headers
        );
        if let Some((previous, _)) = last.get(&id) {
            assert!(
                seq > *previous,
                "key {id}: {seq} after {previous}; logs:\n{logs}"
            );
        }
        last.insert(id, (seq, event["op"] == "d"));
        *seen.entry((id, seq)).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "written twice: {twice:?}; logs:\n{logs}");
    assert_eq!(seen.len(), expected, "every change once");

    let dead = read_topic(&bootstrap, DEAD_LETTERS);
    assert_eq!(dead.len(), 1, "{dead:?}");
    let letter = dead[0].value.as_ref().unwrap();
    assert_eq!(letter["kind"], "not_a_change");
    assert_eq!(letter["input"]["topic"], INPUT);
    assert_eq!(letter["value"], "this is not a change event");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_worker_file_is_refused_with_every_field_at_fault() {
    let dir = scratch("bad-file");
    let config = dir.join("worker.toml");
    std::fs::write(
        &config,
        "name = \"w\"\nstate_dir = \"s\"\n[input]\nbrokers = [\"nohost\"]\ntopics = []\n",
    )
    .unwrap();
    let out = weir()
        .args(["worker", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    for expected in [
        "input.brokers[0]: `nohost` is not `host:port`",
        "input.topics: name at least one topic",
        "missing section `[output]`",
    ] {
        assert!(stderr.contains(expected), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_input_topic_stops_the_worker_with_its_name() {
    let kafka = ThrowawayKafka::start().unwrap_or_else(|e| panic!("{e}"));
    let dir = scratch("missing-topic");
    let config = worker_config(&dir, &kafka.bootstrap());
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("topics = [\"{INPUT}\"]"),
        "topics = [\"shop.public.nowhere\"]",
    );
    std::fs::write(&config, text).unwrap();
    let out = weir()
        .args(["worker", "--config"])
        .arg(&config)
        .args(["--instance", "x"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("shop.public.nowhere") && stderr.contains("does not exist"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn weir_validate_checks_a_worker_file_and_its_plugins() {
    let dir = scratch("validate");
    let config = worker_config(&dir, "127.0.0.1:9");
    let out = succeeds(weir().arg("validate").arg(&config));
    assert!(
        out.contains("worker `masked` is valid: reads shop.public.users, 1 plugin(s)"),
        "{out}"
    );
    // A router plugin that is a transformer is caught before any broker is
    // asked.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[trust]",
        &format!(
            "[router.plugin]\nname = \"r\"\npath = \"{}\"\n\n[trust]",
            components::PII_MASK
        ),
    );
    std::fs::write(&config, text).unwrap();
    let out = weir().arg("validate").arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("router.plugin.path") && stderr.contains("needs a router plugin"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_plugin_failure_goes_to_the_dead_letter_topic_and_reload_reaches_the_instance() {
    let kafka = ThrowawayKafka::start().unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = kafka.bootstrap();
    let dir = scratch("plugin-failure");
    create_topic(&bootstrap, INPUT, 1);
    let config = worker_config(&dir, &bootstrap);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("name = \"pii-mask\"", "name = \"misbehave\"")
        .replace(components::PII_MASK, components::MISBEHAVE);
    std::fs::write(&config, text).unwrap();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    for (id, action) in [(1, "ok"), (2, "panic"), (3, "ok")] {
        let value = json!({
            "before": null, "after": {"id": id, "action": action},
            "source": {"connector": "postgresql", "db": "shop", "schema": "public", "table": "users"},
            "op": "c", "ts_ms": 0,
        })
        .to_string();
        let key = format!(r#"{{"id":{id}}}"#);
        producer
            .send(BaseRecord::to(INPUT).key(&key).payload(&value))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    let mut worker = Worker::start(&config, "solo");
    wait_for_output(&bootstrap, 2, Duration::from_secs(60), &mut [&mut worker]);
    let ids: Vec<i64> = read_topic(&bootstrap, OUTPUT)
        .iter()
        .filter_map(|r| r.value.as_ref())
        .map(|v| v["after"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 3], "the good events go on, in order");
    let dead = read_topic(&bootstrap, DEAD_LETTERS);
    assert_eq!(dead.len(), 1, "{dead:?}");
    let letter = dead[0].value.as_ref().unwrap();
    assert_eq!(letter["plugin"], "misbehave");
    assert_eq!(letter["kind"], "trap");
    assert!(
        letter["reason"].as_str().unwrap().contains("poison event"),
        "{letter}"
    );
    assert_eq!(letter["event"]["after"]["id"], 2);
    // `weir plugin reload` finds this instance's admin socket.
    let out = succeeds(
        weir()
            .args(["plugin", "reload", "--config"])
            .arg(&config)
            .args(["--instance", "solo"]),
    );
    assert!(out.contains("misbehave: unchanged"), "{out}");
    worker.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
