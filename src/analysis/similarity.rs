//! Pairwise distances between distinct outputs, computed once when an output first appears and
//! folded into running sums weighted by cluster counts, so a snapshot never runs Levenshtein.
//!
//! Exact while every new output can be compared with every earlier one within the pair budget.
//! Beyond it, each new output is compared with a fixed-seed random sample of earlier outputs
//! and each sampled pair carries its Horvitz–Thompson weight 1/p, which keeps the sums unbiased.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::edit;

/// Distinct-output pairs computed exhaustively before sampling starts: 1,225 pairs = the first
/// 50 distinct outputs all compared with each other. A new output then costs at most 49
/// comparisons: ~0.4 ms for ~1,000-token near-duplicates, ~55 ms for unrelated texts of that
/// length (figures from benches/analysis.rs).
pub const DEFAULT_PAIR_BUDGET: u64 = 1225;

/// Past the budget, each new output is compared with this many earlier ones (fewer if the
/// budget is tiny). The estimate rests on 4 more pairs per distinct output (~40,000 pairs at
/// 10,000 distinct outputs), plenty for a mean, and re-analysing stays cheap.
pub const SAMPLE_PER_OUTPUT: usize = 4;

/// Fixed point for the weighted sums: integer sums make the result independent of the order
/// in which the same pairs were folded.
const SCALE: f64 = 4_294_967_296.0;

const SAMPLE_SEED: u64 = 0x7061_6972_7361_6d70;

/// Normalised character edit distance: Levenshtein over chars / the longer length in chars.
/// Two empty strings are at distance 0.
pub fn ned(a: &str, b: &str) -> f64 {
    CharText::new(a).ned(&CharText::new(b))
}

/// Normalised token edit distance over interned token ids.
pub fn token_distance(a: &[u32], b: &[u32]) -> f64 {
    normalised(edit::distance(a, b), a.len().max(b.len()))
}

/// A text ready for char-level distances: ASCII text is compared as bytes (one byte, one
/// char), sharing the cluster's text; other text keeps its chars decoded once.
#[derive(Debug, Clone)]
pub struct CharText {
    wide: Option<Vec<char>>,
    ascii: Arc<str>,
}

impl CharText {
    pub fn new(text: &str) -> Self {
        CharText::shared(text.into())
    }

    pub fn shared(text: Arc<str>) -> Self {
        if text.is_ascii() {
            CharText {
                wide: None,
                ascii: text,
            }
        } else {
            CharText {
                wide: Some(text.chars().collect()),
                ascii: Arc::from(""),
            }
        }
    }

    fn len(&self) -> usize {
        self.wide.as_ref().map_or(self.ascii.len(), Vec::len)
    }

    fn chars(&self) -> std::borrow::Cow<'_, [char]> {
        match &self.wide {
            Some(w) => w.as_slice().into(),
            None => self.ascii.chars().collect(),
        }
    }

    pub fn ned(&self, other: &CharText) -> f64 {
        let longest = self.len().max(other.len());
        let d = match (&self.wide, &other.wide) {
            (None, None) => edit::distance(self.ascii.as_bytes(), other.ascii.as_bytes()),
            _ => edit::distance(&self.chars(), &other.chars()),
        };
        normalised(d, longest)
    }
}

fn normalised(dist: usize, longest: usize) -> f64 {
    if longest == 0 {
        0.0
    } else {
        dist as f64 / longest as f64
    }
}

#[derive(Debug, Clone, Copy)]
struct Edge {
    other: u32,
    /// Character NED × weight, fixed point.
    q_char: u64,
    /// Token distance × weight, fixed point.
    q_tok: u64,
}

/// Running sums Σ_{k<l} cₖ·c_l·d(k,l)/π(k,l) for character and token distances.
#[derive(Debug, Clone)]
pub struct PairStore {
    /// Earlier outputs a new one may be compared with while within the budget.
    row_cap: usize,
    budget: u64,
    adj: Vec<Vec<Edge>>,
    pairs: u64,
    exact: bool,
    sum_char: u128,
    sum_tok: u128,
    rng: ChaCha8Rng,
}

/// The two pairwise means for an item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairMeans {
    pub ned: f64,
    pub token_similarity: f64,
    pub exact: bool,
    pub pairs: u64,
}

impl PairStore {
    pub fn new(budget: u64) -> Self {
        PairStore {
            row_cap: row_cap(budget),
            budget,
            adj: Vec::new(),
            pairs: 0,
            exact: true,
            sum_char: 0,
            sum_tok: 0,
            rng: ChaCha8Rng::seed_from_u64(SAMPLE_SEED),
        }
    }

