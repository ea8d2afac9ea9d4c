//! Real servers' odd corners, each reproduced byte for byte on raw sockets as the issue that
//! found them describes it (issue 14): a server that closes after every streamed reply while
//! advertising keep-alive, a `Retry-After` of 1e20, OpenAI's reasoning models refusing
//! `max_tokens`, Claude refusing `temperature` with `top_p`, Anthropic's in-stream errors
//! before and after text, a last event without its blank line, a Gemini reply without a
//! finish reason, and an Anthropic-compatible server without a model lookup.

#[path = "support/raw_server.rs"]
mod raw_server;
#[path = "support/run.rs"]
mod run;

use std::time::Duration;

use raw_server::{chunked, whole, After, RawReply, RawServer};
use reprise::config::TokenLimitField;
use reprise::protocol::Params;
use reprise::providers::anthropic::AnthropicBackend;
use reprise::providers::gemini::GeminiBackend;
use reprise::providers::http::{retry_wait, Settings};
use reprise::providers::openai::OpenAiBackend;
use reprise::providers::{Backend, ChatRequest, RetryPolicy};
use reprise::record::ErrorClass;
use serde_json::{json, Value};

fn request(params: Params) -> ChatRequest {
    ChatRequest {
        system: None,
        user: "Capital of France?".into(),
        params,
    }
}

fn greedy() -> Params {
    Params {
        temperature: Some(0.0),
        max_tokens: Some(16),
        ..Params::default()
    }
}

fn openai(server: &RawServer, stream: bool) -> OpenAiBackend {
    let mut s = Settings::new("lab", &server.base_url(), "m");
    s.stream = stream;
    s.logprobs = false;
    OpenAiBackend::new(s).unwrap()
}

/// A Chat Completions stream as OpenAI and llama.cpp send it: a role chunk with empty
/// content, the text, the finish chunk, `[DONE]`; each event a `data:` line and a blank line.
fn completion_events(text: &str) -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        let c = json!({"id": "chatcmpl-7", "object": "chat.completion.chunk",
            "created": 1_733_300_000, "model": "m", "system_fingerprint": "b4000-abc",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        format!("data: {c}\n\n")
    };
    vec![
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": text}), Value::Null),
        chunk(json!({}), json!("stop")),
        "data: [DONE]\n\n".into(),
    ]
}

