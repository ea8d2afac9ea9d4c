//! The `anthropic` client against a loopback server that speaks the Messages wire format: the
//! exact request, whole and streamed replies, an error event mid-stream, the `reprise
//! providers` check — with the API key nowhere but in the `x-api-key` header.
//! tests/transport.rs checks its error classes, timeouts and cut streams with the other
//! kinds'; tests/anthropic_run.rs drives `reprise run` end to end.

#[path = "support/messages_server.rs"]
mod messages_server;
#[path = "support/request.rs"]
mod request;
#[path = "support/scripted.rs"]
mod scripted;

use request::request;
use std::time::Duration;

use messages_server::{error_body, transcript, whole, whole_message, Canned, Server, REQUEST_ID};
use reprise::providers::anthropic::AnthropicBackend;
use reprise::providers::http::Settings;
use reprise::providers::key::ApiKey;
use reprise::providers::{Backend, CallFailure, Check, Reply};
use reprise::record::{ErrorClass, Usage};
use serde_json::json;

const KEY: &str = "sk-ant-test-FAKEKEY-51c0de";

fn settings(server: &Server, stream: bool) -> Settings {
    let mut s = Settings::new("claude", &server.base_url(), "claude-test");
    s.key = ApiKey::new(KEY);
    s.stream = stream;
    s.headers.insert("anthropic-beta".into(), "x-2025".into());
    s
}

fn paris(served: &[(&str, &str)]) -> Reply {
    Reply {
        text: "Paris.".into(),
        tokens: None,
        logprobs: None,
        finish_reason: Some("stop".into()),
        usage: Some(Usage {
            prompt_tokens: 12,
            completion_tokens: 2,
            reasoning_tokens: None,
        }),
        served: served
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ttft: None,
        rate_limit: Default::default(),
    }
}

#[tokio::test]
async fn a_whole_reply_round_trip_pins_the_request_and_the_reply() {
    let server = Server::start(
        vec![Canned::Whole {
            status: 200,
            headers: vec![],
            body: whole_message().to_string(),
        }],
        None,
    )
    .await;
    let backend = AnthropicBackend::new(settings(&server, false)).unwrap();
    let reply = backend.call(&request()).await.unwrap();
    assert_eq!(
        reply,
        paris(&[
            ("inference_geo", "us"),
            ("model", "claude-test-20250101"),
            ("request_id", REQUEST_ID),
            ("response_id", "msg_01Whole"),
            ("service_tier", "standard"),
        ])
    );
    let got = server.received();
    assert_eq!(got.len(), 1, "one attempt, no retry");
    let r = &got[0];
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.headers["x-api-key"], KEY);
    assert_eq!(r.headers["anthropic-version"], "2023-06-01");
    assert_eq!(r.headers["anthropic-beta"], "x-2025");
    assert_eq!(r.headers["content-type"], "application/json");
    assert!(r.headers.get("authorization").is_none());
    // No seed: the Messages API has none, so it is not sent.
    let golden = json!({
        "model": "claude-test",
        "max_tokens": 8,
        "system": "Answer in one word.",
        "messages": [{"role": "user", "content": "Capital of France?"}],
        "temperature": 0.0, "top_k": 5
    });
    assert_eq!(r.body, golden);
    // What the conditions record is what was sent, and holds no secret.
    assert_eq!(backend.request_body(&request()), golden);
    let recorded = format!("{}{golden}{:?}", backend.endpoint(), backend.headers());
    assert!(!recorded.contains(KEY));
}

#[tokio::test]
async fn a_stream_is_reassembled_with_usage_and_ttft() {
    let server = Server::start(
        vec![Canned::Stream {
            chunks: transcript(),
            cut: false,
        }],
        None,
    )
    .await;
    let backend = AnthropicBackend::new(settings(&server, true)).unwrap();
    let mut reply = backend.call(&request()).await.unwrap();
    let ttft = reply.ttft.take();
    assert!(ttft.is_some_and(|t| t < Duration::from_secs(5)), "{ttft:?}");
    assert_eq!(
        reply,
        paris(&[
            ("model", "claude-test-20250101"),
            ("request_id", REQUEST_ID),
            ("response_id", "msg_01Stream"),
            ("service_tier", "standard"),
        ])
    );
    assert_eq!(server.received()[0].body["stream"], true);
}

async fn failure_of(canned: Canned, tweak: impl FnOnce(&mut Settings)) -> CallFailure {
    let server = Server::start(vec![canned], None).await;
    let mut s = settings(&server, true);
    tweak(&mut s);
    let f = AnthropicBackend::new(s)
        .unwrap()
        .call(&request())
        .await
        .unwrap_err();
    assert!(!f.message.contains(KEY), "{}", f.message);
    assert!(!f.message.contains('\n'), "{}", f.message);
    assert_eq!(server.received().len(), 1, "exactly one attempt");
    f
}

#[tokio::test]
async fn an_error_event_after_the_status_is_never_retried() {
    let mut chunks = transcript();
    chunks.truncate(4); // message_start … "Paris"
    chunks.push(format!(
        "event: error\ndata: {}\n\n",
        error_body("overloaded_error", "Overloaded")
    ));
    let f = failure_of(Canned::Stream { chunks, cut: false }, |_| {}).await;
    assert_eq!(f.class, ErrorClass::Server);
    assert!(f.after_first_byte);
    assert_eq!(
        f.message,
        "provider `claude` reported an error mid-reply (overloaded_error): Overloaded"
    );
}

#[tokio::test]
async fn the_check_asks_for_the_model_without_a_billable_call() {
    let model = json!({"type": "model", "id": "claude-test-20250101",
                       "display_name": "Claude Test", "created_at": "2025-01-01T00:00:00Z"});
    let server = Server::start(
        vec![
            whole(200, vec![], model.to_string()),
            whole(
                404,
                vec![],
                error_body("not_found_error", "model: claude-test"),
            ),
            whole(
                401,
                vec![],
                error_body("authentication_error", &format!("invalid x-api-key {KEY}")),
            ),
        ],
        None,
    )
    .await;
    let backend = AnthropicBackend::new(settings(&server, true)).unwrap();
    let models = format!("{}/models", server.base_url());
    assert_eq!(
        backend.check().await,
        [
            Check::pass("endpoint", format!("{models} answered")),
            Check::pass("model", "claude-test is listed (as claude-test-20250101)"),
        ]
    );
    assert_eq!(
        backend.check().await,
        [
            Check::pass("endpoint", format!("{models} answered")),
            Check::fail("model", "claude-test is not a model this key can use"),
        ]
    );
    assert_eq!(
        backend.check().await,
        [Check::fail(
            "endpoint",
            format!("{models} refused the key (HTTP 401)")
        )]
    );
    let got = server.received();
    assert!(
        got.iter().all(|r| r.path == "/v1/models/claude-test"),
        "{got:?}"
    );
    assert!(got.iter().all(|r| r.headers["x-api-key"] == KEY));
    assert!(got
        .iter()
        .all(|r| r.headers["anthropic-version"] == "2023-06-01"));
}
