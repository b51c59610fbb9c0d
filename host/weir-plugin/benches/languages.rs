//! The same pii-mask rules as a plugin in Rust, Python, JavaScript and C:
//! component size, start-up, and per-event cost, measured in one run so
//! the ratios to Rust hold however busy the machine is.
//!
//! `cargo bench -p weir-plugin --bench languages`
//!
//! Builds `examples/plugins/{python,js,c}/pii-mask` with the componentizers
//! `scripts/test` installs under `target/tools` (or those
//! `WEIR_COMPONENTIZE_PY` / `WEIR_COMPONENTIZE_JS` name) and clang. Columns:
//!
//! - cold start: compile the component, instantiate it, run `init`, with an
//!   empty artifact cache (what the first load of a new version costs);
//! - warm start: the same with the compiled artifact cached (a restart, or a
//!   reload back to a version seen before);
//! - µs/event: one batch of 1000 8-column events, median of the runs;
//!   "1 column" masks `email` by name, "detectors" is the default config
//!   (every text value through every detector).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weir_core::ChangeEvent;
use weir_plugin::{EngineOptions, PluginEngine, PluginSpec, TransformerPlugin};
use weir_plugin_build::guest::{GuestProject, Lang};
use weir_tests::components;

mod common;

use common::{BATCH, events, mask_config};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (var, path) in weir_tests::installed_componentizers() {
        // SAFETY: single-threaded here, before anything reads the environment.
        unsafe { std::env::set_var(var, path) };
    }
    let mut plugins = vec![("rust", PathBuf::from(components::PII_MASK))];
    for (label, dir, lang) in [
        ("python", "examples/plugins/python/pii-mask", Lang::Python),
        ("js", "examples/plugins/js/pii-mask", Lang::Js),
        ("c", "examples/plugins/c/pii-mask", Lang::C),
    ] {
        eprintln!("building {dir}...");
        let project = GuestProject::read(&root.join(dir), lang).unwrap_or_else(|e| panic!("{e}"));
        plugins.push((label, project.build().unwrap_or_else(|e| panic!("{e}"))));
    }

    let input = events();
    let detectors = serde_json::json!({});
    let mut rows = Vec::new();
    let mut reference: Option<[Vec<ChangeEvent>; 2]> = None;
    for (label, wasm) in &plugins {
        eprintln!("measuring {label}...");
        let size = std::fs::metadata(wasm).expect("component").len();
        let cache = std::env::temp_dir().join(format!("weir-bench-lang-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache);
        let load = |config: serde_json::Value| {
            let engine = PluginEngine::new(EngineOptions {
                cache_dir: Some(cache.clone()),
                ..EngineOptions::default()
            })
            .expect("engine");
            let spec = PluginSpec::new(*label, wasm.to_str().unwrap()).with_config(config);
            let start = Instant::now();
            let plugin = TransformerPlugin::load(&engine, &spec).expect("loads");
            (start.elapsed(), plugin, engine)
        };
        let (cold, _, _) = load(mask_config());
        let (warm, mut one, _e1) = load(mask_config());
        let (_, mut all, _e2) = load(detectors.clone());

        // Every language must produce the same events before any is timed.
        let outputs = [run(&mut one, &input), run(&mut all, &input)];
        match &reference {
            None => reference = Some(outputs),
            Some(r) => assert!(
                r == &outputs,
                "{label} masks differently from the Rust plugin"
            ),
        }
        rows.push((
            *label,
            size,
            cold,
            warm,
            per_event(&mut one, &input),
            per_event(&mut all, &input),
        ));
        let _ = std::fs::remove_dir_all(&cache);
    }

    let (.., rust_one, rust_all) = rows[0];
    println!(
        "| plugin | size | cold start | warm start | µs/event, 1 column | × Rust | µs/event, detectors | × Rust |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (label, size, cold, warm, one, all) in rows {
        println!(
            "| pii-mask ({label}) | {:.1} MB | {:.0} ms | {:.1} ms | {one:.2} | {:.1}× | {all:.2} | {:.1}× |",
            size as f64 / 1e6,
            cold.as_secs_f64() * 1e3,
            warm.as_secs_f64() * 1e3,
            one / rust_one,
            all / rust_all,
        );
    }
}

fn run(plugin: &mut TransformerPlugin, input: &[ChangeEvent]) -> Vec<ChangeEvent> {
    plugin
        .transform(input.to_vec())
        .into_iter()
        .flat_map(|r| r.expect("no event fails"))
        .collect()
}

/// Median µs per event over runs of one batch (at least 5 runs and about
/// two seconds, after two warm-up runs).
fn per_event(plugin: &mut TransformerPlugin, input: &[ChangeEvent]) -> f64 {
    for _ in 0..2 {
        run(plugin, input);
    }
    let mut times = Vec::new();
    let budget = Instant::now();
    while times.len() < 5 || (budget.elapsed() < Duration::from_secs(2) && times.len() < 500) {
        let batch = input.to_vec();
        let start = Instant::now();
        let out = plugin.transform(batch);
        times.push(start.elapsed());
        assert_eq!(out.len(), BATCH);
    }
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1e6 / BATCH as f64
}
