//! The analysis engine: folds call records one at a time into a snapshot of every measure.
//! Plain library: no terminal, no network.
//!
//! All costly work (tokenising, edit distances, extraction) happens once per distinct output,
//! when it first arrives; `snapshot` only copies and sums what is cached.

mod answer;
mod battery;
mod divergence;
mod edit;
mod item;
mod latency;
mod matrix;
pub mod measures;
mod served;
mod similarity;
mod tokenize;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::protocol::AnswerSpec;
use crate::record::{CallRecord, ErrorClass};

pub use answer::{extract_answer, normalize, AnswerExtractor, AnswerPatternError};
pub use matrix::MATRIX_SIZE;
pub use served::{
    compared, compared_fields, FirstServed, ServedIdentity, PER_CALL_KEYS, VOLATILE_KEYS,
};
pub use similarity::{ned, token_distance, DEFAULT_PAIR_BUDGET, SAMPLE_PER_OUTPUT};
pub use tokenize::{word_tokens, Interner, TokenList};

use battery::BootstrapCache;
use item::{ItemState, Shared};
use latency::Throughput;
use served::ServedState;

#[derive(Debug, Clone)]
pub struct AnalysisConfig {
    /// Answer extraction, when the protocol has one.
    pub answer: Option<AnswerSpec>,
    /// Pairwise similarity is exact up to this many distinct-output pairs; beyond, estimated.
    pub pair_budget: u64,
    /// Targets and items in protocol order (snapshots list them in this order, even before
    /// any record arrives), with each item's expected answer.
    pub targets: Vec<String>,
    pub items: Vec<(String, Option<String>)>,
}

#[derive(Clone)]
struct TargetState {
    name: String,
    items: Vec<ItemState>,
    item_index: HashMap<String, usize>,
    bootstrap: BootstrapCache,
    served: ServedState,
}

/// Cloning forks the analysis (e.g. to compare what-ifs); it copies every cached output.
#[derive(Clone)]
pub struct Analyzer {
    config: AnalysisConfig,
    extractor: Option<AnswerExtractor>,
    answer_error: Option<AnswerPatternError>,
    interner: Interner,
    targets: Vec<TargetState>,
    target_index: HashMap<String, usize>,
    throughput: Throughput,
}

impl Analyzer {
    /// An invalid answer pattern disables answer measures (see [`Analyzer::answer_error`])
    /// rather than failing: protocol validation is where users hear about it.
    pub fn new(config: AnalysisConfig) -> Self {
        let (extractor, answer_error) = match config.answer.as_ref().map(AnswerExtractor::new) {
            None => (None, None),
            Some(Ok(x)) => (Some(x), None),
            Some(Err(e)) => (None, Some(e)),
        };
        let mut a = Analyzer {
            config,
            extractor,
            answer_error,
            interner: Interner::default(),
            targets: Vec::new(),
            target_index: HashMap::new(),
            throughput: Throughput::default(),
        };
        for t in a.config.targets.clone() {
            a.target(&t);
        }
        a
    }

    /// Why answer extraction is off despite a pattern in the configuration.
    pub fn answer_error(&self) -> Option<&AnswerPatternError> {
        self.answer_error.as_ref()
    }

    /// Folds one call attempt. Warm-up records count only towards throughput; unknown targets
    /// and items are added in arrival order.
    pub fn fold(&mut self, record: &CallRecord) {
        self.throughput.add(record);
        let t = self.target(&record.target);
        // Whatever served a warm-up call served the campaign too.
        self.targets[t].served.fold(record);
        if record.warmup {
            return;
        }
        let i = self.item(t, &record.item);
        let mut shared = Shared {
            interner: &mut self.interner,
            extractor: self.extractor.as_ref(),
        };
        self.targets[t].items[i].fold(record, &mut shared);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            targets: self
                .targets
                .iter()
                .map(|t| {
                    let items: Vec<ItemSnapshot> =
                        t.items.iter().map(ItemState::snapshot).collect();
                    let battery = battery::battery(&items, &t.bootstrap);
                    TargetSnapshot {
                        target: t.name.clone(),
                        items,
                        battery,
                        served: t.served.identities(),
                    }
                })
                .collect(),
            throughput: self.throughput.per_second().to_vec(),
        }
    }

    fn target(&mut self, name: &str) -> usize {
        if let Some(&t) = self.target_index.get(name) {
            return t;
        }
        let mut state = TargetState {
            name: name.to_string(),
            items: Vec::new(),
            item_index: HashMap::new(),
            bootstrap: BootstrapCache::default(),
            served: ServedState::default(),
        };
        for (item, expected) in &self.config.items {
            if !state.item_index.contains_key(item) {
                state.item_index.insert(item.clone(), state.items.len());
                state.items.push(ItemState::new(
                    item.clone(),
                    expected.as_deref(),
                    self.extractor.as_ref(),
                    self.config.pair_budget,
                ));
            }
        }
        let t = self.targets.len();
        self.targets.push(state);
        self.target_index.insert(name.to_string(), t);
        t
    }

    fn item(&mut self, t: usize, name: &str) -> usize {
        let target = &mut self.targets[t];
        if let Some(&i) = target.item_index.get(name) {
            return i;
        }
        let i = target.items.len();
        target.items.push(ItemState::new(
            name.to_string(),
            None,
            self.extractor.as_ref(),
            self.config.pair_budget,
        ));
        target.item_index.insert(name.to_string(), i);
        debug_assert_eq!(target.items[i].name(), name);
        i
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub targets: Vec<TargetSnapshot>,
    /// Calls completed in each second of the session (all targets, warm-up and failures
    /// included), for the throughput sparkline; the first 24 hours only.
    #[serde(skip)]
    pub throughput: Vec<u32>,
}

