//! The built-in local model: a small language model of the project's own, in process.
//! (API skeleton; implementation lands with the local-model work.)

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
}

pub struct LocalModel {}

impl LocalModel {
    /// The one built-in model, built on first use.
    pub fn builtin() -> &'static LocalModel {
        unimplemented!()
    }
    /// Model name, e.g. `reprise-local-1`.
    pub fn name(&self) -> &str {
        unimplemented!()
    }
    /// `sha256:<hex>` over the model's parameters.
    pub fn revision(&self) -> &str {
        unimplemented!()
    }
    pub fn generate(&self, _req: &GenRequest) -> Generation {
        unimplemented!()
    }
}
