//! A pipeline's configuration: one TOML file per pipeline, parsed, with
//! environment variables interpolated, relative paths resolved and every
//! semantic error collected with its field path.
//!
//! Loading runs in three steps:
//!
//! 1. The raw text is deserialized into the types below. A syntax or type
//!    error stops here and comes back as one [`ConfigError`] whose message
//!    is toml's (with line, column and a snippet of the raw text) and whose
//!    path is the deepest key the error's position falls in.
//! 2. `${NAME}` in every string value is replaced by the environment
//!    variable `NAME`; `$${` stands for a literal `${`. This happens on the
//!    parsed values, never on the raw text, so a secret can neither appear in
//!    a parse error's snippet nor break the file's quoting. An unset variable
//!    is an error naming the field and the variable.
//! 3. Defaults that depend on other fields are filled in, relative paths are
//!    resolved against the config file's directory, and the whole config is
//!    checked; every problem found is reported, not only the first.
//!
//! After [`PipelineConfig::from_str`] or [`PipelineConfig::from_file`]
//! returns `Ok`, `source.publication` and `source.slot` are non-empty,
//! exactly one of `router.template` and `router.plugin` is set, and every
//! path is resolved.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use serde_json::Value as Json;
use weir_plugin::{Capability, PluginLimits, PluginSpec};

/// PostgreSQL's longest identifier (`NAMEDATALEN - 1`), in bytes.
const PG_MAX_IDENTIFIER: usize = 63;

/// One pipeline: where changes come from, what transforms them, where they
/// go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// The pipeline's name: lower-case letters, digits, `_` and `-`. Logs,
    /// metrics and the default publication and slot names use it.
    pub name: String,
    /// Directory for the pipeline's durable state: checkpoints and dead
    /// letters. A relative path resolves against the config file's
    /// directory. Two pipelines must never share one.
    pub state_dir: PathBuf,
    /// Where changes are captured.
    pub source: SourceConfig,
    /// Transformer plugins, applied to every batch in the order listed.
    #[serde(default)]
    pub plugins: Vec<PluginConfig>,
    /// How each event's destination name is chosen. Without this section,
    /// events go to `{schema}.{table}`.
    #[serde(default)]
    pub router: RouterConfig,
    /// Where events are delivered; at least one. Every sink receives every
    /// event, tagged with the destination the router chose.
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
    /// Batching and backpressure.
    #[serde(default)]
    pub pipeline: PipelineSettings,
    /// Which plugins may load: trusted signers, pinned digests, and
    /// whether unsigned plugins are allowed (they are not, unless said).
    #[serde(default)]
    pub trust: TrustConfig,
}

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

/// A change source, chosen by `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceConfig {
    /// PostgreSQL logical replication with the `pgoutput` plugin.
    Postgres(PostgresSourceConfig),
}

/// `kind = "postgres"`: capture from PostgreSQL (`wal_level = logical`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSourceConfig {
    /// Server host name or address.
    #[serde(default = "default_pg_host")]
    pub host: String,
    /// Server port.
    #[serde(default = "default_pg_port")]
    pub port: u16,
    /// User to connect as; it needs the `REPLICATION` attribute, and
    /// `SELECT` on the captured tables for the snapshot.
    pub user: String,
    /// Password, if the server asks for one. Write `"${PGPASSWORD}"` to take
    /// it from the environment rather than the file. Never logged or
    /// printed.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// Database to capture.
    pub database: String,
    /// Publication naming the captured tables; created if missing. Default:
    /// `weir_<name>`, with `-` in the pipeline name replaced by `_`.
    #[serde(default)]
    pub publication: String,
    /// Logical replication slot that holds the pipeline's place in the WAL;
    /// created if missing. Lower-case letters, digits and `_`, at most 63
    /// bytes. Default: `weir_<name>`, with `-` replaced by `_`.
    #[serde(default)]
    pub slot: String,
    /// Tables to capture, as `schema.table`. Empty or absent: every table
    /// in the database (a `FOR ALL TABLES` publication).
    #[serde(default)]
    pub tables: Vec<String>,
    /// Whether to copy the tables' existing rows before streaming changes.
    #[serde(default)]
    pub snapshot: SnapshotMode,
    /// Rows read per snapshot query, more than 0.
    #[serde(default = "default_snapshot_chunk_rows")]
    pub snapshot_chunk_rows: u64,
    /// Tables (or chunks) read concurrently during the snapshot, 1 to 16.
    #[serde(default = "default_snapshot_parallelism")]
    pub snapshot_parallelism: usize,
    /// Ask the server to stream large transactions while they are still in
    /// progress (pgoutput protocol v2) rather than spill them to its disk
    /// until commit. Off by default: weir holds a streamed transaction in
    /// memory until it commits (it may still abort), so a huge transaction
    /// costs weir's memory instead of the server's disk. See
    /// `docs/decisions/0010-streaming-off-by-default.md`.
    #[serde(default)]
    pub streaming: bool,
}