fn completion_body(text: &str) -> String {
    json!({"id": "chatcmpl-8", "object": "chat.completion", "created": 1_733_300_000,
        "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
        "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}})
    .to_string()
}

/// A server that answers every call with a stream whose headers say keep-alive, then does
/// `after` with the connection.
async fn keep_alive_streams(after: After) -> RawServer {
    let stream = chunked(
        "text/event-stream",
        &[("connection", "keep-alive")],
        &completion_events("Paris."),
    );
    RawServer::always(stream, after).await
}

#[tokio::test]
async fn a_server_closing_after_each_streamed_reply_costs_no_call() {
    // llama.cpp closes the connection after every streamed reply while its headers say
    // keep-alive. Here the close reaches the client only once it has sent its next request on
    // the pooled connection — the race a pooled client sometimes loses against the real
    // server, made to happen every time.
    let server = keep_alive_streams(After::CloseOnNextRequest).await;
    let backend = openai(&server, true);
    for call in 0..20 {
        let reply = backend.call(&request(greedy())).await;
        assert_eq!(
            reply.map(|r| r.text).as_deref(),
            Ok("Paris."),
            "call {call}"
        );
    }
    assert_eq!(server.answered().len(), 20, "each call answered once");
    assert_eq!(
        server.dropped(),
        1,
        "after the first closed connection, streams go on new connections"
    );
}

#[tokio::test]
async fn a_closed_kept_alive_connection_is_resent_once_for_whole_replies_too() {
    let server = RawServer::always(
        whole(
            200,
            &[("connection", "keep-alive")],
            &completion_body("Paris."),
        ),
        After::CloseOnNextRequest,
    )
    .await;
    let backend = openai(&server, false);
    for call in 0..6 {
        let reply = backend.call(&request(greedy())).await;
        assert_eq!(
            reply.map(|r| r.text).as_deref(),
            Ok("Paris."),
            "call {call}"
        );
    }
    assert_eq!(server.answered().len(), 6);
}

#[tokio::test]
async fn a_server_that_answers_nothing_at_all_is_still_a_connection_failure() {
    // Every connection closes as soon as a request arrives: the one resend finds the same,
    // and the call fails as a connection failure (which the runner may retry), not a hang.
    let server = RawServer::always(Vec::new(), After::Close).await;
    let f = openai(&server, true)
        .call(&request(greedy()))
        .await
        .unwrap_err();
    assert_eq!(f.class, ErrorClass::Connection, "{}", f.message);
    assert!(!f.after_first_byte);
}

#[test]
fn a_retry_after_too_long_to_represent_is_the_longest_wait_never_a_panic() {
    for (ms, secs) in [
        (None, Some("1e20")),
        (None, Some("18446744073709551616")),
        (None, Some("1e400")),
        (Some("1e23"), Some("1")),
    ] {
        assert_eq!(retry_wait(ms, secs), Some(Duration::MAX), "{ms:?} {secs:?}");
    }
    assert_eq!(
        retry_wait(Some("1e20"), None),
        Some(Duration::from_secs(100_000_000_000_000_000))
    );
    for (ms, secs) in [(None, Some("-1")), (None, Some("NaN")), (None, Some("abc"))] {
        assert_eq!(retry_wait(ms, secs), None, "{ms:?} {secs:?}");
    }
    assert_eq!(
        retry_wait(Some("1500"), Some("9")),
        Some(Duration::from_millis(1500))
    );
    assert_eq!(
        retry_wait(Some("soon"), Some("2.5")),
        Some(Duration::from_millis(2500))
    );
}

#[tokio::test]
async fn a_rate_limit_asking_for_1e20_seconds_fails_the_call_at_once() {
    let server = RawServer::always(whole(
            429,
            &[("retry-after", "1e20")],
            r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
        ), After::KeepAlive).await;
    let f = openai(&server, false)
        .call(&request(greedy()))
        .await
        .unwrap_err();
    assert_eq!(f.class, ErrorClass::RateLimit);
    assert_eq!(f.retry_after, Some(Duration::MAX));
    assert_eq!(
        RetryPolicy::default().wait(&f, 1, 0.5),
        None,
        "a wait past the policy's limit is not waited: the call fails"
    );
    assert!(
        f.message.contains("(Retry-After 100000000000000000000 s)"),
        "{}",
        f.message
    );
}

#[tokio::test]
async fn geminis_retry_delay_of_1e20_seconds_is_no_panic() {
    let body = json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
        "message": "You exceeded your current quota.",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1e20s"}]}});
    let server = RawServer::always(
        whole(
            429,
            &[("content-type", "application/json")],
            &body.to_string(),
        ),
        After::KeepAlive,
    )
    .await;
    let mut s = Settings::new("gem", &server.base_url(), "gemini-test");
    s.stream = false;
    s.logprobs = false;
    let f = GeminiBackend::new(s)
        .unwrap()
        .call(&request(greedy()))
        .await
        .unwrap_err();
    assert_eq!(f.class, ErrorClass::RateLimit);
    assert_eq!(f.retry_after, Some(Duration::MAX));
}

#[tokio::test]
async fn a_run_against_retry_after_1e20_records_every_call_and_completes() {
    let server = RawServer::start(|n, _| RawReply {
        bytes: if n % 2 == 0 {
            whole(
                429,
                &[("retry-after", "1e20")],
                r#"{"error":{"message":"slow down"}}"#,
            )
        } else {
            whole(
                429,
                &[("retry-after-ms", "1e20")],
                r#"{"error":{"message":"slow down"}}"#,
            )
        },
        after: After::KeepAlive,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[providers.lab]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\nstream = false\nmax_retries = 2\n",
        server.base_url()
    );
    let protocol = "[protocol]\nname = \"wait\"\n[prompt]\nuser = \"Hi\"\n[params]\ntemperature = 0.0\n[campaign]\nrepeats = 12\nconcurrency = 4\n\n[[targets]]\nprovider = \"lab\"\n";
    let out = run::run_reprise(dir.path(), &config, protocol, &[], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let (_, lines) = run::archive_lines(dir.path());
    let calls: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "call").collect();
    assert_eq!(
        calls.len(),
        12,
        "one attempt per call, none lost: {calls:?}"
    );
    assert!(calls.iter().all(|c| c["error"]["class"] == "rate_limit"));
    assert!(
        calls.iter().all(|c| c["retried"].is_null()),
        "never retried"
    );
    let close = lines.last().unwrap();
    assert_eq!(close["kind"], "close");
    assert_eq!(close["outcome"], "completed");
    let posts = server
        .answered()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 12);
}

/// OpenAI's answer to `max_tokens` from a reasoning model, as its API sends it.
const REFUSED_MAX_TOKENS: &str = r#"{"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}}"#;

/// A reasoning model's endpoint: refuses `max_tokens`, answers `max_completion_tokens`.
async fn reasoning_model() -> RawServer {
    RawServer::start(|_, request| {
        let body = request.json();
        let bytes = if body.get("max_tokens").is_some() {
            whole(400, &[], REFUSED_MAX_TOKENS)
        } else {
            whole(200, &[], &completion_body("Paris."))
        };
        RawReply {
            bytes,
            after: After::KeepAlive,
        }
    })
    .await
}

#[tokio::test]
async fn reasoning_models_get_max_completion_tokens_where_configured() {
    let server = reasoning_model().await;
    let refused = openai(&server, false)
        .call(&request(greedy()))
        .await
        .unwrap_err();
    assert_eq!(refused.class, ErrorClass::RefusedParameter);
    assert!(refused.message.contains("refused parameter `max_tokens`"));
    assert!(
        refused.message.ends_with(
            "; max_tokens_field = \"max_completion_tokens\" on the provider sends it as this model asks"
        ),
        "{}",
        refused.message
    );

    let mut s = Settings::new("lab", &server.base_url(), "o3-mini");
    s.stream = false;
    s.logprobs = false;
    s.max_tokens_field = TokenLimitField::MaxCompletionTokens;
    let backend = OpenAiBackend::new(s).unwrap();
    let reply = backend.call(&request(greedy())).await.unwrap();
    assert_eq!(reply.text, "Paris.");
    let sent = server.answered().last().unwrap().json();
    assert_eq!(sent["max_completion_tokens"], 16);
    assert!(sent.get("max_tokens").is_none());
}

#[test]
fn openais_own_endpoint_defaults_to_max_completion_tokens_others_to_max_tokens() {
    let field = |base: &str| Settings::new("p", base, "m").max_tokens_field;
    assert_eq!(
        field("https://api.openai.com/v1"),
        TokenLimitField::MaxCompletionTokens
    );
    for compatible in [
        "http://127.0.0.1:8080/v1",
        "https://api.groq.com/openai/v1",
        "https://api.deepseek.com/v1",
        "https://openrouter.ai/api/v1",
    ] {
        assert_eq!(
            field(compatible),
            TokenLimitField::MaxTokens,
            "{compatible}"
        );
    }
    let body = OpenAiBackend::new(Settings::new("openai", "https://api.openai.com/v1", "o3"))
        .unwrap()
        .request_body(&request(greedy()));
    assert_eq!(body["max_completion_tokens"], 16);
    assert!(body.get("max_tokens").is_none());
}

fn anthropic_events(text_events: &[(&str, Value)]) -> Vec<String> {
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut events = vec![event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_01", "type": "message",
            "role": "assistant", "model": "claude-sonnet-4-5-20250929", "content": [],
            "stop_reason": null, "usage": {"input_tokens": 12, "output_tokens": 1}}}),
    )];
    for (name, data) in text_events {
        events.push(event(name, data.clone()));
    }
    events
}

