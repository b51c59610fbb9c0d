//! The MySQL source against a real, throwaway MariaDB server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use weir_connect::SourceChannels;
use weir_core::{ChangeBatch, ChangeEvent, ErrorKind, Op, Value};
use weir_mysql::source::ConnectParams;
use weir_mysql::{MysqlError, SourceSettings};
use weir_throwaway::ThrowawayMariadb;

/// A server with a database `shop` made by `setup`.
fn server(options: &[(&str, &str)], setup: &str) -> ThrowawayMariadb {
    let server = ThrowawayMariadb::start(options).unwrap_or_else(|e| panic!("{e}"));
    server
        .sql(&format!("CREATE DATABASE shop; USE shop; {setup}"))
        .unwrap_or_else(|e| panic!("{e}"));
    server
}

fn settings(server: &ThrowawayMariadb) -> SourceSettings {
    SourceSettings {
        connect: ConnectParams {
            host: "127.0.0.1".into(),
            port: server.port,
            user: ThrowawayMariadb::USER.into(),
            password: Some(ThrowawayMariadb::PASSWORD.into()),
        },
        databases: vec!["shop".into()],
        tables: Vec::new(),
        server_id: 4242,
        skip_server_ids: vec![weir_mysql::config::APPLY_SERVER_ID],
        heartbeat: Duration::from_secs(1),
        snapshot: false,
        snapshot_chunk_rows: 10_000,
        max_batch_events: 1000,
        max_batch_bytes: 4 << 20,
    }
}

/// A running source whose batches are collected and acknowledged at once.
struct Running {
    batches: mpsc::Receiver<ChangeBatch>,
    acks: mpsc::UnboundedSender<Json>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), MysqlError>>,
    /// Resume states of the batches collected, in order.
    resumes: Vec<Json>,
}

fn start(settings: SourceSettings, resume: Json) -> Running {
    let (stop, shutdown) = watch::channel(false);
    let (channels, ends) = SourceChannels::new(4, shutdown, watch::channel(Default::default()).0);
    let task =
        tokio::spawn(async move { weir_mysql::source::run(&settings, &resume, channels).await });
    Running {
        batches: ends.batches,
        acks: ends.acks,
        stop,
        task,
        resumes: Vec::new(),
    }
}

impl Running {
    /// Collects events until `n` have arrived (and the batch they end in).
    async fn collect(&mut self, n: usize) -> Vec<ChangeEvent> {
        let mut events = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while events.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let batch = match tokio::time::timeout(left, self.batches.recv()).await {
                Ok(Some(batch)) => batch,
                Ok(None) => panic!("the source stopped: {:?}", (&mut self.task).await),
                Err(_) => panic!("timed out with {} of {n} events: {events:#?}", events.len()),
            };
            events.extend(batch.events);
            if let Some(resume) = batch.resume {
                let _ = self.acks.send(resume.clone());
                self.resumes.push(resume);
            }
        }
        events
    }

    /// Takes the next batch if one comes within half a second: its events
    /// into `events`, its position acknowledged and returned.
    async fn poll_into(&mut self, events: &mut Vec<ChangeEvent>) -> Option<Json> {
        let wait = Duration::from_millis(500);
        let batch = tokio::time::timeout(wait, self.batches.recv())
            .await
            .ok()??;
        events.extend(batch.events);
        let resume = batch.resume?;
        let _ = self.acks.send(resume.clone());
        Some(resume)
    }

    /// Stops the source the way the pipeline does and checks it stops
    /// cleanly.
    async fn stop(mut self) -> Vec<Json> {
        self.stop.send(true).unwrap();
        // Drain and acknowledge until the source closes its side.
        while let Some(batch) = self.batches.recv().await {
            if let Some(resume) = batch.resume {
                self.resumes.push(resume.clone());
                let _ = self.acks.send(resume);
            }
        }
        drop(self.acks);
        self.task.await.unwrap().unwrap();
        self.resumes
    }
}

/// Waits until the source is registered as a replica, so that later
/// changes belong to its stream.
async fn wait_for_replica(server: &ThrowawayMariadb, source: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if source.task.is_finished() {
            panic!("the source stopped: {:?}", (&mut source.task).await);
        }
        let dumps = server
            .sql("SELECT count(*) FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'")
            .unwrap();
        if dumps.trim() == "1" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the source never started streaming");
}

