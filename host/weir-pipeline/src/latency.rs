//! End-to-end latency, from a change's commit at the source to the
//! checkpoint that made it durable in every sink: a histogram of fixed
//! buckets in atomics, fed once per source transaction at each checkpoint
//! (never per event on the hot path), and read when metrics are scraped.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Upper bounds of the buckets, in seconds (the last bucket, `+Inf`, is
/// implicit).
pub const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// The bucket of a duration of `seconds`: the first whose bound holds it,
/// or the last, `+Inf`.
pub fn bucket_of(seconds: f64) -> usize {
    BUCKETS
        .iter()
        .position(|b| seconds <= *b)
        .unwrap_or(BUCKETS.len())
}

/// Every bucket's upper bound, `+Inf` last.
pub fn bounds() -> impl Iterator<Item = f64> {
    BUCKETS.into_iter().chain([f64::INFINITY])
}

/// A histogram over [`BUCKETS`] in atomics: observed from one thread,
/// read from any.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per bucket (not cumulative), the last one `+Inf`.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records `n` observations of `us` microseconds each.
    pub fn observe_us(&self, us: u64, n: u64) {
        self.counts[bucket_of(us as f64 / 1e6)].fetch_add(n, Ordering::Relaxed);
        self.sum_us
            .fetch_add(us.saturating_mul(n), Ordering::Relaxed);
    }

    /// Records one observation of `took`.
    pub fn observe(&self, took: std::time::Duration) {
        self.observe_us(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), 1);
    }

    /// The histogram so far.
    pub fn snapshot(&self) -> Snapshot {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        Snapshot::of(&counts, self.sum_us.load(Ordering::Relaxed) as f64 / 1e6)
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Latency {
    histogram: Histogram,
    /// The commit time of the latest change made durable, µs since the
    /// epoch (0: none yet).
    last_durable_commit_us: AtomicI64,
}

/// A histogram as `prometheus-client` encodes it: sum, count, and the
/// count in each bucket by its upper bound (not cumulative; the encoder
/// adds them up).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub sum_seconds: f64,
    pub count: u64,
    pub buckets: Vec<(f64, u64)>,
}

impl Latency {
    /// Records `events` changes committed at `commit_us` that became
    /// durable at `now_us`.
    pub fn observe(&self, commit_us: i64, now_us: i64, events: u64) {
        let us = now_us.saturating_sub(commit_us).max(0) as u64;
        self.histogram.observe_us(us, events);
        self.last_durable_commit_us
            .fetch_max(commit_us, Ordering::Relaxed);
    }

    /// The histogram so far.
    pub fn snapshot(&self) -> Snapshot {
        self.histogram.snapshot()
    }

    /// Seconds from the commit of the latest durable change to `now_us`;
    /// `None` before the first.
    pub fn lag_seconds(&self, now_us: i64) -> Option<f64> {
        let last = self.last_durable_commit_us.load(Ordering::Relaxed);
        (last > 0).then(|| now_us.saturating_sub(last).max(0) as f64 / 1e6)
    }
}

impl Snapshot {
    /// From per-bucket counts (in [`bounds`] order) and the sum.
    pub fn of(counts: &[u64], sum_seconds: f64) -> Snapshot {
        Snapshot {
            sum_seconds,
            count: counts.iter().sum(),
            buckets: bounds().zip(counts.iter().copied()).collect(),
        }
    }

    /// The `q` quantile (0..=1) estimated as Prometheus's
    /// `histogram_quantile` does: linear within the bucket that holds it,
    /// the highest finite bound for the `+Inf` bucket; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * self.count as f64;
        let mut below = 0u64;
        let mut lower = 0.0;
        for (bound, n) in &self.buckets {
            if *n > 0 && (below + n) as f64 >= rank {
                if bound.is_infinite() {
                    return Some(lower);
                }
                let within = (rank - below as f64) / *n as f64;
                return Some(lower + (bound - lower) * within);
            }
            below += n;
            if bound.is_finite() {
                lower = *bound;
            }
        }
        Some(lower)
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_buckets() {
        let l = Latency::default();
        assert_eq!(l.lag_seconds(10), None);
        l.observe(1_000_000, 1_003_000, 10); // 3 ms
        l.observe(1_000_000, 1_200_000, 1); // 200 ms
        l.observe(2_000_000, 100_000_000, 2); // 98 s
        let s = l.snapshot();
        assert_eq!(s.count, 13);
        assert!((s.sum_seconds - (0.03 + 0.2 + 196.0)).abs() < 1e-9, "{s:?}");
        let at = |bound: f64| s.buckets.iter().find(|(b, _)| *b == bound).unwrap().1;
        assert_eq!(at(0.0025), 0);
        assert_eq!(at(0.005), 10);
        assert_eq!(at(0.25), 1);
        assert_eq!(at(60.0), 0);
        assert_eq!(at(f64::INFINITY), 2);
        assert_eq!(l.lag_seconds(3_000_000), Some(1.0));
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        let h = Histogram::default();
        assert_eq!(h.snapshot().quantile(0.5), None);
        // 90 observations of 2 ms (bucket 1..2.5 ms), 10 of 40 ms (25..50 ms).
        h.observe_us(2_000, 90);
        h.observe_us(40_000, 10);
        let s = h.snapshot();
        let p50 = s.quantile(0.5).unwrap();
        assert!((p50 - (0.001 + 0.0015 * 50.0 / 90.0)).abs() < 1e-9, "{p50}");
        let p99 = s.quantile(0.99).unwrap();
        assert!((p99 - (0.025 + 0.025 * 0.9)).abs() < 1e-9, "{p99}");
        h.observe_us(100_000_000, 1_000);
        assert_eq!(h.snapshot().quantile(0.99), Some(60.0));
    }
}
