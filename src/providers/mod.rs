//! Backends: one trait, one module per wire format. Each call returns what came back, or a
//! classified failure; the runner turns either into a call record.

pub mod anthropic;
pub mod check;
pub mod gemini;
pub mod http;
pub mod key;
pub mod local;
pub mod ollama;
pub mod openai;

use std::collections::BTreeMap;
use std::time::Duration;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{ProviderConfig, ProviderKind, Providers};
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
    /// Rate-limit headers of the response (see [`rate_limit_headers`]).
    pub rate_limit: BTreeMap<String, String>,
}

/// Notes one field of what served a call, as one safe line: the first non-empty value wins.
/// Streams repeat identity fields in every chunk, and some send them empty before the real
/// ones (Azure OpenAI's first chunk carries `"id": ""` and `"model": ""`).
pub fn note_served(served: &mut BTreeMap<String, String>, key: &str, value: &str) {
    let value = value.trim();
    if !value.is_empty() && !served.contains_key(key) {
        served.insert(key.to_string(), http::excerpt(value));
    }
}

/// The rate-limit headers of a response, names lower-cased: `x-ratelimit-*` (OpenAI and
/// compatible servers), `anthropic-ratelimit-*`, `retry-after` and `retry-after-ms`.
pub fn rate_limit_headers(headers: &reqwest::header::HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter(|(name, _)| {
            let n = name.as_str();
            n.starts_with("x-ratelimit-")
                || n.starts_with("anthropic-ratelimit-")
                || n == "retry-after"
                || n == "retry-after-ms"
        })
        .filter_map(|(name, value)| {
            let v = value.to_str().ok()?;
            Some((
                name.as_str().to_string(),
                crate::text::inert(v).chars().take(100).collect(),
            ))
        })
        .collect()
}

/// Response headers that say who served a call, and the `served` key each is kept under:
/// LiteLLM's proxy names the deployment that answered (its model, its configured id, the
/// model group it was picked from), its own version, and a per-call id.
const IDENTITY_HEADERS: [(&str, &str); 5] = [
    ("x-litellm-model-name", "litellm_model"),
    ("x-litellm-model-id", "litellm_model_id"),
    ("x-litellm-model-group", "litellm_model_group"),
    ("x-litellm-version", "litellm_version"),
    ("x-litellm-call-id", "litellm_call_id"),
];

/// What a response's headers say served the call, under short keys: the server's request id
/// (`request_id`, from the header named `request_id`, e.g. `x-request-id`), a gateway's
/// deployment (LiteLLM's `x-litellm-model-name`, `-model-id`, `-model-group`, `-version`,
/// `-call-id`) and the upstream LiteLLM called (`litellm_api_base`, from
/// `x-litellm-model-api-base`, kept only as a URL without credentials, query or fragment).
/// Values are one safe line; empty ones are left out.
pub fn identity_headers(
    headers: &reqwest::header::HeaderMap,
    request_id: Option<&str>,
) -> BTreeMap<String, String> {
    let named = request_id.map(|name| (name, "request_id"));
    let mut served = BTreeMap::new();
    for (name, key) in named.into_iter().chain(IDENTITY_HEADERS) {
        if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
            note_served(&mut served, key, value);
        }
    }
    let api_base = headers
        .get("x-litellm-model-api-base")
        .and_then(|v| v.to_str().ok())
        .and_then(url_without_credentials);
    if let Some(url) = api_base {
        note_served(&mut served, "litellm_api_base", &url);
    }
    served
}

