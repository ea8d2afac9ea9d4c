//! The call record: one per call attempt. Produced by the runner (or read back from an
//! archive), appended by the archive writer, folded by the analysis engine.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One call attempt, exactly as archived.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct CallRecord {
    /// Target name as given in the protocol (unique within a session).
    pub target: String,
    /// Item name as given in the protocol (unique within a session).
    pub item: String,
    /// Index of the planned call within (target, item): 0-based, warm-up calls first.
    pub call: u32,
    /// 1-based attempt number for this planned call (retries add attempts).
    pub attempt: u32,
    /// Warm-up calls are archived but excluded from every measure.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warmup: bool,
    /// This attempt failed and another attempt of the same call follows: archived, counted as
    /// a retry, never as the call's outcome.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retried: bool,
    pub timing: Timing,
    pub status: CallStatus,
    /// Present when `status` is `error` (and for `cancelled`, with class `cancelled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CallError>,
    /// The generated text, for successful calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Tokens as the backend produced them (their concatenation is `output`), where given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Vec<String>>,
    /// Log-probability of each token in `tokens`, where given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Vec<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// What the server says served this call (model, revision, fingerprint, response id, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub served: BTreeMap<String, String>,
    /// The provider's rate-limit headers on this attempt's response (`x-ratelimit-*`,
    /// `anthropic-ratelimit-*`, `retry-after`), lower-cased, where it sent any.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rate_limit: BTreeMap<String, String>,
}

/// Milliseconds, measured from the session start (monotonic clock).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Timing {
    /// When the attempt was sent.
    pub start_ms: f64,
    /// Time to first token, where the backend streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Time from send to the last byte (or the error).
    pub latency_ms: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Ok,
    Error,
    Cancelled,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct CallError {
    pub class: ErrorClass,
    /// One sentence; never contains a secret.
    pub message: String,
}

/// Error classes, shown and counted by class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Auth,
    RateLimit,
    Server,
    Timeout,
    Connection,
    TruncatedStream,
    MalformedResponse,
    RefusedParameter,
    Cancelled,
    Other,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Auth => "auth",
            ErrorClass::RateLimit => "rate_limit",
            ErrorClass::Server => "server",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Connection => "connection",
            ErrorClass::TruncatedStream => "truncated_stream",
            ErrorClass::MalformedResponse => "malformed_response",
            ErrorClass::RefusedParameter => "refused_parameter",
            ErrorClass::Cancelled => "cancelled",
            ErrorClass::Other => "other",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Tokens the model spent reasoning, where the provider counts them apart
    /// (`completion_tokens_details.reasoning_tokens`, Gemini's `thoughtsTokenCount`), as it
    /// counts them. Whether `completion_tokens` includes them is the provider's choice: OpenAI's
    /// does, xAI's does not, and for Gemini reprise adds them in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
}

impl CallRecord {
    /// A successful record with the essentials; used by tests, benches and importers.
    pub fn ok(target: &str, item: &str, call: u32, output: &str, latency_ms: f64) -> Self {
        CallRecord {
            target: target.to_string(),
            item: item.to_string(),
            call,
            attempt: 1,
            warmup: false,
            retried: false,
            timing: Timing {
                start_ms: 0.0,
                ttft_ms: None,
                latency_ms,
            },
            status: CallStatus::Ok,
            error: None,
            output: Some(output.to_string()),
            tokens: None,
            logprobs: None,
            finish_reason: None,
            usage: None,
            served: BTreeMap::new(),
            rate_limit: BTreeMap::new(),
        }
    }

    /// A failed record of the given class.
    pub fn failed(target: &str, item: &str, call: u32, class: ErrorClass, message: &str) -> Self {
        let mut r = CallRecord::ok(target, item, call, "", 0.0);
        r.output = None;
        r.status = if class == ErrorClass::Cancelled {
            CallStatus::Cancelled
        } else {
            CallStatus::Error
        };
        r.error = Some(CallError {
            class,
            message: message.to_string(),
        });
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json() {
        let mut r = CallRecord::ok("local", "q1", 3, "Paris.", 12.5);
        r.tokens = Some(vec!["Paris".into(), ".".into()]);
        r.served.insert("model".into(), "reprise-local".into());
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""status":"ok""#), "{json}");
        let back: CallRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);

        let e = CallRecord::failed("local", "q1", 4, ErrorClass::RateLimit, "429");
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains(r#""class":"rate_limit""#), "{json}");
        assert_eq!(serde_json::from_str::<CallRecord>(&json).unwrap(), e);
    }

    #[test]
    fn usage_without_reasoning_tokens_reads_and_writes_as_before() {
        // A record archived before reasoning tokens were counted: the same bytes both ways.
        let old = r#"{"prompt_tokens":12,"completion_tokens":3}"#;
        let usage: Usage = serde_json::from_str(old).unwrap();
        assert_eq!(usage.reasoning_tokens, None);
        assert_eq!(serde_json::to_string(&usage).unwrap(), old);
        let new = Usage {
            reasoning_tokens: Some(290),
            ..usage
        };
        assert_eq!(
            serde_json::to_string(&new).unwrap(),
            r#"{"prompt_tokens":12,"completion_tokens":3,"reasoning_tokens":290}"#
        );
    }
}
