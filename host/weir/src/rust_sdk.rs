//! The Rust SDK for plugin projects that `weir plugin new --lang rust`
//! makes. The SDK is not on a registry, so this weir carries its sources
//! (the SDK, `weir-core` and the WIT contract) and writes them once into a
//! directory of their own, named by their content's digest, outside any
//! checkout: a project's path to it survives moving the project or the
//! checkout, and every project names the same path, so a build cache
//! shared between projects compiles the SDK once
//! (`docs/decisions/0027-rust-plugin-sdk-and-build-cache.md`).

use std::path::PathBuf;

use anyhow::Context;

/// The weir version the SDK comes with.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `sdk/rust/Cargo.toml`, standalone (the checkout's inherits from the
/// workspace). A unit test keeps the versions in step with the workspace.
const SDK_MANIFEST: &str = r#"[package]
name = "weir-plugin-sdk"
description = "Write Weir plugins in Rust: typed events, one export macro."
version = "@@VERSION@@"
edition = "2024"

[dependencies]
weir-core = { path = "../../host/weir-core" }
serde = { version = "1", features = ["derive"] }
serde_json = { version = "1", features = ["preserve_order"] }
wit-bindgen = { version = "0.63", default-features = false, features = ["macros", "realloc", "std"] }
"#;

/// `host/weir-core/Cargo.toml`, standalone.
const CORE_MANIFEST: &str = r#"[package]
name = "weir-core"
description = "Weir's event model, wire encoding and Debezium envelope. No I/O."
version = "@@VERSION@@"
edition = "2024"

[dependencies]
base64 = "0.22"
serde = { version = "1", features = ["derive"] }
serde_bytes = "0.11"
serde_json = { version = "1", features = ["preserve_order"] }
smol_str = { version = "0.3", features = ["serde"] }
thiserror = "2"
"#;

/// Every file, by its path under the SDK's root (laid out as in the
/// checkout, so the SDK's relative paths hold).
const FILES: &[(&str, &str)] = &[
    ("sdk/rust/Cargo.toml", SDK_MANIFEST),
    (
        "sdk/rust/src/lib.rs",
        include_str!("../../../sdk/rust/src/lib.rs"),
    ),
    (
        "sdk/rust/src/bindings.rs",
        include_str!("../../../sdk/rust/src/bindings.rs"),
    ),
    (
        "sdk/rust/src/config.rs",
        include_str!("../../../sdk/rust/src/config.rs"),
    ),
    (
        "sdk/rust/src/convert.rs",
        include_str!("../../../sdk/rust/src/convert.rs"),
    ),
    (
        "sdk/rust/src/event.rs",
        include_str!("../../../sdk/rust/src/event.rs"),
    ),
    (
        "sdk/rust/src/log.rs",
        include_str!("../../../sdk/rust/src/log.rs"),
    ),
    (
        "sdk/rust/src/testing.rs",
        include_str!("../../../sdk/rust/src/testing.rs"),
    ),
    ("host/weir-core/Cargo.toml", CORE_MANIFEST),
    (
        "host/weir-core/src/lib.rs",
        include_str!("../../weir-core/src/lib.rs"),
    ),
    (
        "host/weir-core/src/event.rs",
        include_str!("../../weir-core/src/event.rs"),
    ),
    (
        "host/weir-core/src/envelope.rs",
        include_str!("../../weir-core/src/envelope.rs"),
    ),
    (
        "host/weir-core/src/pipeline.rs",
        include_str!("../../weir-core/src/pipeline.rs"),
    ),
    (
        "host/weir-core/src/wire.rs",
        include_str!("../../weir-core/src/wire.rs"),
    ),
    (
        "wit/weir-plugin.wit",
        include_str!("../../../wit/weir-plugin.wit"),
    ),
];

/// The SDKs' parent directory: `$WEIR_SDK_DIR`, else
/// `$XDG_DATA_HOME/weir/sdk`, else `~/.local/share/weir/sdk`.
fn sdk_root() -> anyhow::Result<PathBuf> {
    use weir_plugin::local::{UserDir, process_env, user_dir};
    if let Some(dir) = std::env::var_os("WEIR_SDK_DIR").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let data = user_dir(UserDir::Data, &process_env)
        .context("no place for the Rust SDK: set WEIR_SDK_DIR or HOME")?;
    Ok(data.join("weir/sdk"))
}

/// The files with the version filled in.
fn files() -> impl Iterator<Item = (&'static str, String)> {
    FILES
        .iter()
        .map(|(path, text)| (*path, text.replace("@@VERSION@@", VERSION)))
}

/// Writes the SDK (once per content) and returns the SDK crate's
/// directory, for a project's `path = "..."`.
pub fn install() -> anyhow::Result<PathBuf> {
    let files: Vec<(&str, String)> = files().collect();
    let mut all = Vec::new();
    for (path, text) in &files {
        all.extend_from_slice(path.as_bytes());
        all.push(0);
        all.extend_from_slice(text.as_bytes());
        all.push(0);
    }
    let digest = weir_plugin::bundle::digest(&all);
    let hex = digest.trim_start_matches("sha256:");
    let dir = sdk_root()?.join(format!("{VERSION}-{}", &hex[..12]));
    let crate_dir = dir.join("sdk/rust");
    if crate_dir.join("Cargo.toml").is_file() {
        return Ok(crate_dir);
    }
    // Written aside and renamed in, so a half-written SDK is never used.
    let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
    for (path, text) in &files {
        let file = tmp.join(path);
        std::fs::create_dir_all(file.parent().expect("files are in directories"))
            .and_then(|()| std::fs::write(&file, text))
            .with_context(|| format!("cannot write the Rust SDK into {}", tmp.display()))?;
    }
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => {}
        // Another `weir plugin new` got there first: same content.
        Err(_) if crate_dir.join("Cargo.toml").is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot place the Rust SDK at {}", dir.display()));
        }
    }
    Ok(crate_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checkout's SDK and weir-core: every source file is carried, and
    /// the standalone manifests name the workspace's dependency versions.
    #[test]
    fn the_carried_sdk_matches_the_checkout() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for dir in ["sdk/rust/src", "host/weir-core/src"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let name = format!("{dir}/{}", entry.unwrap().file_name().to_string_lossy());
                assert!(
                    FILES.iter().any(|(p, _)| *p == name),
                    "{name} is not carried in rust_sdk::FILES"
                );
            }
        }
        let workspace: toml::Table =
            toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
        let deps = &workspace["workspace"]["dependencies"];
        for (name, manifest) in [
            ("serde", SDK_MANIFEST),
            ("serde_json", SDK_MANIFEST),
            ("wit-bindgen", SDK_MANIFEST),
            ("base64", CORE_MANIFEST),
            ("thiserror", CORE_MANIFEST),
        ] {
            let version = match &deps[name] {
                toml::Value::String(v) => v.clone(),
                t => t["version"].as_str().unwrap().to_owned(),
            };
            assert!(
                manifest.contains(&format!("{name} = \"{version}\""))
                    || manifest.contains(&format!("{name} = {{ version = \"{version}\"")),
                "{name} {version} differs in the carried manifest"
            );
        }
        let core: toml::Table = toml::from_str(
            &std::fs::read_to_string(root.join("host/weir-core/Cargo.toml")).unwrap(),
        )
        .unwrap();
        let serde_bytes = core["dependencies"]["serde_bytes"].as_str().unwrap();
        assert!(CORE_MANIFEST.contains(&format!("serde_bytes = \"{serde_bytes}\"")));
    }
}
