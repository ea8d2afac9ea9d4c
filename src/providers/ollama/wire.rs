//! Ollama's native wire format, read: `/api/chat` replies (one object, or NDJSON objects line
//! by line, with their tokens' log-probabilities where asked) into a `Reply`, error bodies
//! into what `http::status` classifies, and the `/api/tags` and `/api/version` identity
//! answers. No I/O here.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::providers::http::status::{Reason, ServerError};
use crate::providers::http::{excerpt, Assemble, TokenLog};
use crate::providers::{note_served, CallFailure, Reply};
use crate::record::{ErrorClass, Usage};

/// A whole reply, or one streamed line; the last has `done: true` and the counters.
#[derive(Debug, Deserialize)]
struct ChatObject {
    model: Option<String>,
    message: Option<Message>,
    #[serde(default)]
    done: bool,
    done_reason: Option<String>,
    prompt_eval_count: Option<u64>,
    eval_count: Option<u64>,
    /// Set when a cloud model was proxied (identity: where it actually ran).
    remote_model: Option<String>,
    remote_host: Option<String>,
    /// Ollama's errors are `{"error": "text"}`; a proxy's may be an object.
    error: Option<Value>,
    /// When asked (`"logprobs": true`, Ollama 0.12.11 and later): one entry per token of this
    /// object's content, `{token, logprob, bytes, top_logprobs}`. Read leniently.
    #[serde(default)]
    logprobs: Value,
}

#[derive(Debug, Deserialize)]
struct Message {
    content: Option<String>,
}

