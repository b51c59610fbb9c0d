//! Plugins named by requirement (`plugin = "pii-mask@^1.2"`), resolved from
//! the local plugin store and pinned in `weir.lock` beside the config file,
//! so that a deploy runs the same bundles wherever it runs (as
//! `Cargo.lock` does for crates).
//!
//! A requirement the lock file has resolves to the version it pins, and
//! admission refuses the bundle if its digest is not the one pinned. A
//! requirement it lacks resolves to the newest installed version that
//! matches, and is added to it.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use weir_connect::Checker;
use weir_plugin::index::{Requirement, Store};

use super::PluginConfig;

/// The lock file's name, in the config file's directory.
pub const LOCK_FILE: &str = "weir.lock";

const HEADER: &str = "# Written by weir: the plugin versions the pipelines in this directory \
resolved,\n# pinned by digest. Keep it with the configs (commit it, like Cargo.lock). Remove\n# \
an entry to move to the newest installed version that matches.\n\n";

/// `weir.lock`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<Locked>,
}

/// One requirement and what it resolved to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locked {
    /// As written in the config (`pii-mask@^1.2`).
    pub requirement: String,
    pub name: String,
    pub version: String,
    /// `sha256:<hex>` of the bundle's component.
    pub digest: String,
}

/// Resolves the plugins named by `plugin = "..."` to bundles in the
/// store, setting their `path` and `locked_digest`; `field` gives each
/// plugin's config path for errors. Writes `weir.lock` when it learnt a
/// new requirement.
pub(super) fn resolve_requirements<'p>(
    plugins: impl Iterator<Item = (String, &'p mut PluginConfig)>,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    c: &mut Checker,
) {
    let wanted: Vec<(String, &mut PluginConfig)> =
        plugins.filter(|(_, p)| p.plugin.is_some()).collect();
    if wanted.is_empty() {
        return;
    }
    let lock_path = base_dir.join(LOCK_FILE);
    let mut lock = match std::fs::read_to_string(&lock_path) {
        Ok(text) => match toml::from_str::<LockFile>(&text) {
            Ok(lock) => lock,
            Err(e) => {
                c.err(
                    &wanted[0].0,
                    format!(
                        "{} is not a valid lock file ({}); remove it to resolve again",
                        lock_path.display(),
                        e.message()
                    ),
                );
                return;
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => LockFile::default(),
        Err(e) => {
            // Resolving afresh would silently drop the pins.
            c.err(
                &wanted[0].0,
                format!("cannot read {}: {e}", lock_path.display()),
            );
            return;
        }
    };
    let Some(store) = Store::from_env(env) else {
        c.err(
            &wanted[0].0,
            "no plugin store: set WEIR_PLUGIN_STORE (or HOME) to the directory `weir plugin install` fills",
        );
        return;
    };
    let mut learnt = false;
    for (field, p) in wanted {
        let text = p.plugin.clone().expect("filtered");
        let field = format!("{field}.plugin");
        if !p.path.as_os_str().is_empty() {
            c.err(
                &field,
                "set either `path` (a file) or `plugin` (a requirement from the plugin store), not both",
            );
            continue;
        }
        let req = match Requirement::parse(&text) {
            Ok(r) => r,
            Err(e) => {
                c.err(&field, e.to_string());
                continue;
            }
        };
        if let Some(locked) = lock.plugins.iter().find(|l| l.requirement == text) {
            let path = store.bundle_path(&locked.name, &locked.version);
            if !path.is_file() {
                c.err(
                    &field,
                    format!(
                        "{} {}, pinned in {}, is not in the plugin store ({}): install it with \
                         `weir plugin install {}@{} --index URL`, or remove its entry from the \
                         lock file to take the newest installed version",
                        locked.name,
                        locked.version,
                        lock_path.display(),
                        store.root.display(),
                        locked.name,
                        locked.version
                    ),
                );
                continue;
            }
            p.path = path;
            p.locked_digest = Some(locked.digest.clone());
            continue;
        }
        let Some(version) = store.resolve(&req) else {
            let installed: Vec<String> = (store.installed(&req.name).iter())
                .map(ToString::to_string)
                .collect();
            c.err(
                &field,
                format!(
                    "no installed version of {} matches `{}` (installed: {}; store {}): install \
                     one with `weir plugin install {text} --index URL`",
                    req.name,
                    req.req,
                    if installed.is_empty() {
                        "none".to_owned()
                    } else {
                        installed.join(", ")
                    },
                    store.root.display()
                ),
            );
            continue;
        };
        let version = version.to_string();
        let path = store.bundle_path(&req.name, &version);
        let digest = match weir_plugin::bundle::Bundle::read(&path) {
            Ok(b) => b.digest(),
            Err(e) => {
                c.err(&field, e.to_string());
                continue;
            }
        };
        info!(requirement = %text, version = %version, digest = %digest, "Plugin requirement resolved and pinned in {LOCK_FILE}.");
        lock.plugins.push(Locked {
            requirement: text,
            name: req.name.clone(),
            version,
            digest: digest.clone(),
        });
        learnt = true;
        p.path = path;
        p.locked_digest = Some(digest);
    }
    if learnt {
        let text = format!(
            "{HEADER}{}",
            toml::to_string(&lock).expect("a lock file serializes")
        );
        if let Err(e) = weir_plugin::local::write_whole(&lock_path, text.as_bytes()) {
            warn!(file = %lock_path.display(), error = %e, "Cannot write the lock file; the resolved plugin versions are not pinned.");
        }
    }
}
