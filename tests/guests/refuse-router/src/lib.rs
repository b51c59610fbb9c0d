//! A test guest: a router that refuses to route any event, so that a
//! pipeline swapping it in must roll it back.

use weir_plugin_sdk::{Config, Event, Router};

pub struct RefuseRouter;

impl Router for RefuseRouter {
    fn new(_config: Config) -> Result<Self, String> {
        Ok(RefuseRouter)
    }

    fn route(&mut self, event: &Event<'_>) -> Result<Vec<String>, String> {
        Err(format!("refusing to route {}", event.table()))
    }
}

weir_plugin_sdk::export_router!(RefuseRouter);
