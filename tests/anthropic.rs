//! The `anthropic` client against a loopback server that speaks the Messages wire format: the
//! exact request, whole and streamed replies, every error class, and `reprise run` end to end
//! — with the API key nowhere but in the `x-api-key` header.

#[path = "support/messages_server.rs"]
mod messages_server;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use messages_server::{error_body, transcript, whole_message, Canned, Server, REQUEST_ID};
use reprise::protocol::Params;
use reprise::providers::anthropic::{AnthropicBackend, AnthropicSettings};
use reprise::providers::key::ApiKey;
use reprise::providers::{Backend, CallFailure, ChatRequest, Reply};
use reprise::record::{ErrorClass, Usage};
use serde_json::{json, Value};

const KEY: &str = "sk-ant-test-FAKEKEY-51c0de";
const BIN: &str = env!("CARGO_BIN_EXE_reprise");

fn settings(server: &Server, stream: bool) -> AnthropicSettings {
    let mut s = AnthropicSettings::new("claude", &server.base_url(), "claude-test");
    s.key = ApiKey::new(KEY);
    s.stream = stream;
    s.headers.insert("anthropic-beta".into(), "x-2025".into());
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

fn paris(served: &[(&str, &str)]) -> Reply {
    Reply {
        text: "Paris.".into(),
        tokens: None,
        logprobs: None,
        finish_reason: Some("stop".into()),
        usage: Some(Usage {
            prompt_tokens: 12,
            completion_tokens: 2,
        }),
        served: served
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ttft: None,
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
        vec![Canned::Events {
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

async fn failure_of(canned: Canned, tweak: impl FnOnce(&mut AnthropicSettings)) -> CallFailure {
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

fn whole(status: u16, headers: Vec<(&'static str, &'static str)>, body: String) -> Canned {
    Canned::Whole {
        status,
        headers,
        body,
    }
}

#[tokio::test]
async fn http_errors_are_classified_in_one_sentence_without_the_key() {
    // A proxy may quote a wrong key back; it must not reach the record.
    let f = failure_of(
        whole(
            401,
            vec![],
            error_body("authentication_error", &format!("invalid x-api-key {KEY}")),
        ),
        |_| {},
    )
    .await;
    assert_eq!(f.class, ErrorClass::Auth);
    assert_eq!(
        f.message,
        "provider `claude` refused the credentials (HTTP 401, authentication_error): invalid x-api-key ***"
    );
    assert!(!f.after_first_byte);

    let f = failure_of(
        whole(
            403,
            vec![],
            error_body("permission_error", "Your key may not use this model."),
        ),
        |_| {},
    )
    .await;
    assert_eq!(f.class, ErrorClass::Auth);

    let f = failure_of(
        whole(
            429,
            vec![("retry-after", "3")],
            error_body(
                "rate_limit_error",
                "Number of requests has exceeded your rate limit.",
            ),
        ),
        |_| {},
    )
    .await;
    assert_eq!(f.class, ErrorClass::RateLimit);
    assert_eq!(f.retry_after, Some(Duration::from_secs(3)));
    assert_eq!(
        f.message,
        "provider `claude` is rate limiting (HTTP 429, rate_limit_error): Number of requests has exceeded your rate limit. (Retry-After 3 s)"
    );

    for (status, kind, message) in [
        (500, "api_error", "Internal server error"),
        (529, "overloaded_error", "Overloaded"),
    ] {
        let f = failure_of(whole(status, vec![], error_body(kind, message)), |_| {}).await;
        assert_eq!(f.class, ErrorClass::Server);
        assert_eq!(
            f.message,
            format!("provider `claude` failed (HTTP {status}, {kind}): {message}")
        );
        assert_eq!(f.retry_after, None);
    }

    let both = "`temperature` and `top_k` cannot both be specified for this model.";
    let f = failure_of(
        whole(400, vec![], error_body("invalid_request_error", both)),
        |_| {},
    )
    .await;
    assert_eq!(f.class, ErrorClass::RefusedParameter);
    assert_eq!(
        f.message,
        format!("provider `claude` refused parameter `temperature` (HTTP 400, invalid_request_error): {both}")
    );

    let f = failure_of(
        whole(
            400,
            vec![],
            error_body("invalid_request_error", "prompt is too long"),
        ),
        |_| {},
    )
    .await;
    assert_eq!(f.class, ErrorClass::Other);

    let f = failure_of(
        whole(
            404,
            vec![],
            error_body("not_found_error", "model: claude-test"),
        ),
        |_| {},
    )
    .await;
    assert_eq!(f.class, ErrorClass::Other);
    assert_eq!(
        f.message,
        "provider `claude` answered HTTP 404, not_found_error: model: claude-test"
    );
}

#[tokio::test]
async fn an_error_event_after_the_status_is_never_retried() {
    let mut chunks = transcript();
    chunks.truncate(4); // message_start … "Paris"
    chunks.push(format!(
        "event: error\ndata: {}\n\n",
        error_body("overloaded_error", "Overloaded")
    ));
    let f = failure_of(Canned::Events { chunks, cut: false }, |_| {}).await;
    assert_eq!(f.class, ErrorClass::Server);
    assert!(f.after_first_byte);
    assert_eq!(
        f.message,
        "provider `claude` reported an error mid-reply (overloaded_error): Overloaded"
    );
}

#[tokio::test]
async fn a_malformed_body_is_malformed() {
    let f = failure_of(whole(200, vec![], "{\"content\": [".into()), |s| {
        s.stream = false
    })
    .await;
    assert_eq!(f.class, ErrorClass::MalformedResponse);
    assert!(f.after_first_byte);
    assert!(
        f.message
            .starts_with("provider `claude` sent a reply that is not the expected JSON"),
        "{}",
        f.message
    );

    let f = failure_of(
        Canned::Events {
            chunks: vec!["event: message_start\ndata: {\"type\": \"message_start\", \n\n".into()],
            cut: false,
        },
        |_| {},
    )
    .await;
    assert_eq!(f.class, ErrorClass::MalformedResponse);

    let f = failure_of(
        whole(
            200,
            vec![("content-type", "text/html")],
            "<html>login</html>".into(),
        ),
        |_| {},
    )
    .await;
    assert_eq!(f.class, ErrorClass::MalformedResponse);
    assert_eq!(
        f.message,
        "provider `claude` sent `text/html` instead of an event stream"
    );
}

#[tokio::test]
async fn a_cut_stream_is_truncated_never_a_success() {
    let mut chunks = transcript();
    chunks.truncate(4);
    let f = failure_of(
        Canned::Events {
            chunks: chunks.clone(),
            cut: true,
        },
        |_| {},
    )
    .await;
    assert_eq!(f.class, ErrorClass::TruncatedStream);
    assert!(f.after_first_byte);
    assert!(
        f.message
            .starts_with("provider `claude` stream cut before its end"),
        "{}",
        f.message
    );

    // Everything up to the stop reason, then a clean end without message_stop.
    let mut all_but_stop = transcript();
    all_but_stop.pop();
    let f = failure_of(
        Canned::Events {
            chunks: all_but_stop,
            cut: false,
        },
        |_| {},
    )
    .await;
    assert_eq!(f.class, ErrorClass::TruncatedStream);
    assert_eq!(
        f.message,
        "provider `claude` stream ended without message_stop"
    );
}

#[tokio::test]
async fn a_slow_first_byte_times_out() {
    let started = std::time::Instant::now();
    let f = failure_of(Canned::Slow(Duration::from_secs(5)), |s| {
        s.timeouts.first_byte = Duration::from_millis(200);
    })
    .await;
    assert_eq!(f.class, ErrorClass::Timeout);
    assert!(!f.after_first_byte);
    assert_eq!(
        f.message,
        "provider `claude` sent nothing within 0.2 s (first_byte_timeout_ms)"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn a_refused_connection_is_a_connection_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut s = AnthropicSettings::new("claude", &format!("http://{addr}/v1"), "m");
    s.key = ApiKey::new(KEY);
    let f = AnthropicBackend::new(s)
        .unwrap()
        .call(&request())
        .await
        .unwrap_err();
    assert_eq!(f.class, ErrorClass::Connection);
    assert!(
        f.message.starts_with(&format!(
            "provider `claude` could not be reached at http://{addr}/v1/messages: "
        )),
        "{}",
        f.message
    );
    assert!(!f.message.contains(KEY));
}

const PROTOCOL: &str = r#"
[protocol]
name = "claude-run"

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
name = "c"
provider = "PROVIDER"
model = "claude-test"
"#;

/// `reprise run --json` with `config` as config.toml and the protocol naming `provider`.
async fn run_reprise(dir: &Path, config: &str, provider: &str, env: &[(&str, &str)]) -> Output {
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(dir.join("config").join("config.toml"), config).unwrap();
    let protocol = dir.join("run.toml");
    std::fs::write(&protocol, PROTOCOL.replace("PROVIDER", provider)).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["run", &protocol.display().to_string(), "--json"])
        .env("REPRISE_CONFIG_DIR", dir.join("config"))
        .env("REPRISE_DATA_DIR", dir.join("data"))
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .envs(env.iter().copied());
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn archive_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir.join("data").join("sessions")).unwrap() {
        text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    text
}

fn assert_no_key(archive: &str, out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (what, text) in [
        ("archive", archive),
        ("stdout", &stdout),
        ("stderr", &stderr),
    ] {
        assert!(!text.contains(KEY), "the key leaked into {what}");
    }
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
    let config = format!(
        "[providers.claude]\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key_env = \"REPRISE_TEST_ANTHROPIC_KEY\"\n",
        server.base_url()
    );
    let out = run_reprise(
        dir.path(),
        &config,
        "claude",
        &[("REPRISE_TEST_ANTHROPIC_KEY", KEY)],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
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
        assert_eq!(call["finish_reason"], "stop", "{call}");
        assert_eq!(
            call["usage"],
            json!({"prompt_tokens": 12, "completion_tokens": 2})
        );
        assert_eq!(
            call["served"],
            json!({"model": "claude-test-20250101", "request_id": REQUEST_ID,
                   "response_id": "msg_01Stream", "service_tier": "standard"})
        );
        assert!(call["timing"]["ttft_ms"].is_number(), "{call}");
    }
    // The conditions hold the endpoint, the exact body (max_tokens defaulted, no seed) and
    // the API version; the key is on the wire only.
    let header = lines.iter().find(|l| l["kind"] == "header").unwrap();
    let target = &header["conditions"]["targets"][0];
    assert_eq!(
        target["endpoint"],
        format!("{}/messages", server.base_url())
    );
    assert_eq!(
        target["requests"][0]["body"],
        json!({"model": "claude-test", "max_tokens": 1024, "system": "Answer in one word.",
               "messages": [{"role": "user", "content": "Capital of France?"}],
               "temperature": 0.0, "stream": true})
    );
    assert_eq!(
        target["headers"],
        json!({"anthropic-version": "2023-06-01"})
    );
    assert_no_key(&archive, &out);
    let received = server.received();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| r.headers["x-api-key"] == KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_provider_reads_its_key_and_archives_failures_without_it() {
    let server = Server::start(
        vec![],
        Some(Canned::Whole {
            status: 401,
            headers: vec![],
            body: error_body("authentication_error", &format!("invalid x-api-key {KEY}")),
        }),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let base = server.base_url();
    let env = [("ANTHROPIC_API_KEY", KEY), ("ANTHROPIC_BASE_URL", &base)];
    let out = run_reprise(dir.path(), "", "anthropic", &env).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let archive = archive_text(dir.path());
    assert_eq!(archive.matches(r#""class":"auth""#).count(), 3, "{archive}");
    assert_no_key(&archive, &out);
    assert_eq!(server.received().len(), 3);

    // Without the key, nothing is sent and the one line says where the key was looked for.
    let dir = tempfile::tempdir().unwrap();
    let out = run_reprise(
        dir.path(),
        "",
        "anthropic",
        &[("ANTHROPIC_BASE_URL", &base)],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "provider `anthropic` reads its API key from $ANTHROPIC_API_KEY, which is not set"
        ),
        "{stderr}"
    );
    assert_eq!(server.received().len(), 3, "no call was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overloaded_and_rate_limited_calls_are_retried_as_configured() {
    let server = Server::start(
        vec![
            whole(529, vec![], error_body("overloaded_error", "Overloaded")),
            whole(
                429,
                vec![("retry-after", "0")],
                error_body("rate_limit_error", "Slow down."),
            ),
        ],
        Some(Canned::Events {
            chunks: transcript(),
            cut: false,
        }),
    )
    .await;
    let config = |retries: u32| {
        format!(
            "[providers.claude]\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key_env = \"REPRISE_TEST_ANTHROPIC_KEY\"\nmax_retries = {retries}\n",
            server.base_url()
        )
    };
    let env = [("REPRISE_TEST_ANTHROPIC_KEY", KEY)];
    let dir = tempfile::tempdir().unwrap();
    let out = run_reprise(dir.path(), &config(2), "claude", &env).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let archive = archive_text(dir.path());
    let calls: Vec<Value> = archive
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l.get("status").is_some())
        .collect();
    // Three outcomes, each after as many attempts as it needed; every attempt archived.
    assert_eq!(calls.len(), 5, "{archive}");
    let retried: Vec<&str> = calls
        .iter()
        .filter(|c| c["retried"] == true)
        .filter_map(|c| c["error"]["class"].as_str())
        .collect();
    assert_eq!(retried.len(), 2, "{archive}");
    assert!(
        retried.contains(&"server") && retried.contains(&"rate_limit"),
        "{retried:?}"
    );
    assert_eq!(calls.iter().filter(|c| c["status"] == "ok").count(), 3);
    assert_no_key(&archive, &out);

    // max_retries = 0: the overloaded answer is the call's outcome.
    let server_calls = server.received().len();
    let overloaded = Server::start(
        vec![],
        Some(whole(
            529,
            vec![],
            error_body("overloaded_error", "Overloaded"),
        )),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let text = config(0).replace(&server.base_url(), &overloaded.base_url());
    let out = run_reprise(dir.path(), &text, "claude", &env).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(overloaded.received().len(), 3, "no retries");
    assert_eq!(server.received().len(), server_calls);
}
