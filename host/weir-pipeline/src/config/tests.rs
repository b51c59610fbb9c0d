use std::collections::HashMap;

use secrecy::ExposeSecret;
use serde_json::json;
use weir_plugin::{Capability, PluginLimits};
use weir_postgres::{PostgresSourceConfig, SnapshotMode};

use super::*;
use crate::sinks::{FileSinkConfig, SinkFormat};

/// The PostgreSQL section of a config that has one.
fn postgres(c: &PipelineConfig) -> &PostgresSourceConfig {
    match &c.source {
        SourceConfig::Postgres(pg) => pg,
        #[allow(unreachable_patterns)]
        other => panic!("not a postgres source: {other:?}"),
    }
}

/// The settings of a file sink.
fn file_sink(s: &SinkConfig) -> &FileSinkConfig {
    match &s.kind {
        SinkKind::File(f) => f,
        other => panic!("not a file sink: {other:?}"),
    }
}

/// A config directory holding the plugin files the configs refer to.
struct Fixture {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        for f in ["pii_mask.wasm", "filter.wasm", "router.wasm"] {
            std::fs::write(dir.path().join("plugins").join(f), b"\0asm").unwrap();
        }
        let env = [
            ("PGPASSWORD", "hunter2"),
            ("PGUSER", "weir"),
            ("OUT", "out"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Fixture { dir, env }
    }

    fn parse(&self, text: &str) -> Result<PipelineConfig, ConfigErrors> {
        PipelineConfig::from_str(text, self.dir.path(), &|name| self.env.get(name).cloned())
    }

    /// The errors of a config that must not load, as `(path, message)`.
    fn errors(&self, text: &str) -> Vec<(String, String)> {
        match self.parse(text) {
            Ok(c) => panic!("config loaded: {c:?}"),
            Err(e) => e.errors.into_iter().map(|e| (e.path, e.message)).collect(),
        }
    }

    /// The paths of a config's errors.
    fn error_paths(&self, text: &str) -> Vec<String> {
        self.errors(text).into_iter().map(|(p, _)| p).collect()
    }
}

const FULL: &str = r#"
name = "shop"
state_dir = "state/shop"

[source]
kind = "postgres"
host = "db.internal"
port = 6543
user = "${PGUSER}"
password = "${PGPASSWORD}"
database = "shop"
publication = "shop_pub"
slot = "shop_slot"
tables = ["public.customers", "public.orders"]
snapshot = "never"
snapshot_chunk_rows = 500
snapshot_parallelism = 4
streaming = false

[[plugins]]
name = "mask"
path = "plugins/pii_mask.wasm"
config = { rules = [{ column = "email", action = "hash" }], salt = 3, ratio = 0.5, since = 2024-01-02 }
grants = ["clock", "random"]
[plugins.limits]
memory_mb = 32
deadline_ms = 250
fuel = 1000000

[[plugins]]
name = "filter"
path = "plugins/filter.wasm"

[router]
template = "{database}.{schema}.{table}"

[[sinks]]
name = "files"
kind = "file"
dir = "${OUT}"
max_file_bytes = 1048576
format = "debezium"

[[sinks]]
name = "console"
kind = "stdout"

[pipeline]
max_batch_events = 100
channel_bytes = 1000000
max_commit_interval_ms = 250
"#;

/// A config with one error spot `X` to fill in, valid when `X` is empty.
const BASE: &str = r#"
name = "shop"
state_dir = "state"
[source]
kind = "postgres"
user = "weir"
database = "shop"
[[sinks]]
name = "out"
kind = "stdout"
"#;

#[test]
fn full_config_loads_every_field() {
    let fx = Fixture::new();
    let base = fx.dir.path();
    let c = fx.parse(FULL).unwrap();
    assert_eq!(c.name, "shop");
    assert_eq!(c.state_dir, base.join("state/shop"));

    let pg = postgres(&c);
    assert_eq!(pg.host, "db.internal");
    assert_eq!(pg.port, 6543);
    assert_eq!(pg.user, "weir");
    assert_eq!(pg.password.as_ref().unwrap().expose_secret(), "hunter2");
    assert_eq!(pg.database, "shop");
    assert_eq!(pg.publication, "shop_pub");
    assert_eq!(pg.slot, "shop_slot");
    assert_eq!(pg.tables, ["public.customers", "public.orders"]);
    assert_eq!(pg.snapshot, SnapshotMode::Never);
    assert_eq!(pg.snapshot_chunk_rows, 500);
    assert_eq!(pg.snapshot_parallelism, 4);
    assert!(!pg.streaming);

    assert_eq!(c.plugins.len(), 2);
    let mask = &c.plugins[0];
    assert_eq!(mask.name, "mask");
    assert_eq!(mask.path, base.join("plugins/pii_mask.wasm"));
    assert_eq!(
        mask.config,
        json!({
            "rules": [{"column": "email", "action": "hash"}],
            "salt": 3,
            "ratio": 0.5,
            "since": "2024-01-02",
        })
    );
    assert_eq!(mask.capabilities(), [Capability::Clock, Capability::Random]);
    assert_eq!(
        mask.limits,
        PluginLimits {
            memory_mb: 32,
            deadline_ms: 250,
            fuel: Some(1_000_000)
        }
    );
    let spec = mask.spec();
    assert_eq!(spec.name, "mask");
    assert_eq!(spec.grants, [Capability::Clock, Capability::Random]);
    assert_eq!(spec.config, mask.config);
    let filter = &c.plugins[1];
    assert_eq!(filter.config, json!({}));
    assert!(filter.grants.is_empty());
    assert_eq!(filter.limits, PluginLimits::default());

    assert_eq!(
        c.router.template.as_deref(),
        Some("{database}.{schema}.{table}")
    );
    assert!(c.router.plugin.is_none());

    assert_eq!(c.sinks.len(), 2);
    let files = file_sink(&c.sinks[0]);
    assert_eq!(c.sinks[0].name, "files");
    assert_eq!(c.sinks[0].inputs, None);
    assert_eq!(files.dir, base.join("out"));
    assert_eq!(files.max_file_bytes, 1 << 20);
    assert_eq!(files.format, SinkFormat::Debezium);
    assert!(matches!(&c.sinks[1].kind, SinkKind::Stdout(_)));
    assert_eq!(c.sinks[1].name, "console");

    assert_eq!(
        c.pipeline,
        PipelineSettings {
            max_batch_events: 100,
            channel_bytes: 1_000_000,
            max_commit_interval_ms: 250,
            ..PipelineSettings::default()
        }
    );
}

#[test]
fn minimal_config_gets_defaults() {
    let fx = Fixture::new();
    let c = fx
        .parse(&BASE.replace("name = \"shop\"", "name = \"shop-eu\""))
        .unwrap();
    let pg = postgres(&c);
    assert_eq!(pg.host, "localhost");
    assert_eq!(pg.port, 5432);
    assert!(pg.password.is_none());
    assert_eq!(pg.publication, "weir_shop_eu");
    assert_eq!(pg.slot, "weir_shop_eu");
    assert!(pg.tables.is_empty());
    assert_eq!(pg.snapshot, SnapshotMode::Initial);
    assert_eq!(pg.snapshot_chunk_rows, 10_000);
    assert_eq!(pg.snapshot_parallelism, 2);
    assert!(!pg.streaming, "streaming is off by default (decision 0010)");
    assert!(c.plugins.is_empty());
    assert_eq!(c.router.template.as_deref(), Some("{schema}.{table}"));
    assert!(c.router.plugin.is_none());
    assert_eq!(c.pipeline.max_batch_events, 4096);
    assert_eq!(c.pipeline.channel_bytes, 8 << 20);
    assert_eq!(c.pipeline.max_commit_interval_ms, 1000);
    assert_eq!(c.pipeline.plugin_workers, None);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(c.pipeline.plugin_workers(), cores.min(256));

    let c = fx
        .parse(&format!(
            "{BASE}[[sinks]]\nname = \"f\"\nkind = \"file\"\ndir = \"/abs/out\"\n"
        ))
        .unwrap();
    let f = file_sink(&c.sinks[1]);
    assert_eq!(f.max_file_bytes, 64 << 20);
    assert_eq!(
        f.dir,
        Path::new("/abs/out"),
        "absolute paths stay as they are"
    );
}

#[test]
fn router_plugin_loads_instead_of_template() {
    let fx = Fixture::new();
    let c = fx
        .parse(&format!(
            "{BASE}[router]\nplugin = {{ name = \"router\", path = \"plugins/router.wasm\", config = {{ prefix = \"x\" }} }}\n"
        ))
        .unwrap();
    assert!(c.router.template.is_none());
    let p = c.router.plugin.as_ref().unwrap();
    assert_eq!(p.path, fx.dir.path().join("plugins/router.wasm"));
    assert_eq!(p.config, json!({"prefix": "x"}));
}

#[test]
fn each_semantic_error_names_its_field() {
    let fx = Fixture::new();
    let cases: &[(&str, &str, &str)] = &[
        ("name = \"shop\"", "name = \"Shop!\"", "name"),
        ("name = \"shop\"", "name = \"\"", "name"),
        (
            "database = \"shop\"",
            "database = \"shop\"\nsnapshot_chunk_rows = 0",
            "source.snapshot_chunk_rows",
        ),
        (
            "database = \"shop\"",
            "database = \"shop\"\nsnapshot_parallelism = 17",
            "source.snapshot_parallelism",
        ),
        (
            "database = \"shop\"",
            "database = \"shop\"\nsnapshot_parallelism = 0",
            "source.snapshot_parallelism",
        ),
        (
            "database = \"shop\"",
            "database = \"shop\"\nslot = \"Shop-Slot\"",
            "source.slot",
        ),
        (
            "database = \"shop\"",
            "database = \"shop\"\ntables = [\"public.a\", \"public.a\"]",
            "source.tables[1]",
        ),
        (
            "[[sinks]]\nname = \"out\"\nkind = \"stdout\"\n",
            "",
            "sinks",
        ),
        (
            "name = \"out\"\nkind = \"stdout\"\n",
            "name = \"out\"\nkind = \"stdout\"\n[[sinks]]\nname = \"out\"\nkind = \"stdout\"\n",
            "sinks[1].name",
        ),
        (
            "name = \"out\"\nkind = \"stdout\"\n",
            "name = \"o u t\"\nkind = \"stdout\"\n",
            "sinks[0].name",
        ),
        (
            "name = \"out\"\nkind = \"stdout\"\n",
            "name = \"out\"\nkind = \"file\"\ndir = \"d\"\nmax_file_bytes = 0\n",
            "sinks[0].max_file_bytes",
        ),
        (
            "name = \"out\"\nkind = \"stdout\"\n",
            "name = \"out\"\nkind = \"file\"\ndir = \"state\"\n",
            "sinks[0].dir",
        ),
        (
            "name = \"out\"\nkind = \"stdout\"\n",
            "name = \"a\"\nkind = \"file\"\ndir = \"d\"\n[[sinks]]\nname = \"b\"\nkind = \"file\"\ndir = \"./d\"\n",
            "sinks[1].dir",
        ),
    ];
    for (from, to, path) in cases {
        let text = BASE.replace(from, to);
        assert_ne!(text, BASE, "case for {path} changes nothing");
        assert_eq!(fx.error_paths(&text), [*path], "config:\n{text}");
    }

    let extra: &[(&str, &str)] = &[
        (
            "[[plugins]]\nname = \"mask\"\npath = \"plugins/missing.wasm\"\n",
            "plugins[0].path",
        ),
        (
            "[[plugins]]\nname = \"mask\"\npath = \"plugins\"\n",
            "plugins[0].path",
        ),
        (
            "[[plugins]]\nname = \"mask\"\npath = \"plugins/pii_mask.wasm\"\n[[plugins]]\nname = \"mask\"\npath = \"plugins/filter.wasm\"\n",
            "plugins[1].name",
        ),
        (
            "[[plugins]]\nname = \"mask\"\npath = \"plugins/pii_mask.wasm\"\ngrants = [\"clock\", \"time-travel\"]\n",
            "plugins[0].grants[1]",
        ),
        (
            "[[plugins]]\nname = \"mask\"\npath = \"plugins/pii_mask.wasm\"\nlimits = { memory_mb = 0 }\n",
            "plugins[0].limits.memory_mb",
        ),
        (
            "[router]\ntemplate = \"{schema}.{tabel}\"\n",
            "router.template",
        ),
        ("[router]\ntemplate = \"{schema\"\n", "router.template"),
        (
            "[router]\ntemplate = \"{table}\"\nplugin = { name = \"r\", path = \"plugins/router.wasm\" }\n",
            "router",
        ),
        (
            "[router]\nplugin = { name = \"r\", path = \"plugins/router.wasm\", grants = [\"disk\"] }\n",
            "router.plugin.grants[0]",
        ),
        (
            "[[plugins]]\nname = \"r\"\npath = \"plugins/filter.wasm\"\n[router]\nplugin = { name = \"r\", path = \"plugins/router.wasm\" }\n",
            "router.plugin.name",
        ),
        (
            "[pipeline]\nmax_batch_events = 0\n",
            "pipeline.max_batch_events",
        ),
        ("[pipeline]\nchannel_bytes = 0\n", "pipeline.channel_bytes"),
        (
            "[pipeline]\nplugin_workers = 0\n",
            "pipeline.plugin_workers",
        ),
        (
            "[pipeline]\nplugin_workers = 1000\n",
            "pipeline.plugin_workers",
        ),
    ];
    for (section, path) in extra {
        let text = format!("{BASE}{section}");
        assert_eq!(fx.error_paths(&text), [*path], "config:\n{text}");
    }
}

#[test]
fn error_messages_say_what_to_do() {
    let fx = Fixture::new();
    let errors = fx.errors(&format!(
        "{BASE}[[plugins]]\nname = \"mask\"\npath = \"plugins/missing.wasm\"\ngrants = [\"disk\"]\n[router]\ntemplate = \"{{schema}}/{{tabel}}\"\n"
    ));
    let missing = fx.dir.path().join("plugins/missing.wasm");
    assert_eq!(
        errors,
        [
            (
                "plugins[0].path".to_owned(),
                format!(
                    "plugin file {} does not exist; relative paths resolve against the config file's directory",
                    missing.display()
                )
            ),
            (
                "plugins[0].grants[0]".to_owned(),
                "unknown capability `disk`; expected one of clock, random, filesystem, network"
                    .to_owned()
            ),
            (
                "router.template".to_owned(),
                "unknown placeholder `{tabel}`; use {connector}, {database}, {schema}, {table}, {op}"
                    .to_owned()
            ),
        ]
    );
}

#[test]
fn long_pipeline_name_cannot_derive_slot() {
    let fx = Fixture::new();
    let name = "n".repeat(60);
    let errors = fx.errors(&BASE.replace("\"shop\"\nstate", &format!("\"{name}\"\nstate")));
    let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["source.publication", "source.slot"]);
    assert!(
        errors[1]
            .1
            .contains("shorten the pipeline's `name` or set `slot`"),
        "{errors:?}"
    );
}

