//! Hostile plugins: each fails with its own error, and the same host keeps
//! serving the next batch correctly.

use weir_plugin::{
    Capability, FailureKind, LoadError, PluginLimits, PluginSpec, TransformerPlugin,
};
use weir_tests::components;

use crate::support::{engine, event};

fn misbehave(limits: PluginLimits) -> TransformerPlugin {
    let spec = PluginSpec::new("misbehave", components::MISBEHAVE).with_limits(limits);
    TransformerPlugin::load(&engine(), &spec).expect("misbehave loads")
}

fn quick_limits() -> PluginLimits {
    PluginLimits {
        memory_mb: 32,
        deadline_ms: 200,
        fuel: None,
    }
}

/// Runs a batch with one poison event in the middle and checks that only
/// it fails, with `kind`, and that the plugin then serves a clean batch.
fn poison_in_batch(action: &str, limits: PluginLimits, kind: FailureKind) -> String {
    let mut plugin = misbehave(limits);
    let batch: Vec<_> = (0..8)
        .map(|i| event(i, if i == 5 { action } else { "ok" }))
        .collect();
    let results = plugin.transform(batch.clone());
    assert_eq!(results.len(), 8);
    let mut message = String::new();
    for (i, r) in results.into_iter().enumerate() {
        if i == 5 {
            let f = r.expect_err("the poison event fails");
            assert_eq!(f.kind, kind, "{f}");
            assert_eq!(f.index, 5);
            assert_eq!(
                *f.event, batch[5],
                "the failure carries the event as it arrived"
            );
            assert_eq!(f.plugin, "misbehave");
            message = f.message;
        } else {
            assert_eq!(r.expect("clean events pass"), vec![batch[i].clone()]);
        }
    }
    assert!(plugin.recycles() >= 1, "the faulted instance was recycled");
    let next: Vec<_> = (10..20).map(|i| event(i, "ok")).collect();
    let results = plugin.transform(next.clone());
    let out: Vec<_> = results.into_iter().map(|r| r.unwrap().remove(0)).collect();
    assert_eq!(out, next, "the next batch is served correctly");
    message
}

#[test]
fn infinite_loop_times_out() {
    let msg = poison_in_batch("loop", quick_limits(), FailureKind::Timeout);
    assert_eq!(msg, "did not finish within its deadline of 200 ms");
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let msg = poison_in_batch("bomb", quick_limits(), FailureKind::OutOfMemory);
    assert_eq!(msg, "exceeded its memory limit of 32 MiB");
}

#[test]
fn panic_is_a_trap_with_the_panic_message() {
    let msg = poison_in_batch("panic", quick_limits(), FailureKind::Trap);
    assert!(
        msg.contains("poison event in table t"),
        "the panic message reaches the failure: {msg}"
    );
}

#[test]
fn fuel_budget_stops_a_loop() {
    let limits = PluginLimits {
        fuel: Some(50_000_000),
        deadline_ms: 60_000,
        ..quick_limits()
    };
    let msg = poison_in_batch("loop", limits, FailureKind::OutOfFuel);
    assert_eq!(msg, "used up its fuel budget of 50000000");
}

#[test]
fn reported_failures_and_contract_breaches_are_isolated() {
    let mut plugin = misbehave(quick_limits());
    let batch = vec![event(1, "fail"), event(2, "ok"), event(3, "bad-patch")];
    let results = plugin.transform(batch);
    let f = results[0].as_ref().unwrap_err();
    assert_eq!(
        (f.kind, f.message.as_str()),
        (FailureKind::PluginReported, "this event asked to fail")
    );
    assert!(results[1].is_ok());
    let f = results[2].as_ref().unwrap_err();
    assert_eq!(f.kind, FailureKind::Contract);
    assert_eq!(
        f.message,
        "patch refers to column 999 of the After image, which has 2 columns"
    );
    assert_eq!(plugin.recycles(), 0, "no trap, no recycling");
}

