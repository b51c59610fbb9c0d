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

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use tracing::{error, info, warn};
use weir_core::ChangeEvent;
use weir_plugin::{EventFailure, PluginEngine, RouterPlugin, TransformerPlugin};

use crate::admission::{Admitted, admit};
use crate::config::{PluginConfig, TrustConfig};
use crate::shadow::{Counts, Shadow};

/// A plugin of the running pipeline with the version it runs, and while a
/// new version is on probation, the version before it.
pub struct Versioned<P> {
    pub name: String,
    plugin: P,
    version: String,
    /// The key that signed the running version's bundle, if signed.
    signer: Option<String>,
    previous: Option<(P, String, Option<String>)>,
    canary: Canary,
    /// A candidate version compared with this one (transformers only).
    shadow: Option<Shadow>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Canary {
    seen: u64,
    failed: u64,
}

impl<P> Versioned<P> {
    fn new(name: String, plugin: P, version: String, signer: Option<String>) -> Self {
        Versioned {
            name,
            plugin,
            version,
            signer,
            previous: None,
            canary: Canary::default(),
            shadow: None,
        }
    }

    /// The same version with its own instance (see [`Chain::replica`]).
    fn replica(&self, fork: impl Fn(&P) -> P) -> Self {
        Versioned::new(
            self.name.clone(),
            fork(&self.plugin),
            self.version.clone(),
            self.signer.clone(),
        )
    }

    fn swap(&mut self, plugin: P, version: String, signer: Option<String>) {
        info!(
            plugin = %self.name,
            from = %self.version,
            to = %version,
            "Plugin version swapped in at a transaction boundary; on probation."
        );
        let old_plugin = std::mem::replace(&mut self.plugin, plugin);
        let old_version = std::mem::replace(&mut self.version, version);
        let old_signer = std::mem::replace(&mut self.signer, signer);
        self.previous = Some((old_plugin, old_version, old_signer));
        self.canary = Canary::default();
    }

    /// Counts a call's events and failures against the probation, if any;
    /// true if the version on probation was just rolled back.
    fn judge(&mut self, fed: u64, failed: u64, canary_events: u64, failure_ratio: f64) -> bool {
        if self.previous.is_none() {
            return false;
        }
        self.canary.seen += fed;
        self.canary.failed += failed;
        let ratio = self.canary.failed as f64 / self.canary.seen as f64;
        if ratio > failure_ratio {
            let (plugin, version, signer) = self.previous.take().expect("checked");
            error!(
                plugin = %self.name,
                bad = %self.version,
                restored = %version,
                failed = self.canary.failed,
                seen = self.canary.seen,
                "New plugin version rolled back: too many of its events failed on probation; the previous version is restored."
            );
            self.plugin = plugin;
            self.version = version;
            self.signer = signer;
            return true;
        }
        if self.canary.seen >= canary_events {
            info!(plugin = %self.name, version = %self.version, "Plugin version passed probation.");
            self.previous = None;
        }
        false
    }
}

/// What a watched plugin file is to the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The transformer at this position of the chain.
    Transformer(usize),
    /// The router plugin.
    Router,
    /// The shadow candidate of the transformer at this position.
    Shadow(usize),
}

/// A checked, compiled plugin and its place.
pub enum Loaded {
    /// The transformer at this position of the chain.
    Transformer(usize, TransformerPlugin),
    Router(RouterPlugin),
    /// A new shadow candidate for the transformer at this position.
    Shadow(usize, Box<Shadow>),
}

/// A checked, compiled version waiting to be swapped in.
pub struct Swap {
    pub plugin: Loaded,
    pub version: String,
    pub signer: Option<String>,
    /// The transformer's shadow candidate promoted: the shadow ends.
    pub promoted: bool,
}

