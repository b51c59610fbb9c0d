//! Logging: human-readable text by default, or JSON lines with
//! `WEIR_LOG_FORMAT=json` for log pipelines. A JSON line carries the
//! time, level, target, message and fields, and, under `weir run`, the
//! pipeline's name and the last source position it made durable, so every
//! line can be traced to a pipeline and a place in the stream.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value as Json};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use weir_pipeline::Stats;

/// The pipeline this process runs, for JSON lines: its name and counters.
static PIPELINE: OnceLock<(String, Arc<Stats>)> = OnceLock::new();

/// The progress bars on standard error, when it is a terminal: log lines
/// are written above them ([`Stderr`]).
static BARS: OnceLock<indicatif::MultiProgress> = OnceLock::new();

/// Standard error for log lines: written around the progress bars, if any.
pub struct Stderr;

impl std::io::Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match BARS.get() {
            Some(bars) => bars.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Names the pipeline on every later JSON line.
pub fn set_pipeline(name: &str, stats: Arc<Stats>) {
    let _ = PIPELINE.set((name.to_owned(), stats));
}

/// The log format `WEIR_LOG_FORMAT` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl Format {
    /// From `WEIR_LOG_FORMAT` (`text`, the default, or `json`).
    pub fn from_env() -> Result<Format, String> {
        match std::env::var("WEIR_LOG_FORMAT").as_deref() {
            Err(_) | Ok("" | "text") => Ok(Format::Text),
            Ok("json") => Ok(Format::Json),
            Ok(other) => Err(format!(
                "WEIR_LOG_FORMAT is `{other}`; use `text` (the default) or `json`"
            )),
        }
    }
}

/// Formats each event as one JSON object.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _cx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        line.insert(
            "time".into(),
            Json::String(weir_core::envelope::format_utc_micros(
                weir_pipeline::latency::now_us(),
            )),
        );
        let meta = event.metadata();
        line.insert("level".into(), Json::String(meta.level().to_string()));
        line.insert("target".into(), Json::String(meta.target().to_owned()));
        if let Some((name, stats)) = PIPELINE.get() {
            line.insert("pipeline".into(), Json::String(name.clone()));
            if let Some(position) = stats.source.borrow().acknowledged.clone() {
                line.insert("position".into(), Json::String(position));
            }
        }
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        for (k, v) in fields.0 {
            line.entry(k).or_insert(v);
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// An event's fields as JSON values.
struct Fields(Map<String, Json>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Json::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Json::String(value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Json::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Json::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Json::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Json::from(value));
    }
}

/// Shows the snapshot's progress as a bar on standard error while the
/// source copies tables, when standard error is a terminal and logs are
/// text (otherwise the periodic "Pipeline progress." lines tell it).
/// Runs until aborted.
pub async fn snapshot_bar(stats: Arc<Stats>) {
    use indicatif::{ProgressBar, ProgressStyle};
    if !std::io::IsTerminal::is_terminal(&std::io::stderr())
        || Format::from_env() != Ok(Format::Text)
    {
        return;
    }
    let bars = BARS.get_or_init(indicatif::MultiProgress::new);
    let mut bar: Option<ProgressBar> = None;
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        ticks.tick().await;
        let source = stats.source.borrow().clone();
        let snapshot = source
            .snapshot
            .filter(|_| source.phase == weir_connect::Phase::Snapshot);
        match (snapshot, bar.take()) {
            (Some(p), shown) => {
                let b = shown.unwrap_or_else(|| {
                    bars.add(ProgressBar::new(0).with_style(
                        ProgressStyle::with_template(
                            "snapshot [{bar:30}] {human_pos}/{human_len} rows, {per_sec}, {msg}",
                        )
                        .expect("a valid template")
                        .progress_chars("=> "),
                    ))
                });
                // Without every table's estimate the total is unknown: the
                // bar then grows with the rows copied.
                b.set_length(p.estimated_rows().unwrap_or(p.rows).max(p.rows));
                b.set_position(p.rows);
                b.set_message(format!("{}/{} tables", p.tables_done, p.tables_total));
                bar = Some(b);
            }
            (None, Some(b)) => {
                b.finish_and_clear();
                bars.remove(&b);
            }
            (None, None) => {}
        }
    }
}
