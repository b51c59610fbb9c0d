//! The stdout sink: one Debezium envelope per line on standard output, for
//! trying a pipeline out and for piping into other tools.
//!
//! At-least-once: output cannot be taken back, so events written after the
//! last checkpoint are written again after a restart. Its position is
//! always `{}`.

use std::io::Write;

use serde::Deserialize;
use serde_json::{Value as Json, json};
use weir_connect::{BuildContext, Checker, SinkComponent};
use weir_core::{Delivery, Sink, StageError};

use super::{SinkFormat, encode_line};

/// `kind = "stdout"`: one JSON line per event on standard output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {
    /// Line format.
    #[serde(default)]
    pub format: SinkFormat,
}

impl SinkComponent for StdoutSinkConfig {
    fn validate(&self, _check: &mut Checker) {}

    fn build(&self, name: &str, _cx: &BuildContext) -> Result<Box<dyn Sink>, StageError> {
        Ok(Box::new(StdoutSink::new(name)))
    }
}

/// Writes events as JSON lines to standard output (or another writer).
pub struct StdoutSink {
    name: String,
    out: Box<dyn Write + Send>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for StdoutSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdoutSink")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl StdoutSink {
    /// A sink writing to the process's standard output.
    pub fn new(name: impl Into<String>) -> Self {
        StdoutSink::with_writer(name, Box::new(std::io::stdout()))
    }

    /// A sink writing to `out` instead, for tests and embedding.
    pub fn with_writer(name: impl Into<String>, out: Box<dyn Write + Send>) -> Self {
        StdoutSink {
            name: name.into(),
            out,
            buf: Vec::new(),
        }
    }
}

impl Sink for StdoutSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn recover(&mut self, _position: Option<&Json>) -> Result<(), StageError> {
        // Nothing can be taken back: the source replays, and lines repeat.
        Ok(())
    }

    fn write(&mut self, events: &[Delivery<'_>]) -> Result<(), StageError> {
        // One write per batch: standard output takes its lock once, and
        // the lines of a batch reach the reader together.
        self.buf.clear();
        for d in events {
            encode_line(d.event, &mut self.buf);
        }
        // A closed pipe or a full disk behind a redirect: nothing a retry
        // fixes.
        self.out.write_all(&self.buf).map_err(|e| {
            StageError::operator(format!(
                "stdout sink `{}`: cannot write to standard output: {e}",
                self.name
            ))
        })
    }

    fn flush(&mut self, _source: &Json) -> Result<Json, StageError> {
        self.out.flush().map_err(|e| {
            StageError::operator(format!(
                "stdout sink `{}`: cannot flush standard output: {e}",
                self.name
            ))
        })?;
        Ok(json!({}))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use weir_core::envelope::to_envelope;

    use super::*;
    use crate::sinks::test_event;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writes_one_envelope_per_line() {
        let out = Shared::default();
        let mut sink = StdoutSink::with_writer("console", Box::new(out.clone()));
        sink.recover(None).unwrap();
        let events = [test_event(1, "customers"), test_event(2, "orders")];
        let deliveries: Vec<Delivery<'_>> = events
            .iter()
            .map(|event| Delivery {
                destination: "public.customers",
                event,
            })
            .collect();
        sink.write(&deliveries).unwrap();
        assert_eq!(sink.flush(&Json::Null).unwrap(), json!({}));
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Json> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines, [to_envelope(&events[0]), to_envelope(&events[1])]);
        assert!(
            text.ends_with("}\n") && !text.contains(": "),
            "not compact: {text}"
        );
    }
}
