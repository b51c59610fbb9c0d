//! Hot reload: new plugin versions are checked and compiled off the hot
//! path, swapped in at a transaction boundary, and rolled back if they fail
//! too often while on probation.
//!
//! - The [`Reloader`] thread polls each plugin's file (a bundle or a bare
//!   component) once a second, and reloads on request from the admin
//!   socket (`weir plugin reload`). A changed file goes through admission
//!   (integrity, signature, trust policy, self-test of the bundle's
//!   fixtures) and is compiled and instantiated; only then is it sent to
//!   the processor. A refused file leaves the running version in place.
//! - The processor's [`Chain`] applies waiting swaps only between batches
//!   that end at a transaction boundary, so no transaction is processed
//!   partly by one version and partly by another; each output event is
//!   stamped with the versions that processed it.
//! - For its first `canary_events` events a new version is on probation:
//!   if more than `canary_failure_ratio` of them fail, the previous version
//!   is restored and the batch that tipped it over is processed again,
//!   whole, by the previous version, so nothing is lost or half-processed.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use tracing::{error, info, warn};
use weir_core::ChangeEvent;
use weir_plugin::{EventFailure, PluginEngine, TransformerPlugin};

use crate::admission::admit;
use crate::config::{PluginConfig, TrustConfig};

/// One transformer of the chain, with the version it runs.
pub struct Slot {
    pub name: String,
    plugin: TransformerPlugin,
    version: String,
    /// The version before the last swap, while the new one is on probation.
    previous: Option<(TransformerPlugin, String)>,
    canary: Canary,
}

#[derive(Debug, Default, Clone, Copy)]
struct Canary {
    seen: u64,
    failed: u64,
}

/// A checked, compiled version waiting to be swapped in.
pub struct Swap {
    pub index: usize,
    pub plugin: TransformerPlugin,
    pub version: String,
}

/// The transformer chain of a running pipeline.
pub struct Chain {
    slots: Vec<Slot>,
    canary_events: u64,
    canary_failure_ratio: f64,
}

impl Chain {
    pub fn new(canary_events: u64, canary_failure_ratio: f64) -> Self {
        Chain {
            slots: Vec::new(),
            canary_events,
            canary_failure_ratio,
        }
    }

    pub fn push(&mut self, name: String, plugin: TransformerPlugin, version: String) {
        self.slots.push(Slot {
            name,
            plugin,
            version,
            previous: None,
            canary: Canary::default(),
        });
    }

    /// Swaps a new version in (call only at a transaction boundary).
    pub fn swap(&mut self, swap: Swap) {
        let Some(slot) = self.slots.get_mut(swap.index) else {
            return;
        };
        info!(
            plugin = %slot.name,
            from = %slot.version,
            to = %swap.version,
            "Plugin version swapped in at a transaction boundary; on probation."
        );
        let old_plugin = std::mem::replace(&mut slot.plugin, swap.plugin);
        let old_version = std::mem::replace(&mut slot.version, swap.version);
        slot.previous = Some((old_plugin, old_version));
        slot.canary = Canary::default();
    }

    /// Whether some version is on probation (the caller then keeps a copy
    /// of the batch, in case it must be processed again).
    pub fn on_probation(&self) -> bool {
        self.slots.iter().any(|s| s.previous.is_some())
    }

    /// `name=version,...`: what output events are stamped with.
    pub fn stamp(&self) -> Option<String> {
        if self.slots.is_empty() {
            return None;
        }
        Some(
            self.slots
                .iter()
                .map(|s| format!("{}={}", s.name, s.version))
                .collect::<Vec<_>>()
                .join(","),
        )
    }

    /// Runs the chain. Returns the output events and the failures, and
    /// whether a version on probation was rolled back (the caller must then
    /// run the same input again and discard this output).
    pub fn run(
        &mut self,
        mut events: Vec<ChangeEvent>,
    ) -> (Vec<ChangeEvent>, Vec<EventFailure>, bool) {
        let mut dead = Vec::new();
        let mut rolled_back = false;
        for slot in &mut self.slots {
            if events.is_empty() {
                break;
            }
            let fed = events.len() as u64;
            let mut next = Vec::with_capacity(events.len());
            let mut failed = 0;
            for result in slot.plugin.transform(events) {
                match result {
                    Ok(out) => next.extend(out),
                    Err(f) => {
                        failed += 1;
                        dead.push(f);
                    }
                }
            }
            events = next;
            if slot.previous.is_some() {
                slot.canary.seen += fed;
                slot.canary.failed += failed;
                let ratio = slot.canary.failed as f64 / slot.canary.seen as f64;
                if ratio > self.canary_failure_ratio {
                    let (plugin, version) = slot.previous.take().expect("checked");
                    error!(
                        plugin = %slot.name,
                        bad = %slot.version,
                        restored = %version,
                        failed = slot.canary.failed,
                        seen = slot.canary.seen,
                        "New plugin version rolled back: too many of its events failed on probation; the previous version is restored."
                    );
                    slot.plugin = plugin;
                    slot.version = version;
                    rolled_back = true;
                } else if slot.canary.seen >= self.canary_events {
                    info!(plugin = %slot.name, version = %slot.version, "Plugin version passed probation.");
                    slot.previous = None;
                }
            }
        }
        (events, dead, rolled_back)
    }

