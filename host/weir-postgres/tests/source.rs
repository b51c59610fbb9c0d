use std::time::Duration;

use serde_json::Value as Json;
use weir_core::{ChangeEvent, Op, Value, column};

use crate::{config, server, sql, start};

const WAIT: Duration = Duration::from_secs(30);

fn after<'e>(e: &'e ChangeEvent, name: &str) -> &'e Value {
    column(e.after.as_ref().expect("after image"), name)
        .unwrap_or_else(|| panic!("no column {name} in {e:?}"))
}

fn before<'e>(e: &'e ChangeEvent, name: &str) -> Option<&'e Value> {
    column(e.before.as_ref()?, name)
}

const TYPES_TABLE: &str = "
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE every_type (
    id int PRIMARY KEY,
    c_small smallint, c_int int, c_big bigint,
    c_num numeric(30,10), c_real real, c_double double precision,
    c_bool boolean, c_text text, c_varchar varchar(20), c_char char(3),
    c_bytea bytea, c_json json, c_jsonb jsonb,
    c_date date, c_time time, c_ts timestamp, c_tstz timestamptz,
    c_uuid uuid, c_arr int[], c_tarr text[], c_enum mood, c_inet inet
);";

const TYPES_ROW: &str = "INSERT INTO every_type VALUES (
    1, -32768, 2147483647, -9223372036854775808,
    '12345678901234567890.0123456789', 1.5, -2.25,
    true, 'héllo ''quoted''', 'varchar', 'ab',
    '\\x00ff10', '{\"a\": [1, 2]}', '{\"b\": null}',
    '2024-02-29', '23:59:59.123456', '1999-12-31 23:59:59.5', '2024-06-01 12:00:00+02',
    'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{1,NULL,3}', '{\"a b\",c}', 'happy', '10.0.0.1'
);
INSERT INTO every_type (id) VALUES (2);";

