//! A pipeline's configuration: one TOML file per pipeline, parsed, with
//! environment variables interpolated, relative paths resolved and every
//! error collected with its field path.
//!
//! Loading runs in three steps:
//!
//! 1. The text is parsed (a syntax error stops here: toml's message with
//!    line, column and a snippet), and `${NAME}` in every string value is
//!    replaced by the environment variable `NAME` (`$${` stands for a
//!    literal `${`; see [`interpolate`]). An unset variable is an error
//!    naming the field and the variable.
//! 2. Each section is read into its type: the top-level fields, the source
//!    by its `kind`, each sink by its `kind`. Every structural error (a
//!    missing field, an unknown one, a wrong type, a value out of range)
//!    is reported with its field path, line and snippet, all of them
//!    together ([`document`]).
//! 3. Defaults that depend on other fields are filled in, relative paths are
//!    resolved against the config file's directory, and the whole config is
//!    checked, each source and sink kind checking its own section
//!    ([`weir_connect::SourceComponent`], [`weir_connect::SinkComponent`]);
//!    every problem found is reported, not only the first.
//!
//! After [`PipelineConfig::from_str`] or [`PipelineConfig::from_file`]
//! returns `Ok`, the source's defaults are filled in, exactly one of
//! `router.template` and `router.plugin` is set, and every path is
//! resolved.

mod admin;
mod document;
mod interpolate;
mod kinds;
mod lock;
mod plugins;
mod sinks;
mod source;
mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use weir_connect::{BuildContext, Checker};
pub use weir_connect::{ConfigError, ConfigErrors};
use weir_core::{ChangeEvent, Op, SourceInfo};

pub use self::admin::{AdminConfig, TlsConfig, Tokens};
use self::document::{Document, only, without};
pub use self::plugins::{PluginConfig, RouterConfig, TrustConfig};
use self::sinks::SinkCommon;
pub use self::sinks::{ConflictsConfig, SinkConfig, SinkKind};
pub use self::source::SourceConfig;
pub use self::worker::WorkerConfig;
use crate::processor::PluginSetup;
use crate::router::Template;
use crate::sinks::Inputs;

/// One pipeline: where changes come from, what transforms them, where they
/// go.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// The pipeline's name: lower-case letters, digits, `_` and `-`. Logs,
    /// metrics and default names derived by the source use it.
    pub name: String,
    /// Directory for the pipeline's durable state: checkpoints and dead
    /// letters. A relative path resolves against the config file's
    /// directory. Two pipelines must never share one.
    pub state_dir: PathBuf,
    /// Where changes are captured.
    pub source: SourceConfig,
    /// Transformer plugins, applied to every batch in the order listed.
    pub plugins: Vec<PluginConfig>,
    /// How each event's destination name is chosen.
    pub router: RouterConfig,
    /// Where events are delivered; at least one. Each sink receives, in
    /// commit order, the events whose destination its `inputs` take.
    pub sinks: Vec<SinkConfig>,
    /// Batching and backpressure.
    pub pipeline: PipelineSettings,
    /// Which plugins may load.
    pub trust: TrustConfig,
    /// The admin API and metrics endpoint; off when absent.
    pub admin: Option<AdminConfig>,
}

/// The top-level fields that are neither the source nor a sink.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopLevel {
    name: String,
    state_dir: PathBuf,
    #[serde(default)]
    plugins: Vec<PluginConfig>,
    #[serde(default)]
    router: RouterConfig,
    #[serde(default)]
    pipeline: PipelineSettings,
    #[serde(default)]
    trust: TrustConfig,
    #[serde(default)]
    admin: Option<AdminConfig>,
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
    /// Workers running the plugins and the router on consecutive batches
    /// in parallel, each with its own instances; the results keep commit
    /// order. Unset: the machine's cores. One when there is no plugin.
    #[serde(default)]
    pub plugin_workers: Option<usize>,
    /// Longest time, in milliseconds, the writer groups whole transactions
    /// before making them durable in every sink and saving the checkpoint,
    /// while more keep coming (0: after every batch that ends one).
    #[serde(default = "default_max_commit_interval_ms")]
    pub max_commit_interval_ms: u64,
}

/// Most plugin workers a pipeline takes.
pub const MAX_PLUGIN_WORKERS: usize = 256;

impl PipelineSettings {
    /// How many plugin workers to run: `plugin_workers`, or the number of
    /// cores (at least 1).
    pub fn plugin_workers(&self) -> usize {
        self.plugin_workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(MAX_PLUGIN_WORKERS)
        })
    }
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

