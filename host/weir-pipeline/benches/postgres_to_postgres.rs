//! End-to-end apply throughput: PostgreSQL -> weir -> PostgreSQL (the
//! `postgres` apply sink, exactly-once) against PostgreSQL's own logical
//! replication (`CREATE SUBSCRIPTION`) replicating the same rows between
//! the same two servers; and PostgreSQL -> weir -> MariaDB (the `mysql`
//! apply sink) for the record.
//!
//! `cargo bench -p weir-pipeline --bench postgres_to_postgres [-- ROWS]`
//!
//! Two throwaway servers: the source (database `db`, publication `bench`)
//! and the target, where each contender of each load shape gets its own
//! database with the same table. For each load shape it creates one slot
//! per contender, loads ROWS rows once, and times each contender from the
//! same starting point until the target holds every row (the last id
//! looked up every 10 ms over one connection): weir (in a child process, for its peak memory),
//! a subscription on the slot created for it (`copy_data = false`), and
//! weir into a throwaway MariaDB (`WEIR_BENCH_ONLY=postgres` leaves it
//! out). Before each contender both servers settle (`VACUUM ANALYZE` of
//! what was just loaded or applied, `CHECKPOINT`): autovacuum and
//! checkpoints set off by one contender's rows would otherwise run during
//! the next one's.
//!
//! `WEIR_BENCH_SEGMENTS=1` also reports, for each PostgreSQL contender, how
//! many TCP segments the walsender sent it and their mean size (read with
//! `ss` every 250 ms, the last reading before the contender finished): a
//! reader that keeps up gets a segment per change, which costs the
//! walsender nearly twice the CPU on one host (decision 0037); weir's
//! paced reads on near links exist to avoid that (decision 0038). It
//! also reports how many segments the host's TCP stack dropped for want
//! of receive buffer, and how many retransmission timeouts it waited out,
//! while the contender ran (`/proc/net/netstat`; every socket on the host
//! counts, so keep the machine otherwise quiet).

use std::time::{Duration, Instant};

use std::process::Stdio;

use common::{PG_TABLE, Row, child_run, print_table};

mod common;

