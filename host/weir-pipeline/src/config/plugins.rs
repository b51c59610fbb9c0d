//! `[[plugins]]`, `[router]` and `[trust]`: the plugins a pipeline runs and
//! the policy that decides which may load.

use serde::{Deserialize, Deserializer};
use serde_json::Value as Json;
use std::path::PathBuf;
use weir_connect::Checker;
use weir_plugin::{Capability, PluginLimits, PluginSpec};

/// `[trust]`: the plugin trust policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// Public keys (`ed25519:...`, as `weir plugin keygen` prints them)
    /// whose signed bundles may load.
    #[serde(default)]
    pub keys: Vec<String>,
    /// If not empty, only components with these digests (`sha256:<hex>`,
    /// as `weir plugin verify` prints them) may load.
    #[serde(default)]
    pub pinned: Vec<String>,
    /// Load unsigned bundles and bare `.wasm` components too. Off unless
    /// set; meant for development.
    #[serde(default)]
    pub allow_unsigned: bool,
}

impl TrustConfig {
    /// The policy this section describes (keys already validated).
    pub fn policy(&self) -> weir_plugin::bundle::TrustPolicy {
        weir_plugin::bundle::TrustPolicy {
            keys: self
                .keys
                .iter()
                .filter_map(|k| weir_plugin::bundle::PublicKey::parse(k).ok())
                .collect(),
            pinned: self.pinned.clone(),
            allow_unsigned: self.allow_unsigned,
        }
    }
}

/// A plugin: one WebAssembly component with its config, limits and grants.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Name used in logs, metrics and dead letters; unique in the pipeline.
    /// Lower-case letters, digits, `_` and `-`.
    pub name: String,
    /// The plugin's file: a bundle (`.weirpkg`) or a bare component
    /// (`.wasm`). A relative path resolves against the config file's
    /// directory. Set this or `plugin`.
    #[serde(default)]
    pub path: PathBuf,
    /// A plugin installed in the local plugin store, by requirement:
    /// `pii-mask@^1.2`, `pii-mask@1.2.0` or `pii-mask`. Resolved to the
    /// version `weir.lock` pins, or the newest installed match (then
    /// pinned). Set this or `path`.
    #[serde(default)]
    pub plugin: Option<String>,
    /// The component digest `weir.lock` pins for `plugin`; admission
    /// refuses a bundle with another.
    #[serde(skip)]
    pub locked_digest: Option<String>,
    /// The plugin's own configuration, any TOML table. The plugin receives
    /// it as JSON (TOML dates and times become strings).
    #[serde(default = "empty_object", deserialize_with = "toml_table_as_json")]
    pub config: Json,
    /// Capabilities granted to the plugin beyond pure computation, from
    /// `clock`, `random`, `filesystem` and `network`. None by default.
    #[serde(default)]
    pub grants: Vec<String>,
    /// Resource limits: `memory_mb` (default 64), `deadline_ms` per batch
    /// (default 1000) and optional `fuel`.
    #[serde(default)]
    pub limits: PluginLimits,
    /// A candidate version (bundle or component) run beside this one on
    /// the same events: its output is compared with the live output and
    /// never delivered (a shadow deploy; `weir plugin promote` swaps it
    /// in). Relative paths resolve like `path`. Transformers only.
    #[serde(default)]
    pub shadow: Option<PathBuf>,
    /// The candidate's configuration, when it differs from `config`.
    #[serde(default, deserialize_with = "optional_toml_table_as_json")]
    pub shadow_config: Option<Json>,
}

impl PluginConfig {
    /// What the plugin runtime needs to load this plugin. Grant names were
    /// checked when the config was loaded.
    pub fn spec(&self) -> PluginSpec {
        PluginSpec::new(self.name.clone(), self.path.clone())
            .with_config(self.config.clone())
            .with_limits(self.limits.clone())
            .with_grants(self.capabilities())
    }

    /// The shadow candidate as a plugin of its own: its file and config,
    /// with this plugin's name, grants and limits.
    pub fn shadow(&self) -> Option<PluginConfig> {
        let path = self.shadow.clone()?;
        Some(PluginConfig {
            path,
            config: self.shadow_config.clone().unwrap_or(self.config.clone()),
            shadow: None,
            shadow_config: None,
            plugin: None,
            locked_digest: None,
            ..self.clone()
        })
    }