const fn default_max_commit_interval_ms() -> u64 {
    crate::writer::MAX_COMMIT_INTERVAL.as_millis() as u64
}

/// 8 MiB: a fifth less memory than 16 MiB at the same speed in the
/// files bench (decision 0030).
const fn default_channel_bytes() -> usize {
    8 << 20
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            max_batch_events: default_max_batch_events(),
            channel_bytes: default_channel_bytes(),
            watch_plugins: default_watch_plugins(),
            canary_events: default_canary_events(),
            canary_failure_ratio: default_canary_failure_ratio(),
            plugin_workers: None,
            max_commit_interval_ms: default_max_commit_interval_ms(),
        }
    }
}

impl PipelineConfig {
    /// Reads the config file at `path`, taking `${NAME}` values from the
    /// process environment. Relative paths in it resolve against the file's
    /// directory, made absolute.
    pub fn from_file(path: &Path) -> Result<PipelineConfig, ConfigErrors> {
        let (text, base_dir) = read_config_file(path)?;
        PipelineConfig::from_str(&text, &base_dir, &|name| std::env::var(name).ok())
    }

    /// What the plugin stage is made of.
    pub fn plugin_setup(&self) -> PluginSetup<'_> {
        PluginSetup {
            plugins: &self.plugins,
            router: &self.router,
            trust: &self.trust,
            settings: &self.pipeline,
            state_dir: &self.state_dir,
        }
    }

    /// Parses config text. Relative paths resolve against `base_dir`;
    /// `env` supplies the values of `${NAME}` references.
    pub fn from_str(
        text: &str,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PipelineConfig, ConfigErrors> {
        let mut doc = Document::parse(text, env)?;
        let sections = read_sections(&mut doc);
        let mut errors = std::mem::take(&mut doc.errors);
        let mut check = Checker::new("");
        let config = match sections.complete() {
            Ok(mut config) => {
                config.fill_defaults();
                config.resolve_paths(base_dir, env, &mut check);
                config.validate(&mut check);
                Some(config)
            }
            Err(sections) => {
                // Check what could be read, so that one round shows as much
                // as possible.
                sections.validate_parts(base_dir, &mut check);
                None
            }
        };
        // A field that already failed (to interpolate or to read) would
        // only repeat its problem.
        let reported: Vec<String> = errors.iter().map(|e| e.path.clone()).collect();
        errors.extend(
            check
                .into_errors()
                .into_iter()
                .filter(|e| !reported.contains(&e.path)),
        );
        match config {
            Some(config) if errors.is_empty() => Ok(config),
            _ => Err(ConfigErrors { errors }),
        }
    }

    /// What a source or sink built from this config may need to know.
    pub fn build_context(&self, max_batch_bytes: usize) -> BuildContext {
        BuildContext {
            pipeline: self.name.clone(),
            state_dir: self.state_dir.clone(),
            max_batch_events: self.pipeline.max_batch_events,
            max_batch_bytes,
            conflicts: None,
        }
    }

    fn fill_defaults(&mut self) {
        self.source.component_mut().fill_defaults(&self.name);
        if self.router.template.is_none() && self.router.plugin.is_none() {
            self.router.template = Some(Template::DEFAULT.to_owned());
        }
    }

    fn resolve_paths(
        &mut self,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        c: &mut Checker,
    ) {
        resolve_plugin_stage_paths(
            base_dir,
            env,
            &mut self.state_dir,
            &mut self.plugins,
            &mut self.router,
            c,
        );
        self.source.component_mut().resolve_paths(base_dir);
        if let Some(a) = &mut self.admin {
            a.resolve_paths(base_dir);
        }
        for s in &mut self.sinks {
            s.kind.component_mut().resolve_paths(base_dir);
            if let Some(c) = &mut s.conflicts {
                c.resolve_paths(base_dir);
            }
        }
    }

    fn validate(&self, c: &mut Checker) {
        c.name("name", &self.name, "pipeline");
        if self.state_dir.as_os_str().is_empty() {
            c.err("state_dir", "must not be empty");
        }
        validate_source(&self.source, &self.name, c);

        validate_plugin_stage(&self.plugins, &self.router, &self.trust, c);

        if self.sinks.is_empty() {
            c.err(
                "sinks",
                "at least one sink is required; add a [[sinks]] section, e.g. kind = \"stdout\"",
            );
        }
        let mut sink_names: HashMap<&str, String> = HashMap::new();
        let mut owned_dirs: HashMap<PathBuf, String> = HashMap::new();
        for (n, s) in self.sinks.iter().enumerate() {
            let path = format!("sinks[{n}]");
            s.validate(n, c);
            if let Some(first) = sink_names.insert(&s.name, path.clone()) {
                c.err(
                    &format!("{path}.name"),
                    format!(
                        "sink name `{}` is already used by {first}; give each sink its own name",
                        s.name
                    ),
                );
            }
            for (field, dir) in s.kind.component().owned_dirs() {
                let field = format!("{path}.{field}");
                if dir == self.state_dir {
                    c.err(
                        &field,
                        format!(
                            "{} is also the pipeline's state_dir; give the sink a directory of its own",
                            dir.display()
                        ),
                    );
                } else if let Some(first) = owned_dirs.insert(dir.clone(), field.clone()) {
                    c.err(
                        &field,
                        format!(
                            "{} is already the directory of {first}; each sink owns its directory, so give it another",
                            dir.display()
                        ),
                    );
                }
            }
        }

        self.pipeline.validate(c);
        if let Some(a) = &self.admin {
            let mut section = Checker::new("admin");
            a.validate(&mut section);
            c.absorb(section);
        }
    }

    /// Problems that do not stop the pipeline but probably are mistakes:
    /// destinations the router will produce that no sink takes (known when
    /// the router is a template and the source names its tables).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let (Some(template), Some(tables)) = (
            self.router
                .template
                .as_deref()
                .and_then(|t| Template::parse(t).ok()),
            self.source.component().captured_tables(),
        ) else {
            return warnings;
        };
        let inputs: Vec<Inputs> = self
            .sinks
            .iter()
            .map(|s| Inputs::new(s.inputs.as_deref()))
            .collect();
        let mut seen = Vec::new();
        for t in tables {
            for op in [Op::Create, Op::Update, Op::Delete, Op::Truncate, Op::Read] {
                let event = ChangeEvent {
                    op,
                    source: SourceInfo {
                        connector: t.connector.as_str().into(),
                        database: t.database.as_str().into(),
                        schema: t.schema.as_str().into(),
                        table: t.table.as_str().into(),
                        ..SourceInfo::default()
                    },
                    key: Vec::new(),
                    before: None,
                    after: None,
                };
                let destination = template.render(&event);
                if seen.contains(&destination) {
                    continue;
                }
                if !inputs.iter().any(|i| i.takes(&destination)) {
                    warnings.push(format!(
                        "destination `{destination}` (table {}.{}) is taken by no sink, so its events are dropped; add it to a sink's `inputs`",
                        t.schema, t.table
                    ));
                }
                seen.push(destination);
            }
        }
        warnings
    }
}

