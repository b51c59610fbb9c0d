//! A test guest: a resolver that takes every incoming change, except that
//! it traps (panics) on one whose `v` starts with `trap`, so that a sink
//! must set that change aside and go on.

use weir_plugin_sdk::{Config, Conflict, Resolution, Resolver, Value};

pub struct TrapResolver;

impl Resolver for TrapResolver {
    fn new(_config: Config) -> Result<Self, String> {
        Ok(TrapResolver)
    }

    fn resolve(&mut self, conflict: &Conflict) -> Result<Resolution, String> {
        let v = conflict
            .incoming
            .after
            .iter()
            .flatten()
            .find(|c| c.name == "v")
            .map(|c| &c.value);
        if let Some(Value::Text(t)) = v
            && t.starts_with("trap")
        {
            panic!("asked to trap by {t}");
        }
        Ok(Resolution::TakeIncoming)
    }
}

weir_plugin_sdk::export_resolver!(TrapResolver);