fn main() {
    let rows = match common::invocation() {
        common::Invocation::Child(args) => return child(&args),
        common::Invocation::Bench { rows } => rows,
    };
    let source = common::pg_bench_server();
    let target = weir_tests::ThrowawayPostgres::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    let mariadb = weir_throwaway::ThrowawayMariadb::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    let mut results = Vec::new();
    for (n, (shape, load)) in common::pg_load_shapes(rows).iter().enumerate() {
        for db in [format!("weir_{n}"), format!("native_{n}")] {
            target
                .psql("postgres", &format!("CREATE DATABASE {db}"))
                .unwrap();
            target.psql(&db, PG_TABLE).unwrap();
        }
        mariadb
            .sql(&format!(
                "CREATE DATABASE maria_{n}; CREATE TABLE maria_{n}.bench (id BIGINT PRIMARY KEY, \
                 customer TEXT, email TEXT, phone TEXT, amount DECIMAL(12,2), \
                 placed_at DATETIME(6), paid BOOLEAN, note TEXT)"
            ))
            .unwrap();
        common::pg_load(&source, n, &["weir", "native", "maria"], shape, load, rows);
        settle(&source, &target, None);
        let db = format!("weir_{n}");
        results.push(weir_into(
            &source,
            "postgres",
            target.port,
            &db,
            Probe::postgres(target.port, &db),
            &|| count(&target, &db),
            rows,
            (shape, "weir -> postgres"),
        ));
        settle(&source, &target, Some(&db));
        results.push(native(&source, &target, n, rows, shape));
        if !common::only("weir -> mariadb") {
            continue;
        }
        settle(&source, &target, Some(&format!("native_{n}")));
        let db = format!("maria_{n}");
        let count_maria = || -> u64 {
            mariadb
                .sql(&format!("SELECT count(*) FROM {db}.bench"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        results.push(weir_into(
            &source,
            "mysql",
            mariadb.port,
            &db,
            Probe::mariadb(mariadb.port, &db),
            &count_maria,
            rows,
            (shape, "weir -> mariadb"),
        ));
    }
    print_table(&results, "native");
}

/// Lets both servers settle before the next contender: vacuums and
/// analyzes the table the load (on the source) or the previous contender
/// (database `filled` on the target) just filled, so that autovacuum does
/// not run during the next one, and checkpoints both servers, so that no
/// contender writes out another's dirty buffers.
fn settle(
    source: &weir_tests::ThrowawayPostgres,
    target: &weir_tests::ThrowawayPostgres,
    filled: Option<&str>,
) {
    source.psql("db", "VACUUM ANALYZE bench").unwrap();
    if let Some(db) = filled {
        target.psql(db, "VACUUM ANALYZE bench").unwrap();
    }
    source.psql("postgres", "CHECKPOINT").unwrap();
    target.psql("postgres", "CHECKPOINT").unwrap();
}

fn count(server: &weir_tests::ThrowawayPostgres, db: &str) -> u64 {
    server
        .psql(db, "SELECT count(*) FROM bench")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Watches a target's `bench` table over one connection for the row with
/// the last id, which is there exactly when the last source transaction is
/// committed (both contenders apply in commit order). A lookup of that one
/// key costs the same however many rows an open transaction holds; `max(id)`
/// walked every uncommitted index entry on each probe, which slowed whichever
/// contender held a large transaction open.
enum Probe {
    Postgres(tokio::runtime::Runtime, tokio_postgres::Client),
    Mariadb(tokio::runtime::Runtime, mysql_async::Conn),
}

impl Probe {
    fn postgres(port: u16, db: &str) -> Probe {
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
        Probe::Postgres(runtime, client)
    }

    fn mariadb(port: u16, db: &str) -> Probe {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(port)
            .user(Some(weir_throwaway::ThrowawayMariadb::USER))
            .pass(Some(weir_throwaway::ThrowawayMariadb::PASSWORD))
            .db_name(Some(db));
        let conn = runtime.block_on(mysql_async::Conn::new(opts)).unwrap();
        Probe::Mariadb(runtime, conn)
    }

    /// Whether the row with id `id` is committed.
    fn has(&mut self, id: u64) -> bool {
        const SQL: &str = "SELECT count(*) FROM bench WHERE id = ";
        let sql = format!("{SQL}{id}");
        match self {
            Probe::Postgres(runtime, client) => {
                let row = runtime.block_on(client.query_one(&sql, &[])).unwrap();
                row.get::<_, i64>(0) == 1
            }
            Probe::Mariadb(runtime, conn) => {
                use mysql_async::prelude::Queryable;
                let n: Option<u64> = runtime.block_on(conn.query_first(sql)).unwrap();
                n == Some(1)
            }
        }
    }
}

/// weir on slot `<db>` into database `<db>` of the target on `port` (a
/// `kind` sink), in a child process, timed from its start until `probe`
/// sees the last row (the child itself stops once every row is handed to
/// the sink, before the last commit); `count` reads the rows afterwards.
#[allow(clippy::too_many_arguments)]
fn weir_into(
    source: &weir_tests::ThrowawayPostgres,
    kind: &str,
    port: u16,
    db: &str,
    mut probe: Probe,
    count: &dyn Fn() -> u64,
    rows: u64,
    (shape, contender): (&'static str, &'static str),
) -> Row {
    let started = Instant::now();
    let mut child = child_process(
        shape,
        contender,
        &[
            &source.port.to_string(),
            db,
            kind,
            &port.to_string(),
            db,
            &rows.to_string(),
        ],
    );
    let mut segments = Segments::watch(source.port);
    let secs = wait_for_rows(&mut probe, rows, started, &mut || {
        segments.sample();
        child
            .try_wait()
            .unwrap()
            .is_none_or(|status| status.success())
    });
    segments.report(shape, contender);
    assert_eq!(count(), rows);
    finish(child, shape, contender, secs, rows)
}

fn child_process(shape: &str, contender: &str, args: &[&str]) -> std::process::Child {
    common::child_command(shape, contender)
        .arg("--child")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the bench re-runs itself")
}

/// Waits for the child to stop and reads its peak memory (its own
/// seconds stop before the last commit; `secs` is the probe's).
fn finish(
    child: std::process::Child,
    shape: &'static str,
    contender: &'static str,
    secs: f64,
    rows: u64,
) -> Row {
    let out = child.wait_with_output().unwrap();
    let (_, peak_rss_mb) = common::child_result(&out, shape, contender);
    Row {
        shape,
        contender,
        secs,
        rows,
        peak_rss_mb,
    }
}

/// Waits until `probe` sees the last row, as long as `healthy` says the
/// contender is; the seconds since `started`.
fn wait_for_rows(
    probe: &mut Probe,
    rows: u64,
    started: Instant,
    healthy: &mut dyn FnMut() -> bool,
) -> f64 {
    while !probe.has(rows) {
        assert!(
            healthy() && started.elapsed() < Duration::from_secs(3600),
            "replication failed or stalled"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    started.elapsed().as_secs_f64()
}

/// The TCP segments the walsender sends a contender, when
/// `WEIR_BENCH_SEGMENTS` is set: the source's established socket that has
/// sent the most bytes, read with `ss` at most every 250 ms; and how often
/// the host's TCP stack dropped segments in flight and waited out a
/// retransmission timeout meanwhile.
struct Segments {
    port: u16,
    on: bool,
    next: Instant,
    /// Bytes sent and data segments sent, at the last reading.
    last: Option<(u64, u64)>,
    /// The stack's counters when the contender started.
    start: Option<Stack>,
}

/// Counters of the host's TCP stack (`/proc/net/netstat`, this network
/// namespace, every socket in it).
#[derive(Debug, Clone, Copy)]
struct Stack {
    /// `TCPRcvQDrop`: segments dropped because the receive buffer had no
    /// room (for one, a buffer made smaller than the window already
    /// advertised, as weir's paced reader did before decision 0039).
    dropped: u64,
    /// `TCPTimeouts`: retransmission timeouts, each a wait of 200 ms or
    /// more.
    timeouts: u64,
}

impl Stack {
    fn read() -> Option<Stack> {
        let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
        let lines: Vec<&str> = text.lines().collect();
        let (names, values) = lines
            .windows(2)
            .find(|w| w[0].starts_with("TcpExt:") && w[1].starts_with("TcpExt:"))
            .map(|w| (w[0], w[1]))?;
        let field = |name: &str| {
            names
                .split_whitespace()
                .zip(values.split_whitespace())
                .find_map(|(n, v)| (n == name).then(|| v.parse().ok()).flatten())
        };
        Some(Stack {
            dropped: field("TCPRcvQDrop")?,
            timeouts: field("TCPTimeouts")?,
        })
    }
}

impl Segments {
    fn watch(port: u16) -> Segments {
        let on = std::env::var_os("WEIR_BENCH_SEGMENTS").is_some();
        Segments {
            port,
            on,
            next: Instant::now(),
            last: None,
            start: on.then(Stack::read).flatten(),
        }
    }

    fn sample(&mut self) {
        if !self.on || Instant::now() < self.next {
            return;
        }
        self.next = Instant::now() + Duration::from_millis(250);
        let out = std::process::Command::new("ss")
            .args(["-tniH", "state", "established"])
            .arg(format!("sport = :{}", self.port))
            .output();
        let Ok(out) = out else {
            eprintln!("WEIR_BENCH_SEGMENTS: `ss` (iproute2) did not run");
            self.on = false;
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let counter = |line: &str, name: &str| -> Option<u64> {
            line.split_whitespace()
                .find_map(|field| field.strip_prefix(name)?.parse().ok())
        };
        let busiest = text
            .lines()
            .filter_map(|line| {
                Some((
                    counter(line, "bytes_sent:")?,
                    counter(line, "data_segs_out:")?,
                ))
            })
            .max();
        if busiest.is_some() {
            self.last = busiest;
        }
    }

    fn report(&self, shape: &str, contender: &str) {
        if let Some((bytes, segments)) = self.last.filter(|&(_, s)| s > 0) {
            eprintln!(
                "{shape}, {contender}: the walsender sent {segments} segments, {} bytes each",
                bytes / segments
            );
        }
        if let Some((start, end)) = self.start.and_then(|start| Some((start, Stack::read()?))) {
            eprintln!(
                "{shape}, {contender}: meanwhile the host's TCP stack dropped {} segments for \
                 want of buffer and waited out {} retransmission timeouts",
                end.dropped - start.dropped,
                end.timeouts - start.timeouts
            );
        }
    }
}

/// PostgreSQL's logical replication on slot `native_<n>`, timed from
/// `CREATE SUBSCRIPTION` until the target holds every row.
fn native(
    source: &weir_tests::ThrowawayPostgres,
    target: &weir_tests::ThrowawayPostgres,
    n: usize,
    rows: u64,
    shape: &'static str,
) -> Row {
    let db = format!("native_{n}");
    let mut probe = Probe::postgres(target.port, &db);
    let started = Instant::now();
    target
        .psql(
            &db,
            &format!(
                "CREATE SUBSCRIPTION native_{n} CONNECTION 'host=127.0.0.1 port={} user=postgres \
                 dbname=db' PUBLICATION bench WITH (create_slot = false, slot_name = 'native_{n}', \
                 copy_data = false)",
                source.port
            ),
        )
        .unwrap();
    let mut segments = Segments::watch(source.port);
    let secs = wait_for_rows(&mut probe, rows, started, &mut || {
        segments.sample();
        true
    });
    segments.report(shape, "native logical replication");
    assert_eq!(count(target, &db), rows);
    target
        .psql(&db, &format!("ALTER SUBSCRIPTION native_{n} DISABLE"))
        .unwrap();
    Row {
        shape,
        contender: "native logical replication",
        secs,
        rows,
        peak_rss_mb: None,
    }
}

/// One weir run in this process: `SOURCE_PORT SLOT postgres|mysql
/// TARGET_PORT TARGET_DB ROWS`; prints the seconds and the peak resident
/// memory in MB.
fn child(args: &[String]) {
    let [port, slot, kind, target_port, target_db, rows] = args else {
        panic!("--child SOURCE_PORT SLOT KIND TARGET_PORT TARGET_DB ROWS");
    };
    let user = match kind.as_str() {
        "mysql" => format!(
            "user = \"{}\"\npassword = \"{}\"",
            weir_throwaway::ThrowawayMariadb::USER,
            weir_throwaway::ThrowawayMariadb::PASSWORD
        ),
        _ => "user = \"postgres\"".to_owned(),
    };
    let dir = std::env::temp_dir().join(format!("weir-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = common::pg_pipeline(
        port.parse().unwrap(),
        slot,
        &format!(
            "[[sinks]]\nname = \"out\"\nkind = \"{kind}\"\nhost = \"127.0.0.1\"\n\
             port = {target_port}\n{user}\ndatabase = \"{target_db}\"\n\
             [router]\ntemplate = \"{{table}}\"\n"
        ),
        &dir,
    );
    child_run(config, rows.parse().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}
