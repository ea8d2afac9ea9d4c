//! The `openai` kind: `POST {base_url}/chat/completions`, streamed (server-sent events) or
//! whole. Speaks to OpenAI and every compatible server (vLLM, llama.cpp, LM Studio, Ollama's
//! compatibility endpoint, OpenRouter, `reprise serve`, …). One call is one attempt: retries
//! belong to the runner.

pub mod sse;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use serde_json::{json, Value};

use super::key::{self, ApiKey};
use super::{Backend, CallFailure, ChatRequest, Check, Limits, Reply, RetryPolicy};
use crate::config::ProviderConfig;
use crate::record::ErrorClass;
use sse::SseDecoder;
use wire::{excerpt, Assembly};

/// Where `provider = "openai"` goes unless `$OPENAI_BASE_URL` says otherwise.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
pub const OPENAI_BASE_URL_ENV: &str = "OPENAI_BASE_URL";
pub const OPENAI_API_KEY_ENV: &str = "OPENAI_API_KEY";

/// A successful reply larger than this is refused rather than held in memory.
const REPLY_LIMIT: usize = 32 * 1024 * 1024;
/// Only the start of an error body is read: the message is cut to a line anyway.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

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

/// Everything a backend needs, resolved: the key has been read, the model chosen.
#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    /// The provider's name, as protocols write it (for messages).
    pub provider: String,
    /// Up to the version segment, e.g. `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer …`; absent for servers that need none.
    pub key: Option<ApiKey>,
    /// Extra headers (recorded in the conditions: never secrets).
    pub headers: BTreeMap<String, String>,
    pub stream: bool,
    pub logprobs: bool,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub limits: Limits,
}

impl OpenAiSettings {
    /// Defaults: streamed, with log-probabilities, no key, no extra headers.
    pub fn new(provider: &str, base_url: &str, model: &str) -> Self {
        OpenAiSettings {
            provider: provider.to_string(),
            base_url: base_url.to_string(),
            model: model.to_string(),
            key: None,
            headers: BTreeMap::new(),
            stream: true,
            logprobs: true,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            limits: Limits::default(),
        }
    }

    /// `[providers.NAME]`, the key read now; `model` (the target's) overrides the default.
    /// The error is one sentence naming the provider.
    pub fn from_config(
        name: &str,
        config: &ProviderConfig,
        model: Option<&str>,
    ) -> Result<Self, String> {
        let model = model.or(config.model.as_deref()).ok_or_else(|| {
            format!("provider `{name}` has no default model, so the target must give one (model = \"…\")")
        })?;
        let mut s = OpenAiSettings::new(name, &config.base_url, model);
        s.key = match (&config.api_key_env, &config.api_key_file) {
            (Some(var), _) => Some(key::from_env(name, var)?),
            (None, Some(file)) => Some(key::from_file(name, file)?),
            (None, None) => None,
        };
        s.headers = config.headers.clone();
        s.stream = config.stream;
        s.logprobs = config.logprobs;
        if let Some(n) = config.max_retries {
            s.retry.max_retries = n;
        }
        s.limits = Limits {
            concurrency: config.concurrency.map(|n| n.max(1) as usize),
            requests_per_minute: config.requests_per_minute.map(f64::from),
        };
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        let d = Timeouts::default();
        s.timeouts = Timeouts {
            connect: ms(config.connect_timeout_ms, d.connect),
            first_byte: ms(config.first_byte_timeout_ms, d.first_byte),
            total: ms(config.total_timeout_ms, d.total),
        };
        Ok(s)
    }

    /// `provider = "openai"`: `$OPENAI_BASE_URL` or api.openai.com, key from `$OPENAI_API_KEY`.
    pub fn builtin(model: Option<&str>) -> Result<Self, String> {
        let model = model.ok_or_else(|| {
            "provider `openai` needs a model on the target (model = \"…\")".to_string()
        })?;
        let base = std::env::var(OPENAI_BASE_URL_ENV)
            .ok()
            .filter(|b| !b.trim().is_empty())
            .unwrap_or_else(|| OPENAI_BASE_URL.to_string());
        let mut s = OpenAiSettings::new("openai", base.trim(), model);
        s.key = Some(key::from_env("openai", OPENAI_API_KEY_ENV)?);
        Ok(s)
    }
}

