//! The wire format without a network: request bodies, whole and streamed replies, errors.
//! tests/openai.rs drives the same code over loopback HTTP.

use std::time::Duration;

use serde_json::json;

use super::wire::{status_failure, Assembly};
use super::*;
use crate::protocol::Params;
use crate::providers::http::excerpt;
use crate::providers::http::{Assemble, Settings};
use crate::providers::key::ApiKey;
use crate::record::{ErrorClass, Usage};

fn backend(stream: bool, logprobs: bool) -> OpenAiBackend {
    let mut s = Settings::new("serve", "http://127.0.0.1:9/v1/", "m-1");
    s.stream = stream;
    s.logprobs = logprobs;
    OpenAiBackend::new(s).unwrap()
}

fn request(params: Params) -> ChatRequest {
    ChatRequest {
        system: Some("Be brief.".into()),
        user: "Capital of France?".into(),
        params,
    }
}

#[test]
fn the_body_carries_only_what_the_protocol_set() {
    let b = backend(true, true);
    assert_eq!(b.endpoint(), "http://127.0.0.1:9/v1/chat/completions");
    let params = Params {
        temperature: Some(0.7),
        top_k: Some(40),
        max_tokens: Some(16),
        seed: Some(7),
        stop: vec!["\n".into()],
        ..Params::default()
    };
    assert_eq!(
        b.request_body(&request(params)),
        json!({
            "model": "m-1",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Capital of France?"}
            ],
            "temperature": 0.7,
            "max_tokens": 16,
            "seed": 7,
            "stop": ["\n"],
            "stream": true,
            "stream_options": {"include_usage": true},
            "logprobs": true
        })
    );
    let plain = backend(false, false).request_body(&ChatRequest {
        system: None,
        user: "hi".into(),
        params: Params::default(),
    });
    assert_eq!(
        plain,
        json!({"model": "m-1", "messages": [{"role": "user", "content": "hi"}]})
    );
}

#[test]
fn a_base_url_with_credentials_is_refused() {
    let s = Settings::new("p", "http://user:pw@host/v1", "m");
    let e = OpenAiBackend::new(s).unwrap_err();
    assert!(e.contains("must not carry credentials"), "{e}");
}

#[test]
fn a_whole_reply_is_read() {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "m-1-2026",
        "system_fingerprint": "fp_1", "service_tier": null,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."},
                     "logprobs": {"content": [
                        {"token": "Paris", "logprob": -0.1, "bytes": null, "top_logprobs": []},
                        {"token": ".", "logprob": -0.5, "bytes": [46], "top_logprobs": []}]},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    });
    let reply = Assembly::new("serve", true)
        .whole(body.to_string().as_bytes())
        .unwrap();
    assert_eq!(reply.text, "Paris.");
    assert_eq!(reply.tokens, Some(vec!["Paris".into(), ".".into()]));
    assert_eq!(reply.logprobs, Some(vec![-0.1, -0.5]));
    assert_eq!(reply.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        reply.usage,
        Some(Usage {
            prompt_tokens: 9,
            completion_tokens: 2
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
            ("model", "m-1-2026"),
            ("response_id", "chatcmpl-1"),
            ("system_fingerprint", "fp_1")
        ]
    );
    assert_eq!(reply.ttft, None);
}

#[test]
fn tokens_that_do_not_spell_the_text_are_dropped() {
    // Logprobs for only part of the text: keeping them would misalign every token view.
    let body = json!({"choices": [{"index": 0, "message": {"content": "Paris."},
        "logprobs": {"content": [{"token": "Paris", "logprob": -0.1}]}, "finish_reason": "stop"}]});
    let reply = Assembly::new("p", true)
        .whole(body.to_string().as_bytes())
        .unwrap();
    assert_eq!((reply.tokens, reply.logprobs), (None, None));
}

