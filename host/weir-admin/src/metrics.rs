//! The pipeline's metrics in Prometheus form. The pipeline keeps its
//! counters in [`Stats`] (atomics and a watch channel, updated where the
//! work happens); a [`Collector`] reads them only when scraped, so metrics
//! cost the hot path nothing.
//!
//! Names follow Prometheus conventions: `weir_` prefix, `_total` on
//! counters, base units, a `pipeline` label on every series.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use weir_connect::Phase;
use weir_pipeline::Stats;
use weir_pipeline::stats::{ERROR_KINDS, SinkMetrics, lock};

use crate::anomaly::{Raised, Signal};

/// A registry holding the pipeline's collector.
pub fn registry(pipeline: &str, stats: Arc<Stats>, anomalies: Arc<Raised>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(PipelineCollector {
        pipeline: pipeline.to_owned(),
        stats,
        anomalies,
        started: Instant::now(),
    }));
    registry
}

#[derive(Debug)]
struct PipelineCollector {
    pipeline: String,
    stats: Arc<Stats>,
    anomalies: Arc<Raised>,
    started: Instant,
}

const PHASES: [Phase; 4] = [
    Phase::Starting,
    Phase::Snapshot,
    Phase::Streaming,
    Phase::Stopped,
];

/// Encodes `metric` as the one series of family `name`, labelled `labels`.
fn single(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric: impl EncodeMetric,
    labels: &[(&str, &str)],
) -> Result<(), std::fmt::Error> {
    let mut m = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(m.encode_family(&labels)?)
}

/// Encodes `h` as a histogram series labelled `labels` of the family `m`
/// belongs to.
fn histogram(
    m: &mut prometheus_client::encoding::MetricEncoder<'_>,
    labels: &[(&str, &str)],
    h: &weir_pipeline::latency::Snapshot,
) -> Result<(), std::fmt::Error> {
    m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
        h.sum_seconds,
        h.count,
        &h.buckets,
        None,
    )
}

impl PipelineCollector {
    /// Events routed, per destination.
    fn encode_destinations(&self, encoder: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let destinations = lock(&self.stats.destinations).clone();
        let mut m = encoder.encode_descriptor(
            "weir_destination_events",
            "Events routed to the destination (a table's, or what the router chose).",
            None,
            MetricType::Counter,
        )?;
        for (destination, n) in &destinations {
            let labels = [
                ("pipeline", self.pipeline.as_str()),
                ("destination", destination.as_str()),
            ];
            ConstCounter::new(*n).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }

    /// Each sink's events, write and flush times, errors and retries.
    fn encode_sinks(&self, encoder: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let sinks: Vec<(String, Arc<SinkMetrics>)> = lock(&self.stats.sinks)
            .iter()
            .map(|(name, m)| (name.clone(), Arc::clone(m)))
            .collect();
        let mut m = encoder.encode_descriptor(
            "weir_sink_events",
            "Events handed to the sink.",
            None,
            MetricType::Counter,
        )?;
        for (name, s) in &sinks {
            ConstCounter::new(s.events.load(Ordering::Relaxed))
                .encode(m.encode_family(&sink_labels(&self.pipeline, name))?)?;
        }
        for (family, help, of) in [
            (
                "weir_sink_write_seconds",
                "Time of one write to the sink (a batch).",
                (|s: &SinkMetrics| s.write.snapshot()) as fn(&SinkMetrics) -> _,
            ),
            (
                "weir_sink_flush_seconds",
                "Time of one flush of the sink (its writes made durable, with the checkpoint).",
                |s: &SinkMetrics| s.flush.snapshot(),
            ),
        ] {
            let mut m = encoder.encode_descriptor(family, help, None, MetricType::Histogram)?;
            for (name, s) in &sinks {
                histogram(&mut m, &sink_labels(&self.pipeline, name), &of(s))?;
            }
        }
        let mut m = encoder.encode_descriptor(
            "weir_sink_errors",
            "Failed writes and flushes by error kind (event: one event refused and set \
             aside as a dead letter; transient: retried from the last checkpoint; operator: \
             the pipeline stopped).",
            None,
            MetricType::Counter,
        )?;
        for (name, s) in &sinks {
            for (kind, n) in ERROR_KINDS.iter().zip(&s.errors) {
                let labels = [
                    ("pipeline", self.pipeline.as_str()),
                    ("sink", name.as_str()),
                    ("kind", kind.label()),
                ];
                ConstCounter::new(n.load(Ordering::Relaxed)).encode(m.encode_family(&labels)?)?;
            }
        }
        let mut m = encoder.encode_descriptor(
            "weir_sink_retries",
            "Restarts from the last checkpoint that a transient failure of the sink caused.",
            None,
            MetricType::Counter,
        )?;
        for (name, s) in &sinks {
            ConstCounter::new(s.retries.load(Ordering::Relaxed))
                .encode(m.encode_family(&sink_labels(&self.pipeline, name))?)?;
        }
        Ok(())
    }
}

/// The labels of a sink's series.
fn sink_labels<'a>(pipeline: &'a str, sink: &'a str) -> [(&'static str, &'a str); 2] {
    [("pipeline", pipeline), ("sink", sink)]
}

