//! `weir run` into the SQL apply sinks. PostgreSQL: a throwaway server
//! holding both the source database and the target (`replica`);
//! exactly-once under `kill -9` (snapshot included) with counter-style
//! updates whose every applied value is logged by a trigger, and what an
//! operator meets: a missing table, a new column, a constraint the target
//! adds, unchanged TOAST values and a changed primary key. MariaDB: a
//! throwaway server as the target of PostgreSQL, every value type of the
//! mapping table, and the same counters under `kill -9`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use weir_throwaway::ThrowawayMariadb;

use crate::pipeline::{
    BlockingClient, Setup, kill_9_at_random, paced_workload, terminate, wait_until,
};
use crate::weir;

/// A config with one PostgreSQL sink into database `replica`; `sink_extra`
/// goes into the sink's table.
fn sql_config(setup: &Setup, sink_extra: &str) -> PathBuf {
    let sink = format!(
        "[[sinks]]\nname = \"replica\"\nkind = \"postgres\"\nhost = \"127.0.0.1\"\nport = {}\n\
         user = \"postgres\"\ndatabase = \"replica\"\n{sink_extra}",
        setup.server.port
    );
    setup.config_with_sink("", &sink, "[pipeline]\nmax_batch_events = 50")
}

fn replica(setup: &Setup, sql: &str) -> String {
    setup
        .server
        .psql("replica", sql)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `SELECT <columns> FROM <table> ORDER BY 1` as lines, in `database`.
fn rows(setup: &Setup, database: &str, columns: &str, table: &str) -> Vec<String> {
    setup
        .server
        .psql(
            database,
            &format!("SELECT {columns} FROM {table} ORDER BY 1"),
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until `sql` in database `replica` answers `want`.
fn wait_for_replica(setup: &Setup, what: &str, sql: &str, want: &str) {
    wait_until(
        what,
        Duration::from_secs(60),
        || {
            setup
                .server
                .psql("replica", sql)
                .is_ok_and(|got| got.trim() == want)
        },
        setup,
    );
}

/// Waits until weir exits by itself (an operator error) and returns its
/// log.
fn wait_for_stop(mut child: std::process::Child, setup: &Setup) -> String {
    wait_until(
        "weir to stop",
        Duration::from_secs(60),
        || child.try_wait().unwrap().is_some(),
        setup,
    );
    assert!(!child.wait().unwrap().success(), "{}", setup.log());
    setup.log()
}

#[test]
fn postgres_sink_applies_every_change_once_across_kill_9() {
    let setup = Setup::new(
        "CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL, pad text DEFAULT repeat('p', 50));
         INSERT INTO items (id, v) SELECT i, 0 FROM generate_series(1, 200) i;
         INSERT INTO items (id, v) VALUES (999999, 0);
         CREATE TABLE counters (id bigint PRIMARY KEY, n bigint NOT NULL);
         INSERT INTO counters SELECT i, 0 FROM generate_series(1, 10) i;",
    );
    setup
        .server
        .psql("postgres", "CREATE DATABASE replica")
        .unwrap();
    // Every value written into `counters` is logged: a change applied
    // twice would show as a value that does not grow.
    replica(
        &setup,
        "CREATE TABLE counters (id bigint PRIMARY KEY, n bigint NOT NULL);
         CREATE TABLE applied (seq bigserial PRIMARY KEY, id bigint, n bigint);
         CREATE FUNCTION log_applied() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN INSERT INTO applied (id, n) VALUES (NEW.id, NEW.n); RETURN NEW; END $$;
         CREATE TRIGGER log AFTER INSERT OR UPDATE ON counters
           FOR EACH ROW EXECUTE FUNCTION log_applied();",
    );
    let config = sql_config(&setup, "create_tables = true");
    let child = setup.start(&config);
    wait_for_replica(
        &setup,
        "the snapshot in the replica",
        "SELECT count(*) FROM items",
        "201",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicU64::new(0));
    let items = paced_workload(
        &setup,
        Arc::clone(&stop),
        Arc::clone(&made),
        Duration::from_millis(1),
    );
    let counters = counter_workload(&setup, Arc::clone(&stop));
    let child = kill_9_at_random(child, 3, || setup.start(&config));
    wait_until(
        "the restarted pipeline to stream",
        Duration::from_secs(60),
        || setup.log().contains("Streaming changes"),
        &setup,
    );
    terminate(child, &setup);
    // Killed between a commit in the target and the checkpoint save: the
    // target holds one commit more than the checkpoint.
    let delivered: u64 = replica(&setup, "SELECT delivered FROM weir_checkpoints")
        .trim()
        .parse()
        .unwrap();
    let crash_log = setup.dir.join("crash.log");
    let mut crashing = weir()
        .args(["run", "--config"])
        .arg(&config)
        .env("WEIR_SQL_CRASH_AFTER", (delivered + 500).to_string())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&crash_log).unwrap())
        .spawn()
        .unwrap();
    wait_until(
        "the crash point",
        Duration::from_secs(60),
        || crashing.try_wait().unwrap().is_some(),
        &setup,
    );
    let status = crashing.wait().unwrap();
    let crash_text = std::fs::read_to_string(&crash_log).unwrap();
    assert!(
        !status.success() && crash_text.contains("WEIR_SQL_CRASH_AFTER: aborting"),
        "{status}: {crash_text}"
    );
    let child = setup.start(&config);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    items.join().unwrap();
    let increments = counters.join().unwrap();
    assert!(made.load(Ordering::Relaxed) > 0 && increments > 0);
    wait_until(
        "the replica to catch up",
        Duration::from_secs(120),
        || {
            rows(&setup, "db", "id, v, pad", "items")
                == rows(&setup, "replica", "id, v, pad", "items")
                && rows(&setup, "db", "id, n", "counters")
                    == rows(&setup, "replica", "id, n", "counters")
        },
        &setup,
    );
    terminate(child, &setup);
    assert!(
        setup.log().contains("the replay skips them"),
        "{}",
        setup.log()
    );
    // Every applied value of a counter is larger than the one before: no
    // change was applied twice, and the counters add up to every
    // increment made.
    let mut last: BTreeMap<i64, i64> = BTreeMap::new();
    for line in replica(&setup, "SELECT id, n FROM applied ORDER BY seq").lines() {
        let (id, n) = line.split_once('|').unwrap();
        let (id, n): (i64, i64) = (id.parse().unwrap(), n.parse().unwrap());
        let before = last.insert(id, n).unwrap_or(-1);
        assert!(n > before, "counter {id} applied {n} after {before}");
    }
    let total: u64 = replica(&setup, "SELECT sum(n) FROM counters")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(total, increments);
}

/// Adds one to a counter per transaction until told to stop; returns how
/// many increments committed.
fn counter_workload(setup: &Setup, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let port = setup.server.port;
    std::thread::spawn(move || {
        let mut client = BlockingClient::connect(port, "db");
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            client
                .execute(
                    "UPDATE counters SET n = n + 1 WHERE id = $1",
                    &[&((n % 10 + 1) as i64)],
                )
                .unwrap();
            n += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        n
    })
}

#[test]
fn postgres_sink_stops_on_what_an_operator_must_fix_and_sets_bad_rows_aside() {
    let setup = Setup::new(
        "CREATE TABLE docs (id bigint PRIMARY KEY, title text, body text, qty int);
         ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
         INSERT INTO docs VALUES (1, 'a', repeat('x', 10000), 1);
         CREATE TABLE ghost (id bigint PRIMARY KEY);
         INSERT INTO ghost VALUES (1);",
    );
    setup
        .server
        .psql("postgres", "CREATE DATABASE replica")
        .unwrap();
    replica(
        &setup,
        "CREATE TABLE docs (id bigint PRIMARY KEY, title text, body text, qty int CHECK (qty >= 0));
         -- A stale copy of a source row: the snapshot's insert finds its key
         -- taken and becomes an update.
         INSERT INTO docs VALUES (1, 'stale', 'stale', 0);",
    );
    // A table the target lacks stops the pipeline with its name.
    let config = sql_config(&setup, "");
    let log = wait_for_stop(setup.start(&config), &setup);
    assert!(
        log.contains("table `public.ghost` does not exist") && log.contains("create_tables"),
        "{log}"
    );
    replica(&setup, "CREATE TABLE ghost (id bigint PRIMARY KEY)");
    let child = setup.start(&config);
    wait_until(
        "the snapshot in the replica",
        Duration::from_secs(60),
        || rows(&setup, "replica", "id", "ghost") == ["1"],
        &setup,
    );
    assert_eq!(rows(&setup, "replica", "id, title, qty", "docs"), ["1|a|1"]);
    // An update leaving the TOASTed body alone; a row the target's CHECK
    // refuses (a dead letter, the rest goes on); a changed primary key.
    setup.sql(
        "UPDATE docs SET title = 'b' WHERE id = 1;
         INSERT INTO docs VALUES (2, 'bad', 'short', -5);
         INSERT INTO docs VALUES (3, 'c', 'short', 3);
         UPDATE docs SET id = 30 WHERE id = 3;",
    );
    wait_until(
        "the changes in the replica",
        Duration::from_secs(60),
        || rows(&setup, "replica", "id, title", "docs") == ["1|b", "30|c"],
        &setup,
    );
    assert_eq!(
        replica(&setup, "SELECT length(body) FROM docs WHERE id = 1").trim(),
        "10000"
    );
    let letters = std::fs::read_to_string(setup.dir.join("state/dead-letters.jsonl")).unwrap();
    let letter: serde_json::Value = serde_json::from_str(letters.lines().next().unwrap()).unwrap();
    let text = letter.to_string();
    assert!(
        text.contains("docs_qty_check") && text.contains("replica") && text.contains("\"bad\""),
        "{letters}"
    );
    assert_eq!(letters.lines().count(), 1, "{letters}");
    // A new source column stops the pipeline with the table and column...
    setup.sql(
        "ALTER TABLE docs ADD COLUMN tag text; INSERT INTO docs VALUES (4, 'd', 'e', 1, 'new');",
    );
    let log = wait_for_stop(child, &setup);
    assert!(
        log.contains("table `public.docs` has no column `tag`") && log.contains("evolve_schema"),
        "{log}"
    );
    // ... unless the sink may add it.
    let config = sql_config(&setup, "evolve_schema = true");
    let child = setup.start(&config);
    wait_for_replica(
        &setup,
        "the new column in the replica",
        "SELECT tag FROM docs WHERE id = 4",
        "new",
    );
    terminate(child, &setup);
    assert_eq!(
        std::fs::read_to_string(setup.dir.join("state/dead-letters.jsonl"))
            .unwrap()
            .lines()
            .count(),
        1,
        "the refused row is not refused twice"
    );
}

/// What `replica.<table>` holds on `mariadb`, one tab-separated line per
/// row.
fn mariadb_rows(mariadb: &ThrowawayMariadb, sql: &str) -> Vec<String> {
    mariadb
        .sql(sql)
        .unwrap_or_else(|e| panic!("{e}"))
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn postgres_into_mariadb_with_every_value_type_exactly_once_across_kill_9() {
    let mariadb = ThrowawayMariadb::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    let setup = Setup::new(
        "CREATE TABLE kinds (id bigint PRIMARY KEY, name text, price numeric(10,2), ratio float8,
             ok boolean, day date, at time, ts timestamp, tstz timestamptz, doc jsonb, tag uuid,
             raw bytea, n int);
         INSERT INTO kinds VALUES
           (1, 'héllo ''quoted'' \\ back', 9.50, 0.25, true, '2026-01-02', '03:04:05.123456',
            '2026-01-02 03:04:05.5', '2026-01-02 03:04:05+02', '{\"a\": [1, 2]}',
            'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff10', 7),
           (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
         CREATE TABLE counters (id bigint PRIMARY KEY, n bigint NOT NULL);
         INSERT INTO counters SELECT i, 0 FROM generate_series(1, 10) i;",
    );
    mariadb
        .sql(
            "CREATE DATABASE replica;
             CREATE TABLE replica.counters (id BIGINT PRIMARY KEY, n BIGINT NOT NULL);
             CREATE TABLE replica.applied (seq BIGINT AUTO_INCREMENT PRIMARY KEY, id BIGINT, n BIGINT);
             CREATE TRIGGER replica.log_i AFTER INSERT ON replica.counters FOR EACH ROW
               INSERT INTO replica.applied (id, n) VALUES (NEW.id, NEW.n);
             CREATE TRIGGER replica.log_u AFTER UPDATE ON replica.counters FOR EACH ROW
               INSERT INTO replica.applied (id, n) VALUES (NEW.id, NEW.n);",
        )
        .unwrap();
    let sink = format!(
        "[[sinks]]\nname = \"maria\"\nkind = \"mysql\"\nhost = \"127.0.0.1\"\nport = {}\n\
         user = \"{}\"\npassword = \"{}\"\ndatabase = \"replica\"\ncreate_tables = true\n",
        mariadb.port,
        ThrowawayMariadb::USER,
        ThrowawayMariadb::PASSWORD
    );
    // Tables alone as destinations: they land in the sink's database.
    let config = setup.config_with_sink(
        "",
        &sink,
        "[router]\ntemplate = \"{table}\"\n[pipeline]\nmax_batch_events = 50",
    );
    let child = setup.start(&config);
    wait_until(
        "the snapshot in MariaDB",
        Duration::from_secs(60),
        || {
            mariadb
                .sql("SELECT count(*) FROM replica.kinds")
                .is_ok_and(|n| n.trim() == "2")
        },
        &setup,
    );
    let row = |id: i64| {
        mariadb_rows(
            &mariadb,
            &format!(
                "SELECT name, price, ratio, ok, day, at, ts, tstz, JSON_EXTRACT(doc, '$.a[1]'), \
                 tag, HEX(raw), n FROM replica.kinds WHERE id = {id}"
            ),
        )
    };
    // Every value as PostgreSQL had it (timestamps with a zone in UTC).
    assert_eq!(
        row(1),
        [
            "héllo 'quoted' \\\\ back\t9.500000000000000000000000000000\t0.25\t1\t2026-01-02\t\
          03:04:05.123456\t2026-01-02 03:04:05.500000\t2026-01-02 01:04:05.000000\t2\t\
          a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\t00FF10\t7"
        ]
    );
    assert_eq!(
        row(2),
        ["NULL\tNULL\tNULL\tNULL\tNULL\tNULL\tNULL\tNULL\tNULL\tNULL\tNULL\tNULL"]
    );
    let stop = Arc::new(AtomicBool::new(false));
    let counters = counter_workload(&setup, Arc::clone(&stop));
    setup.sql(
        "UPDATE kinds SET name = 'x', n = n + 1 WHERE id = 1;
         DELETE FROM kinds WHERE id = 2;
         INSERT INTO kinds (id, name) VALUES (3, 'three');
         UPDATE kinds SET id = 30 WHERE id = 3;",
    );
    let child = kill_9_at_random(child, 2, || setup.start(&config));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let increments = counters.join().unwrap();
    wait_until(
        "MariaDB to catch up",
        Duration::from_secs(120),
        || {
            let source: Vec<String> = rows(&setup, "db", "id, n", "counters")
                .iter()
                .map(|l| l.replace('|', "\t"))
                .collect();
            source == mariadb_rows(&mariadb, "SELECT id, n FROM replica.counters ORDER BY id")
                && mariadb_rows(
                    &mariadb,
                    "SELECT id, name, n FROM replica.kinds ORDER BY id",
                ) == ["1\tx\t8", "30\tthree\tNULL"]
        },
        &setup,
    );
    terminate(child, &setup);
    let mut last: BTreeMap<i64, i64> = BTreeMap::new();
    for line in mariadb_rows(&mariadb, "SELECT id, n FROM replica.applied ORDER BY seq") {
        let (id, n) = line.split_once('\t').unwrap();
        let (id, n): (i64, i64) = (id.parse().unwrap(), n.parse().unwrap());
        let before = last.insert(id, n).unwrap_or(-1);
        assert!(n > before, "counter {id} applied {n} after {before}");
    }
    let total: u64 = mariadb
        .sql("SELECT sum(n) FROM replica.counters")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(total, increments);
}

#[test]
fn mariadb_into_postgres_with_every_value_type() {
    let mariadb = ThrowawayMariadb::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    mariadb
        .sql(
            "CREATE DATABASE shop;
             CREATE TABLE shop.kinds (id BIGINT PRIMARY KEY, name VARCHAR(40), price DECIMAL(10,2),
               ratio DOUBLE, day DATE, at TIME(6), ts DATETIME(6), tsz TIMESTAMP(6) NULL,
               raw BLOB, n INT, small SMALLINT, flag TINYINT(1));
             SET time_zone = '+00:00';
             INSERT INTO shop.kinds VALUES
               (1, 'héllo ''quoted''', 9.50, 0.25, '2026-01-02', '03:04:05.123456',
                '2026-01-02 03:04:05.5', '2026-01-02 03:04:05.5', X'00FF10', 7, -3, 1),
               (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);",
        )
        .unwrap();
    // The PostgreSQL side: `Setup` brings the server; the pipeline's
    // source is MariaDB, so the config is written here.
    let setup = Setup::new("SELECT 1");
    setup
        .server
        .psql("postgres", "CREATE DATABASE replica")
        .unwrap();
    let config = setup.dir.join("pipeline.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"maria-to-pg\"\nstate_dir = \"state\"\n\n[source]\nkind = \"mariadb\"\n\
             host = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\npassword = \"{}\"\n\
             databases = [\"shop\"]\n\n[[sinks]]\nname = \"pg\"\nkind = \"postgres\"\n\
             host = \"127.0.0.1\"\nport = {}\nuser = \"postgres\"\ndatabase = \"replica\"\n\
             create_tables = true\n\n[pipeline]\nmax_batch_events = 50\n",
            mariadb.port,
            ThrowawayMariadb::USER,
            ThrowawayMariadb::PASSWORD,
            setup.server.port
        ),
    )
    .unwrap();
    let child = setup.start(&config);
    let row = |id: i64| {
        setup
            .server
            .psql(
                "replica",
                &format!(
                    "SET TimeZone = 'UTC'; SELECT name, price, ratio, day, at, ts, tsz, raw, n, \
                     small, flag FROM shop.kinds WHERE id = {id}"
                ),
            )
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    wait_until(
        "the snapshot in PostgreSQL",
        Duration::from_secs(60),
        || !row(2).is_empty(),
        &setup,
    );
    // MariaDB's `TIMESTAMP` is an instant (in UTC here), its `DATETIME` a
    // wall-clock time; `TINYINT(1)` is an integer to the binlog.
    assert_eq!(
        row(1),
        "héllo 'quoted'|9.50|0.25|2026-01-02|03:04:05.123456|2026-01-02 03:04:05.5|\
         2026-01-02 03:04:05.5+00|\\x00ff10|7|-3|1"
    );
    assert_eq!(row(2), "||||||||||");
    let types = setup
        .server
        .psql(
            "replica",
            "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) \
             FROM information_schema.columns WHERE table_schema = 'shop' AND table_name = 'kinds'",
        )
        .unwrap();
    assert_eq!(
        types.trim(),
        "id bigint, name text, price numeric, ratio double precision, day date, \
         at time without time zone, ts timestamp without time zone, \
         tsz timestamp with time zone, raw bytea, n bigint, small bigint, flag bigint"
    );
    mariadb
        .sql(
            "UPDATE shop.kinds SET name = 'x', n = n + 1 WHERE id = 1;
             DELETE FROM shop.kinds WHERE id = 2;
             INSERT INTO shop.kinds (id, name) VALUES (3, 'three');
             UPDATE shop.kinds SET id = 30 WHERE id = 3;",
        )
        .unwrap();
    let expected = ["1|x|8", "30|three|"];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while rows(&setup, "replica", "id, name, n", "shop.kinds") != expected
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        rows(&setup, "replica", "id, name, n", "shop.kinds"),
        expected,
        "{}",
        setup.log()
    );
    terminate(child, &setup);
}

/// A pipeline config from database `from` into database `to` of the same
/// PostgreSQL server, in `dir`.
fn one_way(setup: &Setup, name: &str, from: &str, to: &str) -> PathBuf {
    let dir = setup.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pipeline.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\nstate_dir = \"state\"\n\n[source]\nkind = \"postgres\"\n\
             host = \"127.0.0.1\"\nport = {port}\nuser = \"postgres\"\ndatabase = \"{from}\"\n\
             tables = [\"public.items\"]\n\n[[sinks]]\nname = \"{to}\"\nkind = \"postgres\"\n\
             host = \"127.0.0.1\"\nport = {port}\nuser = \"postgres\"\ndatabase = \"{to}\"\n",
            port = setup.server.port
        ),
    )
    .unwrap();
    path
}

