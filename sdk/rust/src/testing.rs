//! Drive a plugin natively, without Wasm, in an ordinary `cargo test`.
//! The batch goes through the same encoding and the same loop as inside a
//! component; only the boundary is missing.

use weir_core::wire::{decode_batch, encode_batch};
use weir_core::{ChangeEvent, Conflict, Resolution};

use crate::event::{Event, Outcome};
use crate::{Config, Resolver, Router, Transformer};

/// Builds a plugin from a JSON config text.
pub fn new_plugin<T: Transformer>(config_json: &str) -> Result<T, String> {
    T::new(Config::from_json(config_json)?)
}

/// Runs a transformer over events: per input event, the events it became,
/// or the reason it failed.
pub fn transform<T: Transformer>(
    plugin: &mut T,
    events: &[ChangeEvent],
) -> Vec<Result<Vec<ChangeEvent>, String>> {
    let batch = encode_batch(events);
    let views = decode_batch(&batch).expect("a batch this crate encoded decodes");
    views
        .into_iter()
        .map(|view| {
            let mut event = Event::new(view);
            match plugin.transform(&mut event) {
                Outcome::Keep => Ok(vec![event.to_owned_event()]),
                Outcome::Drop => Ok(vec![]),
                Outcome::Replace(events) => Ok(events),
                Outcome::Fail(reason) => Err(reason),
            }
        })
        .collect()
}

/// Runs a router over events: per event, its destinations or the reason.
pub fn route<T: Router>(
    plugin: &mut T,
    events: &[ChangeEvent],
) -> Vec<Result<Vec<String>, String>> {
    let batch = encode_batch(events);
    let views = decode_batch(&batch).expect("a batch this crate encoded decodes");
    views
        .into_iter()
        .map(|view| plugin.route(&Event::new(view)))
        .collect()
}

/// Runs a resolver over one conflict.
pub fn resolve<T: Resolver>(plugin: &mut T, conflict: &Conflict) -> Result<Resolution, String> {
    plugin.resolve(conflict)
}
