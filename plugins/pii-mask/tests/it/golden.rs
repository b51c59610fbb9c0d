//! The golden cases in `tests/golden/pii-mask/<case>/`: `config.json`,
//! `input.jsonl` (Debezium envelopes) and `expected.jsonl` (one line per
//! output event). Only the keys present in an expected line are compared,
//! and rows are compared with their column order.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use weir_core::envelope::{from_envelope_str, to_envelope};

use super::*;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/golden/pii-mask");

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// A JSON value as text with object keys in document order, so that two
/// rows compare equal only when their columns come in the same order.
fn ordered(v: &Json) -> String {
    serde_json::to_string(v).expect("JSON values serialize")
}

fn check_case(dir: &Path) -> Vec<String> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let config = std::fs::read_to_string(dir.join("config.json")).expect("config.json");
    let input: Vec<ChangeEvent> = lines(&dir.join("input.jsonl"))
        .iter()
        .enumerate()
        .map(|(i, l)| {
            from_envelope_str(l).unwrap_or_else(|e| panic!("{name}: input line {}: {e}", i + 1))
        })
        .collect();
    let expected: Vec<Json> = lines(&dir.join("expected.jsonl"))
        .iter()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{name}: expected line {}: {e}", i + 1))
        })
        .collect();

    let mut plugin =
        new_plugin::<PiiMask>(&config).unwrap_or_else(|e| panic!("{name}: config refused: {e}"));
    let output: Vec<Json> = transform(&mut plugin, &input)
        .into_iter()
        .enumerate()
        .flat_map(|(i, out)| {
            out.unwrap_or_else(|e| panic!("{name}: input line {} failed: {e}", i + 1))
        })
        .map(|e| to_envelope(&e))
        .collect();

    let mut problems = Vec::new();
    if output.len() != expected.len() {
        problems.push(format!(
            "{name}: {} output events, {} expected",
            output.len(),
            expected.len()
        ));
    }
    for (i, (got, want)) in output.iter().zip(&expected).enumerate() {
        let want = want.as_object().expect("expected lines are objects");
        for (key, want_value) in want {
            let got_value = got.get(key).unwrap_or(&Json::Null);
            if ordered(got_value) != ordered(want_value) {
                problems.push(format!(
                    "{name}: line {} `{key}`:\n  got      {}\n  expected {}",
                    i + 1,
                    ordered(got_value),
                    ordered(want_value)
                ));
            }
        }
    }
    problems
}

fn cases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(GOLDEN)
        .unwrap_or_else(|e| panic!("cannot list {GOLDEN}: {e}"))
        .map(|d| d.expect("directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn golden_cases_match() {
    let dirs = cases();
    let names: Vec<String> = dirs
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for required in ["default-detectors", "rules", "updates-and-deletes"] {
        assert!(
            names.iter().any(|n| n == required),
            "missing golden case {required}"
        );
    }
    let problems: Vec<String> = dirs.iter().flat_map(|d| check_case(d)).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
