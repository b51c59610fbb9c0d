//! The pii-mask rules written in Python, JavaScript and C: each example is
//! built from source by `weir plugin build` and held to the same golden
//! files as the bundled Rust plugin, and its own native tests pass.

use std::path::PathBuf;
use std::process::Command;

use crate::{run_golden_on, succeeds, weir, with_componentizers};

fn example(path: &str) -> PathBuf {
    weir_tests::repo_root().join("examples/plugins").join(path)
}

/// `weir plugin build DIR`; returns the component it reports.
fn build(dir: &PathBuf) -> PathBuf {
    let out = weir().args(["plugin", "build"]).arg(dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "name: PATH (N bytes, world transformer)"
    assert!(stdout.contains("world transformer"), "{stdout}");
    let path = stdout
        .split_once(": ")
        .and_then(|(_, rest)| rest.split_once(" ("))
        .map(|(p, _)| PathBuf::from(p))
        .unwrap_or_else(|| panic!("no component path in {stdout:?}"));
    assert!(path.is_file(), "{}", path.display());
    path
}

fn native_tests_pass(cmd: &mut Command, expect: &str) {
    let text = succeeds(cmd);
    assert!(text.contains(expect), "{cmd:?}:\n{text}");
}

#[test]
fn python_pii_mask_matches_the_rust_golden_files() {
    let dir = example("python/pii-mask");
    native_tests_pass(
        Command::new("python3")
            .args(["-m", "unittest", "-v"])
            .current_dir(&dir),
        "OK",
    );
    let wasm = build(&dir);
    run_golden_on("pii-mask", wasm.to_str().unwrap(), "python");
    agrees_with_rust_on_every_value_type("python", &wasm);
}

#[test]
fn js_pii_mask_matches_the_rust_golden_files() {
    let dir = example("js/pii-mask");
    native_tests_pass(
        Command::new("node").arg("--test").current_dir(&dir),
        "# fail 0",
    );
    let wasm = build(&dir);
    run_golden_on("pii-mask", wasm.to_str().unwrap(), "js");
    agrees_with_rust_on_every_value_type("js", &wasm);
}

#[test]
fn c_pii_mask_matches_the_rust_golden_files() {
    let wasm = build(&example("c/pii-mask"));
    run_golden_on("pii-mask", wasm.to_str().unwrap(), "c");
    agrees_with_rust_on_every_value_type("c", &wasm);
}

#[test]
fn c_code_that_reaches_for_wasi_is_refused_at_build_with_the_reason() {
    let dir = std::env::temp_dir().join(format!("weir-c-printf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("weir-plugin.toml"),
        "name = \"chatty\"\nworld = \"transformer\"\n",
    )
    .unwrap();
    let sdk = weir_tests::repo_root().join("sdk/c");
    for f in ["weir_plugin.h", "weir_plugin.c"] {
        std::fs::copy(sdk.join(f), dir.join(f)).unwrap();
    }
    std::fs::write(
        dir.join("chatty.c"),
        r#"#include <stdio.h>
#include "weir_plugin.h"
void *weir_plugin_new(const char *c, size_t n, char *e, size_t cap) {
    (void)c, (void)n, (void)e, (void)cap;
    printf("hello\n");
    return (void *)1;
}
weir_outcome weir_plugin_transform(void *p, weir_event *ev, char *r, size_t cap) {
    (void)p, (void)ev, (void)r, (void)cap;
    return WEIR_KEEP;
}
"#,
    )
    .unwrap();
    let out = weir().args(["plugin", "build"]).arg(&dir).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does the code call into WASI"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_project_of_no_known_language_is_named() {
    let dir = std::env::temp_dir().join(format!("weir-no-lang-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = weir().args(["plugin", "build"]).arg(&dir).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a plugin project"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The SDKs' own tests: the wire fixture the host's encoder writes, and
/// the component exports against the real generated bindings (Python) or
/// driven natively (JavaScript).
#[test]
fn the_python_and_js_sdk_tests_pass() {
    let sdk = weir_tests::repo_root().join("sdk");
    let mut python = Command::new("python3");
    python
        .args(["-m", "unittest", "discover", "-v", "-s", "tests"])
        .current_dir(sdk.join("python"));
    with_componentizers(&mut python);
    let text = succeeds(&mut python);
    assert!(text.contains("\nOK"), "{text}");
    assert!(
        !text.contains("skipped"),
        "no SDK test may be skipped here:\n{text}"
    );
    native_tests_pass(
        Command::new("node")
            .arg("--test")
            .current_dir(sdk.join("js")),
        "# fail 0",
    );
}

/// Every value type, through `lang`'s decoder: with a rule that touches
/// every column (masking text, redacting everything else) and with the
/// default detectors, the component must give exactly what the Rust plugin
/// gives.
fn agrees_with_rust_on_every_value_type(lang: &str, wasm: &std::path::Path) {
    let dir = std::env::temp_dir().join(format!("weir-every-type-{lang}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let row = |id: i64| {
        [
            format!(r#""id":{id},"yes":true,"float":-1.5e-7,"big":-9223372036854775808"#),
            r#""decimal":{"$type":"decimal","value":"12345.6700"}"#.into(),
            r#""text":"Zoë Ørsted ✓ 555-123-4567","email":" ada@example.com ""#.into(),
            r#""bytes":{"$type":"bytes","value":"AAH+/w=="}"#.into(),
            r#""json":{"$type":"json","value":{"a":[1,2]}}"#.into(),
            r#""date":{"$type":"date","value":-719162}"#.into(),
            r#""time":{"$type":"time","value":86399999999}"#.into(),
            r#""ts":{"$type":"timestamp","value":-62135596800000000}"#.into(),
            r#""tstz":{"$type":"timestamptz","value":1700000000123456}"#.into(),
            r#""uuid":{"$type":"uuid","value":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}"#.into(),
            r#""toast":{"$type":"unchanged"},"none":null"#.into(),
        ]
        .join(",")
    };
    let input = format!(
        "{}\n{}\n{}\n",
        format_args!(
            r#"{{"op":"c","source":{{"schema":"public","table":"t","txId":"9"}},"key":{{"id":1}},"after":{{{}}}}}"#,
            row(1)
        ),
        format_args!(
            r#"{{"op":"u","source":{{"schema":"public","table":"t"}},"key":{{"id":2}},"before":{{{}}},"after":{{{}}}}}"#,
            row(1),
            row(2)
        ),
        r#"{"op":"d","source":{"schema":"other","table":"u"},"key":{"k":"555-123-4567"},"before":{"k":"555-123-4567"}}"#,
    );
    std::fs::write(dir.join("input.jsonl"), input).unwrap();
    let configs = [
        ("default", "{}"),
        (
            "every-column",
            r#"{"rules": [{"columns": ["*"], "action": "mask"}]}"#,
        ),
    ];
    let run = |wasm: &str, config: &str| -> String {
        std::fs::write(dir.join("config.json"), config).unwrap();
        let out = weir()
            .args(["plugin", "test", wasm, "--input"])
            .arg(dir.join("input.jsonl"))
            .arg("--config")
            .arg(dir.join("config.json"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{wasm}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    for (name, config) in configs {
        let expected = run(weir_tests::components::bundled("pii-mask"), config);
        assert!(expected.contains("\"a***@example.com\""), "{expected}");
        let actual = run(wasm.to_str().unwrap(), config);
        assert_eq!(actual, expected, "{lang}, config {name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
