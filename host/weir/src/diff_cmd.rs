//! `weir plugin diff OLD NEW --input events.jsonl`: runs two versions of a
//! transformer over the same events and prints where their outputs
//! differ, the comparison a shadow deploy makes on live traffic
//! (`weir_pipeline::shadow`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use weir_core::envelope;
use weir_pipeline::shadow::{Counts, Difference, compare, sample};
use weir_plugin::{Capability, PluginEngine, PluginSpec, TransformerPlugin, World};

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The version running now: a component (.wasm) or a bundle (.weirpkg).
    old: PathBuf,
    /// The candidate: a component (.wasm) or a bundle (.weirpkg).
    new: PathBuf,
    /// Input events, one Debezium envelope per line (`-` for standard
    /// input).
    #[arg(long)]
    input: PathBuf,
    /// Both versions' config: a JSON or TOML file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The candidate's config, when it differs from `--config`.
    #[arg(long)]
    new_config: Option<PathBuf>,
    /// Grant a capability to both: clock, random, filesystem, network.
    #[arg(long = "grant", value_parser = crate::plugin_cmd::parse_capability)]
    grants: Vec<Capability>,
    /// Print each difference as a JSON line (outcome, fields, table, both
    /// outputs) instead of text.
    #[arg(long)]
    json: bool,
}

/// Compares the two versions; exit 0 when they agree on every event, 1
/// when some differ (like diff(1)).
pub fn diff(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let engine = crate::plugin_cmd::engine()?;
    let config = crate::plugin_cmd::read_config(args.config.as_deref())?;
    let new_config = match &args.new_config {
        Some(path) => crate::plugin_cmd::read_config(Some(path))?,
        None => config.clone(),
    };
    let mut old = load(&engine, &args.old, "diff-old", config, &args.grants)?;
    let mut new = load(&engine, &args.new, "diff-new", new_config, &args.grants)?;
    let mut events = Vec::new();
    let mut line_of = Vec::new();
    for (n, line) in crate::plugin_cmd::read_input(&args.input)? {
        let event = envelope::from_envelope_str(&line)
            .with_context(|| format!("input line {n} is not a valid event"))?;
        events.push(event);
        line_of.push(n);
    }
    let live = old.transform(events.clone());
    let candidate = new.transform(events);
    let mut counts = Counts::default();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for ((l, c), n) in live.iter().zip(&candidate).zip(&line_of) {
        let difference = compare(l, c);
        counts.add(difference.as_ref());
        let Some(d) = difference else {
            continue;
        };
        if args.json {
            let mut doc = sample(&d, l, c);
            doc["line"] = (*n).into();
            writeln!(out, "{doc}")?;
        } else {
            writeln!(out, "line {n}: {}", describe(&d, l, c))?;
        }
    }
    out.flush()?;
    drop(out);
    eprintln!("{}", summary(&counts));
    Ok(if counts.differed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A transformer from a component or a bundle (its component extracted
/// for as long as the file loads).
fn load(
    engine: &PluginEngine,
    file: &Path,
    purpose: &str,
    config: serde_json::Value,
    grants: &[Capability],
) -> anyhow::Result<TransformerPlugin> {
    let plugin = crate::bundle_cmd::PluginFile::open(file, purpose)?;
    let (name, component) = (&plugin.name, &plugin.component);
    let info = engine.inspect(name, component)?;
    if info.world != Some(World::Transformer) {
        bail!(
            "{} is {}; diff compares transformers",
            file.display(),
            info.world
                .map_or("not a Weir plugin".to_owned(), |w| format!(
                    "a {}",
                    w.name()
                ))
        );
    }
    let spec = PluginSpec::new(name, component)
        .with_config(config)
        .with_grants(grants.to_vec());
    TransformerPlugin::load(engine, &spec)
        .with_context(|| format!("cannot load {}", file.display()))
}

/// One difference in words.
fn describe(
    d: &Difference,
    live: &weir_pipeline::shadow::Outcome,
    candidate: &weir_pipeline::shadow::Outcome,
) -> String {
    let failure = |o: &weir_pipeline::shadow::Outcome| match o {
        Err(f) => format!("{}: {}", f.kind.label(), f.message),
        Ok(_) => String::new(),
    };
    match d {
        Difference::Changed(fields) => format!("changed {}", fields.join(", ")),
        Difference::Dropped => "dropped (OLD kept it, NEW dropped it)".to_owned(),
        Difference::Kept => "kept (OLD dropped it, NEW kept it)".to_owned(),
        Difference::Failed(_) => format!("failed in NEW ({})", failure(candidate)),
        Difference::Passed => format!("passed in NEW (OLD failed: {})", failure(live)),
    }
}

/// `N events compared: ...` and the changed fields.
fn summary(counts: &Counts) -> String {
    let same = counts.compared - counts.differed();
    let mut parts = vec![format!("{same} same")];
    parts.extend(counts.outcomes.iter().map(|(k, v)| format!("{v} {k}")));
    let mut text = format!("{} events compared: {}", counts.compared, parts.join(", "));
    if !counts.fields.is_empty() {
        let fields: Vec<String> = (counts.fields.iter())
            .map(|(f, n)| format!("{f} {n}"))
            .collect();
        text.push_str(&format!("\nchanged fields: {}", fields.join(", ")));
    }
    text
}
