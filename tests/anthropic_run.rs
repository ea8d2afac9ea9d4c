//! `reprise run` and `reprise providers` end to end against a loopback Anthropic Messages
//! server: what the archive records, retries of Anthropic's transient errors, and the API key
//! absent from archive, stdout and stderr.

#[path = "support/messages_server.rs"]
mod messages_server;
#[path = "support/run.rs"]
mod run;
#[path = "support/scripted.rs"]
mod scripted;

use std::path::Path;
use std::process::{Command, Output};

use messages_server::{error_body, transcript, whole, Canned, Server, REQUEST_ID};
use serde_json::{json, Value};

const KEY: &str = "sk-ant-test-FAKEKEY-51c0de";
const BIN: &str = env!("CARGO_BIN_EXE_reprise");

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
    let protocol = PROTOCOL.replace("PROVIDER", provider);
    run::run_reprise(
        dir,
        config,
        &protocol,
        &["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"],
        env,
    )
    .await
}

fn assert_no_key(archive: &str, out: &Output) {
    run::assert_no_key(KEY, archive, out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprise_run_against_a_configured_server_archives_what_was_served() {
    let server = Server::start_with_models(
        vec![],
        Some(Canned::Stream {
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

    let archive = run::archive_lines(dir.path()).0;
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
    let server = Server::start_with_models(
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
    let archive = run::archive_lines(dir.path()).0;
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
    let server = Server::start_with_models(
        vec![
            whole(529, vec![], error_body("overloaded_error", "Overloaded")),
            whole(
                429,
                vec![("retry-after", "0")],
                error_body("rate_limit_error", "Slow down."),
            ),
        ],
        Some(Canned::Stream {
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
    let archive = run::archive_lines(dir.path()).0;
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
    let overloaded = Server::start_with_models(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprise_providers_checks_an_anthropic_provider_without_the_key_showing() {
    let model = json!({"type": "model", "id": "claude-test-20250101"});
    let server =
        Server::start_with_models(vec![], Some(whole(200, vec![], model.to_string()))).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config").join("config.toml"),
        format!(
            "[providers.claude]\nkind = \"anthropic\"\nbase_url = \"{}\"\nmodel = \"claude-test\"\napi_key_env = \"REPRISE_TEST_ANTHROPIC_KEY\"\n",
            server.base_url()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("providers")
        .env("REPRISE_CONFIG_DIR", dir.path().join("config"))
        .env("REPRISE_TEST_ANTHROPIC_KEY", KEY);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "claude (anthropic) {}/messages",
            server.base_url()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("✓ model    claude-test is listed"),
        "{stdout}"
    );
    assert_no_key("", &out);
    // Only the free model lookup was sent (answered by the server's model route, which
    // records nothing): no chat call without --probe.
    let paths: Vec<String> = server.received().into_iter().map(|r| r.path).collect();
    assert!(paths.is_empty(), "{paths:?}");
}
