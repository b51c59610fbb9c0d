//! `weir run` end to end against a throwaway MariaDB: snapshot and binlog
//! into files, exactly once across `kill -9`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use weir_throwaway::ThrowawayMariadb;

use crate::pipeline::{
    WORKLOAD_CHANGES, apply, assert_no_duplicates, count_output, kill_9_at_random, read_output,
    scratch_dir, workload_transaction,
};
use crate::{succeeds, weir};

struct Setup {
    server: ThrowawayMariadb,
    dir: PathBuf,
}

impl Setup {
    fn new(schema: &str) -> Setup {
        let server = ThrowawayMariadb::start(&[]).unwrap_or_else(|e| panic!("{e}"));
        server
            .sql(&format!("CREATE DATABASE shop; USE shop; {schema}"))
            .unwrap_or_else(|e| panic!("{e}"));
        Setup {
            server,
            dir: scratch_dir("weir-mysql-test"),
        }
    }

    fn config(&self) -> PathBuf {
        self.config_with("", "")
    }

    /// The config, with `source_extra` in `[source]` and `extra` at the end.
    fn config_with(&self, source_extra: &str, extra: &str) -> PathBuf {
        let path = self.dir.join("pipeline.toml");
        std::fs::write(
            &path,
            format!(
                r#"
name = "mysql-test"
state_dir = "state"

[source]
kind = "mariadb"
host = "127.0.0.1"
port = {port}
user = "{user}"
password = "${{WEIR_TEST_MYSQL_PASSWORD}}"
databases = ["shop"]
snapshot = "initial"
{source_extra}

[[sinks]]
name = "files"
kind = "file"
dir = "out"
max_file_bytes = 100000

[pipeline]
max_batch_events = 50

{extra}
"#,
                port = self.server.port,
                user = ThrowawayMariadb::USER,
            ),
        )
        .unwrap();
        path
    }

    fn start(&self, config: &Path) -> Child {
        weir()
            .args(["run", "--config"])
            .arg(config)
            .env("WEIR_LOG", "info")
            .env("WEIR_TEST_MYSQL_PASSWORD", ThrowawayMariadb::PASSWORD)
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join("weir.log"))
                    .map_or(Stdio::inherit(), Stdio::from),
            )
            .spawn()
            .expect("weir starts")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("weir.log")).unwrap_or_default()
    }

    fn wait_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; weir log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until weir reads the binlog as a replica.
    fn wait_for_stream(&self) {
        self.wait_until("the binlog stream", || {
            self.server
                .sql("SELECT count(*) FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'")
                .is_ok_and(|n| n.trim() == "1")
        });
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Transactions against `shop.items` until `stop`: two inserts, two
/// updates and a delete each; counts the changes made.
fn workload(
    setup: &Setup,
    stop: Arc<AtomicBool>,
    made: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    let (binary, socket) = setup.server.client_parts();
    std::thread::spawn(move || {
        let mut next_id = 1_000_000i64;
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            // Ten transactions per client run: a process start for each
            // would dominate.
            let mut sql = String::from("USE shop;");
            for _ in 0..10 {
                n += 1;
                sql.push_str(&workload_transaction(n, &mut next_id));
            }
            succeeds(
                weir_throwaway::mariadb::client_command(&binary, &socket)
                    .args(["-N", "-B", "-e", &sql]),
            );
            made.fetch_add(10 * WORKLOAD_CHANGES, Ordering::Relaxed);
        }
    })
}

