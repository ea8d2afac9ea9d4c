//! Pure measure functions over cluster counts (DESIGN.md "Measures"). Reusable by `compare`,
//! the report and the dashboard; no state.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The 97.5% standard-normal quantile, for 95% intervals.
pub const Z95: f64 = 1.959964;

/// Bootstrap resamples for battery intervals.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// Fixed seed so the same data always yields the same bootstrap interval.
pub const BOOTSTRAP_SEED: u64 = 0x7265_7072_6973_6521;

/// Wilson score interval for `successes` out of `n` at normal quantile `z`; None when n = 0.
pub fn wilson_interval(successes: u64, n: u64, z: f64) -> Option<[f64; 2]> {
    if n == 0 {
        return None;
    }
    let n = n as f64;
    let p = (successes as f64 / n).clamp(0.0, 1.0);
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // At the bounds the interval touches 0 or 1 exactly; rounding would leave 0.9999999999999999.
    let lo = if p == 0.0 {
        0.0
    } else {
        (center - half).max(0.0)
    };
    let hi = if p == 1.0 {
        1.0
    } else {
        (center + half).min(1.0)
    };
    Some([lo, hi])
}

/// Share of the most frequent output, c₁/N; None when there are no outputs.
pub fn modal_share(counts: &[u64]) -> Option<f64> {
    let n: u64 = counts.iter().sum();
    let c1 = counts.iter().copied().max()?;
    (n > 0).then(|| c1 as f64 / n as f64)
}

/// Probability that two different calls gave the same output: Σ cₖ(cₖ−1) / (N(N−1)).
/// One output agrees with itself (1.0); None when there are none.
pub fn pairwise_agreement(counts: &[u64]) -> Option<f64> {
    let n: u128 = counts.iter().map(|&c| c as u128).sum();
    match n {
        0 => None,
        1 => Some(1.0),
        _ => {
            // Integer sums make the value independent of the order counts arrive in.
            let same: u128 = counts
                .iter()
                .map(|&c| c as u128 * (c as u128).saturating_sub(1))
                .sum();
            Some(same as f64 / (n * (n - 1)) as f64)
        }
    }
}

/// Shannon entropy of the output distribution in bits; None when there are no outputs.
pub fn entropy_bits(counts: &[u64]) -> Option<f64> {
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return None;
    }
    let n = n as f64;
    let h = -counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            p * p.log2()
        })
        .sum::<f64>();
    // -0.0 for a single output reads badly in JSON.
    Some(h.max(0.0))
}

/// Percentile bootstrap 95% interval of the mean of `values` (resampled with replacement).
/// None when empty; a single value gives [v, v].
pub fn bootstrap_mean_ci(values: &[f64], resamples: usize, seed: u64) -> Option<[f64; 2]> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    if n == 1 || resamples == 0 {
        let m = values.iter().sum::<f64>() / n as f64;
        return Some([m, m]);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| {
            let s: f64 = (0..n).map(|_| values[rng.random_range(0..n)]).sum();
            s / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    Some([quantile(&means, 0.025), quantile(&means, 0.975)])
}

/// Linear-interpolated quantile of sorted, non-empty data.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r3(x: f64) -> f64 {
        (x * 1000.0).round() / 1000.0
    }

    #[test]
    fn design_worked_example_aaabc() {
        let counts = [3, 1, 1];
        assert_eq!(r3(modal_share(&counts).unwrap()), 0.600);
        let ci = wilson_interval(3, 5, Z95).unwrap();
        assert_eq!([r3(ci[0]), r3(ci[1])], [0.231, 0.882]);
        assert_eq!(r3(pairwise_agreement(&counts).unwrap()), 0.300);
        assert_eq!(r3(entropy_bits(&counts).unwrap()), 1.371);
    }

    #[test]
    fn degenerate_counts() {
        assert_eq!(modal_share(&[]), None);
        assert_eq!(pairwise_agreement(&[]), None);
        assert_eq!(entropy_bits(&[]), None);
        assert_eq!(wilson_interval(0, 0, Z95), None);
        assert_eq!(pairwise_agreement(&[1]), Some(1.0));
        assert_eq!(entropy_bits(&[7]), Some(0.0));
        assert_eq!(pairwise_agreement(&[1, 1]), Some(0.0));
        assert_eq!(entropy_bits(&[1, 1]), Some(1.0));
        let all = wilson_interval(10, 10, Z95).unwrap();
        assert_eq!(all[1], 1.0);
        assert!(all[0] > 0.65 && all[0] < 0.75, "{all:?}");
    }

    #[test]
    fn bootstrap_is_deterministic_and_brackets_the_mean() {
        let v = [0.2, 0.9, 0.5, 1.0, 0.4];
        let a = bootstrap_mean_ci(&v, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED).unwrap();
        let b = bootstrap_mean_ci(&v, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED).unwrap();
        assert_eq!(a, b);
        assert!(a[0] < 0.6 && 0.6 < a[1], "{a:?}");
        assert!(a[0] >= 0.2 && a[1] <= 1.0, "{a:?}");
        assert_eq!(bootstrap_mean_ci(&[0.7], 2000, 1), Some([0.7, 0.7]));
        assert_eq!(bootstrap_mean_ci(&[], 2000, 1), None);
    }
}
