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
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use serde_json::{json, Value};

use super::key::{self, ApiKey};
use super::openai::sse::SseDecoder;
use super::openai::wire::{excerpt, retry_wait};
use super::openai::{cause, read_capped, ReadError, Timeouts};
use super::{Backend, CallFailure, ChatRequest, Check, Limits, Reply, RetryPolicy};
use crate::config::ProviderConfig;
use crate::record::ErrorClass;
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

/// A successful reply larger than this is refused rather than held in memory.
const REPLY_LIMIT: usize = 32 * 1024 * 1024;
/// Only the start of an error body is read: the message is cut to a line anyway.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Everything a backend needs, resolved: the key has been read, the model chosen.
#[derive(Debug, Clone)]
pub struct AnthropicSettings {
    /// The provider's name, as protocols write it (for messages).
    pub provider: String,
    /// Up to the version segment, e.g. `https://api.anthropic.com/v1`.
    pub base_url: String,
    pub model: String,
    /// Sent as `x-api-key`; absent for a proxy that needs none.
    pub key: Option<ApiKey>,
    /// Extra headers (recorded in the conditions: never secrets), e.g. `anthropic-beta`.
    pub headers: BTreeMap<String, String>,
    pub stream: bool,
    pub timeouts: Timeouts,
    /// How the runner retries this target's transient failures.
    pub retry: RetryPolicy,
    pub limits: Limits,
}

impl AnthropicSettings {
    /// Defaults: streamed, no key, no extra headers.
    pub fn new(provider: &str, base_url: &str, model: &str) -> Self {
        AnthropicSettings {
            provider: provider.to_string(),
            base_url: base_url.to_string(),
            model: model.to_string(),
            key: None,
            headers: BTreeMap::new(),
            stream: true,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            limits: Limits::default(),
        }
    }

    /// `[providers.NAME]`, the key read now; `model` (the target's) overrides the default.
    /// `logprobs` is ignored: the Messages API has none.
    pub fn from_config(
        name: &str,
        config: &ProviderConfig,
        model: Option<&str>,
    ) -> Result<Self, String> {
        let model = model.or(config.model.as_deref()).ok_or_else(|| {
            format!("provider `{name}` has no default model, so the target must give one (model = \"…\")")
        })?;
        let mut s = AnthropicSettings::new(name, &config.base_url, model);
        s.key = match (&config.api_key_env, &config.api_key_file) {
            (Some(var), _) => Some(key::from_env(name, var)?),
            (None, Some(file)) => Some(key::from_file(name, file)?),
            (None, None) => None,
        };
        s.headers = config.headers.clone();
        s.stream = config.stream;
        s.limits = Limits {
            concurrency: config.concurrency.map(|n| n.max(1) as usize),
            requests_per_minute: config.requests_per_minute.map(f64::from),
        };
        if let Some(n) = config.max_retries {
            s.retry.max_retries = n;
        }
        let ms = |v: Option<u64>, default| v.map_or(default, std::time::Duration::from_millis);
        let d = Timeouts::default();
        s.timeouts = Timeouts {
            connect: ms(config.connect_timeout_ms, d.connect),
            first_byte: ms(config.first_byte_timeout_ms, d.first_byte),
            total: ms(config.total_timeout_ms, d.total),
        };
        Ok(s)
    }

    /// `provider = "anthropic"`: `$ANTHROPIC_BASE_URL` or api.anthropic.com, key from
    /// `$ANTHROPIC_API_KEY`.
    pub fn builtin(model: Option<&str>) -> Result<Self, String> {
        let model = model.ok_or_else(|| {
            "provider `anthropic` needs a model on the target (model = \"…\")".to_string()
        })?;
        let base = std::env::var(ANTHROPIC_BASE_URL_ENV)
            .ok()
            .filter(|b| !b.trim().is_empty())
            .unwrap_or_else(|| ANTHROPIC_BASE_URL.to_string());
        let mut s = AnthropicSettings::new("anthropic", base.trim(), model);
        s.key = Some(key::from_env("anthropic", ANTHROPIC_API_KEY_ENV)?);
        Ok(s)
    }
}