/// The plugins of a running pipeline: the transformer chain and, when the
/// router is a plugin, the router.
pub struct Chain {
    slots: Vec<Versioned<TransformerPlugin>>,
    router: Option<Versioned<RouterPlugin>>,
    canary_events: u64,
    canary_failure_ratio: f64,
    /// Versions rolled back so far.
    rollbacks: u64,
    /// New versions swapped in so far.
    swaps: u64,
    /// Per plugin (by name, transformers then the router), its calls.
    calls: Vec<PluginCalls>,
}

/// A plugin of a running chain, as status reports show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginState {
    pub name: String,
    /// `transformer` or `router`.
    pub role: &'static str,
    /// `name@version+digest` (bundle) or `file+digest`.
    pub version: String,
    /// The key that signed the version's bundle, if signed.
    pub signer: Option<String>,
    /// A new version on probation (its predecessor kept for a rollback).
    pub probation: bool,
    /// The candidate in its shadow, if any.
    pub shadow: Option<ShadowState>,
}

/// A shadow candidate as status reports show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowState {
    /// `name@version+digest` or `file+digest`.
    pub version: String,
    pub counts: Counts,
}

/// The calls of plugin `name` in `calls`, added when missing.
fn calls_of<'c>(calls: &'c mut Vec<PluginCalls>, name: &str) -> &'c mut PluginCalls {
    match calls.iter().position(|c| c.name == name) {
        Some(i) => &mut calls[i],
        None => {
            calls.push(PluginCalls::new(name));
            calls.last_mut().expect("pushed")
        }
    }
}

/// What a plugin's calls cost and how its events failed, since the chain
/// started: one call per batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginCalls {
    pub name: String,
    /// Calls per bucket of [`crate::latency::BUCKETS`] (the last `+Inf`).
    pub buckets: Vec<u64>,
    pub seconds: f64,
    /// Failed events by failure kind (`trap`, `timeout`, ...).
    pub failures: std::collections::BTreeMap<&'static str, u64>,
}

impl PluginCalls {
    fn new(name: &str) -> Self {
        PluginCalls {
            name: name.to_owned(),
            buckets: vec![0; crate::latency::BUCKETS.len() + 1],
            ..PluginCalls::default()
        }
    }

    /// Adds `other`'s calls (of the same plugin) to these.
    pub fn add(&mut self, other: &PluginCalls) {
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.seconds += other.seconds;
        for (kind, n) in &other.failures {
            *self.failures.entry(kind).or_default() += n;
        }
    }

    /// Per plugin, the calls of every part in `parts` added up.
    pub fn sum<'a>(parts: impl IntoIterator<Item = &'a [PluginCalls]>) -> Vec<PluginCalls> {
        let mut all: Vec<PluginCalls> = Vec::new();
        for part in parts {
            for calls in part {
                calls_of(&mut all, &calls.name).add(calls);
            }
        }
        all
    }

    fn record(&mut self, took: std::time::Duration, failures: &[EventFailure]) {
        let refs: Vec<&EventFailure> = failures.iter().collect();
        self.record_refs(took, &refs);
    }

    fn record_refs(&mut self, took: std::time::Duration, failures: &[&EventFailure]) {
        let s = took.as_secs_f64();
        self.buckets[crate::latency::bucket_of(s)] += 1;
        self.seconds += s;
        for f in failures {
            *self.failures.entry(f.kind.label()).or_default() += 1;
        }
    }
}

impl Chain {
    pub fn new(canary_events: u64, canary_failure_ratio: f64) -> Self {
        Chain {
            slots: Vec::new(),
            router: None,
            canary_events,
            canary_failure_ratio,
            rollbacks: 0,
            swaps: 0,
            calls: Vec::new(),
        }
    }

    /// Each plugin's calls and failures so far.
    pub fn calls(&self) -> &[PluginCalls] {
        &self.calls
    }

    /// Takes over `earlier`'s call counts (a replica replacing another
    /// keeps counting where it left off).
    pub fn keep_calls(&mut self, earlier: &mut Chain) {
        self.calls = std::mem::take(&mut earlier.calls);
    }