#[test]
fn all_semantic_errors_are_reported_together() {
    let fx = Fixture::new();
    let text = r#"
name = "Bad Name"
state_dir = "state"
[source]
kind = "postgres"
user = "weir"
database = "shop"
snapshot_chunk_rows = 0
snapshot_parallelism = 99
[[plugins]]
name = "m"
path = "nope.wasm"
grants = ["teleport"]
[router]
template = "{nope}"
plugin = { name = "r", path = "plugins/router.wasm" }
"#;
    let err = fx.parse(text).unwrap_err();
    let paths: Vec<&str> = err.errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "name",
            "source.snapshot_chunk_rows",
            "source.snapshot_parallelism",
            "plugins[0].path",
            "plugins[0].grants[0]",
            "router",
            "router.template",
            "sinks",
        ]
    );
    let shown = err.to_string();
    assert_eq!(shown.lines().count(), err.errors.len(), "{shown}");
    assert!(
        shown.starts_with("name: `Bad Name` is not a valid pipeline name;"),
        "{shown}"
    );
    assert!(
        shown.contains("\nsource.snapshot_parallelism: must be from 1 to 16, not 99\n"),
        "{shown}"
    );
}

#[test]
fn parse_errors_keep_position_and_find_the_field() {
    let fx = Fixture::new();
    let cases: &[(String, &str, &str)] = &[
        (
            BASE.replace("database = \"shop\"", "database = \"shop\"\nport = \"x\""),
            "source.port",
            "line 8",
        ),
        (
            format!("{BASE}[[sinks]]\nname = \"f\"\nkind = \"file\"\ndir = \"o\"\ndri = \"out\"\n"),
            "sinks[1].dri",
            "unknown field `dri`",
        ),
        (
            format!("{BASE}[[sinks]]\nname = \"f\"\nkind = \"file\"\n"),
            "sinks[1].dir",
            "missing field `dir`",
        ),
        (
            BASE.replace("kind = \"postgres\"", "kind = \"oracle\""),
            "source.kind",
            "unknown variant `oracle`",
        ),
        (
            format!("{BASE}[pipeline]\nmax_batch_event = 1\n"),
            "pipeline.max_batch_event",
            "unknown field `max_batch_event`",
        ),
        (
            format!(
                "{BASE}[[plugins]]\nname = \"m\"\npath = \"plugins/filter.wasm\"\nconfig = {{ x = nan }}\n"
            ),
            "plugins[0].config",
            "no JSON form",
        ),
        (format!("{BASE}[pipeline\n"), "", "line 11, column 10"),
        (
            format!("{BASE}[[sinks]]\nname = \"f\"\nkind = \"file\"\ndir = 5\n"),
            "sinks[1].dir",
            "line 14",
        ),
        (
            BASE.replace(
                "database = \"shop\"",
                "database = \"shop\"\nsnapshot = \"sometimes\"",
            ),
            "source.snapshot",
            "unknown variant `sometimes`",
        ),
        (
            "name = \"x\"\nstate_dir = \"s\"\n".to_owned(),
            "source",
            "missing field `source`",
        ),
        (
            BASE.replace("user = \"weir\"\n", ""),
            "source.user",
            "missing field `user`",
        ),
    ];
    for (text, path, needle) in cases {
        let errors = fx.errors(text);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let (p, message) = &errors[0];
        assert_eq!(p, path, "{message}");
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        assert!(message.contains("TOML parse error at line"), "{message}");
    }
}

