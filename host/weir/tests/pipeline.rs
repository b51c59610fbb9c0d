//! `weir run` end to end against a throwaway PostgreSQL: snapshot and
//! stream into files, graceful shutdown, `kill -9` at random moments, and
//! the errors an operator sees.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value as Json;
use weir_tests::ThrowawayPostgres;

use crate::weir;
use weir_tests::components;

/// A throwaway server with database `db`, and a scratch directory.
pub(crate) struct Setup {
    pub(crate) server: ThrowawayPostgres,
    pub(crate) dir: PathBuf,
}

impl Setup {
    pub(crate) fn new(schema: &str) -> Setup {
        let server = ThrowawayPostgres::start(&[]).unwrap_or_else(|e| panic!("{e}"));
        server.psql("postgres", "CREATE DATABASE db").unwrap();
        server.psql("db", schema).unwrap();
        Setup {
            server,
            dir: scratch_dir("weir-pipeline-test"),
        }
    }

    /// Writes the pipeline config with a file sink into `out`; `extra` is
    /// appended verbatim.
    fn config(&self, source_extra: &str, extra: &str) -> PathBuf {
        self.config_with_sink(
            source_extra,
            "[[sinks]]\nname = \"files\"\nkind = \"file\"\ndir = \"out\"\nmax_file_bytes = 200000",
            extra,
        )
    }

    /// Writes the pipeline config: PostgreSQL `db` (plus `source_extra`)
    /// into the `sinks` sections, then `extra` verbatim.
    pub(crate) fn config_with_sink(&self, source_extra: &str, sinks: &str, extra: &str) -> PathBuf {
        let path = self.dir.join("pipeline.toml");
        std::fs::write(
            &path,
            format!(
                r#"
name = "test"
state_dir = "state"

[source]
kind = "postgres"
host = "127.0.0.1"
port = {port}
user = "postgres"
database = "db"
{source_extra}

{sinks}

{extra}
"#,
                port = self.server.port
            ),
        )
        .unwrap();
        path
    }

    fn out(&self) -> PathBuf {
        self.dir.join("out")
    }

    pub(crate) fn sql(&self, sql: &str) -> String {
        self.server
            .psql("db", sql)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts weir on a database whose `items` table holds 201 rows, waits
    /// for the snapshot, then starts the workload: the stop flag, the count
    /// of changes made, and the workload's thread.
    fn start_under_load(
        &self,
        config: &Path,
    ) -> (
        Child,
        Arc<AtomicBool>,
        Arc<AtomicU64>,
        std::thread::JoinHandle<()>,
    ) {
        let child = self.start(config);
        wait_until(
            "the snapshot",
            Duration::from_secs(60),
            || count_output(&self.out()) >= 201,
            self,
        );
        let stop = Arc::new(AtomicBool::new(false));
        let made = Arc::new(AtomicU64::new(0));
        let load = workload(self, Arc::clone(&stop), Arc::clone(&made));
        (child, stop, made, load)
    }

    pub(crate) fn start(&self, config: &Path) -> Child {
        weir()
            .args(["run", "--config"])
            .arg(config)
            .env("WEIR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(self.dir.join("weir.log"))
                    .map_or(Stdio::inherit(), Stdio::from),
            )
            .spawn()
            .expect("weir starts")
    }

    /// Waits until weir has created its replication slot, so that later
    /// changes belong to the stream, not the snapshot.
    pub(crate) fn wait_for_slot(&self) {
        wait_until(
            "the replication slot",
            Duration::from_secs(60),
            || self.sql("SELECT count(*) FROM pg_replication_slots").trim() == "1",
            self,
        );
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("weir.log")).unwrap_or_default()
    }
}

/// A `weir` process killed if the test fails before it stops it.
pub(crate) struct Running(pub(crate) Option<Child>);

