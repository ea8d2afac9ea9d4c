//! The `generateContent` wire format, read: a `GenerateContentResponse` (whole, or streamed as
//! server-sent events each carrying a partial response) into a `Reply`, and `google.rpc.Status`
//! error bodies into what `http::status` classifies. No I/O here.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::providers::http::status::{Reason, ServerError};
use crate::providers::http::{excerpt, named_parameter, Assemble, TokenLog};
use crate::providers::{note_served, CallFailure, Reply};
use crate::record::{ErrorClass, Usage};

/// A whole response, or one streamed event (each carries the text generated since the last).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    #[serde(default)]
    candidates: Vec<Candidate>,
    usage_metadata: Option<UsageMetadata>,
    model_version: Option<String>,
    response_id: Option<String>,
    prompt_feedback: Option<PromptFeedback>,
    /// An error sent as an event after HTTP 200.
    error: Option<Status>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    index: u32,
    content: Option<Content>,
    finish_reason: Option<String>,
    logprobs_result: Option<LogprobsResult>,
}

#[derive(Debug, Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
struct Part {
    text: Option<String>,
    /// A thinking model's thought summary: not the answer.
    #[serde(default)]
    thought: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogprobsResult {
    #[serde(default)]
    chosen_candidates: Vec<Chosen>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chosen {
    token: Option<String>,
    log_probability: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    /// Tokens a thinking model spent before answering (billed as output).
    thoughts_token_count: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: Status,
}

/// `google.rpc.Status`.
#[derive(Debug, Default, Deserialize)]
struct Status {
    message: Option<String>,
    status: Option<String>,
    #[serde(default)]
    details: Vec<Value>,
}

/// A reply being assembled: from one whole body, or from events as they arrive.
#[derive(Debug)]
pub struct Assembly {
    provider: String,
    want_logprobs: bool,
    text: String,
    tokens: TokenLog,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    served: BTreeMap<String, String>,
    ttft: Option<Duration>,
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
        }
    }

    fn absorb(&mut self, response: Response) -> Result<(), CallFailure> {
        if let Some(error) = response.error {
            let said = error
                .message
                .map(|m| format!(": {}", excerpt(&m)))
                .unwrap_or_default();
            return Err(self.failure(
                ErrorClass::Server,
                format!("reported an error mid-reply{said}"),
            ));
        }
        let ids = [
            ("model", response.model_version),
            ("response_id", response.response_id),
        ];
        for (key, value) in ids {
            if let Some(value) = value {
                note_served(&mut self.served, key, &value);
            }
        }
        if let Some(u) = response.usage_metadata {
            // Every event may carry it; the last is the whole call's.
            if let (Some(prompt), Some(candidates)) =
                (u.prompt_token_count, u.candidates_token_count)
            {
                self.usage = Some(Usage {
                    prompt_tokens: prompt,
                    completion_tokens: candidates + u.thoughts_token_count.unwrap_or(0),
                    reasoning_tokens: u.thoughts_token_count,
                });
            }
        }
        let blocked = response.prompt_feedback.and_then(|f| f.block_reason);
        if let (Some(reason), true) = (blocked, response.candidates.is_empty()) {
            return Err(self.failure(
                ErrorClass::Other,
                format!("blocked the prompt ({})", excerpt(&reason)),
            ));
        }
        // candidateCount is never sent, so only candidate 0 exists.
        for candidate in response.candidates.into_iter().filter(|c| c.index == 0) {
            let text: String = candidate
                .content
                .map(|c| c.parts)
                .unwrap_or_default()
                .into_iter()
                .filter(|p| !p.thought)
                .filter_map(|p| p.text)
                .collect();
            match candidate.logprobs_result {
                Some(result) => {
                    for chosen in result.chosen_candidates {
                        match chosen.token {
                            Some(token) => self.tokens.push(token, chosen.log_probability),
                            None => self.tokens.missing(),
                        }
                    }
                }
                None if !text.is_empty() => self.tokens.missing(),
                None => {}
            }
            self.text.push_str(&text);
            if let Some(reason) = candidate.finish_reason {
                self.finish_reason = Some(finish_reason(&reason));
            }
        }
        Ok(())
    }