#[test]
fn structural_errors_are_reported_together_with_semantic_ones() {
    let fx = Fixture::new();
    // Six structural problems in three sections, and a semantic one in a
    // section that reads: one round shows them all.
    let text = r#"
name = "shop"
state_dir = "state"
[source]
kind = "postgres"
database = "shop"
port = 70000
hots = "db"
snapshot_parallelism = 99
[[sinks]]
name = "f"
kind = "file"
dri = "out"
[[sinks]]
name = "Console"
kind = "stdout"
[pipeline]
max_batch_events = -1
"#;
    let errors = fx.errors(text);
    let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "pipeline.max_batch_events",
            "source.port",
            "source.hots",
            "source.user",
            "sinks[0].dri",
            "sinks[0].dir",
            "sinks[1].name",
        ],
        "{errors:#?}"
    );
    let message = |path: &str| &errors.iter().find(|(p, _)| p == path).unwrap().1;
    assert!(
        message("source.port").contains("line 7"),
        "{}",
        message("source.port")
    );
    assert!(message("source.hots").contains("unknown field `hots`"));
    assert!(message("source.user").contains("missing field `user`"));
    assert!(message("sinks[0].dir").contains("missing field `dir`"));
    assert!(message("sinks[1].name").contains("`Console` is not a valid sink name"));
}

