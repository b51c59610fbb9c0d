//! The store state of a plugin instance and the host side of the
//! `weir:plugin/host` interface: logging and config. WASI is linked with an
//! empty context: no environment, no arguments, no preopened directories,
//! standard output discarded, standard error captured (it carries a Rust
//! guest's panic message, which then goes into the failure reason).

use std::sync::Arc;

use tracing::{debug, error, info, trace, warn};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::host::{Host, Level};

/// Most standard-error output kept per instance.
const STDERR_CAPACITY: usize = 64 * 1024;

pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    plugin: Arc<str>,
    config_json: Arc<str>,
    stderr: MemoryOutputPipe,
}

impl HostState {
    pub fn new(plugin: Arc<str>, config_json: Arc<str>, memory_limit: usize) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                limit: memory_limit,
                hit: false,
            },
            plugin,
            config_json,
            stderr,
        }
    }

    /// The last non-empty line the guest wrote to standard error (a Rust
    /// panic message ends up there).
    pub fn last_stderr(&self) -> Option<String> {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        // A Rust panic prints "panicked at FILE:LINE:COL:" then the message.
        let at = lines.iter().rposition(|l| l.contains("panicked at"))?;
        Some(lines[at..].join(" "))
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps linear memory and remembers whether the cap was hit, so a trap
/// that follows a refused `memory.grow` is reported as out-of-memory.
pub struct MemoryLimiter {
    limit: usize,
    pub hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            debug!(
                current,
                desired,
                limit = self.limit,
                "Plugin memory growth refused."
            );
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

impl crate::bindings::types::Host for HostState {}

impl Host for HostState {
    fn log(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        let plugin = &*self.plugin;
        let fields = FieldList(&fields);
        match level {
            Level::Trace => trace!(plugin, fields = %fields, "{message}"),
            Level::Debug => debug!(plugin, fields = %fields, "{message}"),
            Level::Info => info!(plugin, fields = %fields, "{message}"),
            Level::Warn => warn!(plugin, fields = %fields, "{message}"),
            Level::Error => error!(plugin, fields = %fields, "{message}"),
        }
    }

    fn config(&mut self) -> String {
        self.config_json.to_string()
    }
}

struct FieldList<'a>(&'a [(String, String)]);

impl std::fmt::Display for FieldList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        Ok(())
    }
}

/// A linker with the contract's host interface and inert WASI.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    crate::bindings::host::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    crate::bindings::types::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    Ok(linker)
}