    fn reply(self) -> Reply {
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

    fn parse(&self, data: &[u8]) -> Result<Response, CallFailure> {
        serde_json::from_slice(data).map_err(|e| {
            self.failure(
                ErrorClass::MalformedResponse,
                format!("sent a reply that is not the expected JSON ({e})"),
            )
        })
    }
}

impl Assemble for Assembly {
    fn whole(mut self, body: &[u8]) -> Result<Reply, CallFailure> {
        let response = self.parse(body)?;
        self.absorb(response)?;
        // Text without a finish reason is a reply whose ending is unknown (recorded replies
        // have it); neither is no reply at all.
        if self.finish_reason.is_none() && self.text.is_empty() {
            return Err(self.failure(
                ErrorClass::MalformedResponse,
                "returned neither text nor candidates[0].finishReason".into(),
            ));
        }
        Ok(self.reply())
    }

    fn event(&mut self, data: &str, elapsed: &dyn Fn() -> Duration) -> Result<(), CallFailure> {
        let response = self.parse(data.as_bytes())?;
        let first = self.text.is_empty();
        self.absorb(response)?;
        if first && !self.text.is_empty() {
            self.ttft = Some(elapsed());
        }
        Ok(())
    }

    /// Gemini's stream has no end marker: it ends when the last event (the one with the
    /// finish reason) has been sent and the body closes.
    fn done(&self) -> bool {
        false
    }

    fn end_of_stream(self, cut: Option<String>) -> Result<Reply, CallFailure> {
        match cut {
            Some(why) => Err(self.failure(
                ErrorClass::TruncatedStream,
                format!("stream cut before its end: {why}"),
            )),
            None if self.finish_reason.is_some() => Ok(self.reply()),
            None => Err(self.failure(
                ErrorClass::TruncatedStream,
                "stream ended without a finish reason".into(),
            )),
        }
    }
}

/// Gemini's finish reasons in the words the other providers use: `STOP` is `stop`,
/// `MAX_TOKENS` is `length`; the rest (`SAFETY`, `RECITATION`, …) lower-cased.
pub fn finish_reason(reason: &str) -> String {
    match reason {
        "STOP" => "stop".into(),
        "MAX_TOKENS" => "length".into(),
        other => excerpt(&other.to_ascii_lowercase()),
    }
}

/// `RetryInfo.retryDelay` (a duration string such as `"37s"` or `"3.957525076s"`) among a
/// status's details: Gemini sends no Retry-After header.
fn retry_delay(details: &[Value]) -> Option<Duration> {
    details
        .iter()
        .filter(|d| {
            d["@type"]
                .as_str()
                .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"))
        })
        .find_map(|d| d["retryDelay"].as_str())
        .and_then(|s| s.trim().strip_suffix('s')?.parse::<f64>().ok())
        .and_then(crate::providers::http::server_seconds)
}

/// The `ErrorInfo.reason` among a status's details (`API_KEY_INVALID`, …).
fn error_reason(details: &[Value]) -> Option<&str> {
    details
        .iter()
        .filter(|d| {
            d["@type"]
                .as_str()
                .is_some_and(|t| t.ends_with("google.rpc.ErrorInfo"))
        })
        .find_map(|d| d["reason"].as_str())
}

/// A `google.rpc.Status` error body read for `http::status::classify`; `sent` are the
/// generation parameters the request carried, in the wire's spelling (`topP`), to tell a
/// refused one. A body of another shape is only its text.
pub fn server_error(body: &[u8], sent: &[&str]) -> ServerError {
    let error = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.error)
        .unwrap_or_else(|_| Status {
            message: Some(String::from_utf8_lossy(body).into_owned()),
            ..Status::default()
        });
    let message = error.message.as_deref().unwrap_or("");
    // Gemini names fields in either spelling: `topP` or `generation_config.top_p`.
    let param = named_parameter(message, sent).or_else(|| {
        sent.iter()
            .find(|name| named_parameter(message, &[snake(name).as_str()]).is_some())
            .copied()
    });
    // A wrong key is a 400 INVALID_ARGUMENT whose detail says API_KEY_INVALID.
    let bad_key = error_reason(&error.details).is_some_and(|r| r.starts_with("API_KEY"));
    ServerError {
        param: param.map(str::to_string),
        reason: bad_key.then_some(Reason::BadKey),
        retry_in: retry_delay(&error.details),
        kind: error.status,
        message: error.message,
        ..ServerError::default()
    }
}

/// `topP` → `top_p`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