    /// The granted capabilities, without duplicates.
    pub fn capabilities(&self) -> Vec<Capability> {
        let mut caps: Vec<Capability> = self
            .grants
            .iter()
            .filter_map(|g| Capability::parse(g))
            .collect();
        caps.sort_unstable();
        caps.dedup();
        caps
    }
}

fn empty_object() -> Json {
    Json::Object(Default::default())
}

fn optional_toml_table_as_json<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Json>, D::Error> {
    toml_table_as_json(d).map(Some)
}

fn toml_table_as_json<'de, D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
    let table = toml::Table::deserialize(d)?;
    toml_to_json(toml::Value::Table(table)).map_err(serde::de::Error::custom)
}

/// Converts a TOML value to JSON. Dates and times become their TOML text;
/// `nan` and `inf` have no JSON form and are refused.
fn toml_to_json(value: toml::Value) -> Result<Json, String> {
    Ok(match value {
        toml::Value::String(s) => Json::String(s),
        toml::Value::Integer(i) => Json::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(Json::Number)
            .ok_or_else(|| format!("the float {f} has no JSON form; plugin config is JSON"))?,
        toml::Value::Boolean(b) => Json::Bool(b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(a) => {
            Json::Array(a.into_iter().map(toml_to_json).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(t) => Json::Object(
            t.into_iter()
                .map(|(k, v)| Ok((k, toml_to_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// How events are routed to destination names. After loading, exactly one
/// of `template` and `plugin` is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    /// Destination name built from the event's origin, with placeholders
    /// `{connector}`, `{database}`, `{schema}`, `{table}` and `{op}`.
    /// Default: `{schema}.{table}`. Cannot be combined with `plugin`.
    #[serde(default)]
    pub template: Option<String>,
    /// A router plugin (same fields as a `[[plugins]]` entry) that names
    /// each event's destinations. Cannot be combined with `template`.
    #[serde(default)]
    pub plugin: Option<PluginConfig>,
}

impl PluginConfig {
    /// Reports every problem, with paths relative to the plugin's section.
    pub(super) fn validate(&self, c: &mut Checker) {
        let p = self;
        c.name("name", &p.name, "plugin");
        let file = |c: &mut Checker, field: &str, path: &std::path::Path| {
            if path.as_os_str().is_empty() {
                // `plugin` failed to resolve (and said why), or neither was set.
                if p.plugin.is_none() {
                    c.err(
                        field,
                        "set `path` (a bundle or component file) or `plugin` (a requirement \
                         like pii-mask@^1.2, from the plugin store)",
                    );
                }
                return;
            }
            if !path.is_file() {
                let problem = if path.exists() {
                    "is not a file"
                } else {
                    "does not exist"
                };
                c.err(
                    field,
                    format!(
                        "plugin file {} {problem}; relative paths resolve against the config file's directory",
                        path.display()
                    ),
                );
            }
        };
        file(c, "path", &p.path);
        match &p.shadow {
            Some(shadow) => file(c, "shadow", shadow),
            None if p.shadow_config.is_some() => c.err(
                "shadow_config",
                "configures a shadow candidate, but `shadow` names none",
            ),
            None => {}
        }
        for (n, g) in p.grants.iter().enumerate() {
            if Capability::parse(g).is_none() {
                c.err(
                    &format!("grants[{n}]"),
                    format!(
                        "unknown capability `{g}`; expected one of clock, random, filesystem, network"
                    ),
                );
            }
        }
        if p.limits.memory_mb == 0 {
            c.err("limits.memory_mb", "must be more than 0");
        }
        if p.limits.deadline_ms == 0 {
            c.err("limits.deadline_ms", "must be more than 0");
        }
        if p.limits.fuel == Some(0) {
            c.err(
                "limits.fuel",
                "must be more than 0; leave it out for no fuel limit",
            );
        }
    }
}

impl TrustConfig {
    /// Reports malformed keys and digests, with paths relative to `[trust]`.
    pub(super) fn validate(&self, c: &mut Checker) {
        for (i, key) in self.keys.iter().enumerate() {
            if let Err(e) = weir_plugin::bundle::PublicKey::parse(key) {
                c.err(&format!("keys[{i}]"), e.to_string());
            }
        }
        for (i, pin) in self.pinned.iter().enumerate() {
            let ok = pin
                .strip_prefix("sha256:")
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            if !ok {
                c.err(
                    &format!("pinned[{i}]"),
                    format!("`{pin}` is not a digest like `sha256:<64 hex digits>`"),
                );
            }
        }
    }
}