    /// The running versions of every plugin, each with its own instance
    /// (instantiated on its first call): for another worker of the plugin
    /// stage. A replica has no probation, no shadow and no earlier
    /// version; it counts its own calls from zero.
    pub fn replica(&self) -> Chain {
        Chain {
            slots: (self.slots.iter())
                .map(|s| s.replica(TransformerPlugin::fork))
                .collect(),
            router: (self.router.as_ref()).map(|r| r.replica(RouterPlugin::fork)),
            ..Chain::new(self.canary_events, self.canary_failure_ratio)
        }
    }

    /// Whether the chain must see every batch itself, in order: while a
    /// new version is on probation (a rollback processes the tipping batch
    /// again with the version before, and no later batch may have used
    /// the bad one) and while a shadow candidate compares.
    pub fn needs_order(&self) -> bool {
        self.on_probation()
            || self.router.as_ref().is_some_and(|r| r.previous.is_some())
            || self.slots.iter().any(|s| s.shadow.is_some())
    }

    /// Changes whenever the running versions change (a swap or a
    /// rollback): replicas made at another generation are stale.
    pub fn generation(&self) -> u64 {
        self.swaps + self.rollbacks
    }

    /// Whether the chain has any plugin (transformer or router).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty() && self.router.is_none()
    }

    /// Every plugin with its version and probation state, transformers
    /// first.
    pub fn states(&self) -> Vec<PluginState> {
        let state = |role, s: &Versioned<_>| PluginState {
            name: s.name.clone(),
            role,
            version: s.version.clone(),
            signer: s.signer.clone(),
            probation: s.previous.is_some(),
            shadow: s.shadow.as_ref().map(|c| ShadowState {
                version: c.version.clone(),
                counts: c.counts.clone(),
            }),
        };
        let mut all: Vec<PluginState> =
            self.slots.iter().map(|s| state("transformer", s)).collect();
        if let Some(r) = &self.router {
            all.push(PluginState {
                name: r.name.clone(),
                role: "router",
                version: r.version.clone(),
                signer: r.signer.clone(),
                probation: r.previous.is_some(),
                shadow: None,
            });
        }
        all
    }

    /// Versions rolled back so far.
    pub fn rollbacks(&self) -> u64 {
        self.rollbacks
    }

    /// New versions swapped in so far.
    pub fn swaps(&self) -> u64 {
        self.swaps
    }

    pub fn push(&mut self, name: String, plugin: TransformerPlugin, admitted: &Admitted) {
        self.slots.push(Versioned::new(
            name,
            plugin,
            admitted.version.clone(),
            admitted.signer.clone(),
        ));
    }

    /// Runs `shadow` beside the transformer at position `i` (replacing any
    /// candidate there).
    pub fn set_shadow(&mut self, i: usize, shadow: Shadow) {
        if let Some(slot) = self.slots.get_mut(i) {
            info!(plugin = %slot.name, candidate = %shadow.version, "Shadow candidate running beside the live version.");
            slot.shadow = Some(shadow);
        }
    }

    pub fn set_router(&mut self, name: String, plugin: RouterPlugin, admitted: &Admitted) {
        self.router = Some(Versioned::new(
            name,
            plugin,
            admitted.version.clone(),
            admitted.signer.clone(),
        ));
    }

    /// Swaps a new version in (call only at a transaction boundary).
    pub fn swap(&mut self, swap: Swap) {
        match swap.plugin {
            // A new candidate is not a new version of what runs.
            Loaded::Shadow(i, shadow) => self.set_shadow(i, *shadow),
            Loaded::Transformer(i, p) => {
                self.swaps += 1;
                if let Some(slot) = self.slots.get_mut(i) {
                    if swap.promoted
                        && let Some(shadow) = slot.shadow.take()
                    {
                        info!(
                            plugin = %slot.name,
                            compared = shadow.counts.compared,
                            differed = shadow.counts.differed(),
                            "Shadow candidate promoted; the shadow ends."
                        );
                    }
                    slot.swap(p, swap.version, swap.signer);
                }
            }
            Loaded::Router(p) => {
                self.swaps += 1;
                if let Some(router) = &mut self.router {
                    router.swap(p, swap.version, swap.signer);
                }
            }
        }
    }

    /// Whether some transformer version is on probation (the caller then
    /// keeps a copy of the batch, in case it must be processed again; a
    /// router rolled back routes again the events it was given).
    pub fn on_probation(&self) -> bool {
        self.slots.iter().any(|s| s.previous.is_some())
    }

    /// `name=version,...` of the transformers and the router plugin: what
    /// output events are stamped with.
    pub fn stamp(&self) -> Option<String> {
        let all: Vec<String> = self
            .slots
            .iter()
            .map(|s| format!("{}={}", s.name, s.version))
            .chain(
                self.router
                    .iter()
                    .map(|r| format!("{}={}", r.name, r.version)),
            )
            .collect();
        (!all.is_empty()).then(|| all.join(","))
    }

    /// Runs the transformers. Returns the output events and the failures,
    /// and whether a version on probation was rolled back (the caller must
    /// then run the same input again and discard this output).
    pub fn run(
        &mut self,
        mut events: Vec<ChangeEvent>,
    ) -> (Vec<ChangeEvent>, Vec<EventFailure>, bool) {
        let mut dead = Vec::new();
        let mut rolled_back = false;
        // While a live version is on probation a batch may run twice:
        // shadows compare nothing then.
        let shadowing = !self.on_probation();
        for slot in &mut self.slots {
            if events.is_empty() {
                break;
            }
            let fed = events.len() as u64;
            let mut next = Vec::with_capacity(events.len());
            let mut failed = 0;
            let input = (shadowing && slot.shadow.is_some()).then(|| events.clone());
            let started = std::time::Instant::now();
            let results = slot.plugin.transform(events);
            let took = started.elapsed();
            if let (Some(shadow), Some(input)) = (&mut slot.shadow, input) {
                shadow.observe(input, &results, &slot.version);
            }
            let first_failure = dead.len();
            for result in results {
                match result {
                    Ok(out) => next.extend(out),
                    Err(f) => {
                        failed += 1;
                        dead.push(f);
                    }
                }
            }
            events = next;
            calls_of(&mut self.calls, &slot.name).record(took, &dead[first_failure..]);
            if slot.judge(fed, failed, self.canary_events, self.canary_failure_ratio) {
                rolled_back = true;
                self.rollbacks += 1;
            }
        }
        (events, dead, rolled_back)
    }

    /// Routes events through the router plugin: per event, its
    /// destinations or the failure. If a router version on probation is
    /// rolled back, the events are routed again by the restored version
    /// (restamped first, through `restamp`).
    pub fn route(
        &mut self,
        events: &mut [ChangeEvent],
        restamp: impl Fn(&mut [ChangeEvent], Option<String>),
    ) -> Vec<Result<Vec<String>, EventFailure>> {
        let (canary_events, ratio) = (self.canary_events, self.canary_failure_ratio);
        let Some(router) = &mut self.router else {
            return Vec::new();
        };
        let started = std::time::Instant::now();
        let routes = router.plugin.route(events);
        let took = started.elapsed();
        let failed = routes.iter().filter(|r| r.is_err()).count() as u64;
        let failures: Vec<&EventFailure> = routes.iter().filter_map(|r| r.as_ref().err()).collect();
        calls_of(&mut self.calls, &router.name).record_refs(took, &failures);
        if router.judge(events.len() as u64, failed, canary_events, ratio) {
            self.rollbacks += 1;
            restamp(events, self.stamp());
            let router = self.router.as_mut().expect("checked");
            return router.plugin.route(events);
        }
        routes
    }

    /// The versions running now: the transformers', the router's, then
    /// the shadow candidates'.
    pub fn versions(&self) -> Vec<String> {
        self.slots
            .iter()
            .map(|s| s.version.clone())
            .chain(self.router.iter().map(|r| r.version.clone()))
            .chain(
                self.slots
                    .iter()
                    .filter_map(|s| s.shadow.as_ref().map(|c| c.version.clone())),
            )
            .collect()
    }
}

