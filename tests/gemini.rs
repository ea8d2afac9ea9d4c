//! The `gemini` client against a loopback server that speaks the Gemini API: the exact
//! request, whole and streamed replies, the `reprise providers` check — with the API key
//! nowhere but in the `x-goog-api-key` header. tests/transport.rs checks its error classes,
//! timeouts and cut streams with the other kinds'; tests/gemini_run.rs drives `reprise run`
//! end to end.

#[path = "support/gemini_server.rs"]
mod gemini_server;
#[path = "support/scripted.rs"]
mod scripted;

use std::time::Duration;

use gemini_server::{
    base_url, error_body, json, transcript, whole_response, Canned, MODEL_VERSION,
};
use reprise::protocol::Params;
use reprise::providers::gemini::GeminiBackend;
use reprise::providers::http::Settings;
use reprise::providers::key::ApiKey;
use reprise::providers::{Backend, ChatRequest, Check, Reply};
use reprise::record::Usage;
use scripted::Scripted;
use serde_json::json as j;

const KEY: &str = "AIza-test-FAKEKEY-9e1f";

fn settings(server: &Scripted, stream: bool) -> Settings {
    let mut s = Settings::new("gem", &base_url(server), "gemini-test");
    s.key = ApiKey::new(KEY);
    s.stream = stream;
    s.logprobs = false;
    s
}

fn request() -> ChatRequest {
    ChatRequest {
        system: Some("Answer in one word.".into()),
        user: "Capital of France?".into(),
        params: Params {
            temperature: Some(0.0),
            seed: Some(42),
            max_tokens: Some(8),
            ..Params::default()
        },
    }
}

fn paris(response_id: &str, ttft: Option<Duration>) -> Reply {
    Reply {
        text: "Paris.".into(),
        tokens: None,
        logprobs: None,
        finish_reason: Some("stop".into()),
        usage: Some(Usage {
            prompt_tokens: 9,
            completion_tokens: 2,
            reasoning_tokens: None,
        }),
        served: [("model", MODEL_VERSION), ("response_id", response_id)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ttft,
        rate_limit: Default::default(),
    }
}

#[tokio::test]
async fn a_whole_reply_round_trip_pins_the_request_and_the_reply() {
    let server =
        gemini_server::start(vec![json(200, whole_response().to_string())], None, false).await;
    let reply = GeminiBackend::new(settings(&server, false))
        .unwrap()
        .call(&request())
        .await
        .unwrap();
    assert_eq!(reply, paris("resp-whole-1", None));
    let got = &server.received()[0];
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/v1beta/models/gemini-test:generateContent");
    assert_eq!(got.query, None);
    assert_eq!(got.headers["x-goog-api-key"], KEY);
    assert!(got.headers.get("authorization").is_none());
    assert_eq!(
        got.body,
        j!({
            "contents": [{"role": "user", "parts": [{"text": "Capital of France?"}]}],
            "systemInstruction": {"parts": [{"text": "Answer in one word."}]},
            "generationConfig": {"temperature": 0.0, "maxOutputTokens": 8, "seed": 42}
        })
    );
}

#[tokio::test]
async fn a_stream_is_reassembled_with_usage_and_ttft() {
    let server = gemini_server::start(
        vec![Canned::Stream {
            chunks: transcript(),
            cut: false,
        }],
        None,
        false,
    )
    .await;
    let mut reply = GeminiBackend::new(settings(&server, true))
        .unwrap()
        .call(&request())
        .await
        .unwrap();
    assert!(reply.ttft.is_some());
    reply.ttft = None;
    assert_eq!(reply, paris("resp-stream-1", None));
    let got = &server.received()[0];
    assert_eq!(got.path, "/v1beta/models/gemini-test:streamGenerateContent");
    assert_eq!(got.query.as_deref(), Some("alt=sse"));
}

#[tokio::test]
async fn logprobs_when_asked_become_tokens() {
    let mut body = whole_response();
    body["candidates"][0]["logprobsResult"] = j!({"chosenCandidates": [
        {"token": "Paris", "logProbability": -0.125}, {"token": ".", "logProbability": -0.5}]});
    let server = gemini_server::start(vec![json(200, body.to_string())], None, false).await;
    let mut s = settings(&server, false);
    s.logprobs = true;
    let reply = GeminiBackend::new(s)
        .unwrap()
        .call(&request())
        .await
        .unwrap();
    assert_eq!(reply.tokens, Some(vec!["Paris".into(), ".".into()]));
    assert_eq!(reply.logprobs, Some(vec![-0.125, -0.5]));
    assert_eq!(
        server.received()[0].body["generationConfig"]["responseLogprobs"],
        true
    );
}

#[tokio::test]
async fn the_check_and_the_identity_ask_for_the_model_without_a_billable_call() {
    let model = j!({"name": "models/gemini-test", "version": "001", "displayName": "Gemini Test"});
    let bad_key = error_body(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        j!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]),
    );
    let server = gemini_server::start(
        vec![
            json(200, model.to_string()),
            json(404, error_body(404, "NOT_FOUND", "not found", j!([]))),
            json(400, bad_key),
            json(200, model.to_string()),
        ],
        None,
        false,
    )
    .await;
    let backend = GeminiBackend::new(settings(&server, true)).unwrap();
    let models = format!("{}/models", base_url(&server));
    assert_eq!(
        backend.check().await,
        vec![
            Check::pass("endpoint", format!("{models} answered")),
            Check::pass(
                "model",
                "gemini-test is listed (as models/gemini-test)".to_string()
            ),
        ]
    );
    assert_eq!(
        backend.check().await,
        vec![
            Check::pass("endpoint", format!("{models} answered")),
            Check::fail(
                "model",
                "gemini-test is not a model this API serves".to_string()
            ),
        ]
    );
    assert_eq!(
        backend.check().await,
        vec![Check::fail(
            "endpoint",
            format!("{models} refused the key (HTTP 400)")
        )]
    );
    let identity = backend.server_identity().await.unwrap();
    assert_eq!(
        identity.into_iter().collect::<Vec<_>>(),
        vec![
            ("name".to_string(), "models/gemini-test".to_string()),
            ("version".to_string(), "001".to_string())
        ]
    );
    for got in server.received() {
        assert_eq!(got.method, "GET");
        assert_eq!(got.path, "/v1beta/models/gemini-test");
        assert_eq!(got.headers["x-goog-api-key"], KEY);
    }
}
