//! The alert rules and the dashboard in `deploy/`: the rules pass
//! `promtool check rules` and their unit tests (`promtool test rules`,
//! Prometheus's own tool from Debian's `prometheus` package, which the test
//! command installs), and every metric an alert or a dashboard panel names
//! is one that weir exports.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use weir_connect::{Phase, SnapshotProgress, SourceProgress, TableSnapshot};
use weir_pipeline::Stats;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(deploy().join("prometheus"))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}); install Debian's `prometheus` package (scripts/test does)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let checked = promtool(&["check", "rules", "weir-alerts.yml"]);
    assert!(checked.contains("SUCCESS: 8 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "weir-alerts.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// Every series name weir's `/metrics` can show, from the registry with
/// every optional family present.
fn exported() -> BTreeSet<String> {
    let stats = Arc::new(Stats::default());
    stats.events_in.store(3, Ordering::Relaxed);
    stats.latency.observe(1_000_000, 1_002_000, 3);
    stats.source.send_replace(SourceProgress {
        phase: Phase::Snapshot,
        acknowledged: Some("0/1".into()),
        snapshot: Some(SnapshotProgress::of(vec![TableSnapshot {
            table: "public.t".into(),
            rows: 10,
            estimated_rows: Some(20),
            done: false,
        }])),
        behind_bytes: Some(5),
    });
    stats.last_checkpoint_us.store(1, Ordering::Relaxed);
    stats
        .destinations
        .lock()
        .unwrap()
        .insert("public.t".into(), 3);
    stats
        .sink("files")
        .write
        .observe(std::time::Duration::from_millis(2));
    *stats.plugins.lock().unwrap() = vec![weir_pipeline::reload::PluginState {
        name: "mask".into(),
        role: "transformer",
        version: "pii-mask@1.0.0+abc".into(),
        signer: None,
        probation: true,
        shadow: Some(weir_pipeline::reload::ShadowState {
            version: "pii-mask@1.1.0+def".into(),
            counts: weir_pipeline::shadow::Counts {
                compared: 3,
                outcomes: [("changed", 1)].into_iter().collect(),
                fields: [("after.email".to_owned(), 1)].into_iter().collect(),
            },
        }),
    }];
    *stats.plugin_calls.lock().unwrap() = vec![weir_pipeline::reload::PluginCalls {
        name: "mask".into(),
        buckets: vec![1; weir_pipeline::latency::BUCKETS.len() + 1],
        seconds: 0.5,
        failures: [("trap", 2)].into_iter().collect(),
    }];
    let registry = weir_admin::metrics::registry("p", stats, Default::default());
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// The `weir_` names in a text.
fn named(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("weir_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn alerts_and_dashboard_name_only_exported_metrics() {
    let exported = exported();
    for family in [
        "weir_events_in_total",
        "weir_end_to_end_latency_seconds_bucket",
        "weir_source_lag_bytes",
        "weir_snapshot_rows_total",
    ] {
        assert!(exported.contains(family), "{family} not in {exported:?}");
    }
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(deploy().join("grafana/weir-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{panel}");
        for t in targets {
            exprs.push(t["expr"].as_str().unwrap().to_owned());
        }
    }
    let rules = std::fs::read_to_string(deploy().join("prometheus/weir-alerts.yml")).unwrap();
    // The rules' comments and annotations name no metrics.
    let rule_exprs: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .collect();
    assert_eq!(rule_exprs.len(), 8);
    let mut used = BTreeSet::new();
    for e in exprs.iter().map(String::as_str).chain(rule_exprs) {
        used.extend(named(e));
    }
    let unknown: Vec<&String> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "not exported: {unknown:?} (exported: {exported:?})"
    );
    // A panel for every metric family weir exports.
    let families: BTreeSet<String> = exported
        .iter()
        .map(|n| {
            ["_total", "_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(n)
                .to_owned()
        })
        .collect();
    let in_dashboard: BTreeSet<String> = exprs
        .iter()
        .flat_map(|e| named(e))
        .map(|n| {
            ["_total", "_bucket"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(&n)
                .to_owned()
        })
        .collect();
    let missing: Vec<&String> = families.difference(&in_dashboard).collect();
    assert!(missing.is_empty(), "no panel for {missing:?}");
}