#[test]
fn sink_inputs_are_read_and_checked() {
    let fx = Fixture::new();
    let c = fx
        .parse(&BASE.replace(
            "kind = \"stdout\"",
            "kind = \"stdout\"\ninputs = [\"public.orders*\", \"audit.?\"]",
        ))
        .unwrap();
    assert_eq!(
        c.sinks[0].inputs.as_deref(),
        Some(&["public.orders*".to_owned(), "audit.?".to_owned()][..])
    );
    let errors = fx.errors(&BASE.replace("kind = \"stdout\"", "kind = \"stdout\"\ninputs = []"));
    assert_eq!(errors[0].0, "sinks[0].inputs");
    assert!(errors[0].1.contains("leave `inputs` out"), "{errors:?}");
    let errors =
        fx.errors(&BASE.replace("kind = \"stdout\"", "kind = \"stdout\"\ninputs = [\"\"]"));
    assert_eq!(errors[0].0, "sinks[0].inputs[0]");
}

#[test]
fn destinations_no_sink_takes_are_warned_about() {
    let fx = Fixture::new();
    let text = BASE
        .replace(
            "database = \"shop\"",
            "database = \"shop\"\ntables = [\"public.orders\", \"public.customers\"]",
        )
        .replace(
            "kind = \"stdout\"",
            "kind = \"stdout\"\ninputs = [\"public.orders\"]",
        );
    let c = fx.parse(&text).unwrap();
    assert_eq!(
        c.warnings(),
        [
            "destination `public.customers` (table public.customers) is taken by no sink, so its events are dropped; add it to a sink's `inputs`"
        ]
    );
    // Without inputs every sink takes everything.
    let c = fx
        .parse(&text.replace("inputs = [\"public.orders\"]", ""))
        .unwrap();
    assert!(c.warnings().is_empty());
}

