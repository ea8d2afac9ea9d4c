//! The native wire format without a network: request bodies, whole and streamed replies,
//! errors, identity documents. tests/ollama.rs drives the same code over loopback HTTP.

use std::time::Duration;

use serde_json::json;

use super::wire::{digest_of, full_name, server_error, version_of, Assembly};
use super::*;
use crate::protocol::Params;
use crate::providers::http::Assemble;
use crate::record::{ErrorClass, Usage};

fn backend(stream: bool) -> OllamaBackend {
    let mut s = settings("ol", "http://127.0.0.1:9/", "llama3.2");
    s.stream = stream;
    OllamaBackend::new(s).unwrap()
}

fn request(params: Params) -> ChatRequest {
    ChatRequest {
        system: Some("Be brief.".into()),
        user: "Capital of France?".into(),
        params,
    }
}

#[test]
fn the_body_maps_the_protocol_params_to_options() {
    let b = backend(true);
    assert_eq!(b.endpoint(), "http://127.0.0.1:9/api/chat");
    let params = Params {
        temperature: Some(0.7),
        top_p: Some(0.9),
        top_k: Some(40),
        max_tokens: Some(16),
        seed: Some(7),
        stop: vec!["\n".into()],
    };
    assert_eq!(
        b.request_body(&request(params)),
        json!({
            "model": "llama3.2",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Capital of France?"}
            ],
            "stream": true,
            "options": {"temperature": 0.7, "top_p": 0.9, "top_k": 40, "seed": 7,
                        "num_predict": 16, "stop": ["\n"]},
            "logprobs": true
        })
    );
    // Nothing set: no options at all, so the Modelfile's defaults apply (and the record says so).
    let plain = backend(false).request_body(&ChatRequest {
        system: None,
        user: "hi".into(),
        params: Params::default(),
    });
    assert_eq!(
        plain,
        json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": false,
               "logprobs": true})
    );
}

#[test]
fn ollama_host_is_read_the_way_ollama_reads_it() {
    assert_eq!(host_url("127.0.0.1"), "http://127.0.0.1:11434");
    assert_eq!(host_url("gpu-box:8080"), "http://gpu-box:8080");
    assert_eq!(host_url("https://ollama.lab/"), "https://ollama.lab:443");
    assert_eq!(host_url("http://[::1]"), "http://[::1]:11434");
    assert_eq!(host_url("http://h:1/proxy"), "http://h:1/proxy");
}

#[test]
fn a_base_url_with_credentials_is_refused() {
    let e = OllamaBackend::new(settings("p", "http://u:pw@h:1", "m")).unwrap_err();
    assert!(e.contains("must not carry credentials"), "{e}");
}

fn line(model: &str, content: &str) -> String {
    json!({"model": model, "created_at": "2026-01-01T00:00:00.1Z",
           "message": {"role": "assistant", "content": content}, "done": false})
    .to_string()
}

fn done_line() -> String {
    json!({"model": "llama3.2", "created_at": "2026-01-01T00:00:00.3Z",
           "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop",
           "total_duration": 512000000u64, "load_duration": 1000000, "prompt_eval_count": 26,
           "prompt_eval_duration": 100000000, "eval_count": 3, "eval_duration": 300000000})
    .to_string()
}

#[test]
fn a_stream_is_assembled_from_its_lines() {
    let mut a = Assembly::new("ol", false);
    a.event(&line("llama3.2", ""), &|| Duration::from_millis(1))
        .unwrap();
    assert_eq!(a.ttft, None, "an empty first line is not the first token");
    a.event(&line("llama3.2", "Par"), &|| Duration::from_millis(20))
        .unwrap();
    a.event(&line("llama3.2", "is."), &|| Duration::from_millis(30))
        .unwrap();
    assert!(!a.done);
    a.event(&done_line(), &|| Duration::from_millis(40))
        .unwrap();
    assert!(a.done);
    let reply = a.end_of_stream(None).unwrap();
    assert_eq!(reply.text, "Paris.");
    assert_eq!(reply.ttft, Some(Duration::from_millis(20)));
    assert_eq!(reply.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        reply.usage,
        Some(Usage {
            prompt_tokens: 26,
            completion_tokens: 3,
            reasoning_tokens: None,
        })
    );
    assert_eq!(reply.served["model"], "llama3.2");
    assert_eq!((reply.tokens, reply.logprobs), (None, None));
}

#[test]
fn a_stream_without_its_done_line_is_truncated() {
    let mut a = Assembly::new("ol", false);
    a.event(&line("m", "Par"), &|| Duration::ZERO).unwrap();
    let f = a.end_of_stream(None).unwrap_err();
    assert_eq!(f.class, ErrorClass::TruncatedStream);
    assert_eq!(
        f.message,
        "provider `ol` stream ended without its final done: true line"
    );
}

