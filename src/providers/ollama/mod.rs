//! The `ollama` kind: Ollama's native `POST {base}/api/chat`, streamed as NDJSON (one JSON
//! object per line, the last with `done: true` and the counters) or whole. Served identity:
//! the returned model and the model's digest from `GET /api/tags` (looked up once, on the
//! first successful call); `server_identity` adds `GET /api/version`. One call is one
//! attempt: retries belong to the runner.
//!
//! Ollama sends no log-probabilities unless asked, and reprise does not ask: an Ollama reply
//! has no tokens. Options the protocol leaves out fall back to the model's Modelfile defaults.

mod check;
pub mod ndjson;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use serde_json::{json, Map, Value};
use tokio::sync::OnceCell;

use super::key::{self, ApiKey};
use super::openai::wire::{excerpt, retry_wait};
use super::openai::{cause, Timeouts};
use super::{Backend, CallFailure, ChatRequest, Check, Limits, Reply, RetryPolicy};
use crate::config::ProviderConfig;
use crate::record::ErrorClass;
use ndjson::LineDecoder;
use wire::Assembly;

/// Where `provider = "ollama"` goes unless `$OLLAMA_HOST` says otherwise.
pub const OLLAMA_BASE_URL: &str = "http://127.0.0.1:11434";
/// Ollama's own variable (`host`, `host:port` or `scheme://host:port`).
pub const OLLAMA_HOST_ENV: &str = "OLLAMA_HOST";

/// A successful reply larger than this is refused rather than held in memory.
const REPLY_LIMIT: usize = 32 * 1024 * 1024;
/// Only the start of an error or identity body is read.
const SMALL_BODY_LIMIT: usize = 1024 * 1024;

/// Ollama's defaults: the first call loads the model into memory before its first byte, which
/// takes minutes for a large model on a slow disk.
pub fn default_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(10),
        first_byte: Duration::from_secs(180),
        total: Duration::from_secs(600),
    }
}

