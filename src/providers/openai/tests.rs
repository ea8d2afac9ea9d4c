//! The wire format without a network: request bodies, whole and streamed replies, errors.
//! tests/openai.rs drives the same code over loopback HTTP.

use std::time::Duration;

use serde_json::json;

use super::identity;
use super::wire::{server_error, Assembly};
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

/// The failure an error reply stands for, read and classified as `call` does.
fn status_failure(
    provider: &str,
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
) -> CallFailure {
    http::status::classify(provider, status, retry_after, true, server_error(body))
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

fn pairs(map: &std::collections::BTreeMap<String, String>) -> Vec<(&str, &str)> {
    map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn openrouters_serving_provider_is_part_of_what_served_the_call() {
    let whole = json!({"id": "gen-1", "provider": "DeepInfra", "model": "meta/llama-3",
        "system_fingerprint": null,
        "choices": [{"index": 0, "message": {"content": "Hi"}, "finish_reason": "stop"}]});
    let reply = Assembly::new("or", false)
        .whole(whole.to_string().as_bytes())
        .unwrap();
    assert_eq!(
        pairs(&reply.served),
        [
            ("model", "meta/llama-3"),
            ("provider", "DeepInfra"),
            ("response_id", "gen-1")
        ]
    );
    // A `provider` that is not a string (some other server's field) is no reason to refuse.
    let odd = json!({"provider": {"name": "x"},
        "choices": [{"index": 0, "message": {"content": "Hi"}, "finish_reason": "stop"}]});
    let reply = Assembly::new("p", false)
        .whole(odd.to_string().as_bytes())
        .unwrap();
    assert_eq!(reply.text, "Hi");
    assert!(!reply.served.contains_key("provider"));

    let mut a = Assembly::new("or", false);
    let zero = || Duration::ZERO;
    a.event(
        r#"{"id":"gen-2","provider":"Together","choices":[{"index":0,"delta":{"content":"Hi"}}]}"#,
        &zero,
    )
    .unwrap();
    a.event(r#"{"id":"gen-2","provider":"Together","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#, &zero)
        .unwrap();
    a.event("[DONE]", &zero).unwrap();
    let reply = a.end_of_stream(None).unwrap();
    assert_eq!(reply.served["provider"], "Together");
}

#[test]
fn the_server_root_is_the_base_url_without_v1() {
    assert_eq!(
        identity::server_root("http://127.0.0.1:8080/v1"),
        "http://127.0.0.1:8080"
    );
    assert_eq!(
        identity::server_root("https://openrouter.ai/api/v1/"),
        "https://openrouter.ai/api"
    );
    // llama.cpp also serves the API without /v1: then the base is the root.
    assert_eq!(identity::server_root("http://h:8080"), "http://h:8080");
    assert_eq!(identity::server_root("http://h/v1beta"), "http://h/v1beta");
}

#[test]
fn llama_cpp_props_give_build_model_path_slots_seed_and_a_template_hash() {
    let props = json!({
        "default_generation_settings": {"n_ctx": 4096, "params": {"seed": 4294967295u64, "temperature": 0.8}},
        "total_slots": 1,
        "model_path": "/models/qwen2.5-0.5b-instruct-q4_k_m.gguf",
        "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}",
        "chat_template_caps": {"supports_tools": false},
        "modalities": {"vision": false},
        "build_info": "b5890-0d922267",
        "is_sleeping": false
    });
    assert_eq!(
        pairs(&identity::props(props.to_string().as_bytes())),
        [
            ("build_info", "b5890-0d922267"),
            ("chat_template_sha256", "2f3f666573313d2b"),
            ("default_seed", "4294967295"),
            ("model_path", "/models/qwen2.5-0.5b-instruct-q4_k_m.gguf"),
            ("quantization", "Q4_K_M"),
            ("total_slots", "1"),
        ]
    );
    // An older build keeps the seed beside the other defaults; a field of the wrong shape is
    // left out, not guessed.
    let older = json!({"default_generation_settings": {"seed": 7}, "build_info": ["b1"],
        "chat_template": 3});
    assert_eq!(
        pairs(&identity::props(older.to_string().as_bytes())),
        [("default_seed", "7")]
    );
    // Whatever is not a JSON object reads as nothing.
    for body in [&b"<html>Not Found</html>"[..], b"[1,2]", b"\"b1\"", b""] {
        assert!(identity::props(body).is_empty());
        assert!(identity::version(body).is_empty());
    }
}

#[test]
fn vllm_version_is_the_server_version() {
    assert_eq!(
        pairs(&identity::version(br#"{"version": "0.8.5"}"#)),
        [("server_version", "0.8.5")]
    );
    let hostile = json!({"version": format!("1.0\n\x1b[2J{}", "x".repeat(500))});
    let v = identity::version(hostile.to_string().as_bytes());
    assert_eq!(
        v["server_version"],
        excerpt(&format!("1.0 \x1b[2J{}", "x".repeat(500)))
    );
    assert!(!v["server_version"].contains('\x1b'));
    assert!(identity::version(br#"{"version": 5}"#).is_empty());
}

#[test]
fn an_identity_keeps_what_the_server_documents_first_and_at_most_max_keys() {
    let entry: std::collections::BTreeMap<String, String> = (0..40)
        .map(|i| (format!("field{i:02}"), i.to_string()))
        .chain([("build_info".to_string(), "from-models".to_string())])
        .collect();
    let props = identity::props(br#"{"build_info": "b1-abc", "total_slots": 4}"#);
    let combined = identity::combine(entry, [props]).unwrap();
    assert_eq!(combined.len(), identity::MAX_KEYS);
    assert_eq!(combined["build_info"], "b1-abc");
    assert_eq!(combined["total_slots"], "4");
    assert!(identity::combine(Default::default(), [Default::default()]).is_none());
}

#[test]
fn reasoning_tokens_are_kept_as_the_server_counts_them() {
    // xAI counts the 290 reasoning tokens apart from the one it calls the completion.
    let body = json!({"id": "x1", "model": "grok-4",
        "choices": [{"index": 0, "message": {"content": "4"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 303,
                  "prompt_tokens_details": {"text_tokens": 12, "cached_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 290, "audio_tokens": 0,
                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}});
    let reply = Assembly::new("xai", false)
        .whole(body.to_string().as_bytes())
        .unwrap();
    assert_eq!(
        reply.usage,
        Some(Usage {
            prompt_tokens: 12,
            completion_tokens: 1,
            reasoning_tokens: Some(290),
        })
    );
    // Details without the count, or no details at all, say nothing about reasoning.
    for details in [json!({"audio_tokens": 0}), serde_json::Value::Null] {
        let body = json!({"choices": [{"index": 0, "message": {"content": "4"},
            "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1,
                      "completion_tokens_details": details}});
        let reply = Assembly::new("p", false)
            .whole(body.to_string().as_bytes())
            .unwrap();
        assert_eq!(reply.usage.unwrap().reasoning_tokens, None);
    }
}

/// Azure OpenAI's content-filter annotations around a streamed "Hi.": a first chunk with the
/// prompt's filter results and every identity field empty, per-choice filter results on the
/// content chunks, and a trailing annotation chunk with the identity fields empty again.
fn azure_chunks() -> Vec<String> {
    let safe = json!({"hate": {"filtered": false, "severity": "safe"},
        "self_harm": {"filtered": false, "severity": "safe"},
        "sexual": {"filtered": false, "severity": "safe"},
        "violence": {"filtered": false, "severity": "safe"}});
    let chunk =
        |delta: serde_json::Value, finish: serde_json::Value, filter: &serde_json::Value| {
            json!({"choices": [{"content_filter_results": filter, "delta": delta,
                "finish_reason": finish, "index": 0, "logprobs": null}],
               "created": 1736407895, "id": "chatcmpl-AzQ9", "model": "gpt-4o-2024-11-20",
               "object": "chat.completion.chunk", "system_fingerprint": "fp_ee1d74bde0"})
            .to_string()
        };
    vec![
        json!({"choices": [], "created": 0, "id": "", "model": "", "object": "",
               "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": safe}]})
        .to_string(),
        chunk(
            json!({"content": "", "refusal": null, "role": "assistant"}),
            json!(null),
            &json!({}),
        ),
        chunk(json!({"content": "Hi."}), json!(null), &safe),
        chunk(json!({}), json!("stop"), &json!({})),
        json!({"choices": [{"content_filter_offsets": {"check_offset": 12, "start_offset": 12,
                    "end_offset": 15}, "content_filter_results": safe,
                    "finish_reason": null, "index": 0}],
               "created": 0, "id": "", "model": "", "object": ""})
        .to_string(),
        "[DONE]".into(),
    ]
}

#[test]
fn azure_empty_identity_fields_give_way_to_the_real_ones() {
    let mut a = Assembly::new("azure", false);
    for chunk in azure_chunks() {
        a.event(&chunk, &|| Duration::ZERO).unwrap();
    }
    let reply = a.end_of_stream(None).unwrap();
    assert_eq!(reply.text, "Hi.");
    assert_eq!(reply.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        pairs(&reply.served),
        [
            ("model", "gpt-4o-2024-11-20"),
            ("response_id", "chatcmpl-AzQ9"),
            ("system_fingerprint", "fp_ee1d74bde0")
        ]
    );
    // Blank is as empty as empty; a value is kept as one safe line.
    let whole = json!({"id": "  ", "model": "m\n\x1b[2J",
        "choices": [{"index": 0, "message": {"content": "x"}, "finish_reason": "stop"}]});
    let reply = Assembly::new("p", false)
        .whole(whole.to_string().as_bytes())
        .unwrap();
    assert_eq!(pairs(&reply.served), [("model", "m ␛[2J")]);
}

#[test]
fn groqs_block_gives_its_request_id_the_seed_it_used_and_a_streams_usage() {
    let whole = json!({"id": "chatcmpl-5e1", "object": "chat.completion", "created": 1752000000,
        "model": "llama-3.3-70b-versatile", "system_fingerprint": "fp_3f3b593e33",
        "service_tier": "on_demand",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "4"},
                     "logprobs": null, "finish_reason": "stop"}],
        "usage": {"queue_time": 0.012, "prompt_tokens": 40, "prompt_time": 0.002,
                  "completion_tokens": 2, "completion_time": 0.004, "total_tokens": 42,
                  "total_time": 0.006},
        "x_groq": {"id": "req_01jz8x2c4ffs9v6w3m0k7n5t1a", "seed": 1804289383,
                   "usage": {"dram_cached_tokens": 0, "sram_cached_tokens": 32}}});
    let reply = Assembly::new("groq", false)
        .whole(whole.to_string().as_bytes())
        .unwrap();
    assert_eq!(reply.served["groq_id"], "req_01jz8x2c4ffs9v6w3m0k7n5t1a");
    assert_eq!(reply.served["groq_seed"], "1804289383");
    assert_eq!(reply.served["service_tier"], "on_demand");
    assert_eq!(reply.usage.map(|u| u.completion_tokens), Some(2));

    // Streamed: the id in the first and last chunk, the seed and the usage in the last.
    let chunk = |delta: serde_json::Value, finish: serde_json::Value, groq: serde_json::Value| {
        json!({"id": "chatcmpl-5e2", "object": "chat.completion.chunk", "created": 1752000000,
               "model": "llama-3.3-70b-versatile", "system_fingerprint": "fp_3f3b593e33",
               "choices": [{"index": 0, "delta": delta, "logprobs": null,
                            "finish_reason": finish}],
               "x_groq": groq})
        .to_string()
    };
    let chunks = [
        chunk(
            json!({"role": "assistant", "content": ""}),
            json!(null),
            json!({"id": "req_01jz8x3"}),
        ),
        chunk(json!({"content": "4"}), json!(null), json!(null)),
        chunk(
            json!({}),
            json!("stop"),
            json!({"id": "req_01jz8x3", "seed": 42, "usage": {"queue_time": 0.01,
                "prompt_tokens": 40, "prompt_time": 0.002, "completion_tokens": 1,
                "completion_time": 0.003, "total_tokens": 41, "total_time": 0.005}}),
        ),
        "[DONE]".to_string(),
    ];
    let mut a = Assembly::new("groq", false);
    for c in &chunks {
        a.event(c, &|| Duration::ZERO).unwrap();
    }
    let reply = a.end_of_stream(None).unwrap();
    assert_eq!(reply.text, "4");
    assert_eq!(reply.served["groq_id"], "req_01jz8x3");
    assert_eq!(reply.served["groq_seed"], "42");
    assert_eq!(
        reply.usage.map(|u| (u.prompt_tokens, u.completion_tokens)),
        Some((40, 1))
    );

    // Groq says why it stopped a stream early in its block: the reply is not complete.
    let mut a = Assembly::new("groq", false);
    a.event(&chunks[1], &|| Duration::ZERO).unwrap();
    let stopped = chunk(
        json!({}),
        json!(null),
        json!({"id": "req_01jz8x3",
        "error": "the service is\nover capacity"}),
    );
    let e = a.event(&stopped, &|| Duration::ZERO).unwrap_err();
    assert_eq!(e.class, ErrorClass::Server);
    assert_eq!(
        e.message,
        "provider `groq` stopped the reply early: the service is over capacity"
    );
}

#[test]
fn vllms_fingerprint_is_read_into_its_parts() {
    let read = |f: &str| {
        identity::vllm_fingerprint(f)
            .into_iter()
            .collect::<Vec<(String, String)>>()
    };
    let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        read("vllm-0.11.0-H100-tp8-bf16-a3b21f94"),
        owned(&[
            ("config_hash", "a3b21f94"),
            ("dtype", "bf16"),
            ("hardware", "H100"),
            ("tensor_parallel", "8"),
            ("vllm_version", "0.11.0"),
        ])
    );
    // Every part the format has: a hyphen in the hardware and in the quantization.
    assert_eq!(
        read("vllm-0.11.1.dev4+g9c2e1f0-RTX-4090-tp2-pp2-dp4-ep-fp16-compressed-tensors-kvfp8_e4m3-0f1e2d3c"),
        owned(&[
            ("config_hash", "0f1e2d3c"),
            ("data_parallel", "4"),
            ("dtype", "fp16"),
            ("expert_parallel", "true"),
            ("hardware", "RTX-4090"),
            ("kv_cache_dtype", "fp8_e4m3"),
            ("pipeline_parallel", "2"),
            ("quantization", "compressed-tensors"),
            ("tensor_parallel", "2"),
            ("vllm_version", "0.11.1.dev4+g9c2e1f0"),
        ])
    );
    // Later builds leave out the hardware and dtypes; hash mode all but the hash.
    assert_eq!(
        read("vllm-0.12.0-tp4-5d6e7f80"),
        owned(&[
            ("config_hash", "5d6e7f80"),
            ("tensor_parallel", "4"),
            ("vllm_version", "0.12.0"),
        ])
    );
    assert_eq!(
        read("vllm-0.12.0-5d6e7f80"),
        owned(&[("config_hash", "5d6e7f80"), ("vllm_version", "0.12.0")])
    );
    assert_eq!(read("vllm-5d6e7f80"), owned(&[("config_hash", "5d6e7f80")]));
    assert_eq!(
        read("vllm-0.11.0-unknown-bf16-nohash"),
        owned(&[
            ("config_hash", "nohash"),
            ("dtype", "bf16"),
            ("hardware", "unknown"),
            ("vllm_version", "0.11.0"),
        ])
    );
    // Not vLLM's format: nothing, and the raw value stays the only record.
    for other in [
        "fp_ee1d74bde0",
        "b5890-0d922267",
        "fp_ollama",
        "vllm-prod-east",
        "vllm-0.11.0-tp2-odd-5d6e7f80",
        "vllm-0.11.0-H100-bf16-kvfp8-extra-5d6e7f80",
        "vllm-",
        "",
    ] {
        assert_eq!(read(other), [], "{other}");
    }
}

#[test]
fn a_vllm_reply_records_its_fingerprint_and_the_parts_of_it() {
    let whole = json!({"id": "chatcmpl-b3", "object": "chat.completion", "created": 1752000000,
        "model": "Qwen/Qwen3-8B", "system_fingerprint": "vllm-0.11.0-H100-tp8-bf16-a3b21f94",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi."},
                     "logprobs": null, "finish_reason": "stop", "stop_reason": null}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11,
                  "prompt_tokens_details": null},
        "prompt_logprobs": null, "kv_transfer_params": null});
    let reply = Assembly::new("vllm", false)
        .whole(whole.to_string().as_bytes())
        .unwrap();
    assert_eq!(
        pairs(&reply.served),
        [
            ("config_hash", "a3b21f94"),
            ("dtype", "bf16"),
            ("hardware", "H100"),
            ("model", "Qwen/Qwen3-8B"),
            ("response_id", "chatcmpl-b3"),
            ("system_fingerprint", "vllm-0.11.0-H100-tp8-bf16-a3b21f94"),
            ("tensor_parallel", "8"),
            ("vllm_version", "0.11.0"),
        ]
    );
}

#[test]
fn llama_cpp_model_entries_give_their_meta_and_props_the_quantization() {
    let models = json!({"object": "list", "data": [{
        "id": "qwen3-8b", "object": "model", "created": 1752000000, "owned_by": "llamacpp",
        "meta": {"vocab_type": 2, "n_vocab": 151936, "n_ctx_train": 40960, "n_embd": 4096,
                 "n_params": 8190735360u64, "size": 5027783488u64, "id": "not the model"}}]});
    assert_eq!(
        pairs(&identity::model_entry(
            models.to_string().as_bytes(),
            "qwen3-8b"
        )),
        [
            ("created", "1752000000"),
            ("id", "qwen3-8b"),
            ("n_ctx_train", "40960"),
            ("n_embd", "4096"),
            ("n_params", "8190735360"),
            ("n_vocab", "151936"),
            ("owned_by", "llamacpp"),
            ("size", "5027783488"),
            ("vocab_type", "2"),
        ]
    );
    // The server's own word on the quantization wins over the file's name.
    let props = json!({"model_path": "/m/Qwen3-8B-Q4_K_M.gguf", "model_ftype": "Q4_K - Medium",
        "build_info": "b6700-a1b2c3d4"});
    let read = identity::props(props.to_string().as_bytes());
    assert_eq!(read["quantization"], "Q4_K - Medium");
    let props = json!({"model_path": "/m/Qwen3-8B-Q4_K_M.gguf", "model_ftype": ""});
    let read = identity::props(props.to_string().as_bytes());
    assert_eq!(read["quantization"], "Q4_K_M");
}

#[test]
fn a_gguf_files_name_gives_its_quantization_only_when_unambiguous() {
    let q = identity::quantization_in_file_name;
    assert_eq!(
        q("/models/qwen2.5-0.5b-instruct-q4_k_m.gguf").as_deref(),
        Some("Q4_K_M")
    );
    assert_eq!(
        q("Meta-Llama-3.1-8B-Instruct-Q8_0.gguf").as_deref(),
        Some("Q8_0")
    );
    assert_eq!(q("gpt-oss-20b-MXFP4.gguf").as_deref(), Some("MXFP4"));
    assert_eq!(
        q("Qwen3-30B-A3B-UD-IQ2_XXS.gguf").as_deref(),
        Some("IQ2_XXS")
    );
    assert_eq!(
        q("C:\\models\\gemma-3-4b-it-bf16.GGUF").as_deref(),
        Some("BF16")
    );
    assert_eq!(q("phi-4-Q6_K_imatrix.gguf").as_deref(), Some("Q6_K"));
    assert_eq!(
        q("DeepSeek-R1-Q4_K_M-00001-of-00003.gguf").as_deref(),
        Some("Q4_K_M")
    );
    // Two quantizations, none, a part that only begins like one, not a GGUF file: no answer.
    for path in [
        "merge-Q4_K_M-Q8_0.gguf",
        "qwen3-8b.gguf",
        "model-Q4_Kfoo.gguf",
        "model-Q4_K_M.bin",
        "Qwen3-8B-Q4_K_M",
        "",
    ] {
        assert_eq!(q(path), None, "{path}");
    }
}
