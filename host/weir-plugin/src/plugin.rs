//! A loaded plugin of one world, and the fault isolation around its calls:
//! recycle the instance after a trap, bisect the batch to find the event
//! that caused it.

use std::sync::Arc;

use tracing::{info, warn};
use wasmtime::component::{Component, InstancePre};
use wasmtime::{Engine, Store, Trap};
use weir_core::wire::encode_batch_refs;
use weir_core::{ChangeEvent, Conflict, Resolution};

use crate::bindings::{resolver, router, transformer, types as wit};
use crate::convert;
use crate::engine::{EPOCH_TICK, PluginEngine};
use crate::error::{CallFailure, EventFailure, FailureKind, LoadError};
use crate::host::{self, HostState};
use crate::inspect::{ComponentInfo, World};
use crate::limits::{PluginLimits, PluginSpec};

/// One call of a plugin over an encoded batch.
type BatchCall<'a, P, R> = dyn FnMut(&mut P, &Vec<u8>) -> Result<Vec<R>, CallFailure> + 'a;

/// Most events in one call into the guest; a larger batch is passed in
/// parts. The deadline (`deadline_ms`) is per call, so this bounds the
/// work a call must finish in time whatever the pipeline merged (up to
/// 4096 events): at the Python pii-mask's 110–140 µs an event, a
/// 4096-event call takes about half the default 1 s deadline on an idle
/// machine, and a timeout costs the call, a new instance and the call
/// again in halves. It also bounds the guest memory a call needs. The
/// files bench showed no change in speed or memory from it.
pub const MAX_CALL_EVENTS: usize = 1024;

/// The result for one input event.
pub type EventResult<T> = Result<T, EventFailure>;

/// What differs between worlds: how to pre-link, instantiate and init.
pub trait WorldBinding {
    const WORLD: World;
    type Pre: Clone;
    type Bindings;
    fn pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre>;
    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Self::Bindings>;
    fn init(
        b: &Self::Bindings,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Result<(), String>>;
}

/// Marker for the transformer world.
pub enum TransformerWorld {}
/// Marker for the router world.
pub enum RouterWorld {}
/// Marker for the resolver world.
pub enum ResolverWorld {}

macro_rules! world_binding {
    ($marker:ty, $world:expr, $module:ident, $bindings:ident, $pre:ident) => {
        impl WorldBinding for $marker {
            const WORLD: World = $world;
            type Pre = $module::$pre<HostState>;
            type Bindings = $module::$bindings;
            fn pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
                $module::$pre::new(pre)
            }
            fn instantiate(
                pre: &Self::Pre,
                store: &mut Store<HostState>,
            ) -> wasmtime::Result<Self::Bindings> {
                pre.instantiate(store)
            }
            fn init(
                b: &Self::Bindings,
                store: &mut Store<HostState>,
            ) -> wasmtime::Result<Result<(), String>> {
                b.call_init(store)
            }
        }
    };
}

world_binding!(
    TransformerWorld,
    World::Transformer,
    transformer,
    Transformer,
    TransformerPre
);
world_binding!(RouterWorld, World::Router, router, Router, RouterPre);
world_binding!(
    ResolverWorld,
    World::Resolver,
    resolver,
    Resolver,
    ResolverPre
);

/// A transformer plugin: batch in, events out.
pub type TransformerPlugin = Plugin<TransformerWorld>;
/// A router plugin: event in, destination names out.
pub type RouterPlugin = Plugin<RouterWorld>;
/// A resolver plugin: conflict in, decision out.
pub type ResolverPlugin = Plugin<ResolverWorld>;

/// A live instance: its store and exports.
struct Live<W: WorldBinding> {
    store: Store<HostState>,
    bindings: W::Bindings,
}

/// A loaded plugin. Calls are serial (`&mut self`); run one per thread.
pub struct Plugin<W: WorldBinding> {
    name: Arc<str>,
    config_json: Arc<str>,
    limits: PluginLimits,
    engine: Engine,
    pre: W::Pre,
    info: ComponentInfo,
    live: Option<Live<W>>,
    recycles: u64,
}

impl<W: WorldBinding> std::fmt::Debug for Plugin<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("world", &W::WORLD)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl<W: WorldBinding> Plugin<W> {
    /// Loads, checks and instantiates the plugin, and runs its `init`.
    /// Every way this can fail is a [`LoadError`] that names the plugin.
    pub fn load(engine: &PluginEngine, spec: &PluginSpec) -> Result<Self, LoadError> {
        let name = spec.name.as_str();
        let loaded = engine.load(name, &spec.path, spec.limits.fuel.is_some())?;
        loaded.info.check(name, W::WORLD, &spec.grants)?;
        let pre = prelink::<W>(name, &loaded.engine, &loaded.component)?;
        let mut plugin = Plugin {
            name: name.into(),
            config_json: spec.config.to_string().into(),
            limits: spec.limits.clone(),
            engine: loaded.engine,
            pre,
            info: loaded.info,
            live: None,
            recycles: 0,
        };
        plugin.instance().map_err(|f| match f.kind {
            FailureKind::PluginReported => LoadError::Init {
                name: name.to_owned(),
                reason: f.message,
            },
            _ => LoadError::Instantiate {
                name: name.to_owned(),
                reason: f.message,
            },
        })?;
        info!(plugin = name, world = %W::WORLD, sha256 = %plugin.info.sha256, "Plugin loaded.");
        Ok(plugin)
    }