/// `text` as an HTTP(S) URL stripped of user, password, query and fragment; None if it is
/// no such URL.
fn url_without_credentials(text: &str) -> Option<String> {
    let mut url = reqwest::Url::parse(text.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    url.set_username("").ok()?;
    url.set_password(None).ok()?;
    url.set_query(None);
    url.set_fragment(None);
    Some(url.to_string())
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
    /// The server reported this failure inside a successful reply but before any of its
    /// content (Anthropic's `overloaded_error` event right after `message_start`): no work
    /// was done, so it is retried like the same failure sent as an HTTP status.
    pub before_content: bool,
    /// Rate-limit headers of the response, when there was one.
    pub rate_limit: BTreeMap<String, String>,
}

impl CallFailure {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> CallFailure {
        CallFailure {
            class,
            message: message.into(),
            retry_after: None,
            after_first_byte: false,
            before_content: false,
            rate_limit: BTreeMap::new(),
        }
    }

    pub fn with_rate_limit(mut self, headers: BTreeMap<String, String>) -> CallFailure {
        self.rate_limit = headers;
        self
    }

    pub fn with_retry_after(mut self, wait: Option<Duration>) -> CallFailure {
        self.retry_after = wait;
        self
    }

    pub fn after_first_byte(mut self) -> CallFailure {
        self.after_first_byte = true;
        self
    }

    pub fn before_content(mut self) -> CallFailure {
        self.before_content = true;
        self
    }
}

/// How a target's failed calls are tried again. Only transient failures are retried — rate
/// limits, server errors, connection failures and timeouts — and never once a reply had begun.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub max_retries: u32,
    /// The first backoff; it doubles with each retry up to `cap`.
    pub base: Duration,
    pub cap: Duration,
    /// A server asking for a longer wait than this is not retried (the call fails).
    pub max_server_wait: Duration,
}

impl Default for RetryPolicy {
    /// As OpenAI's own SDK: 2 retries, 0.5 s doubling to 8 s, Retry-After honoured up to 120 s.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(8),
            max_server_wait: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    pub const NONE: RetryPolicy = RetryPolicy {
        max_retries: 0,
        base: Duration::ZERO,
        cap: Duration::ZERO,
        max_server_wait: Duration::ZERO,
    };

    /// How long to wait before retrying after `failure` on attempt `attempt` (1-based), or
    /// None when it is not to be retried. `jitter` in [0, 1) spreads the backoff over
    /// 75–100% of its value so that clients failing together do not retry together.
    pub fn wait(&self, failure: &CallFailure, attempt: u32, jitter: f64) -> Option<Duration> {
        let transient = matches!(
            failure.class,
            ErrorClass::RateLimit
                | ErrorClass::Server
                | ErrorClass::Connection
                | ErrorClass::Timeout
        );
        if !transient || failure.after_first_byte || attempt > self.max_retries {
            return None;
        }
        match failure.retry_after {
            Some(wait) if wait > self.max_server_wait => None,
            Some(wait) => Some(wait),
            None => {
                let doubling = 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
                let backoff = (self.base.as_secs_f64() * doubling).min(self.cap.as_secs_f64());
                Some(Duration::from_secs_f64(
                    backoff * (0.75 + 0.25 * jitter.clamp(0.0, 1.0)),
                ))
            }
        }
    }
}

