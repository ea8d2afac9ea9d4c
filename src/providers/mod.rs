//! Backends: one trait, one module per wire format. Each call returns what came back, or a
//! classified failure; the runner turns either into a call record.

pub mod local;

use std::collections::BTreeMap;
use std::time::Duration;

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::InputError;
use crate::protocol::{Protocol, Target};

use crate::protocol::Params;
use crate::record::{ErrorClass, Usage};

/// One request, resolved from the protocol for one item and one target.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub system: Option<String>,
    pub user: String,
    pub params: Params,
}

/// What a backend returned for one successful call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reply {
    pub text: String,
    pub tokens: Option<Vec<String>>,
    pub logprobs: Option<Vec<f32>>,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
    /// What the server says served the call.
    pub served: BTreeMap<String, String>,
    /// Time to first token, where the backend streams.
    pub ttft: Option<Duration>,
}

/// A failed call, classified.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{class:?}: {message}")]
pub struct CallFailure {
    pub class: ErrorClass,
    pub message: String,
}

#[async_trait]
pub trait Backend: Send + Sync {
    /// The exact request body this backend sends for `request` (recorded in the conditions,
    /// so the identity covers it). Never contains a secret.
    fn request_body(&self, request: &ChatRequest) -> serde_json::Value;
    /// Where requests go, without secrets (`in-process` for the local model).
    fn endpoint(&self) -> String;
    async fn call(&self, request: &ChatRequest) -> Result<Reply, CallFailure>;
}

/// The backend for a target. Only the built-in model exists in this version.
pub fn backend_for(protocol: &Protocol, target: &Target) -> Result<Arc<dyn Backend>, InputError> {
    match target.provider.as_str() {
        "local" => local::LocalBackend::with_mode(target.mode, target.drift_after)
            .map(|b| Arc::new(b) as Arc<dyn Backend>)
            .map_err(|e| {
                InputError::new(
                    &protocol.path,
                    format!("cannot start the local model's batch decoder: {e}"),
                )
            }),
        other => Err(InputError::new(
            &protocol.path,
            format!(
                "target `{}` uses provider `{other}`, which this version of reprise cannot call yet; run it with --target local",
                target.name
            ),
        )),
    }
}