fn default_pg_host() -> String {
    "localhost".to_owned()
}

const fn default_pg_port() -> u16 {
    5432
}

const fn default_snapshot_chunk_rows() -> u64 {
    10_000
}

const fn default_snapshot_parallelism() -> usize {
    2
}

/// Whether a pipeline copies existing rows before streaming changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotMode {
    /// Copy every captured table once, on the first start (events with
    /// `op = "r"`), then stream changes from a consistent point.
    #[default]
    Initial,
    /// Stream changes only, from the slot's position.
    Never,
}

/// A plugin: one WebAssembly component with its config, limits and grants.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Name used in logs, metrics and dead letters; unique in the pipeline.
    /// Lower-case letters, digits, `_` and `-`.
    pub name: String,
    /// The component file (`.wasm`). A relative path resolves against the
    /// config file's directory.
    pub path: PathBuf,
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

/// A sink, chosen by `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SinkConfig {
    /// JSON-lines files, one set per destination, exactly-once.
    File(FileSinkConfig),
    /// JSON lines on standard output, at-least-once.
    Stdout(StdoutSinkConfig),
}

impl SinkConfig {
    /// The sink's name.
    pub fn name(&self) -> &str {
        match self {
            SinkConfig::File(c) => &c.name,
            SinkConfig::Stdout(c) => &c.name,
        }
    }

    fn name_mut(&mut self) -> &mut String {
        match self {
            SinkConfig::File(c) => &mut c.name,
            SinkConfig::Stdout(c) => &mut c.name,
        }
    }
}

/// `kind = "file"`: one JSON-lines file per destination, rotated by size.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// Name used in logs, metrics and checkpoints; unique in the pipeline.
    /// Lower-case letters, digits, `_` and `-`.
    pub name: String,
    /// Directory the files are written to, created if missing. A relative
    /// path resolves against the config file's directory. The sink owns the
    /// `*.NNNNNN.jsonl` files in it: on restart it truncates or deletes
    /// whatever was written after the last checkpoint.
    pub dir: PathBuf,
    /// Size in bytes at which a file is closed and the next segment
    /// started; a segment ends with the line that reaches this size.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Line format.
    #[serde(default)]
    pub format: SinkFormat,
}

const fn default_max_file_bytes() -> u64 {
    64 << 20
}

/// `kind = "stdout"`: one JSON line per event on standard output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {
    /// Name used in logs, metrics and checkpoints; unique in the pipeline.
    /// Lower-case letters, digits, `_` and `-`.
    pub name: String,
    /// Line format.
    #[serde(default)]
    pub format: SinkFormat,
}

/// How a sink encodes an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkFormat {
    /// The Debezium JSON envelope (`before`, `after`, `source`, `op`,
    /// `ts_ms`), plus Weir's `key`.
    #[default]
    Debezium,
}

