//! Shadow deploys: a candidate version runs beside the live one on a live
//! PostgreSQL workload, nothing of it reaches the sink, its differences
//! are counted as hand-computed here, and `weir plugin promote` swaps it
//! in. And `weir plugin diff`, the same comparison offline.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value as Json, json};
use weir_tests::components;

use crate::admin::{free_port, request};
use crate::pipeline::{Setup, read_output, wait_until};
use crate::weir;

const TOKEN: &str = "admin-token-0123456789";

/// Rows 1..=100 as one transaction: `action` is `drop` for ids ending in
/// 0, `skip` for ids ending in 1, `fail` for ids ending in 2, else `none`;
/// every row has an e-mail address.
fn insert_rows(setup: &Setup, ids: std::ops::RangeInclusive<i64>) {
    setup.sql(&format!(
        "INSERT INTO people (id, email, action)
         SELECT i, 'user' || i || '@example.com',
                CASE i % 10 WHEN 0 THEN 'drop' WHEN 1 THEN 'skip' WHEN 2 THEN 'fail' ELSE 'none' END
         FROM generate_series({}, {}) i",
        ids.start(),
        ids.end()
    ));
}

/// The pipeline's shadow state of plugin `name` from `/v1/status`.
fn shadow_of(port: u16, name: &str) -> Json {
    let status = request(port, "GET", "/v1/status", Some(TOKEN))
        .map(|r| r.json())
        .unwrap_or_default();
    (status["plugins"].as_array().into_iter().flatten())
        .find(|p| p["name"] == name)
        .map(|p| p["shadow"].clone())
        .unwrap_or_default()
}

