//! Choosing the next token from scores: greedy, or temperature / top-k / top-p sampling with a
//! portable seeded generator. All exp/log go through `libm` so results match on every machine.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::GenRequest;

/// Scores are multiplied by this before the softmax: the model's confidence, so that at a
/// moderate temperature the likely token wins most of the time, as in a trained model.
/// Greedy choice is unaffected (argmax does not depend on scale).
pub const CONFIDENCE: f32 = 2.0;

pub struct Sampler {
    temperature: f32,
    top_p: f32,
    top_k: usize,
    /// `None` means greedy.
    rng: Option<ChaCha8Rng>,
    /// Scratch buffers reused across steps.
    order: Vec<usize>,
    weights: Vec<f32>,
}

impl Sampler {
    pub fn new(req: &GenRequest) -> Self {
        let greedy = !(req.temperature.is_finite() && req.temperature > 0.0);
        let rng = (!greedy).then(|| {
            // Without a seed, fresh entropy: two such requests differ.
            ChaCha8Rng::seed_from_u64(req.seed.unwrap_or_else(rand::random))
        });
        let top_p = if req.top_p.is_finite() && req.top_p > 0.0 && req.top_p < 1.0 {
            req.top_p
        } else {
            1.0
        };
        Sampler {
            temperature: req.temperature,
            top_p,
            top_k: req.top_k as usize,
            rng,
            order: Vec::new(),
            weights: Vec::new(),
        }
    }

    /// Index of the chosen score. `scores` must not be empty.
    pub fn choose(&mut self, scores: &[f32]) -> usize {
        let Some(rng) = self.rng.as_mut() else {
            return argmax(scores);
        };
        // Highest score first; equal scores keep index order, so ties break the same way.
        self.order.clear();
        self.order.extend(0..scores.len());
        self.order
            .sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        if self.top_k > 0 {
            self.order.truncate(self.top_k);
        }
        let max = scores[self.order[0]];
        self.weights.clear();
        let mut total = 0.0f32;
        for &i in &self.order {
            let w = libm::expf((scores[i] - max) * CONFIDENCE / self.temperature);
            total += w;
            self.weights.push(w);
        }
        if self.top_p < 1.0 {
            // Smallest prefix whose mass reaches top_p.
            let target = self.top_p * total;
            let mut acc = 0.0f32;
            let mut keep = self.weights.len();
            for (n, &w) in self.weights.iter().enumerate() {
                acc += w;
                if acc >= target {
                    keep = n + 1;
                    break;
                }
            }
            self.weights.truncate(keep);
            total = acc.min(total);
        }
        let u = rng.random::<f32>() * total;
        let mut acc = 0.0f32;
        for (n, &w) in self.weights.iter().enumerate() {
            acc += w;
            if u < acc {
                return self.order[n];
            }
        }
        self.order[self.weights.len() - 1]
    }
}

/// Index of the highest score; the lowest index wins ties.
pub fn argmax(scores: &[f32]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best
}

/// ln softmax(CONFIDENCE · scores)[k], summed in index order; always finite and ≤ 0 for
/// finite scores.
pub fn log_softmax_at(scores: &[f32], k: usize) -> f32 {
    let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
    let mut sum = 0.0f32;
    for &s in scores {
        sum += libm::expf((s - max) * CONFIDENCE);
    }
    ((scores[k] - max) * CONFIDENCE - libm::logf(sum)).min(0.0)
}

/// The `n` highest-scoring indices with ln softmax(CONFIDENCE · scores) of each, best first
/// (lower index first among equal scores): the alternatives a server reports as top logprobs.
pub fn top_log_softmax(scores: &[f32], n: usize) -> Vec<(usize, f32)> {
    let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
    let mut sum = 0.0f32;
    for &s in scores {
        sum += libm::expf((s - max) * CONFIDENCE);
    }
    let log_sum = libm::logf(sum);
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.truncate(n);
    order
        .into_iter()
        .map(|i| (i, ((scores[i] - max) * CONFIDENCE - log_sum).min(0.0)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(temperature: f32, top_p: f32, top_k: u32, seed: Option<u64>) -> GenRequest {
        GenRequest {
            system: None,
            user: String::new(),
            temperature,
            top_p,
            top_k,
            max_tokens: 1,
            seed,
            stop: Vec::new(),
            top_logprobs: 0,
        }
    }

    #[test]
    fn greedy_takes_the_first_of_equal_maxima() {
        let mut s = Sampler::new(&req(0.0, 1.0, 0, Some(1)));
        assert_eq!(s.choose(&[0.5, 2.0, 2.0, -1.0]), 1);
    }

    #[test]
    fn top_k_one_is_greedy_at_any_temperature() {
        let mut s = Sampler::new(&req(5.0, 1.0, 1, Some(3)));
        for _ in 0..50 {
            assert_eq!(s.choose(&[0.1, 0.3, 0.2]), 1);
        }
    }

    #[test]
    fn top_p_drops_the_tail() {
        // The first candidate holds ~88% of the mass; top_p 0.5 keeps only it.
        let mut s = Sampler::new(&req(1.0, 0.5, 0, Some(9)));
        for _ in 0..50 {
            assert_eq!(s.choose(&[2.0, 0.0, -0.5]), 0);
        }
    }

    #[test]
    fn sampling_visits_several_candidates() {
        let mut s = Sampler::new(&req(1.0, 1.0, 0, Some(5)));
        let mut seen = [false; 3];
        for _ in 0..200 {
            seen[s.choose(&[0.0, 0.0, 0.0])] = true;
        }
        assert_eq!(seen, [true; 3]);
    }

    #[test]
    fn log_softmax_is_a_log_probability() {
        let lp = log_softmax_at(&[1.0, 1.0], 0);
        assert!((lp - (-std::f32::consts::LN_2)).abs() < 1e-6);
        let p: f32 = [0.0, -1.0, 2.0]
            .iter()
            .enumerate()
            .map(|(k, _)| libm::expf(log_softmax_at(&[0.0, -1.0, 2.0], k)))
            .sum();
        assert!((p - 1.0).abs() < 1e-5);
        assert_eq!(log_softmax_at(&[3.0], 0), 0.0);
    }
}
