//! Timing for the dashboard: latency buckets read off an item's HDR histogram, and calls
//! completed per second of the session.

use hdrhistogram::Histogram;

use super::LatencyBucket;
use crate::record::CallRecord;

/// Bars in a latency histogram: few enough to draw at 80 columns, enough to show a shape.
pub const BUCKETS: usize = 24;

/// Beyond this max/min ratio a linear scale would squeeze most calls into the first bar.
const LOG_RATIO: u64 = 50;

/// Throughput is kept for the first 24 hours of a session (86,400 counters, 338 KiB).
pub const THROUGHPUT_SECONDS: usize = 24 * 60 * 60;

/// `BUCKETS` buckets spanning the exact `min_us..=max_us` (one bucket when all latencies are
/// equal); each of the histogram's bins (0.1% wide) counts in exactly one bucket, the one
/// holding its lowest value, so the counts sum to `h.len()`.
///
/// One pass over the bins up to the maximum: the cost of one percentile query.
pub fn buckets(h: &Histogram<u32>, min_us: u64, max_us: u64) -> Vec<LatencyBucket> {
    if h.is_empty() {
        return Vec::new();
    }
    let (lo, hi) = (min_us.min(max_us), max_us);
    let uppers = upper_bounds(lo, hi);
    let last = uppers.len() - 1;
    let mut counts = vec![0u64; uppers.len()];
    // The first value of the first bin not yet counted.
    let mut next_low = 0u64;
    for (k, &upper) in uppers.iter().enumerate() {
        let high = if k == last {
            h.max().max(hi)
        } else {
            upper as u64
        };
        // A bucket narrower than a bin stays empty; the bin counts in the next one.
        if high >= next_low {
            counts[k] = h.count_between(next_low, high);
            next_low = h.next_non_equivalent(high);
        }
    }
    let mut from = lo as f64;
    uppers
        .into_iter()
        .zip(counts)
        .map(|(upper, count)| {
            let bucket = LatencyBucket {
                from_ms: from / 1000.0,
                upto_ms: upper / 1000.0,
                count,
            };
            from = upper;
            bucket
        })
        .collect()
}

/// Upper bounds in microseconds; the last is exactly `hi`.
fn upper_bounds(lo: u64, hi: u64) -> Vec<f64> {
    if hi == lo {
        return vec![hi as f64];
    }
    let n = BUCKETS as f64;
    let (lo_f, hi_f) = (lo as f64, hi as f64);
    let log = lo > 0 && hi / lo > LOG_RATIO;
    let mut uppers: Vec<f64> = (1..=BUCKETS)
        .map(|k| {
            let t = k as f64 / n;
            if log {
                lo_f * (hi_f / lo_f).powf(t)
            } else {
                lo_f + (hi_f - lo_f) * t
            }
        })
        .collect();
    uppers[BUCKETS - 1] = hi_f;
    uppers
}

/// Calls completed in each second of the session, every record counted (warm-up and failures
/// too): the pace of the campaign rather than of its measured calls.
#[derive(Debug, Clone, Default)]
pub struct Throughput {
    per_second: Vec<u32>,
}

impl Throughput {
    pub fn add(&mut self, record: &CallRecord) {
        let end_ms = record.timing.start_ms + record.timing.latency_ms.max(0.0);
        if !end_ms.is_finite() {
            return;
        }
        // Clock skew can put a completion before the start: it counts in the first second.
        let second = (end_ms.max(0.0) / 1000.0) as usize;
        if second >= THROUGHPUT_SECONDS {
            return;
        }
        if self.per_second.len() <= second {
            self.per_second.resize(second + 1, 0);
        }
        self.per_second[second] = self.per_second[second].saturating_add(1);
    }

