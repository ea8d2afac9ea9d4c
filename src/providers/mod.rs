//! Backends: one trait, one module per wire format. Each call returns what came back, or a
//! classified failure; the runner turns either into a call record.

pub mod key;
pub mod local;
pub mod openai;

use std::collections::BTreeMap;
use std::time::Duration;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{ProviderKind, Providers};
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
    /// Extra request headers the user configured, for the conditions (never a secret: keys
    /// travel separately and are not part of this).
    fn headers(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
    async fn call(&self, request: &ChatRequest) -> Result<Reply, CallFailure>;
}

/// The backend for a target, with only the built-in providers (`local`, `openai`).
pub fn backend_for(protocol: &Protocol, target: &Target) -> Result<Arc<dyn Backend>, InputError> {
    backend_with_providers(protocol, target, &Providers::default())
}

/// The backend for a target: built in (`local`, `openai`) or configured in `[providers.NAME]`.
/// Keys are read here, so a missing one stops the campaign before its first call.
pub fn backend_with_providers(
    protocol: &Protocol,
    target: &Target,
    providers: &Providers,
) -> Result<Arc<dyn Backend>, InputError> {
    let in_target = |message: String| format!("target `{}`: {message}", target.name);
    match target.provider.as_str() {
        "local" => local::LocalBackend::with_mode(target.mode)
            .map(|b| Arc::new(b) as Arc<dyn Backend>)
            .map_err(|e| {
                InputError::new(
                    &protocol.path,
                    format!("cannot start the local model's batch decoder: {e}"),
                )
            }),
        "openai" => openai::OpenAiSettings::builtin(target.model.as_deref())
            .and_then(openai::OpenAiBackend::new)
            .map(|b| Arc::new(b) as Arc<dyn Backend>)
            .map_err(|m| InputError::new(&protocol.path, in_target(m))),
        name => match providers.get(name) {
            Some(config) => match config.kind {
                ProviderKind::Openai => {
                    openai::OpenAiSettings::from_config(name, config, target.model.as_deref())
                        .and_then(openai::OpenAiBackend::new)
                        .map(|b| Arc::new(b) as Arc<dyn Backend>)
                        .map_err(|m| InputError::new(&providers.file, in_target(m)))
                }
            },
            None => Err(InputError::new(
                &protocol.path,
                format!(
                    "target `{}` uses provider `{name}`, which this version of reprise cannot call yet and config.toml does not define",
                    target.name
                ),
            )),
        },
    }
}