fn anthropic_text() -> Vec<(&'static str, Value)> {
    vec![
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Paris."}}),
        ),
    ]
}

fn anthropic_end() -> Vec<(&'static str, Value)> {
    vec![
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ]
}

fn stream_error(kind: &str, message: &str) -> (&'static str, Value) {
    (
        "error",
        json!({"type": "error", "error": {"type": kind, "message": message}}),
    )
}

fn claude(server: &RawServer) -> AnthropicBackend {
    let mut s = Settings::new("claude", &server.base_url(), "claude-sonnet-4-5");
    s.stream = true;
    AnthropicBackend::new(s).unwrap()
}

#[tokio::test]
async fn anthropic_errors_in_the_stream_before_any_text_are_retried_after_never() {
    let before = |kind: &'static str| anthropic_events(&[stream_error(kind, "Overloaded")]);
    let mut after = anthropic_text();
    after.push(stream_error("overloaded_error", "Overloaded"));
    let scripts = vec![
        (before("overloaded_error"), ErrorClass::Server, true),
        (before("rate_limit_error"), ErrorClass::RateLimit, true),
        (before("api_error"), ErrorClass::Server, true),
        (anthropic_events(&after), ErrorClass::Server, false),
    ];
    for (events, class, retried) in scripts {
        let server =
            RawServer::always(chunked("text/event-stream", &[], &events), After::KeepAlive).await;
        let f = claude(&server).call(&request(greedy())).await.unwrap_err();
        assert_eq!(f.class, class, "{}", f.message);
        assert_eq!(f.after_first_byte, !retried, "{}", f.message);
        assert_eq!(
            RetryPolicy::default().wait(&f, 1, 0.5).is_some(),
            retried,
            "{}",
            f.message
        );
    }
}

