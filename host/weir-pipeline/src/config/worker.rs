//! A worker's configuration (`weir worker --config worker.toml`): the
//! change topics to read, the plugin stage (the same `[[plugins]]`,
//! `[router]`, `[pipeline]` and `[trust]` sections as a pipeline), and the
//! Kafka output (the fields of a `kind = "kafka"` sink).
//!
//! Read the same way as a pipeline's file: `${ENV}` interpolated, every
//! structural error with its field path, relative paths resolved against
//! the file's directory.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;
use weir_connect::{Checker, ConfigErrors, SinkComponent};
use weir_kafka::{KafkaInputConfig, KafkaSinkConfig};

use super::document::{Document, without};
use super::{
    PipelineSettings, PluginConfig, RouterConfig, TrustConfig, read_config_file,
    resolve_plugin_stage_paths, validate_plugin_stage,
};
use crate::processor::PluginSetup;
use crate::router::Template;

/// One worker: what it reads, what runs on each change, where the results
/// go. Every worker of a group runs the same file.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The worker's name: lower-case letters, digits, `_` and `-`. The
    /// default consumer group (`weir-<name>`), transactional ids and the
    /// output's topic prefix derive from it.
    pub name: String,
    /// Directory for the worker's local state: admitted bundles and the
    /// admin socket, each instance in `<state_dir>/<instance>`. Progress
    /// itself lives in Kafka (the group's committed offsets).
    pub state_dir: PathBuf,
    /// Change topics to read.
    pub input: KafkaInputConfig,
    /// Transformer plugins, applied in the order listed.
    pub plugins: Vec<PluginConfig>,
    /// How each event's destination (and so its output topic) is chosen.
    pub router: RouterConfig,
    /// Where the results go: the fields of a `kind = "kafka"` sink, except
    /// `transactional_id` and `state_topic`.
    pub output: KafkaSinkConfig,
    /// The topic for events a plugin failed on or the output refused, and
    /// for records that are not change events. Default:
    /// `<name>.dead-letters`.
    pub dead_letter_topic: String,
    /// Batching (`max_batch_events`: most records in one round) and plugin
    /// probation; `channel_bytes`, `plugin_workers` and
    /// `max_commit_interval_ms` are not used by workers (a group scales by
    /// its members, and each round is one Kafka transaction).
    pub pipeline: PipelineSettings,
    /// Which plugins may load.
    pub trust: TrustConfig,
}

/// The section under `key`, or an error saying it is missing, with an
/// example.
fn section<'t>(
    doc: &mut Document<'t>,
    root: &Spanned<DeValue<'t>>,
    key: &str,
    example: &str,
) -> Option<Spanned<DeValue<'t>>> {
    let value = doc.get(key).cloned();
    if value.is_none() {
        doc.error_at(key, root, &format!("missing section `[{key}]`; {example}"));
    }
    value
}

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
    dead_letter_topic: Option<String>,
    #[serde(default)]
    pipeline: PipelineSettings,
    #[serde(default)]
    trust: TrustConfig,
}

impl WorkerConfig {
    /// Reads the worker file at `path`, taking `${NAME}` values from the
    /// process environment.
    pub fn from_file(path: &Path) -> Result<WorkerConfig, ConfigErrors> {
        let (text, base_dir) = read_config_file(path)?;
        WorkerConfig::from_str(&text, &base_dir, &|name| std::env::var(name).ok())
    }

    /// Parses worker config text. Relative paths resolve against
    /// `base_dir`; `env` supplies the values of `${NAME}` references.
    pub fn from_str(
        text: &str,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<WorkerConfig, ConfigErrors> {
        let mut doc = Document::parse(text, env)?;
        let root = doc.root();
        let top = doc.read("", without(&root, &["input", "output"]), |de| {
            TopLevel::deserialize(de)
        });
        let input = section(
            &mut doc,
            &root,
            "input",
            "name the change topics to read, e.g. `brokers = [\"kafka:9092\"]` and `topics = [\"shop.public.orders\"]`",
        )
        .and_then(|v| doc.read("input", v, KafkaInputConfig::deserialize));
        let output = section(
            &mut doc,
            &root,
            "output",
            "name the brokers to write to, e.g. `brokers = [\"kafka:9092\"]`",
        )
        .and_then(|v| doc.read("output", v, KafkaSinkConfig::deserialize));
        let mut errors = std::mem::take(&mut doc.errors);
        // The sections that could be read are checked even when another
        // could not, so that one round shows as much as possible.
        let mut check = Checker::new("");
        if let Some(input) = &input {
            let mut section = Checker::new("input");
            input.validate(&mut section);
            check.absorb(section);
        }
        if let Some(output) = &output {
            validate_output(output, &mut check);
        }
        let (Some(top), Some(input), Some(output)) = (top, input, output) else {
            extend_unreported(&mut errors, check);
            return Err(ConfigErrors { errors });
        };
        let dead_letter_topic = top
            .dead_letter_topic
            .unwrap_or_else(|| format!("{}.dead-letters", top.name));
        let mut config = WorkerConfig {
            name: top.name,
            state_dir: top.state_dir,
            input,
            plugins: top.plugins,
            router: top.router,
            output,
            dead_letter_topic,
            pipeline: top.pipeline,
            trust: top.trust,
        };
        if config.router.template.is_none() && config.router.plugin.is_none() {
            config.router.template = Some(Template::DEFAULT.to_owned());
        }
        resolve_plugin_stage_paths(
            base_dir,
            env,
            &mut config.state_dir,
            &mut config.plugins,
            &mut config.router,
            &mut check,
        );
        config.validate(&mut check);
        extend_unreported(&mut errors, check);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors { errors })
        }
    }

    /// What the plugin stage of the instance whose state is in
    /// `instance_dir` is made of.
    pub fn plugin_setup<'a>(&'a self, instance_dir: &'a Path) -> PluginSetup<'a> {
        PluginSetup {
            plugins: &self.plugins,
            router: &self.router,
            trust: &self.trust,
            settings: &self.pipeline,
            state_dir: instance_dir,
        }
    }

    /// The state directory of one instance.
    pub fn instance_dir(&self, instance: &str) -> PathBuf {
        self.state_dir.join(instance)
    }

    /// The consumer group the workers share.
    pub fn group(&self) -> String {
        self.input.group(&self.name)
    }

    /// The transactional id of one instance: `weir-<name>-<instance>`.
    pub fn transactional_id(&self, instance: &str) -> String {
        format!("weir-{}-{instance}", self.name)
    }

    /// Checks the top-level fields and the plugin stage (the input and the
    /// output are checked on their own).
    fn validate(&self, c: &mut Checker) {
        c.name("name", &self.name, "worker");
        if self.state_dir.as_os_str().is_empty() {
            c.err("state_dir", "must not be empty");
        }
        validate_plugin_stage(&self.plugins, &self.router, &self.trust, c);
        if !weir_kafka::valid_topic_name(&self.dead_letter_topic) {
            c.err(
                "dead_letter_topic",
                format!(
                    "`{}` is not a valid topic name; use letters, digits, `.`, `_` and `-`",
                    self.dead_letter_topic
                ),
            );
        }
        self.pipeline.validate(c);
    }
}