impl Collector for PipelineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = &self.stats;
        let labels = [("pipeline", self.pipeline.as_str())];
        for (name, help, value) in [
            (
                "weir_events_in",
                "Events the source handed to the pipeline.",
                s.events_in.load(Ordering::Relaxed),
            ),
            (
                "weir_events_out",
                "Events written to sinks (an event routed to two destinations counts twice).",
                s.events_out.load(Ordering::Relaxed),
            ),
            (
                "weir_dead_letters",
                "Events set aside as dead letters.",
                s.dead_letters.load(Ordering::Relaxed),
            ),
            (
                "weir_checkpoints",
                "Checkpoints saved (every sink durable, then the source acknowledged).",
                s.checkpoints.load(Ordering::Relaxed),
            ),
            (
                "weir_bytes_in",
                "Approximate in-memory bytes of the events the source handed on.",
                s.bytes_in.load(Ordering::Relaxed),
            ),
            (
                "weir_bytes_out",
                "Approximate in-memory bytes of the events routed to sinks.",
                s.bytes_out.load(Ordering::Relaxed),
            ),
            (
                "weir_pipeline_restarts",
                "Restarts from the last checkpoint after a transient failure.",
                s.restarts.load(Ordering::Relaxed),
            ),
            (
                "weir_plugin_reloads",
                "New plugin versions swapped in (hot reloads).",
                s.reloads.load(Ordering::Relaxed),
            ),
            (
                "weir_plugin_rollbacks",
                "Plugin versions rolled back after failing on probation.",
                s.rollbacks.load(Ordering::Relaxed),
            ),
        ] {
            single(&mut encoder, name, help, ConstCounter::new(value), &labels)?;
        }
        self.encode_destinations(&mut encoder)?;
        self.encode_sinks(&mut encoder)?;
        let mut m = encoder.encode_descriptor(
            "weir_queued_bytes",
            "Approximate bytes waiting between two stages (source -> plugins, plugins -> sinks).",
            None,
            MetricType::Gauge,
        )?;
        for (between, bytes) in [
            ("source_plugins", s.source_queue_bytes()),
            ("plugins_sinks", s.sink_queue.load(Ordering::Relaxed)),
        ] {
            let labels = [("pipeline", self.pipeline.as_str()), ("between", between)];
            ConstGauge::new(bytes as i64).encode(m.encode_family(&labels)?)?;
        }
        if let Some(age) = s.checkpoint_age_seconds(weir_pipeline::latency::now_us()) {
            single(
                &mut encoder,
                "weir_checkpoint_age_seconds",
                "Seconds since the last checkpoint was saved.",
                ConstGauge::new(age),
                &labels,
            )?;
        }
        let source = s.source.borrow().clone();
        let mut m = encoder.encode_descriptor(
            "weir_source_phase",
            "1 for the phase the source is in, 0 for the others.",
            None,
            MetricType::Gauge,
        )?;
        for phase in PHASES {
            let labels = [
                ("pipeline", self.pipeline.as_str()),
                ("phase", phase.label()),
            ];
            ConstGauge::new(i64::from(phase == source.phase)).encode(m.encode_family(&labels)?)?;
        }
        if let Some(p) = source.snapshot {
            single(
                &mut encoder,
                "weir_snapshot_rows",
                "Rows the snapshot copied.",
                ConstCounter::new(p.rows),
                &labels,
            )?;
            let mut m = encoder.encode_descriptor(
                "weir_snapshot_table_rows",
                "Rows the snapshot copied from the table.",
                None,
                MetricType::Counter,
            )?;
            for t in &p.tables {
                let labels = [
                    ("pipeline", self.pipeline.as_str()),
                    ("table", t.table.as_str()),
                ];
                ConstCounter::new(t.rows).encode(m.encode_family(&labels)?)?;
            }
            let mut m = encoder.encode_descriptor(
                "weir_snapshot_table_rows_estimated",
                "The server's estimate of the table's rows when the snapshot started \
                 (PostgreSQL reltuples, InnoDB TABLE_ROWS); absent where it has none.",
                None,
                MetricType::Gauge,
            )?;
            for t in &p.tables {
                if let Some(estimate) = t.estimated_rows {
                    let labels = [
                        ("pipeline", self.pipeline.as_str()),
                        ("table", t.table.as_str()),
                    ];
                    ConstGauge::new(estimate as i64).encode(m.encode_family(&labels)?)?;
                }
            }
            single(
                &mut encoder,
                "weir_snapshot_tables_done",
                "Tables the snapshot finished.",
                ConstGauge::new(p.tables_done as i64),
                &labels,
            )?;
            single(
                &mut encoder,
                "weir_snapshot_tables",
                "Tables the snapshot copies.",
                ConstGauge::new(p.tables_total as i64),
                &labels,
            )?;
        }
        if let Some(bytes) = source.behind_bytes {
            single(
                &mut encoder,
                "weir_source_lag_bytes",
                "How far the server's log is ahead of the position every sink made durable \
                 (PostgreSQL: WAL end minus the slot's confirmed position; MySQL: binlog \
                 bytes after the acknowledged position).",
                ConstGauge::new(bytes as i64),
                &labels,
            )?;
        }
        let mut m = encoder.encode_descriptor(
            "weir_end_to_end_latency_seconds",
            "From a change's commit at the source to the checkpoint that made it durable in \
             every sink (snapshot rows left out).",
            None,
            MetricType::Histogram,
        )?;
        histogram(&mut m, &labels, &s.latency.snapshot())?;
        if let Some(lag) = s.latency.lag_seconds(weir_pipeline::latency::now_us()) {
            single(
                &mut encoder,
                "weir_source_lag_seconds",
                "Now minus the source commit time of the latest change durable in every sink.",
                ConstGauge::new(lag),
                &labels,
            )?;
        }
        let plugins = s.plugins.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if !plugins.is_empty() {
            let mut m = encoder.encode_descriptor(
                "weir_plugin_probation",
                "1 while the plugin's running version is on probation, else 0; labelled with \
                 the version.",
                None,
                MetricType::Gauge,
            )?;
            for p in &plugins {
                let labels = [
                    ("pipeline", self.pipeline.as_str()),
                    ("plugin", p.name.as_str()),
                    ("role", p.role),
                    ("version", p.version.as_str()),
                ];
                ConstGauge::new(i64::from(p.probation)).encode(m.encode_family(&labels)?)?;
            }
        }
        let shadows: Vec<_> = (plugins.iter())
            .filter_map(|p| Some((p.name.as_str(), p.shadow.as_ref()?)))
            .collect();
        if !shadows.is_empty() {
            let mut m = encoder.encode_descriptor(
                "weir_shadow_events",
                "Input events a shadow candidate was compared on, by outcome: same, dropped \
                 (only the live version kept it), kept (only the candidate kept it), changed, \
                 failed (only the candidate failed), passed (only the live version failed).",
                None,
                MetricType::Counter,
            )?;
            for (plugin, c) in &shadows {
                let same = c.counts.compared - c.counts.differed();
                for (outcome, n) in std::iter::once(("same", same))
                    .chain(c.counts.outcomes.iter().map(|(k, v)| (*k, *v)))
                {
                    let labels = [
                        ("pipeline", self.pipeline.as_str()),
                        ("plugin", plugin),
                        ("candidate", c.version.as_str()),
                        ("outcome", outcome),
                    ];
                    ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
                }
            }
            let mut m = encoder.encode_descriptor(
                "weir_shadow_field_differences",
                "Events a shadow candidate changed differently from the live version, by field \
                 (after.email, key.id, op, ...).",
                None,
                MetricType::Counter,
            )?;
            for (plugin, c) in &shadows {
                for (field, n) in &c.counts.fields {
                    let labels = [
                        ("pipeline", self.pipeline.as_str()),
                        ("plugin", plugin),
                        ("candidate", c.version.as_str()),
                        ("field", field.as_str()),
                    ];
                    ConstCounter::new(*n).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        let calls = s
            .plugin_calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if !calls.is_empty() {
            let mut m = encoder.encode_descriptor(
                "weir_plugin_call_seconds",
                "Time of one plugin call (a batch) since the plugin stage started.",
                None,
                MetricType::Histogram,
            )?;
            for c in &calls {
                let labels = [
                    ("pipeline", self.pipeline.as_str()),
                    ("plugin", c.name.as_str()),
                ];
                let h = weir_pipeline::latency::Snapshot::of(&c.buckets, c.seconds);
                histogram(&mut m, &labels, &h)?;
            }
            let mut m = encoder.encode_descriptor(
                "weir_plugin_failures",
                "Events a plugin failed on, by failure kind (trap, timeout, out_of_memory, \
                 out_of_fuel, plugin_reported, contract).",
                None,
                MetricType::Counter,
            )?;
            for c in &calls {
                for (kind, n) in &c.failures {
                    let labels = [
                        ("pipeline", self.pipeline.as_str()),
                        ("plugin", c.name.as_str()),
                        ("kind", kind),
                    ];
                    ConstCounter::new(*n).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        let mut m = encoder.encode_descriptor(
            "weir_anomaly",
            "1 while the anomaly detector finds the signal far from its normal level for the \
             hour, else 0.",
            None,
            MetricType::Gauge,
        )?;
        for signal in Signal::ALL {
            let labels = [
                ("pipeline", self.pipeline.as_str()),
                ("signal", signal.label()),
            ];
            ConstGauge::new(i64::from(self.anomalies.get(signal)))
                .encode(m.encode_family(&labels)?)?;
        }
        single(
            &mut encoder,
            "weir_uptime_seconds",
            "Seconds since the pipeline started.",
            ConstGauge::new(self.started.elapsed().as_secs_f64()),
            &labels,
        )
    }
}
