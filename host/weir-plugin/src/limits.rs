//! What a plugin is and what it may use: its file, config, limits and the
//! capabilities the operator grants it.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::inspect::Capability;

/// Per-plugin resource limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginLimits {
    /// Most linear memory an instance may grow to, in MiB.
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
    /// Longest one call (one batch) may run, in milliseconds, before it is
    /// interrupted and the batch bisected.
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: u64,
    /// Optional instruction budget per call (wasmtime fuel). Deterministic,
    /// unlike the deadline, but slows the plugin a little.
    #[serde(default)]
    pub fuel: Option<u64>,
}

const fn default_memory_mb() -> u64 {
    64
}

const fn default_deadline_ms() -> u64 {
    1_000
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            memory_mb: default_memory_mb(),
            deadline_ms: default_deadline_ms(),
            fuel: None,
        }
    }
}

impl PluginLimits {
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }

    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }
}

/// Everything needed to load one plugin.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// The name logs and errors use for this plugin.
    pub name: String,
    /// Path to the component (`.wasm`).
    pub path: PathBuf,
    /// The plugin's own configuration, handed to it through `host.config`.
    pub config: serde_json::Value,
    pub limits: PluginLimits,
    /// Capabilities the operator grants beyond the default (none).
    pub grants: Vec<Capability>,
}

impl PluginSpec {
    /// A spec with an empty config, default limits and no grants.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        PluginSpec {
            name: name.into(),
            path: path.into(),
            config: serde_json::Value::Object(Default::default()),
            limits: PluginLimits::default(),
            grants: Vec::new(),
        }
    }

    pub fn with_config(mut self, config: serde_json::Value) -> Self {
        self.config = config;
        self
    }

    pub fn with_limits(mut self, limits: PluginLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn with_grants(mut self, grants: Vec<Capability>) -> Self {
        self.grants = grants;
        self
    }
}
