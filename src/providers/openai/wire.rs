//! The Chat Completions wire format, read: replies (whole or streamed chunk by chunk) into a
//! `Reply`, and error bodies into what `http::status` classifies. No I/O here.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::identity;
use crate::providers::http::status::ServerError;
use crate::providers::http::{excerpt, Assemble, TokenLog};
use crate::providers::{note_served, CallFailure, Reply};
use crate::record::{ErrorClass, Usage};

/// A whole reply, or one streamed chunk (`choices[].delta` instead of `message`).
#[derive(Debug, Deserialize)]
struct Completion {
    id: Option<String>,
    model: Option<String>,
    system_fingerprint: Option<String>,
    service_tier: Option<String>,
    /// OpenRouter's upstream that served the call. Read leniently: on another server a
    /// `provider` of another shape is not ours to refuse.
    #[serde(default)]
    provider: Value,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
    /// Mid-stream errors arrive after HTTP 200 as `data: {"error": …}`.
    error: Option<WireError>,
    /// Groq's own block: its request `id`, the `seed` it used, a stream's `usage` (in its
    /// final chunk) and `error` (why it stopped a stream early). Read leniently, as `provider`.
    #[serde(default)]
    x_groq: Value,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    index: u32,
    message: Option<Message>,
    delta: Option<Message>,
    logprobs: Option<Logprobs>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    content: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Logprobs {
    content: Option<Vec<TokenLogprob>>,
}

#[derive(Debug, Deserialize)]
struct TokenLogprob {
    token: String,
    logprob: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    /// OpenAI's o-series, xAI, Groq and DeepSeek count reasoning tokens here.
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Deserialize)]
struct CompletionDetails {
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    /// Both counts or none: a usage with a made-up zero would be a false measurement.
    fn usage(&self) -> Option<Usage> {
        Some(Usage {
            prompt_tokens: self.prompt_tokens?,
            completion_tokens: self.completion_tokens?,
            reasoning_tokens: self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens),
        })
    }
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: WireError,
}

#[derive(Debug, Deserialize)]
struct WireError {
    message: Option<String>,
    param: Option<String>,
}

/// A reply being assembled: from one whole body, or from chunks as they arrive.
#[derive(Debug)]
pub struct Assembly {
    provider: String,
    want_logprobs: bool,
    text: String,
    tokens: TokenLog,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    served: BTreeMap<String, String>,
    pub ttft: Option<Duration>,
    /// `data: [DONE]` was seen.
    pub done: bool,
}

impl Assembly {
    pub fn new(provider: &str, want_logprobs: bool) -> Self {
        Assembly {
            provider: provider.to_string(),
            want_logprobs,
            text: String::new(),
            tokens: TokenLog::default(),
            finish_reason: None,
            usage: None,
            served: BTreeMap::new(),
            ttft: None,
            done: false,
        }
    }

    fn absorb(&mut self, reply: Completion, message: impl Fn(&Choice) -> Option<&Message>) {
        let ids = [
            ("model", reply.model.as_deref()),
            ("provider", reply.provider.as_str()),
            ("system_fingerprint", reply.system_fingerprint.as_deref()),
            ("service_tier", reply.service_tier.as_deref()),
            ("response_id", reply.id.as_deref()),
        ];
        for (key, value) in ids {
            if let Some(value) = value {
                note_served(&mut self.served, key, value);
            }
        }
        let groq = &reply.x_groq;
        if let Some(id) = groq.get("id").and_then(Value::as_str) {
            note_served(&mut self.served, "groq_id", id);
        }
        if let Some(seed) = groq.get("seed").filter(|s| s.is_number()) {
            note_served(&mut self.served, "groq_seed", &seed.to_string());
        }
        let groq_usage = groq
            .get("usage")
            .and_then(|u| serde_json::from_value::<WireUsage>(u.clone()).ok());
        let usage = reply.usage.as_ref().and_then(WireUsage::usage);
        if let Some(usage) = usage.or_else(|| groq_usage.as_ref().and_then(WireUsage::usage)) {
            self.usage = Some(usage);
        }
        // n is never sent, so only choice 0 exists; anything else is ignored.
        for choice in reply.choices.iter().filter(|c| c.index == 0) {
            let content = message(choice)
                .and_then(|m| m.content.as_deref())
                .unwrap_or("");
            self.text.push_str(content);
            let token_logprobs = choice.logprobs.as_ref().and_then(|l| l.content.as_ref());
            match token_logprobs {
                Some(list) => {
                    for t in list {
                        self.tokens.push(t.token.clone(), t.logprob);
                    }
                }
                None if !content.is_empty() => self.tokens.missing(),
                None => {}
            }
            if let Some(reason) = &choice.finish_reason {
                self.finish_reason = Some(reason.clone());
            }
        }
    }