#[tokio::test]
async fn an_overloaded_stream_is_retried_by_the_runner_and_the_retry_is_archived() {
    let server = RawServer::start(|n, _| {
        let mut events = anthropic_text();
        events.extend(anthropic_end());
        let events = if n == 0 {
            anthropic_events(&[stream_error("overloaded_error", "Overloaded")])
        } else {
            anthropic_events(&events)
        };
        RawReply {
            bytes: chunked("text/event-stream", &[], &events),
            after: After::KeepAlive,
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[providers.claude]\nkind = \"anthropic\"\nbase_url = \"{}\"\nmodel = \"claude-sonnet-4-5\"\npreflight = false\n",
        server.base_url()
    );
    let protocol = "[protocol]\nname = \"o\"\n[prompt]\nuser = \"Hi\"\n[params]\ntemperature = 0.0\n[campaign]\nrepeats = 1\nconcurrency = 1\n\n[[targets]]\nprovider = \"claude\"\n";
    let out = run::run_reprise(dir.path(), &config, protocol, &[], &[]).await;
    assert!(out.status.success(), "{out:?}");
    let (_, lines) = run::archive_lines(dir.path());
    let calls: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "call").collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["retried"], true);
    assert_eq!(calls[0]["error"]["class"], "server");
    assert_eq!(calls[1]["status"], "ok");
    assert_eq!(calls[1]["output"], "Paris.");
}

#[tokio::test]
async fn the_last_event_without_its_blank_line_completes_the_reply() {
    // OpenAI-compatible: `data: [DONE]` with nothing after it.
    let mut events = completion_events("Paris.");
    *events.last_mut().unwrap() = "data: [DONE]".into();
    // The finish chunk is the last, without its blank line and with no [DONE].
    let mut finish_last = completion_events("Paris.");
    finish_last.pop();
    let last = finish_last.pop().unwrap();
    finish_last.push(last.trim_end().to_string());
    for events in [events, finish_last] {
        let server =
            RawServer::always(chunked("text/event-stream", &[], &events), After::KeepAlive).await;
        let reply = openai(&server, true)
            .call(&request(greedy()))
            .await
            .unwrap();
        assert_eq!(
            (reply.text.as_str(), reply.finish_reason.as_deref()),
            ("Paris.", Some("stop"))
        );
    }
    // Anthropic: message_stop without its blank line.
    let mut tail = anthropic_text();
    tail.extend(anthropic_end());
    let mut events = anthropic_events(&tail);
    let last = events.pop().unwrap();
    events.push(last.trim_end().to_string());
    let server =
        RawServer::always(chunked("text/event-stream", &[], &events), After::KeepAlive).await;
    let reply = claude(&server).call(&request(greedy())).await.unwrap();
    assert_eq!(reply.text, "Paris.");
}

#[tokio::test]
async fn a_last_event_cut_mid_line_is_truncated_not_malformed() {
    let mut events = completion_events("Paris.");
    events.pop();
    let finish = events.pop().unwrap();
    events.push(finish[..finish.len() / 2].to_string());
    let server =
        RawServer::always(chunked("text/event-stream", &[], &events), After::KeepAlive).await;
    let f = openai(&server, true)
        .call(&request(greedy()))
        .await
        .unwrap_err();
    assert_eq!(f.class, ErrorClass::TruncatedStream, "{}", f.message);
    assert!(f.after_first_byte);
}