    /// Registers output `new` (= the number of outputs registered so far) and computes its
    /// distances to earlier outputs with `dist(l) -> (char NED, token distance)`. Call
    /// [`PairStore::bump`] afterwards for its first occurrence.
    pub fn add_output(&mut self, new: usize, mut dist: impl FnMut(usize) -> (f64, f64)) {
        debug_assert_eq!(new, self.adj.len());
        self.adj.push(Vec::new());
        let k = new;
        if k == 0 {
            return;
        }
        let all_pairs = (k as u64 + 1) * k as u64 / 2;
        let others: Vec<usize> = if all_pairs <= self.budget || k <= self.row_cap {
            (0..k).collect()
        } else {
            self.exact = false;
            let m = self.row_cap.min(SAMPLE_PER_OUTPUT);
            let mut s = rand::seq::index::sample(&mut self.rng, k, m).into_vec();
            // Sorted so the distances are computed in a stable, cache-friendly order.
            s.sort_unstable();
            s
        };
        let weight = k as f64 / others.len() as f64;
        for l in others {
            let (dc, dt) = dist(l);
            let q_char = fixed(dc * weight);
            let q_tok = fixed(dt * weight);
            let Ok(other) = u32::try_from(l) else {
                continue;
            };
            let Ok(me) = u32::try_from(k) else { continue };
            self.adj[k].push(Edge {
                other,
                q_char,
                q_tok,
            });
            self.adj[l].push(Edge {
                other: me,
                q_char,
                q_tok,
            });
            self.pairs += 1;
        }
    }

    /// Output `k` occurred once more: adds Σ_l c_l·d(k,l)/π to the sums, where `count(l)` is
    /// the current count of output l (k's own count does not enter).
    pub fn bump(&mut self, k: usize, count: impl Fn(usize) -> u64) {
        let Some(edges) = self.adj.get(k) else { return };
        for e in edges {
            let c = count(e.other as usize) as u128;
            self.sum_char = self.sum_char.saturating_add(c * e.q_char as u128);
            self.sum_tok = self.sum_tok.saturating_add(c * e.q_tok as u128);
        }
    }

    /// Means over all pairs of `n` calls; None when n < 2.
    pub fn means(&self, n: u64) -> Option<PairMeans> {
        if n < 2 {
            return None;
        }
        let call_pairs = n as f64 * (n - 1) as f64 / 2.0;
        let ned = (self.sum_char as f64 / SCALE / call_pairs).clamp(0.0, 1.0);
        let tok = (self.sum_tok as f64 / SCALE / call_pairs).clamp(0.0, 1.0);
        Some(PairMeans {
            ned,
            token_similarity: 1.0 - tok,
            exact: self.exact,
            pairs: self.pairs,
        })
    }
}

/// The most earlier outputs one new output may be compared with: the K−1 of the largest K
/// whose K(K−1)/2 pairs fit the budget (at least 1, so estimates always rest on something).
fn row_cap(budget: u64) -> usize {
    let mut k: u64 = ((2.0 * budget as f64).sqrt() as u64).saturating_add(2);
    while k > 1 && k.saturating_mul(k - 1) / 2 > budget {
        k -= 1;
    }
    usize::try_from(k.saturating_sub(1))
        .unwrap_or(usize::MAX)
        .max(1)
}

fn fixed(x: f64) -> u64 {
    // `as` saturates; NaN (impossible here) would become 0.
    (x * SCALE).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ned_counts_chars_not_bytes() {
        assert_eq!(ned("", ""), 0.0);
        assert_eq!(ned("abc", ""), 1.0);
        // Two substitutions out of 10 chars (the byte lengths are 12 and 10).
        assert!((ned("naïve café", "naive cafe") - 0.2).abs() < 1e-12);
        assert_eq!(token_distance(&[], &[]), 0.0);
        assert_eq!(token_distance(&[1, 2, 3, 4], &[1, 2, 9, 4]), 0.25);
    }

    #[test]
    fn row_cap_matches_budget() {
        assert_eq!(row_cap(DEFAULT_PAIR_BUDGET), 49);
        assert_eq!(row_cap(10), 4);
        assert_eq!(row_cap(0), 1);
        assert_eq!(row_cap(1), 1);
    }

    #[test]
    fn weighted_sums_match_direct_mean() {
        // Outputs x (count 2) and y (count 1), distance 0.5: pairs of calls are (x,x) 0,
        // (x,y) 0.5 twice → mean 1/3.
        let mut p = PairStore::new(100);
        let counts = [2u64, 1];
        p.add_output(0, |_| (0.0, 0.0));
        p.add_output(1, |_| (0.5, 0.25));
        p.bump(0, |_| 0);
        p.bump(0, |_| 0);
        p.bump(1, |l| counts[l]);
        let m = p.means(3).unwrap();
        assert!((m.ned - 1.0 / 3.0).abs() < 1e-9, "{m:?}");
        assert!(
            (m.token_similarity - (1.0 - 1.0 / 6.0)).abs() < 1e-9,
            "{m:?}"
        );
        assert!(m.exact);
        assert_eq!(m.pairs, 1);
        assert_eq!(p.means(1), None);
    }
}
