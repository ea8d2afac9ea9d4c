//! The Messages wire format, read: replies (whole, or streamed as named events) into a
//! `Reply`, and error bodies (`{"type":"error","error":{"type","message"}}`) into what
//! `http::status` classifies. No I/O here.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

pub use crate::providers::http::named_parameter;
use crate::providers::http::status::ServerError;
use crate::providers::http::{excerpt, Assemble};
use crate::providers::{note_served, CallFailure, Reply};
use crate::record::{ErrorClass, Usage};

/// A whole `Message`, or the `message` of a streamed `message_start`.
#[derive(Debug, Deserialize)]
struct Message {
    id: Option<String>,
    model: Option<String>,
    #[serde(default)]
    content: Vec<Block>,
    stop_reason: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

/// Anthropic's `input_tokens` leaves out what the prompt cache wrote or read; all three
/// together are the prompt.
#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    service_tier: Option<String>,
    inference_geo: Option<String>,
}

/// One streamed event's data; its `type` repeats the event's name.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    MessageStart {
        message: Message,
    },
    ContentBlockStart {
        content_block: Block,
    },
    ContentBlockDelta {
        delta: Delta,
    },
    MessageDelta {
        delta: StopDelta,
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error {
        error: WireError,
    },
    /// `ping`, `content_block_stop` and any event type added later (the API asks clients to
    /// ignore those).
    #[serde(other)]
    Ignored,
}

#[derive(Debug, Deserialize)]
struct Delta {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StopDelta {
    stop_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: WireError,
}

#[derive(Debug, Default, Deserialize)]
struct WireError {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<String>,
}

/// A reply being assembled: from one whole body, or from events as they arrive.
#[derive(Debug)]
pub struct Assembly {
    provider: String,
    /// The sampling parameters the request carried, to tell a refused one from other 400s.
    sent: Vec<&'static str>,
    text: String,
    finish_reason: Option<String>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    served: BTreeMap<String, String>,
    pub ttft: Option<Duration>,
    /// A content block (text, thinking, tool use) has begun: the model is at work.
    begun: bool,
    /// `message_stop` was seen.
    pub done: bool,
}

impl Assembly {
    pub fn new(provider: &str, sent: Vec<&'static str>) -> Self {
        Assembly {
            provider: provider.to_string(),
            sent,
            text: String::new(),
            finish_reason: None,
            input_tokens: None,
            output_tokens: None,
            served: BTreeMap::new(),
            ttft: None,
            begun: false,
            done: false,
        }
    }

    fn start(&mut self, message: &Message) {
        let ids = [("model", &message.model), ("response_id", &message.id)];
        for (key, value) in ids {
            if let Some(value) = value {
                note_served(&mut self.served, key, value);
            }
        }
        if let Some(u) = &message.usage {
            self.usage(u);
        }
    }

    fn usage(&mut self, u: &WireUsage) {
        if let Some(input) = u.input_tokens {
            let cached =
                u.cache_creation_input_tokens.unwrap_or(0) + u.cache_read_input_tokens.unwrap_or(0);
            self.input_tokens = Some(input + cached);
        }
        if let Some(output) = u.output_tokens {
            self.output_tokens = Some(output);
        }
        for (key, value) in [
            ("service_tier", &u.service_tier),
            ("inference_geo", &u.inference_geo),
        ] {
            if let Some(value) = value {
                note_served(&mut self.served, key, value);
            }
        }
    }

    fn block_text(&mut self, block: &Block) {
        if block.kind == "text" {
            self.text.push_str(block.text.as_deref().unwrap_or(""));
        }
    }

    fn stop(&mut self, stop_reason: Option<&str>) {
        if let Some(reason) = stop_reason {
            self.finish_reason = Some(finish_reason(reason));
        }
    }

    fn reply(self) -> Reply {
        let usage = match (self.input_tokens, self.output_tokens) {
            (Some(prompt_tokens), Some(completion_tokens)) => Some(Usage {
                prompt_tokens,
                completion_tokens,
                reasoning_tokens: None,
            }),
            _ => None,
        };
        // The Messages API has no log-probabilities, so no tokens either.
        Reply {
            text: self.text,
            tokens: None,
            logprobs: None,
            finish_reason: self.finish_reason,
            usage,
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

    /// An error that arrived after the success status (an `error` event), so no HTTP status
    /// to go by: its type decides. Before any content block it is as if the status had said
    /// it (`overloaded_error` is then retried as a 529 would be); after, never.
    fn event_error(&self, error: WireError) -> CallFailure {
        let kind = error.kind.as_deref().unwrap_or("");
        let class = match class_of_type(kind) {
            ErrorClass::Other => refused_or_other(kind, error.message.as_deref(), &self.sent),
            class => class,
        };
        let label = if kind.is_empty() {
            String::new()
        } else {
            format!(" ({})", excerpt(kind))
        };
        let said = crate::providers::http::status::said(error.message.as_deref());
        let failure = self.failure(class, format!("reported an error mid-reply{label}{said}"));
        if self.begun {
            failure
        } else {
            failure.before_content()
        }
    }
}

impl Assemble for Assembly {
    /// The reply of a non-streamed call.
    fn whole(mut self, body: &[u8]) -> Result<Reply, CallFailure> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| self.malformed(&e))?;
        if value.get("type").and_then(|t| t.as_str()) == Some("error") {
            let error: ErrorBody = serde_json::from_value(value).map_err(|e| self.malformed(&e))?;
            return Err(self.event_error(error.error));
        }
        let message: Message = serde_json::from_value(value).map_err(|e| self.malformed(&e))?;
        if message.stop_reason.is_none() && message.content.is_empty() {
            return Err(self.failure(
                ErrorClass::MalformedResponse,
                "returned a message with neither content nor a stop_reason".into(),
            ));
        }
        self.start(&message);
        for block in &message.content {
            self.block_text(block);
        }
        self.stop(message.stop_reason.as_deref());
        Ok(self.reply())
    }

