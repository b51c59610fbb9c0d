//! Whether a configured plugin may load: the trust policy applied to its
//! bundle (or bare component) before anything of it runs.

use std::path::{Path, PathBuf};

use weir_plugin::bundle::{Bundle, is_bundle};
use weir_plugin::{PluginEngine, PluginSpec};

use crate::config::{PluginConfig, TrustConfig};

/// A plugin the trust policy refused, or whose file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("plugin `{plugin}` ({path}) refused: {reason}")]
pub struct AdmissionError {
    pub plugin: String,
    pub path: String,
    pub reason: String,
}

/// A plugin the trust policy let through.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub spec: PluginSpec,
    /// `name@version+digest` for a bundle, `file+digest` for a bare
    /// component: what output events are stamped with.
    pub version: String,
    /// The key that signed the bundle, if signed.
    pub signer: Option<String>,
}

/// Applies `trust` to `plugin` and returns the spec to load. A bundle's
/// component is verified, self-tested against the bundle's fixtures, and
/// extracted to `<state_dir>/plugins/<digest>.wasm`
/// (content-addressed, so versions never overwrite each other).
pub fn admit(
    engine: &PluginEngine,
    plugin: &PluginConfig,
    trust: &TrustConfig,
    state_dir: &Path,
) -> Result<Admitted, AdmissionError> {
    let refuse = |reason: String| AdmissionError {
        plugin: plugin.name.clone(),
        path: plugin.path.display().to_string(),
        reason,
    };
    let policy = trust.policy();
    let mut spec = plugin.spec();
    if is_bundle(&plugin.path) {
        let bundle = Bundle::read(&plugin.path).map_err(|e| refuse(e.to_string()))?;
        let signer = policy
            .admit(&bundle, &plugin.capabilities())
            .map_err(|e| refuse(e.to_string()))?
            .map(|key| key.to_string());
        let digest = bundle.digest();
        if let Some(pinned) = &plugin.locked_digest
            && *pinned != digest
        {
            return Err(refuse(format!(
                "weir.lock pins {pinned} for `{}`, but the store's bundle has {digest}: the file \
                 changed after it was installed; install it again with `weir plugin install`",
                plugin.plugin.as_deref().unwrap_or_default()
            )));
        }
        let dir = state_dir.join("plugins");
        let target: PathBuf = dir.join(format!("{}.wasm", digest.trim_start_matches("sha256:")));
        if !target.exists() {
            weir_plugin::local::write_whole(&target, &bundle.component)
                .map_err(|e| refuse(format!("cannot extract the component: {e}")))?;
        }
        // A bundle that carries fixtures must pass them before it runs on
        // real changes.
        weir_plugin::bundle::self_test(engine, &bundle, &target, &plugin.capabilities())
            .map_err(|e| refuse(format!("its self-test failed: {e}")))?;
        spec.path = target;
        let m = &bundle.manifest;
        let version = format!("{}@{}+{}", m.name, m.version, short(&digest));
        Ok(Admitted {
            spec,
            version,
            signer,
        })
    } else {
        let bytes = std::fs::read(&plugin.path).map_err(|e| refuse(e.to_string()))?;
        policy
            .admit_bare(&bytes)
            .map_err(|e| refuse(e.to_string()))?;
        let stem = plugin
            .path
            .file_stem()
            .map_or_else(|| plugin.name.clone(), |s| s.to_string_lossy().into_owned());
        let version = format!("{stem}+{}", short(&weir_plugin::bundle::digest(&bytes)));
        Ok(Admitted {
            spec,
            version,
            signer: None,
        })
    }
}

/// The first 12 hex digits of a `sha256:` digest.
fn short(digest: &str) -> &str {
    let hex = digest.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}