/// Batching and backpressure.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSettings {
    /// Most events in one batch handed to plugins and sinks (whole
    /// transactions are kept together unless larger than this).
    #[serde(default = "default_max_batch_events")]
    pub max_batch_events: usize,
    /// Most bytes of events in flight between stages; a slow sink slows the
    /// source rather than letting memory grow.
    #[serde(default = "default_channel_bytes")]
    pub channel_bytes: usize,
    /// Watch plugin files and bundles, and load a changed one without
    /// stopping (also on `weir plugin reload`).
    #[serde(default = "default_watch_plugins")]
    pub watch_plugins: bool,
    /// Events a newly loaded plugin version processes on probation; if more
    /// than `canary_failure_ratio` of them fail, the previous version is
    /// restored.
    #[serde(default = "default_canary_events")]
    pub canary_events: u64,
    /// Failure ratio (0 to 1) that rolls a new plugin version back.
    #[serde(default = "default_canary_failure_ratio")]
    pub canary_failure_ratio: f64,
}

const fn default_watch_plugins() -> bool {
    true
}

const fn default_canary_events() -> u64 {
    1000
}

const fn default_canary_failure_ratio() -> f64 {
    0.5
}

const fn default_max_batch_events() -> usize {
    4096
}

const fn default_channel_bytes() -> usize {
    16 << 20
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            max_batch_events: default_max_batch_events(),
            channel_bytes: default_channel_bytes(),
            watch_plugins: default_watch_plugins(),
            canary_events: default_canary_events(),
            canary_failure_ratio: default_canary_failure_ratio(),
        }
    }
}

/// One problem with a config, at a field path such as `sinks[1].dir`
/// (empty when it concerns the whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a config, displayed one per line as
/// `path: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    fn one(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigErrors {
            errors: vec![ConfigError {
                path: path.into(),
                message: message.into(),
            }],
        }
    }
}