/// An `anthropic`-kind target.
#[derive(Debug)]
pub struct AnthropicBackend {
    settings: AnthropicSettings,
    endpoint: String,
    headers: HeaderMap,
    client: reqwest::Client,
}

impl AnthropicBackend {
    /// The backend for `settings`; fails (one sentence) on an unusable URL or header.
    pub fn new(settings: AnthropicSettings) -> Result<Self, String> {
        let endpoint = format!("{}/messages", settings.base_url.trim_end_matches('/'));
        let url = reqwest::Url::parse(&endpoint)
            .map_err(|e| format!("provider `{}`: bad base_url: {e}", settings.provider))?;
        if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
            return Err(format!(
                "provider `{}`: base_url must not carry credentials or a query",
                settings.provider
            ));
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        for (name, value) in &settings.headers {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) else {
                return Err(format!(
                    "provider `{}`: `{name}` is not a valid HTTP header",
                    settings.provider
                ));
            };
            headers.insert(name, value);
        }
        if let Some(key) = &settings.key {
            let mut value = HeaderValue::from_str(key.expose()).map_err(|_| {
                format!(
                    "provider `{}`: the API key holds characters an HTTP header cannot carry",
                    settings.provider
                )
            })?;
            // Kept out of debug output and HTTP/2 header compression tables.
            value.set_sensitive(true);
            headers.insert(HeaderName::from_static("x-api-key"), value);
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("reprise/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(settings.timeouts.connect)
            .build()
            .map_err(|e| {
                format!(
                    "provider `{}`: cannot start the HTTP client: {e}",
                    settings.provider
                )
            })?;
        Ok(AnthropicBackend {
            settings,
            endpoint,
            headers,
            client,
        })
    }

    pub fn settings(&self) -> &AnthropicSettings {
        &self.settings
    }

    fn failure(&self, class: ErrorClass, what: String) -> CallFailure {
        super::http::failure(&self.settings.provider, class, what)
    }

    /// One attempt, without the total deadline (the caller applies it). `replying` is set
    /// once a success status has arrived: from then on a failure is never retried.
    async fn exchange(
        &self,
        body: Value,
        started: Instant,
        replying: &AtomicBool,
    ) -> Result<Reply, CallFailure> {
        let sent = sampling_fields(&body);
        let request = self
            .client
            .post(&self.endpoint)
            .headers(self.headers.clone())
            .json(&body);
        let first_byte = started + self.settings.timeouts.first_byte;
        let mut response = match tokio::time::timeout_at(first_byte.into(), request.send()).await {
            Err(_) => return Err(self.first_byte_timeout()),
            Ok(Err(e)) => return Err(self.transport(&e)),
            Ok(Ok(response)) => response,
        };
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let request_id = header("request-id");
        let rate_limit = super::rate_limit_headers(response.headers());
        let status = response.status();
        if !status.is_success() {
            let retry_after = header("retry-after");
            let wait = retry_wait(header("retry-after-ms").as_deref(), retry_after.as_deref());
            // An error body that cannot be read still has its status to classify by.
            let body = read_capped(&mut response, ERROR_BODY_LIMIT)
                .await
                .unwrap_or_default();
            return Err(wire::status_failure(
                &self.settings.provider,
                status.as_u16(),
                retry_after.as_deref(),
                &body,
                &sent,
            )
            .with_retry_after(wait)
            .with_rate_limit(rate_limit));
        }
        replying.store(true, Ordering::Relaxed);
        let assembly = Assembly::new(&self.settings.provider, sent);
        self.read_reply(response, assembly, started, request_id)
            .await
            .map(|mut reply| {
                reply.rate_limit = rate_limit.clone();
                reply
            })
            .map_err(|f| f.after_first_byte().with_rate_limit(rate_limit.clone()))
    }

    /// A success status arrived: the body, whole or streamed.
    async fn read_reply(
        &self,
        mut response: reqwest::Response,
        assembly: Assembly,
        started: Instant,
        request_id: Option<String>,
    ) -> Result<Reply, CallFailure> {
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        // A proxy may answer a streamed request with one JSON body (often an error).
        let is_json = media.eq_ignore_ascii_case("application/json");
        if self.settings.stream
            && !is_json
            && !media.is_empty()
            && !media.eq_ignore_ascii_case("text/event-stream")
        {
            return Err(self.failure(
                ErrorClass::MalformedResponse,
                format!("sent `{}` instead of an event stream", excerpt(&media)),
            ));
        }
        if !self.settings.stream || is_json {
            let body = match read_capped(&mut response, REPLY_LIMIT).await {
                Ok(body) => body,
                Err(ReadError::TooLarge) => {
                    return Err(self.failure(
                        ErrorClass::MalformedResponse,
                        format!("sent a reply larger than {} MiB", REPLY_LIMIT >> 20),
                    ))
                }
                Err(ReadError::Cut(e)) => {
                    return Err(self.failure(
                        ErrorClass::TruncatedStream,
                        format!("reply cut before its end: {}", cause(&e)),
                    ))
                }
            };
            let mut reply = assembly.whole(&body)?;
            if let Some(id) = request_id {
                reply.served.insert("request_id".into(), id);
            }
            return Ok(reply);
        }
        self.read_stream(response, assembly, started, request_id)
            .await
    }

    async fn read_stream(
        &self,
        mut response: reqwest::Response,
        mut assembly: Assembly,
        started: Instant,
        request_id: Option<String>,
    ) -> Result<Reply, CallFailure> {
        let mut decoder = SseDecoder::new();
        let first_byte = started + self.settings.timeouts.first_byte;
        let mut received = 0usize;
        let cut = loop {
            let next = if received == 0 {
                tokio::time::timeout_at(first_byte.into(), response.chunk())
                    .await
                    .map_err(|_| self.first_byte_timeout())?
            } else {
                response.chunk().await
            };
            let bytes = match next {
                Ok(Some(bytes)) => bytes,
                Ok(None) => {
                    break decoder
                        .pending()
                        .then(|| "the last event was left unfinished".to_string())
                }
                Err(e) => break Some(cause(&e)),
            };
            received += bytes.len();
            if received > REPLY_LIMIT {
                return Err(self.failure(
                    ErrorClass::MalformedResponse,
                    format!("sent a stream larger than {} MiB", REPLY_LIMIT >> 20),
                ));
            }
            let events = decoder
                .push(&bytes)
                .map_err(|e| self.failure(ErrorClass::MalformedResponse, format!("sent {e}")))?;
            for data in events {
                assembly.event(&data, || started.elapsed())?;
                if assembly.done {
                    // Whatever follows message_stop is not part of the reply.
                    return assembly.end_of_stream(None, request_id);
                }
            }
        };
        assembly.end_of_stream(cut, request_id)
    }

    fn first_byte_timeout(&self) -> CallFailure {
        super::http::first_byte_timeout(&self.settings.provider, self.settings.timeouts.first_byte)
    }

    /// A request that failed before any reply: connecting, or the connection dropping.
    fn transport(&self, e: &reqwest::Error) -> CallFailure {
        super::http::transport(
            &self.settings.provider,
            &self.endpoint,
            self.settings.timeouts.connect,
            e,
        )
    }
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
        self.endpoint.clone()
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

    fn limits(&self) -> Limits {
        self.settings.limits
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.settings.retry
    }

    /// `GET {base}/models/{model}`: reachable, key accepted, model known (aliases resolved).
    async fn check(&self) -> Vec<Check> {
        self.check_model().await
    }

    async fn call(&self, request: &ChatRequest) -> Result<Reply, CallFailure> {
        let started = Instant::now();
        let total = self.settings.timeouts.total;
        let body = self.request_body(request);
        let replying = AtomicBool::new(false);
        super::http::within_deadline(
            &self.settings.provider,
            total,
            self.settings.key.as_ref(),
            &replying,
            self.exchange(body, started, &replying),
        )
        .await
    }
}

#[cfg(test)]
mod tests;
