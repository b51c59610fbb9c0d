//! Builds plugin projects into WebAssembly components: Rust crates with
//! `cargo build --target wasm32-wasip2`; Python, JavaScript and C projects
//! with componentize-py, componentize-js and clang ([`guest`]). Used by `weir
//! plugin build` and by the build script that compiles the bundled plugins
//! and test guests, so both build plugins the same way.

pub mod guest;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The target plugins are built for: its std imports WASI 0.2, and its
/// linker emits a component directly.
pub const TARGET: &str = "wasm32-wasip2";

/// Variables a parent cargo sets that must not leak into a nested build:
/// they would point it at the parent's target, flags or wrapper.
const PARENT_CARGO_VARS: &[&str] = &[
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_MAKEFLAGS",
    "CARGO_PRIMARY_PACKAGE",
];

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// `Cargo.toml` of the crate or of the workspace holding the packages.
    pub manifest: PathBuf,
    /// Packages to build (empty: the manifest's own package).
    pub packages: Vec<String>,
    /// Target directory (`None`: cargo's default for the manifest).
    pub target_dir: Option<PathBuf>,
    /// Optimised build (what ships); debug builds compile faster.
    pub release: bool,
}

/// One built component.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// Cargo package name.
    pub package: String,
    /// The `.wasm` component.
    pub wasm: PathBuf,
}

/// Builds the requested packages and returns their components.
pub fn build(req: &BuildRequest) -> Result<Vec<Built>, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(&req.manifest)
        .arg("--message-format=json-render-diagnostics");
    if req.release {
        // Debug info triples a component's size and is of no use inside
        // the sandbox; strip it whatever the crate's profile says.
        cmd.args([
            "--release",
            "--config",
            "profile.release.strip=\"debuginfo\"",
        ]);
    }
    for p in &req.packages {
        cmd.arg("-p").arg(p);
    }
    if let Some(dir) = &req.target_dir {
        cmd.arg("--target-dir").arg(dir);
    }
    for var in PARENT_CARGO_VARS {
        cmd.env_remove(var);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run cargo to build {}: {e}", req.manifest.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
        {
            return Err(format!(
                "the {TARGET} target is not installed; run `rustup target add {TARGET}`\n{stderr}"
            ));
        }
        return Err(format!(
            "building {} for {TARGET} failed:\n{stderr}",
            req.manifest.display()
        ));
    }
    let built = parse_artifacts(&String::from_utf8_lossy(&out.stdout));
    if built.is_empty() {
        return Err(format!(
            "cargo built {} but produced no .wasm file: is the crate a `cdylib`?",
            req.manifest.display()
        ));
    }
    Ok(built)
}

/// Picks the `.wasm` files out of cargo's JSON messages.
fn parse_artifacts(stdout: &str) -> Vec<Built> {
    let mut built = Vec::new();
    for line in stdout.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let package = msg["target"]["name"]
            .as_str()
            .unwrap_or_default()
            .replace('_', "-");
        for f in msg["filenames"].as_array().into_iter().flatten() {
            if let Some(f) = f.as_str().filter(|f| f.ends_with(".wasm")) {
                built.push(Built {
                    package: package.clone(),
                    wasm: PathBuf::from(f),
                });
            }
        }
    }
    built
}

/// The `Cargo.toml` in `dir`, or an error saying it is missing.
pub fn manifest_in(dir: &Path) -> Result<PathBuf, String> {
    let manifest = dir.join("Cargo.toml");
    if manifest.is_file() {
        Ok(manifest)
    } else {
        Err(format!(
            "{} has no Cargo.toml: not a Rust plugin crate",
            dir.display()
        ))
    }
}
