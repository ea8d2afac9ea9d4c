//! The Messages wire format without a network: request bodies, whole and streamed replies,
//! error bodies. tests/anthropic.rs drives the same code over loopback HTTP.

use std::time::Duration;

use serde_json::json;

use super::wire::{finish_reason, named_parameter, server_error, Assembly};
use super::*;
use crate::protocol::Params;
use crate::providers::http::{Assemble, Settings};
use crate::providers::key::ApiKey;
use crate::record::{ErrorClass, Usage};

fn backend(stream: bool) -> AnthropicBackend {
    let mut s = Settings::new("claude", "http://127.0.0.1:9/v1/", "claude-x");
    s.stream = stream;
    AnthropicBackend::new(s).unwrap()
}

#[test]
fn the_body_maps_the_protocol_and_leaves_out_the_seed() {
    let b = backend(true);
    assert_eq!(b.endpoint(), "http://127.0.0.1:9/v1/messages");
    let request = ChatRequest {
        system: Some("Be brief.".into()),
        user: "Capital of France?".into(),
        params: Params {
            temperature: Some(0.5),
            top_p: Some(0.9),
            top_k: Some(40),
            max_tokens: Some(16),
            seed: Some(7),
            stop: vec!["\n".into()],
        },
    };
    assert_eq!(
        b.request_body(&request),
        json!({
            "model": "claude-x",
            "max_tokens": 16,
            "system": "Be brief.",
            "messages": [{"role": "user", "content": "Capital of France?"}],
            "temperature": 0.5, "top_p": 0.9, "top_k": 40,
            "stop_sequences": ["\n"],
            "stream": true
        })
    );
    // max_tokens is required by the API, so it is always there (and so recorded).
    let plain = backend(false).request_body(&ChatRequest {
        system: None,
        user: "hi".into(),
        params: Params::default(),
    });
    assert_eq!(
        plain,
        json!({"model": "claude-x", "max_tokens": DEFAULT_MAX_TOKENS,
               "messages": [{"role": "user", "content": "hi"}]})
    );
}

#[test]
fn the_conditions_name_the_api_version_unless_configured() {
    assert_eq!(
        backend(true).headers()["anthropic-version"],
        ANTHROPIC_VERSION
    );
    let mut s = Settings::new("c", "http://h/v1", "m");
    s.headers
        .insert("Anthropic-Version".into(), "2024-01-01".into());
    let headers = AnthropicBackend::new(s).unwrap().headers();
    assert_eq!(headers.len(), 1, "{headers:?}");
    assert_eq!(headers["Anthropic-Version"], "2024-01-01");
}

#[test]
fn a_whole_message_is_read() {
    let body = json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x-20250101",
        "content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "Paris."}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 9, "output_tokens": 2, "cache_creation_input_tokens": 3,
                  "cache_read_input_tokens": 1, "service_tier": "standard", "inference_geo": "us"}
    });
    let reply = Assembly::new("c", vec![])
        .whole(body.to_string().as_bytes())
        .unwrap();
    assert_eq!(reply.text, "Paris.");
    assert_eq!(reply.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        reply.usage,
        Some(Usage {
            prompt_tokens: 13,
            completion_tokens: 2,
            reasoning_tokens: None,
        })
    );
    let served: Vec<(&str, &str)> = reply
        .served
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        served,
        [
            ("inference_geo", "us"),
            ("model", "claude-x-20250101"),
            ("response_id", "msg_01"),
            ("service_tier", "standard"),
        ]
    );
    assert_eq!(
        (reply.tokens, reply.logprobs, reply.ttft),
        (None, None, None)
    );
}

#[test]
fn an_error_object_in_a_success_body_is_classified() {
    let body =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    let e = Assembly::new("c", vec![])
        .whole(body.to_string().as_bytes())
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Server);
    assert_eq!(
        e.message,
        "provider `c` reported an error mid-reply (overloaded_error): Overloaded"
    );
}