fn int(event: &ChangeEvent, image: &str, column: &str) -> i64 {
    let row = match image {
        "before" => event.before.as_ref(),
        _ => event.after.as_ref(),
    }
    .unwrap_or_else(|| panic!("no {image} image: {event:?}"));
    match &row.iter().find(|c| c.name == column).unwrap().value {
        Value::Int(i) => *i,
        other => panic!("{column} is {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_arrive_in_commit_order_with_keys_and_images() {
    let server = server(
        &[],
        "CREATE TABLE parents (id BIGINT PRIMARY KEY, v INT NOT NULL);
         CREATE TABLE children (id BIGINT PRIMARY KEY, parent BIGINT NOT NULL, v INT NOT NULL);
         CREATE TABLE nokey (a INT, b INT);
         CREATE DATABASE other; CREATE TABLE other.t (id INT PRIMARY KEY);",
    );
    let mut source = start(settings(&server), Json::Null);
    wait_for_replica(&server, &mut source).await;
    server
        .sql(
            "USE shop;
             BEGIN; INSERT INTO parents VALUES (1, 0); INSERT INTO children VALUES (10, 1, 0);
                    INSERT INTO other.t VALUES (1); INSERT INTO parents VALUES (2, 0); COMMIT;
             UPDATE parents SET v = v + 1 WHERE id = 1;
             UPDATE parents SET id = 3 WHERE id = 2;
             DELETE FROM children WHERE id = 10;
             INSERT INTO nokey VALUES (7, 8); UPDATE nokey SET b = 9;",
        )
        .unwrap();
    let events = source.collect(8).await;
    let seen: Vec<(String, Op, i64)> = events
        .iter()
        .map(|e| {
            let image = if e.op == Op::Delete {
                "before"
            } else {
                "after"
            };
            let column = if e.source.table == "nokey" { "a" } else { "id" };
            (e.source.table.to_string(), e.op, int(e, image, column))
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("parents".into(), Op::Create, 1),
            ("children".into(), Op::Create, 10),
            ("parents".into(), Op::Create, 2),
            ("parents".into(), Op::Update, 1),
            ("parents".into(), Op::Update, 3),
            ("children".into(), Op::Delete, 10),
            ("nokey".into(), Op::Create, 7),
            ("nokey".into(), Op::Update, 7),
        ],
        "the other database is not captured"
    );
    let update = &events[3];
    assert_eq!(int(update, "before", "v"), 0);
    assert_eq!(int(update, "after", "v"), 1);
    // A changed key: the key is the row's old identity.
    let moved = &events[4];
    assert_eq!(moved.key.len(), 1);
    assert_eq!(moved.key[0].name, "id");
    assert_eq!(moved.key[0].value, Value::Int(2));
    // Without a primary key, the whole before image is the key.
    assert_eq!(events[7].key.len(), 2);
    assert_eq!(events[7].key[1].value, Value::Int(8));
    // One transaction, one id; the source names where it came from.
    assert_eq!(events[0].source.txid, events[2].source.txid);
    assert!(events[0].source.txid.is_some());
    assert_ne!(events[0].source.txid, events[3].source.txid);
    assert_eq!(events[0].source.connector, "mysql");
    assert_eq!(events[0].source.database, "shop");
    assert!(
        events[0].source.position.starts_with("binlog.000001:"),
        "{:?}",
        events[0].source
    );
    let resumes = source.stop().await;
    assert!(!resumes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_at_the_checkpoint_repeats_and_skips_nothing() {
    let server = server(&[], "CREATE TABLE t (id BIGINT PRIMARY KEY);");
    let mut source = start(settings(&server), Json::Null);
    wait_for_replica(&server, &mut source).await;
    server
        .sql("INSERT INTO shop.t VALUES (1); INSERT INTO shop.t VALUES (2);")
        .unwrap();
    source.collect(2).await;
    let resumes = source.stop().await;
    let resume = resumes.last().unwrap().clone();
    // Changes while the pipeline is down, across a binlog rotation.
    server
        .sql("INSERT INTO shop.t VALUES (3); FLUSH BINARY LOGS; INSERT INTO shop.t VALUES (4);")
        .unwrap();
    let mut source = start(settings(&server), resume);
    let events = source.collect(2).await;
    let ids: Vec<i64> = events.iter().map(|e| int(e, "after", "id")).collect();
    assert_eq!(ids, [3, 4]);
    assert!(events[1].source.position.starts_with("binlog.000002:"));
    source.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_by_gtid_wherever_the_files_are() {
    let server = server(&[], "CREATE TABLE t (id BIGINT PRIMARY KEY);");
    // A checkpoint from before positions carried GTIDs: file and offset.
    let end = server.sql("SHOW MASTER STATUS").unwrap();
    let mut fields = end.split_whitespace();
    let (file, pos) = (fields.next().unwrap(), fields.next().unwrap());
    let old = serde_json::json!({"file": file, "pos": pos.parse::<u64>().unwrap()});
    server
        .sql("INSERT INTO shop.t VALUES (1); INSERT INTO shop.t VALUES (2);")
        .unwrap();
    let mut source = start(settings(&server), old);
    let events = source.collect(2).await;
    let ids: Vec<i64> = events.iter().map(|e| int(e, "after", "id")).collect();
    assert_eq!(ids, [1, 2], "a checkpoint without a GTID state resumes");
    let resumes = source.stop().await;
    let mut resume = resumes.last().unwrap().clone();
    let state = server.sql("SELECT @@gtid_binlog_pos").unwrap();
    assert_eq!(
        resume["gtid"].as_str(),
        Some(state.trim()),
        "positions carry the GTID state from then on: {resume}"
    );
    server
        .sql("INSERT INTO shop.t VALUES (3); FLUSH BINARY LOGS; INSERT INTO shop.t VALUES (4);")
        .unwrap();
    // As on another server after a failover: the checkpoint's file and
    // offset mean nothing there, its GTID state does.
    resume["file"] = "binlog.000042".into();
    resume["pos"] = 123_456.into();
    let mut source = start(settings(&server), resume);
    let events = source.collect(2).await;
    let ids: Vec<i64> = events.iter().map(|e| int(e, "after", "id")).collect();
    assert_eq!(ids, [3, 4]);
    assert!(events[1].source.position.starts_with("binlog.000002:"));
    let resumes = source.stop().await;
    let last = resumes.last().unwrap();
    assert_eq!(
        last["file"], "binlog.000002",
        "the file learned from the stream"
    );
    let state = server.sql("SELECT @@gtid_binlog_pos").unwrap();
    assert_eq!(last["gtid"].as_str(), Some(state.trim()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn common_types_arrive_typed() {
    let server = server(
        &[],
        "CREATE TABLE v (
            id INT PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, bu BIGINT UNSIGNED,
            d DECIMAL(20,4), f FLOAT, db DOUBLE, vc VARCHAR(20), tx TEXT, bin VARBINARY(4),
            dt DATE, dtm DATETIME(3), ts TIMESTAMP(6) NULL, tm TIME, y YEAR, j JSON, n INT,
            u VARCHAR(10) CHARACTER SET utf8mb4, bt BIT(4), e ENUM('a', 'b'), st SET('x', 'y'))",
    );
    let mut source = start(settings(&server), Json::Null);
    wait_for_replica(&server, &mut source).await;
    server
        .sql(
            "SET NAMES utf8mb4; SET time_zone = '+02:00';
             INSERT INTO shop.v VALUES (1, -5, 200, 18446744073709551615, -1234.5678, 1.5, 2.25,
                'héllo', 'text', 0x00ff, '2024-03-01', '2024-03-01 12:34:56.789',
                '2024-03-01 12:00:00.000001', '-838:59:59', 2024, '{\"a\": [1]}', NULL,
                'zß😀', b'1010', 'b', 'x,y')",
        )
        .unwrap();
    let events = source.collect(1).await;
    let after = events[0].after.as_ref().unwrap();
    let value = |name: &str| after.iter().find(|c| c.name == name).unwrap().value.clone();
    assert_eq!(value("ti"), Value::Int(-5));
    assert_eq!(value("tu"), Value::Int(200), "unsigned from the metadata");
    assert_eq!(value("bu"), Value::Decimal("18446744073709551615".into()));
    assert_eq!(value("d"), Value::Decimal("-1234.5678".into()));
    assert_eq!(value("f"), Value::Float(1.5));
    assert_eq!(value("db"), Value::Float(2.25));
    assert_eq!(value("vc"), Value::Text("héllo".into()));
    assert_eq!(value("tx"), Value::Text("text".into()));
    assert_eq!(value("bin"), Value::Bytes(vec![0x00, 0xff]));
    assert_eq!(value("dt"), Value::Date(19_783));
    assert_eq!(
        value("dtm"),
        Value::Timestamp(
            19_783 * 86_400_000_000 + (12 * 3600 + 34 * 60 + 56) * 1_000_000 + 789_000
        )
    );
    // 12:00 at +02:00 is 10:00 UTC.
    assert_eq!(
        value("ts"),
        Value::Timestamptz(19_783 * 86_400_000_000 + 10 * 3_600_000_000 + 1)
    );
    assert_eq!(
        value("tm"),
        Value::Time(-(838 * 3600 + 59 * 60 + 59) * 1_000_000)
    );
    assert_eq!(value("y"), Value::Int(2024));
    assert_eq!(
        value("j"),
        Value::Text("{\"a\": [1]}".into()),
        "MariaDB's JSON is text"
    );
    assert_eq!(value("n"), Value::Null);
    assert_eq!(value("u"), Value::Text("zß😀".into()));
    assert_eq!(value("bt"), Value::Bytes(vec![0b1010]));
    assert_eq!(value("e"), Value::Text("b".into()));
    assert_eq!(value("st"), Value::Text("x,y".into()));
    source.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_in_every_common_character_set_arrives_as_utf8() {
    let sets = [
        ("latin1", "café €"),
        ("latin2", "Żółć"),
        ("cp1251", "Привет"),
        ("koi8r", "Привет"),
        ("greek", "Καλημέρα"),
        ("gbk", "你好世界"),
        ("big5", "中文字"),
        ("sjis", "こんにちは"),
        ("ujis", "こんにちは"),
        ("euckr", "안녕하세요"),
        ("ucs2", "Ωmega"),
        ("utf16", "z😀"),
        ("utf32", "z😀"),
        ("ascii", "plain"),
    ];
    let columns: Vec<String> = sets
        .iter()
        .map(|(set, _)| format!("c_{set} VARCHAR(20) CHARACTER SET {set}"))
        .collect();
    let server = server(
        &[],
        &format!(
            "CREATE TABLE t (id INT PRIMARY KEY, {});",
            columns.join(", ")
        ),
    );
    let mut source = start(settings(&server), Json::Null);
    wait_for_replica(&server, &mut source).await;
    let values: Vec<String> = sets.iter().map(|(_, text)| format!("'{text}'")).collect();
    server
        .sql(&format!(
            "SET NAMES utf8mb4; INSERT INTO shop.t VALUES (1, {})",
            values.join(", ")
        ))
        .unwrap();
    let events = source.collect(1).await;
    let after = events[0].after.as_ref().unwrap();
    for (set, text) in sets {
        let value = &after
            .iter()
            .find(|c| c.name == format!("c_{set}"))
            .unwrap()
            .value;
        assert_eq!(value, &Value::Text(text.into()), "{set}");
    }
    source.stop().await;
}

/// The error a source stops with.
async fn fails(settings: SourceSettings, resume: Json) -> MysqlError {
    // Running, not stopping: some refusals come with the stream's first
    // read (a GTID state the server's binlog does not hold).
    let source = start(settings, resume);
    tokio::time::timeout(Duration::from_secs(30), source.task)
        .await
        .expect("the source should have stopped with an error")
        .unwrap()
        .expect_err("the source should have refused to start")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfigured_server_is_refused_with_the_fix() {
    for (option, needle) in [
        (
            ("binlog_format", "STATEMENT"),
            "SET GLOBAL binlog_format = 'ROW'",
        ),
        (
            ("binlog_row_metadata", "MINIMAL"),
            "SET GLOBAL binlog_row_metadata = 'FULL'",
        ),
        (
            ("binlog_row_image", "MINIMAL"),
            "SET GLOBAL binlog_row_image = 'FULL'",
        ),
    ] {
        let server = server(&[option], "");
        let err = fails(settings(&server), Json::Null).await;
        assert_eq!(err.kind(), ErrorKind::Operator, "{err}");
        assert!(err.to_string().contains(needle), "{err}");
    }

    let server = server(&[], "CREATE TABLE t (id INT PRIMARY KEY);");
    let mut s = settings(&server);
    s.databases = vec!["nope".into()];
    let err = fails(s, Json::Null).await;
    assert!(err.to_string().contains("database `nope`"), "{err}");

    // A resume point the server no longer has. MariaDB keeps a binlog
    // until its binlog checkpoint has moved past it: purge until it is gone.
    let resume = serde_json::json!({"file": "binlog.000001", "pos": 4});
    let deadline = Instant::now() + Duration::from_secs(30);
    while server
        .sql("SHOW BINARY LOGS")
        .unwrap()
        .contains("binlog.000001")
    {
        assert!(Instant::now() < deadline, "binlog.000001 was never purged");
        server
            .sql("FLUSH BINARY LOGS; DO SLEEP(0.1); PURGE BINARY LOGS BEFORE NOW() + INTERVAL 1 HOUR")
            .unwrap();
    }
    let err = fails(settings(&server), resume).await;
    assert_eq!(err.kind(), ErrorKind::Operator, "{err:?}");
    assert!(err.to_string().contains("no longer has"), "{err}");
    // The same by GTID: the transaction after 0-1-1 (the setup's second)
    // was in the purged file, and a state ahead of the server's (as after
    // `RESET MASTER`) is not in its binlog either.
    for gtid in ["0-1-1", "0-1-5000"] {
        let resume = serde_json::json!({"file": "binlog.000001", "pos": 4, "gtid": gtid});
        let err = fails(settings(&server), resume).await;
        assert_eq!(err.kind(), ErrorKind::Operator, "{err:?}");
        assert!(err.to_string().contains("no longer has"), "{err}");
        assert!(err.to_string().contains(gtid), "{err}");
    }

    // Nothing listens: retried.
    let mut s = settings(&server);
    s.connect.port = 1;
    let err = fails(s, Json::Null).await;
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200k_row_transaction_arrives_whole_in_chunks() {
    let server = server(
        &[],
        "CREATE TABLE big (id BIGINT PRIMARY KEY, pad VARCHAR(20));",
    );
    let mut source = start(settings(&server), Json::Null);
    wait_for_replica(&server, &mut source).await;
    server
        .sql("USE shop; INSERT INTO big SELECT seq, 'pad' FROM seq_1_to_200000")
        .unwrap();
    let mut ids = Vec::with_capacity(200_000);
    let mut chunks = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while ids.len() < 200_000 {
        let left = deadline.saturating_duration_since(Instant::now());
        let batch = tokio::time::timeout(left, source.batches.recv())
            .await
            .expect("the whole transaction in time")
            .expect("the source runs");
        ids.extend(batch.events.iter().map(|e| int(e, "after", "id")));
        chunks += 1;
        match batch.resume {
            // Only the transaction's last chunk carries a position.
            Some(resume) => {
                assert_eq!(ids.len(), 200_000, "a position inside the transaction");
                let _ = source.acks.send(resume);
            }
            None => assert!(batch.events.len() <= 1000),
        }
    }
    assert!(chunks >= 200, "{chunks} chunks");
    assert_eq!(ids, (1..=200_000).collect::<Vec<i64>>());
    source.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_and_stream_together_hold_every_row_once_under_writes() {
    let server = server(
        &[],
        "CREATE TABLE t (id BIGINT PRIMARY KEY, v INT NOT NULL);
         INSERT INTO t SELECT seq, 0 FROM seq_1_to_20000;",
    );
    let mut s = settings(&server);
    s.snapshot = true;
    // Writes while the snapshot runs: they land either in the snapshot or
    // in the stream after it, never both, never neither.
    let (binary, socket) = server.client_parts();
    let writer = std::thread::spawn(move || {
        for n in 0..40 {
            let sql = format!(
                "USE shop; INSERT INTO t VALUES ({}, 0); UPDATE t SET v = v + 1 WHERE id = {};
                 DELETE FROM t WHERE id = {};",
                100_000 + n,
                1 + n * 97,
                20_000 - n
            );
            let out = weir_throwaway::mariadb::client_command(&binary, &socket)
                .args(["-e", &sql])
                .output()
                .unwrap();
            assert!(out.status.success());
        }
    });
    let mut source = start(s, Json::Null);
    writer.join().unwrap();
    let mut events = Vec::new();
    // Snapshot rows, then whatever of the 120 changes came after it.
    events.extend(source.collect(20_000).await);
    let reads = events.iter().filter(|e| e.op == Op::Read).count();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut table = BTreeMap::new();
    loop {
        table.clear();
        for e in &events {
            match e.op {
                Op::Delete => {
                    table.remove(&int(e, "before", "id"));
                }
                _ => {
                    table.insert(int(e, "after", "id"), int(e, "after", "v"));
                }
            }
        }
        let actual: BTreeMap<i64, i64> = server
            .sql("SELECT id, v FROM shop.t")
            .unwrap()
            .lines()
            .map(|l| {
                let (id, v) = l.split_once('\t').unwrap();
                (id.parse().unwrap(), v.parse().unwrap())
            })
            .collect();
        if table == actual {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the snapshot and the stream do not add up to the table"
        );
        source.poll_into(&mut events).await;
    }
    assert!(reads >= 19_960, "{reads} snapshot rows");
    // No change was delivered twice: each (op, id, v) once.
    let mut seen = std::collections::HashSet::new();
    for e in &events {
        let image = if e.op == Op::Delete {
            "before"
        } else {
            "after"
        };
        assert!(
            seen.insert((e.op, int(e, image, "id"), int(e, image, "v"))),
            "twice: {e:?}"
        );
    }
    source.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_and_stream_give_a_composite_key_in_key_order() {
    let server = server(
        &[],
        "CREATE TABLE ck (a INT, b INT, v INT, PRIMARY KEY (b, a));
         INSERT INTO ck VALUES (1, 2, 0);",
    );
    let mut s = settings(&server);
    s.snapshot = true;
    let mut source = start(s, Json::Null);
    let mut events = source.collect(1).await;
    wait_for_replica(&server, &mut source).await;
    server.sql("INSERT INTO shop.ck VALUES (3, 4, 0)").unwrap();
    events.extend(source.collect(1).await);
    let keys: Vec<(Op, Vec<String>)> = events
        .iter()
        .map(|e| (e.op, e.key.iter().map(|c| c.name.to_string()).collect()))
        .collect();
    assert_eq!(
        keys,
        [
            (Op::Read, vec!["b".to_owned(), "a".to_owned()]),
            (Op::Create, vec!["b".to_owned(), "a".to_owned()]),
        ]
    );
    source.stop().await;
}

/// The column names of an image.
fn names(image: Option<&Vec<weir_core::Column>>) -> Vec<String> {
    image
        .map(|row| row.iter().map(|c| c.name.to_string()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_after_an_alter_carry_the_new_shape_across_a_restart() {
    let server = server(
        &[],
        "CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(10));
         CREATE TABLE busy (id INT AUTO_INCREMENT PRIMARY KEY, n INT);",
    );
    // Load on another table all along, from another client.
    let (client, socket) = server.client_parts();
    let stop_load = Arc::new(AtomicBool::new(false));
    let load = {
        let stop_load = Arc::clone(&stop_load);
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop_load.load(Ordering::Relaxed) {
                let out = weir_throwaway::mariadb::client_command(&client, &socket)
                    .args(["-e", "INSERT INTO shop.busy (n) VALUES (1), (2), (3)"])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                n += 3;
            }
            n
        })
    };
    let inserts = |from: i32, columns: &str, values: &str| {
        (from..from + 50)
            .map(|i| format!("INSERT INTO t ({columns}) VALUES ({i}, {values});"))
            .collect::<String>()
    };
    let mut settings = settings(&server);
    settings.tables = vec!["shop.t".into()];
    let mut source = start(settings.clone(), Json::Null);
    wait_for_replica(&server, &mut source).await;
    server
        .sql(&format!(
            "USE shop; {} ALTER TABLE t ADD COLUMN c INT DEFAULT 7; {}",
            inserts(0, "id, a, b", "1, 'x'"),
            inserts(100, "id, a, b, c", "1, 'x', 8"),
        ))
        .unwrap();
    let mut events = source.collect(100).await;
    // Stopped between two schema changes; the rest happens while it is down.
    let resume = source.stop().await.last().unwrap().clone();
    server
        .sql(&format!(
            "USE shop; ALTER TABLE t DROP COLUMN a; {} \
             ALTER TABLE t RENAME COLUMN b TO bee; {} \
             UPDATE t SET c = c + 1 WHERE id = 0; DELETE FROM t WHERE id = 100;",
            inserts(200, "id, b, c", "'y', 9"),
            inserts(300, "id, bee, c", "'z', 10"),
        ))
        .unwrap();
    let mut source = start(settings, resume);
    events.extend(source.collect(102).await);
    source.stop().await;
    stop_load.store(true, Ordering::Relaxed);
    assert!(load.join().unwrap() > 0);

    assert_eq!(events.len(), 202);
    for e in &events[..200] {
        let id = int(e, "after", "id");
        let shape = match id {
            0..100 => ["id", "a", "b"].as_slice(),
            100..200 => &["id", "a", "b", "c"],
            200..300 => &["id", "b", "c"],
            _ => &["id", "bee", "c"],
        };
        assert_eq!(names(e.after.as_ref()), shape, "row {id}");
        assert_eq!(e.op, Op::Create);
        assert_eq!(e.source.table, "t", "only the captured table");
    }
    // Rows written before a change come back in the table's shape now.
    let update = &events[200];
    assert_eq!(update.op, Op::Update);
    assert_eq!(names(update.before.as_ref()), ["id", "bee", "c"]);
    assert_eq!(int(update, "before", "c"), 7, "the added column's default");
    assert_eq!(int(update, "after", "c"), 8);
    let delete = &events[201];
    assert_eq!(delete.op, Op::Delete);
    assert_eq!(names(delete.before.as_ref()), ["id", "bee", "c"]);
    assert_eq!(delete.key[0].value, Value::Int(100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_snapshot_goes_on_after_its_last_chunk() {
    let server = server(
        &[],
        "CREATE TABLE t (g INT, id INT, v INT NOT NULL, PRIMARY KEY (g, id));
         INSERT INTO t SELECT seq % 3, seq, 0 FROM seq_1_to_1000;",
    );
    let mut s = settings(&server);
    s.snapshot = true;
    s.snapshot_chunk_rows = 100;
    let key = |e: &ChangeEvent| {
        let image = if e.op == Op::Delete {
            "before"
        } else {
            "after"
        };
        (int(e, image, "g"), int(e, image, "id"))
    };

    // Three chunks, then a stop; what was handed on is acknowledged.
    let mut source = start(s.clone(), Json::Null);
    let mut events = Vec::new();
    let mut resumes = Vec::new();
    let mut stopping = false;
    while let Some(batch) = source.batches.recv().await {
        events.extend(batch.events);
        if let Some(resume) = batch.resume {
            let _ = source.acks.send(resume.clone());
            resumes.push(resume);
        }
        if resumes.len() == 3 && !stopping {
            source.stop.send(true).unwrap();
            stopping = true;
        }
    }
    drop(source.acks);
    source.task.await.unwrap().unwrap();
    let resume = resumes.last().unwrap().clone();
    let progress = &resume["snapshot"]["tables"]["shop.t"];
    assert_eq!(progress["done"], false, "stopped mid-table: {resume}");
    assert_eq!(progress["rows"], events.len(), "{resume}");
    assert!(progress["after_key"].is_array(), "{resume}");
    let copied = events.len();
    assert!(
        (300..1000).contains(&copied),
        "{copied} rows before the stop"
    );

    // While it is down: a copied row changes, an uncopied one goes, a new
    // one comes.
    let (g, id) = key(&events[0]);
    server
        .sql(&format!(
            "UPDATE shop.t SET v = 5 WHERE g = {g} AND id = {id};
             DELETE FROM shop.t WHERE g = 2 AND id = 998;
             INSERT INTO shop.t VALUES (1, 5000, 7);"
        ))
        .unwrap();
    let mut source = start(s, resume);
    let deadline = Instant::now() + Duration::from_secs(30);
    let actual: BTreeMap<(i64, i64), i64> = server
        .sql("SELECT g, id, v FROM shop.t")
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<i64> = l.split('\t').map(|f| f.parse().unwrap()).collect();
            ((f[0], f[1]), f[2])
        })
        .collect();
    let mut table = BTreeMap::new();
    let mut last = Json::Null;
    loop {
        table.clear();
        for e in &events {
            match e.op {
                Op::Delete => table.remove(&key(e)),
                _ => table.insert(key(e), int(e, "after", "v")),
            };
        }
        if table == actual && last.get("snapshot").is_none() && !last.is_null() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the snapshot never added up to the table"
        );
        if let Some(resume) = source.poll_into(&mut events).await {
            last = resume;
        }
    }
    // Rows copied before the stop are not copied again.
    let mut reads = std::collections::HashSet::new();
    for e in events.iter().filter(|e| e.op == Op::Read) {
        assert!(reads.insert(key(e)), "copied twice: {e:?}");
    }
    assert!(last.get("file").is_some(), "the stream's start: {last}");
    source.stop().await;
}