#[test]
fn a_shadow_candidate_is_compared_never_delivered_and_promoted_on_request() {
    let setup = Setup::new(
        "CREATE TABLE people (id bigint PRIMARY KEY, email text NOT NULL, action text NOT NULL)",
    );
    let port = free_port();
    // `keep`: the live filter drops `drop` rows; its candidate, the same
    // component with another config, also drops `skip` rows. `mask`: the
    // live pii-mask masks e-mail addresses; its candidate (the misbehaving
    // guest) passes every event unchanged, and fails `fail` rows.
    let config = setup.config_with_sink(
        "snapshot = \"never\"",
        "[[sinks]]\nname = \"files\"\nkind = \"file\"\ndir = \"out\"",
        &format!(
            r#"
[[plugins]]
name = "keep"
path = "{filter}"
config = {{ mode = "drop", where = [{{ column = "action", op = "eq", value = "drop" }}] }}
shadow = "{filter}"
shadow_config = {{ mode = "drop", where = [{{ column = "action", op = "in", value = ["drop", "skip"] }}] }}

[[plugins]]
name = "mask"
path = "{mask}"
shadow = "{misbehave}"

[trust]
allow_unsigned = true

[admin]
address = "127.0.0.1:{port}"
admin_token = "{TOKEN}"
"#,
            filter = components::FILTER,
            mask = components::PII_MASK,
            misbehave = components::MISBEHAVE,
        ),
    );
    let child = crate::pipeline::Running(Some(setup.start(&config)));
    setup.wait_for_slot();
    insert_rows(&setup, 1..=100);
    let out = setup.dir.join("out");
    wait_until(
        "the 90 rows the live filter keeps",
        Duration::from_secs(60),
        || crate::pipeline::count_output(&out) >= 90,
        &setup,
    );
    wait_until(
        "the shadow counts",
        Duration::from_secs(10),
        || shadow_of(port, "mask")["compared"] == 90,
        &setup,
    );

    // Counted as computed by hand: `keep` saw 100 rows, and its candidate
    // dropped the 10 `skip` rows the live filter kept. `mask` saw the 90
    // rows kept: the candidate left all 80 e-mail addresses of the rows
    // that pass unmasked, and failed the 10 `fail` rows.
    let keep = shadow_of(port, "keep");
    assert_eq!(
        (&keep["compared"], &keep["differed"], &keep["outcomes"]),
        (&json!(100), &json!(10), &json!({"dropped": 10})),
        "{keep}"
    );
    let mask = shadow_of(port, "mask");
    assert_eq!(
        (&mask["differed"], &mask["outcomes"], &mask["fields"]),
        (
            &json!(90),
            &json!({"changed": 80, "failed": 10}),
            &json!({"after.email": 80})
        ),
        "{mask}"
    );
    assert!(
        mask["version"].as_str().unwrap().starts_with("misbehave+"),
        "{mask}"
    );
    let metrics = request(port, "GET", "/metrics", None).unwrap().body;
    for series in [
        "weir_shadow_events_total{pipeline=\"test\",plugin=\"keep\",candidate=\"filter+",
        "outcome=\"dropped\"} 10\n",
        "field=\"after.email\"} 80\n",
    ] {
        assert!(metrics.contains(series), "{series}: {metrics}");
    }

    // The samples: one line per difference, both sides shown.
    let samples = |name: &str| -> Vec<Json> {
        std::fs::read_to_string(setup.dir.join(format!("state/shadow-{name}.jsonl")))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let keep_samples = samples("keep");
    assert_eq!(keep_samples.len(), 10);
    for s in &keep_samples {
        assert_eq!(s["outcome"], "dropped", "{s}");
        assert_eq!(s["live"][0]["after"]["action"], "skip", "{s}");
        assert_eq!(s["candidate"], json!([]), "{s}");
    }
    let mut by_outcome: BTreeMap<String, usize> = BTreeMap::new();
    for s in samples("mask") {
        *by_outcome
            .entry(s["outcome"].as_str().unwrap().to_owned())
            .or_default() += 1;
        if s["outcome"] == "failed" {
            assert_eq!(s["candidate"]["failed"], "plugin_reported", "{s}");
        } else {
            let email = |side: &str| s[side][0]["after"]["email"].as_str().unwrap().to_owned();
            assert!(email("candidate").ends_with("@example.com"), "{s}");
            assert_ne!(email("live"), email("candidate"), "{s}");
        }
    }
    assert_eq!(
        by_outcome,
        BTreeMap::from([("changed".to_owned(), 80), ("failed".to_owned(), 10)])
    );

    // Nothing of the candidates reached the sink: the live output only.
    let delivered: Vec<Json> = read_output(&out).into_values().flatten().collect();
    assert_eq!(delivered.len(), 90);
    for e in &delivered {
        assert_ne!(e["after"]["action"], "drop", "{e}");
        let id = e["after"]["id"].as_i64().unwrap();
        assert_ne!(
            e["after"]["email"].as_str().unwrap(),
            format!("user{id}@example.com"),
            "unmasked: {e}"
        );
        let stamp = e["source"]["plugins"].as_str().unwrap();
        assert!(
            stamp.contains("mask=pii_mask+") && !stamp.contains("misbehave"),
            "{e}"
        );
    }
    let status = request(port, "GET", "/v1/status", Some(TOKEN))
        .unwrap()
        .json();
    assert_eq!(status["dead_letters"], 0, "{status}");

    // Promoted: the candidate runs live from the next transaction on, and
    // its shadow ends.
    let promoted = weir()
        .args(["plugin", "promote", "mask", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&promoted.stdout);
    assert!(
        promoted.status.success() && answer.contains("mask: promoting shadow"),
        "{answer}"
    );
    let refused = weir()
        .args(["plugin", "promote", "mask", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stdout).contains("has no shadow candidate"),
        "{refused:?}"
    );
    insert_rows(&setup, 103..=109);
    wait_until(
        "the rows after the promotion",
        Duration::from_secs(60),
        || crate::pipeline::count_output(&out) >= 97,
        &setup,
    );
    let after: Vec<Json> = read_output(&out)
        .into_values()
        .flatten()
        .filter(|e| e["after"]["id"].as_i64() > Some(100))
        .collect();
    assert_eq!(after.len(), 7);
    for e in &after {
        let id = e["after"]["id"].as_i64().unwrap();
        assert_eq!(e["after"]["email"], format!("user{id}@example.com"), "{e}");
        assert!(
            e["source"]["plugins"]
                .as_str()
                .unwrap()
                .contains("mask=misbehave+"),
            "{e}"
        );
    }
    // The promoted version is on probation for these rows (the default
    // 1000 events), and while a live version is on probation the other
    // shadows compare nothing.
    assert_eq!(shadow_of(port, "mask"), Json::Null);
    assert_eq!(shadow_of(port, "keep")["compared"], 100);
    child.terminate(&setup);
}

#[test]
fn plugin_diff_prints_the_differences_of_two_versions() {
    let dir = crate::pipeline::scratch_dir("weir-plugin-diff");
    let event = |id: i64, email: &str, action: &str| {
        json!({
            "op": "c",
            "source": {"schema": "public", "table": "people"},
            "after": {"id": id, "email": email, "action": action},
        })
    };
    let input = dir.join("events.jsonl");
    std::fs::write(
        &input,
        [
            event(1, "ann@example.com", "none"),
            event(2, "n/a", "none"),
            event(3, "n/a", "fail"),
        ]
        .iter()
        .map(|e| format!("{e}\n"))
        .collect::<String>(),
    )
    .unwrap();
    let diff = |old: &str, new: &str, json: bool| {
        let mut cmd = weir();
        cmd.args(["plugin", "diff", old, new, "--input"])
            .arg(&input);
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };

    let out = diff(components::PII_MASK, components::MISBEHAVE, false);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        "line 1: changed after.email\n\
         line 3: failed in NEW (plugin_reported: this event asked to fail)\n"
    );
    assert_eq!(
        stderr,
        "3 events compared: 1 same, 1 changed, 1 failed\nchanged fields: after.email 1\n"
    );

    let out = diff(components::PII_MASK, components::MISBEHAVE, true);
    let lines: Vec<Json> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (&lines[0]["line"], &lines[0]["outcome"], &lines[0]["fields"]),
        (&json!(1), &json!("changed"), &json!(["after.email"]))
    );
    assert_eq!(
        lines[0]["candidate"][0]["after"]["email"],
        "ann@example.com"
    );

    let same = diff(components::PII_MASK, components::PII_MASK, false);
    assert_eq!(same.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&same.stderr),
        "3 events compared: 3 same\n"
    );

    let router = diff(components::PII_MASK, components::TABLE_ROUTER, false);
    assert_eq!(router.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&router.stderr).contains("is a router; diff compares transformers"),
        "{router:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