fn stream_events() -> Vec<String> {
    [
        json!({"type": "message_start", "message": {"id": "msg_s", "type": "message", "role": "assistant",
            "model": "claude-x-2025", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 12, "output_tokens": 1, "service_tier": "standard"}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Par"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "is."}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens", "stop_sequence": null},
            "usage": {"output_tokens": 3}}),
        json!({"type": "message_stop"}),
    ]
    .iter()
    .map(|v| v.to_string())
    .collect()
}

#[test]
fn a_stream_is_reassembled() {
    let mut a = Assembly::new("c", vec![]);
    for (i, e) in stream_events().iter().enumerate() {
        a.event(e, &|| Duration::from_millis(10 * i as u64))
            .unwrap();
    }
    assert!(a.done);
    let reply = a.end_of_stream(None).unwrap();
    assert_eq!(reply.text, "Paris.");
    assert_eq!(reply.finish_reason.as_deref(), Some("length"));
    // Output tokens in message_delta are cumulative: the last count stands.
    assert_eq!(
        reply.usage,
        Some(Usage {
            prompt_tokens: 12,
            completion_tokens: 3,
            reasoning_tokens: None,
        })
    );
    // The block start and the ping had no text: the first delta's time is the TTFT.
    assert_eq!(reply.ttft, Some(Duration::from_millis(30)));
    assert_eq!(reply.served["response_id"], "msg_s");
    assert_eq!(reply.served["model"], "claude-x-2025");
    assert_eq!(reply.served["service_tier"], "standard");
}

#[test]
fn only_message_stop_completes_a_stream() {
    let zero = || Duration::ZERO;
    let events = stream_events();
    let mut a = Assembly::new("c", vec![]);
    for e in &events[..events.len() - 1] {
        a.event(e, &zero).unwrap();
    }
    let e = a.end_of_stream(None).unwrap_err();
    assert_eq!(e.class, ErrorClass::TruncatedStream);
    assert_eq!(e.message, "provider `c` stream ended without message_stop");

    let mut a = Assembly::new("c", vec![]);
    a.event(&events[0], &zero).unwrap();
    let e = a.end_of_stream(Some("reset".into())).unwrap_err();
    assert_eq!(e.message, "provider `c` stream cut before its end: reset");

    let e = Assembly::new("c", vec![])
        .event("{not json", &zero)
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::MalformedResponse);
    // An event type this version does not know is skipped, as the API asks.
    let mut a = Assembly::new("c", vec![]);
    a.event(r#"{"type":"future_event","x":1}"#, &zero).unwrap();
}

#[test]
fn stream_error_events_are_classified_by_type() {
    let class = |kind: &str, message: &str| {
        let data = json!({"type": "error", "error": {"type": kind, "message": message}});
        Assembly::new("c", vec!["temperature", "top_p", "max_tokens"])
            .event(&data.to_string(), &|| Duration::ZERO)
            .unwrap_err()
            .class
    };
    assert_eq!(class("overloaded_error", "Overloaded"), ErrorClass::Server);
    assert_eq!(class("api_error", "oops"), ErrorClass::Server);
    assert_eq!(class("rate_limit_error", "slow"), ErrorClass::RateLimit);
    assert_eq!(class("authentication_error", "no"), ErrorClass::Auth);
    assert_eq!(
        class("invalid_request_error", "top_p: must be at most 1"),
        ErrorClass::RefusedParameter
    );
    assert_eq!(
        class("invalid_request_error", "prompt too long"),
        ErrorClass::Other
    );
    assert_eq!(class("mystery_error", "?"), ErrorClass::Other);
}

/// The failure an error reply stands for, read and classified as `call` does.
fn status_failure(
    provider: &str,
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    sent: &[&str],
) -> CallFailure {
    http::status::classify(
        provider,
        status,
        retry_after,
        true,
        server_error(body, sent),
    )
}

