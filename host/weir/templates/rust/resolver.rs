//! @@NAME@@: settles a conflict by a version column: the higher version
//! wins, a tie keeps the local row, an incoming delete wins.
//!
//! Config: {"column": "version"}.

use serde::Deserialize;
use weir_plugin_sdk::{Column, Config, Conflict, Resolution, Resolver, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    column: String,
}

pub struct @@TYPE@@ {
    column: String,
}

impl @@TYPE@@ {
    fn version(&self, row: &[Column]) -> Option<i64> {
        match row.iter().find(|c| c.name == self.column)?.value {
            Value::Int(v) => Some(v),
            _ => None,
        }
    }
}

impl Resolver for @@TYPE@@ {
    fn new(config: Config) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        Ok(@@TYPE@@ {
            column: settings.column,
        })
    }

    fn resolve(&mut self, conflict: &Conflict) -> Result<Resolution, String> {
        let Some(incoming) = conflict.incoming.after.as_deref() else {
            return Ok(Resolution::TakeIncoming);
        };
        match (self.version(&conflict.local), self.version(incoming)) {
            (Some(local), Some(theirs)) if theirs > local => Ok(Resolution::TakeIncoming),
            (Some(_), Some(_)) => Ok(Resolution::KeepLocal),
            _ => Err(format!(
                "column `{}` is not an integer in both versions",
                self.column
            )),
        }
    }
}

weir_plugin_sdk::export_resolver!(@@TYPE@@);

#[cfg(test)]
mod tests {
    use super::*;
    use weir_plugin_sdk::testing::resolve;
    use weir_plugin_sdk::{ChangeEvent, Op, SourceInfo, VersionMeta};

    fn conflict(local: i64, incoming: i64) -> Conflict {
        let row = |v: i64| {
            vec![
                Column::new("id", Value::Int(1)),
                Column::new("version", Value::Int(v)),
            ]
        };
        Conflict {
            local: row(local),
            local_meta: VersionMeta::default(),
            incoming: ChangeEvent {
                op: Op::Update,
                source: SourceInfo::default(),
                key: vec![Column::new("id", Value::Int(1))],
                before: None,
                after: Some(row(incoming)),
            },
        }
    }

    #[test]
    fn the_higher_version_wins() {
        let mut plugin =
            @@TYPE@@::new(Config::from_json(r#"{"column": "version"}"#).unwrap()).unwrap();
        assert_eq!(
            resolve(&mut plugin, &conflict(2, 3)),
            Ok(Resolution::TakeIncoming)
        );
        assert_eq!(
            resolve(&mut plugin, &conflict(5, 4)),
            Ok(Resolution::KeepLocal)
        );
        assert_eq!(
            resolve(&mut plugin, &conflict(5, 5)),
            Ok(Resolution::KeepLocal)
        );
    }

    #[test]
    fn a_bad_config_is_refused() {
        assert!(@@TYPE@@::new(Config::from_json(r#"{"colum": "x"}"#).unwrap()).is_err());
    }
}
