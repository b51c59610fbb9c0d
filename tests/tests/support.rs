//! Shared test fixtures: an engine with a shared compile cache, events.

use weir_core::{ChangeEvent, Column, Op, SourceInfo, Value};
use weir_plugin::{EngineOptions, PluginEngine};

/// An engine whose compile cache lives in the target directory, shared by
/// every test process so each component compiles once per build.
pub fn engine() -> PluginEngine {
    PluginEngine::new(EngineOptions {
        cache_dir: Some(
            weir_tests::repo_root()
                .join("target")
                .join("weir-test-cache"),
        ),
        ..EngineOptions::default()
    })
    .expect("engine")
}

/// An insert into `public.t` whose `action` column tells the misbehaving
/// guest what to do.
pub fn event(id: i64, action: &str) -> ChangeEvent {
    ChangeEvent {
        op: Op::Create,
        source: SourceInfo {
            connector: "postgresql".into(),
            database: "shop".into(),
            schema: "public".into(),
            table: "t".into(),
            position: format!("0/{id:X}").into(),
            txid: Some("1".into()),
            commit_time_us: 1_700_000_000_000_000 + id,
            origin: None,
            plugins: None,
        },
        key: vec![Column::new("id", Value::Int(id))],
        before: None,
        after: Some(vec![
            Column::new("id", Value::Int(id)),
            Column::new("action", Value::Text(action.into())),
        ]),
    }
}
