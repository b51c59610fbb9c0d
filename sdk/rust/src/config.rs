//! The plugin's own configuration, as given in the pipeline config.

use serde::de::DeserializeOwned;

/// A plugin's configuration: a JSON document (`{}` when none was given).
#[derive(Debug, Clone, Default)]
pub struct Config {
    doc: serde_json::Value,
}

impl Config {
    /// The configuration the host holds for this plugin instance.
    pub fn from_host() -> Config {
        let text = crate::bindings::host::config();
        Config::from_json(&text).unwrap_or_default()
    }

    /// A configuration from JSON text (for native tests).
    pub fn from_json(text: &str) -> Result<Config, String> {
        let doc = if text.trim().is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            serde_json::from_str(text).map_err(|e| format!("plugin config is not JSON: {e}"))?
        };
        Ok(Config { doc })
    }

    /// A configuration from a JSON value (for native tests).
    pub fn from_value(doc: serde_json::Value) -> Config {
        Config { doc }
    }

    /// The raw document.
    pub fn value(&self) -> &serde_json::Value {
        &self.doc
    }

    /// Whether no configuration was given.
    pub fn is_empty(&self) -> bool {
        match &self.doc {
            serde_json::Value::Null => true,
            serde_json::Value::Object(m) => m.is_empty(),
            _ => false,
        }
    }

    /// Parses the configuration into the plugin's own type. The error names
    /// the offending field, ready to return from `new`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, String> {
        let doc = match &self.doc {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            d => d.clone(),
        };
        serde_json::from_value(doc).map_err(|e| format!("invalid plugin config: {e}"))
    }
}