#[test]
fn two_databases_replicate_both_ways_without_sending_changes_back() {
    let setup = Setup::new("SELECT 1");
    for db in ["east", "west"] {
        setup
            .server
            .psql("postgres", &format!("CREATE DATABASE {db}"))
            .unwrap();
        setup
            .server
            .psql(
                db,
                "CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL, region text)",
            )
            .unwrap();
    }
    let spawn = |config: &PathBuf| {
        weir()
            .args(["run", "--config"])
            .arg(config)
            .env("WEIR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(config.with_extension("log")).unwrap())
            .spawn()
            .unwrap()
    };
    let east_to_west = one_way(&setup, "e2w", "east", "west");
    let west_to_east = one_way(&setup, "w2e", "west", "east");
    let children = [spawn(&east_to_west), spawn(&west_to_east)];
    let log = |config: &PathBuf| {
        std::fs::read_to_string(config.with_extension("log")).unwrap_or_default()
    };
    wait_until(
        "both pipelines to stream",
        Duration::from_secs(60),
        || {
            log(&east_to_west).contains("Streaming changes")
                && log(&west_to_east).contains("Streaming changes")
        },
        &setup,
    );
    // Each region writes its own rows: 50 inserts and 50 updates each.
    for (db, base) in [("east", 0), ("west", 1000)] {
        setup
            .server
            .psql(
                db,
                &format!(
                    "INSERT INTO items SELECT {base} + i, 0, '{db}' FROM generate_series(1, 50) i;
                     UPDATE items SET v = v + 1 WHERE region = '{db}';"
                ),
            )
            .unwrap();
    }
    settle_both_ways(
        &setup,
        &|db| rows(&setup, db, "id, v, region", "items"),
        &|db, pipeline| {
            setup
                .server
                .psql(
                    db,
                    &format!(
                        "SELECT delivered FROM weir_checkpoints WHERE pipeline = '{pipeline}'"
                    ),
                )
                .unwrap()
        },
        children,
    );
}

#[test]
fn two_mariadb_databases_replicate_both_ways_without_sending_changes_back() {
    let mariadb = ThrowawayMariadb::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    for db in ["east", "west"] {
        mariadb
            .sql(&format!(
                "CREATE DATABASE {db};
                 CREATE TABLE {db}.items (id BIGINT PRIMARY KEY, v INT NOT NULL, region TEXT);"
            ))
            .unwrap();
    }
    let setup = Setup::new("SELECT 1");
    let one_way = |name: &str, from: &str, to: &str| {
        let dir = setup.dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pipeline.toml");
        std::fs::write(
            &path,
            format!(
                "name = \"{name}\"\nstate_dir = \"state\"\n\n[source]\nkind = \"mariadb\"\n\
                 host = \"127.0.0.1\"\nport = {port}\nuser = \"{user}\"\npassword = \"{pass}\"\n\
                 databases = [\"{from}\"]\n\n[[sinks]]\nname = \"{to}\"\nkind = \"mariadb\"\n\
                 host = \"127.0.0.1\"\nport = {port}\nuser = \"{user}\"\npassword = \"{pass}\"\n\
                 database = \"{to}\"\n\n[router]\ntemplate = \"{{table}}\"\n",
                port = mariadb.port,
                user = ThrowawayMariadb::USER,
                pass = ThrowawayMariadb::PASSWORD,
            ),
        )
        .unwrap();
        weir()
            .args(["run", "--config"])
            .arg(&path)
            .env("WEIR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(path.with_extension("log")).unwrap())
            .spawn()
            .unwrap()
    };
    let children = [
        one_way("e2w", "east", "west"),
        one_way("w2e", "west", "east"),
    ];
    let table = |db: &str| mariadb_rows(&mariadb, &format!("SELECT * FROM {db}.items ORDER BY id"));
    // Wait for both sources to stream, so that the writes below are
    // changes, not snapshot rows.
    let log = |name: &str| {
        std::fs::read_to_string(setup.dir.join(name).join("pipeline.log")).unwrap_or_default()
    };
    wait_until(
        "both pipelines to stream",
        Duration::from_secs(60),
        || {
            log("e2w").contains("Streaming the binlog")
                && log("w2e").contains("Streaming the binlog")
        },
        &setup,
    );
    for (db, base) in [("east", 0), ("west", 1000)] {
        mariadb
            .sql(&format!(
                "USE {db}; INSERT INTO items SELECT {base} + seq, 0, '{db}' FROM seq_1_to_50;
                 UPDATE {db}.items SET v = v + 1 WHERE region = '{db}';"
            ))
            .unwrap();
    }
    settle_both_ways(
        &setup,
        &table,
        &|db, pipeline| {
            mariadb
                .sql(&format!(
                    "SELECT delivered FROM {db}.weir_checkpoints WHERE pipeline = '{pipeline}'"
                ))
                .unwrap()
        },
        children,
    );
}

/// Waits until `east` and `west` (as `table` reads them) hold both sides'
/// 100 rows alike; checks that each sink was handed exactly the other
/// side's 100 changes (`delivered` reads a sink's checkpoint row), so
/// nothing came back, and still was after a pause; stops the pipelines.
fn settle_both_ways(
    setup: &Setup,
    table: &dyn Fn(&str) -> Vec<String>,
    delivered: &dyn Fn(&str, &str) -> String,
    mut children: [std::process::Child; 2],
) {
    wait_until(
        "both sides to hold both sides' rows",
        Duration::from_secs(60),
        || table("east").len() == 100 && table("east") == table("west"),
        setup,
    );
    std::thread::sleep(Duration::from_secs(2));
    for (db, pipeline) in [("west", "e2w"), ("east", "w2e")] {
        assert_eq!(
            delivered(db, pipeline).trim(),
            "100",
            "{pipeline} into {db}"
        );
    }
    assert_eq!(table("east"), table("west"));
    for child in &mut children {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        assert!(child.wait().unwrap().success());
    }
}