#[async_trait]
pub trait Backend: Send + Sync {
    /// The exact request body this backend sends for `request` (recorded in the conditions,
    /// so the identity covers it). Never contains a secret.
    fn request_body(&self, request: &ChatRequest) -> serde_json::Value;
    /// Where requests go, without secrets (`in-process` for the local model).
    fn endpoint(&self) -> String;
    /// An HTTP backend's resolved settings, from which the defaults below read its headers,
    /// retries and limits.
    fn http_settings(&self) -> Option<&http::Settings> {
        None
    }
    /// Extra request headers the user configured, for the conditions (never a secret: keys
    /// travel separately and are not part of this).
    fn headers(&self) -> BTreeMap<String, String> {
        self.http_settings()
            .map(|s| s.headers.clone())
            .unwrap_or_default()
    }
    async fn call(&self, request: &ChatRequest) -> Result<Reply, CallFailure>;
    /// How this target's failed calls are retried.
    fn retry_policy(&self) -> RetryPolicy {
        self.http_settings().map(|s| s.retry).unwrap_or_default()
    }
    /// What the server says about itself outside any call — model digest, server version,
    /// build — read fresh as a session starts and as it ends, so a change shows; None when it
    /// has nothing to say. Never fails: what could not be read is left out.
    async fn server_identity(&self) -> Option<BTreeMap<String, String>> {
        None
    }
    /// This target's own limits, on top of the campaign's concurrency.
    fn limits(&self) -> Limits {
        self.http_settings().map(|s| s.limits).unwrap_or_default()
    }
    /// Pairs of request fields this target's server refuses together (Claude's `temperature`
    /// and `top_p`): a session whose bodies carry both is refused before anything is sent.
    fn exclusive_fields(&self) -> &'static [[&'static str; 2]] {
        &[]
    }
    /// Whether `reprise run` checks this target before its campaign (a provider's
    /// `preflight = false` skips it).
    fn preflight(&self) -> bool {
        self.http_settings().is_none_or(|s| s.preflight)
    }
    /// For `reprise providers`: is the endpoint reachable, the key accepted, the model listed?
    /// Nothing billable is sent (see `check::probe` for the one call that is).
    async fn check(&self) -> Vec<Check> {
        Vec::new()
    }
}

/// A provider's own limits (from its `[providers.NAME]` table).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    /// Calls in flight at once to this provider, whatever the campaign's concurrency.
    pub concurrency: Option<usize>,
    /// Attempts started per minute, evenly spaced.
    pub requests_per_minute: Option<f64>,
}

/// One line of `reprise providers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked: `key`, `endpoint`, `model`, `probe`.
    pub what: &'static str,
    pub ok: bool,
    /// A failure that means calls cannot succeed (unreachable, key refused, model unknown):
    /// `reprise run` stops before the campaign on it. Inconclusive checks are not blocking.
    pub blocking: bool,
    /// One sentence; never a secret.
    pub detail: String,
}

impl Check {
    pub fn pass(what: &'static str, detail: impl Into<String>) -> Check {
        Check {
            what,
            ok: true,
            blocking: false,
            detail: detail.into(),
        }
    }
    pub fn fail(what: &'static str, detail: impl Into<String>) -> Check {
        Check {
            what,
            ok: false,
            blocking: true,
            detail: detail.into(),
        }
    }
    /// Could not tell (e.g. a server without a model list): reported, never blocking.
    pub fn unknown(what: &'static str, detail: impl Into<String>) -> Check {
        Check {
            what,
            ok: false,
            blocking: false,
            detail: detail.into(),
        }
    }
}

/// The backend for a target, with only the built-in providers (`local`, `openai`, `anthropic`,
/// `ollama`).
pub fn backend_for(protocol: &Protocol, target: &Target) -> Result<Arc<dyn Backend>, InputError> {
    backend_with_providers(protocol, target, &Providers::default())
}

/// The backend for a target: built in (`local`, `openai`, `anthropic`, `ollama`) or configured
/// in `[providers.NAME]`.
/// Keys are read here, so a missing one stops the campaign before its first call.
pub fn backend_with_providers(
    protocol: &Protocol,
    target: &Target,
    providers: &Providers,
) -> Result<Arc<dyn Backend>, InputError> {
    let backend = backend_of(protocol, target, providers)?;
    prepared(protocol, target, backend)
}

fn backend_of(
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
        "openai" => openai::builtin(target.model.as_deref())
            .and_then(openai::OpenAiBackend::new)
            .map(|b| Arc::new(b) as Arc<dyn Backend>)
            .map_err(|m| InputError::new(&protocol.path, in_target(m))),
        "anthropic" => anthropic::builtin(target.model.as_deref())
            .and_then(anthropic::AnthropicBackend::new)
            .map(|b| Arc::new(b) as Arc<dyn Backend>)
            .map_err(|m| InputError::new(&protocol.path, in_target(m))),
        "ollama" => ollama::builtin(target.model.as_deref())
            .and_then(ollama::OllamaBackend::new)
            .map(|b| Arc::new(b) as Arc<dyn Backend>)
            .map_err(|m| InputError::new(&protocol.path, in_target(m))),
        "gemini" => gemini::builtin(target.model.as_deref())
            .and_then(gemini::GeminiBackend::new)
            .map(|b| Arc::new(b) as Arc<dyn Backend>)
            .map_err(|m| InputError::new(&protocol.path, in_target(m))),
        name => match providers.get(name) {
            Some(config) => configured_backend(name, config, target.model.as_deref())
                .map_err(|m| InputError::new(&providers.file, in_target(m))),
            None => Err(not_callable(protocol, target, providers)),
        },
    }
}

