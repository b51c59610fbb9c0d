//! `weir plugin new --lang rust|python|js|c --world
//! transformer|router|resolver`: every project it makes passes its own
//! tests natively (C: its fixtures are its test), builds to a component
//! with `weir plugin build`, and reproduces its fixtures through `weir
//! plugin test --expect`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;

use crate::{succeeds, weir};

const WORLDS: [&str; 3] = ["transformer", "router", "resolver"];

/// A scratch directory for one language's projects.
fn base(lang: &str) -> PathBuf {
    let base = std::env::temp_dir().join(format!("weir-scaffold-{lang}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    base
}

/// `weir plugin new` with the build cache and the Rust SDK inside this
/// checkout's `target/`.
fn weir_here() -> Command {
    let target = weir_tests::repo_root().join("target");
    let mut cmd = weir();
    cmd.env("CARGO_TARGET_DIR", target.join("scaffold"))
        .env("WEIR_SDK_DIR", target.join("weir-test-sdk"));
    cmd
}

/// Scaffolds `lang` `world` as `name` under `base`; returns the project.
fn scaffold(base: &Path, lang: &str, world: &str, name: &str) -> PathBuf {
    let dir = base.join(name);
    let out = succeeds(
        weir_here()
            .args(["plugin", "new", "--lang", lang, "--world", world])
            .arg(&dir),
    );
    assert!(out.contains(&format!("a {lang} {world} plugin")), "{out}");
    dir
}

/// Builds the project and checks its component against its fixtures.
fn builds_and_matches_fixtures(dir: &Path, component: &Path) {
    succeeds(weir_here().args(["plugin", "build"]).arg(dir));
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
    assert!(out.status.success(), "{}: {stderr}", dir.display());
    // As the README says: the output is checked against the fixtures.
    assert!(stderr.contains("output lines match"), "{stderr}");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(
        readme.contains("cargo install --path host/weir")
            && readme.contains(&component.strip_prefix(dir).unwrap().display().to_string()),
        "the README says where `weir` comes from and what the build makes: {readme}"
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
fn new_rust_plugins_of_every_world_test_build_and_match_their_fixtures() {
    let base = base("rust");
    for world in WORLDS {
        let name = format!("my-{world}");
        let dir = scaffold(&base, "rust", world, &name);
        // The SDK is named by a path outside the checkout's sources.
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains("target/weir-test-sdk/0.1.0-"),
            "{manifest}"
        );
        let text = succeeds(Command::new("cargo").arg("test").current_dir(&dir).env(
            "CARGO_TARGET_DIR",
            weir_tests::repo_root().join("target/scaffold"),
        ));
        assert!(text.contains("2 passed"), "{text}");
        builds_and_matches_fixtures(
            &dir,
            &dir.join(format!(
                "target/wasm32-wasip2/release/{}.wasm",
                name.replace('-', "_")
            )),
        );
    }
    // Moved elsewhere, a project still builds: nothing points into it.
    let moved = base.join("moved");
    std::fs::create_dir_all(&moved).unwrap();
    std::fs::rename(base.join("my-router"), moved.join("my-router")).unwrap();
    succeeds(
        weir_here()
            .args(["plugin", "build"])
            .arg(moved.join("my-router")),
    );
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn new_python_plugins_of_every_world_test_build_and_match_their_fixtures() {
    let base = base("python");
    for world in WORLDS {
        let name = format!("my-{world}");
        let dir = scaffold(&base, "python", world, &name);
        let text = succeeds(
            Command::new("python3")
                .args(["-m", "unittest", "-v"])
                .current_dir(&dir),
        );
        assert!(
            text.contains("Ran 2 tests") && text.contains("OK"),
            "{text}"
        );
        builds_and_matches_fixtures(&dir, &dir.join(format!("target/weir/{name}.wasm")));
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn new_js_plugins_of_every_world_test_build_and_match_their_fixtures() {
    let base = base("js");
    for world in WORLDS {
        let name = format!("my-{world}");
        let dir = scaffold(&base, "js", world, &name);
        let text = succeeds(Command::new("node").arg("--test").current_dir(&dir));
        assert!(
            text.contains("# pass 2") && text.contains("# fail 0"),
            "{text}"
        );
        builds_and_matches_fixtures(&dir, &dir.join(format!("target/weir/{name}.wasm")));
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn new_c_plugins_of_every_world_build_and_match_their_fixtures_and_a_resolver_merges() {
    let base = base("c");
    for world in WORLDS {
        let name = format!("my-{world}");
        let dir = scaffold(&base, "c", world, &name);
        builds_and_matches_fixtures(&dir, &dir.join(format!("target/weir/{name}.wasm")));
    }
    // The resolver's merged row: a copy of the local row, changed by index.
    let dir = base.join("my-resolver");
    let code = dir.join("my_resolver.c");
    let text = std::fs::read_to_string(&code).unwrap().replace(
        "    return theirs > local ? WEIR_TAKE_INCOMING : WEIR_KEEP_LOCAL;",
        "    long i = weir_row_index(&conflict->local, p->column);\n\
         \x20   weir_merged_set_int(merged, (size_t)i, (local > theirs ? local : theirs) + 1);\n\
         \x20   weir_merged_set_text(merged, 1, \"merged\", 6);\n\
         \x20   return WEIR_MERGED;",
    );
    std::fs::write(&code, text.replace("    (void)merged;\n", "")).unwrap();
    succeeds(weir_here().args(["plugin", "build"]).arg(&dir));
    let out = succeeds(
        weir()
            .args(["plugin", "test"])
            .arg(dir.join("target/weir/my-resolver.wasm"))
            .arg("--config")
            .arg(dir.join("fixtures/config.json"))
            .arg("--input")
            .arg(dir.join("fixtures/input.jsonl")),
    );
    assert!(
        out.contains(r#"{"resolution":"merged","row":{"id":1,"name":"merged","version":4}}"#)
            && out
                .contains(r#"{"resolution":"merged","row":{"id":2,"name":"merged","version":6}}"#),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&base);
}