/// A config file of either kind, as the commands that take both read it.
#[derive(Debug, Clone)]
pub enum ConfigFile {
    Pipeline(Box<PipelineConfig>),
    Worker(Box<WorkerConfig>),
}

impl ConfigFile {
    /// Reads the file at `path`: a worker's when it has an `[input]` table
    /// and no `[source]`, otherwise a pipeline's.
    pub fn from_file(path: &Path) -> Result<ConfigFile, ConfigErrors> {
        let (text, base_dir) = read_config_file(path)?;
        let env = |name: &str| std::env::var(name).ok();
        let is_worker = text
            .parse::<toml::Table>()
            .is_ok_and(|t| t.contains_key("input") && !t.contains_key("source"));
        Ok(if is_worker {
            ConfigFile::Worker(Box::new(WorkerConfig::from_str(&text, &base_dir, &env)?))
        } else {
            ConfigFile::Pipeline(Box::new(PipelineConfig::from_str(&text, &base_dir, &env)?))
        })
    }
}

/// A config file's text and the directory its relative paths resolve
/// against (absolute).
fn read_config_file(path: &Path) -> Result<(String, PathBuf), ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::one(
            "",
            format!("cannot read config file {}: {e}", path.display()),
        )
    })?;
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let base_dir = path.parent().unwrap_or(Path::new(".")).to_owned();
    Ok((text, base_dir))
}