#[test]
fn environment_variables_are_interpolated_after_parsing() {
    let fx = Fixture::new();
    let text = BASE
        .replace(
            "state_dir = \"state\"",
            "state_dir = \"$${HOME}/st${OUT}e$\"",
        )
        .replace("user = \"weir\"", "user = \"${PGUSER}-$$-${PGUSER}\"");
    let c = fx.parse(&text).unwrap();
    assert_eq!(c.state_dir, fx.dir.path().join("${HOME}/stoute$"));
    let pg = postgres(&c);
    assert_eq!(pg.user, "weir-$$-weir");

    // A value with quotes or newlines cannot break the file.
    let mut env = fx.env.clone();
    env.insert("PGUSER".into(), "we\"ir\n[x]".into());
    let c = PipelineConfig::from_str(&text, fx.dir.path(), &|n| env.get(n).cloned()).unwrap();
    let pg = postgres(&c);
    assert_eq!(pg.user, "we\"ir\n[x]-$$-we\"ir\n[x]");
}

#[test]
fn unset_variables_are_errors_naming_field_and_variable() {
    let fx = Fixture::new();
    let text = format!(
        "{}[[plugins]]\nname = \"m\"\npath = \"plugins/filter.wasm\"\nconfig = {{ rules = [{{ salt = \"${{SALT}}\" }}] }}\n",
        BASE.replace(
            "user = \"weir\"",
            "user = \"weir\"\npassword = \"${DB_PASS}\""
        )
        .replace("name = \"out\"", "name = \"${SINK}\"")
    );
    let errors = fx.errors(&text);
    assert_eq!(
        errors,
        [
            (
                "source.password".to_owned(),
                "environment variable `DB_PASS` is not set; set it, or write `$${` for a literal `${`"
                    .to_owned()
            ),
            (
                "plugins[0].config.rules[0].salt".to_owned(),
                "environment variable `SALT` is not set; set it, or write `$${` for a literal `${`"
                    .to_owned()
            ),
            (
                "sinks[0].name".to_owned(),
                "environment variable `SINK` is not set; set it, or write `$${` for a literal `${`"
                    .to_owned()
            ),
        ],
        "the sink name's raw text must not also be reported as an invalid name"
    );

    let errors = fx.errors(&BASE.replace("\"weir\"", "\"${PG USER}\""));
    assert_eq!(errors[0].0, "source.user");
    assert!(
        errors[0]
            .1
            .contains("not a valid environment variable reference")
    );
    let errors = fx.errors(&BASE.replace("\"weir\"", "\"${PGUSER\""));
    assert_eq!(errors[0].0, "source.user");
    assert!(errors[0].1.contains("is not closed"));
}