impl PipelineConfig {
    /// Reads the config file at `path`, taking `${NAME}` values from the
    /// process environment. Relative paths in it resolve against the file's
    /// directory, made absolute.
    pub fn from_file(path: &Path) -> Result<PipelineConfig, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::one(
                "",
                format!("cannot read config file {}: {e}", path.display()),
            )
        })?;
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let base_dir = path.parent().unwrap_or(Path::new("."));
        PipelineConfig::from_str(&text, base_dir, &|name| std::env::var(name).ok())
    }

    /// Parses config text. Relative paths resolve against `base_dir`;
    /// `env` supplies the values of `${NAME}` references.
    pub fn from_str(
        text: &str,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PipelineConfig, ConfigErrors> {
        let mut config: PipelineConfig = toml::from_str(text).map_err(|e| parse_error(text, e))?;
        let mut check = Checker::default();
        config.interpolate(env, &mut check);
        // A field whose interpolation failed still holds its raw text;
        // checking that text would only repeat the problem.
        let failed = std::mem::take(&mut check.errors);
        config.fill_defaults();
        config.resolve_paths(base_dir);
        config.validate(&mut check);
        let mut errors = failed.clone();
        errors.extend(
            check
                .errors
                .into_iter()
                .filter(|e| !failed.iter().any(|f| f.path == e.path)),
        );
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors { errors })
        }
    }

    fn interpolate(&mut self, env: &dyn Fn(&str) -> Option<String>, c: &mut Checker) {
        let mut i = |path: &str, s: &mut String| interpolate_field(path, s, env, c);
        i("name", &mut self.name);
        interpolate_path("state_dir", &mut self.state_dir, &mut i);
        match &mut self.source {
            SourceConfig::Postgres(pg) => {
                i("source.host", &mut pg.host);
                i("source.user", &mut pg.user);
                if let Some(password) = &mut pg.password {
                    let mut raw = password.expose_secret().to_owned();
                    i("source.password", &mut raw);
                    *password = SecretString::from(raw);
                }
                i("source.database", &mut pg.database);
                i("source.publication", &mut pg.publication);
                i("source.slot", &mut pg.slot);
                for (n, t) in pg.tables.iter_mut().enumerate() {
                    i(&format!("source.tables[{n}]"), t);
                }
            }
        }
        for (n, p) in self.plugins.iter_mut().enumerate() {
            interpolate_plugin(&format!("plugins[{n}]"), p, &mut i);
        }
        if let Some(t) = &mut self.router.template {
            i("router.template", t);
        }
        if let Some(p) = &mut self.router.plugin {
            interpolate_plugin("router.plugin", p, &mut i);
        }
        for (n, s) in self.sinks.iter_mut().enumerate() {
            i(&format!("sinks[{n}].name"), s.name_mut());
            match s {
                SinkConfig::File(f) => {
                    interpolate_path(&format!("sinks[{n}].dir"), &mut f.dir, &mut i)
                }
                SinkConfig::Stdout(_) => {}
            }
        }
    }

    fn fill_defaults(&mut self) {
        let derived = derived_pg_name(&self.name);
        match &mut self.source {
            SourceConfig::Postgres(pg) => {
                for value in [&mut pg.publication, &mut pg.slot] {
                    if value.is_empty() {
                        value.clone_from(&derived);
                    }
                }
            }
        }
        if self.router.template.is_none() && self.router.plugin.is_none() {
            self.router.template = Some(crate::router::Template::DEFAULT.to_owned());
        }
    }

    fn resolve_paths(&mut self, base_dir: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base_dir.join(&*p);
            }
        };
        resolve(&mut self.state_dir);
        for p in &mut self.plugins {
            resolve(&mut p.path);
        }
        if let Some(p) = &mut self.router.plugin {
            resolve(&mut p.path);
        }
        for s in &mut self.sinks {
            if let SinkConfig::File(f) = s {
                resolve(&mut f.dir);
            }
        }
    }

    fn validate(&self, c: &mut Checker) {
        c.name("name", &self.name, "pipeline");
        if self.state_dir.as_os_str().is_empty() {
            c.err("state_dir", "must not be empty");
        }
        match &self.source {
            SourceConfig::Postgres(pg) => validate_postgres(pg, &self.name, c),
        }

        let mut plugin_names: HashMap<&str, String> = HashMap::new();
        for (n, p) in self.plugins.iter().enumerate() {
            let path = format!("plugins[{n}]");
            validate_plugin(&path, p, c);
            if let Some(first) = plugin_names.insert(&p.name, path.clone()) {
                c.err(
                    format!("{path}.name"),
                    format!(
                        "plugin name `{}` is already used by {first}; give each plugin its own name",
                        p.name
                    ),
                );
            }
        }

        for (i, key) in self.trust.keys.iter().enumerate() {
            if let Err(e) = weir_plugin::bundle::PublicKey::parse(key) {
                c.err(format!("trust.keys[{i}]"), e.to_string());
            }
        }
        for (i, pin) in self.trust.pinned.iter().enumerate() {
            let ok = pin
                .strip_prefix("sha256:")
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            if !ok {
                c.err(
                    format!("trust.pinned[{i}]"),
                    format!("`{pin}` is not a digest like `sha256:<64 hex digits>`"),
                );
            }
        }

        let router = &self.router;
        if router.template.is_some() && router.plugin.is_some() {
            c.err(
                "router",
                "set either `template` or `plugin`, not both: a router plugin replaces the template",
            );
        }
        if let Some(t) = &router.template {
            for problem in crate::router::Template::parse(t).err().unwrap_or_default() {
                c.err("router.template", problem);
            }
        }
        if let Some(p) = &router.plugin {
            validate_plugin("router.plugin", p, c);
            if let Some(first) = plugin_names.get(p.name.as_str()) {
                c.err(
                    "router.plugin.name",
                    format!(
                        "plugin name `{}` is already used by {first}; give each plugin its own name",
                        p.name
                    ),
                );
            }
        }

        if self.sinks.is_empty() {
            c.err(
                "sinks",
                "at least one sink is required; add a [[sinks]] section, e.g. kind = \"stdout\"",
            );
        }
        let mut sink_names: HashMap<&str, String> = HashMap::new();
        let mut sink_dirs: HashMap<&Path, String> = HashMap::new();
        for (n, s) in self.sinks.iter().enumerate() {
            let path = format!("sinks[{n}]");
            c.name(&format!("{path}.name"), s.name(), "sink");
            if let Some(first) = sink_names.insert(s.name(), path.clone()) {
                c.err(
                    format!("{path}.name"),
                    format!(
                        "sink name `{}` is already used by {first}; give each sink its own name",
                        s.name()
                    ),
                );
            }
            if let SinkConfig::File(f) = s {
                if f.max_file_bytes == 0 {
                    c.err(format!("{path}.max_file_bytes"), "must be more than 0");
                }
                if f.dir == self.state_dir {
                    c.err(
                        format!("{path}.dir"),
                        format!(
                            "{} is also the pipeline's state_dir; give the sink a directory of its own",
                            f.dir.display()
                        ),
                    );
                } else if let Some(first) = sink_dirs.insert(&f.dir, path.clone()) {
                    c.err(
                        format!("{path}.dir"),
                        format!(
                            "{} is already the directory of {first}; each file sink owns its directory, so give it another",
                            f.dir.display()
                        ),
                    );
                }
            }
        }

        if self.pipeline.max_batch_events == 0 {
            c.err("pipeline.max_batch_events", "must be more than 0");
        }
        if !(0.0..=1.0).contains(&self.pipeline.canary_failure_ratio) {
            c.err("pipeline.canary_failure_ratio", "must be between 0 and 1");
        }
        if self.pipeline.channel_bytes == 0 {
            c.err("pipeline.channel_bytes", "must be more than 0");
        }
    }
}