/// A request through the admin socket; the reply says what happened to
/// each plugin.
pub struct ReloadRequest {
    pub command: Command,
    pub reply: mpsc::Sender<String>,
}

/// What the admin socket asks the reloader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Check every plugin file now.
    Reload,
    /// Swap the named transformer's shadow candidate in.
    Promote(String),
}

impl Command {
    /// The command's line on the admin socket.
    pub fn line(&self) -> String {
        match self {
            Command::Reload => "reload".to_owned(),
            Command::Promote(name) => format!("promote {name}"),
        }
    }

    fn parse(line: &str) -> Option<Command> {
        match line.split_once(' ') {
            None if line == "reload" => Some(Command::Reload),
            Some(("promote", name)) if !name.trim().is_empty() => {
                Some(Command::Promote(name.trim().to_owned()))
            }
            _ => None,
        }
    }
}

/// The thread that watches plugin files and prepares new versions.
pub struct Reloader {
    pub engine: PluginEngine,
    /// Each watched plugin with its role, in the order of `versions`.
    pub plugins: Vec<(PluginConfig, Role)>,
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
        let mut seen: Vec<Option<(SystemTime, u64)>> = self
            .plugins
            .iter()
            .map(|(p, _)| fingerprint(&p.path))
            .collect();
        while !self.stop.load(Ordering::Relaxed) {
            let request = match self.requests.recv_timeout(Duration::from_secs(1)) {
                Ok(r) => Some(r),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            };
            if let Some(ReloadRequest {
                command: Command::Promote(name),
                reply,
            }) = &request
            {
                let (answer, retired) = self.promote(name);
                if let Some(i) = retired {
                    seen.remove(i);
                }
                let _ = reply.send(answer);
                continue;
            }
            let mut report = Vec::new();
            for (i, last) in seen.iter_mut().enumerate() {
                let now = fingerprint(&self.plugins[i].0.path);
                if !(now != *last && self.watch) && request.is_none() {
                    continue;
                }
                *last = now;
                report.push(self.reload(i));
            }
            if let Some(request) = request {
                let text = if report.is_empty() {
                    "no plugins to reload (a router template is not a plugin)".to_owned()
                } else {
                    report.join("\n")
                };
                let _ = request.reply.send(text);
            }
        }
    }

    fn reload(&mut self, i: usize) -> String {
        let (p, role) = &self.plugins[i];
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
        let loaded = match *role {
            Role::Transformer(i) => TransformerPlugin::load(&self.engine, &admitted.spec)
                .map(|p| Loaded::Transformer(i, p)),
            Role::Router => RouterPlugin::load(&self.engine, &admitted.spec).map(Loaded::Router),
            Role::Shadow(i) => TransformerPlugin::load(&self.engine, &admitted.spec).map(|c| {
                let shadow = Shadow::new(c, admitted.version.clone(), &self.state_dir, &p.name);
                Loaded::Shadow(i, Box::new(shadow))
            }),
        };
        let what = if matches!(role, Role::Shadow(_)) {
            "shadow candidate"
        } else {
            "version"
        };
        match loaded {
            Ok(plugin) => {
                info!(plugin = %p.name, version = %admitted.version, "New plugin {what} checked and compiled; swapping at the next transaction boundary.");
                self.versions[i] = admitted.version.clone();
                let _ = self.swaps.send(Swap {
                    plugin,
                    version: admitted.version.clone(),
                    signer: admitted.signer.clone(),
                    promoted: false,
                });
                format!("{}: swapping {what} to {}", p.name, admitted.version)
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

    /// Checks and loads transformer `name`'s shadow candidate as its new
    /// live version, to swap in at the next transaction boundary (with
    /// probation). Returns the answer, and the position of the shadow's
    /// watch entry, which ends.
    fn promote(&mut self, name: &str) -> (String, Option<usize>) {
        let live = self
            .plugins
            .iter()
            .position(|(p, r)| p.name == name && matches!(r, Role::Transformer(_)));
        let Some(live) = live else {
            return (format!("error: no transformer named `{name}`"), None);
        };
        let Role::Transformer(slot) = self.plugins[live].1 else {
            unreachable!("matched above")
        };
        let Some(shadow) = (self.plugins.iter()).position(|(_, r)| *r == Role::Shadow(slot)) else {
            return (
                format!("error: `{name}` has no shadow candidate to promote"),
                None,
            );
        };
        let config = &self.plugins[shadow].0;
        let loaded = admit(&self.engine, config, &self.trust, &self.state_dir)
            .map_err(|e| e.to_string())
            .and_then(|a| {
                TransformerPlugin::load(&self.engine, &a.spec)
                    .map(|p| (a, p))
                    .map_err(|e| e.to_string())
            });
        let (admitted, plugin) = match loaded {
            Ok(l) => l,
            Err(e) => {
                error!(plugin = %name, reason = %e, "Shadow candidate refused for promotion; the running version stays.");
                return (
                    format!("{name}: refused, keeping {}: {e}", self.versions[live]),
                    None,
                );
            }
        };
        info!(plugin = %name, version = %admitted.version, "Shadow candidate promoted; swapping at the next transaction boundary.");
        self.versions[live] = admitted.version.clone();
        let _ = self.swaps.send(Swap {
            plugin: Loaded::Transformer(slot, plugin),
            version: admitted.version.clone(),
            signer: admitted.signer,
            promoted: true,
        });
        self.plugins.remove(shadow);
        self.versions.remove(shadow);
        (
            format!("{name}: promoting shadow, swapping to {}", admitted.version),
            Some(shadow),
        )
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

/// Asks the pipeline or worker instance whose state directory is
/// `state_dir`, over its admin socket, to load changed plugins; returns
/// its answer, a line per plugin (see [`reload_failed`]).
pub fn request_reload(state_dir: &Path) -> std::io::Result<String> {
    request(state_dir, &Command::Reload)
}

/// Sends `command` over the admin socket of the pipeline or worker
/// instance whose state directory is `state_dir`; returns its answer.
pub fn request(state_dir: &Path, command: &Command) -> std::io::Result<String> {
    let stream = std::os::unix::net::UnixStream::connect(admin_socket(state_dir))?;
    // The reloader checks and compiles each new version before it answers.
    stream.set_read_timeout(Some(Duration::from_secs(130)))?;
    (&stream).write_all(format!("{}\n", command.line()).as_bytes())?;
    let mut answer = String::new();
    BufReader::new(&stream).read_to_string(&mut answer)?;
    Ok(answer.trim_end().to_owned())
}

/// Whether a reload or promote answer says a new version was refused or
/// failed to load, or the reloader could not be asked.
pub fn reload_failed(answer: &str) -> bool {
    answer.lines().any(|l| {
        l.starts_with("error:")
            || l.contains(": refused, keeping")
            || l.contains(": failed to load, keeping")
    })
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
                let answer = match Command::parse(line.trim()) {
                    Some(command) => {
                        let (reply, wait) = mpsc::channel();
                        if requests.send(ReloadRequest { command, reply }).is_err() {
                            "error: the pipeline is stopping".to_owned()
                        } else {
                            wait.recv_timeout(Duration::from_secs(120))
                                .unwrap_or_else(|_| "error: no answer from the reloader".into())
                        }
                    }
                    None => format!(
                        "error: unknown command `{}`; try `reload` or `promote PLUGIN`",
                        line.trim()
                    ),
                };
                let mut stream = &stream;
                let _ = writeln!(stream, "{answer}");
            }
            let _ = std::fs::remove_file(&path);
        })
}