    /// Takes one streamed event's data; `elapsed` is read when the first text arrives.
    fn event(&mut self, data: &str, elapsed: &dyn Fn() -> Duration) -> Result<(), CallFailure> {
        let event: Event = serde_json::from_str(data).map_err(|e| self.malformed(&e))?;
        let had_text = !self.text.is_empty();
        match event {
            Event::MessageStart { message } => self.start(&message),
            Event::ContentBlockStart { content_block } => {
                self.begun = true;
                self.block_text(&content_block);
            }
            Event::ContentBlockDelta { delta } => {
                self.begun = true;
                // thinking, signature, tool-input and citation deltas are not the answer.
                if delta.kind == "text_delta" {
                    self.text.push_str(delta.text.as_deref().unwrap_or(""));
                }
            }
            Event::MessageDelta { delta, usage } => {
                self.stop(delta.stop_reason.as_deref());
                if let Some(u) = usage {
                    // Cumulative: the last one counts.
                    self.usage(&u);
                }
            }
            Event::MessageStop => self.done = true,
            Event::Error { error } => return Err(self.event_error(error)),
            Event::Ignored => {}
        }
        if !had_text && !self.text.is_empty() {
            self.ttft = Some(elapsed());
        }
        Ok(())
    }

    /// The stream ended; `cut` says the connection failed or an event was left half-sent.
    /// Only `message_stop` completes a reply: Anthropic always sends it.
    fn end_of_stream(self, cut: Option<String>) -> Result<Reply, CallFailure> {
        if self.done {
            return Ok(self.reply());
        }
        let why = match cut {
            Some(why) => format!("stream cut before its end: {why}"),
            None => "stream ended without message_stop".into(),
        };
        Err(self.failure(ErrorClass::TruncatedStream, why))
    }

    fn done(&self) -> bool {
        self.done
    }
}

/// Anthropic's stop reasons in the words the other providers use: `end_turn` and
/// `stop_sequence` are `stop`, `max_tokens` is `length`; the rest (`tool_use`, `refusal`,
/// `pause_turn`, …) are kept as they are.
pub fn finish_reason(stop_reason: &str) -> String {
    match stop_reason {
        "end_turn" | "stop_sequence" => "stop",
        "max_tokens" => "length",
        other => other,
    }
    .to_string()
}

/// The class an error `type` stands for (used for `error` events, and for statuses the API
/// does not document).
fn class_of_type(kind: &str) -> ErrorClass {
    match kind {
        "authentication_error" | "permission_error" => ErrorClass::Auth,
        "rate_limit_error" => ErrorClass::RateLimit,
        "api_error" | "overloaded_error" => ErrorClass::Server,
        "timeout_error" => ErrorClass::Timeout,
        _ => ErrorClass::Other,
    }
}

/// An `invalid_request_error` whose message names a sampling parameter that was sent
/// (`temperature` and `top_p` cannot both be specified…) is that parameter refused.
fn refused_or_other(kind: &str, message: Option<&str>, sent: &[&str]) -> ErrorClass {
    if kind == "invalid_request_error" && named_parameter(message.unwrap_or(""), sent).is_some() {
        ErrorClass::RefusedParameter
    } else {
        ErrorClass::Other
    }
}

/// An error body (`{"type":"error","error":{"type","message"}}`) read for
/// `http::status::classify`; `sent` are the sampling parameters the request carried, to tell
/// a refused one. A body of another shape is only its text.
pub fn server_error(body: &[u8], sent: &[&str]) -> ServerError {
    let (kind, message) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => (b.error.kind.filter(|k| !k.is_empty()), b.error.message),
        Err(_) => (None, Some(String::from_utf8_lossy(body).into_owned())),
    };
    ServerError {
        param: named_parameter(message.as_deref().unwrap_or(""), sent).map(str::to_string),
        class: kind.as_deref().map(class_of_type),
        kind,
        message,
        ..ServerError::default()
    }
}
