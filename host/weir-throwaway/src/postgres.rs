//! A throwaway PostgreSQL server for `weir demo` and the test suite: a
//! fresh cluster (`initdb`) in a temporary directory, started from the
//! installed server binaries on a free port with `wal_level = logical`, and
//! removed when dropped. No Docker, no shared server.
//!
//! PostgreSQL refuses to run as root; when weir runs as root the cluster is
//! owned by, and the server run as, the `postgres` system user that the
//! Debian package creates.

use std::ops::Not;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{ThrowawayError, failed, free_port, scratch_dir};

/// A running throwaway server. Dropping it stops the server and deletes its
/// files.
#[derive(Debug)]
pub struct ThrowawayPostgres {
    child: Option<Child>,
    dir: PathBuf,
    bin: PathBuf,
    run_as: Option<String>,
    pub port: u16,
    /// The superuser, `postgres`, with trust authentication on 127.0.0.1.
    pub user: String,
}

/// Extra `-c name=value` server settings.
pub type Settings<'a> = &'a [(&'a str, &'a str)];

impl ThrowawayPostgres {
    /// Starts a fresh server with logical replication enabled, plus
    /// `settings`.
    pub fn start(settings: Settings<'_>) -> Result<Self, ThrowawayError> {
        let bin = find_bindir().ok_or(ThrowawayError::NotInstalled {
            server: "PostgreSQL",
            binaries: "initdb, postgres, under /usr/lib/postgresql/*/bin or on PATH",
            package: "postgresql",
        })?;
        let run_as = if is_root() {
            if Command::new("id")
                .args(["-u", "postgres"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
                .not()
            {
                return Err(ThrowawayError::NoPostgresUser);
            }
            Some("postgres".to_owned())
        } else {
            None
        };
        let base = scratch_dir("weir-pg")?;
        let mut server = ThrowawayPostgres {
            child: None,
            dir: base,
            bin,
            run_as,
            port: 0,
            user: "postgres".into(),
        };
        if let Some(user) = &server.run_as {
            let status = Command::new("chown")
                .args([&format!("{user}:"), server.dir.to_str().unwrap_or_default()])
                .status()
                .map_err(|e| failed("chown", e))?;
            if !status.success() {
                return Err(failed("chown of the data directory", status));
            }
        }
        let data = server.dir.join("data");
        let out = server
            .command("initdb")
            .args(["-D", data.to_str().unwrap_or_default()])
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .args(["--locale=C"])
            .output()
            .map_err(|e| failed("initdb", e))?;
        if !out.status.success() {
            return Err(failed("initdb", String::from_utf8_lossy(&out.stderr)));
        }
        // A free port: the OS picks one, and the server binds it right after.
        for attempt in 0..5 {
            server.port = free_port().map_err(|e| failed("finding a free port", e))?;
            let mut cmd = server.command("postgres");
            cmd.args(["-D", data.to_str().unwrap_or_default()])
                .args(["-p", &server.port.to_string()])
                .args(["-k", server.dir.to_str().unwrap_or_default()])
                .args(["-c", "listen_addresses=127.0.0.1"])
                .args(["-c", "wal_level=logical"])
                .args(["-c", "max_wal_senders=20"])
                .args(["-c", "max_replication_slots=20"])
                .args(["-c", "max_connections=100"])
                .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
                .args(["-c", "log_min_messages=warning"]);
            for (name, value) in settings {
                cmd.args(["-c", &format!("{name}={value}")]);
            }
            let log = std::fs::File::create(server.dir.join("server.log"))
                .map_err(|e| failed("creating the server log", e))?;
            cmd.stdout(Stdio::null()).stderr(log);
            server.child = Some(cmd.spawn().map_err(|e| failed("starting postgres", e))?);
            match server.wait_ready() {
                Ok(()) => return Ok(server),
                Err(e) if attempt == 4 => return Err(e),
                Err(_) => server.kill(),
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// The directory holding the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the server's log, for failure messages.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Runs `psql` with `sql` against `database`, returning its output.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, ThrowawayError> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args([
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-X",
                "-q",
                "-A",
                "-t",
            ])
            .args(["-c", sql])
            .output()
            .map_err(|e| failed("psql", e))?;
        if !out.status.success() {
            return Err(failed("psql", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The server's binary directory (for `pg_recvlogical` and friends).
    pub fn bindir(&self) -> &Path {
        &self.bin
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", user, "--"]).arg(path);
                cmd
            }
            None => Command::new(path),
        }
    }

    fn wait_ready(&mut self) -> Result<(), ThrowawayError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                return Err(failed(
                    "starting postgres",
                    format!("the server exited ({status}): {log}"),
                ));
            }
            let ok = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(failed("starting postgres", "not ready within 30 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGQUIT to the postmaster (not to `runuser`, which would not
            // pass it on): immediate shutdown, which also stops its children.
            let pid = std::fs::read_to_string(self.dir.join("data").join("postmaster.pid"))
                .ok()
                .and_then(|s| s.lines().next().map(str::to_owned))
                .unwrap_or_else(|| child.id().to_string());
            let _ = Command::new("kill").args(["-QUIT", &pid]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb`, else
/// the directory of an `initdb` on PATH.
fn find_bindir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").exists() && p.join("postgres").exists())
    })
}