/// An `openai`-kind target.
#[derive(Debug)]
pub struct OpenAiBackend {
    settings: OpenAiSettings,
    endpoint: String,
    headers: HeaderMap,
    client: reqwest::Client,
}

impl OpenAiBackend {
    /// The backend for `settings`; fails (one sentence) on an unusable URL or header.
    pub fn new(settings: OpenAiSettings) -> Result<Self, String> {
        let endpoint = format!(
            "{}/chat/completions",
            settings.base_url.trim_end_matches('/')
        );
        let url = reqwest::Url::parse(&endpoint)
            .map_err(|e| format!("provider `{}`: bad base_url: {e}", settings.provider))?;
        if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
            return Err(format!(
                "provider `{}`: base_url must not carry credentials or a query",
                settings.provider
            ));
        }
        let mut headers = HeaderMap::new();
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
        Ok(OpenAiBackend {
            settings,
            endpoint,
            headers,
            client,
        })
    }

    pub fn settings(&self) -> &OpenAiSettings {
        &self.settings
    }

    fn failure(&self, class: ErrorClass, what: String) -> CallFailure {
        super::http::failure(&self.settings.provider, class, what)
    }

    /// One attempt, without the total deadline (the caller applies it).
    /// `replying` is set once a success status has arrived: from then on a failure is never
    /// retried.
    async fn exchange(
        &self,
        body: Value,
        started: Instant,
        replying: &AtomicBool,
    ) -> Result<Reply, CallFailure> {
        let mut request = self
            .client
            .post(&self.endpoint)
            .headers(self.headers.clone())
            .json(&body);
        if let Some(key) = &self.settings.key {
            request = request.bearer_auth(key.expose());
        }
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
        let request_id = header("x-request-id");
        let rate_limit = super::rate_limit_headers(response.headers());
        let status = response.status();
        if !status.is_success() {
            let retry_after = header("retry-after");
            let wait =
                wire::retry_wait(header("retry-after-ms").as_deref(), retry_after.as_deref());
            // An error body that cannot be read still has its status to classify by.
            let body = read_capped(&mut response, ERROR_BODY_LIMIT)
                .await
                .unwrap_or_default();
            return Err(wire::status_failure(
                &self.settings.provider,
                status.as_u16(),
                retry_after.as_deref(),
                &body,
            )
            .with_retry_after(wait)
            .with_rate_limit(rate_limit));
        }
        replying.store(true, Ordering::Relaxed);
        self.read_reply(response, started, request_id)
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
        started: Instant,
        request_id: Option<String>,
    ) -> Result<Reply, CallFailure> {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let assembly = Assembly::new(&self.settings.provider, self.settings.logprobs);
        let content_type = header(CONTENT_TYPE.as_str()).unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or("").trim();
        // Some servers answer a streamed request with one JSON body (often an error).
        let is_json = media.eq_ignore_ascii_case("application/json");
        if self.settings.stream
            && !is_json
            && !media.is_empty()
            && !media.eq_ignore_ascii_case("text/event-stream")
        {
            return Err(self.failure(
                ErrorClass::MalformedResponse,
                format!("sent `{}` instead of an event stream", excerpt(media)),
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
                assembly.chunk(&data, || started.elapsed())?;
                if assembly.done {
                    // Whatever follows [DONE] is not part of the reply.
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

#[async_trait]
impl Backend for OpenAiBackend {
    fn request_body(&self, request: &ChatRequest) -> Value {
        let mut messages = Vec::new();
        if let Some(system) = &request.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": request.user}));
        let mut body = json!({"model": self.settings.model, "messages": messages});
        // Only what the protocol set: a server's default is its own business (and recorded as
        // absent). top_k is not a Chat Completions field.
        let p = &request.params;
        let set = |body: &mut Value, key: &str, value: Value| body[key] = value;
        if let Some(t) = p.temperature {
            set(&mut body, "temperature", json!(t));
        }
        if let Some(t) = p.top_p {
            set(&mut body, "top_p", json!(t));
        }
        if let Some(m) = p.max_tokens {
            set(&mut body, "max_tokens", json!(m));
        }
        if let Some(s) = p.seed {
            set(&mut body, "seed", json!(s));
        }
        if !p.stop.is_empty() {
            set(&mut body, "stop", json!(p.stop));
        }
        if self.settings.stream {
            set(&mut body, "stream", json!(true));
            set(&mut body, "stream_options", json!({"include_usage": true}));
        }
        if self.settings.logprobs {
            set(&mut body, "logprobs", json!(true));
        }
        body
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    fn headers(&self) -> BTreeMap<String, String> {
        self.settings.headers.clone()
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.settings.retry
    }

    fn limits(&self) -> Limits {
        self.settings.limits
    }

    /// The model's entry in `GET {base}/models`, its scalar fields as strings (a vLLM `root`,
    /// `reprise serve`'s `revision`, `mode`, `build`, …).
    async fn server_identity(&self) -> Option<BTreeMap<String, String>> {
        let url = format!("{}/models", self.settings.base_url.trim_end_matches('/'));
        let mut request = self.client.get(&url).headers(self.headers.clone());
        if let Some(key) = &self.settings.key {
            request = request.bearer_auth(key.expose());
        }
        let response = tokio::time::timeout(self.settings.timeouts.first_byte, request.send())
            .await
            .ok()?
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        let list: Value = response.json().await.ok()?;
        let entry = list["data"]
            .as_array()?
            .iter()
            .find(|m| m["id"].as_str() == Some(self.settings.model.as_str()))?;
        let fields: BTreeMap<String, String> = entry
            .as_object()?
            .iter()
            .filter(|(k, _)| k.as_str() != "object")
            .filter_map(|(k, v)| {
                let v = match v {
                    Value::String(s) => excerpt(s),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                Some((k.clone(), v))
            })
            .collect();
        (!fields.is_empty()).then_some(fields)
    }

    /// `GET {base}/models`: reachable, key accepted, model listed.
    async fn check(&self) -> Vec<Check> {
        let url = format!("{}/models", self.settings.base_url.trim_end_matches('/'));
        let mut request = self.client.get(&url).headers(self.headers.clone());
        if let Some(key) = &self.settings.key {
            request = request.bearer_auth(key.expose());
        }
        let scrub = |text: String| match &self.settings.key {
            Some(key) => key.scrub(&text),
            None => text,
        };
        let response =
            match tokio::time::timeout(self.settings.timeouts.first_byte, request.send()).await {
                Err(_) => {
                    return vec![Check::unknown(
                        "endpoint",
                        format!(
                            "{url} sent nothing within {}",
                            seconds(self.settings.timeouts.first_byte)
                        ),
                    )]
                }
                Ok(Err(e)) => {
                    return vec![Check::fail(
                        "endpoint",
                        scrub(format!("{url} unreachable: {}", cause(&e))),
                    )]
                }
                Ok(Ok(r)) => r,
            };
        let status = response.status();
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return vec![Check::fail(
                "endpoint",
                format!("{url} refused the key (HTTP {status})"),
            )];
        }
        if !status.is_success() {
            // Many compatible servers have no model list: that says nothing about chat.
            return vec![Check::unknown(
                "endpoint",
                format!("{url} answered HTTP {status}; no model list to check against"),
            )];
        }
        let ids: Vec<String> = match response.json::<Value>().await {
            Ok(v) => v["data"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(|m| m["id"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            Err(_) => {
                return vec![Check::unknown(
                    "endpoint",
                    format!("{url} did not answer with a model list"),
                )]
            }
        };
        if ids.is_empty() {
            return vec![Check::unknown(
                "model",
                format!("{url} lists no models to check against"),
            )];
        }
        let mut checks = vec![Check::pass(
            "endpoint",
            format!("{url} lists {}", models(ids.len())),
        )];
        let model = &self.settings.model;
        checks.push(if ids.iter().any(|id| id == model) {
            Check::pass("model", format!("{} is listed", excerpt(model)))
        } else {
            Check::fail(
                "model",
                format!(
                    "{} is not among the {} listed",
                    excerpt(model),
                    models(ids.len())
                ),
            )
        });
        checks
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

pub(crate) enum ReadError {
    TooLarge,
    Cut(reqwest::Error),
}

/// The body, up to `limit` bytes.
pub(crate) async fn read_capped(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Cut)? {
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The innermost cause of a transport error ("Connection refused (os error 111)"), one line.
pub(crate) fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(source) = inner.source() {
        inner = source;
    }
    excerpt(&inner.to_string())
}

pub(crate) fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests;

fn models(n: usize) -> String {
    if n == 1 {
        "1 model".into()
    } else {
        format!("{n} models")
    }
}
