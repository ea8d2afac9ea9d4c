//! The tests `compare` runs: Fisher's exact test on a 2×2 table, the chi-square test of
//! homogeneity on a 2×K table, and Holm's step-down adjustment. Pure functions, no state.
//!
//! Everything is computed in log space (ln-gamma from `libm`), so tables with N in the
//! hundreds of thousands neither overflow nor lose the tail.

use serde::Serialize;

/// Significance level used for every "differs significantly" statement.
pub const ALPHA: f64 = 0.05;

/// Categories whose expected count falls under this are pooled into "other" before a
/// chi-square test (the usual validity rule for its approximation).
pub const MIN_EXPECTED: f64 = 5.0;

/// ln C(n, k).
fn ln_choose(n: u64, k: u64) -> f64 {
    let (n, k) = (n as f64, k as f64);
    libm::lgamma(n + 1.0) - libm::lgamma(k + 1.0) - libm::lgamma(n - k + 1.0)
}

/// Fisher's exact test, two-sided, on the 2×2 table `[[a, b], [c, d]]`: the probability,
/// under fixed margins, of a table at most as likely as the one observed. 1.0 for an empty
/// table or a degenerate margin.
pub fn fisher_exact(a: u64, b: u64, c: u64, d: u64) -> f64 {
    let row1 = a + b;
    let row2 = c + d;
    let col1 = a + c;
    let n = row1 + row2;
    if n == 0 {
        return 1.0;
    }
    let lo = col1.saturating_sub(row2);
    let hi = row1.min(col1);
    let ln_total = ln_choose(n, col1);
    let ln_p = |x: u64| ln_choose(row1, x) + ln_choose(row2, col1 - x) - ln_total;
    let observed = ln_p(a);
    // Tables "as extreme" are those no more probable than the observed one; the relative
    // tolerance keeps tables that tie with it in exact arithmetic but not in floating point.
    let cutoff = observed + 1e-7;
    let mut p = 0.0;
    for x in lo..=hi {
        let l = ln_p(x);
        if l <= cutoff {
            p += l.exp();
        }
    }
    p.clamp(0.0, 1.0)
}

/// Regularised upper incomplete gamma Q(s, x) = Γ(s, x) / Γ(s), for s > 0, x ≥ 0.
pub fn gamma_q(s: f64, x: f64) -> f64 {
    if s.is_nan() || s <= 0.0 || x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    if x.is_infinite() {
        return 0.0;
    }
    if x < s + 1.0 {
        1.0 - gamma_p_series(s, x)
    } else {
        gamma_q_fraction(s, x)
    }
}

/// P(s, x) by its power series; converges quickly for x < s + 1.
fn gamma_p_series(s: f64, x: f64) -> f64 {
    let mut term = 1.0 / s;
    let mut sum = term;
    let mut k = s;
    for _ in 0..10_000 {
        k += 1.0;
        term *= x / k;
        sum += term;
        if term.abs() < sum.abs() * 1e-16 {
            break;
        }
    }
    (sum.ln() - x + s * x.ln() - libm::lgamma(s))
        .exp()
        .clamp(0.0, 1.0)
}

/// Q(s, x) by its continued fraction (modified Lentz); converges quickly for x ≥ s + 1.
fn gamma_q_fraction(s: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut b = x + 1.0 - s;
    let mut c = 1.0 / TINY;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..10_000 {
        let an = -(i as f64) * (i as f64 - s);
        b += 2.0;
        d = an * d + b;
        if d.abs() < TINY {
            d = TINY;
        }
        c = b + an / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    ((-x + s * x.ln() - libm::lgamma(s)).exp() * h).clamp(0.0, 1.0)
}

/// The chi-square survival function: P(X ≥ x) for X with `df` degrees of freedom.
pub fn chi_square_sf(x: f64, df: u64) -> f64 {
    gamma_q(df as f64 / 2.0, x / 2.0)
}

/// A chi-square test of homogeneity on a 2×K table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChiSquare {
    pub statistic: f64,
    pub df: u64,
    pub p: f64,
    /// Categories in the table as tested (after pooling).
    pub categories: usize,
    /// How many of the original categories were pooled into "other".
    pub pooled: usize,
}

