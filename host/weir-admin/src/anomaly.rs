//! An online anomaly detector for a pipeline's throughput, lag and failure
//! rate. It learns each signal's normal level and how much it varies,
//! separately for every hour of the day (so a nightly batch or a quiet
//! weekend hour is normal at its hour), and raises a signal when a new
//! sample is far from normal in the bad direction on consecutive samples.
//!
//! Per signal and hour bucket: a baseline that starts from the median and
//! median absolute deviation of its first samples (so one odd sample, such
//! as the first of a pipeline still connecting, does not skew it), then
//! follows an exponentially weighted mean and mean absolute deviation. A
//! sample's robust z-score is its distance from the mean over the
//! deviation (scaled like a standard deviation, with a floor so that a
//! perfectly steady signal does not turn every wobble into an anomaly).
//! Until a bucket has seen enough samples, the signal's all-hours baseline
//! stands in. Abnormal samples, and samples taken while a signal is
//! raised, do not teach the baseline, so an anomaly does not become the
//! new normal; samples halfway there on the bad side teach it at a tenth
//! of the weight, so a stall developing over several samples is not
//! learned before it is raised, while a lasting moderate change still is.
//!
//! Throughput falling to zero counts only while the source has changes
//! waiting (a quiet source is not an anomaly).

/// The signals watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Events written per second; low is bad.
    Throughput,
    /// Seconds behind the source; high is bad.
    Lag,
    /// Dead letters per event taken; high is bad.
    Failures,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Throughput, Signal::Lag, Signal::Failures];

    pub fn label(self) -> &'static str {
        match self {
            Signal::Throughput => "throughput",
            Signal::Lag => "lag",
            Signal::Failures => "failures",
        }
    }

    /// The smallest deviation a sample is measured against.
    fn floor(self) -> f64 {
        match self {
            Signal::Throughput => 1.0,
            Signal::Lag => 1.0,
            Signal::Failures => 0.01,
        }
    }
}

/// One sample of every signal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Hour of the day (UTC), 0 to 23.
    pub hour: usize,
    pub throughput: f64,
    pub lag_seconds: f64,
    pub failure_ratio: f64,
    /// Whether the source has changes the pipeline has not taken.
    pub source_has_changes: bool,
}

/// How sure the detector must be.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// Robust z-score beyond which a sample is abnormal.
    pub threshold: f64,
    /// Consecutive abnormal samples that raise a signal, and normal ones
    /// that clear it.
    pub confirm: u32,
    /// Samples a baseline needs before it is trusted.
    pub warmup: u64,
    /// Weight of a new sample in the baselines.
    pub alpha: f64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            threshold: 4.0,
            confirm: 2,
            warmup: 12,
            alpha: 0.05,
        }
    }
}

/// A baseline's level and spread.
#[derive(Debug, Clone, Copy, Default)]
struct Level {
    mean: f64,
    deviation: f64,
    samples: u64,
}

#[derive(Debug, Clone, Default)]
struct Baseline {
    level: Level,
    /// The first samples, until there are `warmup` of them.
    first: Vec<f64>,
}

/// The median of `values` (not empty), which it sorts.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

impl Baseline {
    /// Takes `x` with `weight` (0 to 1) once warmed up; the first `warmup`
    /// samples all count equally, through their median.
    fn learn(&mut self, x: f64, weight: f64, warmup: u64) {
        let l = &mut self.level;
        l.samples += 1;
        if l.samples <= warmup.max(1) {
            self.first.push(x);
            if l.samples == warmup.max(1) {
                let mut first = std::mem::take(&mut self.first);
                let mean = median(&mut first);
                for v in &mut first {
                    *v = (*v - mean).abs();
                }
                l.mean = mean;
                l.deviation = median(&mut first);
            }
            return;
        }
        let d = (x - l.mean).abs();
        l.mean += weight * (x - l.mean);
        l.deviation += weight * (d - l.deviation);
    }
}

#[derive(Debug, Clone)]
struct Watch {
    signal: Signal,
    hours: [Baseline; 24],
    all: Baseline,
    raised: bool,
    streak: u32,
}

/// A change of a signal's state, to log.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub signal: Signal,
    pub raised: bool,
    pub value: f64,
    pub normal: f64,
    pub z: f64,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Detector {
    tuning: Tuning,
    watches: Vec<Watch>,
}

impl Detector {
    pub fn new(tuning: Tuning) -> Self {
        Detector {
            tuning,
            watches: Signal::ALL
                .iter()
                .map(|&signal| Watch {
                    signal,
                    hours: std::array::from_fn(|_| Baseline::default()),
                    all: Baseline::default(),
                    raised: false,
                    streak: 0,
                })
                .collect(),
        }
    }

    /// Whether `signal` is raised.
    pub fn raised(&self, signal: Signal) -> bool {
        self.watches.iter().any(|w| w.signal == signal && w.raised)
    }