/// Checks `[output]`: a Kafka sink's fields, less the two a worker sets
/// itself.
fn validate_output(output: &KafkaSinkConfig, c: &mut Checker) {
    let mut section = Checker::new("output");
    output.validate(&mut section);
    if output.transactional_id.is_some() {
        section.err(
            "transactional_id",
            "each worker instance has its own (`weir-<name>-<instance>`); leave it out",
        );
    }
    if output.transaction_topic.is_some() {
        section.err(
            "transaction_topic",
            "a worker writes no transaction metadata (nor carries its input records' \
             `transaction` blocks); leave it out",
        );
    }
    if output.state_topic != KafkaSinkConfig::DEFAULT_STATE_TOPIC {
        section.err(
            "state_topic",
            "a worker keeps its progress in the consumer group's offsets, not a state topic; \
             leave it out",
        );
    }
    c.absorb(section);
}

/// Adds the problems `check` found to `errors`, except at fields that
/// already failed (to interpolate or to read): those would only repeat.
fn extend_unreported(errors: &mut Vec<weir_connect::ConfigError>, check: Checker) {
    let reported: Vec<String> = errors.iter().map(|e| e.path.clone()).collect();
    errors.extend(
        check
            .into_errors()
            .into_iter()
            .filter(|e| !reported.contains(&e.path)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WorkerConfig, Vec<String>> {
        WorkerConfig::from_str(text, Path::new("/etc/weir"), &|name| {
            (name == "KAFKA").then(|| "k1:9092".to_owned())
        })
        .map_err(|e| {
            e.errors
                .iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect()
        })
    }

    #[test]
    fn a_minimal_worker_gets_its_defaults() {
        let c = parse(
            r#"
            name = "mask"
            state_dir = "state"
            [input]
            brokers = ["${KAFKA}"]
            topics = ["shop.public.users"]
            [output]
            brokers = ["${KAFKA}"]
            "#,
        )
        .unwrap();
        assert_eq!(c.group(), "weir-mask");
        assert_eq!(c.transactional_id("a"), "weir-mask-a");
        assert_eq!(c.output.prefix(&c.name), "mask");
        assert_eq!(c.dead_letter_topic, "mask.dead-letters");
        assert_eq!(c.state_dir, Path::new("/etc/weir/state"));
        assert_eq!(c.instance_dir("a"), Path::new("/etc/weir/state/a"));
        assert_eq!(c.input.brokers, ["k1:9092"]);
        assert_eq!(c.router.template.as_deref(), Some(Template::DEFAULT));
    }

    #[test]
    fn the_example_worker_reads() {
        // With the plugin where the test build puts it.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/workers");
        let text = std::fs::read_to_string(dir.join("masked.toml"))
            .unwrap()
            .replace(
                "../../target/wasm32-wasip2/release/pii_mask.wasm",
                weir_tests::components::PII_MASK,
            );
        let c = WorkerConfig::from_str(&text, &dir, &|_| None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.name, "masked");
        assert_eq!(c.plugins.len(), 1);
        assert_eq!(c.input.topics.len(), 2);
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let errors = parse(
            r#"
            name = "Mask"
            state_dir = "state"
            dead_letter_topic = "a b"
            [input]
            brokers = ["k:9092"]
            topics = []
            properties = { "group.id" = "x" }
            [output]
            brokers = ["k:9092"]
            transactional_id = "t"
            state_topic = "s"
            transaction_topic = "m.transaction"
            "#,
        )
        .unwrap_err();
        let fields: Vec<&str> = errors
            .iter()
            .map(|e| e.split_once(':').unwrap().0)
            .collect();
        assert_eq!(
            fields,
            [
                "input.topics",
                "input.properties.\"group.id\"",
                "output.transactional_id",
                "output.transaction_topic",
                "output.state_topic",
                "name",
                "dead_letter_topic",
            ],
            "{errors:#?}"
        );
        let missing = parse("name = \"m\"\nstate_dir = \"s\"\n").unwrap_err();
        assert!(
            missing[0].starts_with("input: ") && missing[0].contains("missing section `[input]`"),
            "{missing:?}"
        );
        assert!(
            missing[1].starts_with("output: ") && missing[1].contains("missing section `[output]`"),
            "{missing:?}"
        );
    }
}
