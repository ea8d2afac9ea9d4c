//! The `openai` client against a loopback server that speaks the Chat Completions wire
//! format: the exact request, whole and streamed replies, and every error class — with the
//! API key nowhere but on the wire. tests/openai_run.rs drives `reprise run` end to end.

#[path = "support/chat_server.rs"]
mod chat_server;

use std::time::Duration;

use chat_server::{transcript, whole_reply, Canned, Server};
use reprise::protocol::Params;
use reprise::providers::http::Settings;
use reprise::providers::key::ApiKey;
use reprise::providers::openai::OpenAiBackend;
use reprise::providers::{Backend, ChatRequest, Reply};
use reprise::record::{ErrorClass, Usage};
use serde_json::json;

const KEY: &str = "sk-test-FAKEKEY-7f3a9c";

fn settings(server: &Server, stream: bool) -> Settings {
    let mut s = Settings::new("serve", &server.base_url(), "reprise-local-1");
    s.key = ApiKey::new(KEY);
    s.stream = stream;
    s.headers.insert("X-Team".into(), "lab".into());
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
            top_k: Some(5),
            ..Params::default()
        },
    }
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

async fn failure_of(canned: Canned, tweak: impl FnOnce(&mut Settings)) -> (ErrorClass, String) {
    let server = Server::start(vec![canned], None).await;
    let mut s = settings(&server, true);
    tweak(&mut s);
    let f = OpenAiBackend::new(s)
        .unwrap()
        .call(&request())
        .await
        .unwrap_err();
    assert!(!f.message.contains(KEY), "{}", f.message);
    assert!(!f.message.contains('\n'), "{}", f.message);
    assert_eq!(server.received().len(), 1, "exactly one attempt");
    (f.class, f.message)
}

fn error_body(message: &str, param: Option<&str>) -> String {
    json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": null}})
        .to_string()
}

#[tokio::test]
async fn http_errors_are_classified_in_one_sentence_without_the_key() {
    let whole = |status, headers, body| Canned::Whole {
        status,
        headers,
        body,
    };
    // Servers quote a wrong key back; it must not reach the record.
    let (class, message) = failure_of(
        whole(
            401,
            vec![],
            error_body(&format!("Incorrect API key provided: {KEY}."), None),
        ),
        |_| {},
    )
    .await;
    assert_eq!(class, ErrorClass::Auth);
    assert_eq!(
        message,
        "provider `serve` refused the credentials (HTTP 401): Incorrect API key provided: ***."
    );

    let (class, message) = failure_of(
        whole(
            429,
            vec![("retry-after", "2")],
            error_body("Rate limit reached.", None),
        ),
        |_| {},
    )
    .await;
    assert_eq!(class, ErrorClass::RateLimit);
    assert_eq!(
        message,
        "provider `serve` is rate limiting (HTTP 429): Rate limit reached. (Retry-After 2 s)"
    );

    let (class, message) = failure_of(whole(500, vec![], error_body("boom", None)), |_| {}).await;
    assert_eq!(class, ErrorClass::Server);
    assert_eq!(message, "provider `serve` failed (HTTP 500): boom");

    let (class, message) = failure_of(
        whole(
            400,
            vec![],
            error_body("Unsupported parameter: 'logprobs'.", Some("logprobs")),
        ),
        |_| {},
    )
    .await;
    assert_eq!(class, ErrorClass::RefusedParameter);
    assert_eq!(
        message,
        "provider `serve` refused parameter `logprobs` (HTTP 400): Unsupported parameter: 'logprobs'."
    );

    let (class, message) = failure_of(
        whole(404, vec![], error_body("The model does not exist.", None)),
        |_| {},
    )
    .await;
    assert_eq!(class, ErrorClass::Other);
    assert_eq!(
        message,
        "provider `serve` answered HTTP 404: The model does not exist."
    );
}

#[tokio::test]
async fn a_malformed_body_is_malformed() {
    let (class, message) = failure_of(
        Canned::Whole {
            status: 200,
            headers: vec![],
            body: "{\"choices\": [".into(),
        },
        |s| s.stream = false,
    )
    .await;
    assert_eq!(class, ErrorClass::MalformedResponse);
    assert!(
        message.starts_with("provider `serve` sent a reply that is not the expected JSON"),
        "{message}"
    );

    let (class, _) = failure_of(
        Canned::Events {
            chunks: vec!["data: {\"choices\": [\n\n".into()],
            cut: false,
        },
        |_| {},
    )
    .await;
    assert_eq!(class, ErrorClass::MalformedResponse);

    // A proxy's HTML page where a stream was asked for is not a cut stream.
    let (class, message) = failure_of(
        Canned::Whole {
            status: 200,
            headers: vec![("content-type", "text/html; charset=utf-8")],
            body: "<html>login</html>".into(),
        },
        |_| {},
    )
    .await;
    assert_eq!(class, ErrorClass::MalformedResponse);
    assert_eq!(
        message,
        "provider `serve` sent `text/html` instead of an event stream"
    );
}

#[tokio::test]
async fn a_cut_stream_is_truncated_never_a_success() {
    let mut chunks = transcript();
    chunks.truncate(3); // role, "Paris": no finish, no [DONE]
    let (class, message) = failure_of(
        Canned::Events {
            chunks: chunks.clone(),
            cut: true,
        },
        |_| {},
    )
    .await;
    assert_eq!(class, ErrorClass::TruncatedStream);
    assert!(
        message.starts_with("provider `serve` stream cut before its end"),
        "{message}"
    );

    // A server that just stops (clean end, no finish reason, no [DONE]).
    let (class, message) = failure_of(Canned::Events { chunks, cut: false }, |_| {}).await;
    assert_eq!(class, ErrorClass::TruncatedStream);
    assert_eq!(
        message,
        "provider `serve` stream ended without a finish reason or [DONE]"
    );
}

#[tokio::test]
async fn a_slow_first_byte_times_out() {
    let started = std::time::Instant::now();
    let (class, message) = failure_of(Canned::Slow(Duration::from_secs(5)), |s| {
        s.timeouts.first_byte = Duration::from_millis(200);
    })
    .await;
    assert_eq!(class, ErrorClass::Timeout);
    assert_eq!(
        message,
        "provider `serve` sent nothing within 0.2 s (first_byte_timeout_ms)"
    );
    assert!(started.elapsed() < Duration::from_secs(4));

    let (class, message) = failure_of(Canned::Slow(Duration::from_secs(5)), |s| {
        s.timeouts.total = Duration::from_millis(300);
    })
    .await;
    assert_eq!(class, ErrorClass::Timeout);
    assert!(
        message.ends_with("within 0.3 s (total_timeout_ms)"),
        "{message}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_connection_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut s = Settings::new("serve", &format!("http://{addr}/v1"), "m");
    s.key = ApiKey::new(KEY);
    let f = OpenAiBackend::new(s)
        .unwrap()
        .call(&request())
        .await
        .unwrap_err();
    assert_eq!(f.class, ErrorClass::Connection);
    assert!(
        f.message.starts_with(&format!(
            "provider `serve` could not be reached at http://{addr}/v1/chat/completions: "
        )),
        "{}",
        f.message
    );
    assert!(!f.message.contains(KEY));
}