/// Everything a backend needs, resolved: the key (if any) has been read, the model chosen.
#[derive(Debug, Clone)]
pub struct OllamaSettings {
    /// The provider's name, as protocols write it (for messages).
    pub provider: String,
    /// The server root, e.g. `http://127.0.0.1:11434` (no `/api`).
    pub base_url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer …` (for a proxy in front of Ollama); usually absent.
    pub key: Option<ApiKey>,
    /// Extra headers (recorded in the conditions: never secrets).
    pub headers: BTreeMap<String, String>,
    pub stream: bool,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub limits: Limits,
}

impl OllamaSettings {
    /// Defaults: streamed, no key, no extra headers.
    pub fn new(provider: &str, base_url: &str, model: &str) -> Self {
        OllamaSettings {
            provider: provider.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            key: None,
            headers: BTreeMap::new(),
            stream: true,
            timeouts: default_timeouts(),
            retry: RetryPolicy::default(),
            limits: Limits::default(),
        }
    }

    /// `[providers.NAME]` with `kind = "ollama"`, the key (if named) read now; `model` (the
    /// target's) overrides the default. `logprobs` is ignored: Ollama is never asked for them.
    pub fn from_config(
        name: &str,
        config: &ProviderConfig,
        model: Option<&str>,
    ) -> Result<Self, String> {
        let model = model.or(config.model.as_deref()).ok_or_else(|| {
            format!("provider `{name}` has no default model, so the target must give one (model = \"…\")")
        })?;
        let mut s = OllamaSettings::new(name, &config.base_url, model);
        s.key = match (&config.api_key_env, &config.api_key_file) {
            (Some(var), _) => Some(key::from_env(name, var)?),
            (None, Some(file)) => Some(key::from_file(name, file)?),
            (None, None) => None,
        };
        s.headers = config.headers.clone();
        s.stream = config.stream;
        if let Some(n) = config.max_retries {
            s.retry.max_retries = n;
        }
        s.limits = Limits {
            concurrency: config.concurrency.map(|n| n.max(1) as usize),
            requests_per_minute: config.requests_per_minute.map(f64::from),
        };
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        let d = default_timeouts();
        s.timeouts = Timeouts {
            connect: ms(config.connect_timeout_ms, d.connect),
            first_byte: ms(config.first_byte_timeout_ms, d.first_byte),
            total: ms(config.total_timeout_ms, d.total),
        };
        Ok(s)
    }

    /// `provider = "ollama"`: `$OLLAMA_HOST` or 127.0.0.1:11434, no key.
    pub fn builtin(model: Option<&str>) -> Result<Self, String> {
        let model = model.ok_or_else(|| {
            "provider `ollama` needs a model on the target (model = \"…\")".to_string()
        })?;
        let base = std::env::var(OLLAMA_HOST_ENV)
            .ok()
            .filter(|h| !h.trim().is_empty())
            .map_or_else(|| OLLAMA_BASE_URL.to_string(), |h| host_url(&h));
        Ok(OllamaSettings::new("ollama", &base, model))
    }
}

/// An `$OLLAMA_HOST` value as a base URL, the way Ollama reads it: scheme `http` and port
/// 11434 (443 for `https`) unless given.
pub fn host_url(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    let (scheme, rest) = host.split_once("://").unwrap_or(("http", host));
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    // `[::1]` has colons but no port; a port is digits after the last colon, outside brackets.
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let port = if has_port {
        ""
    } else if scheme.eq_ignore_ascii_case("https") {
        ":443"
    } else {
        ":11434"
    };
    format!("{scheme}://{authority}{port}{path}")
}

/// An `ollama`-kind target.
#[derive(Debug)]
pub struct OllamaBackend {
    settings: OllamaSettings,
    endpoint: String,
    headers: HeaderMap,
    client: reqwest::Client,
    /// The model's digest from `/api/tags`, once a listing was read (None: not listed).
    digest: OnceCell<Option<String>>,
}

impl OllamaBackend {
    /// The backend for `settings`; fails (one sentence) on an unusable URL or header.
    pub fn new(settings: OllamaSettings) -> Result<Self, String> {
        let endpoint = format!("{}/api/chat", settings.base_url);
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
        Ok(OllamaBackend {
            settings,
            endpoint,
            headers,
            client,
            digest: OnceCell::new(),
        })
    }

    pub fn settings(&self) -> &OllamaSettings {
        &self.settings
    }

    fn failure(&self, class: ErrorClass, what: String) -> CallFailure {
        super::http::failure(&self.settings.provider, class, what)
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self
            .client
            .request(method, url)
            .headers(self.headers.clone());
        match &self.settings.key {
            Some(key) => request.bearer_auth(key.expose()),
            None => request,
        }
    }

    /// One attempt, without the total deadline (the caller applies it). `replying` is set
    /// once a success status has arrived: from then on a failure is never retried.
    async fn exchange(
        &self,
        body: Value,
        started: Instant,
        replying: &AtomicBool,
    ) -> Result<Reply, CallFailure> {
        let request = self
            .request(reqwest::Method::POST, &self.endpoint)
            .json(&body);
        let first_byte = started + self.settings.timeouts.first_byte;
        let mut response = match tokio::time::timeout_at(first_byte.into(), request.send()).await {
            Err(_) => return Err(self.first_byte_timeout()),
            Ok(Err(e)) => return Err(self.transport(&e)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if !status.is_success() {
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let retry_after = header("retry-after");
            let wait = retry_wait(header("retry-after-ms").as_deref(), retry_after.as_deref());
            // An error body that cannot be read still has its status to classify by.
            let error = read_capped(&mut response, SMALL_BODY_LIMIT)
                .await
                .unwrap_or_default();
            let options: Vec<&str> = body
                .get("options")
                .and_then(Value::as_object)
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default();
            return Err(wire::status_failure(
                &self.settings.provider,
                &self.settings.model,
                &options,
                status.as_u16(),
                retry_after.as_deref(),
                &error,
            )
            .with_retry_after(wait));
        }
        replying.store(true, Ordering::Relaxed);
        self.read_reply(response, started)
            .await
            .map_err(CallFailure::after_first_byte)
    }

    /// A success status arrived: the body, whole or streamed.
    async fn read_reply(
        &self,
        mut response: reqwest::Response,
        started: Instant,
    ) -> Result<Reply, CallFailure> {
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let media = content_type.split(';').next().unwrap_or("").trim();
        let is = |m: &str| media.eq_ignore_ascii_case(m);
        // A proxy may answer a streamed request with one JSON body.
        let is_json = is("application/json");
        if self.settings.stream
            && !is_json
            && !media.is_empty()
            && !is("application/x-ndjson")
            && !is("application/ndjson")
            && !is("application/jsonl")
        {
            return Err(self.failure(
                ErrorClass::MalformedResponse,
                format!("sent `{}` instead of an NDJSON stream", excerpt(media)),
            ));
        }
        let assembly = Assembly::new(&self.settings.provider);
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
            return assembly.whole(&body);
        }
        self.read_stream(response, assembly, started).await
    }

    async fn read_stream(
        &self,
        mut response: reqwest::Response,
        mut assembly: Assembly,
        started: Instant,
    ) -> Result<Reply, CallFailure> {
        let mut decoder = LineDecoder::new();
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
                // NDJSON may leave its last line without a newline.
                Ok(None) => match decoder.finish() {
                    Some(line) => {
                        assembly.line(&line, || started.elapsed())?;
                        break None;
                    }
                    None => break None,
                },
                Err(e) => break Some(cause(&e)),
            };
            received += bytes.len();
            if received > REPLY_LIMIT {
                return Err(self.failure(
                    ErrorClass::MalformedResponse,
                    format!("sent a stream larger than {} MiB", REPLY_LIMIT >> 20),
                ));
            }
            let lines = decoder
                .push(&bytes)
                .map_err(|e| self.failure(ErrorClass::MalformedResponse, format!("sent {e}")))?;
            for line in lines {
                assembly.line(&line, || started.elapsed())?;
                if assembly.done {
                    // Whatever follows the done line is not part of the reply.
                    return assembly.end_of_stream(None);
                }
            }
        };
        assembly.end_of_stream(cut)
    }

    /// The model's digest, read from `/api/tags` once; a server that did not answer is asked
    /// again on the next call (one that answered without the model is not).
    async fn digest(&self) -> Option<String> {
        self.digest
            .get_or_try_init(|| async {
                self.lookup_digest()
                    .await
                    .map(|found| found.map(|(_, digest)| digest))
            })
            .await
            .ok()
            .and_then(Clone::clone)
    }

    /// `(listed name, digest)` of the model; `Ok(None)` when the server answered but does not
    /// list it (or has no `/api/tags`, as behind some proxies), Err when it did not answer.
    async fn lookup_digest(&self) -> Result<Option<(String, String)>, String> {
        Ok(self
            .get_small("/api/tags")
            .await?
            .and_then(|body| wire::digest_of(&body, &self.settings.model).ok().flatten()))
    }

    /// A small identity document, bounded by the connect and first-byte timeouts; `Ok(None)`
    /// when the server answered with an error status.
    async fn get_small(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        let url = format!("{}{path}", self.settings.base_url);
        let limit = self.settings.timeouts.connect + self.settings.timeouts.first_byte;
        let fetch = async {
            let mut response = self
                .request(reqwest::Method::GET, &url)
                .send()
                .await
                .map_err(|e| cause(&e))?;
            if !response.status().is_success() {
                return Ok(None);
            }
            read_capped(&mut response, SMALL_BODY_LIMIT)
                .await
                .map(Some)
                .map_err(|_| "unreadable".to_string())
        };
        tokio::time::timeout(limit, fetch)
            .await
            .map_err(|_| "timed out".to_string())?
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
impl Backend for OllamaBackend {
    /// Options go under `options`, named as Ollama names them (`max_tokens` → `num_predict`);
    /// only what the protocol set. `stream` is always explicit (Ollama's default is true).
    fn request_body(&self, request: &ChatRequest) -> Value {
        let mut messages = Vec::new();
        if let Some(system) = &request.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": request.user}));
        let p = &request.params;
        let mut options = Map::new();
        let mut set = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                options.insert(key.to_string(), value);
            }
        };
        set("temperature", p.temperature.map(|v| json!(v)));
        set("top_p", p.top_p.map(|v| json!(v)));
        set("top_k", p.top_k.map(|v| json!(v)));
        set("seed", p.seed.map(|v| json!(v)));
        set("num_predict", p.max_tokens.map(|v| json!(v)));
        set("stop", (!p.stop.is_empty()).then(|| json!(p.stop)));
        let mut body = json!({
            "model": self.settings.model,
            "messages": messages,
            "stream": self.settings.stream,
        });
        if !options.is_empty() {
            body["options"] = Value::Object(options);
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

    /// `GET {base}/api/tags`: reachable, key (if any) accepted, model pulled.
    async fn check(&self) -> Vec<Check> {
        self.check_model().await
    }

    async fn call(&self, request: &ChatRequest) -> Result<Reply, CallFailure> {
        let started = Instant::now();
        let total = self.settings.timeouts.total;
        let body = self.request_body(request);
        let replying = AtomicBool::new(false);
        // A proxy in front of Ollama may quote the key back: scrubbed there.
        let mut reply = super::http::within_deadline(
            &self.settings.provider,
            total,
            self.settings.key.as_ref(),
            &replying,
            self.exchange(body, started, &replying),
        )
        .await?;
        // After the reply, so neither its timing nor its deadline includes the lookup.
        if let Some(digest) = self.digest().await {
            reply.served.insert("digest".into(), digest);
        }
        Ok(reply)
    }

    /// Read fresh on every call (so a campaign's start and end can be compared): the model as
    /// `/api/tags` lists it, its `digest`, and the server's `version`. Keys absent where the
    /// server did not say.
    async fn server_identity(&self) -> Option<BTreeMap<String, String>> {
        let (tags, version) = tokio::join!(self.lookup_digest(), self.get_small("/api/version"));
        let mut identity = BTreeMap::new();
        let listed = tags.ok().flatten();
        let model = listed
            .as_ref()
            .map_or_else(|| wire::full_name(&self.settings.model), |(n, _)| n.clone());
        identity.insert("model".to_string(), excerpt(&model));
        if let Some((_, digest)) = listed {
            // Calls before this one found nothing cached yet: they may use this listing.
            let _ = self.digest.set(Some(digest.clone()));
            identity.insert("digest".to_string(), digest);
        }
        if let Some(version) = version.ok().flatten().and_then(|b| wire::version_of(&b)) {
            identity.insert("version".to_string(), version);
        }
        Some(identity)
    }
}

enum ReadError {
    TooLarge,
    Cut(reqwest::Error),
}

/// The body, up to `limit` bytes.
async fn read_capped(response: &mut reqwest::Response, limit: usize) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Cut)? {
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests;