#[test]
fn password_is_never_printed() {
    let fx = Fixture::new();
    let c = fx.parse(FULL).unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("REDACTED"), "{shown}");

    // Nor in a parse error on the line that holds it: the snippet shows
    // the raw text.
    let text = FULL.replace("\"${PGPASSWORD}\"", "[\"${PGPASSWORD}\"]");
    let err = fx.parse(&text).unwrap_err().to_string();
    assert!(!err.contains("hunter2"), "{err}");
    assert!(err.contains("${PGPASSWORD}"), "{err}");
}

#[test]
fn from_file_resolves_against_the_files_directory() {
    let fx = Fixture::new();
    let file = fx.dir.path().join("shop.toml");
    std::fs::write(&file, BASE).unwrap();
    let c = PipelineConfig::from_file(&file).unwrap();
    assert_eq!(c.state_dir, fx.dir.path().join("state"));

    let missing = fx.dir.path().join("nope.toml");
    let err = PipelineConfig::from_file(&missing).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("cannot read config file {}: ", missing.display())),
        "{err}"
    );
}

#[test]
fn a_mysql_source_is_read_by_its_kind_or_alias_and_checked() {
    let fx = Fixture::new();
    let mysql = |source: &str| {
        BASE.replace(
            "kind = \"postgres\"\nuser = \"weir\"\ndatabase = \"shop\"",
            source,
        )
    };
    let c = fx
        .parse(&mysql(
            "kind = \"mariadb\"\nuser = \"weir\"\npassword = \"${PGPASSWORD}\"\ndatabases = [\"shop\"]\ntables = [\"shop.orders\"]\nsnapshot = \"never\"",
        ))
        .unwrap();
    let SourceConfig::Mysql(my) = &c.source else {
        panic!("not a mysql source: {:?}", c.source)
    };
    assert_eq!(my.port, 3306);
    assert_eq!(my.password.as_ref().unwrap().expose_secret(), "hunter2");
    assert_eq!(
        c.source.component().describe(),
        "mysql weir@localhost:3306 (databases shop)"
    );
    assert!(!format!("{c:?}").contains("hunter2"));

    let errors = fx.errors(&mysql(
        "kind = \"mysql\"\nuser = \"weir\"\ndatabases = []\ntables = [\"other.t\", \"bare\"]\n\
         snapshot_chunk_rows = 0\nheartbeat_secs = 0",
    ));
    let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "source.databases",
            "source.tables[0]",
            "source.tables[1]",
            "source.snapshot_chunk_rows",
            "source.heartbeat_secs"
        ],
        "{errors:?}"
    );
}

