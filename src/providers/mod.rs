//! Backends: one trait, one module per wire format. Each call returns what came back, or a
//! classified failure; the runner turns either into a call record.

pub mod key;
pub mod local;
pub mod ollama;
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
    /// One sentence; never a secret.
    pub message: String,
    /// How long the server asked the caller to wait before trying again (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// Part of a successful reply had arrived: such a call is never retried, since the
    /// server may have done (and billed) the work.
    pub after_first_byte: bool,
}

impl CallFailure {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> CallFailure {
        CallFailure {
            class,
            message: message.into(),
            retry_after: None,
            after_first_byte: false,
        }
    }

    pub fn with_retry_after(mut self, wait: Option<Duration>) -> CallFailure {
        self.retry_after = wait;
        self
    }

    pub fn after_first_byte(mut self) -> CallFailure {
        self.after_first_byte = true;
        self
    }
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
    /// What serves this target as the server describes it outside any call (for Ollama: the
    /// model's digest and the server version), read fresh each time so a campaign can record
    /// it at its start and end and show a change. None: the backend has no such description.
    /// Never fails: what could not be read is left out.
    async fn server_identity(&self) -> Option<BTreeMap<String, String>> {
        None
    }
}

/// The backend for a target, with only the built-in providers (`local`, `openai`, `ollama`).
pub fn backend_for(protocol: &Protocol, target: &Target) -> Result<Arc<dyn Backend>, InputError> {
    backend_with_providers(protocol, target, &Providers::default())
}

/// The backend for a target: built in (`local`, `openai`, `ollama`) or configured in `[providers.NAME]`.
/// Keys are read here, so a missing one stops the campaign before its first call.
pub fn backend_with_providers(
    protocol: &Protocol,
    target: &Target,
    providers: &Providers,
) -> Result<Arc<dyn Backend>, InputError> {
    let in_target = |message: String| format!("target `{}`: {message}", target.name);
    match target.provider.as_str() {
        "local" => local::LocalBackend::with_mode(target.mode, target.drift_after)
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
        "ollama" => ollama::OllamaSettings::builtin(target.model.as_deref())
            .and_then(ollama::OllamaBackend::new)
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
                ProviderKind::Ollama => {
                    ollama::OllamaSettings::from_config(name, config, target.model.as_deref())
                        .and_then(ollama::OllamaBackend::new)
                        .map(|b| Arc::new(b) as Arc<dyn Backend>)
                        .map_err(|m| InputError::new(&providers.file, in_target(m)))
                }
            },
            None => Err(not_callable(protocol, target)),
        },
    }
}

/// Whether this version can call `target` at all (a built-in kind it speaks, or a configured
/// provider). Checked for every target before any key is read, so a protocol that cannot run
/// says so first, not after the user has set up keys.
pub fn check_callable(
    protocol: &Protocol,
    target: &Target,
    providers: &Providers,
) -> Result<(), InputError> {
    match target.provider.as_str() {
        "local" | "openai" | "ollama" => Ok(()),
        name if providers.get(name).is_some() => Ok(()),
        _ => Err(not_callable(protocol, target)),
    }
}

fn not_callable(protocol: &Protocol, target: &Target) -> InputError {
    InputError::new(
        &protocol.path,
        format!(
            "target `{}` uses provider `{}`, which this version of reprise cannot call yet; run it with --target local",
            target.name, target.provider
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    const REMOTE: &str = "[protocol]\nname = \"r\"\n\n[prompt]\nuser = \"Hi\"\n\n[[targets]]\nprovider = \"openai\"\nmodel = \"gpt-4o\"\n\n[[targets]]\nprovider = \"serve\"\n\n[[targets]]\nprovider = \"anthropic\"\nmodel = \"claude\"\n";

    #[test]
    fn a_target_nothing_can_call_is_found_before_any_key_is_read() {
        let config = Config::parse(
            Path::new("config.toml"),
            "[providers.serve]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\napi_key_env = \"REPRISE_UNIT_SURELY_UNSET\"\n",
        )
        .unwrap();
        let p =
            Protocol::parse_with_providers(Path::new("r.toml"), REMOTE, &config.providers.names())
                .unwrap();
        let callable: Vec<bool> = p
            .targets
            .iter()
            .map(|t| check_callable(&p, t, &config.providers).is_ok())
            .collect();
        assert_eq!(callable, [true, true, false]);
        assert_eq!(
            check_callable(&p, &p.targets[2], &config.providers)
                .unwrap_err()
                .to_string(),
            "r.toml: target `anthropic/claude` uses provider `anthropic`, which this version of reprise cannot call yet; run it with --target local"
        );
        // The configured provider's missing key is named with the file that configures it.
        let e = backend_with_providers(&p, &p.targets[1], &config.providers)
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "config.toml: target `serve`: provider `serve` reads its API key from $REPRISE_UNIT_SURELY_UNSET, which is not set"
        );
    }
}
