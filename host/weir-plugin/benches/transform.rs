//! Per-event cost of plugins across the Wasm boundary, against native Rust
//! doing the same work on the same events, measured in the same run.
//!
//! `cargo bench -p weir-plugin --bench transform`
//!
//! - `wasm/pii-mask`: the bundled pii-mask component masking one column
//!   (`email`) of 8-column rows, batch of 1000.
//! - `native/pii-mask-sdk`: the same pii-mask code compiled natively, driven
//!   through the SDK's borrowed views and patches exactly as inside the
//!   component: the Wasm boundary is the only difference.
//! - `native/hand-written`: a direct native implementation of the rule on
//!   owned events (find the column, mask it in place).
//! - `wasm/pass-through`: a component that reads one column and keeps every
//!   event: the floor cost of a plugin call per event.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use weir_core::wire::{decode_batch, encode_batch};
use weir_core::{ChangeEvent, Value};
use weir_plugin::{EngineOptions, PluginEngine, PluginSpec, TransformerPlugin};
use weir_plugin_sdk::{Config, Event, Outcome, Transformer};
use weir_tests::components;

mod common;

use common::{BATCH, events, mask_config};

fn bench(c: &mut Criterion) {
    let engine = PluginEngine::new(EngineOptions::default()).expect("engine");
    let input = events();
    let mut group = c.benchmark_group("transform-1000x8col");
    group.throughput(Throughput::Elements(BATCH as u64));

    let spec = PluginSpec::new("pii-mask", components::PII_MASK).with_config(mask_config());
    let mut wasm_mask = TransformerPlugin::load(&engine, &spec).expect("pii-mask loads");
    // The Wasm and native paths must agree before either is timed.
    let wasm_out = wasm_mask.transform(input.clone());
    let mut native = pii_mask::PiiMask::new(Config::from_value(mask_config())).unwrap();
    let native_out = native_sdk(&mut native, input.clone());
    assert_eq!(
        wasm_out
            .into_iter()
            .map(|r| r.unwrap().remove(0))
            .collect::<Vec<_>>(),
        native_out
    );

    group.bench_function("wasm/pii-mask", |b| {
        b.iter_batched(
            || input.clone(),
            |events| wasm_mask.transform(events),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("native/pii-mask-sdk", |b| {
        b.iter_batched(
            || input.clone(),
            |events| native_sdk(&mut native, events),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("native/hand-written", |b| {
        b.iter_batched(|| input.clone(), hand_written, BatchSize::LargeInput)
    });

    // No config: every detector on every column, as the pipeline bench
    // (`postgres_to_files`) runs it, for comparing the two.
    let spec = PluginSpec::new("pii-mask", components::PII_MASK);
    let mut every_detector = TransformerPlugin::load(&engine, &spec).expect("pii-mask loads");
    group.bench_function("wasm/pii-mask-every-detector", |b| {
        b.iter_batched(
            || input.clone(),
            |events| every_detector.transform(events),
            BatchSize::LargeInput,
        )
    });

    let spec = PluginSpec::new("pass-through", components::MISBEHAVE);
    let mut pass = TransformerPlugin::load(&engine, &spec).expect("pass-through loads");
    group.bench_function("wasm/pass-through", |b| {
        b.iter_batched(
            || input.clone(),
            |events| pass.transform(events),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// The plugin's own code, natively, through the same encode / view /
/// patch path the component uses.
fn native_sdk(plugin: &mut pii_mask::PiiMask, mut events: Vec<ChangeEvent>) -> Vec<ChangeEvent> {
    let batch = encode_batch(&events);
    let views = decode_batch(&batch).unwrap();
    let mut patches = Vec::with_capacity(events.len());
    for view in views {
        let mut event = Event::new(view);
        assert_eq!(plugin.transform(&mut event), Outcome::Keep);
        patches.push(event.patches().to_vec());
    }
    for (event, p) in events.iter_mut().zip(&patches) {
        event.apply_patches(p).unwrap();
    }
    events
}

fn hand_written(mut events: Vec<ChangeEvent>) -> Vec<ChangeEvent> {
    for event in &mut events {
        for row in [event.before.as_mut(), event.after.as_mut()]
            .into_iter()
            .flatten()
        {
            for col in row.iter_mut().filter(|c| c.name == "email") {
                if let Value::Text(t) = &col.value {
                    col.value = Value::Text(pii_mask::mask_email(t));
                }
            }
        }
    }
    events
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
