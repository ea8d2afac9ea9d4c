//! The Gemini wire format without I/O: the body sent, replies read, errors classified.
//! tests/gemini.rs drives the same paths through a loopback server.

use std::time::Duration;

use serde_json::json;

use super::wire::{finish_reason, server_error, Assembly};
use super::*;
use crate::protocol::Params;
use crate::providers::http::Assemble;
use crate::record::{ErrorClass, Usage};

fn backend(stream: bool, logprobs: bool) -> GeminiBackend {
    let mut s = Settings::new("gem", "http://127.0.0.1:9/v1beta/", "gemini-2.0-flash");
    s.stream = stream;
    s.logprobs = logprobs;
    GeminiBackend::new(s).unwrap()
}

fn request(params: Params) -> ChatRequest {
    ChatRequest {
        system: Some("Answer in one word.".into()),
        user: "Capital of France?".into(),
        params,
    }
}

#[test]
fn the_body_carries_only_what_the_protocol_set_in_gemini_spelling() {
    let params = Params {
        temperature: Some(0.0),
        top_p: Some(0.9),
        top_k: Some(40),
        max_tokens: Some(64),
        seed: Some(7),
        stop: vec!["\n\n".into()],
    };
    let body = backend(true, true).request_body(&request(params));
    assert_eq!(
        body,
        json!({
            "contents": [{"role": "user", "parts": [{"text": "Capital of France?"}]}],
            "systemInstruction": {"parts": [{"text": "Answer in one word."}]},
            "generationConfig": {"temperature": 0.0, "topP": 0.9, "topK": 40,
                "maxOutputTokens": 64, "seed": 7, "stopSequences": ["\n\n"],
                "responseLogprobs": true}
        })
    );
    let bare = backend(false, false).request_body(&ChatRequest {
        system: None,
        user: "Hi".into(),
        params: Params::default(),
    });
    assert_eq!(
        bare,
        json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]})
    );
}

#[test]
fn the_endpoint_names_the_model_and_the_method() {
    assert_eq!(
        backend(true, false).endpoint(),
        "http://127.0.0.1:9/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        backend(false, false).endpoint(),
        "http://127.0.0.1:9/v1beta/models/gemini-2.0-flash:generateContent"
    );
    let mut s = Settings::new("gem", "http://h/v1beta", "models/tuned/a b?");
    s.stream = false;
    assert_eq!(
        GeminiBackend::new(s).unwrap().endpoint(),
        "http://h/v1beta/models/tuned%2Fa%20b%3F:generateContent"
    );
}

fn whole_body() -> serde_json::Value {
    json!({
        "candidates": [{
            "content": {"role": "model", "parts": [{"text": "Par"}, {"text": "is."}]},
            "finishReason": "STOP", "index": 0, "avgLogprobs": -0.01,
            "logprobsResult": {
                "topCandidates": [],
                "chosenCandidates": [
                    {"token": "Par", "tokenId": 1, "logProbability": -0.25},
                    {"token": "is.", "tokenId": 2, "logProbability": -0.5}
                ]
            }
        }],
        "usageMetadata": {"promptTokenCount": 14, "candidatesTokenCount": 2, "totalTokenCount": 16},
        "modelVersion": "gemini-2.0-flash-001",
        "responseId": "R5sqaJaWNrPYj8MPjK2X2Q4"
    })
}

