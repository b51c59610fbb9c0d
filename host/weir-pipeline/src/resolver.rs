//! The resolver plugin of an active-active sink (`[sinks.conflicts]`),
//! admitted by the trust policy like every plugin and handed to the sink
//! as a [`ResolverFactory`].

use std::path::PathBuf;
use std::sync::Arc;

use weir_connect::apply::{ConflictSetup, Resolve, ResolverFactory};
use weir_core::{Conflict, Resolution, StageError};
use weir_plugin::{PluginEngine, ResolverPlugin};

use crate::admission::admit;
use crate::config::{ConflictsConfig, PluginConfig, TrustConfig};

/// Loads the resolver each time the sink starts.
struct Factory {
    engine: PluginEngine,
    plugin: PluginConfig,
    trust: TrustConfig,
    state_dir: PathBuf,
}

impl std::fmt::Debug for Factory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Factory")
            .field("plugin", &self.plugin.name)
            .finish_non_exhaustive()
    }
}

impl ResolverFactory for Factory {
    fn make(&self) -> Result<Box<dyn Resolve>, StageError> {
        let admitted = admit(&self.engine, &self.plugin, &self.trust, &self.state_dir)
            .map_err(|e| StageError::operator(e.to_string()))?;
        let plugin = ResolverPlugin::load(&self.engine, &admitted.spec)
            .map_err(|e| StageError::operator(e.to_string()))?;
        Ok(Box::new(Loaded {
            plugin,
            version: admitted.version,
        }))
    }
}

struct Loaded {
    plugin: ResolverPlugin,
    version: String,
}

impl Resolve for Loaded {
    fn version(&self) -> &str {
        &self.version
    }

    fn resolve(&mut self, conflict: &Conflict) -> Result<Resolution, String> {
        self.plugin
            .resolve(conflict)
            .map_err(|f| format!("{} ({})", f.message, f.kind))
    }
}

/// What sink `sink` with `conflicts` needs to resolve them.
pub fn setup(
    engine: &PluginEngine,
    conflicts: &ConflictsConfig,
    sink: &str,
    trust: &TrustConfig,
    state_dir: &std::path::Path,
) -> ConflictSetup {
    ConflictSetup {
        region: conflicts.region.clone(),
        source_region: conflicts.source_region.clone(),
        version_column: conflicts.version_column.clone(),
        log: conflicts.log_path(state_dir, sink),
        resolver: Arc::new(Factory {
            engine: engine.clone(),
            plugin: conflicts.resolver.clone(),
            trust: trust.clone(),
            state_dir: state_dir.to_owned(),
        }),
    }
}