#[tokio::test]
async fn a_gemini_reply_with_text_and_no_finish_reason_is_a_reply() {
    let body = json!({"candidates": [{"content": {"parts": [{"text": "Paris."}], "role": "model"},
        "index": 0}], "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2,
        "totalTokenCount": 7}, "modelVersion": "gemini-2.5-flash", "responseId": "r-1"});
    let empty = json!({"candidates": [{"content": {"parts": [], "role": "model"}, "index": 0}]});
    let server = RawServer::start(move |n, _| RawReply {
        bytes: whole(200, &[], &if n == 0 { &body } else { &empty }.to_string()),
        after: After::KeepAlive,
    })
    .await;
    let mut s = Settings::new("gem", &server.base_url(), "gemini-2.5-flash");
    s.stream = false;
    s.logprobs = false;
    let backend = GeminiBackend::new(s).unwrap();
    let reply = backend.call(&request(greedy())).await.unwrap();
    assert_eq!((reply.text.as_str(), reply.finish_reason), ("Paris.", None));
    let f = backend.call(&request(greedy())).await.unwrap_err();
    assert_eq!(
        f.class,
        ErrorClass::MalformedResponse,
        "no text, no finish: no reply"
    );
}

/// An Anthropic-compatible server as llama.cpp is: `/v1/messages` served, no model lookup
/// (its 404 is not Anthropic's error), no key needed. `lookup` answers `GET /v1/models/{id}`.
async fn messages_server(lookup: (u16, &'static str)) -> RawServer {
    RawServer::start(move |_, request| {
        let bytes = if request.method == "GET" {
            whole(lookup.0, &[], lookup.1)
        } else {
            let mut events = anthropic_text();
            events.extend(anthropic_end());
            chunked("text/event-stream", &[], &anthropic_events(&events))
        };
        RawReply {
            bytes,
            after: After::KeepAlive,
        }
    })
    .await
}

const LLAMA_404: &str =
    r#"{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}"#;
const ANTHROPIC_404: &str = r#"{"type":"error","error":{"type":"not_found_error","message":"model: claude-nope"},"request_id":"req_011"}"#;

fn keyless_config(server: &RawServer, model: &str) -> String {
    format!(
        "[providers.llama]\nkind = \"anthropic\"\nbase_url = \"{}\"\nmodel = \"{model}\"\n",
        server.base_url()
    )
}

const ONE_CALL: &str = "[protocol]\nname = \"m\"\n[prompt]\nuser = \"Hi\"\n[campaign]\nrepeats = 2\nconcurrency = 1\n\n[[targets]]\nprovider = \"llama\"\n";

#[tokio::test]
async fn a_compatible_server_without_a_model_lookup_is_not_refused() {
    let server = messages_server((404, LLAMA_404)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run::run_reprise(
        dir.path(),
        &keyless_config(&server, "local"),
        ONE_CALL,
        &[],
        &[],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let posts = server
        .answered()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 2);
}

#[tokio::test]
async fn an_unknown_model_is_refused_before_the_campaign_without_blaming_a_key_never_sent() {
    let server = messages_server((404, ANTHROPIC_404)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run::run_reprise(
        dir.path(),
        &keyless_config(&server, "claude-nope"),
        ONE_CALL,
        &[],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("claude-nope is not a model this server has"),
        "{stderr}"
    );
    assert!(!stderr.contains("key"), "{stderr}");
    assert!(
        server.answered().iter().all(|r| r.method == "GET"),
        "nothing was run"
    );

    // The same server, checks skipped: the campaign runs into the server's answers.
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}preflight = false\n",
        keyless_config(&server, "claude-nope")
    );
    let out = run::run_reprise(dir.path(), &config, ONE_CALL, &[], &[]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Claude's answer to both `temperature` and `top_p`, as the API sends it.
const BOTH_REFUSED: &str = r#"{"type":"error","error":{"type":"invalid_request_error","message":"`temperature` and `top_p` cannot both be specified for this model. Please use only one."},"request_id":"req_011CT"}"#;

#[tokio::test]
async fn claude_refusing_temperature_with_top_p_is_said_before_anything_is_sent() {
    let server = RawServer::start(|_, request| {
        let body = request.json();
        let bytes = if request.method == "GET" {
            whole(
                200,
                &[],
                r#"{"type":"model","id":"claude-sonnet-4-5-20250929"}"#,
            )
        } else if body.get("temperature").is_some() && body.get("top_p").is_some() {
            whole(400, &[], BOTH_REFUSED)
        } else {
            let mut events = anthropic_text();
            events.extend(anthropic_end());
            chunked("text/event-stream", &[], &anthropic_events(&events))
        };
        RawReply {
            bytes,
            after: After::KeepAlive,
        }
    })
    .await;
    let config = format!(
        "[providers.claude]\nkind = \"anthropic\"\nbase_url = \"{}\"\nmodel = \"claude-sonnet-4-5\"\n",
        server.base_url()
    );
    let seeded = std::fs::read_to_string("sample-protocols/seeded-sampling.toml").unwrap();
    let protocol = format!("{seeded}\n[[targets]]\nprovider = \"claude\"\n");
    let dir = tempfile::tempdir().unwrap();
    let out = run::run_reprise(dir.path(), &config, &protocol, &[], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "target `claude`: claude-sonnet-4-5 refuses `temperature` and `top_p` together; add omit = [\"top_p\"]"
        ),
        "{stderr}"
    );
    assert!(server.answered().is_empty(), "nothing was sent");

    // The user's choice: this target does not send top_p.
    let protocol = format!("{protocol}omit = [\"top_p\"]\n");
    let dir = tempfile::tempdir().unwrap();
    let out = run::run_reprise(
        dir.path(),
        &config,
        &protocol.replace("repeats = 100", "repeats = 3"),
        &[],
        &[],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let posts: Vec<Value> = server
        .answered()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.json())
        .collect();
    assert_eq!(posts.len(), 3);
    assert!(posts
        .iter()
        .all(|b| b.get("top_p").is_none() && b["temperature"] == 1.0));
    let (_, lines) = run::archive_lines(dir.path());
    let sent = &lines[0]["conditions"]["targets"][0]["requests"][0]["body"];
    assert!(
        sent.get("top_p").is_none(),
        "the conditions show what was sent: {sent}"
    );
}

#[tokio::test]
async fn anthropic_version_is_configurable() {
    let server = messages_server((404, LLAMA_404)).await;
    let mut s = Settings::new("claude", &server.base_url(), "local");
    s.anthropic_version = Some("2025-01-01".into());
    let backend = AnthropicBackend::new(s).unwrap();
    backend.call(&request(greedy())).await.unwrap();
    let sent = server.answered();
    assert_eq!(sent[0].header("anthropic-version"), Some("2025-01-01"));
    assert_eq!(
        backend
            .headers()
            .get("anthropic-version")
            .map(String::as_str),
        Some("2025-01-01"),
        "recorded in the conditions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_streams_from_a_server_that_really_closes_after_each_all_succeed() {
    // As llama.cpp does: the reply says keep-alive, the connection is closed right after it.
    // Whether a pooled client sees the close before reusing the connection is a race; the
    // calls must not depend on winning it.
    let server = keep_alive_streams(After::Close).await;
    let backend = std::sync::Arc::new(openai(&server, true));
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let backend = backend.clone();
        calls.spawn(async move {
            let mut failed = Vec::new();
            for _ in 0..300 / 8 + 1 {
                if let Err(f) = backend.call(&request(greedy())).await {
                    failed.push(f.message);
                }
            }
            failed
        });
    }
    let mut failed = Vec::new();
    while let Some(done) = calls.join_next().await {
        failed.extend(done.unwrap());
    }
    assert_eq!(failed, Vec::<String>::new());
}

#[tokio::test]
async fn an_error_inside_a_200_stream_is_retried_only_before_any_text() {
    // A gateway passing on an upstream failure after it has sent its 200 (LiteLLM's shape).
    let error = "data: {\"error\": {\"message\": \"litellm.ServiceUnavailableError: upstream overloaded\", \"type\": null, \"param\": null, \"code\": \"503\"}}\n\n";
    let mut after_text = completion_events("Par");
    after_text.truncate(2);
    after_text.push(error.to_string());
    for (events, retried) in [(vec![error.to_string()], true), (after_text, false)] {
        let server =
            RawServer::always(chunked("text/event-stream", &[], &events), After::KeepAlive).await;
        let f = openai(&server, true)
            .call(&request(greedy()))
            .await
            .unwrap_err();
        assert_eq!(f.class, ErrorClass::Server, "{}", f.message);
        assert!(f.message.contains("upstream overloaded"), "{}", f.message);
        assert_eq!(RetryPolicy::default().wait(&f, 1, 0.5).is_some(), retried);
    }
}

#[tokio::test]
async fn a_server_refusing_a_request_that_carried_no_key_is_not_said_to_refuse_a_key() {
    let server = RawServer::always(
        whole(401, &[], r#"{"error":{"message":"Unauthorized"}}"#),
        After::KeepAlive,
    )
    .await;
    let f = openai(&server, false)
        .call(&request(greedy()))
        .await
        .unwrap_err();
    assert_eq!(f.class, ErrorClass::Auth);
    assert_eq!(
        f.message,
        "provider `lab` refused the request, which carried no key (api_key_env) (HTTP 401): Unauthorized"
    );
}
