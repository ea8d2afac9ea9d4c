//! The `anthropic` kind: `POST {base_url}/messages` (Anthropic's Messages API), streamed as
//! named server-sent events or whole. One call is one attempt: retries belong to the runner.
//!
//! What the body can and cannot carry:
//! - `max_tokens` is required by the API: the protocol's value, else [`DEFAULT_MAX_TOKENS`]
//!   (recorded in the body like any other field, so the conditions show it).
//! - There is no `seed`: a protocol's seed is left out of the body, so the conditions show it
//!   was not sent.
//! - `stop` travels as `stop_sequences`; the system prompt as the top-level `system` string.
//! - No log-probabilities exist, so replies carry no tokens.

mod check;
pub mod wire;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::http::{self, Auth, Framing, Http, Route, Settings};
use super::{Backend, CallFailure, ChatRequest, Check, Reply};
use wire::Assembly;

/// Where `provider = "anthropic"` goes unless `$ANTHROPIC_BASE_URL` says otherwise.
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com/v1";
pub const ANTHROPIC_BASE_URL_ENV: &str = "ANTHROPIC_BASE_URL";
pub const ANTHROPIC_API_KEY_ENV: &str = "ANTHROPIC_API_KEY";
/// The API version every request names (what Anthropic's own SDKs send); a configured
/// `anthropic-version` header replaces it.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// `max_tokens` when the protocol sets none (the API refuses a request without it).
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

/// `provider = "anthropic"`: `$ANTHROPIC_BASE_URL` or api.anthropic.com, key from
/// `$ANTHROPIC_API_KEY`.
pub fn builtin(model: Option<&str>) -> Result<Settings, String> {
    let base = http::settings::env_or(ANTHROPIC_BASE_URL_ENV, ANTHROPIC_BASE_URL);
    Settings::builtin("anthropic", model, base, Some(ANTHROPIC_API_KEY_ENV))
}

/// An `anthropic`-kind target. `settings.logprobs` is ignored: the Messages API has none.
#[derive(Debug)]
pub struct AnthropicBackend {
    settings: Settings,
    http: Http,
}

impl AnthropicBackend {
    /// The backend for `settings`; fails (one sentence) on an unusable URL, header or key.
    pub fn new(mut settings: Settings) -> Result<Self, String> {
        // A configured version travels, and is recorded, as the header it is.
        if let Some(version) = settings.anthropic_version.take() {
            settings.headers.insert("anthropic-version".into(), version);
        }
        let route = Route {
            path: "/messages".into(),
            framing: Framing::Sse,
            auth: Auth::Header("x-api-key"),
            fixed: &[("anthropic-version", ANTHROPIC_VERSION)],
            request_id: Some("request-id"),
        };
        let http = Http::new(&settings, route)?;
        Ok(AnthropicBackend { settings, http })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// Fields the Messages API refuses together on current models ("`temperature` and `top_p`
/// cannot both be specified for this model": Claude Opus 4.1, Sonnet 4.5, Haiku 4.5 and every
/// model since).
const EXCLUSIVE: &[[&str; 2]] = &[["temperature", "top_p"]];

/// Claude models from before that rule, which take both.
const TAKE_BOTH: &[&str] = &[
    "claude-instant",
    "claude-2",
    "claude-3",
    "claude-opus-4-0",
    "claude-opus-4-2025",
    "claude-sonnet-4-0",
    "claude-sonnet-4-2025",
];

/// Whether `model` is a Claude model under the rule. Gateways' names count by their last part
/// (`anthropic/claude-…`, Bedrock's `anthropic.claude-…`); a model that is not Claude (a
/// compatible server's own) is under no rule.
fn refuses_both(model: &str) -> bool {
    let name = model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase();
    let name = name.strip_prefix("anthropic.").unwrap_or(&name);
    name.starts_with("claude-") && !TAKE_BOTH.iter().any(|old| name.starts_with(old))
}

/// The sampling parameters a body carries: a 400 naming one of them is that parameter
/// refused.
fn sampling_fields(body: &Value) -> Vec<&'static str> {
    [
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "stop_sequences",
    ]
    .into_iter()
    .filter(|k| body.get(*k).is_some())
    .collect()
}

#[async_trait]
impl Backend for AnthropicBackend {
    fn request_body(&self, request: &ChatRequest) -> Value {
        let p = &request.params;
        let max_tokens = p.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
        let mut body = json!({
            "model": self.settings.model,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": request.user}],
        });
        // Only what the protocol set; `seed` has no field here (see the module doc).
        let set = |body: &mut Value, key: &str, value: Value| body[key] = value;
        if let Some(system) = &request.system {
            set(&mut body, "system", json!(system));
        }
        if let Some(t) = p.temperature {
            set(&mut body, "temperature", json!(t));
        }
        if let Some(t) = p.top_p {
            set(&mut body, "top_p", json!(t));
        }
        if let Some(k) = p.top_k {
            set(&mut body, "top_k", json!(k));
        }
        if !p.stop.is_empty() {
            set(&mut body, "stop_sequences", json!(p.stop));
        }
        if self.settings.stream {
            set(&mut body, "stream", json!(true));
        }
        body
    }

    fn endpoint(&self) -> String {
        self.http.endpoint().to_string()
    }

    fn http_settings(&self) -> Option<&Settings> {
        Some(&self.settings)
    }

    fn exclusive_fields(&self) -> &'static [[&'static str; 2]] {
        if refuses_both(&self.settings.model) {
            EXCLUSIVE
        } else {
            &[]
        }
    }

    /// The configured headers and the `anthropic-version` sent (it decides the API's
    /// behaviour, so the conditions name it).
    fn headers(&self) -> BTreeMap<String, String> {
        let mut headers = self.settings.headers.clone();
        if !headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("anthropic-version"))
        {
            headers.insert("anthropic-version".into(), ANTHROPIC_VERSION.into());
        }
        headers
    }

    /// `GET {base}/models/{model}`: reachable, key accepted, model known (aliases resolved).
    async fn check(&self) -> Vec<Check> {
        self.check_model().await
    }

    async fn call(&self, request: &ChatRequest) -> Result<Reply, CallFailure> {
        let body = self.request_body(request);
        let sent = sampling_fields(&body);
        let provider = &self.settings.provider;
        let assembly = Assembly::new(provider, sent.clone());
        self.http
            .call(&body, assembly, |r| {
                let error = wire::server_error(&r.body, &sent);
                http::status::classify(provider, r.status, r.retry_after.as_deref(), r.keyed, error)
            })
            .await
    }
}

#[cfg(test)]
mod tests;
