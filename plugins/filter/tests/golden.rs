//! Runs the golden cases in `tests/golden/filter/` natively, so the files
//! the host-side runner uses are proven against the plugin's own code.
//!
//! Each case directory holds `config.json`, `input.jsonl` (one Debezium
//! envelope per line) and `expected.jsonl` (one line per output event, in
//! order). An expected line compares only the keys it has (`op`, `before`,
//! `after`, `key`, `source`; for `source` only the sub-keys it has); rows
//! compare as whole objects, columns in order.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use weir_core::envelope::{from_envelope_str, to_envelope};
use weir_plugin_sdk::testing::{new_plugin, transform};

use filter::Filter;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/golden/filter");

#[test]
fn golden_cases() {
    let cases = case_dirs(Path::new(GOLDEN));
    assert!(cases.len() >= 2, "expected at least two cases in {GOLDEN}");
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
    let mut plugin: Filter = new_plugin(&config).map_err(|e| format!("{name}: config: {e}"))?;
    let events = lines(&dir.join("input.jsonl"))
        .iter()
        .enumerate()
        .map(|(i, l)| {
            from_envelope_str(l).map_err(|e| format!("{name}: input line {}: {e}", i + 1))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut actual = Vec::new();
    for (i, out) in transform(&mut plugin, &events).into_iter().enumerate() {
        let out = out.map_err(|e| format!("{name}: input line {} failed: {e}", i + 1))?;
        actual.extend(out.iter().map(to_envelope));
    }
    let expected: Vec<Json> = lines(&dir.join("expected.jsonl"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    if actual.len() != expected.len() {
        return Err(format!(
            "{name}: {} output events, expected {}; got:\n{}",
            actual.len(),
            expected.len(),
            actual
                .iter()
                .map(Json::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    for (i, (got, want)) in actual.iter().zip(&expected).enumerate() {
        check_event(got, want).map_err(|e| format!("{name}: output {}: {e}\ngot: {got}", i + 1))?;
    }
    Ok(())
}

/// Compares the keys `want` has; `source` only by the sub-keys it has.
fn check_event(got: &Json, want: &Json) -> Result<(), String> {
    let want = want.as_object().ok_or("expected line is not an object")?;
    for (key, value) in want {
        match key.as_str() {
            "source" => {
                let sub = value.as_object().ok_or("`source` must be an object")?;
                for (k, v) in sub {
                    let g = &got["source"][k];
                    if !same(g, v) {
                        return Err(format!("source.{k} is {g}, expected {v}"));
                    }
                }
            }
            "op" | "before" | "after" | "key" => {
                if !same(&got[key], value) {
                    return Err(format!("{key} is {}, expected {value}", got[key]));
                }
            }
            other => return Err(format!("unknown key `{other}` in expected line")),
        }
    }
    Ok(())
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
