//! The `openai` client against a loopback server that speaks the Chat Completions wire
//! format: the exact request, and whole and streamed replies — with the API key nowhere but
//! on the wire. tests/transport.rs checks its error classes, timeouts and cut streams with
//! the other kinds'; tests/openai_run.rs drives `reprise run` end to end.

#[path = "support/chat_server.rs"]
mod chat_server;
#[path = "support/request.rs"]
mod request;

use request::request;
use std::time::Duration;

use chat_server::{transcript, whole_reply, Canned, Server};
use reprise::providers::http::Settings;
use reprise::providers::key::ApiKey;
use reprise::providers::openai::OpenAiBackend;
use reprise::providers::{Backend, Reply};
use reprise::record::Usage;
use serde_json::json;

const KEY: &str = "sk-test-FAKEKEY-7f3a9c";

fn settings(server: &Server, stream: bool) -> Settings {
    let mut s = Settings::new("serve", &server.base_url(), "reprise-local-1");
    s.key = ApiKey::new(KEY);
    s.stream = stream;
    s.headers.insert("X-Team".into(), "lab".into());
    s
}

fn paris(ttft: Option<Duration>, served: &[(&str, &str)]) -> Reply {
    Reply {
        text: "Paris.".into(),
        tokens: Some(vec!["Paris".into(), ".".into()]),
        logprobs: Some(vec![-0.125, -0.5]),
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
        ttft,
        rate_limit: Default::default(),
    }
}

#[tokio::test]
async fn a_whole_reply_round_trip_pins_the_request_and_the_reply() {
    let server = Server::start(
        vec![Canned::Whole {
            status: 200,
            headers: vec![("x-request-id", "req-77")],
            body: whole_reply().to_string(),
        }],
        None,
    )
    .await;
    let backend = OpenAiBackend::new(settings(&server, false)).unwrap();
    let reply = backend.call(&request()).await.unwrap();
    assert_eq!(
        reply,
        paris(
            None,
            &[
                ("model", "reprise-local-1-rev2"),
                ("request_id", "req-77"),
                ("response_id", "chatcmpl-42"),
                ("service_tier", "default"),
                ("system_fingerprint", "fp_abc123"),
            ]
        )
    );
    let got = server.received();
    assert_eq!(got.len(), 1, "one attempt, no retry");
    let r = &got[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["x-team"], "lab");
    let golden = json!({
        "model": "reprise-local-1",
        "messages": [
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "Capital of France?"}
        ],
        "temperature": 0.0, "max_tokens": 8, "seed": 42, "logprobs": true
    });
    assert_eq!(r.body, golden);
    // What the conditions record is what was sent, and holds no secret.
    assert_eq!(backend.request_body(&request()), golden);
    assert!(!format!("{}{}", backend.endpoint(), golden).contains(KEY));
}

#[tokio::test]
async fn a_stream_is_reassembled_with_usage_tokens_and_ttft() {
    let server = Server::start(
        vec![Canned::Events {
            chunks: transcript(),
            cut: false,
        }],
        None,
    )
    .await;
    let backend = OpenAiBackend::new(settings(&server, true)).unwrap();
    let mut reply = backend.call(&request()).await.unwrap();
    let ttft = reply.ttft.take();
    assert!(ttft.is_some_and(|t| t < Duration::from_secs(5)), "{ttft:?}");
    assert_eq!(
        reply,
        paris(
            None,
            &[
                ("model", "reprise-local-1-rev2"),
                ("request_id", "req-stream-1"),
                ("response_id", "chatcmpl-s1"),
                ("system_fingerprint", "fp_s"),
            ]
        )
    );
    let body = &server.received()[0].body;
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert!(
        body.get("top_k").is_none() && body.get("n").is_none(),
        "{body}"
    );
}