    /// The versions running now, by slot.
    pub fn versions(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.version.clone()).collect()
    }
}

/// A reload asked for through the admin socket; the reply says what
/// happened to each plugin.
pub struct ReloadRequest {
    pub reply: mpsc::Sender<String>,
}

/// The thread that watches plugin files and prepares new versions.
pub struct Reloader {
    pub engine: PluginEngine,
    pub plugins: Vec<PluginConfig>,
    pub trust: TrustConfig,
    pub state_dir: PathBuf,
    /// The versions loaded at start.
    pub versions: Vec<String>,
    pub swaps: mpsc::Sender<Swap>,
    pub requests: mpsc::Receiver<ReloadRequest>,
    pub watch: bool,
    pub stop: Arc<AtomicBool>,
}

impl Reloader {
    pub fn run(mut self) {
        let mut seen: Vec<Option<(SystemTime, u64)>> =
            self.plugins.iter().map(|p| fingerprint(&p.path)).collect();
        while !self.stop.load(Ordering::Relaxed) {
            let request = match self.requests.recv_timeout(Duration::from_secs(1)) {
                Ok(r) => Some(r),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            };
            let mut report = Vec::new();
            for (i, last) in seen.iter_mut().enumerate() {
                let now = fingerprint(&self.plugins[i].path);
                if !(now != *last && self.watch) && request.is_none() {
                    continue;
                }
                *last = now;
                report.push(self.reload(i));
            }
            if let Some(request) = request {
                let text = if report.is_empty() {
                    "no transformer plugins to reload".to_owned()
                } else {
                    report.join("\n")
                };
                let _ = request.reply.send(text);
            }
        }
    }

    fn reload(&mut self, i: usize) -> String {
        let p = &self.plugins[i];
        let admitted = match admit(&self.engine, p, &self.trust, &self.state_dir) {
            Ok(a) => a,
            Err(e) => {
                error!(plugin = %p.name, keeping = %self.versions[i], reason = %e, "New plugin version refused; the running version stays.");
                return format!("{}: refused, keeping {}: {e}", p.name, self.versions[i]);
            }
        };
        if admitted.version == self.versions[i] {
            return format!("{}: unchanged ({})", p.name, admitted.version);
        }
        match TransformerPlugin::load(&self.engine, &admitted.spec) {
            Ok(plugin) => {
                info!(plugin = %p.name, version = %admitted.version, "New plugin version checked and compiled; swapping at the next transaction boundary.");
                self.versions[i] = admitted.version.clone();
                let _ = self.swaps.send(Swap {
                    index: i,
                    plugin,
                    version: admitted.version.clone(),
                });
                format!("{}: swapping to {}", p.name, admitted.version)
            }
            Err(e) => {
                error!(plugin = %p.name, keeping = %self.versions[i], reason = %e, "New plugin version failed to load; the running version stays.");
                format!(
                    "{}: failed to load, keeping {}: {e}",
                    p.name, self.versions[i]
                )
            }
        }
    }
}

fn fingerprint(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The admin socket's path in a state directory.
pub fn admin_socket(state_dir: &Path) -> PathBuf {
    state_dir.join("admin.sock")
}

/// Serves `reload` requests on the admin socket until `stop`.
pub fn serve_admin(
    state_dir: &Path,
    requests: mpsc::Sender<ReloadRequest>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let path = admin_socket(state_dir);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("weir-admin".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                    Err(e) => {
                        warn!(error = %e, "Admin socket failed.");
                        return;
                    }
                };
                let _ = stream.set_nonblocking(false);
                let mut line = String::new();
                let mut reader = BufReader::new(&stream);
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let answer = match line.trim() {
                    "reload" => {
                        let (reply, wait) = mpsc::channel();
                        if requests.send(ReloadRequest { reply }).is_err() {
                            "error: the pipeline is stopping".to_owned()
                        } else {
                            wait.recv_timeout(Duration::from_secs(120))
                                .unwrap_or_else(|_| "error: no answer from the reloader".into())
                        }
                    }
                    other => format!("error: unknown command `{other}`; try `reload`"),
                };
                let mut stream = &stream;
                let _ = writeln!(stream, "{answer}");
            }
            let _ = std::fs::remove_file(&path);
        })
}