fn validate_postgres(pg: &PostgresSourceConfig, pipeline: &str, c: &mut Checker) {
    if pg.host.is_empty() {
        c.err("source.host", "must not be empty");
    }
    if pg.port == 0 {
        c.err("source.port", "must be a port number from 1 to 65535");
    }
    if pg.user.is_empty() {
        c.err("source.user", "must not be empty");
    }
    if pg.database.is_empty() {
        c.err("source.database", "must not be empty");
    }
    // A name derived from the pipeline's is valid exactly when the
    // pipeline's is, which is checked (and reported) on its own; only its
    // length can still be wrong.
    let derived = derived_pg_name(pipeline);
    for (field, value) in [
        ("source.publication", &pg.publication),
        ("source.slot", &pg.slot),
    ] {
        let key = field.trim_start_matches("source.");
        let too_long = value.len() > PG_MAX_IDENTIFIER;
        if *value == derived {
            if too_long {
                c.err(
                    field,
                    format!(
                        "the default {key} name `{derived}` is longer than PostgreSQL's limit of {PG_MAX_IDENTIFIER} bytes; shorten the pipeline's `name` or set `{key}`"
                    ),
                );
            }
            continue;
        }
        if field == "source.slot"
            && !value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            c.err(
                field,
                format!(
                    "`{value}` is not a valid replication slot name; use lower-case letters, digits and `_`"
                ),
            );
        } else if too_long {
            c.err(
                field,
                format!("is longer than PostgreSQL's limit of {PG_MAX_IDENTIFIER} bytes"),
            );
        }
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (n, t) in pg.tables.iter().enumerate() {
        let path = format!("source.tables[{n}]");
        if t.is_empty() {
            c.err(path, "must not be empty; write `schema.table`");
        } else if let Some(first) = seen.insert(t, n) {
            c.err(
                path,
                format!("`{t}` is already listed as source.tables[{first}]"),
            );
        }
    }
    if pg.snapshot_chunk_rows == 0 {
        c.err("source.snapshot_chunk_rows", "must be more than 0");
    }
    if !(1..=16).contains(&pg.snapshot_parallelism) {
        c.err(
            "source.snapshot_parallelism",
            format!("must be from 1 to 16, not {}", pg.snapshot_parallelism),
        );
    }
}

/// The default publication and slot name for a pipeline.
fn derived_pg_name(pipeline: &str) -> String {
    format!("weir_{}", pipeline.replace('-', "_"))
}