impl Running {
    /// Stops it with SIGTERM and checks it exits cleanly.
    pub(crate) fn terminate(mut self, setup: &Setup) {
        terminate(self.0.take().expect("running"), setup);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A new, empty directory for one test's configs, state and output.
pub(crate) fn scratch_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every event in the output directory, file by file (segments in order).
pub(crate) fn read_output(dir: &Path) -> BTreeMap<String, Vec<Json>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut out: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let destination = name.rsplitn(3, '.').nth(2).unwrap_or(&name).to_owned();
        // A restarting weir may be cutting segments back right now.
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        // A last line without its newline is a write in progress.
        let whole = text.split_inclusive('\n').filter(|l| l.ends_with('\n'));
        for (i, line) in whole.enumerate() {
            let doc = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{name} line {}: {e}: {line}", i + 1));
            out.entry(destination.clone()).or_default().push(doc);
        }
    }
    out
}

pub(crate) fn count_output(dir: &Path) -> usize {
    read_output(dir).values().map(Vec::len).sum()
}

/// Applies events in order: the table's final contents, id -> v.
pub(crate) fn apply(events: &[Json]) -> BTreeMap<i64, i64> {
    let mut rows = BTreeMap::new();
    for e in events {
        match e["op"].as_str().unwrap() {
            "r" | "c" | "u" => {
                rows.insert(
                    e["after"]["id"].as_i64().unwrap(),
                    e["after"]["v"].as_i64().unwrap(),
                );
            }
            "d" => {
                rows.remove(&e["before"]["id"].as_i64().unwrap());
            }
            "t" => rows.clear(),
            op => panic!("unexpected op {op}"),
        }
    }
    rows
}

pub(crate) fn table_rows(setup: &Setup, table: &str) -> BTreeMap<i64, i64> {
    setup
        .sql(&format!("SELECT id, v FROM {table} ORDER BY id"))
        .lines()
        .map(|l| {
            let (id, v) = l.split_once('|').unwrap();
            (id.parse().unwrap(), v.parse().unwrap())
        })
        .collect()
}

pub(crate) fn wait_until(
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
    setup: &Setup,
) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; weir log:\n{}",
            setup.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn terminate(mut child: Child, setup: &Setup) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "weir exited with {status}; log:\n{}",
                setup.log()
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "weir ignored SIGTERM; log:\n{}",
            setup.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `expected` events, stops weir with SIGTERM, and checks that
/// the output holds exactly that many, none twice (ids are never reused
/// and every update bumps `v`, so each change is a distinct event).
fn finish_exactly_once(setup: &Setup, child: Child, expected: usize) -> Vec<Json> {
    wait_until(
        "every change",
        Duration::from_secs(120),
        || count_output(&setup.out()) >= expected,
        setup,
    );
    terminate(child, setup);
    let events: Vec<Json> = read_output(&setup.out()).into_values().flatten().collect();
    assert_eq!(events.len(), expected, "events written vs changes made");
    assert_no_duplicates(&events);
    events
}

/// Checks that no change arrived twice: the workloads never reuse an id
/// and every update bumps `v`, so each change is a distinct event.
pub(crate) fn assert_no_duplicates(events: &[Json]) {
    let mut seen = HashSet::new();
    for e in events {
        let image = if e["op"] == "d" {
            &e["before"]
        } else {
            &e["after"]
        };
        let id = (e["op"].clone(), image["id"].clone(), image["v"].clone());
        assert!(seen.insert(id.clone()), "duplicate event {id:?}");
    }
}

/// Kills `child` with SIGKILL `times` times, each after a random 0.7 to
/// 2.2 s, restarting it with `start`; returns the last one started. The
/// schedule's seed is printed, and `WEIR_TEST_SEED` replays one.
pub(crate) fn kill_9_at_random(
    mut child: Child,
    times: usize,
    mut start: impl FnMut() -> Child,
) -> Child {
    let mut seed = std::env::var("WEIR_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .subsec_nanos() as u64
        });
    eprintln!("kill -9 schedule: seed {seed} (replay with WEIR_TEST_SEED={seed})");
    for _ in 0..times {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(700 + (seed >> 33) % 1500));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        child = start();
    }
    child
}

/// Row changes in each [`workload_transaction`].
pub(crate) const WORKLOAD_CHANGES: u64 = 5;

