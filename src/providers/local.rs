//! The `local` target: the built-in model, in process — each call on tokio's blocking pool
//! (batch-invariant), or decoded together with the calls in flight (batched).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::json;

use super::{Backend, CallFailure, ChatRequest, Reply};
use crate::local::batch::BatchEngine;
use crate::local::{Drift, GenRequest, LocalModel};
use crate::protocol::DecodeMode;
use crate::record::{ErrorClass, Usage};

/// Defaults the local model applies when the protocol leaves a parameter out, as an
/// OpenAI-style server would.
pub const DEFAULT_TEMPERATURE: f32 = 1.0;
pub const DEFAULT_MAX_TOKENS: u32 = 256;

pub struct LocalBackend {
    /// Which revision serves each call.
    drift: Drift,
    /// Batched mode: the decoding thread every call of this target joins.
    batch: Option<BatchEngine>,
}

impl LocalBackend {
    /// Batch-invariant decoding.
    pub fn new() -> Self {
        LocalBackend {
            drift: Drift::default(),
            batch: None,
        }
    }

    /// Decoding in `mode`; batched mode starts its decoding thread. With `drift_after`, the
    /// model is silently updated after that many calls.
    pub fn with_mode(mode: DecodeMode, drift_after: Option<u64>) -> std::io::Result<Self> {
        let batch = match mode {
            DecodeMode::BatchInvariant => None,
            DecodeMode::Batched => Some(BatchEngine::start()?),
        };
        Ok(LocalBackend {
            drift: Drift::new(drift_after),
            batch,
        })
    }

    fn mode(&self) -> DecodeMode {
        if self.batch.is_some() {
            DecodeMode::Batched
        } else {
            DecodeMode::BatchInvariant
        }
    }

    fn gen_request(request: &ChatRequest) -> GenRequest {
        let p = &request.params;
        GenRequest {
            system: request.system.clone(),
            user: request.user.clone(),
            temperature: p.temperature.map_or(DEFAULT_TEMPERATURE, |t| t as f32),
            top_p: p.top_p.map_or(1.0, |t| t as f32),
            top_k: p.top_k.unwrap_or(0),
            max_tokens: p.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            seed: p.seed,
            stop: p.stop.clone(),
            top_logprobs: 0,
        }
    }
}

impl Default for LocalBackend {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Backend for LocalBackend {
    fn request_body(&self, request: &ChatRequest) -> serde_json::Value {
        // The effective request, defaults made explicit: nothing is left to a hidden default.
        let g = Self::gen_request(request);
        let mut messages = Vec::new();
        if let Some(system) = &g.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": g.user}));
        let mut body = json!({
            "model": LocalModel::builtin().name(),
            "messages": messages,
            "temperature": g.temperature,
            "top_p": g.top_p,
            "top_k": g.top_k,
            "max_tokens": g.max_tokens,
            "seed": g.seed,
            "stop": g.stop,
        });
        // Batched decoding is a condition of the run, so it enters the identity; the default
        // is left out so identities of earlier sessions still hold.
        if self.mode() == DecodeMode::Batched {
            body["mode"] = json!(self.mode().as_str());
        }
        // So is a simulated update: the run asks for it.
        if let Some(after) = self.drift.after() {
            body["drift_after"] = json!(after);
        }
        body
    }

    fn endpoint(&self) -> String {
        "in-process".into()
    }

    /// The revision that would serve the next call (a simulated update shows between the
    /// session's start and end).
    async fn server_identity(&self) -> Option<BTreeMap<String, String>> {
        let model = self.drift.peek();
        Some(BTreeMap::from([
            ("model".to_string(), model.name().to_string()),
            ("revision".to_string(), model.revision().to_string()),
            ("mode".to_string(), self.mode().as_str().to_string()),
            ("build".to_string(), crate::BUILD.to_string()),
        ]))
    }

    async fn call(&self, request: &ChatRequest) -> Result<Reply, CallFailure> {
        let g = Self::gen_request(request);
        let model = self.drift.next();
        let generation = match &self.batch {
            Some(engine) => engine.generate(model, g).await.ok_or_else(|| {
                CallFailure::new(ErrorClass::Other, "the local model's batch decoder stopped")
            })?,
            None => tokio::task::spawn_blocking(move || model.generate(&g))
                .await
                .map_err(|e| {
                    CallFailure::new(
                        ErrorClass::Other,
                        format!("the local model's worker stopped: {e}"),
                    )
                })?,
        };
        let mut served = BTreeMap::new();
        served.insert("model".into(), model.name().to_string());
        served.insert("revision".into(), model.revision().to_string());
        served.insert("build".into(), crate::BUILD.to_string());
        served.insert("mode".into(), self.mode().as_str().to_string());
        Ok(Reply {
            usage: Some(Usage {
                prompt_tokens: u64::from(generation.prompt_tokens),
                completion_tokens: generation.tokens.len() as u64,
                reasoning_tokens: None,
            }),
            text: generation.text,
            tokens: Some(generation.tokens),
            logprobs: Some(generation.logprobs),
            finish_reason: Some(generation.finish_reason.as_str().to_string()),
            served,
            ttft: None,
            rate_limit: Default::default(),
        })
    }
}
