//! `weir plugin ...`: inspect a component, run it over events, build one.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use weir_core::envelope;
use weir_pipeline::reload::Command;
use weir_plugin::{
    Capability, EngineOptions, PluginEngine, PluginLimits, PluginSpec, ResolverPlugin,
    RouterPlugin, TransformerPlugin, World,
};

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Show a component's world, contract version, imports, exports and size.
    Inspect {
        /// The component (.wasm).
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a plugin over JSON-lines input and print the results as JSON lines.
    ///
    /// Transformers read Debezium envelopes and print one envelope per
    /// output event. Routers print `{"to": [...]}` per input event.
    /// Resolvers read `{"local", "local_meta", "incoming"}` conflicts and
    /// print `{"resolution": ...}`. Failures go to standard error with the
    /// input line number and the reason, and the exit code is 1.
    Test(TestArgs),
    /// Create a plugin project with a passing test and fixtures.
    New {
        /// The project's directory; its name is the plugin's name.
        dir: PathBuf,
        /// The plugin's language.
        #[arg(long, default_value = "rust", value_parser = ["rust", "python", "js", "c"])]
        lang: String,
        /// What the plugin is: a transformer (events in, events out), a
        /// router (names each event's destinations) or a resolver (settles
        /// active-active conflicts).
        #[arg(long, default_value = "transformer", value_parser = ["transformer", "router", "resolver"])]
        world: String,
    },
    /// Make a signing key pair: PREFIX.key (secret) and PREFIX.pub.
    Keygen {
        /// Path prefix of the two key files.
        prefix: PathBuf,
    },
    /// Pack a component (with optional test fixtures) into an unsigned
    /// bundle (.weirpkg).
    Pack(crate::bundle_cmd::PackArgs),
    /// Sign a bundle with a key from `weir plugin keygen`.
    Sign {
        /// The bundle (.weirpkg), signed in place.
        bundle: PathBuf,
        /// The secret key file.
        #[arg(long)]
        key: PathBuf,
    },
    /// Check a bundle's integrity and signature; print signer, digest and
    /// capabilities. Exit 1 with the reason if it is not to be trusted.
    Verify {
        /// The bundle (.weirpkg).
        bundle: PathBuf,
        /// A trusted public key (`ed25519:...`, or a .pub file); may repeat.
        /// With none, any valid signature verifies.
        #[arg(long = "trusted-key")]
        trusted_keys: Vec<String>,
    },
    /// Ask a running pipeline to check its plugin files now and swap in new
    /// versions (through its admin API when the file has `[admin]`, else
    /// the admin socket in its state directory).
    Reload {
        /// The running pipeline's (or worker's) TOML file.
        #[arg(long, short)]
        config: PathBuf,
        /// For a worker: the instance to reload (default: the host name).
        #[arg(long)]
        instance: Option<String>,
    },
    /// Swap a transformer's shadow candidate (`shadow = ...`) in at the
    /// next transaction boundary, on probation, in a running pipeline
    /// (through its admin API when the file has `[admin]`, else the admin
    /// socket in its state directory).
    Promote {
        /// The transformer's name in the pipeline.
        plugin: String,
        /// The running pipeline's (or worker's) TOML file.
        #[arg(long, short)]
        config: PathBuf,
        /// For a worker: the instance (default: the host name).
        #[arg(long)]
        instance: Option<String>,
    },
    /// Run two versions of a transformer over the same events and print
    /// where their outputs differ. Exit 0 if they agree on every event, 1
    /// if not.
    Diff(crate::diff_cmd::DiffArgs),
    /// Add a signed bundle to a plugin index: a directory any web server
    /// can serve (`index.json` and the bundles).
    Publish(crate::index_cmd::PublishArgs),
    /// Mark a published version yanked: installs skip it, pipelines that
    /// pinned it keep it.
    Yank(crate::index_cmd::YankArgs),
    /// List the plugins of an index, newest version of each.
    Search(crate::index_cmd::SearchArgs),
    /// Fetch a plugin from an index, check its signature against the
    /// trusted keys and its digest against the index, and place it in the
    /// local plugin store, where pipelines name it by `plugin =
    /// "NAME@REQ"`.
    Install(crate::index_cmd::InstallArgs),
    /// Build a plugin project into a component: a Rust crate (cargo,
    /// wasm32-wasip2), a Python project (componentize-py), a JavaScript
    /// project (componentize-js) or a C project (clang, wasm32-wasi).
    Build {
        /// The project's directory.
        dir: PathBuf,
        /// Rust only: build without optimisations (faster to build, slower
        /// to run).
        #[arg(long)]
        debug: bool,
    },
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The component (.wasm) or a bundle (.weirpkg). A bundle without
    /// `--input` runs its own fixtures (config, input, expected output).
    file: PathBuf,
    /// The plugin's config: a JSON or TOML file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Input events, one JSON document per line (`-` for standard input).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Expected output, one JSON document per output line: the run fails
    /// at the first line that differs. Every key an expected line has must
    /// be equal in the output (for `source`, every sub-key it has); keys it
    /// leaves out are not compared.
    #[arg(long)]
    expect: Option<PathBuf>,
    /// Memory limit in MiB.
    #[arg(long, default_value_t = PluginLimits::default().memory_mb)]
    memory_mb: u64,
    /// Per-batch deadline in milliseconds.
    #[arg(long, default_value_t = PluginLimits::default().deadline_ms)]
    deadline_ms: u64,
    /// Fuel budget per batch.
    #[arg(long)]
    fuel: Option<u64>,
    /// Grant a capability: clock, random, filesystem, network.
    #[arg(long = "grant", value_parser = parse_capability)]
    grants: Vec<Capability>,
}

