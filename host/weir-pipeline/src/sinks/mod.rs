//! The pipeline's built-in sinks, each with its config section, and
//! [`Inputs`], the destination globs that choose what a sink takes.
//!
//! - [`FileSink`]: JSON-lines files per destination, exactly-once.
//! - [`StdoutSink`]: JSON lines on standard output, at-least-once.

mod file;
mod stdout;

pub use file::{FileSink, FileSinkConfig, FileSinkError};
pub use stdout::{StdoutSink, StdoutSinkConfig};

use serde::Deserialize;
use weir_core::ChangeEvent;
use wildmatch::WildMatch;

/// How a sink encodes an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkFormat {
    /// The Debezium JSON envelope (`before`, `after`, `source`, `op`,
    /// `ts_ms`), plus Weir's `key`.
    #[default]
    Debezium,
}

/// The destinations a sink takes: globs over destination names, where `*`
/// matches any run of characters and `?` any one character. No globs:
/// every destination.
#[derive(Debug, Clone)]
pub struct Inputs {
    globs: Option<Vec<WildMatch>>,
}

impl Inputs {
    /// From a sink's `inputs` (`None`: every destination).
    pub fn new(globs: Option<&[String]>) -> Self {
        Inputs {
            globs: globs.map(|g| g.iter().map(|p| WildMatch::new(p)).collect()),
        }
    }

    /// Whether the sink takes events bound for `destination`.
    pub fn takes(&self, destination: &str) -> bool {
        match &self.globs {
            None => true,
            Some(globs) => globs.iter().any(|g| g.matches(destination)),
        }
    }
}

/// Appends the event's compact Debezium envelope and a newline to `buf`.
fn encode_line(event: &ChangeEvent, buf: &mut Vec<u8>) {
    weir_core::envelope::write_envelope_line(event, buf);
}

#[cfg(test)]
pub(crate) fn test_event(id: i64, table: &str) -> ChangeEvent {
    use weir_core::{Column, Op, SourceInfo, Value};
    ChangeEvent {
        op: Op::Create,
        source: SourceInfo {
            connector: "postgresql".into(),
            database: "shop".into(),
            schema: "public".into(),
            table: table.into(),
            position: format!("0/{id:X}").into(),
            txid: Some("7".into()),
            commit_time_us: 1_700_000_000_000_000 + id,
            origin: None,
            plugins: None,
        },
        key: vec![Column::new("id", Value::Int(id))],
        before: None,
        after: Some(vec![
            Column::new("id", Value::Int(id)),
            Column::new("name", Value::Text(format!("customer {id}"))),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_match_globs_and_default_to_everything() {
        let globs = ["public.orders*".to_owned(), "audit.?".to_owned()];
        let inputs = Inputs::new(Some(&globs));
        assert!(inputs.takes("public.orders"));
        assert!(inputs.takes("public.orders_2024"));
        assert!(inputs.takes("audit.x"));
        assert!(!inputs.takes("audit.xy"));
        assert!(!inputs.takes("public.customers"));
        assert!(Inputs::new(None).takes("anything"));
    }
}
