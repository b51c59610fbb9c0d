//! The plugin driven natively through the SDK's test loop: behaviour by
//! area and configuration errors. The golden files in `tests/golden/`
//! run against the real component in `host/weir/tests`.

mod actions;
mod config_errors;
mod corpus;
mod detectors;
mod images;

use pii_mask::PiiMask;
use weir_plugin_sdk::testing::{new_plugin, transform};
use weir_plugin_sdk::{ChangeEvent, Column, Op, Row, SourceInfo, Value};

fn source(schema: &str, table: &str) -> SourceInfo {
    SourceInfo {
        connector: "postgresql".into(),
        database: "shop".into(),
        schema: schema.into(),
        table: table.into(),
        position: "0/16B3748".into(),
        txid: Some("771".into()),
        commit_time_us: 1_700_000_000_000_000,
        origin: None,
        plugins: None,
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn row(columns: &[(&str, Value)]) -> Row {
    columns
        .iter()
        .map(|(name, value)| Column::new(*name, value.clone()))
        .collect()
}

/// An insert into `public.customers` with id 1 as its key.
fn insert(after: &[(&str, Value)]) -> ChangeEvent {
    ChangeEvent {
        op: Op::Create,
        source: source("public", "customers"),
        key: row(&[("id", Value::Int(1))]),
        before: None,
        after: Some(row(after)),
    }
}

fn plugin(config: &str) -> PiiMask {
    new_plugin::<PiiMask>(config).expect("the config is valid")
}

/// Runs events through a plugin built from `config`; every event must
/// come out as exactly one event.
fn run(config: &str, events: &[ChangeEvent]) -> Vec<ChangeEvent> {
    run_with(&mut plugin(config), events)
}

fn run_with(plugin: &mut PiiMask, events: &[ChangeEvent]) -> Vec<ChangeEvent> {
    transform(plugin, events)
        .into_iter()
        .map(|out| {
            let mut out = out.expect("the plugin never fails an event");
            assert_eq!(out.len(), 1, "a masker passes every event on as one event");
            out.remove(0)
        })
        .collect()
}

/// The after image of the single event `after` becomes under `config`.
fn mask_after(config: &str, after: &[(&str, Value)]) -> Row {
    run(config, &[insert(after)])
        .remove(0)
        .after
        .expect("an insert keeps its after image")
}

/// The value of column `name` of `row`.
fn get<'r>(row: &'r [Column], name: &str) -> &'r Value {
    weir_core::column(row, name).unwrap_or_else(|| panic!("no column {name} in {row:?}"))
}
