//! @@NAME@@: upper-cases one text column of every event's after image.
//!
//! Config: {"column": "name"}.

use serde::Deserialize;
use weir_plugin_sdk::{Config, Event, Outcome, Transformer, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    column: String,
}

pub struct @@TYPE@@ {
    column: String,
}

impl Transformer for @@TYPE@@ {
    fn new(config: Config) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        Ok(@@TYPE@@ {
            column: settings.column,
        })
    }

    fn transform(&mut self, event: &mut Event<'_>) -> Outcome {
        if let Some(text) = event.after_text(&self.column) {
            let upper = text.to_uppercase();
            event.set_after(&self.column, Value::Text(upper));
        }
        Outcome::Keep
    }
}

weir_plugin_sdk::export_transformer!(@@TYPE@@);

#[cfg(test)]
mod tests {
    use super::*;
    use weir_plugin_sdk::testing::{new_plugin, transform};
    use weir_plugin_sdk::{ChangeEvent, Column, Op, SourceInfo};

    #[test]
    fn upper_cases_the_configured_column_only() {
        let mut plugin: @@TYPE@@ = new_plugin(r#"{"column": "name"}"#).unwrap();
        let event = ChangeEvent {
            op: Op::Create,
            source: SourceInfo {
                table: "customers".into(),
                ..SourceInfo::default()
            },
            key: vec![Column::new("id", Value::Int(1))],
            before: None,
            after: Some(vec![
                Column::new("id", Value::Int(1)),
                Column::new("name", Value::Text("ada".into())),
                Column::new("city", Value::Text("london".into())),
            ]),
        };
        let out = transform(&mut plugin, &[event]).remove(0).unwrap();
        let after = out[0].after.as_ref().unwrap();
        assert_eq!(after[1].value, Value::Text("ADA".into()));
        assert_eq!(after[2].value, Value::Text("london".into()));
    }

    #[test]
    fn a_bad_config_is_refused() {
        assert!(new_plugin::<@@TYPE@@>(r#"{"colum": "x"}"#).is_err());
    }
}