/// The target's backend checked against what its server refuses, and without the
/// parameters its `omit` names.
fn prepared(
    protocol: &Protocol,
    target: &Target,
    backend: Arc<dyn Backend>,
) -> Result<Arc<dyn Backend>, InputError> {
    let backend: Arc<dyn Backend> = if target.omit.is_empty() {
        backend
    } else {
        Arc::new(Omitting {
            inner: backend,
            omit: target.omit.clone(),
        })
    };
    let body = backend.request_body(&crate::conditions::chat_request(protocol, 0));
    for [a, b] in backend.exclusive_fields() {
        if body.get(*a).is_some() && body.get(*b).is_some() {
            let model = backend
                .http_settings()
                .map(|s| s.model.as_str())
                .or(target.model.as_deref())
                .map_or_else(|| "its model".to_string(), http::excerpt);
            return Err(InputError::new(
                &protocol.path,
                format!(
                    "target `{}`: {model} refuses `{a}` and `{b}` together; add omit = [\"{b}\"] (or [\"{a}\"]) to the target to choose which one is sent",
                    target.name
                ),
            )
            .field(format!("params.{b}")));
        }
    }
    Ok(backend)
}

/// A backend that leaves some of the protocol's parameters out of every request.
struct Omitting {
    inner: Arc<dyn Backend>,
    omit: Vec<String>,
}

impl Omitting {
    fn trimmed(&self, request: &ChatRequest) -> ChatRequest {
        ChatRequest {
            params: request.params.without(&self.omit),
            ..request.clone()
        }
    }
}

#[async_trait]
impl Backend for Omitting {
    fn request_body(&self, request: &ChatRequest) -> serde_json::Value {
        self.inner.request_body(&self.trimmed(request))
    }
    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }
    fn http_settings(&self) -> Option<&http::Settings> {
        self.inner.http_settings()
    }
    fn headers(&self) -> BTreeMap<String, String> {
        self.inner.headers()
    }
    async fn call(&self, request: &ChatRequest) -> Result<Reply, CallFailure> {
        self.inner.call(&self.trimmed(request)).await
    }
    fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry_policy()
    }
    async fn server_identity(&self) -> Option<BTreeMap<String, String>> {
        self.inner.server_identity().await
    }
    fn limits(&self) -> Limits {
        self.inner.limits()
    }
    fn exclusive_fields(&self) -> &'static [[&'static str; 2]] {
        self.inner.exclusive_fields()
    }
    fn preflight(&self) -> bool {
        self.inner.preflight()
    }
    async fn check(&self) -> Vec<Check> {
        self.inner.check().await
    }
}