fn validate_plugin(path: &str, p: &PluginConfig, c: &mut Checker) {
    c.name(&format!("{path}.name"), &p.name, "plugin");
    if !p.path.is_file() {
        let problem = if p.path.exists() {
            "is not a file"
        } else {
            "does not exist"
        };
        c.err(
            format!("{path}.path"),
            format!(
                "plugin file {} {problem}; relative paths resolve against the config file's directory",
                p.path.display()
            ),
        );
    }
    for (n, g) in p.grants.iter().enumerate() {
        if Capability::parse(g).is_none() {
            c.err(
                format!("{path}.grants[{n}]"),
                format!(
                    "unknown capability `{g}`; expected one of clock, random, filesystem, network"
                ),
            );
        }
    }
    if p.limits.memory_mb == 0 {
        c.err(format!("{path}.limits.memory_mb"), "must be more than 0");
    }
    if p.limits.deadline_ms == 0 {
        c.err(format!("{path}.limits.deadline_ms"), "must be more than 0");
    }
    if p.limits.fuel == Some(0) {
        c.err(
            format!("{path}.limits.fuel"),
            "must be more than 0; leave it out for no fuel limit",
        );
    }
}

#[derive(Default)]
struct Checker {
    errors: Vec<ConfigError>,
}

impl Checker {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn name(&mut self, path: &str, name: &str, what: &str) {
        if name.is_empty() {
            self.err(path, format!("a {what} name must not be empty"));
        } else if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            self.err(
                path,
                format!(
                    "`{name}` is not a valid {what} name; use lower-case letters, digits, `_` and `-`"
                ),
            );
        }
    }
}

fn interpolate_path(path: &str, p: &mut PathBuf, i: &mut impl FnMut(&str, &mut String)) {
    // Paths come from TOML strings, so they are always UTF-8.
    if let Some(s) = p.to_str() {
        let mut s = s.to_owned();
        i(path, &mut s);
        *p = PathBuf::from(s);
    }
}

fn interpolate_plugin(path: &str, p: &mut PluginConfig, i: &mut impl FnMut(&str, &mut String)) {
    i(&format!("{path}.name"), &mut p.name);
    interpolate_path(&format!("{path}.path"), &mut p.path, i);
    interpolate_json(&format!("{path}.config"), &mut p.config, i);
    for (n, g) in p.grants.iter_mut().enumerate() {
        i(&format!("{path}.grants[{n}]"), g);
    }
}

fn interpolate_json(path: &str, v: &mut Json, i: &mut impl FnMut(&str, &mut String)) {
    match v {
        Json::String(s) => i(path, s),
        Json::Array(a) => {
            for (n, e) in a.iter_mut().enumerate() {
                interpolate_json(&format!("{path}[{n}]"), e, i);
            }
        }
        Json::Object(m) => {
            for (k, e) in m.iter_mut() {
                interpolate_json(&format!("{path}.{k}"), e, i);
            }
        }
        Json::Null | Json::Bool(_) | Json::Number(_) => {}
    }
}

fn interpolate_field(
    path: &str,
    value: &mut String,
    env: &dyn Fn(&str) -> Option<String>,
    c: &mut Checker,
) {
    if !value.contains('$') {
        return;
    }
    match interpolate(value, env) {
        Ok(s) => *value = s,
        Err(message) => c.err(path, message),
    }
}