fn table_rows(setup: &Setup) -> BTreeMap<i64, i64> {
    setup
        .server
        .sql("SELECT id, v FROM shop.items ORDER BY id")
        .unwrap()
        .lines()
        .map(|l| {
            let (id, v) = l.split_once('\t').unwrap();
            (id.parse().unwrap(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn mysql_kill_9_during_a_workload_loses_and_duplicates_nothing() {
    let setup = Setup::new(
        "CREATE TABLE items (id BIGINT PRIMARY KEY, v INT NOT NULL);
         INSERT INTO items (id, v) SELECT seq, 0 FROM seq_1_to_200;
         INSERT INTO items (id, v) VALUES (999999, 0);",
    );
    let config = setup.config();
    let child = setup.start(&config);
    setup.wait_for_stream();
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicU64::new(0));
    let load = workload(&setup, Arc::clone(&stop), Arc::clone(&made));
    let child = kill_9_at_random(child, 3, || setup.start(&config));
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    // The 201 rows the snapshot copied, and every change.
    let expected = 201 + made.load(Ordering::Relaxed) as usize;
    let out = setup.dir.join("out");
    setup.wait_until("every change", || count_output(&out) >= expected);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut child = child;
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "weir exited with {status}; log:\n{}",
        setup.log()
    );

    let events: Vec<Json> = read_output(&out).into_values().flatten().collect();
    eprintln!("{expected} rows and changes across three kills");
    assert_eq!(events.len(), expected, "events written vs changes made");
    assert_no_duplicates(&events);
    // In order: applying the output reproduces the table.
    assert_eq!(apply(&events), table_rows(&setup));
    assert!(
        setup.log().contains("Pipeline stopped cleanly"),
        "{}",
        setup.log()
    );
}

/// The binlog position `SHOW MASTER STATUS` reports.
fn binlog_end(setup: &Setup) -> (String, u64) {
    let status = setup.server.sql("SHOW MASTER STATUS").unwrap();
    let mut fields = status.split_whitespace();
    let file = fields.next().unwrap().to_owned();
    (file, fields.next().unwrap().parse().unwrap())
}

#[test]
fn the_binlog_distance_and_the_snapshot_by_table_show_in_the_admin_api() {
    use crate::admin::{free_port, request};
    const TOKEN: &str = "admin-token-0123456789";
    let setup = Setup::new("CREATE TABLE items (id bigint PRIMARY KEY, v text);");
    setup
        .server
        .sql("USE shop; INSERT INTO items SELECT seq, 'v' FROM seq_1_to_40; ANALYZE TABLE items;")
        .unwrap();
    let port = free_port();
    let config = setup.config_with(
        "heartbeat_secs = 1",
        &format!("[admin]\naddress = \"127.0.0.1:{port}\"\nadmin_token = \"{TOKEN}\"\n"),
    );
    let mut child = setup.start(&config);
    setup.wait_for_stream();
    let status = || {
        request(port, "GET", "/v1/status", Some(TOKEN))
            .map(|r| r.json())
            .unwrap_or_default()
    };
    setup.wait_until("the snapshot and no lag", || {
        let s = status();
        s["events_out"] == 40 && s["lag_bytes"] == 0
    });
    // The snapshot, by table, with InnoDB's estimate.
    let s = status();
    let table = &s["snapshot"]["tables"][0];
    assert_eq!(
        (
            table["table"].clone(),
            table["rows"].clone(),
            table["done"].clone()
        ),
        ("shop.items".into(), 40.into(), true.into()),
        "{s}"
    );
    assert!(table["estimated_rows"].as_u64().is_some(), "{s}");
    let metrics = request(port, "GET", "/metrics", None).unwrap().body;
    assert!(
        metrics.contains(
            "weir_snapshot_table_rows_total{pipeline=\"mysql-test\",table=\"shop.items\"} 40"
        ),
        "{metrics}"
    );
    // Paused, the binlog grows and the distance with it, byte for byte.
    let (file, from) = binlog_end(&setup);
    request(port, "POST", "/v1/pause", Some(TOKEN)).unwrap();
    setup
        .server
        .sql("USE shop; INSERT INTO items SELECT seq, 'p' FROM seq_41_to_140;")
        .unwrap();
    setup.wait_until("the distance of the changes made while paused", || {
        let (now_file, to) = binlog_end(&setup);
        now_file == file && to > from && status()["lag_bytes"] == to - from
    });
    let metrics = request(port, "GET", "/metrics", None).unwrap().body;
    assert!(
        metrics.contains("weir_source_lag_bytes{pipeline=\"mysql-test\"} "),
        "{metrics}"
    );
    request(port, "POST", "/v1/resume", Some(TOKEN)).unwrap();
    setup.wait_until("the pipeline to catch up", || {
        let s = status();
        s["events_out"] == 140 && s["lag_bytes"] == 0
    });
    let _ = child.kill();
    let _ = child.wait();
}
