//! The `weir` command end to end: every bundled plugin, compiled from
//! source, run by `weir plugin test` over its golden cases; `inspect`; and
//! the errors a user sees.

mod active_active;
mod admin;
mod bundles;
mod demo;
mod index;
mod kafka;
mod languages;
mod mysql;
mod pipeline;
mod scaffold;
mod shadow;
mod sql;
mod status_page;
mod worker;

use std::process::Command;

use serde_json::Value as Json;
use weir_tests::{compare_golden, components, golden_cases};

fn weir() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    let target = weir_tests::repo_root().join("target");
    cmd.env("WEIR_CACHE_DIR", target.join("weir-test-cache"));
    with_componentizers(&mut cmd);
    cmd
}

/// Points `cmd` at the componentizers `scripts/test` installs, when the
/// environment does not name them itself (a plain `cargo nextest run`
/// after one `scripts/test`).
fn with_componentizers(cmd: &mut Command) {
    cmd.envs(weir_tests::installed_componentizers());
}

/// Runs `cmd`, failing the test with its output unless it succeeds;
/// returns its standard output and error, together.
fn succeeds(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?}:\n{text}");
    text
}

fn run_golden(plugin: &str) {
    run_golden_on(plugin, components::bundled(plugin), "rust");
}

/// Runs `component` over the golden cases of the bundled plugin `plugin`.
fn run_golden_on(plugin: &str, component: &str, label: &str) {
    for case in golden_cases(plugin) {
        let out = weir()
            .args(["plugin", "test", component, "--input"])
            .arg(&case.input)
            .arg("--config")
            .arg(&case.config)
            .output()
            .expect("weir runs");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        let actual: Vec<Json> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        if let Err(diff) = compare_golden(&actual, &case.expected) {
            panic!(
                "{plugin}/{} ({label}): {diff}\nstderr:\n{stderr}",
                case.name
            );
        }
        // Router cases may hold expected errors; everything else succeeds.
        let expects_errors = case.expected.iter().any(|e| e.get("error").is_some());
        assert_eq!(
            out.status.success(),
            !expects_errors,
            "{plugin}/{} ({label}): exit status {:?}\nstderr:\n{stderr}",
            case.name,
            out.status
        );
    }
}

#[test]
fn pii_mask_golden() {
    run_golden("pii-mask");
}

#[test]
fn filter_golden() {
    run_golden("filter");
}

#[test]
fn table_router_golden() {
    run_golden("table-router");
}

#[test]
fn outbox_router_golden() {
    run_golden("outbox-router");
}

#[test]
fn resolvers_golden() {
    run_golden("resolvers");
}

#[test]
fn inspect_reports_world_contract_and_imports() {
    let out = weir()
        .args(["plugin", "inspect", "--json", components::PII_MASK])
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["world"], "transformer");
    assert_eq!(doc["contract"], "weir:plugin@0.1.0");
    assert_eq!(doc["capabilities"], serde_json::json!([]));
    let exports: Vec<&str> = doc["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        exports.contains(&"transform") && exports.contains(&"init"),
        "{exports:?}"
    );
    assert!(doc["size"].as_u64().unwrap() > 0);
    assert_eq!(doc["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn failing_events_are_reported_with_their_line_and_reason() {
    let dir = std::env::temp_dir().join(format!("weir-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("events.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"op":"c","source":{"table":"t"},"after":{"id":1,"action":"ok"}}"#,
            "\n",
            r#"{"op":"c","source":{"table":"t"},"after":{"id":2,"action":"panic"}}"#,
            "\n",
            "this is not json\n",
            r#"{"op":"c","source":{"table":"t"},"after":{"id":4,"action":"ok"}}"#,
            "\n",
        ),
    )
    .unwrap();
    let out = weir()
        .args(["plugin", "test", components::MISBEHAVE, "--input"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let ids: Vec<i64> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Json>(l).unwrap()["after"]["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(ids, vec![1, 4], "good events still come out, in order");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("line 2: misbehave (trap): "), "{stderr}");
    assert!(stderr.contains("poison event in table t"), "{stderr}");
    assert!(
        stderr.contains("line 3: not a valid event: not JSON"),
        "{stderr}"
    );
    assert!(stderr.contains("2 of 4 input lines failed"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_forbidden_import_stops_the_command_with_the_reason() {
    let out = weir()
        .args(["plugin", "test", components::NET_CLIENT, "--input", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("needs the `network` capability"),
        "{stderr}"
    );
}
