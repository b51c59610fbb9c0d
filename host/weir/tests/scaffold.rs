//! `weir plugin new --lang rust|python|js`: the project it makes passes its
//! own tests natively, builds to a component with `weir plugin build`, and
//! reproduces its fixtures through `weir plugin test`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;

use crate::{succeeds, weir};

/// Scaffolds `lang` into a fresh directory; returns the project.
fn scaffold(lang: &str, name: &str) -> (PathBuf, PathBuf) {
    let base = std::env::temp_dir().join(format!("weir-scaffold-{lang}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let dir = base.join(name);
    succeeds(weir().args(["plugin", "new", "--lang", lang]).arg(&dir));
    (base, dir)
}

/// Builds the project and checks its component against its fixtures.
fn builds_and_matches_fixtures(dir: &Path, component: &Path) {
    succeeds(weir().args(["plugin", "build"]).arg(dir));
    let out = weir()
        .args(["plugin", "test"])
        .arg(component)
        .arg("--config")
        .arg(dir.join("fixtures/config.json"))
        .arg("--input")
        .arg(dir.join("fixtures/input.jsonl"))
        .arg("--expect")
        .arg(dir.join("fixtures/expected.jsonl"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // As the README says: the output is checked against the fixtures.
    assert!(stderr.contains("output lines match"), "{stderr}");
    assert!(
        std::fs::read_to_string(dir.join("README.md"))
            .unwrap()
            .contains("cargo install --path host/weir"),
        "the README says where `weir` comes from"
    );
    let parse = |text: &str| -> Vec<Json> {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let expected = parse(&std::fs::read_to_string(dir.join("fixtures/expected.jsonl")).unwrap());
    weir_tests::compare_golden(&parse(&String::from_utf8_lossy(&out.stdout)), &expected).unwrap();

    // A second `new` into the same place is refused rather than clobbering.
    let out = weir().args(["plugin", "new"]).arg(dir).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

#[test]
fn a_new_rust_plugin_tests_builds_and_matches_its_fixtures() {
    let (base, dir) = scaffold("rust", "shout-names");
    let target = weir_tests::repo_root().join("target").join("scaffold");
    let text = succeeds(
        Command::new("cargo")
            .arg("test")
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", &target),
    );
    assert!(text.contains("2 passed"), "{text}");
    builds_and_matches_fixtures(
        &dir,
        &dir.join("target/wasm32-wasip2/release/shout_names.wasm"),
    );
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_new_python_plugin_tests_builds_and_matches_its_fixtures() {
    let (base, dir) = scaffold("python", "shout-names");
    let text = succeeds(
        Command::new("python3")
            .args(["-m", "unittest", "-v"])
            .current_dir(&dir),
    );
    assert!(
        text.contains("Ran 2 tests") && text.contains("OK"),
        "{text}"
    );
    builds_and_matches_fixtures(&dir, &dir.join("target/weir/shout-names.wasm"));
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_new_js_plugin_tests_builds_and_matches_its_fixtures() {
    let (base, dir) = scaffold("js", "shout-names");
    let text = succeeds(Command::new("node").arg("--test").current_dir(&dir));
    assert!(
        text.contains("# pass 2") && text.contains("# fail 0"),
        "{text}"
    );
    builds_and_matches_fixtures(&dir, &dir.join("target/weir/shout-names.wasm"));
    let _ = std::fs::remove_dir_all(&base);
}
