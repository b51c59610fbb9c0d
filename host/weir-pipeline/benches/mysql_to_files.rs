//! End-to-end throughput: MariaDB's binlog -> weir -> JSON-lines files,
//! beside `mariadb-binlog` and python-mysql-replication decoding the same
//! binlog range in the same run.
//!
//! `cargo bench -p weir-pipeline --bench mysql_to_files [-- ROWS]`
//!
//! For each load shape (one big transaction; 10 rows per transaction) it
//! starts a fresh binlog file, loads ROWS 8-column rows, and then times
//! each contender decoding that range: `mariadb-binlog
//! --read-from-remote-server -v` (rows printed as pseudo-SQL, counted as
//! they stream out), weir without plugins, weir with the bundled pii-mask,
//! python-mysql-replication (PyPI `mysql-replication`, installed pinned
//! into `target/tools/bench-venv` on first use), then `mariadb-binlog`
//! again; the faster `mariadb-binlog` run is the baseline. Every contender
//! must account for every row, or the bench fails. It prints rows/s, the
//! ratio to `mariadb-binlog`, and weir's peak resident memory per run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{Row, child_run, plugins_toml, print_table, weir_in_child};
use serde_json::json;
use weir_core::{Checkpoint, CheckpointStore};
use weir_pipeline::PipelineConfig;
use weir_pipeline::checkpoint::SqliteCheckpointStore;
use weir_throwaway::ThrowawayMariadb;

mod common;

/// The python-mysql-replication release measured, and its driver.
const PYTHON_PACKAGES: [&str; 2] = ["mysql-replication==1.0.17", "PyMySQL==1.2.4"];

const TABLE: &str = "CREATE TABLE bench (
    id BIGINT PRIMARY KEY, customer VARCHAR(100), email VARCHAR(100), phone VARCHAR(40),
    amount DECIMAL(12,2), placed_at TIMESTAMP(6), paid BOOLEAN, note TEXT
)";

/// The columns of row `i` (an SQL expression).
const ROW: &str = "{i}, CONCAT('Customer ', {i}), CONCAT('user', {i}, '@example.com'), \
     CONCAT('+1 415 555 ', LPAD({i} % 10000, 4, '0')), ({i} % 1000) + 0.5, \
     NOW(6), {i} % 2 = 0, CONCAT('note ', {i})";

/// The python contender: counts the rows of the write events in a range.
const PYTHON: &str = r#"
import sys
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import WriteRowsEvent
port, user, password, log_file, log_pos, rows = sys.argv[1:]
stream = BinLogStreamReader(
    connection_settings={"host": "127.0.0.1", "port": int(port), "user": user, "passwd": password},
    server_id=9001, log_file=log_file, log_pos=int(log_pos), resume_stream=True,
    blocking=True, only_events=[WriteRowsEvent])
n = 0
for event in stream:
    for row in event.rows:
        row["values"]
        n += 1
    if n >= int(rows):
        break
stream.close()
print(n)
"#;