/// The `n`th workload transaction on `items`: two inserts (ids from
/// `next_id`, which it advances), two updates (one of them of a row
/// 1..=200, which always exist) and a delete of the previous insert.
pub(crate) fn workload_transaction(n: u64, next_id: &mut i64) -> String {
    let a = *next_id;
    *next_id += 2;
    format!(
        "BEGIN;
         INSERT INTO items (id, v) VALUES ({a}, 0), ({b}, 0);
         UPDATE items SET v = v + 1 WHERE id = {a};
         UPDATE items SET v = v + 1 WHERE id = {old};
         DELETE FROM items WHERE id = {gone};
         COMMIT;",
        b = a + 1,
        old = 1 + (n * 7) % 200,
        gone = a - 1,
    )
}

/// Changes rows of `items` in small transactions until told to stop,
/// counting the row changes of committed transactions. Ids are never
/// reused and every update bumps `v`, so each change is a distinct event.
pub(crate) fn workload(
    setup: &Setup,
    stop: Arc<AtomicBool>,
    made: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    paced_workload(setup, stop, made, Duration::ZERO)
}

/// [`workload`] with a pause after each transaction.
pub(crate) fn paced_workload(
    setup: &Setup,
    stop: Arc<AtomicBool>,
    made: Arc<AtomicU64>,
    pause: Duration,
) -> std::thread::JoinHandle<()> {
    let port = setup.server.port;
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (client, conn) = tokio_postgres::connect(
                &format!("host=127.0.0.1 port={port} user=postgres dbname=db"),
                tokio_postgres::NoTls,
            )
            .await
            .unwrap();
            tokio::spawn(conn);
            let mut next_id = 1_000_000i64;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let sql = workload_transaction(n, &mut next_id);
                client.batch_execute(&sql).await.unwrap();
                made.fetch_add(WORKLOAD_CHANGES, Ordering::Relaxed);
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        });
    })
}

/// Runs the workload on `items` with weir (config `extra`) killed with
/// SIGKILL four times and restarted; checks every change arrived exactly
/// once. Returns the setup, the events and how many changes the workload
/// made after the 201 rows of the snapshot.
fn kill_9_workload(extra: &str) -> (Setup, Vec<Json>, usize) {
    let setup = Setup::new(
        "CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL, pad text DEFAULT repeat('p', 50));
         INSERT INTO items (id, v) SELECT i, 0 FROM generate_series(1, 200) i;
         INSERT INTO items (id, v) VALUES (999999, 0);",
    );
    let config = setup.config("", extra);
    let (child, stop, made, load) = setup.start_under_load(&config);
    let child = kill_9_at_random(child, 4, || setup.start(&config));
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    let changes = made.load(Ordering::Relaxed) as usize;
    let events = finish_exactly_once(&setup, child, 201 + changes);
    (setup, events, changes)
}

#[test]
fn kill_9_during_a_workload_loses_and_duplicates_nothing() {
    let (setup, events, _) = kill_9_workload("[pipeline]\nmax_batch_events = 50");
    // In order: applying the file reproduces the table.
    assert_eq!(apply(&events), table_rows(&setup, "items"));
    assert!(
        setup.log().contains("Pipeline stopped cleanly"),
        "{}",
        setup.log()
    );
}

#[test]
fn four_plugin_workers_keep_commit_order_and_exactly_once_through_kill_9() {
    let mask = components::bundled("pii-mask");
    let (setup, events, changes) = kill_9_workload(&format!(
        "[[plugins]]\nname = \"mask\"\npath = \"{mask}\"\n[trust]\nallow_unsigned = true\n\
         [pipeline]\nmax_batch_events = 20\nplugin_workers = 4\n"
    ));
    // Commit order: one connection made the changes, so their positions
    // only grow along the file, across the batches the workers took in
    // turn (the snapshot's rows come first).
    let positions: Vec<u64> = (events.iter().filter(|e| e["op"] != "r"))
        .map(|e| e["source"]["lsn"].as_u64().expect("a change's position"))
        .collect();
    assert_eq!(positions.len(), changes);
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "events out of commit order"
    );
    assert_eq!(apply(&events), table_rows(&setup, "items"));
    // Every event went through the plugin, on one of the four workers.
    assert!(events.iter().all(|e| {
        e["source"]["plugins"]
            .as_str()
            .is_some_and(|s| s.starts_with("mask="))
    }));
    assert!(
        setup.log().contains("Plugin stage runs on 4 workers"),
        "{}",
        setup.log()
    );
}

