//! The `ollama` client against a loopback server that speaks Ollama's native API: the exact
//! request, whole and NDJSON-streamed replies, the model digest, the provider check and every
//! error class — with a proxy's API key nowhere but on the wire. tests/ollama_run.rs drives
//! `reprise run` end to end.

#[path = "support/ollama_server.rs"]
mod ollama_server;

use std::time::Duration;

use ollama_server::{tags, transcript, whole_reply, Canned, Server, DIGEST};
use reprise::protocol::Params;
use reprise::providers::http::Settings;
use reprise::providers::key::ApiKey;
use reprise::providers::ollama::{self, OllamaBackend};
use reprise::providers::{Backend, CallFailure, ChatRequest, Check, Reply};
use reprise::record::{ErrorClass, Usage};
use serde_json::{json, Value};

const KEY: &str = "sk-test-FAKEKEY-0llama-5e1d";

fn settings(server: &Server, stream: bool) -> Settings {
    let mut s = ollama::settings("lab", &server.base_url(), "llama3.2");
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

fn paris(ttft: Option<Duration>) -> Reply {
    Reply {
        text: "Paris.".into(),
        tokens: None,
        logprobs: None,
        finish_reason: Some("stop".into()),
        usage: Some(Usage {
            prompt_tokens: 26,
            completion_tokens: 3,
            reasoning_tokens: None,
        }),
        served: [("digest", DIGEST), ("model", "llama3.2")]
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
            headers: vec![],
            body: whole_reply().to_string(),
        }],
        None,
    )
    .await;
    let backend = OllamaBackend::new(settings(&server, false)).unwrap();
    let reply = backend.call(&request()).await.unwrap();
    assert_eq!(reply, paris(None));
    let chats = server.received_at("/api/chat");
    assert_eq!(chats.len(), 1, "one attempt, no retry");
    let r = &chats[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["x-team"], "lab");
    assert!(
        r.headers.get("authorization").is_none(),
        "no key, no header"
    );
    let golden = json!({
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "Capital of France?"}
        ],
        "stream": false,
        "options": {"temperature": 0.0, "top_k": 5, "seed": 42, "num_predict": 8},
        "logprobs": true
    });
    assert_eq!(r.body, golden);
    // What the conditions record is what was sent.
    assert_eq!(backend.request_body(&request()), golden);
    assert_eq!(
        backend.endpoint(),
        format!("{}/api/chat", server.base_url())
    );
}

#[tokio::test]
async fn a_stream_is_reassembled_and_the_digest_is_looked_up_once() {
    let server = Server::start(
        vec![],
        Some(Canned::Lines {
            chunks: transcript(),
            cut: false,
        }),
    )
    .await;
    let backend = OllamaBackend::new(settings(&server, true)).unwrap();
    for _ in 0..3 {
        let mut reply = backend.call(&request()).await.unwrap();
        let ttft = reply.ttft.take();
        assert!(ttft.is_some_and(|t| t < Duration::from_secs(5)), "{ttft:?}");
        assert_eq!(reply, paris(None));
    }
    assert_eq!(server.received_at("/api/chat").len(), 3);
    assert_eq!(server.received_at("/api/chat")[0].body["stream"], true);
    let lookups = server.received_at("/api/tags");
    assert_eq!(lookups.len(), 1, "the digest is cached");
    assert_eq!(lookups[0].headers["x-team"], "lab");
}

#[tokio::test]
async fn a_model_the_server_does_not_list_has_no_digest_and_is_not_asked_again() {
    for tags in [json!({"models": []}), Value::Null] {
        let reply = Canned::Whole {
            status: 200,
            headers: vec![],
            body: whole_reply().to_string(),
        };
        let server = Server::start(vec![], Some(reply)).await;
        server.set_tags(tags.clone());
        let backend = OllamaBackend::new(settings(&server, false)).unwrap();
        for _ in 0..2 {
            let reply = backend.call(&request()).await.unwrap();
            assert_eq!(reply.text, "Paris.");
            assert_eq!(reply.served.keys().collect::<Vec<_>>(), ["model"], "{tags}");
        }
        assert_eq!(server.received_at("/api/tags").len(), 1, "{tags}");
    }
}

