//! Battery aggregates over a target's items: TARr/TARa as fractions of items, and the mean
//! modal share with a bootstrap interval over items (repeats of one prompt are not
//! independent samples, items are).

use std::sync::Mutex;

use super::measures::{bootstrap_mean_ci, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED};
use super::{Battery, ItemSnapshot};

/// Remembers the last bootstrap so ten snapshots a second do not redo 2,000 resamples when
/// no modal share changed.
#[derive(Debug, Default)]
pub struct BootstrapCache {
    last: Mutex<Option<Cached>>,
}

/// A copy starts with an empty cache: it is only an optimisation.
impl Clone for BootstrapCache {
    fn clone(&self) -> Self {
        BootstrapCache::default()
    }
}

/// Modal shares (as bits) and the interval computed from them.
type Cached = (Vec<u64>, Option<[f64; 2]>);

impl BootstrapCache {
    fn interval(&self, shares: &[f64]) -> Option<[f64; 2]> {
        let key: Vec<u64> = shares.iter().map(|s| s.to_bits()).collect();
        // A poisoned lock only means an earlier snapshot panicked; the cached value is plain data.
        let mut guard = match self.last.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((k, ci)) = guard.as_ref() {
            if *k == key {
                return *ci;
            }
        }
        let ci = bootstrap_mean_ci(shares, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED);
        *guard = Some((key, ci));
        ci
    }
}

pub fn battery(items: &[ItemSnapshot], cache: &BootstrapCache) -> Battery {
    let shares: Vec<f64> = items.iter().filter_map(|i| i.modal_share).collect();
    let fraction = |flags: Vec<u8>| {
        (!flags.is_empty())
            .then(|| flags.iter().map(|&f| f as f64).sum::<f64>() / flags.len() as f64)
    };
    Battery {
        items: shares.len() as u64,
        tar_raw: fraction(items.iter().filter_map(|i| i.tar_raw).collect()),
        tar_answer: fraction(items.iter().filter_map(|i| i.tar_answer).collect()),
        mean_modal_share: (!shares.is_empty())
            .then(|| shares.iter().sum::<f64>() / shares.len() as f64),
        mean_modal_share_ci: cache.interval(&shares),
    }
}