#[test]
fn the_sql_sink_examples_read_and_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/pipelines");
    let env = |name: &str| name.ends_with("PASSWORD").then(|| "secret".to_owned());
    let text = std::fs::read_to_string(dir.join("replica.toml")).unwrap();
    let c = PipelineConfig::from_str(&text, &dir, &env).unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<&str> = c
        .sinks
        .iter()
        .map(|s| match &s.kind {
            SinkKind::Postgres(p) => {
                assert!(p.create_tables);
                assert_eq!(
                    p.origin("replica", &s.name).as_deref(),
                    Some("weir_replica.replica")
                );
                "postgres"
            }
            SinkKind::Mysql(m) => {
                assert_eq!(m.tables["public.orders"], "reporting.orders");
                "mysql"
            }
            other => panic!("unexpected sink {other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["postgres", "mysql"]);
    // The resolver is built by `weir plugin build`; a stand-in file here.
    let text = std::fs::read_to_string(dir.join("east-to-west.toml"))
        .unwrap()
        .replace(
            "../../target/wasm32-wasip2/release/resolvers.wasm",
            "plugins/router.wasm",
        );
    let fx = Fixture::new();
    let c = PipelineConfig::from_str(&text, fx.dir.path(), &env).unwrap_or_else(|e| panic!("{e}"));
    let SourceConfig::Postgres(source) = &c.source else {
        panic!("not a postgres source")
    };
    assert_eq!(source.skip_origins, ["weir_*"]);
    let conflicts = c.sinks[0].conflicts.as_ref().expect("a conflicts section");
    assert_eq!(
        (conflicts.region.as_str(), conflicts.source_region.as_str()),
        ("west", "east")
    );
    assert!(conflicts.resolver.path.is_absolute());
    assert_eq!(conflicts.resolver.config["strategy"], "last-writer-wins");
    assert_eq!(
        conflicts.log_path(&c.state_dir, "west"),
        c.state_dir.join("conflicts-west.jsonl")
    );
}

#[test]
fn conflicts_sections_are_checked() {
    let fx = Fixture::new();
    let sink = |extra: &str, conflicts: &str| {
        format!(
            "{BASE}\n[[sinks]]\nname = \"db\"\n{extra}\n[sinks.conflicts]\n{conflicts}\n\
             [sinks.conflicts.resolver]\nname = \"r\"\npath = \"plugins/router.wasm\"\n"
        )
    };
    let pg = "kind = \"postgres\"\nuser = \"u\"\ndatabase = \"d\"";
    let c = fx
        .parse(&sink(pg, "region = \"west\"\nsource_region = \"east\""))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(c.sinks[1].conflicts.is_some());
    let errors = fx.errors(&sink(
        "kind = \"file\"\ndir = \"out2\"",
        "region = \"West\"\nsource_region = \"West\"\nversion_column = \"\"",
    ));
    let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "sinks[1].conflicts.region",
            "sinks[1].conflicts.source_region",
            "sinks[1].conflicts.source_region",
            "sinks[1].conflicts.version_column",
            "sinks[1].conflicts"
        ],
        "{errors:?}"
    );
    assert!(errors[4].1.contains("`kind = \"postgres\"`"), "{errors:?}");
    let errors = fx.errors(&sink(
        &format!("{pg}\nreplication_origin = \"mine\""),
        "region = \"west\"\nsource_region = \"east\"",
    ));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].1.contains("`weir_east`"), "{errors:?}");
}