#[test]
fn statuses_are_classified_in_anthropics_shape() {
    let err = |kind: &str, m: &str| {
        json!({"type": "error", "error": {"type": kind, "message": m}, "request_id": "req_9"})
            .to_string()
            .into_bytes()
    };
    let sent = ["temperature", "top_p", "max_tokens"];
    let f = status_failure(
        "c",
        401,
        None,
        &err("authentication_error", "invalid x-api-key"),
        &sent,
    );
    assert_eq!(f.class, ErrorClass::Auth);
    assert_eq!(
        f.message,
        "provider `c` refused the credentials (HTTP 401, authentication_error): invalid x-api-key"
    );
    let f = status_failure("c", 403, None, &err("permission_error", "no"), &sent);
    assert_eq!(f.class, ErrorClass::Auth);
    let f = status_failure(
        "c",
        429,
        Some("7"),
        &err("rate_limit_error", "Slow down."),
        &sent,
    );
    assert_eq!(f.class, ErrorClass::RateLimit);
    assert_eq!(
        f.message,
        "provider `c` is rate limiting (HTTP 429, rate_limit_error): Slow down. (Retry-After 7 s)"
    );
    let f = status_failure(
        "c",
        529,
        None,
        &err("overloaded_error", "Overloaded"),
        &sent,
    );
    assert_eq!(f.class, ErrorClass::Server);
    assert_eq!(
        f.message,
        "provider `c` failed (HTTP 529, overloaded_error): Overloaded"
    );
    let f = status_failure("c", 500, None, b"<html>\n\x1b[31m down", &sent);
    assert_eq!(f.class, ErrorClass::Server);
    assert_eq!(
        f.message,
        "provider `c` failed (HTTP 500): <html> ␛[31m down"
    );
    let both =
        "`temperature` and `top_p` cannot both be specified for this model. Please use only one.";
    let f = status_failure("c", 400, None, &err("invalid_request_error", both), &sent);
    assert_eq!(f.class, ErrorClass::RefusedParameter);
    assert_eq!(
        f.message,
        format!("provider `c` refused parameter `temperature` (HTTP 400, invalid_request_error): {both}")
    );
    let f = status_failure(
        "c",
        400,
        None,
        &err("invalid_request_error", "messages: empty"),
        &sent,
    );
    assert_eq!(f.class, ErrorClass::Other);
    assert_eq!(
        f.message,
        "provider `c` answered HTTP 400, invalid_request_error: messages: empty"
    );
    let f = status_failure(
        "c",
        404,
        None,
        &err("not_found_error", "model: claude-nope"),
        &sent,
    );
    assert_eq!(f.class, ErrorClass::Other);
}

#[test]
fn a_parameter_counts_only_as_a_whole_word() {
    let sent = ["top_p", "top_k", "max_tokens"];
    assert_eq!(
        named_parameter("top_k must be ≥ 0; top_p too", &sent),
        Some("top_k")
    );
    assert_eq!(named_parameter("my_top_p and top_pp", &sent), None);
    assert_eq!(
        named_parameter("max_tokens: 100000 > 64000", &sent),
        Some("max_tokens")
    );
    // Not sent, so not refused.
    assert_eq!(named_parameter("temperature: bad", &sent), None);
}

#[test]
fn stop_reasons_map_to_common_words() {
    let mapped: Vec<String> = [
        "end_turn",
        "stop_sequence",
        "max_tokens",
        "refusal",
        "tool_use",
    ]
    .iter()
    .map(|r| finish_reason(r))
    .collect();
    assert_eq!(mapped, ["stop", "stop", "length", "refusal", "tool_use"]);
}

#[test]
fn debug_output_hides_the_key() {
    let mut s = Settings::new("c", "http://127.0.0.1:9/v1", "m");
    s.key = ApiKey::new("sk-ant-unit-SECRET");
    let b = AnthropicBackend::new(s).unwrap();
    let debug = format!("{b:?}");
    assert!(!debug.contains("sk-ant-unit-SECRET"), "{debug}");
    assert!(!format!("{:?}", b.headers()).contains("sk-ant-unit-SECRET"));
}
