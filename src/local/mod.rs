//! The built-in local model: a small language model of the project's own, in process.
//!
//! Word-level tokens from an original corpus; at each step every candidate's score is a sum
//! of f32 terms (n-gram log probability, prompt boost, repetition penalty and a hidden-state
//! × embedding dot product), reduced in one fixed order, then greedy or sampled choice.
//! Same request at temperature 0 or with a seed → byte-identical output on every machine.

mod answer;
pub mod batch;
mod generate;
mod knowledge;
mod params;
mod reduce;
mod sample;
#[cfg(test)]
mod tests;
mod tokenize;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

pub use generate::Stepper;
pub use reduce::{reduce, ReductionOrder};
pub use tokenize::tokenize;

/// One generation request, already resolved from the protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct GenRequest {
    pub system: Option<String>,
    pub user: String,
    /// 0 means greedy decoding.
    pub temperature: f32,
    /// 1.0 means off.
    pub top_p: f32,
    /// 0 means off.
    pub top_k: u32,
    pub max_tokens: u32,
    /// With a seed, sampling is reproducible per request; without, fresh entropy.
    pub seed: Option<u64>,
    pub stop: Vec<String>,
    /// Alternatives to report per emitted token (OpenAI's `top_logprobs`); 0 means none.
    pub top_logprobs: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The model produced its end token, or a stop sequence matched.
    Stop,
    /// max_tokens reached.
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// `text` is exactly the concatenation of `tokens`.
    pub text: String,
    pub tokens: Vec<String>,
    /// Natural-log probability of each emitted token under the sampling distribution's logits.
    pub logprobs: Vec<f32>,
    pub finish_reason: FinishReason,
    pub prompt_tokens: u32,
    /// Per emitted token, when `top_logprobs` was asked: the most likely tokens at that step
    /// with their log probabilities, best first (the end token is not listed).
    pub top_logprobs: Vec<Vec<(String, f32)>>,
}

impl Default for GenRequest {
    /// An empty user prompt with the usual defaults: greedy, no truncation, 256 tokens.
    fn default() -> Self {
        GenRequest {
            system: None,
            user: String::new(),
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            max_tokens: 256,
            seed: None,
            stop: Vec::new(),
            top_logprobs: 0,
        }
    }
}

const NAME: &str = "reprise-local-1";

pub struct LocalModel {
    params: params::Params,
    revision: String,
}

impl LocalModel {
    /// The one built-in model, built on first use.
    pub fn builtin() -> &'static LocalModel {
        static MODEL: OnceLock<LocalModel> = OnceLock::new();
        MODEL.get_or_init(|| LocalModel::with_params(params::Params::build()))
    }
    /// The same model after a simulated silent update: same name, other weights, another
    /// revision (see [`Drift`]).
    pub fn updated() -> &'static LocalModel {
        static MODEL: OnceLock<LocalModel> = OnceLock::new();
        MODEL.get_or_init(|| LocalModel::with_params(params::Params::build_update(1)))
    }
    fn with_params(params: params::Params) -> LocalModel {
        let revision = params.revision(NAME);
        LocalModel { params, revision }
    }
    /// Model name, e.g. `reprise-local-1`.
    pub fn name(&self) -> &str {
        NAME
    }
    /// `sha256:<hex>` over the model's parameters.
    pub fn revision(&self) -> &str {
        &self.revision
    }
    /// Number of distinct tokens the model can emit (the end token excluded).
    pub fn vocab_size(&self) -> usize {
        self.params.vocab.len()
    }
    /// Generates with the fixed, batch-invariant reduction order (`ReductionOrder::Sequential`).
    pub fn generate(&self, req: &GenRequest) -> Generation {
        generate::generate(&self.params, req, ReductionOrder::Sequential)
    }
    /// One generation to be decoded step by step (see [`batch`]).
    pub fn stepper(&self, req: GenRequest) -> Stepper<'_> {
        generate::Stepper::new(&self.params, req)
    }
    /// Generates with an explicit score reduction order: the hook for a batched decoder whose
    /// reduction split depends on the batch size.
    pub fn generate_with_order(&self, req: &GenRequest, order: ReductionOrder) -> Generation {
        generate::generate(&self.params, req, order)
    }
}

/// Which revision serves each request: the built-in one, or — with `drift_after = N` — the
/// updated one from the (N+1)-th request on, with nothing else changing: a silent update.
#[derive(Debug, Default)]
pub struct Drift {
    after: Option<u64>,
    served: AtomicU64,
}

impl Drift {
    /// `after`: requests served before the update (`None`: never).
    pub fn new(after: Option<u64>) -> Drift {
        Drift {
            after,
            served: AtomicU64::new(0),
        }
    }
    /// The model for the next request (counts it).
    pub fn next(&self) -> &'static LocalModel {
        let n = self.served.fetch_add(1, Ordering::Relaxed);
        match self.after {
            Some(after) if n >= after => LocalModel::updated(),
            _ => LocalModel::builtin(),
        }
    }
    /// The model the next request would get (does not count it).
    pub fn peek(&self) -> &'static LocalModel {
        match self.after {
            Some(after) if self.served.load(Ordering::Relaxed) >= after => LocalModel::updated(),
            _ => LocalModel::builtin(),
        }
    }
    /// The update point, if any.
    pub fn after(&self) -> Option<u64> {
        self.after
    }
}