#[test]
fn sql_sink_problems_are_reported_with_their_paths() {
    let fx = Fixture::new();
    let text = format!(
        "{BASE}\n[[sinks]]\nname = \"db\"\nkind = \"postgres\"\nuser = \"\"\ndatabase = \"d\"\n\
         checkpoint_table = \"a.b.c\"\n"
    );
    let err = fx.parse(&text).unwrap_err().to_string();
    assert!(err.contains("sinks[1].user: must not be empty"), "{err}");
    assert!(err.contains("sinks[1].checkpoint_table"), "{err}");
}

#[test]
fn admin_sections_are_checked() {
    let fx = Fixture::new();
    let c = fx
        .parse(&format!(
            "{BASE}\n[admin]\naddress = \"127.0.0.1:9187\"\nadmin_token = \"${{PGPASSWORD}}-0123456789\"\n"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    let admin = c.admin.as_ref().expect("an admin section");
    assert_eq!(admin.socket_addr().port(), 9187);
    assert!(admin.tokens().unwrap().admin.is_some());
    assert!(
        !format!("{c:?}").contains("hunter2"),
        "the token shows in Debug"
    );
    let errors = fx.errors(&format!(
        "{BASE}\n[admin]\naddress = \"localhost\"\nread_token = \"short\"\n\
         admin_token = \"short\"\nadmin_token_file = \"t\"\n"
    ));
    let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "admin.address",
            "admin.admin_token",
            "admin.read_token",
            "admin.admin_token",
            "admin.read_token"
        ],
        "{errors:?}"
    );
    let errors = fx.errors(&format!("{BASE}\n[admin]\naddress = \"127.0.0.1:1\"\n"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].1.contains("never runs without a token"),
        "{errors:?}"
    );
}
