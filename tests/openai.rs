//! The `openai` client against loopback servers that speak the Chat Completions wire format:
//! the exact request, whole and streamed replies, every error class, and `reprise run` end to
//! end with a configured provider — and the API key nowhere but on the wire.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::{stream, StreamExt};
use reprise::protocol::Params;
use reprise::providers::key::ApiKey;
use reprise::providers::openai::{OpenAiBackend, OpenAiSettings};
use reprise::providers::{Backend, ChatRequest, Reply};
use reprise::record::{ErrorClass, Usage};
use serde_json::{json, Value};

const KEY: &str = "sk-test-FAKEKEY-7f3a9c";
const BIN: &str = env!("CARGO_BIN_EXE_reprise");

/// What the loopback server answers to one request.
#[derive(Clone)]
enum Canned {
    /// A status, extra headers and a body, all at once.
    Whole {
        status: u16,
        headers: Vec<(&'static str, &'static str)>,
        body: String,
    },
    /// An event stream sent in these chunks; `cut` drops the connection after them.
    Events { chunks: Vec<String>, cut: bool },
    /// Nothing for this long, then a whole reply.
    Slow(Duration),
}

#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Value,
}

#[derive(Default)]
struct Script {
    queue: VecDeque<Canned>,
    /// Answers every request once the queue is empty.
    otherwise: Option<Canned>,
    received: Vec<Received>,
}

#[derive(Clone)]
struct Server {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
}

impl Server {
    async fn start(queue: Vec<Canned>, otherwise: Option<Canned>) -> Server {
        let script = Arc::new(Mutex::new(Script {
            queue: queue.into(),
            otherwise,
            received: Vec::new(),
        }));
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server { addr, script }
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }
}

async fn answer(State(script): State<Arc<Mutex<Script>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let canned = {
        let mut s = script.lock().unwrap();
        s.received.push(Received {
            path: parts.uri.path().to_string(),
            headers: parts.headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        s.queue.pop_front().or_else(|| s.otherwise.clone())
    };
    match canned.unwrap_or(Canned::Whole {
        status: 599,
        headers: vec![],
        body: "script exhausted".into(),
    }) {
        Canned::Whole {
            status,
            headers,
            body,
        } => {
            let mut r = Response::builder().status(StatusCode::from_u16(status).unwrap());
            if !headers.iter().any(|(k, _)| *k == "content-type") {
                r = r.header("content-type", "application/json");
            }
            for (k, v) in headers {
                r = r.header(k, v);
            }
            r.body(Body::from(body)).unwrap()
        }
        Canned::Events { chunks, cut } => {
            let sent = stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c))));
            // The cut comes after the client has read what was sent, as a dropped link would.
            let end = stream::once(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Err(std::io::Error::other("cut"))
            })
            .filter(move |_| std::future::ready(cut));
            Response::builder()
                .header("content-type", "text/event-stream")
                .header("x-request-id", "req-stream-1")
                .body(Body::from_stream(sent.chain(end)))
                .unwrap()
        }
        Canned::Slow(wait) => {
            tokio::time::sleep(wait).await;
            Response::new(Body::from(whole_reply().to_string()))
        }
    }
}

