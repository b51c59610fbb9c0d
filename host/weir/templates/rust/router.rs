//! @@NAME@@: routes every event to `<prefix>.<table>`.
//!
//! Config: {"prefix": "lake"}.

use serde::Deserialize;
use weir_plugin_sdk::{Config, Event, Router};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    prefix: String,
}

pub struct @@TYPE@@ {
    prefix: String,
}

impl Router for @@TYPE@@ {
    fn new(config: Config) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        if settings.prefix.is_empty() {
            return Err("invalid plugin config: `prefix` must not be empty".into());
        }
        Ok(@@TYPE@@ {
            prefix: settings.prefix,
        })
    }

    /// The destinations of one event; an empty list drops it.
    fn route(&mut self, event: &Event<'_>) -> Result<Vec<String>, String> {
        Ok(vec![format!("{}.{}", self.prefix, event.table())])
    }
}

weir_plugin_sdk::export_router!(@@TYPE@@);

#[cfg(test)]
mod tests {
    use super::*;
    use weir_plugin_sdk::testing::route;
    use weir_plugin_sdk::{ChangeEvent, Column, Op, SourceInfo, Value};

    #[test]
    fn routes_by_table_under_the_prefix() {
        let mut plugin =
            @@TYPE@@::new(Config::from_json(r#"{"prefix": "lake"}"#).unwrap()).unwrap();
        let event = ChangeEvent {
            op: Op::Create,
            source: SourceInfo {
                table: "customers".into(),
                ..SourceInfo::default()
            },
            key: vec![Column::new("id", Value::Int(1))],
            before: None,
            after: Some(vec![Column::new("id", Value::Int(1))]),
        };
        let routes = route(&mut plugin, &[event]);
        assert_eq!(routes, vec![Ok(vec!["lake.customers".to_owned()])]);
    }

    #[test]
    fn a_bad_config_is_refused() {
        assert!(@@TYPE@@::new(Config::from_json(r#"{"prefix": ""}"#).unwrap()).is_err());
    }
}
