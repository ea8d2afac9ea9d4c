//! What every HTTP provider shares: the resolved [`Settings`], the client with its headers and
//! key, sending under the first-byte timeout, reading a reply whole or as a stream (server-sent
//! events or NDJSON) into the wire format's [`Assemble`], the whole-call deadline, and keeping
//! the key out of every message. Wire formats stay in their own modules: they build bodies and
//! read replies, with no I/O.

pub mod ndjson;
pub mod settings;
pub mod sse;
pub mod status;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use serde_json::Value;

pub use settings::{Settings, Timeouts};

use super::key::ApiKey;
use super::{rate_limit_headers, CallFailure, Check, Reply};
use crate::record::ErrorClass;
use ndjson::LineDecoder;
use sse::SseDecoder;

/// A successful reply larger than this is refused rather than held in memory.
const REPLY_LIMIT: usize = 32 * 1024 * 1024;
/// Only the start of an error body is read: the message is cut to a line anyway.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// A model list or identity document larger than this is not read.
pub(crate) const SMALL_BODY_LIMIT: usize = 1024 * 1024;
/// A server's text in a failure message is cut to this many characters.
pub const EXCERPT_CHARS: usize = 200;

/// How a wire format reads a successful reply: whole, or event by event as it streams.
pub trait Assemble {
    /// The reply of a non-streamed call (or a stream answered with one JSON body).
    fn whole(self, body: &[u8]) -> Result<Reply, CallFailure>;
    /// One event's data (an SSE `data:` or an NDJSON line); `elapsed` is read when the first
    /// text arrives, for the time to first token.
    fn event(&mut self, data: &str, elapsed: &dyn Fn() -> Duration) -> Result<(), CallFailure>;
    /// The wire format's end marker was seen: whatever follows is not part of the reply.
    fn done(&self) -> bool;
    /// The stream ended without its end marker; `cut` says why the connection failed or that
    /// an event was left half-sent, if either happened.
    fn end_of_stream(self, cut: Option<String>) -> Result<Reply, CallFailure>;
}

/// How a stream is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `text/event-stream` (OpenAI, Anthropic, Gemini's `alt=sse`).
    Sse,
    /// One JSON object per line (Ollama).
    Ndjson,
}

impl Framing {
    fn accepts(self, media: &str) -> bool {
        let is = |m: &str| media.eq_ignore_ascii_case(m);
        match self {
            Framing::Sse => is("text/event-stream"),
            Framing::Ndjson => {
                is("application/x-ndjson") || is("application/ndjson") || is("application/jsonl")
            }
        }
    }

    fn name(self) -> &'static str {
        match self {
            Framing::Sse => "an event stream",
            Framing::Ndjson => "an NDJSON stream",
        }
    }
}

enum Decoder {
    Sse(SseDecoder),
    Lines(LineDecoder),
}

impl Decoder {
    fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, String> {
        match self {
            Decoder::Sse(d) => d.push(bytes).map_err(|e| e.to_string()),
            Decoder::Lines(d) => d.push(bytes).map_err(|e| e.to_string()),
        }
    }

    /// The stream ended cleanly: a last event still held, sent without its blank line (SSE)
    /// or newline (NDJSON).
    fn finish(&mut self) -> Option<String> {
        match self {
            Decoder::Sse(d) => d.finish(),
            Decoder::Lines(d) => d.finish(),
        }
    }
}

/// How the key travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer …`.
    Bearer,
    /// A header of its own (`x-api-key`, `x-goog-api-key`), marked sensitive.
    Header(&'static str),
}

/// Where and how a wire format sends its calls.
#[derive(Debug, Clone)]
pub struct Route {
    /// Appended to the base URL, e.g. `/chat/completions`.
    pub path: String,
    pub framing: Framing,
    pub auth: Auth,
    /// Headers every request carries unless the configuration names them (`anthropic-version`).
    pub fixed: &'static [(&'static str, &'static str)],
    /// The response header holding the server's request id, archived as `request_id`.
    pub request_id: Option<&'static str>,
}

/// A request the server refused: what the wire format classifies. The wait the server asked
/// for and the rate-limit headers are added to the failure afterwards.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    /// The `Retry-After` header as sent (for the message).
    pub retry_after: Option<String>,
    /// The start of the error body.
    pub body: Vec<u8>,
    /// The request carried a key.
    pub keyed: bool,
}