    /// Takes one sample; returns the signals raised or cleared by it.
    pub fn observe(&mut self, sample: Sample) -> Vec<Change> {
        let t = self.tuning;
        let mut changes = Vec::new();
        for w in &mut self.watches {
            let x = match w.signal {
                Signal::Throughput => sample.throughput,
                Signal::Lag => sample.lag_seconds,
                Signal::Failures => sample.failure_ratio,
            };
            let hour = w.hours[sample.hour % 24].level;
            let base = if hour.samples >= t.warmup {
                hour
            } else {
                w.all.level
            };
            let spread = (base.deviation * 1.4826)
                .max(0.1 * base.mean.abs())
                .max(w.signal.floor());
            let z = (x - base.mean) / spread;
            let bad_side = match w.signal {
                Signal::Throughput => -z,
                Signal::Lag | Signal::Failures => z,
            };
            let gated = w.signal != Signal::Throughput || sample.source_has_changes;
            let trusted = base.samples >= t.warmup && gated;
            let abnormal = trusted && bad_side > t.threshold;
            let suspect = trusted && bad_side > t.threshold / 2.0;
            if abnormal != w.raised {
                w.streak += 1;
                if w.streak >= t.confirm {
                    w.raised = abnormal;
                    w.streak = 0;
                    changes.push(Change {
                        signal: w.signal,
                        raised: abnormal,
                        value: x,
                        normal: base.mean,
                        z,
                    });
                }
            } else {
                w.streak = 0;
            }
            if !abnormal && !w.raised {
                let weight = if suspect { t.alpha / 10.0 } else { t.alpha };
                w.hours[sample.hour % 24].learn(x, weight, t.warmup);
                w.all.learn(x, weight, t.warmup);
            }
        }
        changes
    }
}

/// Which signals are raised, shared with the metrics.
#[derive(Debug, Default)]
pub struct Raised([std::sync::atomic::AtomicBool; 3]);

impl Raised {
    fn index(signal: Signal) -> usize {
        Signal::ALL
            .iter()
            .position(|s| *s == signal)
            .expect("listed")
    }