/// Resolves the state directory and the plugin paths against `base_dir`,
/// and plugins named by requirement from the plugin store (`weir.lock`).
fn resolve_plugin_stage_paths(
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    state_dir: &mut PathBuf,
    plugins: &mut [PluginConfig],
    router: &mut RouterConfig,
    c: &mut Checker,
) {
    let resolve = |p: &mut PathBuf| {
        if p.is_relative() && !p.as_os_str().is_empty() {
            *p = base_dir.join(&*p);
        }
    };
    resolve(state_dir);
    for p in plugins.iter_mut() {
        resolve(&mut p.path);
        if let Some(shadow) = &mut p.shadow {
            resolve(shadow);
        }
    }
    if let Some(p) = &mut router.plugin {
        resolve(&mut p.path);
    }
    let named = (plugins.iter_mut().enumerate())
        .map(|(n, p)| (format!("plugins[{n}]"), p))
        .chain(
            router
                .plugin
                .iter_mut()
                .map(|p| ("router.plugin".to_owned(), p)),
        );
    lock::resolve_requirements(named, base_dir, env, c);
}

/// Checks the plugin stage's sections: `plugins`, `trust` and `router`.
fn validate_plugin_stage(
    plugins: &[PluginConfig],
    router: &RouterConfig,
    trust: &TrustConfig,
    c: &mut Checker,
) {
    let mut plugin_names: HashMap<&str, String> = HashMap::new();
    for (n, p) in plugins.iter().enumerate() {
        let path = format!("plugins[{n}]");
        let mut section = Checker::new(path.clone());
        p.validate(&mut section);
        c.absorb(section);
        if let Some(first) = plugin_names.insert(&p.name, path.clone()) {
            c.err(
                &format!("{path}.name"),
                format!(
                    "plugin name `{}` is already used by {first}; give each plugin its own name",
                    p.name
                ),
            );
        }
    }

    let mut section = Checker::new("trust");
    trust.validate(&mut section);
    c.absorb(section);

    if router.template.is_some() && router.plugin.is_some() {
        c.err(
            "router",
            "set either `template` or `plugin`, not both: a router plugin replaces the template",
        );
    }
    if let Some(t) = &router.template {
        for problem in Template::parse(t).err().unwrap_or_default() {
            c.err("router.template", problem);
        }
    }
    if let Some(p) = &router.plugin {
        let mut section = Checker::new("router.plugin");
        p.validate(&mut section);
        c.absorb(section);
        if p.shadow.is_some() {
            c.err(
                "router.plugin.shadow",
                "shadow deploys are for transformers; deploy a router version with hot reload",
            );
        }
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
}

impl PipelineSettings {
    fn validate(&self, c: &mut Checker) {
        if self.max_batch_events == 0 {
            c.err("pipeline.max_batch_events", "must be more than 0");
        }
        if !(0.0..=1.0).contains(&self.canary_failure_ratio) {
            c.err("pipeline.canary_failure_ratio", "must be between 0 and 1");
        }
        if let Some(n) = self.plugin_workers
            && !(1..=MAX_PLUGIN_WORKERS).contains(&n)
        {
            c.err(
                "pipeline.plugin_workers",
                format!("must be between 1 and {MAX_PLUGIN_WORKERS}"),
            );
        }
        if self.channel_bytes == 0 {
            c.err("pipeline.channel_bytes", "must be more than 0");
        }
    }
}

/// The sections of a document, each read if it could be.
struct Sections {
    top: Option<TopLevel>,
    source: Option<SourceConfig>,
    /// `None` when `sinks` is not a list of tables.
    sinks: Option<Vec<Option<SinkConfig>>>,
}

impl Sections {
    /// The whole config, or the sections back when one could not be read.
    fn complete(self) -> Result<PipelineConfig, Box<Sections>> {
        let sinks: Option<Vec<SinkConfig>> = self
            .sinks
            .as_ref()
            .and_then(|s| s.iter().cloned().collect());
        match (self.top, self.source, sinks) {
            (Some(top), Some(source), Some(sinks)) => Ok(PipelineConfig {
                name: top.name,
                state_dir: top.state_dir,
                source,
                plugins: top.plugins,
                router: top.router,
                sinks,
                pipeline: top.pipeline,
                trust: top.trust,
                admin: top.admin,
            }),
            (top, source, _) => Err(Box::new(Sections {
                top,
                source,
                sinks: self.sinks,
            })),
        }
    }

    /// Checks the sections that could be read, each on its own.
    fn validate_parts(mut self: Box<Self>, base_dir: &Path, c: &mut Checker) {
        let pipeline = self.top.as_ref().map_or("", |t| t.name.as_str()).to_owned();
        if let Some(source) = &mut self.source {
            source.component_mut().fill_defaults(&pipeline);
            source.component_mut().resolve_paths(base_dir);
            validate_source(source, &pipeline, c);
        }
        for (n, sink) in self.sinks.iter_mut().flatten().enumerate() {
            if let Some(sink) = sink {
                sink.kind.component_mut().resolve_paths(base_dir);
                sink.validate(n, c);
            }
        }
    }
}

fn validate_source(source: &SourceConfig, pipeline: &str, c: &mut Checker) {
    let mut section = Checker::new("source");
    source.component().validate(pipeline, &mut section);
    c.absorb(section);
}

impl SinkConfig {
    /// Checks the sink at `sinks[n]` on its own.
    fn validate(&self, n: usize, c: &mut Checker) {
        let mut section = Checker::new(format!("sinks[{n}]"));
        self.validate_common(&mut section);
        self.kind.component().validate(&mut section);
        c.absorb(section);
    }
}

/// Reads every section of the document, recording structural errors in
/// it.
fn read_sections(doc: &mut Document<'_>) -> Sections {
    let root = doc.root();
    let top = doc.read("", without(&root, &["source", "sinks"]), |de| {
        TopLevel::deserialize(de)
    });

    let source = match doc.get("source").cloned() {
        None => {
            doc.error_at("source", &root, "missing field `source`");
            None
        }
        Some(value) => read_source(doc, value),
    };

    let sinks = match doc.get("sinks").cloned() {
        None => Some(Vec::new()),
        Some(value) => match value.get_ref() {
            toml::de::DeValue::Array(entries) => Some(
                entries
                    .iter()
                    .enumerate()
                    .map(|(n, entry)| read_sink(doc, &format!("sinks[{n}]"), entry))
                    .collect(),
            ),
            _ => {
                doc.error_at(
                    "sinks",
                    &value,
                    "expected sink sections: write each sink as a `[[sinks]]` table",
                );
                None
            }
        },
    };
    Sections { top, source, sinks }
}

/// The `kind` of a tagged section, if `is_kind` knows it; otherwise an
/// error recorded at `path` or `path.kind`, naming the `kinds` there are.
fn read_kind<'t>(
    doc: &mut Document<'t>,
    path: &str,
    value: &toml::Spanned<toml::de::DeValue<'t>>,
    kinds: &[&str],
    is_kind: fn(&str) -> bool,
) -> Option<String> {
    let Some(table) = value.get_ref().as_table() else {
        doc.error_at(path, value, "expected a table");
        return None;
    };
    let expected = kinds
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let Some(kind) = table.get("kind") else {
        doc.error_at(
            path,
            value,
            &format!("missing field `kind`; expected one of {expected}"),
        );
        return None;
    };
    let message = match kind.get_ref().as_str() {
        Some(k) if is_kind(k) => return Some(k.to_owned()),
        Some(k) => format!("unknown variant `{k}`, expected one of {expected}"),
        None => format!("expected a string, one of {expected}"),
    };
    doc.error_at(&format!("{path}.kind"), kind, &message);
    None
}

fn read_source<'t>(
    doc: &mut Document<'t>,
    value: toml::Spanned<toml::de::DeValue<'t>>,
) -> Option<SourceConfig> {
    let kind = read_kind(
        doc,
        "source",
        &value,
        SourceConfig::KINDS,
        SourceConfig::is_kind,
    )?;
    doc.read("source", without(&value, &["kind"]), |de| {
        SourceConfig::read(&kind, de)
    })
}

fn read_sink<'t>(
    doc: &mut Document<'t>,
    path: &str,
    value: &toml::Spanned<toml::de::DeValue<'t>>,
) -> Option<SinkConfig> {
    let common = doc.read(path, only(value, &SinkCommon::KEYS), |de| {
        SinkCommon::deserialize(de)
    });
    let kind = read_kind(doc, path, value, SinkKind::KINDS, SinkKind::is_kind)?;
    let mut drop = SinkCommon::KEYS.to_vec();
    drop.push("kind");
    let settings = doc.read(path, without(value, &drop), |de| SinkKind::read(&kind, de));
    let common = common?;
    Some(SinkConfig {
        name: common.name,
        inputs: common.inputs,
        conflicts: common.conflicts,
        kind: settings?,
    })
}

#[cfg(test)]
mod tests;
