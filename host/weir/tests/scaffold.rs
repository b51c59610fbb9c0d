//! `weir plugin new`: the project it makes passes its own test, builds to a
//! component, and reproduces its fixtures through `weir plugin test`.

use std::process::Command;

use serde_json::Value as Json;

use crate::weir;

#[test]
fn a_new_plugin_project_tests_builds_and_matches_its_fixtures() {
    let base = std::env::temp_dir().join(format!("weir-scaffold-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let dir = base.join("shout-names");
    let out = weir().args(["plugin", "new"]).arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Its own unit tests pass (natively, without Wasm).
    let target = weir_tests::repo_root().join("target").join("scaffold");
    let out = Command::new("cargo")
        .arg("test")
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("2 passed"), "{text}");

    // It builds to a component that reproduces its fixtures.
    let out = weir().args(["plugin", "build"]).arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let component = dir.join("target/wasm32-wasip2/release/shout_names.wasm");
    let out = weir()
        .args(["plugin", "test"])
        .arg(&component)
        .arg("--config")
        .arg(dir.join("fixtures/config.json"))
        .arg("--input")
        .arg(dir.join("fixtures/input.jsonl"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parse = |text: &str| -> Vec<Json> {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let expected = parse(&std::fs::read_to_string(dir.join("fixtures/expected.jsonl")).unwrap());
    weir_tests::compare_golden(&parse(&String::from_utf8_lossy(&out.stdout)), &expected).unwrap();

    // A second `new` into the same place is refused rather than clobbering.
    let out = weir().args(["plugin", "new"]).arg(&dir).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let _ = std::fs::remove_dir_all(&base);
}