#[tokio::test]
async fn server_identity_is_read_fresh_and_shows_a_re_pulled_model() {
    let server = Server::start(vec![], None).await;
    let backend = OllamaBackend::new(settings(&server, true)).unwrap();
    let identity = |digest: &str| {
        Some(
            [
                ("digest", digest),
                ("model", "llama3.2:latest"),
                ("version", "0.6.2"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        )
    };
    assert_eq!(backend.server_identity().await, identity(DIGEST));
    server.set_tags(tags("0ddba11"));
    assert_eq!(backend.server_identity().await, identity("0ddba11"));

    // Unreachable: the requested model only, no failure.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let gone = OllamaBackend::new(ollama::settings("lab", &format!("http://{addr}"), "m")).unwrap();
    assert_eq!(
        gone.server_identity().await,
        Some([("model".to_string(), "m:latest".to_string())].into())
    );
}

async fn failure_of(canned: Canned, tweak: impl FnOnce(&mut Settings)) -> CallFailure {
    let server = Server::start(vec![canned], None).await;
    let mut s = settings(&server, true);
    s.key = ApiKey::new(KEY);
    tweak(&mut s);
    let f = OllamaBackend::new(s)
        .unwrap()
        .call(&request())
        .await
        .unwrap_err();
    assert!(!f.message.contains(KEY), "{}", f.message);
    assert!(!f.message.contains('\n'), "{}", f.message);
    assert_eq!(
        server.received_at("/api/chat").len(),
        1,
        "exactly one attempt"
    );
    assert!(
        server.received_at("/api/tags").is_empty(),
        "a failed call looks nothing up"
    );
    f
}

fn whole(status: u16, headers: Vec<(&'static str, &'static str)>, error: &str) -> Canned {
    Canned::Whole {
        status,
        headers,
        body: json!({ "error": error }).to_string(),
    }
}

#[tokio::test]
async fn http_errors_are_classified_in_one_sentence_without_the_key() {
    // A proxy in front of Ollama may quote a wrong key back; it must not reach the record.
    let f = failure_of(whole(401, vec![], &format!("invalid key {KEY}")), |_| {}).await;
    assert_eq!(f.class, ErrorClass::Auth);
    assert_eq!(
        f.message,
        "provider `lab` refused the credentials (HTTP 401): invalid key ***"
    );
    assert!(!f.after_first_byte);

    let f = failure_of(
        whole(429, vec![("retry-after", "2")], "too many requests"),
        |_| {},
    )
    .await;
    assert_eq!(f.class, ErrorClass::RateLimit);
    assert_eq!(f.retry_after, Some(Duration::from_secs(2)));
    // A proxy's rate-limit headers are archived with the attempt, as for every provider.
    assert_eq!(
        f.rate_limit.get("retry-after").map(String::as_str),
        Some("2")
    );
    assert_eq!(
        f.message,
        "provider `lab` is rate limiting (HTTP 429): too many requests (Retry-After 2 s)"
    );

    let f = failure_of(
        whole(500, vec![], "llama runner process has terminated"),
        |_| {},
    )
    .await;
    assert_eq!((f.class, f.retry_after), (ErrorClass::Server, None));
    assert_eq!(
        f.message,
        "provider `lab` failed (HTTP 500): llama runner process has terminated"
    );
    let f = failure_of(whole(529, vec![], "overloaded"), |_| {}).await;
    assert_eq!(f.class, ErrorClass::Server);

    let f = failure_of(
        whole(400, vec![], "option \"seed\" must be of type integer"),
        |_| {},
    )
    .await;
    assert_eq!(f.class, ErrorClass::RefusedParameter);
    assert_eq!(
        f.message,
        "provider `lab` refused parameter `seed` (HTTP 400): option \"seed\" must be of type integer"
    );

    let f = failure_of(
        whole(
            404,
            vec![],
            "model 'llama3.2' not found, try pulling it first",
        ),
        |_| {},
    )
    .await;
    assert_eq!(f.class, ErrorClass::Other);
    assert_eq!(
        f.message,
        "provider `lab` does not have model `llama3.2` (HTTP 404): model 'llama3.2' not found, try pulling it first; pull it with `ollama pull llama3.2`"
    );
}

#[tokio::test]
async fn a_cut_or_unfinished_stream_is_truncated_never_a_success() {
    let mut chunks = transcript();
    chunks.pop(); // no done line
    let f = failure_of(
        Canned::Lines {
            chunks: chunks.clone(),
            cut: true,
        },
        |_| {},
    )
    .await;
    assert_eq!(f.class, ErrorClass::TruncatedStream);
    assert!(f.after_first_byte, "a stream that began is never retried");
    assert!(
        f.message
            .starts_with("provider `lab` stream cut before its end"),
        "{}",
        f.message
    );

    let f = failure_of(Canned::Lines { chunks, cut: false }, |_| {}).await;
    assert_eq!(f.class, ErrorClass::TruncatedStream);
    assert!(f.after_first_byte);
    assert_eq!(
        f.message,
        "provider `lab` stream ended without its final done: true line"
    );
}

#[tokio::test]
async fn an_error_line_mid_stream_is_a_server_failure_after_the_first_byte() {
    let mut chunks = transcript();
    chunks.truncate(1);
    chunks.push("{\"error\":\"an error was encountered while running the model\"}\n".into());
    let f = failure_of(Canned::Lines { chunks, cut: false }, |_| {}).await;
    assert_eq!(f.class, ErrorClass::Server);
    assert!(f.after_first_byte);
    assert_eq!(
        f.message,
        "provider `lab` reported an error mid-reply: an error was encountered while running the model"
    );
}

#[tokio::test]
async fn a_malformed_line_or_body_is_malformed() {
    let mut chunks = transcript();
    chunks.insert(1, "data: {\"not\": \"ndjson\"}\n".into());
    let f = failure_of(Canned::Lines { chunks, cut: false }, |_| {}).await;
    assert_eq!(f.class, ErrorClass::MalformedResponse);
    assert!(f.after_first_byte);
    assert!(
        f.message
            .starts_with("provider `lab` sent a line that is not the expected JSON"),
        "{}",
        f.message
    );

    let f = failure_of(
        Canned::Whole {
            status: 200,
            headers: vec![],
            body: "{\"message\": {".into(),
        },
        |s| s.stream = false,
    )
    .await;
    assert_eq!(f.class, ErrorClass::MalformedResponse);

    // A proxy's login page where a stream was asked for.
    let f = failure_of(
        Canned::Whole {
            status: 200,
            headers: vec![("content-type", "text/html; charset=utf-8")],
            body: "<html>login</html>".into(),
        },
        |_| {},
    )
    .await;
    assert_eq!(f.class, ErrorClass::MalformedResponse);
    assert_eq!(
        f.message,
        "provider `lab` sent `text/html` instead of an NDJSON stream"
    );
}

#[tokio::test]
async fn a_slow_first_byte_times_out_and_may_be_retried() {
    let started = std::time::Instant::now();
    let f = failure_of(Canned::Slow(Duration::from_secs(5)), |s| {
        s.timeouts.first_byte = Duration::from_millis(200);
    })
    .await;
    assert_eq!(f.class, ErrorClass::Timeout);
    assert!(!f.after_first_byte);
    assert_eq!(
        f.message,
        "provider `lab` sent nothing within 0.2 s (first_byte_timeout_ms)"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn a_refused_connection_is_a_connection_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut s = ollama::settings("lab", &format!("http://{addr}"), "llama3.2");
    s.key = ApiKey::new(KEY);
    let f = OllamaBackend::new(s)
        .unwrap()
        .call(&request())
        .await
        .unwrap_err();
    assert_eq!(f.class, ErrorClass::Connection);
    assert!(
        f.message.starts_with(&format!(
            "provider `lab` could not be reached at http://{addr}/api/chat: "
        )),
        "{}",
        f.message
    );
    assert!(!f.message.contains(KEY));
}

#[tokio::test]
async fn the_check_says_whether_the_model_is_pulled_without_a_chat_call() {
    let server = Server::start(
        vec![],
        Some(Canned::Whole {
            status: 200,
            headers: vec![],
            body: whole_reply().to_string(),
        }),
    )
    .await;
    let url = format!("{}/api/tags", server.base_url());
    let backend = OllamaBackend::new(settings(&server, false)).unwrap();
    assert_eq!(
        backend.check().await,
        [
            Check::pass("endpoint", format!("{url} lists 2 models")),
            Check::pass("model", "llama3.2:latest is pulled (digest a80c4f17acd5)"),
        ]
    );
    assert!(
        server.received_at("/api/chat").is_empty(),
        "nothing billable"
    );
    // The check's listing serves the first call's digest.
    assert_eq!(backend.call(&request()).await.unwrap(), paris(None));
    assert_eq!(server.received_at("/api/tags").len(), 1);

    let mut s = settings(&server, false);
    s.model = "mistral".into();
    let missing = OllamaBackend::new(s).unwrap().check().await;
    assert_eq!(
        missing[1],
        Check::fail(
            "model",
            "mistral is not pulled on this server (ollama pull mistral)"
        )
    );

    // A proxy that passes only /api/chat: inconclusive, so never blocking.
    server.set_tags(Value::Null);
    let checks = OllamaBackend::new(settings(&server, false))
        .unwrap()
        .check()
        .await;
    assert_eq!(
        checks,
        [Check::unknown(
            "endpoint",
            format!("{url} answered HTTP 404; no model list to check against")
        )]
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut s = ollama::settings("lab", &format!("http://{addr}"), "m");
    s.key = ApiKey::new(KEY);
    let checks = OllamaBackend::new(s).unwrap().check().await;
    assert_eq!(checks.len(), 1);
    assert!(!checks[0].ok && checks[0].blocking, "{checks:?}");
    assert!(
        checks[0]
            .detail
            .starts_with(&format!("http://{addr}/api/tags unreachable: ")),
        "{checks:?}"
    );
}
