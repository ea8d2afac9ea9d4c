//! What an HTTP target needs, resolved from `[providers.NAME]` or a built-in provider: the key
//! has been read, the model chosen. One shape for every wire format.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{ProviderConfig, TokenLimitField};
use crate::providers::key::{self, ApiKey};
use crate::providers::{Limits, RetryPolicy};

/// How long a call may take, by phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing the connection (TCP and TLS).
    pub connect: Duration,
    /// From sending to the first byte of the reply (for a stream: its first chunk).
    pub first_byte: Duration,
    /// The whole call.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(60),
            total: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// The provider's name, as protocols write it (for messages).
    pub provider: String,
    /// Where the wire format's paths start, e.g. `http://127.0.0.1:8080/v1` (no trailing `/`).
    pub base_url: String,
    pub model: String,
    /// Sent the way the wire format sends keys; absent for servers that need none.
    pub key: Option<ApiKey>,
    /// Extra headers (recorded in the conditions: never secrets).
    pub headers: BTreeMap<String, String>,
    pub stream: bool,
    /// Ask for log-probabilities, where the wire format has them.
    pub logprobs: bool,
    pub timeouts: Timeouts,
    /// How the runner retries this target's transient failures.
    pub retry: RetryPolicy,
    pub limits: Limits,
    /// `openai` kind: the field carrying a protocol's `max_tokens`.
    pub max_tokens_field: TokenLimitField,
    /// `anthropic` kind: the `anthropic-version` header, when not the default.
    pub anthropic_version: Option<String>,
    /// Check endpoint, key and model before a campaign.
    pub preflight: bool,
}

impl Settings {
    /// Defaults: streamed, with log-probabilities where offered, no key, no extra headers.
    pub fn new(provider: &str, base_url: &str, model: &str) -> Self {
        let base_url = base_url.trim().trim_end_matches('/').to_string();
        Settings {
            provider: provider.to_string(),
            max_tokens_field: default_token_limit_field(&base_url),
            base_url,
            model: model.to_string(),
            key: None,
            headers: BTreeMap::new(),
            stream: true,
            logprobs: true,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            limits: Limits::default(),
            anthropic_version: None,
            preflight: true,
        }
    }

    /// `[providers.NAME]`, the key read now; `model` (the target's) overrides the default.
    /// `defaults` are the wire format's timeouts, for those the file leaves out. The error is
    /// one sentence naming the provider.
    pub fn from_config(
        name: &str,
        config: &ProviderConfig,
        model: Option<&str>,
        defaults: Timeouts,
    ) -> Result<Self, String> {
        let model = model.or(config.model.as_deref()).ok_or_else(|| {
            format!("provider `{name}` has no default model, so the target must give one (model = \"…\")")
        })?;
        let mut s = Settings::new(name, &config.base_url, model);
        s.key = match (&config.api_key_env, &config.api_key_file) {
            (Some(var), _) => Some(key::from_env(name, var)?),
            (None, Some(file)) => Some(key::from_file(name, file)?),
            (None, None) => None,
        };
        s.headers = config.headers.clone();
        s.stream = config.stream;
        if let Some(field) = config.max_tokens_field {
            s.max_tokens_field = field;
        }
        s.anthropic_version = config.anthropic_version.clone();
        s.preflight = config.preflight;
        s.logprobs = config.logprobs.unwrap_or(true);
        if let Some(n) = config.max_retries {
            s.retry.max_retries = n;
        }
        s.limits = Limits {
            concurrency: config.concurrency.map(|n| n.max(1) as usize),
            requests_per_minute: config.requests_per_minute.map(f64::from),
        };
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        s.timeouts = Timeouts {
            connect: ms(config.connect_timeout_ms, defaults.connect),
            first_byte: ms(config.first_byte_timeout_ms, defaults.first_byte),
            total: ms(config.total_timeout_ms, defaults.total),
        };
        Ok(s)
    }

    /// A built-in provider (`provider = "openai"`, …): the base URL from `base_env` if set,
    /// else `default_base`; the key from `key_env` when the API needs one.
    pub fn builtin(
        provider: &str,
        model: Option<&str>,
        base_url: String,
        key_env: Option<&str>,
    ) -> Result<Self, String> {
        let model = model.ok_or_else(|| {
            format!("provider `{provider}` needs a model on the target (model = \"…\")")
        })?;
        let mut s = Settings::new(provider, &base_url, model);
        if let Some(var) = key_env {
            s.key = Some(key::from_env(provider, var)?);
        }
        Ok(s)
    }
}

/// OpenAI's own API wants `max_completion_tokens` (its reasoning models refuse `max_tokens`);
/// compatible servers (vLLM, llama.cpp, DeepSeek, gateways) all read `max_tokens`, not all
/// the newer name.
fn default_token_limit_field(base_url: &str) -> TokenLimitField {
    let host = reqwest::Url::parse(base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    if host.as_deref() == Some("api.openai.com") {
        TokenLimitField::MaxCompletionTokens
    } else {
        TokenLimitField::MaxTokens
    }
}

/// `$var` when set and not blank, else `default`.
pub fn env_or(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}
