//! State for one (target, item): folded record by record, read by `snapshot`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use hdrhistogram::Histogram;
use rustc_hash::FxHashMap;

use super::answer::AnswerExtractor;
use super::divergence::{branches, shared_prefix, Output};
use super::latency;
use super::matrix::TopSimilarity;
use super::measures::{entropy_bits, pairwise_agreement, wilson_interval, Z95};
use super::similarity::{token_distance, CharText, PairStore};
use super::tokenize::{word_tokens, Interner, TokenList};
use super::{AnswerCount, Cluster, ItemSnapshot, LatencySummary, PairEstimate, Verdict};
use crate::record::{CallRecord, CallStatus, ErrorClass};

/// What the analyzer shares across items.
pub(crate) struct Shared<'a> {
    pub interner: &'a mut Interner,
    pub extractor: Option<&'a AnswerExtractor>,
}

#[derive(Clone)]
struct ClusterState {
    text: Arc<str>,
    /// The text as edit distances read it.
    chars: CharText,
    tokens: TokenList,
    ids: Vec<u32>,
    count: u64,
    /// Tokens shared with the modal output; None for the modal output.
    prefix: Option<usize>,
    answer: Option<String>,
    backend_tokens: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CallOutcome {
    Ok,
    Error,
    Cancelled,
}

#[derive(Clone)]
struct CallState {
    succeeded: bool,
    latest_attempt: u32,
    latest: CallStatus,
}

impl CallState {
    fn outcome(&self) -> CallOutcome {
        match (self.succeeded, self.latest) {
            (true, _) | (false, CallStatus::Ok) => CallOutcome::Ok,
            (false, CallStatus::Error) => CallOutcome::Error,
            (false, CallStatus::Cancelled) => CallOutcome::Cancelled,
        }
    }
}

#[derive(Clone)]
pub(crate) struct ItemState {
    name: String,
    /// Normalised expected answer, when there is one and a pattern.
    expected: Option<String>,
    calls: HashMap<u32, CallState>,
    ok: u64,
    errors: u64,
    cancelled: u64,
    errors_by_class: BTreeMap<ErrorClass, u64>,
    retries_by_class: BTreeMap<ErrorClass, u64>,
    clusters: Vec<ClusterState>,
    /// Fast hashing: every fold looks its output up here.
    by_text: FxHashMap<Arc<str>, u32>,
    /// Cluster ids by count descending, ties by id; `pos` is the inverse.
    order: Vec<u32>,
    pos: Vec<usize>,
    modal: Option<u32>,
    /// Earliest split: minimum shared prefix over non-modal clusters.
    split: Option<usize>,
    n: u64,
    pairs: PairStore,
    /// Similarity between the most frequent outputs, cached as they enter the top.
    top_similarity: TopSimilarity,
    /// Microseconds; u32 counts halve the memory of a histogram kept per item.
    latency: Option<Histogram<u32>>,
    latency_min_us: u64,
    latency_max_us: u64,
    latency_sum_us: u64,
    completion_tokens: u64,
    call_clusters: Vec<(u32, u32)>,
    failed_extractions: u64,
    answers: HashSet<String>,
    correct: u64,
    has_pattern: bool,
}

impl ItemState {
    pub fn new(
        name: String,
        expected: Option<&str>,
        extractor: Option<&AnswerExtractor>,
        pair_budget: u64,
    ) -> Self {
        let expected = match (expected, extractor) {
            (Some(e), Some(x)) => Some(x.normalize(e)),
            _ => None,
        };
        ItemState {
            name,
            expected,
            calls: HashMap::new(),
            ok: 0,
            errors: 0,
            cancelled: 0,
            errors_by_class: BTreeMap::new(),
            retries_by_class: BTreeMap::new(),
            clusters: Vec::new(),
            by_text: FxHashMap::default(),
            order: Vec::new(),
            pos: Vec::new(),
            modal: None,
            split: None,
            n: 0,
            pairs: PairStore::new(pair_budget),
            top_similarity: TopSimilarity::default(),
            latency: Histogram::new(3).ok(),
            latency_min_us: u64::MAX,
            latency_max_us: 0,
            latency_sum_us: 0,
            completion_tokens: 0,
            call_clusters: Vec::new(),
            failed_extractions: 0,
            answers: HashSet::new(),
            correct: 0,
            has_pattern: extractor.is_some(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Folds one non-warm-up record.
    pub fn fold(&mut self, rec: &CallRecord, shared: &mut Shared<'_>) {
        if rec.retried {
            // A transient failure tried again: counted as a retry, not as the call's outcome.
            let class = rec.error.as_ref().map_or(ErrorClass::Other, |e| e.class);
            *self.retries_by_class.entry(class).or_insert(0) += 1;
        } else if rec.status != CallStatus::Ok {
            let class = rec.error.as_ref().map_or(
                if rec.status == CallStatus::Cancelled {
                    ErrorClass::Cancelled
                } else {
                    ErrorClass::Other
                },
                |e| e.class,
            );
            *self.errors_by_class.entry(class).or_insert(0) += 1;
        }
        let already_succeeded = self.calls.get(&rec.call).is_some_and(|c| c.succeeded);
        self.track_call(rec);
        // A call counts once: a second successful attempt of the same call is not a new sample.
        if rec.status == CallStatus::Ok && !already_succeeded {
            self.fold_output(rec, shared);
        }
    }

    fn track_call(&mut self, rec: &CallRecord) {
        let before = self.calls.get(&rec.call).map(CallState::outcome);
        let state = self.calls.entry(rec.call).or_insert(CallState {
            succeeded: false,
            latest_attempt: 0,
            latest: rec.status,
        });
        if rec.attempt >= state.latest_attempt {
            state.latest_attempt = rec.attempt;
            state.latest = rec.status;
        }
        state.succeeded |= rec.status == CallStatus::Ok;
        let after = state.outcome();
        if before != Some(after) {
            if let Some(b) = before {
                *self.outcome_counter(b) -= 1;
            }
            *self.outcome_counter(after) += 1;
        }
    }

    fn outcome_counter(&mut self, o: CallOutcome) -> &mut u64 {
        match o {
            CallOutcome::Ok => &mut self.ok,
            CallOutcome::Error => &mut self.errors,
            CallOutcome::Cancelled => &mut self.cancelled,
        }
    }

    fn fold_output(&mut self, rec: &CallRecord, shared: &mut Shared<'_>) {
        let text = rec.output.as_deref().unwrap_or("");
        let id = match self.by_text.get(text) {
            Some(&id) => id,
            None => self.new_cluster(text, rec.tokens.as_deref(), shared),
        };
        let k = id as usize;
        let clusters = &self.clusters;
        self.pairs.bump(k, |l| clusters[l].count);
        self.clusters[k].count += 1;
        self.n += 1;
        self.promote(k);
        self.refresh_modal();
        let clusters = &self.clusters;
        self.top_similarity
            .admit(id, &self.order, |c| &clusters[c as usize].ids);

        let cluster = &self.clusters[k];
        if self.expected.is_some() && cluster.answer == self.expected {
            self.correct += 1;
        }
        let completion = rec
            .usage
            .map_or(cluster.tokens.len() as u64, |u| u.completion_tokens);
        self.completion_tokens = self.completion_tokens.saturating_add(completion);
        let us = latency_us(rec.timing.latency_ms);
        if let Some(h) = self.latency.as_mut() {
            // `record` grows the auto-resizing histogram; saturate only if growth fails.
            if h.record(us).is_err() {
                h.saturating_record(us);
            }
        }
        self.latency_min_us = self.latency_min_us.min(us);
        self.latency_max_us = self.latency_max_us.max(us);
        self.latency_sum_us = self.latency_sum_us.saturating_add(us);
        self.call_clusters.push((rec.call, id));
    }

    fn new_cluster(&mut self, text: &str, backend: Option<&[String]>, shared: &mut Shared) -> u32 {
        let tokens: TokenList = match backend {
            Some(t) => t.iter().collect(),
            None => word_tokens(text).into_iter().collect(),
        };
        let ids: Vec<u32> = tokens.iter().map(|t| shared.interner.intern(t)).collect();
        let answer = shared.extractor.and_then(|x| x.extract(text));
        match &answer {
            Some(a) => {
                self.answers.insert(a.clone());
            }
            None => self.failed_extractions += 1,
        }
        let text: Arc<str> = text.into();
        let chars = CharText::shared(text.clone());
        let k = self.clusters.len();
        let clusters = &self.clusters;
        self.pairs.add_output(k, |l| {
            let o = &clusters[l];
            (o.chars.ned(&chars), token_distance(&o.ids, &ids))
        });
        let prefix = self
            .modal
            .map(|m| shared_prefix(&self.clusters[m as usize].ids, &ids));
        if let Some(p) = prefix {
            self.split = Some(self.split.map_or(p, |s| s.min(p)));
        }
        // Past u32::MAX distinct outputs ids saturate; memory runs out long before.
        let id = u32::try_from(k).unwrap_or(u32::MAX);
        self.clusters.push(ClusterState {
            text: text.clone(),
            chars,
            tokens,
            ids,
            count: 0,
            prefix,
            answer,
            backend_tokens: backend.is_some(),
        });
        self.by_text.insert(text, id);
        self.order.push(id);
        self.pos.push(k);
        id
    }

    /// Moves cluster k up the order after its count grew (ties keep first-seen first).
    fn promote(&mut self, k: usize) {
        let mut p = self.pos[k];
        while p > 0 {
            let prev = self.order[p - 1] as usize;
            let (ck, cp) = (self.clusters[k].count, self.clusters[prev].count);
            if ck > cp || (ck == cp && k < prev) {
                self.order.swap(p - 1, p);
                self.pos[prev] = p;
                p -= 1;
            } else {
                break;
            }
        }
        self.pos[k] = p;
    }

    /// When the modal output changes, every shared prefix is measured against the new one.
    fn refresh_modal(&mut self) {
        let modal = self.order.first().copied();
        if modal == self.modal {
            return;
        }
        self.modal = modal;
        let Some(m) = modal else { return };
        let modal_ids = std::mem::take(&mut self.clusters[m as usize].ids);
        let mut split: Option<usize> = None;
        for (i, c) in self.clusters.iter_mut().enumerate() {
            if i == m as usize {
                c.prefix = None;
            } else {
                let p = shared_prefix(&modal_ids, &c.ids);
                c.prefix = Some(p);
                split = Some(split.map_or(p, |s| s.min(p)));
            }
        }
        self.clusters[m as usize].ids = modal_ids;
        self.split = split;
    }

    pub fn snapshot(&self) -> ItemSnapshot {
        let counts: Vec<u64> = self
            .order
            .iter()
            .map(|&i| self.clusters[i as usize].count)
            .collect();
        let n = self.n;
        let k = self.clusters.len() as u64;
        let c1 = counts.first().copied().unwrap_or(0);
        let tar_raw = (n > 0).then_some(u8::from(k == 1));
        let tar_answer = (n > 0 && self.has_pattern).then_some(u8::from(
            self.failed_extractions == 0 && self.answers.len() == 1,
        ));
        let verdict = (n > 0).then(|| {
            if k == 1 {
                Verdict::Identical
            } else if tar_answer == Some(1) {
                Verdict::AnswersAgree
            } else {
                Verdict::Diverged
            }
        });
        let first_divergence = match self.split {
            Some(index) if k > 1 => Some(branches(
                index,
                self.clusters.iter().map(|c| Output {
                    ids: &c.ids,
                    tokens: &c.tokens,
                    count: c.count,
                }),
            )),
            _ => None,
        };
        // The answer histogram, where answers are extracted: what the calls concluded.
        let answers = if tar_answer.is_some() {
            let mut by_answer: BTreeMap<Option<&str>, u64> = BTreeMap::new();
            for c in &self.clusters {
                *by_answer.entry(c.answer.as_deref()).or_default() += c.count;
            }
            let mut answers: Vec<AnswerCount> = by_answer
                .into_iter()
                .filter(|&(_, count)| count > 0)
                .map(|(answer, count)| AnswerCount {
                    answer: answer.map(str::to_string),
                    count,
                })
                .collect();
            answers.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.answer.cmp(&b.answer)));
            answers
        } else {
            Vec::new()
        };
        let means = self.pairs.means(n);
        let backend = self.clusters.iter().filter(|c| c.backend_tokens).count();
        let tokenizer = match backend {
            0 => "words",
            b if b == self.clusters.len() => "backend",
            _ => "mixed",
        };
        ItemSnapshot {
            item: self.name.clone(),
            calls: self.calls.len() as u64,
            ok: self.ok,
            errors: self.errors,
            cancelled: self.cancelled,
            errors_by_class: self.errors_by_class.clone(),
            retries_by_class: self.retries_by_class.clone(),
            distinct_outputs: k,
            modal_share: (n > 0).then(|| c1 as f64 / n as f64),
            modal_share_ci: wilson_interval(c1, n, Z95),
            pairwise_agreement: pairwise_agreement(&counts),
            entropy_bits: entropy_bits(&counts),
            tar_raw,
            tar_answer,
            verdict,
            first_divergence,
            ned_mean: means.map(|m| PairEstimate {
                value: m.ned,
                exact: m.exact,
                pairs: m.pairs,
            }),
            token_similarity_mean: means.map(|m| PairEstimate {
                value: m.token_similarity,
                exact: m.exact,
                pairs: m.pairs,
            }),
            latency_ms: self.latency_summary(),
            tokens_per_s: (n > 0 && self.latency_sum_us > 0)
                .then(|| self.completion_tokens as f64 / (self.latency_sum_us as f64 / 1e6)),
            tokenizer,
            clusters: self
                .order
                .iter()
                .map(|&i| {
                    let c = &self.clusters[i as usize];
                    Cluster {
                        id: i,
                        text: c.text.clone(),
                        tokens: c.tokens.clone(),
                        count: c.count,
                        first_divergence: c.prefix,
                        answer: c.answer.clone(),
                    }
                })
                .collect(),
            call_clusters: self.call_clusters.clone(),
            similarity: self
                .top_similarity
                .matrix(&self.order, |c| &self.clusters[c as usize].ids),
            latency_histogram: match &self.latency {
                Some(h) if self.n > 0 => {
                    latency::buckets(h, self.latency_min_us, self.latency_max_us)
                }
                _ => Vec::new(),
            },
            answers,
            accuracy: (n > 0 && self.expected.is_some()).then(|| self.correct as f64 / n as f64),
        }
    }

    fn latency_summary(&self) -> LatencySummary {
        match &self.latency {
            Some(h) if self.n > 0 => {
                // The histogram rounds to 3 significant figures; a percentile never exceeds
                // the exact maximum.
                let q = |q| h.value_at_quantile(q).min(self.latency_max_us) as f64 / 1000.0;
                LatencySummary {
                    p50: q(0.5),
                    p90: q(0.9),
                    p99: q(0.99),
                    max: self.latency_max_us as f64 / 1000.0,
                }
            }
            _ => LatencySummary::default(),
        }
    }
}

/// Milliseconds to whole microseconds; negative or non-finite values (bad input) count as 0.
fn latency_us(ms: f64) -> u64 {
    if ms.is_finite() && ms > 0.0 {
        (ms * 1000.0).round() as u64
    } else {
        0
    }
}