fn whole_reply() -> Value {
    json!({
        "id": "chatcmpl-42", "object": "chat.completion", "created": 1741570283,
        "model": "reprise-local-1-rev2",
        "choices": [{"index": 0,
            "message": {"role": "assistant", "content": "Paris.", "refusal": null},
            "logprobs": {"content": [
                {"token": "Paris", "logprob": -0.125, "bytes": [80,97,114,105,115], "top_logprobs": []},
                {"token": ".", "logprob": -0.5, "bytes": [46], "top_logprobs": []}]},
            "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14},
        "service_tier": "default", "system_fingerprint": "fp_abc123"
    })
}

/// A streamed "Paris." as OpenAI sends it: role chunk, content with logprobs, finish, usage,
/// with a comment line and a split event along the way.
fn transcript() -> Vec<String> {
    let chunk = |delta: Value, logprobs: Value, finish: Value| {
        json!({"id": "chatcmpl-s1", "object": "chat.completion.chunk", "created": 1,
               "model": "reprise-local-1-rev2", "system_fingerprint": "fp_s",
               "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}],
               "usage": null})
        .to_string()
    };
    let lp = |t: &str, l: f64| json!({"content": [{"token": t, "logprob": l, "bytes": null, "top_logprobs": []}]});
    let usage = json!({"id": "chatcmpl-s1", "object": "chat.completion.chunk", "created": 1,
        "model": "reprise-local-1-rev2", "system_fingerprint": "fp_s", "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}})
    .to_string();
    let second = format!(
        "data: {}\n\n",
        chunk(json!({"content": "."}), lp(".", -0.5), Value::Null)
    );
    let (a, b) = second.split_at(20);
    vec![
        ": OPENROUTER PROCESSING\n\n".into(),
        format!(
            "data: {}\n\n",
            chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
                Value::Null
            )
        ),
        format!(
            "data: {}\n\n",
            chunk(
                json!({"content": "Paris"}),
                lp("Paris", -0.125),
                Value::Null
            )
        ),
        a.to_string(),
        b.to_string(),
        format!("data: {}\n\n", chunk(json!({}), Value::Null, json!("stop"))),
        format!("data: {usage}\n\n"),
        "data: [DONE]\n\n".into(),
    ]
}

fn settings(server: &Server, stream: bool) -> OpenAiSettings {
    let mut s = OpenAiSettings::new("serve", &server.base_url(), "reprise-local-1");
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
        }),
        served: served
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ttft,
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

async fn failure_of(
    canned: Canned,
    tweak: impl FnOnce(&mut OpenAiSettings),
) -> (ErrorClass, String) {
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
    let mut s = OpenAiSettings::new("serve", &format!("http://{addr}/v1"), "m");
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

// ---------------------------------------------------------------------------------------
// `reprise run` end to end

const PROTOCOL: &str = r#"
[protocol]
name = "served"

[prompt]
system = "Answer in one word."
user = "Capital of France?"

[params]
temperature = 0.0
seed = 42

[campaign]
repeats = 3
concurrency = 2

[[targets]]
name = "srv"
provider = "serve"
"#;

fn write_setup(dir: &Path, base_url: &str, extra: &str) -> std::path::PathBuf {
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        format!(
            "[providers.serve]\nkind = \"openai\"\nbase_url = \"{base_url}\"\nmodel = \"reprise-local-1\"\napi_key_env = \"REPRISE_TEST_OPENAI_KEY\"\nheaders = {{ \"X-Team\" = \"lab\" }}\n{extra}"
        ),
    )
    .unwrap();
    let protocol = dir.join("served.toml");
    std::fs::write(&protocol, PROTOCOL).unwrap();
    protocol
}

async fn run_reprise(dir: &Path, protocol: &Path, key: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["run", &protocol.display().to_string(), "--json"])
        .env("REPRISE_CONFIG_DIR", dir.join("config"))
        .env("REPRISE_DATA_DIR", dir.join("data"))
        .env_remove("REPRISE_TEST_OPENAI_KEY");
    if let Some(key) = key {
        cmd.env("REPRISE_TEST_OPENAI_KEY", key);
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn archive_text(dir: &Path) -> String {
    let sessions = dir.join("data").join("sessions");
    let mut text = String::new();
    for entry in std::fs::read_dir(sessions).unwrap() {
        text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprise_run_against_a_configured_server_archives_what_was_served() {
    let server = Server::start(
        vec![],
        Some(Canned::Events {
            chunks: transcript(),
            cut: false,
        }),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let protocol = write_setup(dir.path(), &server.base_url(), "");
    let out = run_reprise(dir.path(), &protocol, Some(KEY)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["targets"][0]["items"][0]["ok"], 3);

    let archive = archive_text(dir.path());
    let lines: Vec<Value> = archive
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let calls: Vec<&Value> = lines.iter().filter(|l| l.get("status").is_some()).collect();
    assert_eq!(calls.len(), 3, "{archive}");
    for call in &calls {
        assert_eq!(call["status"], "ok");
        assert_eq!(call["output"], "Paris.");
        assert_eq!(call["tokens"], json!(["Paris", "."]));
        assert_eq!(call["logprobs"], json!([-0.125, -0.5]));
        assert_eq!(
            call["usage"],
            json!({"prompt_tokens": 12, "completion_tokens": 2})
        );
        assert_eq!(
            call["served"],
            json!({"model": "reprise-local-1-rev2", "request_id": "req-stream-1",
                   "response_id": "chatcmpl-s1", "system_fingerprint": "fp_s"})
        );
        assert!(call["timing"]["ttft_ms"].is_number(), "{call}");
    }
    // The conditions name the endpoint and the exact body; the key is on the wire only.
    assert!(archive.contains(&format!("{}/chat/completions", server.base_url())));
    assert!(
        archive.contains(r#""stream_options":{"include_usage":true}"#),
        "{archive}"
    );
    for (what, text) in [
        ("archive", archive.as_str()),
        ("stdout", &stdout),
        ("stderr", &stderr),
    ] {
        assert!(!text.contains(KEY), "the key leaked into {what}");
    }
    let received = server.received();
    assert_eq!(received.len(), 3);
    assert!(received
        .iter()
        .all(|r| r.headers["authorization"] == format!("Bearer {KEY}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_archived_without_the_key() {
    let server = Server::start(
        vec![],
        Some(Canned::Whole {
            status: 401,
            headers: vec![],
            body: error_body(&format!("Incorrect API key provided: {KEY}"), None),
        }),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let protocol = write_setup(dir.path(), &server.base_url(), "");
    let out = run_reprise(dir.path(), &protocol, Some(KEY)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let archive = archive_text(dir.path());
    assert_eq!(archive.matches(r#""class":"auth""#).count(), 3, "{archive}");
    for (what, text) in [
        ("archive", archive.as_str()),
        ("stdout", &stdout),
        ("stderr", &stderr),
    ] {
        assert!(!text.contains(KEY), "the key leaked into {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_stops_before_the_campaign() {
    let server = Server::start(vec![], None).await;
    let dir = tempfile::tempdir().unwrap();
    let protocol = write_setup(dir.path(), &server.base_url(), "");
    let out = run_reprise(dir.path(), &protocol, None).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "provider `serve` reads its API key from $REPRISE_TEST_OPENAI_KEY, which is not set"
        ),
        "{stderr}"
    );
    assert!(server.received().is_empty(), "no call was sent");
    assert!(!dir.path().join("data").join("sessions").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_is_one_line_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let protocol = write_setup(
        dir.path(),
        "http://127.0.0.1:9/v1",
        "stream = true\ntimeout = 3\n",
    );
    let out = run_reprise(dir.path(), &protocol, Some(KEY)).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("config.toml:8: field `providers.serve.timeout`: unknown field `timeout`"),
        "{stderr}"
    );
}
