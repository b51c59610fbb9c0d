//! The plugin stage shared by `weir run` and `weir worker`: the
//! transformer chain and the router, loaded through admission, with hot
//! reload (the watcher thread and the admin socket) running beside it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use weir_core::{ChangeEvent, DeadLetter, FailedAt, Name};
use weir_plugin::{EventFailure, PluginEngine, RouterPlugin, TransformerPlugin};

use crate::admission::admit;
use crate::config::{PipelineSettings, PluginConfig, RouterConfig, TrustConfig};
use crate::reload::{Chain, ReloadRequest, Reloader, Role, Swap, serve_admin};
use crate::router::Template;
use crate::runner::PipelineError;
use crate::shadow::Shadow;
use crate::writer::RoutedBatch;

/// What the plugin stage is made of: the parts of a pipeline's or a
/// worker's config it needs.
#[derive(Debug, Clone, Copy)]
pub struct PluginSetup<'a> {
    pub plugins: &'a [PluginConfig],
    pub router: &'a RouterConfig,
    pub trust: &'a TrustConfig,
    pub settings: &'a PipelineSettings,
    /// Where admitted bundles are unpacked and the admin socket lives.
    pub state_dir: &'a Path,
}

#[derive(Clone)]
enum Router {
    Template(Template),
    /// The router plugin, which lives in the [`Chain`] (it is hot-reloaded
    /// and stamped like the transformers).
    Plugin,
}

/// How stamps combine with a stamp the event already carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamping {
    /// The versions of this stage replace whatever the event carried
    /// (events fresh from a source).
    Replace,
    /// Appended after an earlier stage's (a worker reading what a pipeline
    /// with plugins wrote).
    Append,
}

/// The transformer chain and the router. See the module docs.
pub struct Processor {
    chain: Chain,
    router: Router,
    swaps: mpsc::Receiver<Swap>,
    stamping: Stamping,
}