/// One HTTP target's client: endpoint, headers with the key, timeouts.
#[derive(Debug)]
pub struct Http {
    provider: String,
    endpoint: String,
    headers: HeaderMap,
    key: Option<ApiKey>,
    bearer: bool,
    client: reqwest::Client,
    /// A client that never keeps a connection: for the one resend after a kept-alive
    /// connection turned out closed, and for every stream of a server that closes after each.
    fresh: reqwest::Client,
    /// The server closed a kept-alive connection after a streamed reply (llama.cpp does, while
    /// advertising keep-alive): its streams go on new connections from then on.
    closes_after_stream: AtomicBool,
    timeouts: Timeouts,
    stream: bool,
    framing: Framing,
    request_id: Option<&'static str>,
}

impl Http {
    /// The client for `settings` on `route`; fails (one sentence) on an unusable base URL,
    /// header or key.
    pub fn new(settings: &Settings, route: Route) -> Result<Self, String> {
        let provider = &settings.provider;
        let base = reqwest::Url::parse(&settings.base_url)
            .map_err(|e| format!("provider `{provider}`: bad base_url: {e}"))?;
        if !base.username().is_empty() || base.password().is_some() || base.query().is_some() {
            return Err(format!(
                "provider `{provider}`: base_url must not carry credentials or a query"
            ));
        }
        let endpoint = format!("{}{}", settings.base_url, route.path);
        reqwest::Url::parse(&endpoint)
            .map_err(|e| format!("provider `{provider}`: bad base_url: {e}"))?;
        let mut headers = HeaderMap::new();
        for (name, value) in route.fixed {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        for (name, value) in &settings.headers {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) else {
                return Err(format!(
                    "provider `{provider}`: `{name}` is not a valid HTTP header"
                ));
            };
            headers.insert(name, value);
        }
        if let (Auth::Header(name), Some(key)) = (route.auth, &settings.key) {
            let mut value = HeaderValue::from_str(key.expose()).map_err(|_| {
                format!(
                    "provider `{provider}`: the API key holds characters an HTTP header cannot carry"
                )
            })?;
            // Kept out of debug output and HTTP/2 header compression tables.
            value.set_sensitive(true);
            headers.insert(HeaderName::from_static(name), value);
        }
        let client = |keep: bool| {
            let builder = reqwest::Client::builder()
                .user_agent(concat!("reprise/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(settings.timeouts.connect);
            let builder = if keep {
                builder
            } else {
                builder.pool_max_idle_per_host(0)
            };
            builder
                .build()
                .map_err(|e| format!("provider `{provider}`: cannot start the HTTP client: {e}"))
        };
        let (fresh, client) = (client(false)?, client(true)?);
        Ok(Http {
            provider: provider.clone(),
            endpoint,
            headers,
            key: settings.key.clone(),
            bearer: route.auth == Auth::Bearer,
            client,
            fresh,
            closes_after_stream: AtomicBool::new(false),
            timeouts: settings.timeouts,
            stream: settings.stream,
            framing: route.framing,
            request_id: route.request_id,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether requests carry a key (messages never blame one that was not sent).
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// A request carrying the headers and the key.
    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.request_on(&self.client, method, url)
    }

    fn request_on(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        url: &str,
    ) -> reqwest::RequestBuilder {
        let request = client.request(method, url).headers(self.headers.clone());
        match (&self.key, self.bearer) {
            (Some(key), true) => request.bearer_auth(key.expose()),
            _ => request,
        }
    }

    /// `text` with the key removed: servers and proxies quote a wrong key back.
    pub fn scrub(&self, text: String) -> String {
        match &self.key {
            Some(key) => key.scrub(&text),
            None => text,
        }
    }

    /// One call: `body` posted to the endpoint, the reply read into `assembly`, under the
    /// first-byte and whole-call deadlines. `refused` classifies an error status.
    pub async fn call<A: Assemble>(
        &self,
        body: &Value,
        assembly: A,
        refused: impl FnOnce(Refusal) -> CallFailure,
    ) -> Result<Reply, CallFailure> {
        let started = Instant::now();
        let replying = AtomicBool::new(false);
        let exchange = self.exchange(body, assembly, refused, started, &replying);
        let result =
            within_deadline(&self.provider, self.timeouts.total, &replying, exchange).await;
        result.map_err(|mut failure| {
            failure.message = self.scrub(failure.message);
            failure
        })
    }

    /// One attempt, without the total deadline. `replying` is set once a success status has
    /// arrived: from then on a failure is never retried.
    async fn exchange<A: Assemble>(
        &self,
        body: &Value,
        assembly: A,
        refused: impl FnOnce(Refusal) -> CallFailure,
        started: Instant,
        replying: &AtomicBool,
    ) -> Result<Reply, CallFailure> {
        let first_byte = started + self.timeouts.first_byte;
        let send = |client| {
            let request = self.request_on(client, reqwest::Method::POST, &self.endpoint);
            tokio::time::timeout_at(first_byte.into(), request.json(body).send())
        };
        let reuse = !(self.stream && self.closes_after_stream.load(Ordering::Relaxed));
        let mut sent = send(if reuse { &self.client } else { &self.fresh }).await;
        if let Ok(Err(e)) = &sent {
            if reuse && closed_unanswered(e) {
                // A kept-alive connection the server had closed: nothing was answered, so the
                // request goes once more, on a new connection.
                if self.stream {
                    self.closes_after_stream.store(true, Ordering::Relaxed);
                }
                sent = send(&self.fresh).await;
            }
        }
        let mut response = match sent {
            Err(_) => return Err(self.first_byte_timeout()),
            Ok(Err(e)) => return Err(self.transport(&e)),
            Ok(Ok(response)) => response,
        };
        let header = |name: &str| header(response.headers(), name);
        let identity = super::identity_headers(response.headers(), self.request_id);
        let rate_limit = rate_limit_headers(response.headers());
        let status = response.status();
        if !status.is_success() {
            let retry_after = header("retry-after");
            let wait = retry_wait(header("retry-after-ms").as_deref(), retry_after.as_deref());
            // An error body that cannot be read still has its status to classify by.
            let body = read_capped(&mut response, ERROR_BODY_LIMIT)
                .await
                .unwrap_or_default();
            let refusal = Refusal {
                status: status.as_u16(),
                retry_after,
                body,
                keyed: self.has_key(),
            };
            // The headers' wait, else one the body gave (Gemini's RetryInfo).
            let failure = refused(refusal);
            let wait = wait.or(failure.retry_after);
            return Err(failure.with_retry_after(wait).with_rate_limit(rate_limit));
        }
        replying.store(true, Ordering::Relaxed);
        match self.read_reply(response, assembly, started).await {
            Ok(mut reply) => {
                reply.served.extend(identity);
                reply.rate_limit = rate_limit;
                Ok(reply)
            }
            // Said before any content: nothing was done, so it may be retried.
            Err(failure) if failure.before_content => Err(failure.with_rate_limit(rate_limit)),
            Err(failure) => Err(failure.after_first_byte().with_rate_limit(rate_limit)),
        }
    }

    /// A success status arrived: the body, whole or streamed.
    async fn read_reply<A: Assemble>(
        &self,
        mut response: reqwest::Response,
        assembly: A,
        started: Instant,
    ) -> Result<Reply, CallFailure> {
        let content_type = header(response.headers(), CONTENT_TYPE.as_str()).unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or("").trim();
        // A server or proxy may answer a streamed request with one JSON body (often an error).
        let is_json = media.eq_ignore_ascii_case("application/json");
        if self.stream && !is_json && !media.is_empty() && !self.framing.accepts(media) {
            return Err(self.failure(
                ErrorClass::MalformedResponse,
                format!(
                    "sent `{}` instead of {}",
                    excerpt(media),
                    self.framing.name()
                ),
            ));
        }
        if !self.stream || is_json {
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

    async fn read_stream<A: Assemble>(
        &self,
        mut response: reqwest::Response,
        mut assembly: A,
        started: Instant,
    ) -> Result<Reply, CallFailure> {
        let mut decoder = match self.framing {
            Framing::Sse => Decoder::Sse(SseDecoder::new()),
            Framing::Ndjson => Decoder::Lines(LineDecoder::new()),
        };
        let elapsed = || started.elapsed();
        let first_byte = started + self.timeouts.first_byte;
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
                Ok(None) => match decoder.finish() {
                    None => break None,
                    Some(last) => match assembly.event(&last, &elapsed) {
                        Ok(()) => break None,
                        // A last event that does not read was cut mid-line, not malformed.
                        Err(f) if f.class == ErrorClass::MalformedResponse => {
                            break Some("the last event was left unfinished".into())
                        }
                        Err(f) => return Err(f),
                    },
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
            let events = decoder
                .push(&bytes)
                .map_err(|e| self.failure(ErrorClass::MalformedResponse, format!("sent {e}")))?;
            for data in events {
                assembly.event(&data, &elapsed)?;
                if assembly.done() {
                    // Whatever follows the end marker is not part of the reply.
                    return assembly.end_of_stream(None);
                }
            }
        };
        assembly.end_of_stream(cut)
    }

    /// A small document (a model list, an identity endpoint), bounded by the connect and
    /// first-byte timeouts; `Ok(None)` when the server answered with an error status, Err (the
    /// cause, key scrubbed) when it did not answer.
    pub async fn get_small(&self, url: &str) -> Result<Option<Vec<u8>>, String> {
        let limit = self.timeouts.connect + self.timeouts.first_byte;
        let fetch = async {
            let mut response = self
                .request(reqwest::Method::GET, url)
                .send()
                .await
                .map_err(|e| self.scrub(cause(&e)))?;
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

    /// `GET url` for `reprise providers`: the response, or the check that ends the probe
    /// (no answer in time, unreachable, key refused).
    pub async fn probe(&self, url: &str, shown: &str) -> Result<reqwest::Response, Check> {
        let wait = self.timeouts.connect + self.timeouts.first_byte;
        let request = self.request(reqwest::Method::GET, url);
        let response = match tokio::time::timeout(wait, request.send()).await {
            Err(_) => {
                return Err(Check::unknown(
                    "endpoint",
                    format!("{shown} sent nothing within {}", seconds(wait)),
                ))
            }
            Ok(Err(e)) => {
                return Err(Check::fail(
                    "endpoint",
                    self.scrub(format!("{shown} unreachable: {}", cause(&e))),
                ))
            }
            Ok(Ok(r)) => r,
        };
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            let what = if self.has_key() {
                format!("{shown} refused the key (HTTP {status})")
            } else {
                format!("{shown} refused the request (HTTP {status}); no key is configured (api_key_env)")
            };
            return Err(Check::fail("endpoint", what));
        }
        Ok(response)
    }

    fn failure(&self, class: ErrorClass, what: String) -> CallFailure {
        failure(&self.provider, class, what)
    }

    /// Nothing arrived within the first-byte timeout.
    fn first_byte_timeout(&self) -> CallFailure {
        self.failure(
            ErrorClass::Timeout,
            format!(
                "sent nothing within {} (first_byte_timeout_ms)",
                seconds(self.timeouts.first_byte)
            ),
        )
    }

    /// A request that failed before any reply: connecting, or the connection dropping.
    fn transport(&self, e: &reqwest::Error) -> CallFailure {
        let endpoint = &self.endpoint;
        if e.is_timeout() {
            return self.failure(
                ErrorClass::Timeout,
                format!(
                    "could not be reached at {endpoint} within {} (connect_timeout_ms)",
                    seconds(self.timeouts.connect)
                ),
            );
        }
        let what = if e.is_connect() {
            format!("could not be reached at {endpoint}")
        } else {
            format!("dropped the request to {endpoint} before replying")
        };
        self.failure(ErrorClass::Connection, format!("{what}: {}", cause(e)))
    }
}

/// A failure in the one-sentence form every provider uses: "provider `x` {what}".
pub fn failure(provider: &str, class: ErrorClass, what: String) -> CallFailure {
    CallFailure::new(class, format!("provider `{provider}` {what}"))
}

/// Runs one exchange under the whole-call deadline. `replying` is what the exchange sets once
/// a success status arrived, so a deadline passed mid-reply is never retried.
async fn within_deadline(
    provider: &str,
    total: Duration,
    replying: &AtomicBool,
    exchange: impl Future<Output = Result<Reply, CallFailure>>,
) -> Result<Reply, CallFailure> {
    match tokio::time::timeout(total, exchange).await {
        Ok(result) => result,
        Err(_) => {
            let failure = failure(
                provider,
                ErrorClass::Timeout,
                format!(
                    "gave no complete reply within {} (total_timeout_ms)",
                    seconds(total)
                ),
            );
            Err(if replying.load(Ordering::Relaxed) {
                failure.after_first_byte()
            } else {
                failure
            })
        }
    }
}

/// The connection closed before any of the reply came back — what a pooled connection the
/// server had already closed gives when a request is sent on it. Not a refused or failed
/// connect: those never reached a server.
fn closed_unanswered(e: &reqwest::Error) -> bool {
    if e.is_connect() || e.is_timeout() {
        return false;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(inner) = source {
        if let Some(h) = inner.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() {
                return true;
            }
        }
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(io.kind(), ConnectionReset | ConnectionAborted | BrokenPipe) {
                return true;
            }
        }
        source = inner.source();
    }
    false
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// How long the server asked to wait: `retry-after-ms` (OpenAI's), else `Retry-After` in
/// seconds. An HTTP-date form is not read (no provider in reference/providers.md sends one).
pub fn retry_wait(retry_after_ms: Option<&str>, retry_after: Option<&str>) -> Option<Duration> {
    let number = |v: &str| v.trim().parse::<f64>().ok().filter(|n| !n.is_nan());
    let ms = retry_after_ms.and_then(number).map(|ms| ms / 1000.0);
    ms.or_else(|| retry_after.and_then(number))
        .and_then(server_seconds)
}

/// A number of seconds a server sent, as a wait: None when it is negative or not a number; a
/// wait too long to represent (`1e20`) is the longest there is — never a panic, and far over
/// any retry policy's limit, so the call fails instead of waiting.
pub fn server_seconds(seconds: f64) -> Option<Duration> {
    if seconds.is_nan() || seconds < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
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
pub fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(source) = inner.source() {
        inner = source;
    }
    excerpt(&inner.to_string())
}

pub fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// Server text made safe for a one-line message: control characters inert, whitespace
/// collapsed, at most [`EXCERPT_CHARS`] characters.
pub fn excerpt(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let safe = crate::text::inert(&one_line).into_owned();
    if safe.chars().count() <= EXCERPT_CHARS {
        return safe;
    }
    let mut cut: String = safe.chars().take(EXCERPT_CHARS).collect();
    cut.push('…');
    cut
}

/// The sent parameter the message names first, as a whole word (`top_p`, not `top_probs`).
pub fn named_parameter<'a>(message: &str, sent: &[&'a str]) -> Option<&'a str> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    sent.iter()
        .filter_map(|name| {
            message
                .match_indices(name)
                .find(|(at, _)| {
                    let before = message[..*at].chars().next_back();
                    let after = message[at + name.len()..].chars().next();
                    !before.is_some_and(is_word) && !after.is_some_and(is_word)
                })
                .map(|(at, _)| (at, *name))
        })
        .min()
        .map(|(_, name)| name)
}

/// Tokens and their log-probabilities as a reply arrives. They are kept only when they are
/// exactly the text, each with its log-probability: a server that sent some text without
/// them, or tokens that do not spell the text, gets no tokens at all rather than wrong ones.
#[derive(Debug, Default)]
pub struct TokenLog {
    tokens: Vec<String>,
    logprobs: Vec<f32>,
    incomplete: bool,
}

impl TokenLog {
    /// One token; without its log-probability the log is incomplete.
    pub fn push(&mut self, token: String, logprob: Option<f64>) {
        match logprob {
            Some(lp) => {
                self.tokens.push(token);
                self.logprobs.push(lp as f32);
            }
            None => self.incomplete = true,
        }
    }

    /// Some text arrived with no tokens for it.
    pub fn missing(&mut self) {
        self.incomplete = true;
    }

    /// The tokens and log-probabilities for a reply whose text is `text`, if they were asked
    /// for (`wanted`) and are trustworthy.
    pub fn keep(self, wanted: bool, text: &str) -> (Option<Vec<String>>, Option<Vec<f32>>) {
        if wanted && !self.incomplete && self.tokens.concat() == text {
            (Some(self.tokens), Some(self.logprobs))
        } else {
            (None, None)
        }
    }
}

/// A count of models in words: "1 model", "3 models".
pub fn models(n: usize) -> String {
    if n == 1 {
        "1 model".into()
    } else {
        format!("{n} models")
    }
}
