//! The one place where a candidate's score terms are summed.
//!
//! f32 addition is not associative, so the order of this sum decides the last bits of every
//! score, and with them which of two near-tied candidates wins. Batch-invariant decoding keeps
//! one fixed order; a batched decoder that splits the sum by batch size would not.

/// How the terms of one score are summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReductionOrder {
    /// Left to right, one accumulator: the fixed, batch-invariant order.
    #[default]
    Sequential,
    /// Split-K: the terms are cut into `k` contiguous chunks, each chunk is summed left to
    /// right, then the chunk sums are added left to right. `SplitK(0)` and `SplitK(1)` equal
    /// `Sequential`.
    SplitK(usize),
}

/// Sums `terms` in the given order.
pub fn reduce(terms: &[f32], order: ReductionOrder) -> f32 {
    match order {
        ReductionOrder::Sequential | ReductionOrder::SplitK(0) | ReductionOrder::SplitK(1) => {
            sum_sequential(terms)
        }
        ReductionOrder::SplitK(k) => {
            let chunk = terms.len().div_ceil(k).max(1);
            let mut total = 0.0f32;
            for part in terms.chunks(chunk) {
                total += sum_sequential(part);
            }
            total
        }
    }
}

/// A plain loop: without fast-math the compiler keeps this exact order.
fn sum_sequential(terms: &[f32]) -> f32 {
    let mut acc = 0.0f32;
    for &t in terms {
        acc += t;
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_one_is_sequential() {
        let terms = [1.0e8f32, 1.0, -1.0e8, 0.5];
        assert_eq!(
            reduce(&terms, ReductionOrder::SplitK(1)).to_bits(),
            reduce(&terms, ReductionOrder::Sequential).to_bits()
        );
    }

    #[test]
    fn chunks_cover_every_term() {
        // Small integers sum exactly in any order, so every split must give the same total.
        let terms: Vec<f32> = (1..=67).map(|i| i as f32).collect();
        for k in 1..10 {
            assert_eq!(reduce(&terms, ReductionOrder::SplitK(k)), 2278.0, "k={k}");
        }
    }
}