/// The reloader thread and the admin socket, stopped together.
pub struct Reloading {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Reloading {
    /// Asks both threads to stop, without waiting.
    pub fn signal(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Stops both threads and waits for them (a second at most).
    pub fn stop(self) {
        self.signal();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// What the plugin stage has done to versions since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// New versions swapped in.
    pub swaps: u64,
    /// Versions rolled back after failing on probation.
    pub rollbacks: u64,
}

impl Processor {
    /// Admits and loads every plugin and the router, and starts watching
    /// them for new versions.
    pub fn start(
        engine: &PluginEngine,
        setup: PluginSetup<'_>,
        stamping: Stamping,
    ) -> Result<(Processor, Reloading), PipelineError> {
        let mut chain = Chain::new(
            setup.settings.canary_events,
            setup.settings.canary_failure_ratio,
        );
        let load = |p: &PluginConfig| {
            let admitted = admit(engine, p, setup.trust, setup.state_dir)?;
            let plugin = TransformerPlugin::load(engine, &admitted.spec).map_err(|source| {
                PipelineError::Plugin {
                    name: p.name.clone(),
                    source,
                }
            })?;
            Ok::<_, PipelineError>((admitted, plugin))
        };
        for (i, p) in setup.plugins.iter().enumerate() {
            let (admitted, plugin) = load(p)?;
            chain.push(p.name.clone(), plugin, &admitted);
            if let Some(candidate) = p.shadow() {
                let (admitted, plugin) = load(&candidate)?;
                let shadow = Shadow::new(plugin, admitted.version, setup.state_dir, &p.name);
                chain.set_shadow(i, shadow);
            }
        }
        let router = match (&setup.router.plugin, &setup.router.template) {
            (Some(p), _) => {
                let admitted = admit(engine, p, setup.trust, setup.state_dir)?;
                let plugin = RouterPlugin::load(engine, &admitted.spec).map_err(|source| {
                    PipelineError::Plugin {
                        name: p.name.clone(),
                        source,
                    }
                })?;
                chain.set_router(p.name.clone(), plugin, &admitted);
                Router::Plugin
            }
            (None, template) => Router::Template(
                Template::parse(template.as_deref().unwrap_or(Template::DEFAULT))
                    .map_err(|problems| PipelineError::Router(problems.join("; ")))?,
            ),
        };
        // Hot reload: a watcher thread prepares new versions; the admin
        // socket asks it to look now.
        let (swap_tx, swap_rx) = mpsc::channel::<Swap>();
        let (request_tx, request_rx) = mpsc::channel::<ReloadRequest>();
        let stop = Arc::new(AtomicBool::new(false));
        // In the order of `chain.versions()`: the transformers, the
        // router, then the shadow candidates.
        let watched = (setup.plugins.iter().cloned().enumerate())
            .map(|(i, p)| (p, Role::Transformer(i)))
            .chain(setup.router.plugin.clone().map(|p| (p, Role::Router)))
            .chain(
                (setup.plugins.iter().enumerate())
                    .filter_map(|(i, p)| Some((p.shadow()?, Role::Shadow(i)))),
            )
            .collect();
        let reloader = Reloader {
            engine: engine.clone(),
            plugins: watched,
            trust: setup.trust.clone(),
            state_dir: setup.state_dir.to_owned(),
            versions: chain.versions(),
            swaps: swap_tx,
            requests: request_rx,
            watch: setup.settings.watch_plugins,
            stop: Arc::clone(&stop),
        };
        let reloader = std::thread::Builder::new()
            .name("weir-reloader".into())
            .spawn(move || reloader.run())
            .map_err(|_| PipelineError::Stage("reloader"))?;
        std::fs::create_dir_all(setup.state_dir).map_err(PipelineError::Admin)?;
        let admin = serve_admin(setup.state_dir, request_tx, Arc::clone(&stop))
            .map_err(PipelineError::Admin)?;
        Ok((
            Processor {
                chain,
                router,
                swaps: swap_rx,
                stamping,
            },
            Reloading {
                stop,
                threads: vec![reloader, admin],
            },
        ))
    }

    /// The plugins with their versions and probation state, and the
    /// swaps and rollbacks so far.
    pub fn plugin_states(&self) -> (Vec<crate::reload::PluginState>, Tally) {
        (
            self.chain.states(),
            Tally {
                swaps: self.chain.swaps(),
                rollbacks: self.chain.rollbacks(),
            },
        )
    }

    /// Each plugin's calls and failures since the stage started.
    pub fn plugin_calls(&self) -> &[crate::reload::PluginCalls] {
        self.chain.calls()
    }

    /// Swaps in the versions the reloader has ready (call only at a
    /// transaction boundary): transformers and the router plugin alike.
    pub fn take_swaps(&mut self) {
        while let Ok(swap) = self.swaps.try_recv() {
            self.chain.swap(swap);
        }
    }

    /// The same plugins and router with their own instances, for another
    /// worker of the plugin stage (see [`Chain::replica`]). A replica
    /// takes no new versions itself: the stage replaces it with a fresh
    /// replica when this processor's versions change.
    pub fn replica(&self) -> Processor {
        Processor {
            chain: self.chain.replica(),
            router: self.router.clone(),
            // Nothing sends on it.
            swaps: mpsc::channel().1,
            stamping: self.stamping,
        }
    }

    /// Becomes `fresh` (a newer replica), keeping the call counts.
    pub fn replace_with(&mut self, mut fresh: Processor) {
        fresh.chain.keep_calls(&mut self.chain);
        *self = fresh;
    }

    /// Whether every batch must go through this processor in order
    /// ([`Chain::needs_order`]).
    pub fn needs_order(&self) -> bool {
        self.chain.needs_order()
    }

    /// Changes whenever the running versions change.
    pub fn generation(&self) -> u64 {
        self.chain.generation()
    }

    /// Whether there is any plugin to run (a router template alone is
    /// cheaper to render than to hand to another thread).
    pub fn has_plugins(&self) -> bool {
        !self.chain.is_empty()
    }

    /// Runs one batch through the chain and the router into `routed`.
    /// Waiting versions are swapped in first when the batch starts at a
    /// transaction boundary (`at_boundary`). A version on probation that
    /// fails too often is rolled back and the batch processed again,
    /// whole, by the version before it.
    pub fn run(&mut self, events: Vec<ChangeEvent>, at_boundary: bool, routed: &mut RoutedBatch) {
        if at_boundary {
            self.take_swaps();
        }
        let keep = self.chain.on_probation().then(|| events.clone());
        let (mut events, mut dead, rolled_back) = self.chain.run(events);
        if rolled_back && let Some(input) = keep {
            // The batch is processed again, whole, by the restored version.
            (events, dead, _) = self.chain.run(input);
        }
        let stamping = self.stamping;
        let restamp = move |events: &mut [ChangeEvent], versions: Option<String>| {
            stamp(events, versions, stamping);
        };
        restamp(&mut events, self.chain.stamp());
        routed.dead.extend(dead.into_iter().map(dead_letter));
        match &self.router {
            Router::Template(t) => routed.extend(events, |event, d| t.render_into(event, d)),
            Router::Plugin if !events.is_empty() => {
                let routes = self.chain.route(&mut events, restamp);
                for (event, route) in events.into_iter().zip(routes) {
                    match route {
                        Ok(destinations) => {
                            // Fanned out in the order the router named them.
                            if let Some((last, rest)) = destinations.split_last() {
                                for d in rest {
                                    routed.push(d, event.clone());
                                }
                                routed.push(last, event);
                            }
                        }
                        Err(failure) => routed.dead.push(dead_letter(failure)),
                    }
                }
            }
            Router::Plugin => {}
        }
    }
}

/// Records which plugin versions processed the events.
fn stamp(events: &mut [ChangeEvent], versions: Option<String>, stamping: Stamping) {
    let Some(versions) = versions.map(Name::from) else {
        return;
    };
    for e in events {
        e.source.plugins = match (stamping, e.source.plugins.take()) {
            (Stamping::Append, Some(earlier)) if !earlier.is_empty() => {
                Some(smol_str::format_smolstr!("{earlier},{versions}"))
            }
            _ => Some(versions.clone()),
        };
    }
}

/// A plugin's failure as a dead letter.
fn dead_letter(failure: EventFailure) -> DeadLetter {
    DeadLetter {
        failed_at: FailedAt::Plugin(failure.plugin),
        kind: failure.kind.label().to_owned(),
        reason: failure.message,
        event: *failure.event,
    }
}