    /// Another instance of this plugin, for another thread: it shares the
    /// compiled component, config and limits, and instantiates (running
    /// `init`) on its first call. `init` already succeeded once for this
    /// component and config; should it fail in the fork, that call's events
    /// fail like any other fault, and the next call tries again.
    pub fn fork(&self) -> Self {
        Plugin {
            name: Arc::clone(&self.name),
            config_json: Arc::clone(&self.config_json),
            limits: self.limits.clone(),
            engine: self.engine.clone(),
            pre: self.pre.clone(),
            info: self.info.clone(),
            live: None,
            recycles: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn info(&self) -> &ComponentInfo {
        &self.info
    }

    /// How many times an instance was thrown away after a fault.
    pub fn recycles(&self) -> u64 {
        self.recycles
    }

    /// The live instance, instantiating (and initialising) one if needed.
    fn instance(&mut self) -> Result<&mut Live<W>, CallFailure> {
        if self.live.is_none() {
            let state = HostState::new(
                Arc::clone(&self.name),
                Arc::clone(&self.config_json),
                self.limits.memory_bytes(),
            );
            let mut store = Store::new(&self.engine, state);
            store.limiter(|s| &mut s.limiter);
            store.epoch_deadline_trap();
            arm(&self.limits, &mut store);
            let bindings = W::instantiate(&self.pre, &mut store)
                .map_err(|e| classify(&e, store.data(), &self.limits))?;
            match W::init(&bindings, &mut store) {
                Ok(Ok(())) => {}
                Ok(Err(reason)) => {
                    return Err(CallFailure {
                        kind: FailureKind::PluginReported,
                        message: reason,
                    });
                }
                Err(e) => return Err(classify(&e, store.data(), &self.limits)),
            }
            self.live = Some(Live { store, bindings });
        }
        Ok(self.live.as_mut().expect("instance was just created"))
    }

    /// Calls into the instance; on a fault, throws the instance away.
    fn call<R>(
        &mut self,
        f: impl FnOnce(&W::Bindings, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallFailure> {
        self.instance()?;
        let live = self.live.as_mut().expect("instance exists");
        arm(&self.limits, &mut live.store);
        match f(&live.bindings, &mut live.store) {
            Ok(r) => Ok(r),
            Err(e) => {
                let failure = classify(&e, live.store.data(), &self.limits);
                warn!(plugin = %self.name, kind = %failure.kind, reason = %failure.message, "Plugin faulted; recycling its instance.");
                self.live = None;
                self.recycles += 1;
                Err(failure)
            }
        }
    }

    /// Runs `call` over `events`; when a call fails, splits the events in
    /// halves and retries each, down to single events, so that only the
    /// events that cause the failure fail.
    fn bisect<R>(
        &mut self,
        events: &[ChangeEvent],
        call: &mut BatchCall<'_, Self, R>,
    ) -> Vec<Result<R, CallFailure>> {
        let mut out = Vec::with_capacity(events.len());
        for chunk in events.chunks(MAX_CALL_EVENTS) {
            self.bisect_into(chunk, call, &mut out);
        }
        out
    }

    fn bisect_into<R>(
        &mut self,
        events: &[ChangeEvent],
        call: &mut BatchCall<'_, Self, R>,
        out: &mut Vec<Result<R, CallFailure>>,
    ) {
        if events.is_empty() {
            return;
        }
        let batch = encode_batch_refs(events.iter());
        let failure = match call(self, &batch) {
            Ok(results) if results.len() == events.len() => {
                out.extend(results.into_iter().map(Ok));
                return;
            }
            Ok(results) => CallFailure {
                kind: FailureKind::Contract,
                message: format!(
                    "returned {} results for a batch of {} events",
                    results.len(),
                    events.len()
                ),
            },
            Err(f) => f,
        };
        if events.len() == 1 {
            out.push(Err(failure));
            return;
        }
        let (left, right) = events.split_at(events.len() / 2);
        self.bisect_into(left, call, out);
        self.bisect_into(right, call, out);
    }

    fn event_failure(&self, index: usize, event: Box<ChangeEvent>, f: CallFailure) -> EventFailure {
        EventFailure {
            plugin: self.name.to_string(),
            index,
            kind: f.kind,
            message: f.message,
            event,
        }
    }
}

impl Plugin<TransformerWorld> {
    /// Transforms a batch: per input event, in order, the events it became
    /// or why it failed. A fault on one event does not fail the others.
    pub fn transform(&mut self, events: Vec<ChangeEvent>) -> Vec<EventResult<Vec<ChangeEvent>>> {
        let outcomes = self.bisect(&events, &mut |p, batch| {
            p.call(|b, store| b.call_transform(store, batch))
        });
        events
            .into_iter()
            .zip(outcomes)
            .enumerate()
            .map(|(index, (event, outcome))| {
                let failure = match outcome {
                    Ok(outcome) => match apply_outcome(event, outcome) {
                        Ok(events) => return Ok(events),
                        Err((event, f)) => return Err(self.event_failure(index, event, f)),
                    },
                    Err(f) => f,
                };
                Err(self.event_failure(index, Box::new(event), failure))
            })
            .collect()
    }
}

/// Turns one outcome into output events; on failure gives the event back.
fn apply_outcome(
    mut event: ChangeEvent,
    outcome: wit::Outcome,
) -> Result<Vec<ChangeEvent>, (Box<ChangeEvent>, CallFailure)> {
    match outcome {
        wit::Outcome::Keep => Ok(vec![event]),
        wit::Outcome::Drop => Ok(Vec::new()),
        wit::Outcome::Patch(patches) => {
            let patches: Vec<_> = patches.into_iter().map(convert::patch_from_wit).collect();
            // A bad patch leaves the event as it arrived, for the
            // dead-letter record.
            match event.apply_patches_owned(patches) {
                Ok(()) => Ok(vec![event]),
                Err(e) => Err((
                    Box::new(event),
                    CallFailure {
                        kind: FailureKind::Contract,
                        message: e.to_string(),
                    },
                )),
            }
        }
        wit::Outcome::Replace(events) => {
            Ok(events.into_iter().map(convert::event_from_wit).collect())
        }
        wit::Outcome::Failed(message) => Err((
            Box::new(event),
            CallFailure {
                kind: FailureKind::PluginReported,
                message,
            },
        )),
    }
}

impl Plugin<RouterWorld> {
    /// Routes a batch: per input event, in order, its destination names or
    /// why it could not be routed.
    pub fn route(&mut self, events: &[ChangeEvent]) -> Vec<EventResult<Vec<String>>> {
        let routes = self.bisect(events, &mut |p, batch| {
            p.call(|b, store| b.call_route(store, batch))
        });
        routes
            .into_iter()
            .enumerate()
            .map(|(index, route)| {
                let failure = match route {
                    Ok(wit::Route::To(to)) => return Ok(to),
                    Ok(wit::Route::Failed(message)) => CallFailure {
                        kind: FailureKind::PluginReported,
                        message,
                    },
                    Err(f) => f,
                };
                Err(self.event_failure(index, Box::new(events[index].clone()), failure))
            })
            .collect()
    }
}

impl Plugin<ResolverWorld> {
    /// Settles one conflict. A failure carries the incoming event.
    pub fn resolve(&mut self, conflict: &Conflict) -> EventResult<Resolution> {
        let arg = convert::conflict_to_wit(conflict);
        let result = self
            .call(|b, store| b.call_resolve(store, &arg))
            .and_then(|r| {
                r.map_err(|message| CallFailure {
                    kind: FailureKind::PluginReported,
                    message,
                })
            });
        result
            .map(convert::resolution_from_wit)
            .map_err(|f| self.event_failure(0, Box::new(conflict.incoming.clone()), f))
    }
}

/// Sets the deadline and fuel budget for the next call.
fn arm(limits: &PluginLimits, store: &mut Store<HostState>) {
    let ticks = limits
        .deadline()
        .as_millis()
        .div_ceil(EPOCH_TICK.as_millis())
        .max(1);
    store.set_epoch_deadline(ticks as u64);
    if let Some(fuel) = limits.fuel {
        // Plugins with a fuel budget run on the metered engine.
        store
            .set_fuel(fuel)
            .expect("fuel is enabled for plugins with a fuel budget");
    }
}

fn prelink<W: WorldBinding>(
    name: &str,
    engine: &Engine,
    component: &Component,
) -> Result<W::Pre, LoadError> {
    let instantiate_err = |e: wasmtime::Error| LoadError::Instantiate {
        name: name.to_owned(),
        reason: format!("{e:#}"),
    };
    let linker = host::linker(engine).map_err(instantiate_err)?;
    let pre = linker.instantiate_pre(component).map_err(instantiate_err)?;
    W::pre(pre).map_err(|e| LoadError::ExportMismatch {
        name: name.to_owned(),
        world: W::WORLD,
        reason: format!("{e:#}"),
    })
}

/// Names what went wrong in a failed call.
fn classify(err: &wasmtime::Error, state: &HostState, limits: &PluginLimits) -> CallFailure {
    if state.limiter.hit {
        return CallFailure {
            kind: FailureKind::OutOfMemory,
            message: format!("exceeded its memory limit of {} MiB", limits.memory_mb),
        };
    }
    let (kind, message) = match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => (
            FailureKind::Timeout,
            format!(
                "did not finish within its deadline of {} ms",
                limits.deadline_ms
            ),
        ),
        Some(Trap::OutOfFuel) => (
            FailureKind::OutOfFuel,
            format!("used up its fuel budget of {}", limits.fuel.unwrap_or(0)),
        ),
        Some(trap) => (
            FailureKind::Trap,
            match state.last_stderr() {
                Some(panic) => format!("{trap}: {panic}"),
                None => trap.to_string(),
            },
        ),
        None => (FailureKind::Trap, format!("{err:#}")),
    };
    CallFailure { kind, message }
}