pub(crate) fn parse_capability(s: &str) -> Result<Capability, String> {
    Capability::parse(s).ok_or_else(|| {
        format!("unknown capability {s:?}; expected one of clock, random, filesystem, network")
    })
}

pub fn run(cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PluginCommand::Inspect { file, json } => inspect(&file, json),
        PluginCommand::Test(args) => test(args),
        PluginCommand::Build { dir, debug } => build(&dir, !debug),
        PluginCommand::Reload { config, instance } => {
            ask(&config, instance.as_deref(), Command::Reload)
        }
        PluginCommand::Promote {
            plugin,
            config,
            instance,
        } => ask(&config, instance.as_deref(), Command::Promote(plugin)),
        PluginCommand::Diff(args) => crate::diff_cmd::diff(args),
        PluginCommand::Publish(args) => crate::index_cmd::publish(args),
        PluginCommand::Yank(args) => crate::index_cmd::yank(args),
        PluginCommand::Search(args) => crate::index_cmd::search(args),
        PluginCommand::Install(args) => crate::index_cmd::install(args),
        PluginCommand::New { dir, lang, world } => crate::new_cmd::new(&dir, &lang, &world),
        PluginCommand::Keygen { prefix } => crate::bundle_cmd::keygen(&prefix),
        PluginCommand::Pack(args) => crate::bundle_cmd::pack(&engine()?, args),
        PluginCommand::Sign { bundle, key } => crate::bundle_cmd::sign(&bundle, &key),
        PluginCommand::Verify {
            bundle,
            trusted_keys,
        } => crate::bundle_cmd::verify(&bundle, &trusted_keys),
    }
}

pub(crate) fn engine() -> anyhow::Result<PluginEngine> {
    PluginEngine::new(EngineOptions::default()).map_err(anyhow::Error::msg)
}

pub(crate) fn plugin_name(file: &Path) -> String {
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".to_owned())
}