/// The backend for `[providers.NAME]`, its key read now; `model` (a target's) overrides the
/// provider's default. The error is one sentence naming the provider.
pub fn configured_backend(
    name: &str,
    config: &ProviderConfig,
    model: Option<&str>,
) -> Result<Arc<dyn Backend>, String> {
    let settings = |defaults| http::Settings::from_config(name, config, model, defaults);
    match config.kind {
        ProviderKind::Openai => settings(http::Timeouts::default())
            .and_then(openai::OpenAiBackend::new)
            .map(|b| Arc::new(b) as Arc<dyn Backend>),
        ProviderKind::Anthropic => settings(http::Timeouts::default())
            .and_then(anthropic::AnthropicBackend::new)
            .map(|b| Arc::new(b) as Arc<dyn Backend>),
        ProviderKind::Ollama => settings(ollama::default_timeouts())
            .and_then(ollama::OllamaBackend::new)
            .map(|b| Arc::new(b) as Arc<dyn Backend>),
        ProviderKind::Gemini => settings(http::Timeouts::default())
            .map(|mut s| {
                // Most Gemini models refuse log-probabilities: asked for only when written.
                s.logprobs = config.logprobs.unwrap_or(false);
                s
            })
            .and_then(gemini::GeminiBackend::new)
            .map(|b| Arc::new(b) as Arc<dyn Backend>),
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
        "local" | "openai" | "anthropic" | "ollama" | "gemini" => Ok(()),
        name if providers.get(name).is_some() => Ok(()),
        _ => Err(not_callable(protocol, target, providers)),
    }
}

/// Parsing already refuses a provider that is neither built in nor configured; this is the
/// same sentence for a protocol checked against a different configuration than it was parsed
/// with (the picker's, edited while the dashboard runs).
fn not_callable(protocol: &Protocol, target: &Target, providers: &Providers) -> InputError {
    InputError::new(
        &protocol.path,
        format!(
            "target `{}` uses provider `{}`, which is neither built in nor configured in {}; run it with --target local",
            target.name,
            target.provider,
            providers.file.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    const REMOTE: &str = "[protocol]\nname = \"r\"\n\n[prompt]\nuser = \"Hi\"\n\n[[targets]]\nprovider = \"openai\"\nmodel = \"gpt-4o\"\n\n[[targets]]\nprovider = \"serve\"\n\n[[targets]]\nprovider = \"lab\"\nmodel = \"m\"\n";

    #[test]
    fn a_target_nothing_can_call_is_found_before_any_key_is_read() {
        let config = Config::parse(
            Path::new("config.toml"),
            "[providers.serve]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\napi_key_env = \"REPRISE_UNIT_SURELY_UNSET\"\n",
        )
        .unwrap();
        // Parsed while `lab` was configured; checked against a configuration without it.
        let names = ["serve".to_string(), "lab".to_string()];
        let p = Protocol::parse_with_providers(Path::new("r.toml"), REMOTE, &names).unwrap();
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
            "r.toml: target `lab/m` uses provider `lab`, which is neither built in nor configured in config.toml; run it with --target local"
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

    #[test]
    fn a_gateway_names_the_deployment_that_served_in_its_headers() {
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in [
            ("x-request-id", "req-1"),
            ("x-litellm-model-name", "hosted_vllm/qwen3-8b"),
            ("x-litellm-model-id", "9f2c1e0a7b"),
            ("x-litellm-model-group", "qwen"),
            ("x-litellm-version", "1.77.7"),
            ("x-litellm-call-id", "b7e5c6a1-22f0"),
            (
                "x-litellm-model-api-base",
                "https://u:pw@gpu-1.lab:8000/v1?key=s3cret#x",
            ),
            ("x-litellm-response-cost", "0.00012"),
            ("x-litellm-key-spend", "4.2"),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
        let served = identity_headers(&headers, Some("x-request-id"));
        let pairs: Vec<(&str, &str)> = served
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("litellm_api_base", "https://gpu-1.lab:8000/v1"),
                ("litellm_call_id", "b7e5c6a1-22f0"),
                ("litellm_model", "hosted_vllm/qwen3-8b"),
                ("litellm_model_group", "qwen"),
                ("litellm_model_id", "9f2c1e0a7b"),
                ("litellm_version", "1.77.7"),
                ("request_id", "req-1"),
            ]
        );
        // No gateway, a blank request id, an api base that is no URL: nothing to record.
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-request-id", " ".parse().unwrap());
        headers.insert("x-litellm-model-api-base", "user:pw@host".parse().unwrap());
        assert!(identity_headers(&headers, Some("x-request-id")).is_empty());
        assert!(identity_headers(&headers, None).is_empty());
    }
}