#[test]
fn a_whole_reply_gives_text_tokens_usage_and_served_identity() {
    let reply = Assembly::new("gem", true)
        .whole(whole_body().to_string().as_bytes())
        .unwrap();
    assert_eq!(reply.text, "Paris.");
    assert_eq!(reply.tokens, Some(vec!["Par".into(), "is.".into()]));
    assert_eq!(reply.logprobs, Some(vec![-0.25, -0.5]));
    assert_eq!(reply.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        reply.usage,
        Some(Usage {
            prompt_tokens: 14,
            completion_tokens: 2,
            reasoning_tokens: None,
        })
    );
    assert_eq!(reply.served["model"], "gemini-2.0-flash-001");
    assert_eq!(reply.served["response_id"], "R5sqaJaWNrPYj8MPjK2X2Q4");
    // Not asked for: the tokens are not kept, whatever the server sent.
    let plain = Assembly::new("gem", false)
        .whole(whole_body().to_string().as_bytes())
        .unwrap();
    assert_eq!((plain.tokens, plain.logprobs), (None, None));
}

#[test]
fn thoughts_are_not_the_answer_but_their_tokens_are_output() {
    let body = json!({
        "candidates": [{"content": {"parts": [
            {"text": "Let me think.", "thought": true}, {"text": "Paris."}]},
            "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2, "thoughtsTokenCount": 30}
    });
    let reply = Assembly::new("gem", false)
        .whole(body.to_string().as_bytes())
        .unwrap();
    assert_eq!(reply.text, "Paris.");
    assert_eq!(reply.usage.unwrap().completion_tokens, 32);
}

#[test]
fn a_stream_is_reassembled_and_needs_its_finish_reason() {
    let events = [
        json!({"candidates": [{"content": {"parts": [{"text": "Par"}]}, "index": 0}],
               "usageMetadata": {"promptTokenCount": 14}, "modelVersion": "gemini-2.0-flash-001",
               "responseId": "r1"}),
        json!({"candidates": [{"content": {"parts": [{"text": "is."}]}, "finishReason": "MAX_TOKENS", "index": 0}],
               "usageMetadata": {"promptTokenCount": 14, "candidatesTokenCount": 2},
               "modelVersion": "gemini-2.0-flash-001", "responseId": "r1"}),
    ];
    let mut a = Assembly::new("gem", false);
    for (i, e) in events.iter().enumerate() {
        a.event(&e.to_string(), &|| {
            Duration::from_millis(10 * (i as u64 + 1))
        })
        .unwrap();
    }
    let reply = a.end_of_stream(None).unwrap();
    assert_eq!(reply.text, "Paris.");
    assert_eq!(reply.ttft, Some(Duration::from_millis(10)));
    assert_eq!(reply.finish_reason.as_deref(), Some("length"));
    assert_eq!(reply.usage.unwrap().completion_tokens, 2);
    assert_eq!(reply.served["response_id"], "r1");

    let zero = || Duration::ZERO;
    let mut cut = Assembly::new("gem", false);
    cut.event(&events[0].to_string(), &zero).unwrap();
    let f = cut.end_of_stream(None).unwrap_err();
    assert_eq!(f.class, ErrorClass::TruncatedStream);
    assert_eq!(
        f.message,
        "provider `gem` stream ended without a finish reason"
    );
    let mut dropped = Assembly::new("gem", false);
    dropped.event(&events[0].to_string(), &zero).unwrap();
    let f = dropped.end_of_stream(Some("reset".into())).unwrap_err();
    assert_eq!(f.message, "provider `gem` stream cut before its end: reset");
}

#[test]
fn blocked_prompts_errors_mid_stream_and_bad_json_are_failures() {
    let zero = || Duration::ZERO;
    let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}, "modelVersion": "g"});
    let f = Assembly::new("gem", false)
        .whole(blocked.to_string().as_bytes())
        .unwrap_err();
    assert_eq!(
        (f.class, f.message.as_str()),
        (
            ErrorClass::Other,
            "provider `gem` blocked the prompt (SAFETY)"
        )
    );
    let error = json!({"error": {"code": 500, "message": "Internal error", "status": "INTERNAL"}});
    let f = Assembly::new("gem", false)
        .event(&error.to_string(), &zero)
        .unwrap_err();
    assert_eq!(f.class, ErrorClass::Server);
    assert!(f
        .message
        .ends_with("reported an error mid-reply: Internal error"));
    let f = Assembly::new("gem", false)
        .event("{nope", &zero)
        .unwrap_err();
    assert_eq!(f.class, ErrorClass::MalformedResponse);
    let f = Assembly::new("gem", false).whole(b"{}").unwrap_err();
    assert_eq!(f.class, ErrorClass::MalformedResponse);
}