#[test]
fn several_poison_events_are_all_found() {
    let mut plugin = misbehave(quick_limits());
    let batch: Vec<_> = (0..40)
        .map(|i| event(i, if i % 13 == 3 { "panic" } else { "ok" }))
        .collect();
    let failed: Vec<usize> = plugin
        .transform(batch)
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.is_err().then_some(i))
        .collect();
    assert_eq!(failed, vec![3, 16, 29]);
}

fn load_err(spec: PluginSpec) -> LoadError {
    TransformerPlugin::load(&engine(), &spec).expect_err("load must fail")
}

#[test]
fn wrong_world_is_refused() {
    let err = load_err(PluginSpec::new(
        "router-as-transformer",
        components::TABLE_ROUTER,
    ));
    assert!(matches!(err, LoadError::WrongWorld { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "plugin `router-as-transformer` implements the `router` world, but is configured as a transformer; use it where a router is expected"
    );
}

#[test]
fn network_import_needs_a_grant() {
    let err = load_err(PluginSpec::new("net", components::NET_CLIENT));
    let LoadError::ForbiddenImport {
        import, capability, ..
    } = &err
    else {
        panic!("expected a forbidden import, got {err}");
    };
    assert_eq!(*capability, Capability::Network);
    assert!(import.starts_with("wasi:sockets/"), "{import}");
    assert!(err.to_string().contains("it is not granted"), "{err}");

    // Granted, it loads; the empty WASI context still opens no socket.
    let spec = PluginSpec::new("net", components::NET_CLIENT).with_grants(vec![
        Capability::Network,
        Capability::Clock,
        Capability::Random,
        Capability::Filesystem,
    ]);
    let mut plugin = TransformerPlugin::load(&engine(), &spec).expect("granted plugin loads");
    let f = plugin
        .transform(vec![event(1, "ok")])
        .remove(0)
        .unwrap_err();
    assert_eq!(f.kind, FailureKind::PluginReported);
    assert!(f.message.starts_with("connect failed"), "{}", f.message);
}

#[test]
fn filesystem_import_needs_a_grant() {
    let err = load_err(PluginSpec::new("fs", components::FS_READER));
    let LoadError::ForbiddenImport {
        import, capability, ..
    } = &err
    else {
        panic!("expected a forbidden import, got {err}");
    };
    assert_eq!(*capability, Capability::Filesystem);
    assert!(import.starts_with("wasi:filesystem/"), "{import}");
}

#[test]
fn a_file_that_is_not_wasm_is_refused() {
    let dir = std::env::temp_dir().join(format!("weir-notwasm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("plugin.wasm");
    std::fs::write(&path, "#!/bin/sh\necho not wasm\n").unwrap();
    let err = load_err(PluginSpec::new("text", &path));
    assert!(matches!(err, LoadError::NotAComponent { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("is not a WebAssembly component (no WebAssembly header)"),
        "{err}"
    );
    let missing = load_err(PluginSpec::new("missing", dir.join("nope.wasm")));
    assert!(matches!(missing, LoadError::Read { .. }), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_plugin_refusing_its_config_does_not_load() {
    let spec = PluginSpec::new("misbehave", components::MISBEHAVE)
        .with_config(serde_json::json!({"refuse": true}));
    let err = load_err(spec);
    assert_eq!(
        err.to_string(),
        "plugin `misbehave` refused its configuration: refusing to start: `refuse` is set"
    );
}

#[test]
fn compiled_components_are_cached_by_content_hash() {
    let dir = std::env::temp_dir().join(format!("weir-cache-{}", std::process::id()));
    let engine = weir_plugin::PluginEngine::new(weir_plugin::EngineOptions {
        cache_dir: Some(dir.clone()),
        ..Default::default()
    })
    .unwrap();
    let info = engine
        .inspect("misbehave", components::MISBEHAVE.as_ref())
        .unwrap();
    let cached: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(cached.len(), 1);
    assert!(cached[0].to_string_lossy().starts_with(&info.sha256));
    // A second load is served from the cache and gives the same component.
    assert_eq!(
        engine
            .inspect("misbehave", components::MISBEHAVE.as_ref())
            .unwrap(),
        info
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
