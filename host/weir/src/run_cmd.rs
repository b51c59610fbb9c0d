//! `weir run` and `weir validate`: one pipeline from its TOML file.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{info, warn};
use weir_pipeline::config::ConfigFile;
use weir_pipeline::{PipelineConfig, Stats};
use weir_plugin::{EngineOptions, PluginEngine, World};

/// Loads a config, printing every error with its field path.
pub fn load(path: &Path) -> Option<PipelineConfig> {
    loaded(path, PipelineConfig::from_file(path))
}

/// The config, or `None` after printing every error with its field path.
pub fn loaded<C>(path: &Path, result: Result<C, weir_pipeline::config::ConfigErrors>) -> Option<C> {
    match result {
        Ok(config) => Some(config),
        Err(errors) => {
            eprintln!("{}: {} error(s):", path.display(), errors.errors.len());
            for e in &errors.errors {
                eprintln!("  {}: {}", e.path, e.message);
            }
            None
        }
    }
}

/// `weir validate FILE`: the config (a pipeline's, or a worker's) parses,
/// every field is valid, and every plugin is a component of the right
/// world. Exit 0, or 1 with each error.
pub fn validate(path: &Path) -> anyhow::Result<ExitCode> {
    let Some(config) = loaded(path, ConfigFile::from_file(path)) else {
        return Ok(ExitCode::from(1));
    };
    let (setup, summary, warnings) = match &config {
        ConfigFile::Pipeline(config) => (
            config.plugin_setup(),
            format!(
                "pipeline `{}` is valid: {}, {} plugin(s), {} sink(s)",
                config.name,
                config.source.component().describe(),
                config.plugins.len(),
                config.sinks.len()
            ),
            config.warnings(),
        ),
        ConfigFile::Worker(config) => (
            config.plugin_setup(&config.state_dir),
            format!(
                "worker `{}` is valid: reads {}, {} plugin(s), writes topics `{}.*`",
                config.name,
                config.input.topics.join(", "),
                config.plugins.len(),
                config.output.prefix(&config.name)
            ),
            Vec::new(),
        ),
    };
    let engine = PluginEngine::new(EngineOptions::default()).map_err(anyhow::Error::msg)?;
    let mut errors = Vec::new();
    let shadows: Vec<_> = (setup.plugins.iter().enumerate())
        .filter_map(|(i, p)| Some((format!("plugins[{i}].shadow"), p.shadow()?)))
        .collect();
    let plugins = (setup.plugins.iter().enumerate())
        .map(|(i, p)| (format!("plugins[{i}].path"), p, World::Transformer))
        .chain((shadows.iter()).map(|(field, p)| (field.clone(), p, World::Transformer)))
        .chain(
            setup
                .router
                .plugin
                .iter()
                .map(|p| ("router.plugin.path".to_owned(), p, World::Router)),
        );
    let scratch = std::env::temp_dir().join(format!("weir-validate-{}", std::process::id()));
    for (field, plugin, world) in plugins {
        let spec = match weir_pipeline::admission::admit(&engine, plugin, setup.trust, &scratch) {
            Ok(admitted) => admitted.spec,
            Err(e) => {
                errors.push(format!("{field}: {e}"));
                continue;
            }
        };
        match engine.inspect(&plugin.name, &spec.path) {
            Ok(info) if info.world == Some(world) => {}
            Ok(info) => errors.push(format!(
                "{field}: `{}` is {}, but this place needs a {world} plugin",
                plugin.path.display(),
                info.world
                    .map_or("not a Weir plugin".to_owned(), |w| format!("a {w} plugin")),
            )),
            Err(e) => errors.push(format!("{field}: {e}")),
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    if !errors.is_empty() {
        eprintln!("{}: {} error(s):", path.display(), errors.len());
        for e in &errors {
            eprintln!("  {e}");
        }
        return Ok(ExitCode::from(1));
    }
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    println!("{}: {summary}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// `weir run --config FILE`: runs until SIGINT or SIGTERM, then finishes the
/// batch in flight, checkpoints and exits 0.
pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let Some(config) = load(path) else {
        return Ok(ExitCode::from(1));
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            info!("Shutdown requested; finishing the batch in flight.");
            let _ = stop_tx.send(true);
        });
        let stats = Arc::new(Stats::default());
        crate::logs::set_pipeline(&config.name, Arc::clone(&stats));
        let admin = match &config.admin {
            None => None,
            Some(a) => {
                let tokens = a.tokens().map_err(|e| anyhow::anyhow!(e))?;
                let setup = weir_admin::Setup {
                    stages: stages(&config),
                    address: a.socket_addr(),
                    tokens,
                    tls: a.tls.clone(),
                    pipeline: config.name.clone(),
                    state_dir: config.state_dir.clone(),
                    anomaly_interval: Duration::from_millis(a.anomaly_interval_ms),
                };
                let started = weir_admin::start(setup, Arc::clone(&stats), stop_rx.clone()).await;
                match started {
                    Ok(handle) => Some(handle),
                    Err(e) => {
                        eprintln!(
                            "error: pipeline `{}`: the admin API cannot listen on {}: {e}",
                            config.name, a.address
                        );
                        return Ok(ExitCode::from(1));
                    }
                }
            }
        };
        let reporter = tokio::spawn(report_progress(Arc::clone(&stats), Duration::from_secs(10)));
        let bar = tokio::spawn(crate::logs::snapshot_bar(Arc::clone(&stats)));
        info!(pipeline = %config.name, "Pipeline starting.");
        for warning in config.warnings() {
            warn!(pipeline = %config.name, "{warning}");
        }
        let result = weir_pipeline::run(&config, stop_rx, Arc::clone(&stats)).await;
        reporter.abort();
        bar.abort();
        if let Some(admin) = admin {
            admin.abort();
        }
        match result {
            Ok(()) => {
                info!(
                    pipeline = %config.name,
                    events = stats.events_out.load(Ordering::Relaxed),
                    "Pipeline stopped cleanly."
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("error: pipeline `{}` stopped: {e}", config.name);
                Ok(ExitCode::from(1))
            }
        }
    })
}

/// The pipeline's stages as the status page draws them; no secrets.
fn stages(config: &PipelineConfig) -> serde_json::Value {
    serde_json::json!({
        "source": {
            "kind": config.source.kind(),
            "describe": config.source.component().describe(),
        },
        "plugins": config.plugins.iter().map(|p| &p.name).collect::<Vec<_>>(),
        "router": match (&config.router.template, &config.router.plugin) {
            (_, Some(p)) => serde_json::json!({ "plugin": p.name }),
            (Some(t), None) => serde_json::json!({ "template": t }),
            (None, None) => serde_json::Value::Null,
        },
        "sinks": config.sinks.iter().map(|s| serde_json::json!({
            "name": s.name,
            "kind": s.kind.kind(),
        })).collect::<Vec<_>>(),
    })
}

pub async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Logs throughput every `every`.
pub async fn report_progress(stats: Arc<Stats>, every: Duration) {
    let mut last = (Instant::now(), 0u64);
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let out = stats.events_out.load(Ordering::Relaxed);
        let rate = (out - last.1) as f64 / last.0.elapsed().as_secs_f64();
        last = (Instant::now(), out);
        let source = stats.source.borrow().clone();
        let snapshot = source
            .snapshot
            .filter(|_| source.phase == weir_connect::Phase::Snapshot)
            .map(|s| {
                format!(
                    "{}/{} tables, {} rows",
                    s.tables_done, s.tables_total, s.rows
                )
            });
        info!(
            phase = source.phase.label(),
            position = source.acknowledged.as_deref().unwrap_or("-"),
            snapshot = snapshot.as_deref().unwrap_or("-"),
            events_in = stats.events_in.load(Ordering::Relaxed),
            events_out = out,
            events_per_sec = rate as u64,
            dead_letters = stats.dead_letters.load(Ordering::Relaxed),
            checkpoints = stats.checkpoints.load(Ordering::Relaxed),
            "Pipeline progress."
        );
    }
}