#[test]
fn an_error_line_or_a_non_json_line_fails_the_call() {
    let mut a = Assembly::new("ol", false);
    let f = a
        .event(
            r#"{"error":"an error was encountered while running the model: CUDA error"}"#,
            &|| Duration::ZERO,
        )
        .unwrap_err();
    assert_eq!(f.class, ErrorClass::Server);
    assert_eq!(
        f.message,
        "provider `ol` reported an error mid-reply: an error was encountered while running the model: CUDA error"
    );
    let f = a.event("<html>", &|| Duration::ZERO).unwrap_err();
    assert_eq!(f.class, ErrorClass::MalformedResponse);
    assert!(f
        .message
        .starts_with("provider `ol` sent a line that is not the expected JSON"));
}

#[test]
fn a_whole_reply_needs_done() {
    let reply = Assembly::new("ol", false)
        .whole(
            json!({"model": "m", "message": {"role": "assistant", "content": "Paris."},
               "done": true, "done_reason": "length", "eval_count": 2})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
    assert_eq!(reply.text, "Paris.");
    assert_eq!(reply.finish_reason.as_deref(), Some("length"));
    assert_eq!(reply.usage, None, "one count alone is no usage");
    let f = Assembly::new("ol", false)
        .whole(br#"{"model":"m","message":{"content":"Pa"}}"#)
        .unwrap_err();
    assert_eq!(f.class, ErrorClass::MalformedResponse);
}

#[test]
fn error_statuses_are_classified() {
    let fail = |status, body: &str| {
        let error = server_error(body.as_bytes(), "llama9", &["seed"]);
        let f = crate::providers::http::status::classify("ol", status, Some("3"), true, error);
        (f.class, f.message)
    };
    assert_eq!(
        fail(404, r#"{"error":"model 'llama9' not found"}"#),
        (
            ErrorClass::Other,
            "provider `ol` does not have model `llama9` (HTTP 404): model 'llama9' not found; pull it with `ollama pull llama9`".into()
        )
    );
    assert_eq!(
        fail(404, "404 page not found"),
        (
            ErrorClass::Other,
            "provider `ol` answered HTTP 404: 404 page not found".into()
        )
    );
    assert_eq!(fail(401, r#"{"error":"unauthorized"}"#).0, ErrorClass::Auth);
    assert_eq!(
        fail(429, r#"{"error":"too many requests"}"#),
        (
            ErrorClass::RateLimit,
            "provider `ol` is rate limiting (HTTP 429): too many requests (Retry-After 3 s)".into()
        )
    );
    assert_eq!(
        fail(503, r#"{"error":"server busy"}"#).0,
        ErrorClass::Server
    );
    assert_eq!(
        fail(
            400,
            r#"{"error":"option \"seed\" must be of type integer"}"#
        )
        .0,
        ErrorClass::RefusedParameter
    );
    assert_eq!(
        fail(400, r#"{"error":"invalid message format"}"#).0,
        ErrorClass::Other
    );
}

#[test]
fn the_digest_is_found_by_name_with_the_default_tag() {
    let tags = json!({"models": [
        {"name": "qwen2:7b", "model": "qwen2:7b", "digest": "aaa"},
        {"name": "llama3.2:latest", "model": "llama3.2:latest", "digest": "a80c4f17acd5",
         "size": 2019393189u64, "details": {"quantization_level": "Q4_K_M"}},
        {"name": "localhost:5000/team/m:latest", "digest": "ccc"}
    ]})
    .to_string();
    let found = |model: &str| digest_of(tags.as_bytes(), model).unwrap();
    assert_eq!(
        found("llama3.2"),
        Some(("llama3.2:latest".into(), "a80c4f17acd5".into()))
    );
    assert_eq!(
        found("llama3.2:latest").map(|f| f.1).as_deref(),
        Some("a80c4f17acd5")
    );
    assert_eq!(
        found("qwen2"),
        None,
        "qwen2 means qwen2:latest, which is not pulled"
    );
    assert_eq!(
        found("localhost:5000/team/m").map(|f| f.1).as_deref(),
        Some("ccc")
    );
    assert_eq!(
        full_name("localhost:5000/team/m"),
        "localhost:5000/team/m:latest"
    );
    assert!(digest_of(b"<html>", "m").is_err());
    assert_eq!(
        version_of(br#"{"version":"0.6.2"}"#).as_deref(),
        Some("0.6.2")
    );
    assert_eq!(version_of(b"{}"), None);
}

#[test]
fn the_built_in_provider_needs_a_model_and_no_key() {
    use crate::providers::{backend_for, check_callable};
    use std::path::Path;
    let text = "[protocol]\nname = \"o\"\n\n[prompt]\nuser = \"Hi\"\n\n[[targets]]\nprovider = \"ollama\"\nmodel = \"llama3.2\"\n\n[[targets]]\nprovider = \"ollama\"\n";
    let p = crate::protocol::Protocol::parse(Path::new("o.toml"), text).unwrap();
    let none = crate::config::Providers::default();
    assert!(p
        .targets
        .iter()
        .all(|t| check_callable(&p, t, &none).is_ok()));
    // Wherever $OLLAMA_HOST points, the endpoint is its native chat route.
    let b = backend_for(&p, &p.targets[0]).unwrap();
    assert!(b.endpoint().ends_with("/api/chat"), "{}", b.endpoint());
    let e = backend_for(&p, &p.targets[1]).err().unwrap().to_string();
    assert!(
        e.ends_with("provider `ollama` needs a model on the target (model = \"…\")"),
        "{e}"
    );
}

/// A streamed line as Ollama 0.12.11 and later send it when asked for log-probabilities.
fn line_with_logprobs(content: &str, logprobs: serde_json::Value) -> String {
    json!({"model": "llama3.2", "created_at": "2026-01-01T00:00:00.1Z",
           "message": {"role": "assistant", "content": content}, "done": false,
           "logprobs": logprobs})
    .to_string()
}

#[test]
fn tokens_and_log_probabilities_are_kept_when_asked_for_and_whole() {
    let token = |t: &str, lp: f64| {
        json!({"token": t, "logprob": lp, "bytes": t.bytes().collect::<Vec<_>>(),
               "top_logprobs": [{"token": t, "logprob": lp, "bytes": null}]})
    };
    let lines = [
        line_with_logprobs("Par", json!([token("Par", -0.25)])),
        line_with_logprobs("is.", json!([token("is", -0.5), token(".", -0.125)])),
        done_line(),
    ];
    let stream = |want: bool| {
        let mut a = Assembly::new("ol", want);
        for l in &lines {
            a.event(l, &|| Duration::ZERO).unwrap();
        }
        a.end_of_stream(None).unwrap()
    };
    let reply = stream(true);
    assert_eq!(reply.text, "Paris.");
    assert_eq!(
        reply.tokens,
        Some(vec!["Par".into(), "is".into(), ".".into()])
    );
    assert_eq!(reply.logprobs, Some(vec![-0.25, -0.5, -0.125]));
    // Not asked for: not kept, whatever came.
    assert_eq!((stream(false).tokens, stream(false).logprobs), (None, None));

    // A server that does not send them (older than 0.12.11, or a cloud model answering
    // `logprobs: null`), or sends them for part of the text only: no tokens at all.
    for partial in [
        [line("llama3.2", "Par"), line("llama3.2", "is.")],
        [
            line_with_logprobs("Par", json!(null)),
            line_with_logprobs("is.", json!(null)),
        ],
        [
            line_with_logprobs("Par", json!([token("Par", -0.25)])),
            line("llama3.2", "is."),
        ],
        [
            line_with_logprobs("Par", json!([{"token": 7, "logprob": -0.25}])),
            line_with_logprobs("is.", json!([token("is.", -0.5)])),
        ],
    ] {
        let mut a = Assembly::new("ol", true);
        for l in partial.iter().chain([&done_line()]) {
            a.event(l, &|| Duration::ZERO).unwrap();
        }
        let reply = a.end_of_stream(None).unwrap();
        assert_eq!(reply.text, "Paris.");
        assert_eq!((reply.tokens, reply.logprobs), (None, None));
    }

    // A whole reply carries them all in its one object.
    let whole = json!({"model": "llama3.2", "created_at": "2026-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": "Paris."}, "done": true,
        "done_reason": "stop", "prompt_eval_count": 26, "eval_count": 2,
        "logprobs": [token("Paris", -0.01), token(".", -0.02)]});
    let reply = Assembly::new("ol", true)
        .whole(whole.to_string().as_bytes())
        .unwrap();
    assert_eq!(reply.tokens, Some(vec!["Paris".into(), ".".into()]));
    assert_eq!(reply.logprobs, Some(vec![-0.01, -0.02]));
}

#[test]
fn log_probabilities_are_asked_for_only_when_the_settings_want_them() {
    let mut s = settings("ol", "http://127.0.0.1:9/", "llama3.2");
    s.logprobs = false;
    let body = OllamaBackend::new(s)
        .unwrap()
        .request_body(&request(Params::default()));
    assert!(body.get("logprobs").is_none(), "{body}");
    assert!(body.get("top_logprobs").is_none(), "{body}");
    let body = backend(true).request_body(&request(Params::default()));
    assert_eq!(body["logprobs"], true);
}