fn main() {
    let rows = match common::invocation() {
        common::Invocation::Child(args) => return child(&args),
        common::Invocation::Bench { rows } => rows,
    };
    let python = python_venv();
    let binlog = weir_throwaway::mariadb::find("mariadb-binlog")
        .expect("mariadb-binlog (Debian package mariadb-client) is missing");
    let server = ThrowawayMariadb::start(&[
        ("innodb_flush_log_at_trx_commit", "0"),
        ("sync_binlog", "0"),
        ("innodb_buffer_pool_size", "1G"),
        ("max_binlog_size", "1G"),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    server
        .sql(&format!("CREATE DATABASE db; USE db; {TABLE}"))
        .unwrap();
    let mask = weir_tests::components::bundled("pii-mask");

    let row = |i: &str| ROW.replace("{i}", i);
    let shapes: [(&str, String); 2] = [
        (
            "one transaction",
            format!(
                "INSERT INTO db.bench SELECT {} FROM seq_1_to_{rows}",
                row("seq")
            ),
        ),
        (
            "10 rows/transaction",
            format!(
                "DELIMITER //\nCREATE PROCEDURE db.load_small() BEGIN \
                 DECLARE t INT DEFAULT 0; \
                 WHILE t < {} DO \
                 START TRANSACTION; \
                 INSERT INTO db.bench SELECT {} FROM seq_1_to_10; \
                 COMMIT; SET t = t + 1; END WHILE; END//\nDELIMITER ;\n\
                 CALL db.load_small()",
                rows / 10,
                row("t * 10 + seq")
            ),
        ),
    ];
    let mut results = Vec::new();
    for (shape, load) in &shapes {
        server
            .sql("TRUNCATE db.bench; DROP PROCEDURE IF EXISTS db.load_small; FLUSH BINARY LOGS")
            .unwrap();
        let (file, start) = master_status(&server);
        eprintln!("loading {rows} rows ({shape}) into {file} from {start}...");
        // (The sequence tables `seq_1_to_N` live in the current database.)
        server.sql(&format!("USE db;\n{load}")).unwrap();
        let (end_file, end) = master_status(&server);
        assert_eq!(file, end_file, "the load fits in one binlog file");

        let baseline = |contender| {
            let started = Instant::now();
            let mut child = Command::new(&binlog)
                .arg("--read-from-remote-server")
                .args(["--host=127.0.0.1", &format!("--port={}", server.port)])
                .arg(format!("--user={}", ThrowawayMariadb::USER))
                .arg(format!("--password={}", ThrowawayMariadb::PASSWORD))
                .arg("-v")
                .arg(format!("--start-position={start}"))
                .arg(format!("--stop-position={end}"))
                .arg(&file)
                .stdout(Stdio::piped())
                .spawn()
                .expect("mariadb-binlog runs");
            let out = BufReader::with_capacity(1 << 20, child.stdout.take().unwrap());
            let inserts = out
                .split(b'\n')
                .filter(|l| l.as_ref().is_ok_and(|l| l.starts_with(b"### INSERT INTO")))
                .count() as u64;
            assert!(child.wait().unwrap().success(), "mariadb-binlog failed");
            assert_eq!(inserts, rows, "mariadb-binlog decoded every row");
            Row {
                shape,
                contender,
                secs: started.elapsed().as_secs_f64(),
                rows,
                peak_rss_mb: None,
            }
        };
        results.push(baseline("mariadb-binlog -v"));
        for (contender, plugin, server_id) in
            [("weir", "none", "7001"), ("weir + pii-mask", mask, "7002")]
        {
            let port = server.port.to_string();
            let (start, rows_arg) = (start.to_string(), rows.to_string());
            results.push(weir_in_child(
                shape,
                contender,
                rows,
                &[&port, &file, &start, plugin, &rows_arg, server_id],
            ));
        }
        let started = Instant::now();
        let out = Command::new(&python)
            .args(["-c", PYTHON, &server.port.to_string()])
            .args([ThrowawayMariadb::USER, ThrowawayMariadb::PASSWORD, &file])
            .args([&start.to_string(), &rows.to_string()])
            .output()
            .expect("python runs");
        let secs = started.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "python-mysql-replication failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let counted: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert_eq!(counted, rows, "python-mysql-replication decoded every row");
        results.push(Row {
            shape,
            contender: "python-mysql-replication",
            secs,
            rows,
            peak_rss_mb: None,
        });
        // The baseline again, last: neither side gets the colder cache.
        results.push(baseline("mariadb-binlog -v"));
    }
    print_table(&results, "mariadb-binlog");
}

/// The binlog file and offset `SHOW MASTER STATUS` reports.
fn master_status(server: &ThrowawayMariadb) -> (String, u64) {
    let status = server.sql("SHOW MASTER STATUS").unwrap();
    let mut fields = status.split_whitespace();
    let file = fields.next().unwrap().to_owned();
    (file, fields.next().unwrap().parse().unwrap())
}

/// A Python with python-mysql-replication, in `target/tools/bench-venv`
/// (made, and the pinned packages installed, on first use).
fn python_venv() -> PathBuf {
    let venv = weir_tests::repo_root().join("target/tools/bench-venv");
    let python = venv.join("bin/python");
    let ready = venv.join(".installed");
    let pins = PYTHON_PACKAGES.join(" ");
    if std::fs::read_to_string(&ready).ok().as_deref() != Some(pins.as_str()) {
        eprintln!("installing {pins} into {}...", venv.display());
        let run = |cmd: &mut Command| {
            let status = cmd.status().expect("python3 runs");
            assert!(status.success(), "{cmd:?} failed");
        };
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        run(Command::new(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .args(PYTHON_PACKAGES));
        std::fs::write(&ready, pins).unwrap();
    }
    python
}

/// One weir run in this process: `PORT FILE POS PLUGIN|none ROWS
/// SERVER_ID`: resumes at the binlog position as if a checkpoint had been
/// left there, drains ROWS events into files; prints the seconds and the
/// peak resident memory in MB.
fn child(args: &[String]) {
    let [port, file, pos, plugin, rows, server_id] = args else {
        panic!("--child PORT FILE POS PLUGIN ROWS SERVER_ID");
    };
    let dir = std::env::temp_dir().join(format!("weir-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut store = SqliteCheckpointStore::open(&dir.join("state")).unwrap();
    store
        .save(&Checkpoint {
            source: json!({"file": file, "pos": pos.parse::<u64>().unwrap()}),
            sinks: Default::default(),
        })
        .unwrap();
    drop(store);
    let plugin = (plugin != "none").then_some(plugin.as_str());
    let config = config(port.parse().unwrap(), &dir, plugin, server_id);
    child_run(config, rows.parse().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

fn config(port: u16, dir: &Path, plugin: Option<&str>, server_id: &str) -> PipelineConfig {
    let plugins = plugins_toml(plugin);
    let text = format!(
        r#"
name = "bench"
state_dir = "state"
[source]
kind = "mariadb"
host = "127.0.0.1"
port = {port}
user = "{user}"
password = "{password}"
databases = ["db"]
server_id = {server_id}
snapshot = "never"
{plugins}
[[sinks]]
name = "files"
kind = "file"
dir = "out"
"#,
        user = ThrowawayMariadb::USER,
        password = ThrowawayMariadb::PASSWORD,
    );
    PipelineConfig::from_str(&text, dir, &|name| std::env::var(name).ok())
        .unwrap_or_else(|e| panic!("{e}"))
}