/// Token similarity (1 − normalised token edit distance) between the most frequent distinct
/// outputs, for the dashboard's matrix.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct SimilarityMatrix {
    /// Cluster ids, most frequent first.
    pub ids: Vec<u32>,
    /// Row-major `ids.len()²` values in 0..=1; the diagonal is 1.
    pub values: Vec<f64>,
}

/// One bar of the latency histogram: calls with latency in `from_ms..=upto_ms` (a bucket's
/// `from_ms` is the previous one's `upto_ms`; a value on a bound belongs to the lower bucket).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyBucket {
    pub from_ms: f64,
    pub upto_ms: f64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetSnapshot {
    pub target: String,
    pub items: Vec<ItemSnapshot>,
    pub battery: Battery,
    /// Distinct served identities, in order of first appearance.
    pub served: Vec<ServedIdentity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Identical,
    AnswersAgree,
    Diverged,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Branch {
    /// The next token on this branch; None where the output ends at the split.
    pub token: Option<String>,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Divergence {
    /// 0-based index of the first token where not all outputs agree.
    pub index: usize,
    /// Branches by count, descending.
    pub branches: Vec<Branch>,
}

/// A measure computed exactly or estimated from a sample of pairs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PairEstimate {
    pub value: f64,
    pub exact: bool,
    /// Distinct-output pairs the value rests on.
    pub pairs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct LatencySummary {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    /// Stable id: order of first appearance.
    pub id: u32,
    pub text: Arc<str>,
    pub tokens: TokenList,
    pub count: u64,
    /// Tokens shared with the modal output (None for the modal output itself).
    pub first_divergence: Option<usize>,
    /// Extracted (normalised) answer; None when extraction failed or there is no pattern.
    pub answer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemSnapshot {
    pub item: String,
    /// Planned calls seen (any attempt), warm-up excluded.
    pub calls: u64,
    pub ok: u64,
    /// Calls whose latest attempt failed.
    pub errors: u64,
    pub cancelled: u64,
    /// Failed attempts by class, including ones later retried.
    pub errors_by_class: BTreeMap<ErrorClass, u64>,
    /// Failed attempts that were tried again, by class (not in `errors`).
    pub retries_by_class: BTreeMap<ErrorClass, u64>,
    pub distinct_outputs: u64,
    pub modal_share: Option<f64>,
    pub modal_share_ci: Option<[f64; 2]>,
    pub pairwise_agreement: Option<f64>,
    pub entropy_bits: Option<f64>,
    pub tar_raw: Option<u8>,
    pub tar_answer: Option<u8>,
    pub verdict: Option<Verdict>,
    pub first_divergence: Option<Divergence>,
    pub ned_mean: Option<PairEstimate>,
    pub token_similarity_mean: Option<PairEstimate>,
    pub latency_ms: LatencySummary,
    pub tokens_per_s: Option<f64>,
    /// `backend` when the backend gave tokens, `words` for the built-in tokenizer.
    pub tokenizer: &'static str,
    /// Distinct outputs by count, descending (ties: first seen first).
    pub clusters: Vec<Cluster>,
    /// (call index, cluster id) for every successful call, in arrival order.
    pub call_clusters: Vec<(u32, u32)>,
    /// Similarity between the most frequent distinct outputs.
    #[serde(skip)]
    pub similarity: SimilarityMatrix,
    /// Latency distribution of successful calls, from the HDR histogram: 24 buckets over
    /// min..=max (log-spaced when max/min > 50, one bucket when all are equal).
    #[serde(skip)]
    pub latency_histogram: Vec<LatencyBucket>,
    /// Extracted answers by count, descending (None: extraction failed); empty without a pattern.
    pub answers: Vec<AnswerCount>,
    /// Fraction of successful calls whose extracted answer equals the item's expected answer.
    pub accuracy: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnswerCount {
    pub answer: Option<String>,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Battery {
    pub items: u64,
    /// Fraction of items with one distinct output.
    pub tar_raw: Option<f64>,
    /// Fraction of items whose extracted answers all agree.
    pub tar_answer: Option<f64>,
    pub mean_modal_share: Option<f64>,
    /// Bootstrap 95% interval over items (fixed seed).
    pub mean_modal_share_ci: Option<[f64; 2]>,
}

#[cfg(test)]
mod tests;