    pub fn get(&self, signal: Signal) -> bool {
        self.0[Self::index(signal)].load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set(&self, signal: Signal, raised: bool) {
        self.0[Self::index(signal)].store(raised, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Samples the pipeline's counters every `interval` into a detector until
/// `shutdown`, publishing raised signals in `raised` and logging each
/// change.
pub async fn watch(
    stats: std::sync::Arc<weir_pipeline::Stats>,
    raised: std::sync::Arc<Raised>,
    interval: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut detector = Detector::new(Tuning::default());
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let counts = || {
        (
            stats.events_in.load(Relaxed),
            stats.events_out.load(Relaxed),
            stats.dead_letters.load(Relaxed),
        )
    };
    let mut last = (std::time::Instant::now(), counts());
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let now = weir_pipeline::latency::now_us();
        let (taken, written, dead) = counts();
        let seconds = last.0.elapsed().as_secs_f64().max(1e-3);
        let (in_before, out_before, dead_before) = last.1;
        let taken_now = taken.saturating_sub(in_before);
        let behind = stats.source.borrow().behind_bytes;
        let sample = Sample {
            hour: ((now / 3_600_000_000) % 24) as usize,
            throughput: written.saturating_sub(out_before) as f64 / seconds,
            lag_seconds: stats.latency.lag_seconds(now).unwrap_or(0.0),
            failure_ratio: dead.saturating_sub(dead_before) as f64 / taken_now.max(1) as f64,
            source_has_changes: behind.map_or(taken_now > 0, |b| b > 0),
        };
        last = (std::time::Instant::now(), (taken, written, dead));
        for c in detector.observe(sample) {
            raised.set(c.signal, c.raised);
            if c.raised {
                tracing::warn!(
                    signal = c.signal.label(),
                    value = c.value,
                    normal = c.normal,
                    z = c.z,
                    "Anomaly raised: far from this hour's normal level."
                );
            } else {
                tracing::info!(
                    signal = c.signal.label(),
                    value = c.value,
                    normal = c.normal,
                    "Anomaly cleared."
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic noise source.
    struct Noise(u64);

    impl Noise {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as f64 / (1u64 << 31) as f64) - 0.5
        }
    }

    /// Ten-second samples over `days` of a daily pattern: throughput
    /// between 200 and 1800 events/s (a sine over the day) with ±10%
    /// noise, lag around half a second.
    fn daily(days: u64, noise: &mut Noise) -> Vec<Sample> {
        (0..days * 8640)
            .map(|i| {
                let seconds = i * 10;
                let day = (seconds % 86_400) as f64 / 86_400.0;
                let level = 1000.0 + 800.0 * (day * std::f64::consts::TAU).sin();
                Sample {
                    hour: ((seconds / 3600) % 24) as usize,
                    throughput: level * (1.0 + 0.2 * noise.next()),
                    lag_seconds: 0.5 + 0.2 * noise.next(),
                    failure_ratio: 0.0,
                    source_has_changes: true,
                }
            })
            .collect()
    }

    #[test]
    fn a_steady_daily_pattern_raises_nothing() {
        let mut d = Detector::new(Tuning::default());
        let mut noise = Noise(7);
        for s in daily(4, &mut noise) {
            let changes = d.observe(s);
            assert!(changes.is_empty(), "{changes:?} at {s:?}");
        }
    }

    #[test]
    fn a_drop_to_zero_with_changes_waiting_is_raised_within_a_few_samples() {
        let mut d = Detector::new(Tuning::default());
        let mut noise = Noise(11);
        let mut samples = daily(2, &mut noise);
        let last = *samples.last().unwrap();
        for s in samples.drain(..) {
            d.observe(s);
        }
        // The sink stalls: nothing written while changes wait.
        let stalled = Sample {
            throughput: 0.0,
            ..last
        };
        let mut raised_after = None;
        for i in 1..=5 {
            if d.observe(stalled)
                .iter()
                .any(|c| c.signal == Signal::Throughput && c.raised)
            {
                raised_after = Some(i);
                break;
            }
        }
        assert_eq!(raised_after, Some(2));
        // Back to normal: cleared after two normal samples.
        let cleared: Vec<Change> = (0..2).flat_map(|_| d.observe(last)).collect();
        assert!(
            cleared
                .iter()
                .any(|c| c.signal == Signal::Throughput && !c.raised)
        );
        // A quiet source writing nothing is no anomaly.
        let quiet = Sample {
            throughput: 0.0,
            source_has_changes: false,
            ..last
        };
        for _ in 0..5 {
            assert!(d.observe(quiet).is_empty());
        }
    }

    /// A pipeline sampled every 250 ms under a light load (~155 events/s,
    /// ±10%) whose first sample caught it still connecting, then paused
    /// while changes keep coming: the series a CI run recorded when the
    /// stall went unraised (the first sample skewed the deviation, and the
    /// zeros taught the baseline before they crossed the threshold).
    #[test]
    fn a_stall_after_a_slow_start_is_raised_and_not_learned() {
        let mut d = Detector::new(Tuning::default());
        let mut noise = Noise(5);
        let at = |throughput: f64| Sample {
            hour: 13,
            throughput,
            lag_seconds: 0.01,
            failure_ratio: 0.0,
            source_has_changes: true,
        };
        assert!(d.observe(at(16.0)).is_empty());
        for _ in 0..20 {
            assert!(d.observe(at(155.0 * (1.0 + 0.2 * noise.next()))).is_empty());
        }
        // The first stalled sample saw a little written before the pause.
        assert!(d.observe(at(24.0)).is_empty());
        let raised = d.observe(at(0.0));
        assert!(
            raised
                .iter()
                .any(|c| c.signal == Signal::Throughput && c.raised && c.normal > 140.0),
            "{raised:?}"
        );
        // Forty stalled samples later the normal level is still the load's.
        for _ in 0..40 {
            d.observe(at(0.0));
        }
        assert!(d.raised(Signal::Throughput));
        let cleared: Vec<Change> = (0..2).flat_map(|_| d.observe(at(150.0))).collect();
        assert!(
            cleared
                .iter()
                .any(|c| c.signal == Signal::Throughput && !c.raised && c.normal > 140.0),
            "{cleared:?}"
        );
    }

    /// A lasting moderate drop (halfway to abnormal) is learned, slowly:
    /// the baseline follows it rather than freezing.
    #[test]
    fn a_lasting_moderate_drop_becomes_the_new_normal() {
        let mut d = Detector::new(Tuning::default());
        let at = |throughput: f64| Sample {
            hour: 0,
            throughput,
            lag_seconds: 0.0,
            failure_ratio: 0.0,
            source_has_changes: true,
        };
        for _ in 0..50 {
            d.observe(at(1000.0));
        }
        // 70%: z = -3 against the 10% floor, suspect but not abnormal.
        for _ in 0..2000 {
            assert!(d.observe(at(700.0)).is_empty());
        }
        let level = d.watches[0].hours[0].level;
        assert!((level.mean - 700.0).abs() < 50.0, "{level:?}");
    }

    #[test]
    fn a_lag_ramp_is_raised_within_a_few_samples() {
        let mut d = Detector::new(Tuning::default());
        let mut noise = Noise(3);
        let samples = daily(1, &mut noise);
        let last = *samples.last().unwrap();
        for s in samples {
            d.observe(s);
        }
        let mut raised_after = None;
        for i in 1..=10 {
            let ramp = Sample {
                lag_seconds: 0.5 + 2.0 * i as f64,
                ..last
            };
            if d.observe(ramp)
                .iter()
                .any(|c| c.signal == Signal::Lag && c.raised)
            {
                raised_after = Some(i);
                break;
            }
        }
        let after = raised_after.expect("the ramp was raised");
        assert!(after <= 4, "raised after {after} samples");
        assert!(d.raised(Signal::Lag));
    }

    #[test]
    fn nothing_is_raised_while_learning() {
        let mut d = Detector::new(Tuning::default());
        for i in 0..11 {
            let s = Sample {
                hour: 0,
                throughput: if i % 2 == 0 { 1000.0 } else { 0.0 },
                lag_seconds: i as f64 * 100.0,
                failure_ratio: 0.0,
                source_has_changes: true,
            };
            assert!(d.observe(s).is_empty());
        }
    }
}