#[test]
fn a_stream_is_reassembled() {
    let chunks = [
        r#"{"id":"c1","model":"m-2026","system_fingerprint":"fp_9","service_tier":"default","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"id":"c1","model":"m-2026","choices":[{"index":0,"delta":{"content":"Par"},"logprobs":{"content":[{"token":"Par","logprob":-0.25}]},"finish_reason":null}],"usage":null}"#,
        r#"{"id":"c1","model":"m-2026","choices":[{"index":0,"delta":{"content":"is"},"logprobs":{"content":[{"token":"is","logprob":-0.5}]},"finish_reason":"stop"}],"usage":null}"#,
        r#"{"id":"c1","model":"m-2026","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#,
        "[DONE]",
    ];
    let mut a = Assembly::new("p", true);
    for (i, c) in chunks.iter().enumerate() {
        a.event(c, &|| Duration::from_millis(10 * i as u64))
            .unwrap();
    }
    assert!(a.done);
    let reply = a.end_of_stream(None).unwrap();
    assert_eq!(reply.text, "Paris");
    assert_eq!(reply.tokens, Some(vec!["Par".into(), "is".into()]));
    assert_eq!(reply.logprobs, Some(vec![-0.25, -0.5]));
    assert_eq!(reply.finish_reason.as_deref(), Some("stop"));
    assert_eq!(reply.usage.map(|u| u.completion_tokens), Some(2));
    // The first chunk had no text: time to first token is the second chunk's.
    assert_eq!(reply.ttft, Some(Duration::from_millis(10)));
    assert_eq!(reply.served["service_tier"], "default");
    assert_eq!(reply.served["response_id"], "c1");
}

#[test]
fn how_a_stream_ends_decides_its_fate() {
    let content = r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#;
    let finished = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#;
    let zero = || Duration::ZERO;

    let mut a = Assembly::new("p", false);
    a.event(content, &zero).unwrap();
    let e = a.end_of_stream(None).unwrap_err();
    assert_eq!(e.class, ErrorClass::TruncatedStream);
    assert_eq!(
        e.message,
        "provider `p` stream ended without a finish reason or [DONE]"
    );

    // A finish reason without [DONE] is a complete reply from a terse server.
    let mut a = Assembly::new("p", false);
    a.event(content, &zero).unwrap();
    a.event(finished, &zero).unwrap();
    assert_eq!(a.end_of_stream(None).unwrap().text, "Hi");

    // …unless the connection broke.
    let mut a = Assembly::new("p", false);
    a.event(finished, &zero).unwrap();
    let e = a.end_of_stream(Some("reset".into())).unwrap_err();
    assert_eq!(e.class, ErrorClass::TruncatedStream);

    let mut a = Assembly::new("p", false);
    let e = a
        .event(r#"{"error":{"message":"overloaded"}}"#, &zero)
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Server);
    assert!(
        e.message.ends_with("mid-reply: overloaded"),
        "{}",
        e.message
    );

    let e = Assembly::new("p", false)
        .event("{not json", &zero)
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::MalformedResponse);
}

#[test]
fn statuses_are_classified() {
    let err = |m: &str, param: Option<&str>| {
        json!({"error": {"message": m, "type": "x", "param": param, "code": null}})
            .to_string()
            .into_bytes()
    };
    let f = status_failure("p", 401, None, &err("bad key", None));
    assert_eq!(f.class, ErrorClass::Auth);
    assert_eq!(
        f.message,
        "provider `p` refused the credentials (HTTP 401): bad key"
    );
    assert_eq!(status_failure("p", 403, None, b"").class, ErrorClass::Auth);
    let f = status_failure("p", 429, Some("2"), &err("slow down", None));
    assert_eq!(f.class, ErrorClass::RateLimit);
    assert_eq!(
        f.message,
        "provider `p` is rate limiting (HTTP 429): slow down (Retry-After 2 s)"
    );
    let f = status_failure("p", 503, None, b"<html>\n upstream \x1b[31m gone</html>");
    assert_eq!(f.class, ErrorClass::Server);
    assert_eq!(
        f.message,
        "provider `p` failed (HTTP 503): <html> upstream ␛[31m gone</html>"
    );
    let f = status_failure("p", 400, None, &err("no", Some("temperature")));
    assert_eq!(f.class, ErrorClass::RefusedParameter);
    assert!(
        f.message.contains("parameter `temperature`"),
        "{}",
        f.message
    );
    let f = status_failure("p", 404, None, &err("no such model", None));
    assert_eq!(f.class, ErrorClass::Other);
    assert_eq!(f.message, "provider `p` answered HTTP 404: no such model");
}

#[test]
fn excerpts_are_one_safe_line_of_bounded_length() {
    let long = "word ".repeat(100);
    let e = excerpt(&long);
    assert_eq!(e.chars().count(), crate::providers::http::EXCERPT_CHARS + 1);
    assert!(e.ends_with('…'));
    assert_eq!(excerpt("a\n\tb\x07"), "a b␇");
}

#[test]
fn debug_output_hides_the_key() {
    let mut s = Settings::new("p", "http://127.0.0.1:9/v1", "m");
    s.key = ApiKey::new("sk-unit-SECRET-key");
    let b = OpenAiBackend::new(s).unwrap();
    let debug = format!("{b:?}");
    assert!(!debug.contains("sk-unit-SECRET-key"), "{debug}");
    assert!(debug.contains("***"), "{debug}");
}
