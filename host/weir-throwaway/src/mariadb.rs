//! A throwaway MariaDB server: a fresh data directory
//! (`mariadb-install-db`) in a temporary directory, `mariadbd` started from
//! the installed binaries on a free port with a row-based binlog
//! (`binlog_format = ROW`, `binlog_row_image = FULL`,
//! `binlog_row_metadata = FULL`), and removed when dropped. Never the
//! machine's own server.
//!
//! The superuser `root` authenticates by Unix socket only; the server gets a
//! user [`ThrowawayMariadb::USER`] with a password and every privilege,
//! reachable over TCP on 127.0.0.1, which is what a pipeline connects as.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{ThrowawayError, failed, free_port, scratch_dir};

/// A running throwaway MariaDB. Dropping it stops the server and deletes
/// its files.
#[derive(Debug)]
pub struct ThrowawayMariadb {
    child: Option<Child>,
    dir: PathBuf,
    /// The `mariadb` client binary.
    client: PathBuf,
    pub port: u16,
}

/// Extra `--name=value` server options.
pub type Options<'a> = &'a [(&'a str, &'a str)];

impl ThrowawayMariadb {
    /// The user with every privilege, over TCP.
    pub const USER: &'static str = "weir";
    /// Its password.
    pub const PASSWORD: &'static str = "weir-test";

    /// Starts a fresh server with a row-based binlog, plus `options`
    /// (e.g. `("binlog_row_metadata", "MINIMAL")` to test the checks).
    pub fn start(options: Options<'_>) -> Result<Self, ThrowawayError> {
        let not_installed = || ThrowawayError::NotInstalled {
            server: "MariaDB",
            binaries: "mariadb-install-db, mariadbd, mariadb",
            package: "mariadb-server",
        };
        let install_db = find("mariadb-install-db").ok_or_else(not_installed)?;
        let mariadbd = find("mariadbd").ok_or_else(not_installed)?;
        let client = find("mariadb").ok_or_else(not_installed)?;
        let dir = scratch_dir("weir-mariadb")?;
        let mut server = ThrowawayMariadb {
            child: None,
            dir,
            client,
            port: 0,
        };
        let data = server.dir.join("data");
        // Temporary tables of its own: servers starting side by side would
        // otherwise collide on names in /tmp.
        let tmp = server.dir.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| failed("creating the tmp directory", e))?;
        let out = Command::new(&install_db)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args(["--user=root", "--auth-root-authentication-method=socket"])
            .args(["--skip-test-db", "--skip-name-resolve"])
            .output()
            .map_err(|e| failed("mariadb-install-db", e))?;
        if !out.status.success() {
            return Err(failed(
                "mariadb-install-db",
                String::from_utf8_lossy(&out.stderr),
            ));
        }
        for attempt in 0..5 {
            server.port = free_port().map_err(|e| failed("finding a free port", e))?;
            let mut cmd = Command::new(&mariadbd);
            cmd.arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--tmpdir={}", tmp.display()))
                .arg(format!("--socket={}", server.socket().display()))
                .arg(format!(
                    "--pid-file={}",
                    server.dir.join("mariadbd.pid").display()
                ))
                .arg(format!("--log-error={}", server.log_path().display()))
                .arg(format!("--log-bin={}", data.join("binlog").display()))
                .arg(format!("--port={}", server.port))
                .args([
                    "--user=root",
                    "--bind-address=127.0.0.1",
                    "--skip-name-resolve",
                ])
                .args([
                    "--server-id=1",
                    "--binlog-format=ROW",
                    "--binlog-row-image=FULL",
                ])
                .args(["--binlog-row-metadata=FULL", "--log-slave-updates"])
                // Throwaway data: durability is not what these servers test.
                .args(["--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0"])
                .args(["--innodb-buffer-pool-size=64M", "--max-connections=200"]);
            for (name, value) in options {
                cmd.arg(format!("--{name}={value}"));
            }
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            server.child = Some(cmd.spawn().map_err(|e| failed("starting mariadbd", e))?);
            match server.wait_ready() {
                Ok(()) => {
                    server.sql(&format!(
                        "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}';
                         GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%' WITH GRANT OPTION;",
                        user = Self::USER,
                        password = Self::PASSWORD
                    ))?;
                    return Ok(server);
                }
                Err(e) if attempt == 4 => return Err(e),
                Err(_) => server.kill(),
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// The server's Unix socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("mariadbd.sock")
    }

    /// The server's error log, for failure messages.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("error.log")
    }

    /// Runs `sql` as `root` over the socket, returning the output (tab
    /// separated, no column names).
    pub fn sql(&self, sql: &str) -> Result<String, ThrowawayError> {
        let out = self
            .client()
            .args(["-N", "-B", "-e", sql])
            .output()
            .map_err(|e| failed("mariadb", e))?;
        if !out.status.success() {
            return Err(failed("mariadb", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A `mariadb` client command connected as `root` over the socket.
    pub fn client(&self) -> Command {
        client_command(&self.client, &self.socket())
    }

    /// What [`ThrowawayMariadb::client`] needs, to make clients on other
    /// threads: the client binary and the socket.
    pub fn client_parts(&self) -> (PathBuf, PathBuf) {
        (self.client.clone(), self.socket())
    }

    fn wait_ready(&mut self) -> Result<(), ThrowawayError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                return Err(failed(
                    "starting mariadbd",
                    format!("the server exited ({status}): {log}"),
                ));
            }
            if self.sql("SELECT 1").is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(failed("starting mariadbd", "not ready within 30 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ThrowawayMariadb {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `mariadb` client at `binary` connected as `root` over `socket`.
pub fn client_command(binary: &Path, socket: &Path) -> Command {
    let mut cmd = Command::new(binary);
    cmd.arg("--no-defaults")
        .arg(format!("--socket={}", socket.display()))
        .args(["-u", "root"]);
    cmd
}

/// A MariaDB program (`mariadb-binlog`, say) on PATH, or in `/usr/sbin`
/// (where Debian puts `mariadbd`).
pub fn find(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}
