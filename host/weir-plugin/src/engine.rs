//! The wasmtime engine(s) every plugin of a host runs on: pooling
//! allocation, epoch interruption driven by a ticker thread, and a cache of
//! compiled components keyed by content hash.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tracing::{debug, warn};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::LoadError;
use crate::inspect::ComponentInfo;

/// How often the epoch advances. Deadlines are rounded up to this.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Host-wide engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Instances the pooling allocator holds slots for.
    pub max_instances: u32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            cache_dir: default_cache_dir(),
            max_instances: 256,
        }
    }
}

/// `$WEIR_CACHE_DIR`, else `$XDG_CACHE_HOME/weir/components`, else
/// `~/.cache/weir/components`.
fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WEIR_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = crate::local::user_dir(crate::local::UserDir::Cache, &crate::local::process_env)?;
    Some(base.join("weir").join("components"))
}

/// The engines plugins run on. Cheap to clone; one per host.
#[derive(Clone)]
pub struct PluginEngine {
    inner: Arc<Inner>,
}

struct Inner {
    options: EngineOptions,
    /// For plugins without a fuel budget.
    plain: Engine,
    /// For plugins with a fuel budget: fuel metering slows every plugin
    /// on an engine, so it gets an engine of its own, made on first use.
    metered: OnceLock<Result<Engine, String>>,
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// A compiled component and what it is.
#[derive(Clone)]
pub(crate) struct Loaded {
    pub engine: Engine,
    pub component: Component,
    pub info: ComponentInfo,
}

impl PluginEngine {
    pub fn new(options: EngineOptions) -> Result<Self, String> {
        let plain = build_engine(&options, false)?;
        Ok(PluginEngine {
            inner: Arc::new(Inner {
                options,
                plain,
                metered: OnceLock::new(),
            }),
        })
    }

    /// The engine for a plugin with (or without) a fuel budget.
    pub(crate) fn engine(&self, fuel: bool) -> Result<Engine, String> {
        if !fuel {
            return Ok(self.inner.plain.clone());
        }
        self.inner
            .metered
            .get_or_init(|| build_engine(&self.inner.options, true))
            .clone()
    }

    /// Compiles (or fetches from the cache) a component and says what it is,
    /// without instantiating it.
    pub fn inspect(&self, name: &str, path: &Path) -> Result<ComponentInfo, LoadError> {
        Ok(self.load(name, path, false)?.info)
    }

    /// Reads, compiles (or fetches from the cache) and inspects a component.
    pub(crate) fn load(&self, name: &str, path: &Path, fuel: bool) -> Result<Loaded, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            name: name.to_owned(),
            path: path.to_owned(),
            source,
        })?;
        let not_component = |detail: String| LoadError::NotAComponent {
            name: name.to_owned(),
            path: path.to_owned(),
            detail,
        };
        // A component starts with the wasm magic and layer 1; a core module
        // has layer 0. Telling them apart here gives a clearer error.
        match bytes.get(..8) {
            Some([0, b'a', b's', b'm', _, _, 1, 0]) => {}
            Some([0, b'a', b's', b'm', _, _, 0, 0]) => {
                return Err(not_component(
                    " (it is a core WebAssembly module, not a component)".to_owned(),
                ));
            }
            _ => return Err(not_component(" (no WebAssembly header)".to_owned())),
        }
        let engine = self.engine(fuel).map_err(|reason| LoadError::Compile {
            name: name.to_owned(),
            reason,
        })?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let component =
            self.compile_cached(&engine, &bytes, &sha256)
                .map_err(|e| LoadError::Compile {
                    name: name.to_owned(),
                    reason: format!("{e:#}"),
                })?;
        let info = ComponentInfo::read(&engine, &component, bytes.len() as u64, sha256);
        Ok(Loaded {
            engine,
            component,
            info,
        })
    }

    fn compile_cached(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha256: &str,
    ) -> wasmtime::Result<Component> {
        let Some(dir) = &self.inner.options.cache_dir else {
            return Component::new(engine, bytes);
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let file = dir.join(format!("{sha256}-{:016x}.cwasm", h.finish()));
        if file.exists() {
            // SAFETY: the file was written by `Component::serialize` of an
            // engine with the same compatibility hash (it is in the name),
            // into a directory only this host writes.
            match unsafe { Component::deserialize_file(engine, &file) } {
                Ok(c) => {
                    debug!(path = %file.display(), "Compiled component loaded from cache.");
                    return Ok(c);
                }
                Err(e) => {
                    warn!(path = %file.display(), error = %e, "Cached component unusable; compiling again.")
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = crate::local::write_whole(&file, &component.serialize()?) {
            warn!(path = %file.display(), error = %e, "Could not cache the compiled component.");
        }
        Ok(component)
    }
}

fn build_engine(options: &EngineOptions, fuel: bool) -> Result<Engine, String> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(options.max_instances)
        .total_core_instances(options.max_instances * 4)
        .total_memories(options.max_instances * 2)
        .total_tables(options.max_instances * 4)
        .max_memories_per_component(8)
        .max_tables_per_component(16)
        .max_core_instances_per_component(64)
        .max_memory_size(4 << 30);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .consume_fuel(fuel)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // For profiling: wasmtime writes /tmp/perf-<pid>.map, so that `perf
    // report` names the functions of compiled plugins (docs/benchmarks.md).
    if std::env::var_os("WEIR_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let engine =
        Engine::new(&config).map_err(|e| format!("cannot create the Wasm engine: {e:#}"))?;
    start_epoch_ticker(&engine);
    Ok(engine)
}

/// Advances the engine's epoch every [`EPOCH_TICK`]. The thread holds only
/// a weak reference and ends when the engine is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("weir-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .expect("spawning the epoch ticker thread");
}