/// A reply being assembled: from one whole body, or from NDJSON lines as they arrive.
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
    /// The final `done: true` object was seen.
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

    fn absorb(&mut self, object: ChatObject) -> Result<(), CallFailure> {
        if let Some(error) = &object.error {
            return Err(self.failure(
                ErrorClass::Server,
                format!("reported an error mid-reply: {}", error_text(error)),
            ));
        }
        let ids = [
            ("model", &object.model),
            ("remote_model", &object.remote_model),
            ("remote_host", &object.remote_host),
        ];
        for (key, value) in ids {
            if let Some(value) = value {
                note_served(&mut self.served, key, value);
            }
        }
        let content = object.message.and_then(|m| m.content).unwrap_or_default();
        match object.logprobs.as_array() {
            Some(list) => {
                for entry in list {
                    match entry.get("token").and_then(Value::as_str) {
                        Some(token) => self.tokens.push(
                            token.to_string(),
                            entry.get("logprob").and_then(Value::as_f64),
                        ),
                        None => self.tokens.missing(),
                    }
                }
            }
            None if !content.is_empty() => self.tokens.missing(),
            None => {}
        }
        self.text.push_str(&content);
        if object.done {
            self.done = true;
            self.finish_reason = object.done_reason;
            // Both counts or none: a usage with a made-up zero would be a false measurement.
            if let (Some(prompt), Some(completion)) = (object.prompt_eval_count, object.eval_count)
            {
                self.usage = Some(Usage {
                    prompt_tokens: prompt,
                    completion_tokens: completion,
                    reasoning_tokens: None,
                });
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

    fn malformed(&self, e: &serde_json::Error) -> CallFailure {
        self.failure(
            ErrorClass::MalformedResponse,
            format!("sent a line that is not the expected JSON ({e})"),
        )
    }
}

/// The text of an `error` value: Ollama's string, or a proxy's `{"message": …}`.
fn error_text(error: &Value) -> String {
    match error {
        Value::String(s) => excerpt(s),
        Value::Object(o) => match o.get("message") {
            Some(Value::String(s)) => excerpt(s),
            _ => excerpt(&error.to_string()),
        },
        other => excerpt(&other.to_string()),
    }
}

impl Assemble for Assembly {
    /// The reply of a non-streamed call (`stream: false`): one object with `done: true`.
    fn whole(mut self, body: &[u8]) -> Result<Reply, CallFailure> {
        let object: ChatObject = serde_json::from_slice(body).map_err(|e| self.malformed(&e))?;
        self.absorb(object)?;
        if !self.done {
            return Err(self.failure(
                ErrorClass::MalformedResponse,
                "returned a reply without done: true".into(),
            ));
        }
        Ok(self.reply())
    }

    /// Takes one streamed line.
    fn event(&mut self, line: &str, elapsed: &dyn Fn() -> Duration) -> Result<(), CallFailure> {
        let object: ChatObject = serde_json::from_str(line).map_err(|e| self.malformed(&e))?;
        let first = self.text.is_empty();
        self.absorb(object)?;
        if first && !self.text.is_empty() {
            self.ttft = Some(elapsed());
        }
        Ok(())
    }

    /// The stream ended (cleanly or not); `cut` says why the connection failed, if it did.
    fn end_of_stream(self, cut: Option<String>) -> Result<Reply, CallFailure> {
        if self.done {
            return Ok(self.reply());
        }
        Err(match cut {
            Some(why) => self.failure(
                ErrorClass::TruncatedStream,
                format!("stream cut before its end: {why}"),
            ),
            None => self.failure(
                ErrorClass::TruncatedStream,
                "stream ended without its final done: true line".into(),
            ),
        })
    }

    fn done(&self) -> bool {
        self.done
    }
}

/// An `/api/chat` error body (`{"error": "text"}`) read for `http::status::classify`: `model`
/// is the requested model (named when the server does not have it), `options` the option
/// names that were sent (a message quoting one refused it). A body of another shape is only
/// its text.
pub fn server_error(body: &[u8], model: &str, options: &[&str]) -> ServerError {
    let server_says = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").map(error_text))
        .unwrap_or_else(|| excerpt(&String::from_utf8_lossy(body)));
    let lower = server_says.to_ascii_lowercase();
    let param = options
        .iter()
        .find(|o| lower.contains(&format!("\"{o}\"")) || lower.contains(&format!("'{o}'")));
    let missing = lower.contains("model") && lower.contains("not found");
    ServerError {
        param: param.map(|o| o.to_string()),
        reason: missing.then(|| Reason::MissingModel {
            model: model.to_string(),
            remedy: format!("pull it with `ollama pull {}`", excerpt(model)),
        }),
        // Already an excerpt, which excerpting again leaves as it is.
        message: Some(server_says),
        ..ServerError::default()
    }
}

/// `model` as `/api/tags` lists it: a name without a tag means `:latest` (a `:` before the
/// last `/` is a registry port, not a tag).
pub fn full_name(model: &str) -> String {
    let last = model.rsplit('/').next().unwrap_or(model);
    if last.contains(':') {
        model.to_string()
    } else {
        format!("{model}:latest")
    }
}

#[derive(Debug, Deserialize)]
struct Tags {
    #[serde(default)]
    models: Vec<TagModel>,
}

#[derive(Debug, Deserialize)]
struct TagModel {
    name: Option<String>,
    model: Option<String>,
    digest: Option<String>,
}

/// Every model a `/api/tags` answer lists, as (name, digest); Err: not the expected JSON.
pub fn listed(body: &[u8]) -> Result<Vec<(String, Option<String>)>, String> {
    let tags: Tags = serde_json::from_slice(body)
        .map_err(|e| format!("/api/tags is not the expected JSON ({e})"))?;
    Ok(tags
        .models
        .into_iter()
        .filter_map(|m| {
            let name = m.name.or(m.model)?;
            Some((
                name,
                m.digest.filter(|d| !d.is_empty()).map(|d| excerpt(&d)),
            ))
        })
        .collect())
}

/// The listed name and digest of `model` in a `/api/tags` answer; `Ok(None)` when it is not
/// listed with a digest (a model not pulled yet). Err: not the expected JSON.
pub fn digest_of(body: &[u8], model: &str) -> Result<Option<(String, String)>, String> {
    let wanted = full_name(model);
    Ok(listed(body)?
        .into_iter()
        .find_map(|(name, digest)| (full_name(&name) == wanted).then_some((name, digest?))))
}

#[derive(Debug, Deserialize)]
struct Version {
    version: String,
}

/// The server version from a `/api/version` answer.
pub fn version_of(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Version>(body)
        .ok()
        .map(|v| excerpt(&v.version))
        .filter(|v| !v.is_empty())
}
