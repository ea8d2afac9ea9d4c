//! The `ollama` client against a loopback server that speaks Ollama's native API: the exact
//! request, whole and NDJSON-streamed replies, the model digest, the provider check and an
//! error line mid-stream — with a proxy's API key nowhere but on the wire. tests/transport.rs
//! checks its error classes, timeouts and cut streams with the other kinds';
//! tests/ollama_run.rs drives `reprise run` end to end.

#[path = "support/ollama_server.rs"]
mod ollama_server;
#[path = "support/request.rs"]
mod request;

use request::request;
use std::time::Duration;

use ollama_server::{tags, transcript, whole_reply, Canned, Server, DIGEST};
use reprise::providers::http::Settings;
use reprise::providers::key::ApiKey;
use reprise::providers::ollama::{self, OllamaBackend};
use reprise::providers::{Backend, CallFailure, Check, Reply};
use reprise::record::{ErrorClass, Usage};
use serde_json::{json, Value};

const KEY: &str = "sk-test-FAKEKEY-0llama-5e1d";

fn settings(server: &Server, stream: bool) -> Settings {
    let mut s = ollama::settings("lab", &server.base_url(), "llama3.2");
    s.stream = stream;
    s.headers.insert("X-Team".into(), "lab".into());
    s
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