#[test]
fn each_sink_gets_its_inputs_in_commit_order_across_tables() {
    let setup = Setup::new(
        "CREATE TABLE parents (id bigint PRIMARY KEY, v int NOT NULL);
         CREATE TABLE children (id bigint PRIMARY KEY, v int NOT NULL,
                                parent bigint NOT NULL REFERENCES parents);
         CREATE TABLE other (id bigint PRIMARY KEY, v int NOT NULL);",
    );
    // The file sink takes `public.other` (the line continues its table);
    // a stdout sink takes the parent and child tables.
    let config = setup.config(
        "",
        r#"inputs = ["public.other"]

[[sinks]]
name = "family"
kind = "stdout"
inputs = ["public.parents", "public.child*"]
"#,
    );
    let stdout = setup.dir.join("stdout.jsonl");
    let child = weir()
        .args(["run", "--config"])
        .arg(&config)
        .env("WEIR_LOG", "info")
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(setup.dir.join("weir.log")).unwrap())
        .spawn()
        .expect("weir starts");
    setup.wait_for_slot();
    // One transaction: each child right after its parent, then a row for
    // the other sink; then a second transaction.
    setup.sql(
        "BEGIN;
         INSERT INTO parents VALUES (1, 0);
         INSERT INTO children VALUES (10, 0, 1);
         INSERT INTO other VALUES (1, 0);
         INSERT INTO parents VALUES (2, 0);
         INSERT INTO children VALUES (20, 0, 2);
         COMMIT;
         BEGIN;
         DELETE FROM children WHERE id = 10;
         DELETE FROM parents WHERE id = 1;
         COMMIT;",
    );
    let lines = || {
        std::fs::read_to_string(&stdout)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Json>(l).unwrap())
            .collect::<Vec<Json>>()
    };
    wait_until(
        "the family sink's events",
        Duration::from_secs(60),
        || lines().len() >= 6,
        &setup,
    );
    terminate(child, &setup);
    let seen: Vec<(String, String, i64)> = lines()
        .iter()
        .map(|e| {
            let image = if e["op"] == "d" {
                &e["before"]
            } else {
                &e["after"]
            };
            (
                e["source"]["table"].as_str().unwrap().to_owned(),
                e["op"].as_str().unwrap().to_owned(),
                image["id"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, String, i64)> = [
        ("parents", "c", 1),
        ("children", "c", 10),
        ("parents", "c", 2),
        ("children", "c", 20),
        ("children", "d", 10),
        ("parents", "d", 1),
    ]
    .iter()
    .map(|(t, op, id)| ((*t).to_owned(), (*op).to_owned(), *id))
    .collect();
    assert_eq!(seen, expected, "commit order across tables");
    let files = read_output(&setup.out());
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["public.other"],
        "the file sink takes only its inputs"
    );
    assert_eq!(files["public.other"].len(), 1);
}

#[test]
fn snapshot_plus_stream_equals_the_table_through_a_plugin() {
    let setup = Setup::new(
        "CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL, email text);
         INSERT INTO items (id, v, email) SELECT i, 0, 'user' || i || '@example.com' FROM generate_series(1, 5000) i;",
    );
    let mask = weir_tests::components::bundled("pii-mask");
    let config = setup.config(
        "snapshot_chunk_rows = 300\nsnapshot_parallelism = 2",
        &format!(
            "[[plugins]]\nname = \"mask\"\npath = \"{mask}\"\n[trust]\nallow_unsigned = true\n"
        ),
    );
    let child = setup.start(&config);
    setup.wait_for_slot();
    // Change rows while the snapshot runs.
    for i in 0..50 {
        setup.sql(&format!(
            "BEGIN; UPDATE items SET v = v + 1 WHERE id % 50 = {i}; DELETE FROM items WHERE id = {}; \
             INSERT INTO items (id, v, email) VALUES ({}, 7, 'new@example.org'); COMMIT;",
            4000 + i,
            10_000 + i
        ));
    }
    let table = table_rows(&setup, "items");
    wait_until(
        "the table's final state in the output",
        Duration::from_secs(120),
        || {
            let events: Vec<Json> = read_output(&setup.out()).into_values().flatten().collect();
            apply(&events) == table
        },
        &setup,
    );
    terminate(child, &setup);
    let output = read_output(&setup.out());
    let events = &output["public.items"];
    assert_eq!(events.iter().filter(|e| e["op"] == "r").count(), 5000);
    // The plugin ran: no email left in the clear (the default mask keeps
    // the first character and the domain).
    for e in events.iter().filter(|e| e["op"] != "d") {
        let id = e["after"]["id"].as_i64().unwrap();
        let email = e["after"]["email"].as_str().unwrap();
        assert_ne!(email, format!("user{id}@example.com"));
        assert_ne!(email, "new@example.org");
        assert!(
            email.contains('*') && (email.ends_with(".com") || email.ends_with(".org")),
            "{email}"
        );
    }
}

#[test]
fn on_a_terminal_the_snapshot_shows_a_progress_bar() {
    let setup = Setup::new(
        "CREATE TABLE a (id int PRIMARY KEY, v int NOT NULL);
         INSERT INTO a SELECT i, 0 FROM generate_series(1, 150000) i;
         ANALYZE a;",
    );
    let config = setup.config("snapshot_chunk_rows = 1000\nsnapshot_parallelism = 1", "");
    // `script` gives weir a terminal and records what it draws there.
    let typescript = setup.dir.join("terminal.txt");
    let command = format!(
        "{} run --config {}",
        env!("CARGO_BIN_EXE_weir"),
        config.display()
    );
    let mut child = Command::new("script")
        .args(["--quiet", "--flush", "--return", "--command", &command])
        .arg(&typescript)
        .env("WEIR_LOG", "info")
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("`script` (util-linux) runs");
    wait_until(
        "the snapshot",
        Duration::from_secs(120),
        || count_output(&setup.out()) >= 150_000,
        &setup,
    );
    let _ = Command::new("pkill")
        .args(["-TERM", "-f", &config.display().to_string()])
        .status();
    child.wait().unwrap();
    let drawn = std::fs::read_to_string(&typescript).unwrap();
    // The bar: rows copied of the planner's estimate, and tables done.
    assert!(drawn.contains("snapshot ["), "{drawn}");
    assert!(drawn.contains("/150,000 rows"), "{drawn}");
    assert!(drawn.contains("0/1 tables"), "{drawn}");
    // Log lines still reach the terminal, around the bar.
    assert!(drawn.contains("Pipeline starting."), "{drawn}");
}

#[test]
fn a_crash_during_the_snapshot_resumes_after_the_last_chunk() {
    let setup = Setup::new(
        "CREATE TABLE a (id int PRIMARY KEY, v int NOT NULL);
         CREATE TABLE b (id int PRIMARY KEY, v int NOT NULL);
         CREATE TABLE nokey (id int, v int NOT NULL);
         ALTER TABLE nokey REPLICA IDENTITY FULL;
         INSERT INTO a SELECT i, 0 FROM generate_series(1, 40000) i;
         INSERT INTO b SELECT i, 1 FROM generate_series(1, 40000) i;
         INSERT INTO nokey SELECT i, 2 FROM generate_series(1, 20000) i;",
    );
    let config = setup.config("snapshot_chunk_rows = 500\nsnapshot_parallelism = 2", "");
    let mut child = setup.start(&config);
    wait_until(
        "some snapshot output",
        Duration::from_secs(60),
        || count_output(&setup.out()) >= 5000,
        &setup,
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = count_output(&setup.out());
    assert!(partial < 100_000, "the snapshot finished before the kill");
    let child = setup.start(&config);
    wait_until(
        "the whole snapshot",
        Duration::from_secs(120),
        || count_output(&setup.out()) >= 100_000,
        &setup,
    );
    terminate(child, &setup);
    eprintln!("killed after {partial} rows were written");
    let output = read_output(&setup.out());
    for (table, rows) in [
        ("public.a", 40000),
        ("public.b", 40000),
        ("public.nokey", 20000),
    ] {
        let ids: Vec<i64> = output[table]
            .iter()
            .map(|e| e["after"]["id"].as_i64().unwrap())
            .collect();
        let unique: HashSet<i64> = ids.iter().copied().collect();
        assert_eq!(
            ids.len(),
            rows,
            "{table}: each row exactly once (partial output was {partial})"
        );
        assert_eq!(unique.len(), rows, "{table}: no row twice");
    }
}

#[test]
fn operator_errors_stop_weir_run_with_the_fix() {
    let setup = Setup::new("CREATE TABLE keyless (a int);");
    let config = setup.config("", "");
    let out = weir()
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("keyless") && stderr.contains("REPLICA IDENTITY FULL"),
        "{stderr}"
    );
}

#[test]
fn validate_lists_every_error_with_its_path() {
    let dir = std::env::temp_dir().join(format!("weir-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        r#"
name = "Bad Name"
state_dir = "state"
[source]
kind = "postgres"
user = "u"
database = "d"
password = "${WEIR_TEST_UNSET_VARIABLE}"
snapshot_chunk_rows = 0
[[plugins]]
name = "mask"
path = "missing.wasm"
[router]
template = "{schema}.{nope}"
[[sinks]]
name = "files"
kind = "file"
dir = "out"
"#,
    )
    .unwrap();
    let out = weir().arg("validate").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "name:",
        "source.password:",
        "WEIR_TEST_UNSET_VARIABLE",
        "source.snapshot_chunk_rows:",
        "plugins[0].path:",
        "router.template:",
    ] {
        assert!(stderr.contains(needle), "missing `{needle}` in:\n{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unreachable_database_is_retried_with_a_clear_message_until_stopped() {
    let dir = std::env::temp_dir().join(format!("weir-unreachable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("pipeline.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"down\"\nstate_dir = \"state\"\n[source]\nkind = \"postgres\"\nhost = \"127.0.0.1\"\n\
             port = {port}\nuser = \"weir\"\npassword = \"s3cret-value\"\ndatabase = \"db\"\n\
             [[sinks]]\nname = \"out\"\nkind = \"stdout\"\n"
        ),
    )
    .unwrap();
    let log = dir.join("weir.log");
    let mut child = weir()
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("restarting from the last checkpoint") {
            assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
            assert!(
                !text.contains("s3cret-value"),
                "the password leaked into the log"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no retry message:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "weir exited with {status} after SIGTERM while retrying"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes `component` as a bundle of version `version` signed by `key`.
pub(crate) fn bundle_as(
    name: &str,
    world: &str,
    component: &str,
    version: &str,
    key: &weir_plugin::bundle::SecretKey,
    path: &Path,
) {
    let manifest = weir_plugin::bundle::Manifest {
        name: name.into(),
        version: version.into(),
        world: world.into(),
        contract: "0.1.0".into(),
        wire_version: weir_core::wire::WIRE_VERSION,
        component_sha256: String::new(),
        capabilities: vec![],
        limits: weir_plugin::PluginLimits::default(),
        description: String::new(),
        author: String::new(),
    };
    let mut b = weir_plugin::bundle::Bundle::new(manifest, std::fs::read(component).unwrap(), None);
    b.sign(key);
    b.write(path).unwrap();
}

/// Checks that every delivered event names the plugin versions that
/// processed it, that a transaction has exactly one set of them, and that
/// no version marked `bad` (rolled back) processed anything written.
/// Returns the distinct stamps.
fn stamps_one_per_transaction(events: &[Json]) -> HashSet<String> {
    let mut by_tx: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    let mut stamps = HashSet::new();
    for e in events {
        let stamp = e["source"]["plugins"].as_str().expect("stamped").to_owned();
        assert!(
            !stamp.contains("bad"),
            "output from the rolled-back version: {e}"
        );
        stamps.insert(stamp.clone());
        if let Some(tx) = e["source"]["txId"].as_u64() {
            by_tx.entry(tx.to_string()).or_default().insert(stamp);
        }
    }
    for (tx, versions) in &by_tx {
        assert_eq!(
            versions.len(),
            1,
            "transaction {tx} processed by {versions:?}"
        );
    }
    stamps
}

/// Replaces the plugin file the way a deploy would: write aside, rename.
fn deploy(from: &Path, to: &Path) {
    let tmp = to.with_extension("deploying");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

/// A pipeline over `items` under a continuous workload, running one plugin
/// from a bundle file (`live`), with three versions ready to deploy over
/// it: `v1` (running at start), `v2`, and `bad`, which fails every event.
struct ReloadRig {
    setup: Setup,
    config: PathBuf,
    live: PathBuf,
    v1: PathBuf,
    v2: PathBuf,
    bad: PathBuf,
    child: Child,
    stop: Arc<AtomicBool>,
    made: Arc<AtomicU64>,
    load: std::thread::JoinHandle<()>,
}

impl ReloadRig {
    /// `section` is the pipeline config that names the plugin at `{live}`.
    fn start(
        name: &str,
        world: &str,
        good: &str,
        bad: &str,
        default_action: &str,
        section: impl Fn(&Path) -> String,
    ) -> ReloadRig {
        let setup = Setup::new(&format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL,
                                 action text NOT NULL DEFAULT '{default_action}');
             INSERT INTO items (id, v) SELECT i, 0 FROM generate_series(1, 200) i;
             INSERT INTO items (id, v) VALUES (999999, 0);"
        ));
        let key = weir_plugin::bundle::SecretKey::generate().unwrap();
        let path = |v: &str| setup.dir.join(format!("{name}-{v}.weirpkg"));
        let (v1, v2, bad_path, live) = (path("1"), path("2"), path("bad"), path("live"));
        bundle_as(name, world, good, "1.0.0", &key, &v1);
        bundle_as(name, world, good, "2.0.0", &key, &v2);
        bundle_as(name, world, bad, "3.0.0-bad", &key, &bad_path);
        deploy(&v1, &live);
        let config = setup.config(
            "",
            &format!(
                "{}\n[trust]\nkeys = [\"{}\"]\n\
                 [pipeline]\nmax_batch_events = 50\ncanary_events = 200\n\
                 plugin_workers = 3\n",
                section(&live),
                key.public()
            ),
        );
        let (child, stop, made, load) = setup.start_under_load(&config);
        ReloadRig {
            setup,
            config,
            live,
            v1,
            v2,
            bad: bad_path,
            child,
            stop,
            made,
            load,
        }
    }

    fn log_count(&self, needle: &str) -> usize {
        self.setup.log().matches(needle).count()
    }

    /// Deploys `version` a moment after the last change, then waits until
    /// the log says `needle` `times` times.
    fn deploy_and_wait(&self, version: &Path, what: &str, needle: &str, times: usize) {
        std::thread::sleep(Duration::from_millis(800));
        deploy(version, &self.live);
        if version == self.v1 {
            // Back to the first version on request rather than by the watch.
            let out = weir()
                .args(["plugin", "reload", "--config"])
                .arg(&self.config)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        wait_until(
            what,
            Duration::from_secs(30),
            || self.log_count(needle) >= times,
            &self.setup,
        );
    }

    /// Stops the workload; every change must arrive exactly once. Returns
    /// the events and the distinct version stamps.
    fn finish(self) -> (Setup, Vec<Json>, HashSet<String>) {
        std::thread::sleep(Duration::from_millis(800));
        self.stop.store(true, Ordering::Relaxed);
        self.load.join().unwrap();
        let expected = 201 + self.made.load(Ordering::Relaxed) as usize;
        let events = finish_exactly_once(&self.setup, self.child, expected);
        let stamps = stamps_one_per_transaction(&events);
        (self.setup, events, stamps)
    }
}

const SWAPPED: &str = "Plugin version swapped in";
const REPLICATED: &str = "Plugin workers now run the lead's versions again";

#[test]
fn hot_reload_under_load_swaps_versions_at_transaction_boundaries_and_rolls_back_a_bad_one() {
    // The bad version traps on every event: each row's `action` is `panic`.
    let port = crate::admin::free_port();
    const TOKEN: &str = "admin-token-0123456789";
    let rig = ReloadRig::start(
        "mask",
        "transformer",
        components::bundled("pii-mask"),
        components::MISBEHAVE,
        "panic",
        |live| {
            format!(
                "[[plugins]]\nname = \"mask\"\npath = \"{}\"\n\
                 [admin]\naddress = \"127.0.0.1:{port}\"\nadmin_token = \"{TOKEN}\"\n",
                live.display()
            )
        },
    );
    // A new version, picked up from the file; back to the first, on
    // request; a version that fails every event: rolled back, the pipeline
    // flows on.
    rig.deploy_and_wait(&rig.v2, "the first swap", SWAPPED, 1);
    rig.deploy_and_wait(&rig.v1, "the second swap", SWAPPED, 2);
    rig.deploy_and_wait(&rig.bad, "the rollback", "rolled back", 1);
    // The admin API counts the three swaps and the rollback, and names the
    // running version's signer. The counts are published once the batch
    // that swapped or rolled back is through the plugin stage, a moment
    // after the log line: wait for them.
    let counted = [
        "weir_plugin_reloads_total{pipeline=\"test\"} 3\n",
        "weir_plugin_rollbacks_total{pipeline=\"test\"} 1\n",
    ];
    wait_until(
        "the reload and rollback counts in /metrics",
        Duration::from_secs(10),
        || {
            let metrics = crate::admin::request(port, "GET", "/metrics", None)
                .unwrap()
                .body;
            counted.iter().all(|series| metrics.contains(series))
        },
        &rig.setup,
    );
    let status = crate::admin::request(port, "GET", "/v1/status", Some(TOKEN))
        .unwrap()
        .json();
    let plugin = &status["plugins"][0];
    assert!(
        plugin["version"]
            .as_str()
            .unwrap()
            .starts_with("mask@1.0.0+")
            && plugin["signer"].as_str().unwrap().starts_with("ed25519:"),
        "{status}"
    );
    let (setup, events, stamps) = rig.finish();
    assert!(
        stamps.iter().any(|s| s.contains("mask=mask@1.0.0"))
            && stamps.iter().any(|s| s.contains("mask=mask@2.0.0")),
        "{stamps:?}"
    );
    // Between the swaps the three workers took batches in turn, each with
    // the versions that had passed probation.
    assert!(
        setup.log().contains("Plugin stage runs on 3 workers") && setup.log().contains(REPLICATED),
        "{}",
        setup.log()
    );
    assert_eq!(
        setup
            .sql("SELECT count(*) FROM items")
            .trim()
            .parse::<usize>()
            .unwrap(),
        apply(&events).len()
    );
}

#[test]
fn a_router_plugin_is_hot_reloaded_too_and_a_bad_one_rolled_back() {
    let rig = ReloadRig::start(
        "route",
        "router",
        components::bundled("table-router"),
        // Fails every event it is asked to route.
        components::REFUSE_ROUTER,
        "keep",
        |live| {
            format!(
                "[router]\nplugin = {{ name = \"route\", path = \"{}\", \
                 config = {{ to = \"{{table}}\" }} }}",
                live.display()
            )
        },
    );
    rig.deploy_and_wait(&rig.v2, "the router swap", SWAPPED, 1);
    rig.deploy_and_wait(&rig.bad, "the router rollback", "rolled back", 1);
    let (setup, _, stamps) = rig.finish();
    assert!(
        stamps.iter().any(|s| s.contains("route=route@1.0.0"))
            && stamps.iter().any(|s| s.contains("route=route@2.0.0")),
        "{stamps:?}"
    );
    // Every event went where the router said: `to = "{table}"`.
    let destinations: Vec<String> = read_output(&setup.out()).into_keys().collect();
    assert_eq!(destinations, ["items"]);
}

/// A blocking client of database `db` of a throwaway server on `port`, for
/// workloads running on plain threads.
pub(crate) struct BlockingClient {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl BlockingClient {
    pub(crate) fn connect(port: u16, db: &str) -> BlockingClient {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = runtime.block_on(async {
            let (client, conn) = tokio_postgres::connect(
                &format!("host=127.0.0.1 port={port} user=postgres dbname={db}"),
                tokio_postgres::NoTls,
            )
            .await
            .unwrap();
            tokio::spawn(conn);
            client
        });
        BlockingClient { runtime, client }
    }

    pub(crate) fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        self.runtime.block_on(self.client.execute(sql, params))
    }
}
