//! Token similarity between the most frequent distinct outputs of an item, for the dashboard's
//! matrix. Pair values are computed when a cluster enters the top [`MATRIX_SIZE`] (at fold
//! time) and cached, so a snapshot only looks them up.

use rustc_hash::FxHashMap;

use super::similarity::token_distance;
use super::SimilarityMatrix;

/// How many of the most frequent distinct outputs the matrix compares.
pub const MATRIX_SIZE: usize = 12;

/// Past this many cached pairs, pairs outside the current top are dropped (clusters churning
/// at the edge of the top would otherwise grow the cache without bound).
const CACHE_LIMIT: usize = 8 * MATRIX_SIZE * MATRIX_SIZE;

#[derive(Debug, Clone, Default)]
pub struct TopSimilarity {
    /// Token similarity by (smaller id, larger id).
    pairs: FxHashMap<(u32, u32), f64>,
}

fn key(a: u32, b: u32) -> (u32, u32) {
    (a.min(b), a.max(b))
}

fn similarity(a: &[u32], b: &[u32]) -> f64 {
    1.0 - token_distance(a, b)
}

impl TopSimilarity {
    /// Cluster `id` may have entered `top` (cluster ids by count, most frequent first):
    /// computes its missing pairs with the other members. `ids(c)` gives a cluster's tokens.
    pub fn admit<'a>(&mut self, id: u32, top: &[u32], ids: impl Fn(u32) -> &'a [u32]) {
        let top = &top[..top.len().min(MATRIX_SIZE)];
        if !top.contains(&id) {
            return;
        }
        for &other in top {
            if other != id {
                self.pairs
                    .entry(key(id, other))
                    .or_insert_with(|| similarity(ids(id), ids(other)));
            }
        }
        if self.pairs.len() > CACHE_LIMIT {
            self.pairs
                .retain(|&(a, b), _| top.contains(&a) && top.contains(&b));
        }
    }

    /// The matrix of the current `top`; a pair missing from the cache (never expected) is
    /// computed on the spot rather than shown wrong.
    pub fn matrix<'a>(&self, top: &[u32], ids: impl Fn(u32) -> &'a [u32]) -> SimilarityMatrix {
        let top = &top[..top.len().min(MATRIX_SIZE)];
        let mut values = Vec::with_capacity(top.len() * top.len());
        for &a in top {
            for &b in top {
                let v = if a == b {
                    1.0
                } else {
                    match self.pairs.get(&key(a, b)) {
                        Some(&v) => v,
                        None => similarity(ids(a), ids(b)),
                    }
                };
                values.push(v);
            }
        }
        SimilarityMatrix {
            ids: top.to_vec(),
            values,
        }
    }

    #[cfg(test)]
    fn cached(&self) -> usize {
        self.pairs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{AnalysisConfig, Analyzer, ItemSnapshot, DEFAULT_PAIR_BUDGET};
    use crate::record::CallRecord;

    fn item(outputs: &[&str]) -> ItemSnapshot {
        let mut a = Analyzer::new(AnalysisConfig {
            answer: None,
            pair_budget: DEFAULT_PAIR_BUDGET,
            targets: vec!["t".into()],
            items: vec![("i".into(), None)],
        });
        for (call, out) in outputs.iter().enumerate() {
            a.fold(&CallRecord::ok("t", "i", call as u32, out, 1.0));
        }
        a.snapshot().targets[0].items[0].clone()
    }

    fn value(m: &SimilarityMatrix, a: u32, b: u32) -> f64 {
        let n = m.ids.len();
        let i = m.ids.iter().position(|&x| x == a).unwrap();
        let j = m.ids.iter().position(|&x| x == b).unwrap();
        m.values[i * n + j]
    }

    #[test]
    fn one_token_changed_in_four_is_three_quarters_similar() {
        let s = item(&["a b c d", "a b c d", "a b x d"]).similarity;
        assert_eq!(s.ids, [0, 1]);
        assert_eq!(s.values, [1.0, 0.75, 0.75, 1.0]);
    }

    #[test]
    fn matrix_is_symmetric_with_unit_diagonal() {
        let s = item(&[
            "the cat sat on the mat",
            "the cat sat on the mat",
            "the dog sat on the mat",
            "a cat lay on a rug",
            "the cat sat",
            "",
        ])
        .similarity;
        let n = s.ids.len();
        assert_eq!(n, 5);
        assert_eq!(s.values.len(), n * n);
        for i in 0..n {
            assert_eq!(s.values[i * n + i], 1.0);
            for j in 0..n {
                assert_eq!(s.values[i * n + j], s.values[j * n + i]);
                assert!((0.0..=1.0).contains(&s.values[i * n + j]));
            }
        }
        // Ids in the matrix follow the cluster order (count, then first seen).
        assert_eq!(s.ids, [0, 1, 2, 3, 4]);
        // "the cat sat" against the 6-token original: 3 deletions of 6.
        assert!((value(&s, 0, 3) - 0.5).abs() < 1e-12);
        // The empty output shares nothing with anything non-empty.
        assert_eq!(value(&s, 4, 0), 0.0);
    }

    #[test]
    fn top_follows_counts_as_they_change() {
        // 14 distinct outputs, once each: the top 12 are the first seen.
        let words: Vec<String> = (0..14).map(|i| format!("w{i} common tail")).collect();
        let mut outs: Vec<&str> = words.iter().map(String::as_str).collect();
        let s = item(&outs).similarity;
        assert_eq!(s.ids, (0..12).collect::<Vec<u32>>());
        // Outputs 13 and 12 gain calls and climb to the top; 10 and 11 fall out.
        outs.extend([words[13].as_str(); 3]);
        outs.extend([words[12].as_str(); 2]);
        let s = item(&outs).similarity;
        assert_eq!(s.ids[..2], [13, 12]);
        assert_eq!(s.ids.len(), MATRIX_SIZE);
        assert!(!s.ids.contains(&10) && !s.ids.contains(&11));
        // One token of three differs between any two of them.
        assert!((value(&s, 13, 12) - 2.0 / 3.0).abs() < 1e-12);
        assert!((value(&s, 13, 0) - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn snapshot_values_come_from_the_cache() {
        let ids: Vec<Vec<u32>> = (0..20).map(|i| vec![1, 2, i]).collect();
        let get = |c: u32| ids[c as usize].as_slice();
        let mut t = TopSimilarity::default();
        let mut top = Vec::new();
        for id in 0..20u32 {
            top.push(id);
            t.admit(id, &top, get);
        }
        // Only members of the top 12 were compared: 12·11/2 pairs.
        assert_eq!(t.cached(), 66);
        // A cache that cannot compute (every lookup would panic) still gives the matrix.
        let m = t.matrix(&top, |_| unreachable!("computed at snapshot"));
        assert_eq!(m.ids.len(), 12);
        assert!((m.values[1] - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn cache_stays_bounded_under_churn() {
        let ids: Vec<Vec<u32>> = (0..2000).map(|i| vec![i]).collect();
        let get = |c: u32| ids[c as usize].as_slice();
        let mut t = TopSimilarity::default();
        for newcomer in 11..2000u32 {
            // A new cluster takes the last place of the top every time.
            let mut top: Vec<u32> = (0..11).collect();
            top.push(newcomer);
            t.admit(newcomer, &top, get);
        }
        assert!(t.cached() <= CACHE_LIMIT + MATRIX_SIZE);
    }
}