fn check_types(e: &ChangeEvent) {
    assert_eq!(after(e, "c_small"), &Value::Int(-32768));
    assert_eq!(after(e, "c_int"), &Value::Int(2147483647));
    assert_eq!(after(e, "c_big"), &Value::Int(i64::MIN));
    assert_eq!(
        after(e, "c_num"),
        &Value::Decimal("12345678901234567890.0123456789".into())
    );
    assert_eq!(after(e, "c_real"), &Value::Float(1.5));
    assert_eq!(after(e, "c_double"), &Value::Float(-2.25));
    assert_eq!(after(e, "c_bool"), &Value::Boolean(true));
    assert_eq!(after(e, "c_text"), &Value::Text("héllo 'quoted'".into()));
    assert_eq!(after(e, "c_varchar"), &Value::Text("varchar".into()));
    assert_eq!(after(e, "c_char"), &Value::Text("ab ".into()));
    assert_eq!(after(e, "c_bytea"), &Value::Bytes(vec![0, 255, 16]));
    assert_eq!(after(e, "c_json"), &Value::Json("{\"a\": [1, 2]}".into()));
    assert_eq!(after(e, "c_jsonb"), &Value::Json("{\"b\": null}".into()));
    assert_eq!(after(e, "c_date"), &Value::Date(19782));
    assert_eq!(after(e, "c_time"), &Value::Time(86_399_123_456));
    assert_eq!(after(e, "c_ts"), &Value::Timestamp(946_684_799_500_000));
    assert_eq!(
        after(e, "c_tstz"),
        &Value::Timestamptz(1_717_236_000_000_000)
    );
    assert_eq!(
        after(e, "c_uuid"),
        &Value::Uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into())
    );
    assert_eq!(after(e, "c_arr"), &Value::Json("[\"1\",null,\"3\"]".into()));
    assert_eq!(after(e, "c_tarr"), &Value::Json("[\"a b\",\"c\"]".into()));
    assert_eq!(after(e, "c_enum"), &Value::Text("happy".into()));
    assert_eq!(after(e, "c_inet"), &Value::Text("10.0.0.1".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_round_trips_through_stream_and_snapshot() {
    let server = server(&[], TYPES_TABLE);
    // Snapshot: the rows exist before the slot.
    sql(&server, TYPES_ROW);
    let mut cfg = config(&server);
    cfg.snapshot = true;
    let mut source = start(cfg, Json::Null);
    let snap = source.collect(2, WAIT).await;
    assert!(snap.iter().all(|e| e.op == Op::Read));
    let full = snap
        .iter()
        .find(|e| after(e, "id") == &Value::Int(1))
        .unwrap();
    check_types(full);
    let nulls = snap
        .iter()
        .find(|e| after(e, "id") == &Value::Int(2))
        .unwrap();
    assert_eq!(after(nulls, "c_tstz"), &Value::Null);
    assert_eq!(full.key, vec![weir_core::Column::new("id", Value::Int(1))]);

    // Stream: the same values, inserted again under other keys.
    sql(
        &server,
        &TYPES_ROW
            .replace("(\n    1,", "(\n    11,")
            .replace("VALUES (2)", "VALUES (12)"),
    );
    let streamed = source.collect(2, WAIT).await;
    assert_eq!(streamed[0].op, Op::Create);
    assert_eq!(after(&streamed[0], "id"), &Value::Int(11));
    check_types(&streamed[0]);
    assert_eq!(after(&streamed[1], "c_text"), &Value::Null);
    source.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_arrive_once_in_commit_order_with_images() {
    let server = server(
        &[],
        "CREATE TABLE acct (id int PRIMARY KEY, owner text, balance int);
         CREATE TABLE audit (n int, note text);
         ALTER TABLE audit REPLICA IDENTITY FULL;",
    );
    let mut source = start(config(&server), Json::Null);
    // Let the source create its slot before changing anything.
    wait_for_slot(&server).await;
    // One psql call per transaction: psql runs a multi-statement string as
    // one implicit transaction.
    for tx in [
        "BEGIN; INSERT INTO acct VALUES (1, 'ann', 10), (2, 'bob', 20); COMMIT;",
        "UPDATE acct SET balance = 11 WHERE id = 1",
        "BEGIN; UPDATE acct SET id = 3 WHERE id = 2; DELETE FROM acct WHERE id = 1; COMMIT;",
        "INSERT INTO audit VALUES (1, 'x')",
        "UPDATE audit SET note = 'y'",
        "DELETE FROM audit",
        "BEGIN; INSERT INTO acct VALUES (9, 'rolled back', 0); ROLLBACK;",
        "TRUNCATE audit",
    ] {
        sql(&server, tx);
    }
    let events = source.collect(9, WAIT).await;
    let summary: Vec<(Op, &str)> = events
        .iter()
        .map(|e| (e.op, e.source.table.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (Op::Create, "acct"),
            (Op::Create, "acct"),
            (Op::Update, "acct"),
            (Op::Update, "acct"),
            (Op::Delete, "acct"),
            (Op::Create, "audit"),
            (Op::Update, "audit"),
            (Op::Delete, "audit"),
            // The rolled-back transaction left no trace.
            (Op::Truncate, "audit"),
        ]
    );
    // Default identity: an update without a key change has no before
    // image; a key change carries the old key; a delete carries the key.
    assert_eq!(events[2].before, None);
    assert_eq!(after(&events[2], "balance"), &Value::Int(11));
    assert_eq!(before(&events[3], "id"), Some(&Value::Int(2)));
    assert_eq!(after(&events[3], "id"), &Value::Int(3));
    assert_eq!(
        events[4].key,
        vec![weir_core::Column::new("id", Value::Int(1))]
    );
    // Full identity: whole before images.
    assert_eq!(before(&events[6], "note"), Some(&Value::Text("x".into())));
    assert_eq!(before(&events[7], "note"), Some(&Value::Text("y".into())));
    // One transaction, one txid and commit time; positions increase.
    assert_eq!(events[0].source.txid, events[1].source.txid);
    assert_ne!(events[1].source.txid, events[2].source.txid);
    assert_eq!(events[3].source.txid, events[4].source.txid);
    assert!(
        events
            .iter()
            .all(|e| e.source.commit_time_us > 1_700_000_000_000_000)
    );
    let lsns: Vec<weir_postgres::Lsn> = events
        .iter()
        .map(|e| e.source.position.parse().unwrap())
        .collect();
    assert!(lsns.windows(2).all(|w| w[0] < w[1]), "{lsns:?}");
    assert!(source.stop().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_larger_than_the_streaming_threshold_arrives_intact() {
    let server = server(
        &[("logical_decoding_work_mem", "64kB")],
        "CREATE TABLE big (id int PRIMARY KEY, pad text);",
    );
    let mut source = start(config(&server), Json::Null);
    wait_for_slot(&server).await;
    sql(
        &server,
        "BEGIN;
         INSERT INTO big SELECT i, repeat('x', 100) FROM generate_series(1, 10000) i;
         SAVEPOINT s; INSERT INTO big SELECT i, 'gone' FROM generate_series(20001, 23000) i; ROLLBACK TO s;
         INSERT INTO big SELECT i, 'kept' FROM generate_series(10001, 15000) i;
         COMMIT;
         BEGIN; INSERT INTO big SELECT i, 'aborted' FROM generate_series(30001, 40000) i; ROLLBACK;
         INSERT INTO big VALUES (0, 'after');",
    );
    let events = source.collect(15_001, Duration::from_secs(60)).await;
    let ids: Vec<i64> = events
        .iter()
        .map(|e| match after(e, "id") {
            Value::Int(i) => *i,
            v => panic!("{v:?}"),
        })
        .collect();
    let expected: Vec<i64> = (1..=15_000).chain([0]).collect();
    assert_eq!(ids, expected);
    let txids: std::collections::HashSet<_> =
        events[..15_000].iter().map(|e| &e.source.txid).collect();
    assert_eq!(txids.len(), 1, "one transaction");
    // The streamed transaction got its commit time at StreamCommit.
    assert!(events[0].source.commit_time_us > 0);
    // Nothing more: the aborted rows never arrive.
    let rest = source.stop().await;
    assert!(rest.is_empty(), "{} unexpected events", rest.len());
}

/// While changes pour in, the source raises its socket's low-water mark
/// (`weir_postgres::gather`) and is woken only for 64 KiB at a time. The
/// end of a burst, below the mark, still arrives, and so does a lone change
/// on the quiet stream after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_a_burst_and_a_lone_change_after_it_arrive() {
    let server = server(&[], "CREATE TABLE t (id int PRIMARY KEY, pad text);");
    let mut source = start(config(&server), Json::Null);
    wait_for_slot(&server).await;
    sql(
        &server,
        "DO $$ BEGIN FOR i IN 1..5000 LOOP \
         INSERT INTO t VALUES (i, repeat('x', 40)); COMMIT; END LOOP; END $$",
    );
    let ids = |events: &[ChangeEvent]| -> Vec<i64> {
        events
            .iter()
            .map(|e| match after(e, "id") {
                Value::Int(i) => *i,
                v => panic!("{v:?}"),
            })
            .collect()
    };
    let burst = source.collect(5000, WAIT).await;
    assert_eq!(ids(&burst), (1..=5000).collect::<Vec<_>>());
    tokio::time::sleep(Duration::from_millis(200)).await;
    sql(&server, "INSERT INTO t VALUES (0, 'lone')");
    let lone = source.collect(1, WAIT).await;
    assert_eq!(ids(&lone), vec![0]);
    let rest = source.stop().await;
    assert!(rest.is_empty(), "{} unexpected events", rest.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_from_a_checkpoint_skips_what_was_delivered() {
    let server = server(&[], "CREATE TABLE t (id int PRIMARY KEY);");
    let mut source = start(config(&server), Json::Null);
    // A pipeline that crashes before anything is durable: no acks.
    source.ack = false;
    wait_for_slot(&server).await;
    sql(&server, "INSERT INTO t VALUES (1);");
    source.collect(1, WAIT).await;
    let after_first = source.resumes.last().cloned().expect("a resume state");
    sql(&server, "INSERT INTO t VALUES (2);");
    source.collect(1, WAIT).await;
    source.stop().await;
    assert!(
        wait_for_active_slots(&server, 0).await,
        "the slot was never released"
    );
    sql(&server, "INSERT INTO t VALUES (3);");

    // The checkpoint holds only the first transaction: the server replays
    // from its slot position (before all three), and the source skips the
    // first.
    let mut again = start(config(&server), after_first);
    let events = again.collect(2, WAIT).await;
    let ids: Vec<&Value> = events.iter().map(|e| after(e, "id")).collect();
    assert_eq!(ids, vec![&Value::Int(2), &Value::Int(3)]);
    again.stop().await;
    assert!(
        wait_for_active_slots(&server, 0).await,
        "the slot was never released"
    );

    // Without a checkpoint but with the slot acknowledged up to the third
    // transaction: only new changes.
    sql(&server, "INSERT INTO t VALUES (4);");
    let mut third = start(config(&server), Json::Null);
    let events = third.collect(1, WAIT).await;
    assert_eq!(after(&events[0], "id"), &Value::Int(4));
    third.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_pipeline_lets_the_slot_advance() {
    let server = server(
        &[],
        "CREATE TABLE captured (id int PRIMARY KEY); CREATE TABLE other (id int PRIMARY KEY);",
    );
    let mut cfg = config(&server);
    cfg.tables = vec!["public.captured".into()];
    let source = start(cfg, Json::Null);
    wait_for_slot(&server).await;
    let before = sql(
        &server,
        "SELECT confirmed_flush_lsn FROM pg_replication_slots",
    );
    // WAL that carries nothing for the publication.
    sql(&server, "INSERT INTO other SELECT generate_series(1, 1000)");
    let target = sql(&server, "SELECT pg_current_wal_lsn()");
    let target: weir_postgres::Lsn = target.trim().parse().unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let now: weir_postgres::Lsn = sql(
            &server,
            "SELECT confirmed_flush_lsn FROM pg_replication_slots",
        )
        .trim()
        .parse()
        .unwrap();
        if now >= target {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "confirmed_flush_lsn stayed at {now} (was {}), WAL is at {target}",
            before.trim()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    source.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_problems_are_reported_with_the_fix() {
    let server = server(
        &[],
        "CREATE TABLE keyless (a int);
         CREATE ROLE plain LOGIN;",
    );
    let err = run_to_error(config(&server)).await;
    assert!(
        err.contains("keyless") && err.contains("REPLICA IDENTITY FULL"),
        "{err}"
    );

    sql(&server, "ALTER TABLE keyless REPLICA IDENTITY FULL");
    let mut cfg = config(&server);
    cfg.connect.user = "plain".into();
    let err = run_to_error(cfg).await;
    assert!(
        err.contains("REPLICATION") && err.contains("ALTER ROLE"),
        "{err}"
    );

    let mut cfg = config(&server);
    cfg.tables = vec!["public.missing".into()];
    cfg.publication = "other_pub".into();
    let err = run_to_error(cfg).await;
    assert!(
        err.contains("public.missing") && err.contains("does not exist"),
        "{err}"
    );

    // A slot in use by another consumer.
    let source = start(config(&server), Json::Null);
    wait_for_slot(&server).await;
    let err = run_to_error(config(&server)).await;
    assert!(err.contains("in use"), "{err}");
    source.stop().await;

    let replica = crate::server(&[("wal_level", "replica")], "");
    let err = run_to_error(config(&replica)).await;
    assert!(
        err.contains("wal_level") && err.contains("logical"),
        "{err}"
    );

    let mut cfg = config(&server);
    cfg.connect.port = 1;
    let err = weir_postgres::source::run(&cfg, &Json::Null, dummy_channels())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), weir_postgres::ErrorKind::Transient, "{err}");
}

async fn run_to_error(cfg: weir_postgres::SourceSettings) -> String {
    let err = weir_postgres::source::run(&cfg, &Json::Null, dummy_channels())
        .await
        .expect_err("the source should refuse to start");
    assert_eq!(err.kind(), weir_postgres::ErrorKind::Operator, "{err}");
    err.to_string()
}

fn dummy_channels() -> weir_connect::SourceChannels {
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    std::mem::forget(stop);
    let (channels, ends) = weir_connect::SourceChannels::new(
        1,
        shutdown,
        tokio::sync::watch::channel(Default::default()).0,
    );
    std::mem::forget(ends);
    channels
}

async fn wait_for_slot(server: &weir_throwaway::ThrowawayPostgres) {
    if !wait_for_active_slots(server, 1).await {
        panic!("the source never started streaming from its slot");
    }
}

/// Waits until the server counts `n` active slots: a stopped source's
/// walsender may outlive its connection for a moment, and the slot stays
/// taken until it exits. Whether it happened within 15 s.
async fn wait_for_active_slots(server: &weir_throwaway::ThrowawayPostgres, n: usize) -> bool {
    for _ in 0..300 {
        let active = sql(
            server,
            "SELECT count(*) FROM pg_replication_slots WHERE active",
        );
        if active.trim() == n.to_string() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_toast_values_are_marked_or_filled_from_the_before_image() {
    let server = server(
        &[],
        "CREATE TABLE doc (id int PRIMARY KEY, title text, body text);
         ALTER TABLE doc ALTER COLUMN body SET STORAGE EXTERNAL;
         CREATE TABLE doc_full (id int PRIMARY KEY, title text, body text);
         ALTER TABLE doc_full ALTER COLUMN body SET STORAGE EXTERNAL;
         ALTER TABLE doc_full REPLICA IDENTITY FULL;
         INSERT INTO doc VALUES (1, 'a', repeat('x', 10000));
         INSERT INTO doc_full VALUES (1, 'a', repeat('y', 10000));",
    );
    let mut source = start(config(&server), Json::Null);
    wait_for_slot(&server).await;
    sql(&server, "UPDATE doc SET title = 'b'");
    sql(&server, "UPDATE doc_full SET title = 'b'");
    let events = source.collect(2, WAIT).await;
    // The server did not send the unchanged TOAST value...
    assert_eq!(after(&events[0], "body"), &Value::Unchanged);
    assert_eq!(after(&events[0], "title"), &Value::Text("b".into()));
    // ...but under REPLICA IDENTITY FULL the before image has it.
    assert_eq!(after(&events[1], "body"), &Value::Text("y".repeat(10000)));
    assert_eq!(before(&events[1], "title"), Some(&Value::Text("a".into())));
    source.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_v1_hands_on_a_large_transaction_in_chunks() {
    let server = server(&[], "CREATE TABLE big (id int PRIMARY KEY);");
    let mut cfg = config(&server);
    cfg.streaming = false;
    cfg.max_batch_events = 500;
    let mut source = start(cfg, Json::Null);
    wait_for_slot(&server).await;
    sql(&server, "INSERT INTO big SELECT generate_series(1, 5000)");
    sql(&server, "INSERT INTO big VALUES (0)");
    let mut seen = Vec::new();
    let mut batches = 0;
    let mut ended = false;
    while !ended {
        let batch = tokio::time::timeout(WAIT, source.batches.recv())
            .await
            .expect("a batch in time")
            .expect("the source runs");
        batches += 1;
        assert!(
            batch.events.len() <= 500,
            "batches stay within max_batch_events"
        );
        // Only a batch that ends a transaction carries a position (the
        // last chunk's position may come in an empty batch right after).
        let total = seen.len() + batch.events.len();
        assert!(
            batch.resume.is_none() || total == 5000 || total == 5001,
            "a position after {total} events, inside the transaction"
        );
        ended = batch.resume.is_some() && total == 5001;
        if let Some(resume) = batch.resume {
            let _ = source.acks.send(resume);
        }
        seen.extend(batch.events.iter().map(|e| after(e, "id").clone()));
    }
    assert!(batches >= 10);
    let expected: Vec<Value> = (1..=5000).chain([0]).map(Value::Int).collect();
    assert_eq!(seen, expected);
    source.stop().await;
}

/// A stop asked for during the snapshot wins over a pipeline that keeps
/// taking: the snapshot stops within a few chunks, and a restart from the
/// last acknowledged state copies the rest, every row once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_the_snapshot_ends_it_within_a_few_chunks_and_a_restart_copies_the_rest() {
    const ROWS: i64 = 5_000;
    let server = server(
        &[],
        &format!(
            "CREATE TABLE t (id int PRIMARY KEY, v int);
             INSERT INTO t SELECT i, 0 FROM generate_series(1, {ROWS}) i;"
        ),
    );
    let mut cfg = config(&server);
    cfg.snapshot = true;
    cfg.snapshot_chunk_rows = 100;
    cfg.snapshot_parallelism = 1;
    let id = |e: &ChangeEvent| match after(e, "id") {
        Value::Int(i) => *i,
        v => panic!("{v:?}"),
    };

    // Three chunks, then a stop; every batch handed on is acknowledged.
    let mut source = start(cfg.clone(), Json::Null);
    let mut ids = Vec::new();
    let mut resumes = Vec::new();
    while let Some(batch) = source.batches.recv().await {
        ids.extend(batch.events.iter().map(id));
        if let Some(resume) = batch.resume {
            let _ = source.acks.send(resume.clone());
            resumes.push(resume);
            if resumes.len() == 3 {
                source.stop.send(true).unwrap();
            }
        }
    }
    drop(source.acks);
    source.task.await.unwrap().unwrap();
    // Besides the three, at most the four batches the channel holds: a
    // chunk still on its way from the copy is never handed on.
    assert!(
        (300..=700).contains(&ids.len()),
        "{} rows copied before the stop",
        ids.len()
    );

    let mut source = start(cfg, resumes.last().unwrap().clone());
    let rest = source
        .collect(ROWS as usize - ids.len(), Duration::from_secs(60))
        .await;
    ids.extend(rest.iter().map(id));
    ids.sort_unstable();
    assert_eq!(ids, (1..=ROWS).collect::<Vec<_>>(), "every row once");
    assert!(source.stop().await.is_empty());
}
