//! The test harness: paths of the components the build script compiled
//! from source, golden-file cases, and throwaway servers.
//!
//! Throwaway PostgreSQL servers ([`ThrowawayPostgres`]) live in the
//! `weir-throwaway` crate because `weir demo` starts them too: a fresh
//! cluster from the installed binaries on a free port, removed on drop, and
//! a clear error naming the Debian package when the binaries are missing.
//!
//! A golden case is a directory `tests/golden/<plugin>/<case>/` holding
//! `config.json` (the plugin's config), `input.jsonl` and `expected.jsonl`.
//! An expected line is compared with the actual line key by key: every
//! top-level key it has must be equal (for `source`, every sub-key it has),
//! keys it leaves out are not compared. Rows are compared whole.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
pub use weir_throwaway::{ThrowawayError, ThrowawayPostgres};

/// Components built from source by this crate's build script.
pub mod components {
    pub const PII_MASK: &str = env!("WEIR_WASM_PII_MASK");
    pub const FILTER: &str = env!("WEIR_WASM_FILTER");
    pub const TABLE_ROUTER: &str = env!("WEIR_WASM_TABLE_ROUTER");
    pub const OUTBOX_ROUTER: &str = env!("WEIR_WASM_OUTBOX_ROUTER");
    pub const RESOLVERS: &str = env!("WEIR_WASM_RESOLVERS");
    /// Misbehaves on demand: loops, allocates without end, panics.
    pub const MISBEHAVE: &str = env!("WEIR_WASM_MISBEHAVE");
    /// Imports `wasi:sockets`.
    pub const NET_CLIENT: &str = env!("WEIR_WASM_NET_CLIENT");
    /// Imports `wasi:filesystem`.
    pub const FS_READER: &str = env!("WEIR_WASM_FS_READER");
    /// A router that fails every event.
    pub const REFUSE_ROUTER: &str = env!("WEIR_WASM_REFUSE_ROUTER");
    /// A resolver that traps on a change whose `v` starts with `trap`.
    pub const TRAP_RESOLVER: &str = env!("WEIR_WASM_TRAP_RESOLVER");

    /// A bundled plugin's component by its crate name.
    pub fn bundled(name: &str) -> &'static str {
        match name {
            "pii-mask" => PII_MASK,
            "filter" => FILTER,
            "table-router" => TABLE_ROUTER,
            "outbox-router" => OUTBOX_ROUTER,
            "resolvers" => RESOLVERS,
            other => panic!("no bundled plugin named {other}"),
        }
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The componentizers `scripts/test` installs under `target/tools` that
/// the environment does not already name: each `(variable, path)` to set,
/// so that a plain `cargo nextest run` or `cargo bench` after one
/// `scripts/test` finds them.
pub fn installed_componentizers() -> Vec<(&'static str, PathBuf)> {
    let tools = repo_root().join("target/tools");
    [
        ("WEIR_COMPONENTIZE_PY", "venv/bin/componentize-py"),
        (
            "WEIR_COMPONENTIZE_JS",
            "js/node_modules/.bin/componentize-js",
        ),
    ]
    .into_iter()
    .filter(|(var, _)| std::env::var_os(var).is_none())
    .map(|(var, tool)| (var, tools.join(tool)))
    .filter(|(_, path)| path.is_file())
    .collect()
}

/// One golden case.
#[derive(Debug, Clone)]
pub struct GoldenCase {
    pub name: String,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub input: PathBuf,
    pub expected: Vec<Json>,
}

/// All golden cases of a plugin, sorted by name. Panics if there are none:
/// a plugin without golden cases is a test gap, not a pass.
pub fn golden_cases(plugin: &str) -> Vec<GoldenCase> {
    let root = repo_root().join("tests").join("golden").join(plugin);
    let mut cases: Vec<GoldenCase> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("no golden cases for {plugin} at {}: {e}", root.display()))
        .map(|entry| {
            let dir = entry.unwrap().path();
            let expected = std::fs::read_to_string(dir.join("expected.jsonl"))
                .unwrap_or_else(|e| panic!("{}: {e}", dir.join("expected.jsonl").display()))
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    serde_json::from_str(l)
                        .unwrap_or_else(|e| panic!("{}: {e}: {l}", dir.display()))
                })
                .collect();
            GoldenCase {
                name: dir.file_name().unwrap().to_string_lossy().into_owned(),
                config: dir.join("config.json"),
                input: dir.join("input.jsonl"),
                expected,
                dir,
            }
        })
        .collect();
    assert!(
        !cases.is_empty(),
        "no golden cases for {plugin} in {}",
        root.display()
    );
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

/// Compares actual output lines with expected ones by the golden rules
/// (the same rules a bundle's self-test uses).
pub fn compare_golden(actual: &[Json], expected: &[Json]) -> Result<(), String> {
    weir_core::envelope::compare_expected(actual, expected)
}
