//! The pipeline's built-in sinks, and [`AnySink`], the one a sink config
//! names.
//!
//! - [`FileSink`]: JSON-lines files per destination, exactly-once.
//! - [`StdoutSink`]: JSON lines on standard output, at-least-once.

mod file;
mod stdout;

pub use file::{FileSink, FileSinkError};
pub use stdout::StdoutSink;

use serde_json::Value as Json;
use weir_core::{ChangeEvent, Sink, StageError};

use crate::config::SinkConfig;

/// Any built-in sink, as chosen by a [`SinkConfig`].
#[derive(Debug)]
pub enum AnySink {
    File(FileSink),
    Stdout(StdoutSink),
}

impl AnySink {
    /// The sink a config entry describes. The built-in sinks open nothing
    /// until [`Sink::recover`] and never fail here; sinks that connect to
    /// something will.
    pub fn from_config(config: &SinkConfig) -> Result<AnySink, StageError> {
        Ok(match config {
            SinkConfig::File(c) => AnySink::File(FileSink::new(
                c.name.clone(),
                c.dir.clone(),
                c.max_file_bytes,
            )),
            SinkConfig::Stdout(c) => AnySink::Stdout(StdoutSink::new(c.name.clone())),
        })
    }

    fn inner(&mut self) -> &mut dyn Sink {
        match self {
            AnySink::File(s) => s,
            AnySink::Stdout(s) => s,
        }
    }
}

impl Sink for AnySink {
    fn name(&self) -> &str {
        match self {
            AnySink::File(s) => s.name(),
            AnySink::Stdout(s) => s.name(),
        }
    }

    fn recover(&mut self, position: Option<&Json>) -> Result<(), StageError> {
        self.inner().recover(position)
    }

    fn write(&mut self, destination: &str, events: &[ChangeEvent]) -> Result<(), StageError> {
        self.inner().write(destination, events)
    }

    fn flush(&mut self) -> Result<Json, StageError> {
        self.inner().flush()
    }
}

/// Appends the event's compact Debezium envelope and a newline to `buf`.
fn encode_line(event: &ChangeEvent, buf: &mut Vec<u8>) {
    weir_core::envelope::write_envelope_line(event, buf);
}

#[cfg(test)]
fn test_event(id: i64, table: &str) -> ChangeEvent {
    use weir_core::{Column, Op, SourceInfo, Value};
    ChangeEvent {
        op: Op::Create,
        source: SourceInfo {
            connector: "postgresql".into(),
            database: "shop".into(),
            schema: "public".into(),
            table: table.into(),
            position: format!("0/{id:X}"),
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