    pub fn per_second(&self) -> &[u32] {
        &self.per_second
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{AnalysisConfig, Analyzer, ItemSnapshot, DEFAULT_PAIR_BUDGET};
    use crate::record::ErrorClass;

    fn analyzer() -> Analyzer {
        Analyzer::new(AnalysisConfig {
            answer: None,
            pair_budget: DEFAULT_PAIR_BUDGET,
            targets: vec!["t".into()],
            items: vec![("q".into(), None)],
        })
    }

    fn item_with(latencies: &[f64]) -> ItemSnapshot {
        let mut a = analyzer();
        for (call, ms) in latencies.iter().enumerate() {
            a.fold(&CallRecord::ok("t", "q", call as u32, "A", *ms));
        }
        // A failure is not a latency sample.
        a.fold(&CallRecord::failed(
            "t",
            "q",
            latencies.len() as u32,
            ErrorClass::Timeout,
            "slow",
        ));
        a.snapshot().targets[0].items[0].clone()
    }

    /// The bucket holding the first call at or past quantile `q`, counting up the buckets.
    fn bucket_of_quantile(h: &[LatencyBucket], q: f64) -> usize {
        let total: u64 = h.iter().map(|b| b.count).sum();
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        h.iter()
            .position(|b| {
                seen += b.count;
                seen >= rank
            })
            .unwrap()
    }

    fn bucket_of_value(h: &[LatencyBucket], ms: f64) -> usize {
        // Bounds are exact only to the histogram's 0.1%.
        h.iter()
            .position(|b| ms <= b.upto_ms * 1.001)
            .unwrap_or(h.len() - 1)
    }

    #[test]
    fn buckets_count_every_successful_call_once() {
        let latencies: Vec<f64> = (0..1000).map(|i| 100.0 + (i * 7 % 400) as f64).collect();
        let i = item_with(&latencies);
        let h = &i.latency_histogram;
        assert_eq!(h.len(), BUCKETS);
        assert_eq!(h.iter().map(|b| b.count).sum::<u64>(), 1000);
        assert_eq!(i.ok, 1000);
        assert!(h.windows(2).all(|w| w[0].upto_ms < w[1].upto_ms));
        assert_eq!(h[BUCKETS - 1].upto_ms, i.latency_ms.max);
        assert_eq!(h[0].from_ms, 100.0);
        assert!(h.windows(2).all(|w| w[0].upto_ms == w[1].from_ms));
        // Linear: uniform latencies over 100..500 ms give even bars.
        let width = h[1].upto_ms - h[0].upto_ms;
        assert!((width - 399.0 / 24.0).abs() < 1e-6, "{width}");
        for b in h {
            assert!((35..=50).contains(&b.count), "{h:?}");
        }
    }

    #[test]
    fn percentiles_sit_in_the_buckets_that_hold_them() {
        // Skewed: most calls fast, a tail of slow ones.
        let latencies: Vec<f64> = (0..500)
            .map(|i| {
                if i % 10 == 0 {
                    900.0 + i as f64
                } else {
                    200.0 + (i % 37) as f64
                }
            })
            .collect();
        let i = item_with(&latencies);
        let h = &i.latency_histogram;
        let l = i.latency_ms;
        for (q, p) in [(0.5, l.p50), (0.9, l.p90), (0.99, l.p99)] {
            assert_eq!(
                bucket_of_value(h, p),
                bucket_of_quantile(h, q),
                "{q} {p} {h:?}"
            );
        }
    }

    #[test]
    fn wide_ranges_get_log_spaced_buckets() {
        let mut latencies = vec![10.0; 50];
        latencies.extend([100.0; 50]);
        latencies.push(5000.0);
        let h = item_with(&latencies).latency_histogram;
        assert_eq!(h.iter().map(|b| b.count).sum::<u64>(), 101);
        // Equal ratios between bounds: 10 ms → 5 s in 24 steps.
        let ratio = (5000.0f64 / 10.0).powf(1.0 / 24.0);
        assert!((h[1].upto_ms / h[0].upto_ms - ratio).abs() < 1e-9);
        // 10 ms and 100 ms are apart, not squeezed into the first of 24 linear bars of 208 ms.
        assert_eq!(h[0].count, 50);
        assert_eq!(h[bucket_of_value(&h, 100.0)].count, 50);
        assert_ne!(bucket_of_value(&h, 100.0), 0);
    }

    #[test]
    fn equal_latencies_make_one_bucket_and_no_calls_none() {
        let h = item_with(&[12.0, 12.0, 12.0]).latency_histogram;
        assert_eq!(
            h,
            [LatencyBucket {
                from_ms: 12.0,
                upto_ms: 12.0,
                count: 3
            }]
        );
        assert!(item_with(&[]).latency_histogram.is_empty());
    }

    #[test]
    fn throughput_counts_completions_per_second_including_warmup_and_failures() {
        let mut a = analyzer();
        let at = |mut r: CallRecord, start_ms: f64, latency_ms: f64| {
            r.timing.start_ms = start_ms;
            r.timing.latency_ms = latency_ms;
            r
        };
        let mut warm = at(CallRecord::ok("t", "q", 0, "A", 0.0), 0.0, 400.0);
        warm.warmup = true;
        a.fold(&warm);
        // Sent in second 0, completed in second 1.
        a.fold(&at(CallRecord::ok("t", "q", 1, "A", 0.0), 800.0, 300.0));
        a.fold(&at(CallRecord::ok("t", "q", 2, "A", 0.0), 1000.0, 999.0));
        let failed = CallRecord::failed("t", "q", 3, ErrorClass::Timeout, "slow");
        a.fold(&at(failed, 2500.0, 1000.0));
        a.fold(&at(CallRecord::ok("t", "q", 4, "A", 0.0), 3000.0, 10.0));
        // Far past the 24-hour cap: not counted, and the vector stays bounded.
        a.fold(&at(CallRecord::ok("t", "q", 5, "A", 0.0), 1e9, 10.0));
        let s = a.snapshot();
        assert_eq!(s.throughput, [1, 2, 0, 2]);
        // The measures still skip the warm-up call.
        assert_eq!(s.targets[0].items[0].calls, 5);
    }

    /// Release-mode figure: `cargo test --release --lib latency_bucket_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn latency_bucket_cost() {
        let mut h: Histogram<u32> = Histogram::new(3).unwrap();
        for i in 0..10_000u64 {
            h.record(50_000 + i * 7919 % 3_000_000).unwrap();
        }
        let rounds = 2000u32;
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(buckets(&h, 50_000, 3_050_000));
        }
        let b = start.elapsed() / rounds;
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(h.value_at_quantile(0.99));
        }
        let q = start.elapsed() / rounds;
        println!("10k calls: buckets {b:?}, one percentile {q:?}");
    }
}
