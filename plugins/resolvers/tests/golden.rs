//! Runs the golden cases in `tests/golden/resolvers/` natively, so the
//! files the host-side runner uses are proven against the plugin's own code.
//!
//! Each case directory holds `config.json`, `input.jsonl` and
//! `expected.jsonl`. An input line is a conflict (read, as by
//! `weir plugin test`, with `weir_core::envelope::conflict_from_json`),
//! `{"local": {row}, "local_meta": {"ts_us", "origin", "txId"},
//! "incoming": <Debezium envelope>}`; its expected line is
//! `{"resolution": "keep-local" | "take-incoming"}`,
//! `{"resolution": "merged", "row": {row, columns in order}}` or
//! `{"resolution": "review", "reason": "..."}`.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use weir_core::envelope::{conflict_from_json, resolution_to_json};
use weir_plugin_sdk::testing::resolve;
use weir_plugin_sdk::{Config, Resolver};

use resolvers::ConflictResolver;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/golden/resolvers");

#[test]
fn golden_cases() {
    let cases = case_dirs(Path::new(GOLDEN));
    assert!(cases.len() >= 3, "expected a case per strategy in {GOLDEN}");
    let failures: Vec<String> = cases.iter().filter_map(|c| run_case(c).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn case_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn run_case(dir: &Path) -> Result<(), String> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let mut plugin = Config::from_json(&config)
        .and_then(ConflictResolver::new)
        .map_err(|e| format!("{name}: config: {e}"))?;
    let inputs = lines(&dir.join("input.jsonl"));
    let expected = lines(&dir.join("expected.jsonl"));
    if inputs.len() != expected.len() {
        return Err(format!(
            "{name}: {} conflicts but {} expected lines",
            inputs.len(),
            expected.len()
        ));
    }
    for (i, (input, want)) in inputs.iter().zip(&expected).enumerate() {
        let line = i + 1;
        let conflict = serde_json::from_str(input)
            .map_err(|e| e.to_string())
            .and_then(|doc| conflict_from_json(&doc).map_err(|e| e.to_string()))
            .map_err(|e| format!("{name}: input line {line}: {e}"))?;
        let got = match resolve(&mut plugin, &conflict) {
            Ok(resolution) => resolution_to_json(&resolution),
            Err(e) => return Err(format!("{name}: line {line}: resolver failed: {e}")),
        };
        let want: Json = serde_json::from_str(want).unwrap();
        if !same_resolution(&got, &want) {
            return Err(format!("{name}: line {line}: got {got}, expected {want}"));
        }
    }
    Ok(())
}

/// The same keys with the same values, in any order; a merged row's
/// columns must also be in the same order.
fn same_resolution(got: &Json, want: &Json) -> bool {
    match (got.as_object(), want.as_object()) {
        (Some(g), Some(w)) => {
            g.len() == w.len()
                && w.iter()
                    .all(|(k, v)| g.get(k).is_some_and(|gv| same(gv, v)))
        }
        _ => false,
    }
}

/// JSON equality that also requires object keys in the same order.
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
        }
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(va, vb)| same(va, vb))
        }
        _ => a == b,
    }
}
