//! Runs the golden cases in `tests/golden/table-router/` natively, so the
//! files the host-side runner uses are proven against the plugin's own code.
//!
//! Each case directory holds `config.json`, `input.jsonl` (one Debezium
//! envelope per line) and `expected.jsonl`: one line per input event,
//! `{"to": ["destination"]}` or `{"error": "message"}`.

use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};
use weir_core::envelope::from_envelope_str;
use weir_plugin_sdk::testing::route;
use weir_plugin_sdk::{Config, Router};

use table_router::TableRouter;

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/golden/table-router"
);

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
    let mut plugin = Config::from_json(&config)
        .and_then(TableRouter::new)
        .map_err(|e| format!("{name}: config: {e}"))?;
    let events = lines(&dir.join("input.jsonl"))
        .iter()
        .enumerate()
        .map(|(i, l)| {
            from_envelope_str(l).map_err(|e| format!("{name}: input line {}: {e}", i + 1))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let actual: Vec<Json> = route(&mut plugin, &events)
        .into_iter()
        .map(|r| match r {
            Ok(to) => json!({ "to": to }),
            Err(e) => json!({ "error": e }),
        })
        .collect();
    let expected: Vec<Json> = lines(&dir.join("expected.jsonl"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    if actual.len() != expected.len() {
        return Err(format!(
            "{name}: {} routes for {} expected lines",
            actual.len(),
            expected.len()
        ));
    }
    for (i, (got, want)) in actual.iter().zip(&expected).enumerate() {
        if got != want {
            return Err(format!(
                "{name}: line {}: got {got}, expected {want}",
                i + 1
            ));
        }
    }
    Ok(())
}
