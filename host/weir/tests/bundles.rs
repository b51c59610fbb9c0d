//! Signed bundles: keygen, pack, sign, verify, inspect, and the trust
//! policy refusing what an operator has not vetted.

use std::path::{Path, PathBuf};
use std::process::Output;

use weir_plugin::bundle::{Bundle, Manifest};
use weir_tests::components;

use crate::weir;

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("weir-bundles-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    weir().args(args).output().expect("weir runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Keys `alice` and `bob`, and pii-mask packed (with its golden fixtures)
/// and signed by alice.
fn signed_bundle(dir: &Scratch) -> PathBuf {
    for who in ["alice", "bob"] {
        let out = run(&["plugin", "keygen", s(&dir.path(who))]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let case = &weir_tests::golden_cases("pii-mask")[0];
    let fixtures = dir.path("fixtures");
    std::fs::create_dir_all(&fixtures).unwrap();
    std::fs::copy(&case.config, fixtures.join("config.json")).unwrap();
    std::fs::copy(&case.input, fixtures.join("input.jsonl")).unwrap();
    std::fs::copy(
        case.dir.join("expected.jsonl"),
        fixtures.join("expected.jsonl"),
    )
    .unwrap();
    let bundle = dir.path("pii-mask.weirpkg");
    let out = run(&[
        "plugin",
        "pack",
        components::bundled("pii-mask"),
        "--name",
        "pii-mask",
        "--version",
        "1.2.0",
        "--author",
        "Weir",
        "--fixtures",
        s(&fixtures),
        "--out",
        s(&bundle),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["plugin", "verify", s(&bundle)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("not signed"), "{}", text(&out));
    let out = run(&[
        "plugin",
        "sign",
        s(&bundle),
        "--key",
        s(&dir.path("alice.key")),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    bundle
}

fn public(dir: &Scratch, who: &str) -> String {
    std::fs::read_to_string(dir.path(&format!("{who}.pub")))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn keygen_pack_sign_verify_and_inspect() {
    let dir = Scratch::new("flow");
    let bundle = signed_bundle(&dir);
    let alice = public(&dir, "alice");

    let out = run(&["plugin", "verify", s(&bundle)]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains(&format!("signer:       {alice}")), "{shown}");
    assert!(shown.contains("digest:       sha256:"), "{shown}");
    assert!(shown.contains("capabilities: none"), "{shown}");

    let out = run(&[
        "plugin",
        "verify",
        s(&bundle),
        "--trusted-key",
        s(&dir.path("alice.pub")),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&[
        "plugin",
        "verify",
        s(&bundle),
        "--trusted-key",
        s(&dir.path("bob.pub")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("not among the trusted keys"),
        "{}",
        text(&out)
    );

    let out = run(&["plugin", "inspect", s(&bundle)]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    for needle in [
        "name:         pii-mask 1.2.0",
        "world:        transformer",
        "contract:     weir:plugin@0.1.0",
        "fixtures:     yes",
        &format!("signature:    valid, by {alice}"),
        "exports:",
    ] {
        assert!(shown.contains(needle), "missing `{needle}` in:\n{shown}");
    }

    // A key file is private to its owner.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path("alice.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "key readable by others: {mode:o}");
}

#[test]
fn a_tampered_component_or_manifest_fails_verification() {
    let dir = Scratch::new("tamper");
    let bundle = signed_bundle(&dir);

    let mut b = Bundle::read(&bundle).unwrap();
    b.component.extend_from_slice(b"\0\0");
    let tampered = dir.path("tampered.weirpkg");
    b.write(&tampered).unwrap();
    let out = run(&["plugin", "verify", s(&tampered)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("changed after the bundle was packed"),
        "{}",
        text(&out)
    );

    // Re-signing by someone else does not make it trusted by alice's users.
    let out = run(&[
        "plugin",
        "sign",
        s(&tampered),
        "--key",
        s(&dir.path("bob.key")),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "signing a tampered bundle is refused"
    );
}

/// A pipeline config loading `plugin` with `trust`, for `weir validate`.
fn pipeline(dir: &Scratch, plugin: &Path, trust: &str) -> PathBuf {
    let path = dir.path("pipeline.toml");
    std::fs::write(
        &path,
        format!(
            r#"
name = "trust"
state_dir = "state"
[source]
kind = "postgres"
user = "u"
database = "d"
[[plugins]]
name = "mask"
path = "{}"
[[sinks]]
name = "out"
kind = "stdout"
[trust]
{trust}
"#,
            plugin.display()
        ),
    )
    .unwrap();
    path
}

fn validate(config: &Path) -> (bool, String) {
    let out = run(&["validate", s(config)]);
    (out.status.success(), text(&out))
}

#[test]
fn the_trust_policy_refuses_each_case_with_its_own_message() {
    let dir = Scratch::new("policy");
    let bundle = signed_bundle(&dir);
    let alice = public(&dir, "alice");
    let bob = public(&dir, "bob");
    let digest = Bundle::read(&bundle).unwrap().digest();

    let (ok, shown) = validate(&pipeline(&dir, &bundle, &format!("keys = [\"{alice}\"]")));
    assert!(ok, "{shown}");
    let (ok, shown) = validate(&pipeline(
        &dir,
        &bundle,
        &format!("keys = [\"{alice}\"]\npinned = [\"{digest}\"]"),
    ));
    assert!(ok, "{shown}");

    let cases: Vec<(PathBuf, String, &str)> = vec![
        (
            bundle.clone(),
            format!("keys = [\"{bob}\"]"),
            "not among the trusted keys",
        ),
        (
            bundle.clone(),
            format!(
                "keys = [\"{alice}\"]\npinned = [\"sha256:{}\"]",
                "0".repeat(64)
            ),
            "not among the pinned digests",
        ),
        (
            PathBuf::from(components::bundled("pii-mask")),
            format!("keys = [\"{alice}\"]"),
            "not signed",
        ),
        (
            {
                let mut b = Bundle::read(&bundle).unwrap();
                b.component.push(0);
                let p = dir.path("tampered.weirpkg");
                b.write(&p).unwrap();
                p
            },
            format!("keys = [\"{alice}\"]"),
            "changed after the bundle was packed",
        ),
        (
            repack(&dir, "net.weirpkg", |m| {
                m.capabilities = vec!["network".into()]
            }),
            format!("keys = [\"{alice}\"]"),
            "does not grant",
        ),
        (
            repack(&dir, "future.weirpkg", |m| m.contract = "9.9.9".into()),
            format!("keys = [\"{alice}\"]"),
            "does not support",
        ),
        (
            {
                // Signed and intact, but its own fixtures say it is wrong.
                let b = Bundle::read(&bundle).unwrap();
                let mut fixtures = b.fixtures.clone().expect("packed with fixtures");
                let wrong = String::from_utf8(fixtures.expected.clone())
                    .unwrap()
                    .replacen("\"op\":\"", "\"op\":\"x", 1);
                fixtures.expected = wrong.into_bytes();
                let mut edited =
                    Bundle::new(b.manifest.clone(), b.component.clone(), Some(fixtures));
                edited.sign(&alice_key(&dir));
                let p = dir.path("wrong-fixtures.weirpkg");
                edited.write(&p).unwrap();
                p
            },
            format!("keys = [\"{alice}\"]"),
            "self-test failed",
        ),
    ];
    for (plugin, trust, expected) in cases {
        let (ok, shown) = validate(&pipeline(&dir, &plugin, &trust));
        assert!(!ok, "{} with {trust} was accepted", plugin.display());
        assert!(
            shown.contains("plugins[0].path") && shown.contains(expected),
            "expected `{expected}` for {}:\n{shown}",
            plugin.display()
        );
    }
}

/// pii-mask with an edited manifest, signed by alice.
fn repack(dir: &Scratch, name: &str, edit: impl FnOnce(&mut Manifest)) -> PathBuf {
    let b = Bundle::read(&dir.path("pii-mask.weirpkg")).unwrap();
    let mut manifest = b.manifest.clone();
    edit(&mut manifest);
    let mut edited = Bundle::new(manifest, b.component.clone(), None);
    edited.sign(&alice_key(dir));
    let path = dir.path(name);
    edited.write(&path).unwrap();
    path
}

fn alice_key(dir: &Scratch) -> weir_plugin::bundle::SecretKey {
    weir_plugin::bundle::SecretKey::from_file_text(
        &std::fs::read_to_string(dir.path("alice.key")).unwrap(),
    )
    .unwrap()
}

#[test]
fn plugin_test_runs_a_bundles_own_fixtures_and_checks_expected_output() {
    let dir = Scratch::new("test-bundle");
    let bundle = signed_bundle(&dir);
    // A bundle alone: its fixtures' input, config and expected output.
    let out = run(&["plugin", "test", s(&bundle)]);
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("output lines match the bundle's fixtures/expected.jsonl"),
        "{stderr}"
    );
    // A component with --expect: the same golden case passes...
    let case = &weir_tests::golden_cases("pii-mask")[0];
    let expected = case.dir.join("expected.jsonl");
    let component = components::bundled("pii-mask");
    let expecting = |expected: &Path| {
        run(&[
            "plugin",
            "test",
            component,
            "--config",
            s(&case.config),
            "--input",
            s(&case.input),
            "--expect",
            s(expected),
        ])
    };
    let out = expecting(&expected);
    assert!(out.status.success(), "{}", text(&out));
    // ...and a changed expectation fails at its line, naming the key.
    let text_expected = std::fs::read_to_string(&expected).unwrap();
    let first = text_expected.lines().next().unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(first).unwrap();
    doc["op"] = "d".into();
    let changed = dir.path("changed.jsonl");
    std::fs::write(&changed, text_expected.replacen(first, &doc.to_string(), 1)).unwrap();
    let out = expecting(&changed);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("differs from") && stderr.contains("line 1: `op` differs"),
        "{stderr}"
    );
    // A bare component needs its input: a usage error.
    let out = run(&["plugin", "test", component]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--input FILE"), "{}", text(&out));
}