/// Chi-square test of homogeneity of two count vectors over the same K categories
/// (`a[k]`, `b[k]`). Categories with an expected count under [`MIN_EXPECTED`] in either row
/// are pooled into one "other" category; if "other" is itself that rare, the next rarest
/// categories join it. None when fewer than two categories remain or a row is empty: there
/// is no distribution to compare.
pub fn chi_square_homogeneity(a: &[u64], b: &[u64]) -> Option<ChiSquare> {
    let na: u64 = a.iter().sum();
    let nb: u64 = b.iter().sum();
    if na == 0 || nb == 0 || a.len() != b.len() {
        return None;
    }
    let n = (na + nb) as f64;
    let min_row = na.min(nb) as f64;
    // The smaller row's expected count is the binding one: E = row × column / N.
    let expected_min = |col: u64| min_row * col as f64 / n;
    let mut kept: Vec<(u64, u64)> = Vec::new();
    let mut other = (0u64, 0u64);
    let mut pooled = 0;
    for (&x, &y) in a.iter().zip(b) {
        if x + y == 0 {
            continue;
        }
        if expected_min(x + y) < MIN_EXPECTED {
            other.0 += x;
            other.1 += y;
            pooled += 1;
        } else {
            kept.push((x, y));
        }
    }
    if pooled > 0 {
        // Rarest first, so the fewest categories join "other".
        kept.sort_by_key(|&(x, y)| std::cmp::Reverse(x + y));
        while expected_min(other.0 + other.1) < MIN_EXPECTED {
            let Some((x, y)) = kept.pop() else { break };
            other.0 += x;
            other.1 += y;
            pooled += 1;
        }
        kept.push(other);
    }
    let k = kept.len();
    if k < 2 {
        return None;
    }
    let mut statistic = 0.0;
    for &(x, y) in &kept {
        let col = (x + y) as f64;
        for (obs, row) in [(x, na), (y, nb)] {
            let e = row as f64 * col / n;
            statistic += (obs as f64 - e).powi(2) / e;
        }
    }
    let df = (k - 1) as u64;
    Some(ChiSquare {
        statistic,
        df,
        p: chi_square_sf(statistic, df),
        categories: k,
        pooled,
    })
}