/// Replaces `${NAME}` with the variable's value and `$${` with `${`. The
/// error never contains a variable's value.
fn interpolate(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err("`${` is not closed by `}`; write `$${` for a literal `${`".to_owned());
            };
            let name = &after[..end];
            let valid = name.starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(format!(
                    "`${{{name}}}` is not a valid environment variable reference; names are letters, digits and `_`; write `$${{` for a literal `${{`"
                ));
            }
            match env(name) {
                Some(v) => out.push_str(&v),
                None => {
                    return Err(format!(
                        "environment variable `{name}` is not set; set it, or write `$${{` for a literal `${{`"
                    ));
                }
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A toml error as one [`ConfigError`], at the deepest field it concerns.
fn parse_error(text: &str, error: toml::de::Error) -> ConfigErrors {
    let Ok(root) = toml::de::DeTable::parse(text) else {
        // A syntax error: toml's message has the line and column.
        return ConfigErrors::one("", error.to_string().trim_end());
    };
    // The document's own span (errors about the whole file) holds no key.
    let whole = root.span();
    let root = root.get_ref();
    let mut error = error;
    let mut path = error
        .span()
        .filter(|s| *s != whole)
        .map(|s| key_path_at(root, s))
        .unwrap_or_default();
    if let Some((retried_path, retried)) = retry_tagged(text, root, &path) {
        path = retried_path;
        if let Some(retried) = retried {
            error = retried;
        }
    }
    let message = error.message();
    let field = message
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'))
        .or_else(|| {
            // The tag itself is wrong.
            let tagged = path == "source" || (path.starts_with("sinks[") && !path.contains('.'));
            (tagged && message.starts_with("unknown variant")).then_some("kind")
        });
    if let Some(field) = field {
        path = if path.is_empty() {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        };
    }
    ConfigErrors::one(path, error.to_string().trim_end())
}

/// serde reads a table tagged by `kind` (`[source]`, `[[sinks]]`) into a
/// buffer first, which loses where in the table an error is (for an array
/// of tables, even which table). Reading each such table again as its
/// kind's struct finds the first that fails, with the field at fault:
/// its path, and the error unless the `kind` itself is wrong.
fn retry_tagged(
    text: &str,
    root: &toml::de::DeTable<'_>,
    path: &str,
) -> Option<(String, Option<toml::de::Error>)> {
    let top = path.split('.').next()?;
    let candidates: Vec<(String, &toml::Spanned<toml::de::DeValue<'_>>)> = if top == "source" {
        vec![("source".to_owned(), root.get("source")?)]
    } else if top == "sinks" || top.starts_with("sinks[") {
        match root.get("sinks")?.get_ref() {
            toml::de::DeValue::Array(a) => a
                .iter()
                .enumerate()
                .map(|(n, v)| (format!("sinks[{n}]"), v))
                .collect(),
            _ => return None,
        }
    } else {
        return None;
    };
    for (table_path, value) in candidates {
        let Some(table) = value.get_ref().as_table() else {
            continue;
        };
        let Some(kind) = table.get("kind").and_then(|k| k.get_ref().as_str()) else {
            return Some((table_path, None));
        };
        let mut fields = table.clone();
        fields.remove("kind");
        let de = toml::de::Deserializer::from(toml::Spanned::new(value.span(), fields));
        let result = match (table_path.as_str(), kind) {
            ("source", "postgres") => PostgresSourceConfig::deserialize(de).map(drop),
            ("source", _) => return Some((table_path, None)),
            (_, "file") => FileSinkConfig::deserialize(de).map(drop),
            (_, "stdout") => StdoutSinkConfig::deserialize(de).map(drop),
            _ => return Some((table_path, None)),
        };
        if let Err(mut e) = result {
            e.set_input(Some(text));
            let field_path = e
                .span()
                .map(|s| key_path_at(root, s))
                .filter(|p| p.starts_with(&table_path))
                .unwrap_or(table_path);
            return Some((field_path, Some(e)));
        }
    }
    None
}

/// The path (`sinks[1].dir`) of the deepest key or value of the document
/// whose span holds `span`, or `""` if none does.
fn key_path_at(root: &toml::de::DeTable<'_>, span: Range<usize>) -> String {
    let mut best: Option<(usize, String)> = None;
    search_table(root, "", &span, &mut best);
    best.map(|(_, p)| p).unwrap_or_default()
}

fn search_table(
    table: &toml::de::DeTable<'_>,
    prefix: &str,
    target: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        consider(key.span(), &path, target, best);
        search_value(value, &path, target, best);
    }
}

fn search_value(
    value: &toml::Spanned<toml::de::DeValue<'_>>,
    path: &str,
    target: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    consider(value.span(), path, target, best);
    match value.get_ref() {
        toml::de::DeValue::Table(t) => search_table(t, path, target, best),
        toml::de::DeValue::Array(a) => {
            for (n, e) in a.iter().enumerate() {
                search_value(e, &format!("{path}[{n}]"), target, best);
            }
        }
        _ => {}
    }
}

/// Keeps `path` if its span holds `target` and is the narrowest so far.
fn consider(
    span: Range<usize>,
    path: &str,
    target: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    let holds = span.start <= target.start && target.end <= span.end;
    let width = span.len();
    if holds && best.as_ref().is_none_or(|(w, _)| width <= *w) {
        *best = Some((width, path.to_owned()));
    }
}

#[cfg(test)]
mod tests;
