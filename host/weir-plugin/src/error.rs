//! Errors: a plugin that cannot be loaded, and an event a plugin failed on.

use std::path::PathBuf;

use weir_core::ChangeEvent;

use crate::inspect::{Capability, World};

/// A plugin could not be loaded. Each case says what is wrong and, where
/// there is one, what the operator can do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read plugin `{name}` from {path}: {source}")]
    Read {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "plugin `{name}` ({path}) is not a WebAssembly component{detail}; build plugins for wasm32-wasip2 (`weir plugin build DIR`)"
    )]
    NotAComponent {
        name: String,
        path: PathBuf,
        detail: String,
    },
    #[error("plugin `{name}` failed to compile: {reason}")]
    Compile { name: String, reason: String },
    #[error(
        "plugin `{name}` implements the `{found}` world, but is configured as a {expected}; use it where a {found} is expected"
    )]
    WrongWorld {
        name: String,
        expected: World,
        found: World,
    },
    #[error(
        "plugin `{name}` does not implement any Weir world: it exports none of `transform`, `route`, `resolve` (its exports: {exports})"
    )]
    NoWorld { name: String, exports: String },
    #[error("plugin `{name}` implements the `{world}` world but is missing the export `{export}`")]
    MissingExport {
        name: String,
        world: World,
        export: &'static str,
    },
    #[error("plugin `{name}` exports of the `{world}` world do not match the contract: {reason}")]
    ExportMismatch {
        name: String,
        world: World,
        reason: String,
    },
    #[error(
        "plugin `{name}` targets contract `{found}`, which this host does not support (supported: {supported})"
    )]
    UnsupportedContract {
        name: String,
        found: String,
        supported: String,
    },
    #[error(
        "plugin `{name}` imports `{import}`, which needs the `{capability}` capability; it is not granted (grant it with `grants = [\"{capability}\"]` in the plugin's pipeline config, or `--grant {capability}` with `weir plugin test`, if you trust it with that)"
    )]
    ForbiddenImport {
        name: String,
        import: String,
        capability: Capability,
    },
    #[error("plugin `{name}` imports `{import}`, which this host does not provide")]
    UnknownImport { name: String, import: String },
    #[error("plugin `{name}` could not be instantiated: {reason}")]
    Instantiate { name: String, reason: String },
    #[error("plugin `{name}` refused its configuration: {reason}")]
    Init { name: String, reason: String },
}

/// Why a plugin failed on an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The call ran past the plugin's deadline.
    Timeout,
    /// The plugin tried to grow its memory past its limit.
    OutOfMemory,
    /// The plugin used up its fuel budget.
    OutOfFuel,
    /// The plugin trapped (a panic, an `unreachable`, a bad memory access).
    Trap,
    /// The plugin reported a failure for this event itself.
    PluginReported,
    /// The plugin broke the contract (wrong number of results, a patch to
    /// a column that does not exist, a batch it could not decode).
    Contract,
}

impl FailureKind {
    /// A short, stable label for metrics and dead-letter records.
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::OutOfMemory => "out_of_memory",
            FailureKind::OutOfFuel => "out_of_fuel",
            FailureKind::Trap => "trap",
            FailureKind::PluginReported => "plugin_reported",
            FailureKind::Contract => "contract",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// A failure that is not yet tied to an event (one call failed).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CallFailure {
    pub kind: FailureKind,
    pub message: String,
}

/// One event a plugin failed on, with the reason: a dead-letter record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("plugin `{plugin}` failed on event {index} ({kind}): {message}")]
pub struct EventFailure {
    pub plugin: String,
    /// Position of the event in the batch it arrived in.
    pub index: usize,
    pub kind: FailureKind,
    pub message: String,
    /// The event as it was handed to the plugin (boxed: failures are rare,
    /// and a small `Err` keeps every `Ok` result small).
    pub event: Box<ChangeEvent>,
}