/// Holm's step-down adjustment of `p` for multiple comparisons, in the input order.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300)
    }

    #[test]
    fn fisher_matches_known_tables() {
        // R: fisher.test(matrix(c(3,1,1,3), 2))$p.value = 0.4857143
        assert!(close(fisher_exact(3, 1, 1, 3), 0.485_714_285_714, 1e-9));
        // The tea-tasting table read the other way round is the same test.
        assert!(close(fisher_exact(1, 3, 3, 1), 0.485_714_285_714, 1e-9));
        // R: fisher.test(matrix(c(10,2,3,15), 2))$p.value = 0.0005367241
        assert!(close(fisher_exact(10, 3, 2, 15), 0.000_536_724_1, 1e-6));
        // fisher.test(matrix(c(100,0,60,40), 2, byrow=TRUE))$p.value = 1.341e-14
        assert!(close(
            fisher_exact(100, 0, 60, 40),
            1.340_992_662_809_022e-14,
            1e-6
        ));
        // 100/100 vs 98/100: R gives 0.4975
        assert!(close(fisher_exact(100, 0, 98, 2), 0.497_487_437, 1e-6));
        assert_eq!(fisher_exact(0, 0, 0, 0), 1.0);
        assert_eq!(fisher_exact(5, 0, 5, 0), 1.0);
    }

    #[test]
    fn fisher_handles_a_hundred_thousand_calls_per_side() {
        let started = std::time::Instant::now();
        let same = fisher_exact(95_000, 5_000, 95_000, 5_000);
        assert!(close(same, 1.0, 1e-6), "{same}");
        let shifted = fisher_exact(95_000, 5_000, 94_000, 6_000);
        assert!(shifted < 1e-15, "{shifted}");
        assert!(started.elapsed().as_secs_f64() < 1.0);
    }

    #[test]
    fn chi_square_survival_at_known_points() {
        // The 5% critical values: qchisq(0.95, df).
        assert!(close(chi_square_sf(3.841_458_820_694_124, 1), 0.05, 1e-9));
        assert!(close(chi_square_sf(5.991_464_547_107_979, 2), 0.05, 1e-9));
        assert!(close(chi_square_sf(18.307_038_053_275_146, 10), 0.05, 1e-9));
        // pchisq(1, 1, lower.tail = FALSE) = 0.3173105
        assert!(close(chi_square_sf(1.0, 1), 0.317_310_507_862_914_1, 1e-9));
        // With two degrees of freedom the survival function is exp(-x/2) exactly.
        for x in [0.5, 2.0, 10.0, 50.0] {
            assert!(
                close(chi_square_sf(x, 2), (-x / 2.0f64).exp(), 1e-12),
                "{x}"
            );
        }
        // pchisq(100, 50, lower.tail = FALSE) = 3.454931e-05 (even df: a finite Poisson sum)
        assert!(close(
            chi_square_sf(100.0, 50),
            3.454_931_382_984_864e-5,
            1e-9
        ));
        assert_eq!(chi_square_sf(0.0, 3), 1.0);
        assert!(chi_square_sf(1e6, 3) < 1e-300 || chi_square_sf(1e6, 3) == 0.0);
    }

    #[test]
    fn homogeneity_on_a_plain_table() {
        // chisq.test(rbind(c(20,30,50), c(30,30,40))): X² = 28/9, df 2, p = exp(-14/9)
        let t = chi_square_homogeneity(&[20, 30, 50], &[30, 30, 40]).unwrap();
        assert_eq!((t.df, t.categories, t.pooled), (2, 3, 0));
        assert!(close(t.statistic, 28.0 / 9.0, 1e-9), "{t:?}");
        assert!(close(t.p, (-14.0f64 / 9.0).exp(), 1e-9), "{t:?}");
    }

    #[test]
    fn rare_outputs_are_pooled_into_other() {
        // Ten singletons on each side: each expected under 5, all pooled into one category.
        let mut a = vec![80u64];
        let mut b = vec![80u64];
        a.extend((0..20).map(|i| u64::from(i < 10)));
        b.extend((0..20).map(|i| u64::from(i >= 10)));
        let t = chi_square_homogeneity(&a, &b).unwrap();
        assert_eq!(t.categories, 2);
        assert_eq!(t.pooled, 20);
        // Pooled, the two sides are the same 80/10 split: no evidence of a change.
        assert!(t.statistic.abs() < 1e-12 && close(t.p, 1.0, 1e-9), "{t:?}");
        // One category on both sides: nothing to test.
        assert!(chi_square_homogeneity(&[100], &[100]).is_none());
        assert!(chi_square_homogeneity(&[0, 0], &[3, 4]).is_none());
    }

    #[test]
    fn a_rare_other_takes_in_the_next_rarest() {
        // "other" would hold 2 calls (expected 1 per side): the 10s join it.
        let t = chi_square_homogeneity(&[50, 10, 1, 0], &[50, 10, 0, 1]).unwrap();
        assert_eq!((t.categories, t.pooled), (2, 3));
    }

    #[test]
    fn holm_adjusts_step_down_and_keeps_order() {
        // R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") = 0.03 0.06 0.06 0.02
        let adj = holm(&[0.01, 0.04, 0.03, 0.005]);
        for (got, want) in adj.iter().zip([0.03, 0.06, 0.06, 0.02]) {
            assert!(close(*got, want, 1e-12), "{adj:?}");
        }
        assert_eq!(holm(&[0.6, 0.9]), vec![1.0, 1.0]);
        assert!(holm(&[]).is_empty());
    }
}