#[test]
fn finish_reasons_are_named_as_elsewhere() {
    assert_eq!(finish_reason("STOP"), "stop");
    assert_eq!(finish_reason("MAX_TOKENS"), "length");
    assert_eq!(finish_reason("SAFETY"), "safety");
}

fn status(code: u16, status: &str, message: &str, details: serde_json::Value) -> Vec<u8> {
    json!({"error": {"code": code, "message": message, "status": status, "details": details}})
        .to_string()
        .into_bytes()
}

/// The failure an error reply stands for, read and classified as `call` does.
fn status_failure(provider: &str, status: u16, body: &[u8], sent: &[&str]) -> CallFailure {
    http::status::classify(provider, status, None, true, server_error(body, sent))
}

#[test]
fn error_statuses_are_classified_with_google_s_details() {
    let sent = ["temperature", "topP", "responseLogprobs"];
    let bad_key = status(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]),
    );
    let f = status_failure("gem", 400, &bad_key, &sent);
    assert_eq!(f.class, ErrorClass::Auth);
    assert_eq!(
        f.message,
        "provider `gem` refused the credentials (HTTP 400, INVALID_ARGUMENT): API key not valid. Please pass a valid API key."
    );

    let quota = status(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota.",
        json!([{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
               {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3.5s"}]),
    );
    let f = status_failure("gem", 429, &quota, &sent);
    assert_eq!(f.class, ErrorClass::RateLimit);
    assert_eq!(f.retry_after, Some(Duration::from_millis(3500)));
    assert!(f.message.ends_with("(retry in 3.5 s)"), "{}", f.message);

    let logprobs = status(
        400,
        "INVALID_ARGUMENT",
        "Logprobs is not supported for the current model; responseLogprobs must be false.",
        json!([]),
    );
    let f = status_failure("gem", 400, &logprobs, &sent);
    assert_eq!(f.class, ErrorClass::RefusedParameter);
    assert!(f.message.contains("refused parameter `responseLogprobs`"));
    let snake = status(
        400,
        "INVALID_ARGUMENT",
        "Invalid value at 'generation_config.top_p' (TYPE_FLOAT), 7",
        json!([]),
    );
    let f = status_failure("gem", 400, &snake, &sent);
    assert_eq!(f.class, ErrorClass::RefusedParameter);
    assert!(f.message.contains("`topP`"), "{}", f.message);

    let f = status_failure(
        "gem",
        503,
        &status(503, "UNAVAILABLE", "The model is overloaded.", json!([])),
        &sent,
    );
    assert_eq!(f.class, ErrorClass::Server);
    let f = status_failure(
        "gem",
        404,
        &status(404, "NOT_FOUND", "models/x is not found", json!([])),
        &sent,
    );
    assert_eq!(f.class, ErrorClass::Other);
    assert_eq!(
        f.message,
        "provider `gem` answered HTTP 404, NOT_FOUND: models/x is not found"
    );
    // A proxy's HTML page is still a classified, one-line failure.
    let f = status_failure("gem", 502, b"<html>\n<b>Bad gateway</b>\n</html>", &sent);
    assert_eq!(f.class, ErrorClass::Server);
    assert_eq!(
        f.message,
        "provider `gem` failed (HTTP 502): <html> <b>Bad gateway</b> </html>"
    );
}

#[test]
fn the_built_in_provider_needs_a_model_and_a_key() {
    let e = builtin(None).unwrap_err();
    assert_eq!(
        e,
        "provider `gemini` needs a model on the target (model = \"…\")"
    );
}