    fn reply(mut self) -> Reply {
        // vLLM's fingerprint spells out what served; the raw value stays beside its parts.
        let fingerprint = self.served.get("system_fingerprint");
        let parts = fingerprint.map(|f| identity::vllm_fingerprint(f));
        for (key, value) in parts.into_iter().flatten() {
            self.served.entry(key).or_insert(value);
        }
        let (tokens, logprobs) = self.tokens.keep(self.want_logprobs, &self.text);
        Reply {
            text: self.text,
            tokens,
            logprobs,
            finish_reason: self.finish_reason,
            usage: self.usage,
            served: self.served,
            ttft: self.ttft,
            rate_limit: Default::default(),
        }
    }

    fn failure(&self, class: ErrorClass, what: String) -> CallFailure {
        crate::providers::http::failure(&self.provider, class, what)
    }

    fn malformed(&self, e: &serde_json::Error) -> CallFailure {
        self.failure(
            ErrorClass::MalformedResponse,
            format!("sent a reply that is not the expected JSON ({e})"),
        )
    }

    /// The error a reply (or chunk) reports despite its HTTP 200: an `error` object, or Groq's
    /// `x_groq.error`, why it stopped the stream early.
    fn reported_error(&self, reply: &mut Completion) -> Option<CallFailure> {
        if reply.error.is_some() {
            return Some(self.stream_error(reply.error.take()));
        }
        let stopped = reply
            .x_groq
            .get("error")
            .and_then(Value::as_str)
            .filter(|e| !e.trim().is_empty())?;
        Some(self.failure(
            ErrorClass::Server,
            format!("stopped the reply early: {}", excerpt(stopped)),
        ))
    }

    /// An error sent after the success status (`data: {"error": …}`, as gateways such as
    /// LiteLLM send an upstream's failure). Before any text or finish reason nothing was
    /// produced, so it may be retried as a 5xx would be; after, never.
    fn stream_error(&self, error: Option<WireError>) -> CallFailure {
        let said = error
            .and_then(|e| e.message)
            .map(|m| format!(": {}", excerpt(&m)))
            .unwrap_or_default();
        let failure = self.failure(
            ErrorClass::Server,
            format!("reported an error mid-reply{said}"),
        );
        if self.text.is_empty() && self.finish_reason.is_none() {
            failure.before_content()
        } else {
            failure
        }
    }
}

impl Assemble for Assembly {
    /// The reply of a non-streamed call.
    fn whole(mut self, body: &[u8]) -> Result<Reply, CallFailure> {
        let mut reply: Completion = serde_json::from_slice(body).map_err(|e| self.malformed(&e))?;
        if let Some(failure) = self.reported_error(&mut reply) {
            return Err(failure);
        }
        if !reply
            .choices
            .iter()
            .any(|c| c.index == 0 && c.message.is_some())
        {
            return Err(self.failure(
                ErrorClass::MalformedResponse,
                "returned no choices[0].message".into(),
            ));
        }
        self.absorb(reply, |c| c.message.as_ref());
        Ok(self.reply())
    }

    /// Takes one streamed event's data.
    fn event(&mut self, data: &str, elapsed: &dyn Fn() -> Duration) -> Result<(), CallFailure> {
        if data.trim() == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let mut chunk: Completion = serde_json::from_str(data).map_err(|e| self.malformed(&e))?;
        if let Some(failure) = self.reported_error(&mut chunk) {
            return Err(failure);
        }
        let first = self.text.is_empty();
        self.absorb(chunk, |c| c.delta.as_ref());
        if first && !self.text.is_empty() {
            self.ttft = Some(elapsed());
        }
        Ok(())
    }

    /// The stream ended (cleanly or not); `cut` says the connection failed or an event was
    /// left half-sent.
    fn end_of_stream(self, cut: Option<String>) -> Result<Reply, CallFailure> {
        if self.done {
            return Ok(self.reply());
        }
        match cut {
            Some(why) => Err(self.failure(
                ErrorClass::TruncatedStream,
                format!("stream cut before its end: {why}"),
            )),
            None if self.finish_reason.is_some() => Ok(self.reply()),
            None => Err(self.failure(
                ErrorClass::TruncatedStream,
                "stream ended without a finish reason or [DONE]".into(),
            )),
        }
    }

    fn done(&self) -> bool {
        self.done
    }
}

/// An error body (`{"error": {"message", "type", "param", "code"}}`) read for
/// `http::status::classify`; a body of another shape is only its text.
pub fn server_error(body: &[u8]) -> ServerError {
    let parsed = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.error);
    let (message, param) = match parsed {
        Some(e) => (e.message, e.param.filter(|p| !p.is_empty())),
        None => (None, None),
    };
    ServerError {
        message: Some(message.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())),
        param,
        ..ServerError::default()
    }
}