fn inspect(file: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    if weir_plugin::bundle::is_bundle(file) && !as_json {
        let component = crate::bundle_cmd::inspect_bundle(file)?;
        return inspect(&component.0, false);
    }
    let info = engine()?.inspect(&plugin_name(file), file)?;
    let world = info.world.map_or("none", World::name);
    let contract = info
        .contract
        .as_deref()
        .map_or("none".to_owned(), |v| format!("weir:plugin@{v}"));
    let needs: Vec<&str> = info.needs.iter().map(|c| c.name()).collect();
    if as_json {
        let doc = json!({
            "world": world,
            "contract": contract,
            "imports": info.imports,
            "exports": info.exports,
            "capabilities": needs,
            "size": info.size,
            "sha256": info.sha256,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("file:         {}", file.display());
        println!("world:        {world}");
        println!("contract:     {contract}");
        println!("size:         {} bytes", info.size);
        println!("sha256:       {}", info.sha256);
        println!(
            "capabilities: {}",
            if needs.is_empty() {
                "none".to_owned()
            } else {
                needs.join(", ")
            }
        );
        println!("imports:");
        for i in &info.imports {
            println!("  {i}");
        }
        println!("exports:");
        for e in &info.exports {
            println!("  {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a plugin config file: JSON, or TOML if the name ends in `.toml`.
pub(crate) fn read_config(path: Option<&Path>) -> anyhow::Result<serde_json::Value> {
    let Some(path) = path else {
        return Ok(json!({}));
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read plugin config {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "toml") {
        let value: toml::Value = toml::from_str(&text)
            .with_context(|| format!("plugin config {} is not valid TOML", path.display()))?;
        Ok(serde_json::to_value(value)?)
    } else {
        serde_json::from_str(&text)
            .with_context(|| format!("plugin config {} is not valid JSON", path.display()))
    }
}

pub(crate) fn read_input(path: &Path) -> anyhow::Result<Vec<(usize, String)>> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin().lock())
    } else {
        std::fs::read_to_string(path)
    }
    .with_context(|| format!("cannot read input {}", path.display()))?;
    Ok(numbered_lines(&text))
}

/// What `weir plugin test` runs: the component, and the input, config and
/// expected output, from the command line or a bundle's fixtures.
struct TestRun {
    plugin: crate::bundle_cmd::PluginFile,
    config: serde_json::Value,
    lines: Vec<(usize, String)>,
    expected: Option<(String, Vec<serde_json::Value>)>,
}

impl TestRun {
    fn new(args: &TestArgs) -> anyhow::Result<TestRun> {
        let expected = match &args.expect {
            Some(path) => Some((
                path.display().to_string(),
                expected_lines(
                    &std::fs::read(path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                    &path.display().to_string(),
                )?,
            )),
            None => None,
        };
        let config = read_config(args.config.as_deref())?;
        if !weir_plugin::bundle::is_bundle(&args.file) && args.input.is_none() {
            bail!(
                "give the input events with --input FILE (a bundle, .weirpkg, runs its own fixtures without it)"
            );
        }
        let plugin = crate::bundle_cmd::PluginFile::open(&args.file, "plugin-test")?;
        let fixtures = plugin.bundle.as_ref().and_then(|b| b.fixtures.clone());
        let mut run = TestRun {
            plugin,
            config,
            lines: Vec::new(),
            expected,
        };
        match (&args.input, &fixtures) {
            (Some(input), _) => run.lines = read_input(input)?,
            (None, Some(fixtures)) => {
                if args.config.is_none() {
                    run.config = serde_json::from_slice(&fixtures.config)
                        .context("the bundle's fixtures/config.json is not JSON")?;
                }
                run.lines = numbered_lines(&String::from_utf8_lossy(&fixtures.input));
                if run.expected.is_none() {
                    run.expected = Some((
                        "the bundle's fixtures/expected.jsonl".into(),
                        expected_lines(&fixtures.expected, "fixtures/expected.jsonl")?,
                    ));
                }
            }
            (None, None) => bail!(
                "{} carries no fixtures: give the input events with --input FILE",
                args.file.display()
            ),
        }
        Ok(run)
    }
}

/// Expected output lines, one JSON document per non-empty line.
fn expected_lines(bytes: &[u8], what: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    numbered_lines(&String::from_utf8_lossy(bytes))
        .into_iter()
        .map(|(n, l)| {
            serde_json::from_str(&l).with_context(|| format!("{what} line {n} is not JSON"))
        })
        .collect()
}

/// The non-empty lines of `text`, each with its line number (from 1).
fn numbered_lines(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.to_owned()))
        .collect()
}

fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let engine = engine()?;
    let run = TestRun::new(&args)?;
    let info = engine.inspect(&run.plugin.name, &run.plugin.component)?;
    let Some(world) = info.world else {
        bail!(
            "{} does not implement any Weir world (exports: {})",
            args.file.display(),
            info.exports.join(", ")
        );
    };
    let spec = PluginSpec::new(&run.plugin.name, &run.plugin.component)
        .with_config(run.config.clone())
        .with_limits(PluginLimits {
            memory_mb: args.memory_mb,
            deadline_ms: args.deadline_ms,
            fuel: args.fuel,
        })
        .with_grants(args.grants.clone());
    let lines = &run.lines;
    let mut actual: Vec<serde_json::Value> = Vec::new();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut emit = |out: &mut BufWriter<_>, line: serde_json::Value| -> std::io::Result<()> {
        writeln!(out, "{line}")?;
        actual.push(line);
        Ok(())
    };
    let mut failures = 0usize;
    let mut fail = |line: usize, reason: &dyn std::fmt::Display| {
        failures += 1;
        eprintln!("line {line}: {reason}");
    };
    match world {
        World::Transformer | World::Router => {
            let mut events = Vec::with_capacity(lines.len());
            let mut line_of = Vec::with_capacity(lines.len());
            for (n, line) in lines {
                match envelope::from_envelope_str(line) {
                    Ok(e) => {
                        events.push(e);
                        line_of.push(*n);
                    }
                    Err(e) => fail(*n, &format!("not a valid event: {e}")),
                }
            }
            if world == World::Transformer {
                let mut plugin = TransformerPlugin::load(&engine, &spec)?;
                for (i, result) in plugin.transform(events).into_iter().enumerate() {
                    match result {
                        Ok(events) => {
                            for e in &events {
                                emit(&mut out, envelope::to_envelope(e))?;
                            }
                        }
                        Err(f) => fail(
                            line_of[i],
                            &format!("{} ({}): {}", f.plugin, f.kind, f.message),
                        ),
                    }
                }
            } else {
                let mut plugin = RouterPlugin::load(&engine, &spec)?;
                for (i, result) in plugin.route(&events).into_iter().enumerate() {
                    match result {
                        Ok(to) => emit(&mut out, json!({ "to": to }))?,
                        Err(f) => {
                            emit(&mut out, json!({ "error": f.message }))?;
                            fail(
                                line_of[i],
                                &format!("{} ({}): {}", f.plugin, f.kind, f.message),
                            );
                        }
                    }
                }
            }
        }
        World::Resolver => {
            let mut plugin = ResolverPlugin::load(&engine, &spec)?;
            for (n, line) in lines {
                let conflict = serde_json::from_str(line)
                    .map_err(envelope::EnvelopeError::from)
                    .and_then(|doc| envelope::conflict_from_json(&doc));
                match conflict {
                    Ok(c) => match plugin.resolve(&c) {
                        Ok(r) => emit(&mut out, envelope::resolution_to_json(&r))?,
                        Err(f) => fail(*n, &format!("{} ({}): {}", f.plugin, f.kind, f.message)),
                    },
                    Err(e) => fail(*n, &format!("not a valid conflict: {e}")),
                }
            }
        }
    }
    out.flush()?;
    drop(out);
    if failures > 0 {
        eprintln!("{failures} of {} input lines failed", lines.len());
        return Ok(ExitCode::from(1));
    }
    if let Some((what, expected)) = &run.expected {
        if let Err(difference) = envelope::compare_expected(&actual, expected) {
            eprintln!("the output differs from {what}: {difference}");
            return Ok(ExitCode::from(1));
        }
        eprintln!("{} output lines match {what}", actual.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn build(dir: &Path, release: bool) -> anyhow::Result<ExitCode> {
    use weir_plugin_build::guest::{GuestProject, Lang, detect};
    let lang = detect(dir).map_err(anyhow::Error::msg)?;
    let built = if lang == Lang::Rust {
        let manifest = weir_plugin_build::manifest_in(dir).map_err(anyhow::Error::msg)?;
        eprintln!(
            "Building {} for {} ({})...",
            dir.display(),
            weir_plugin_build::TARGET,
            if release { "release" } else { "debug" }
        );
        // A project that is its own workspace (as `weir plugin new` makes
        // them) builds in a cache shared by every such project, so the
        // SDK and its dependencies compile once; its component is copied
        // to where cargo would have put it.
        let shared = is_own_workspace(&manifest)
            .then(shared_rust_target)
            .flatten();
        let mut built = weir_plugin_build::build(&weir_plugin_build::BuildRequest {
            manifest,
            packages: Vec::new(),
            target_dir: shared.clone(),
            release,
        })
        .map_err(anyhow::Error::msg)?;
        if shared.is_some() {
            let out = dir
                .join("target")
                .join(weir_plugin_build::TARGET)
                .join(if release { "release" } else { "debug" });
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            for b in &mut built {
                let dest = out.join(b.wasm.file_name().expect("a built file has a name"));
                std::fs::copy(&b.wasm, &dest)
                    .with_context(|| format!("cannot copy the component to {}", dest.display()))?;
                b.wasm = dest;
            }
        }
        built
    } else {
        let project = GuestProject::read(dir, lang).map_err(anyhow::Error::msg)?;
        eprintln!(
            "Building {} ({}, world {}) with {}...",
            dir.display(),
            lang.name(),
            project.world,
            match lang {
                Lang::Python => "componentize-py",
                Lang::Js => "componentize-js",
                _ => "clang",
            }
        );
        let wasm = project.build().map_err(anyhow::Error::msg)?;
        vec![weir_plugin_build::Built {
            package: project.name,
            wasm,
        }]
    };
    let engine = engine()?;
    for b in built {
        let info = engine.inspect(&b.package, &b.wasm)?;
        println!(
            "{}: {} ({} bytes, world {})",
            b.package,
            b.wasm.display(),
            info.size,
            info.world.map_or("none", World::name)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether the crate's `Cargo.toml` makes it a workspace of its own.
fn is_own_workspace(manifest: &Path) -> bool {
    std::fs::read_to_string(manifest)
        .is_ok_and(|text| text.lines().any(|l| l.trim() == "[workspace]"))
}

/// The build cache Rust plugin projects share: `$CARGO_TARGET_DIR` when
/// set, else `$XDG_CACHE_HOME/weir/rust-target`, else
/// `~/.cache/weir/rust-target`.
fn shared_rust_target() -> Option<PathBuf> {
    use weir_plugin::local::{UserDir, process_env, user_dir};
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    Some(user_dir(UserDir::Cache, &process_env)?.join("weir/rust-target"))
}

/// `weir plugin reload` and `weir plugin promote`, with `--config FILE
/// [--instance NAME]`: a pipeline's file, or a worker's (then the instance
/// on this machine). A pipeline with an `[admin]` API is asked through it
/// (`POST /v1/reload` or `/v1/plugins/{name}/promote`, with the admin
/// token); otherwise, and for workers, through the admin socket in the
/// state directory.
fn ask(config: &Path, instance: Option<&str>, command: Command) -> anyhow::Result<ExitCode> {
    use weir_pipeline::config::ConfigFile;
    let (what, state_dir) =
        match ConfigFile::from_file(config).map_err(|e| anyhow::anyhow!("{e}"))? {
            ConfigFile::Pipeline(pipeline) => {
                if let Some(admin) = &pipeline.admin {
                    let client = crate::admin_client::AdminClient::new(admin, config, true)?;
                    let reply = client.post(&match &command {
                        Command::Reload => "/v1/reload".to_owned(),
                        Command::Promote(name) => format!("/v1/plugins/{name}/promote"),
                    })?;
                    let answer = reply["result"]
                        .as_str()
                        .or(reply["error"].as_str())
                        .unwrap_or_default();
                    println!("{answer}");
                    return Ok(if weir_pipeline::reload::reload_failed(answer) {
                        ExitCode::from(1)
                    } else {
                        ExitCode::SUCCESS
                    });
                }
                (
                    format!("pipeline `{}`", pipeline.name),
                    pipeline.state_dir.clone(),
                )
            }
            ConfigFile::Worker(worker) => {
                let instance = crate::worker_cmd::instance_name(instance)?;
                (
                    format!("worker `{}` instance `{instance}`", worker.name),
                    worker.instance_dir(&instance),
                )
            }
        };
    let answer = weir_pipeline::reload::request(&state_dir, &command).with_context(|| {
        format!(
            "cannot reach {what} at {}; is it running?",
            weir_pipeline::reload::admin_socket(&state_dir).display()
        )
    })?;
    println!("{answer}");
    Ok(if weir_pipeline::reload::reload_failed(&answer) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
