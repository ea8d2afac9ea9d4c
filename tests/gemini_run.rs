//! `reprise run` end to end against a loopback Gemini API: what the archive records (the exact
//! body, the model version served, the identity at start and end), retries honouring Gemini's
//! RetryInfo delay, and the API key absent from archive, stdout and stderr.

#[path = "support/gemini_server.rs"]
mod gemini_server;
#[path = "support/run.rs"]
mod run;
#[path = "support/scripted.rs"]
mod scripted;

use std::path::Path;
use std::process::Output;

use gemini_server::{base_url, error_body, json, transcript, Canned, MODEL_VERSION};
use serde_json::{json as j, Value};

const KEY: &str = "AIza-test-FAKEKEY-9e1f";

const PROTOCOL: &str = r#"
[protocol]
name = "gemini-run"

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
name = "g"
provider = "PROVIDER"
model = "gemini-test"
"#;

/// `reprise run --json` with `config` as config.toml and the protocol naming `provider`.
async fn run_reprise(dir: &Path, config: &str, provider: &str, env: &[(&str, &str)]) -> Output {
    let protocol = PROTOCOL.replace("PROVIDER", provider);
    run::run_reprise(
        dir,
        config,
        &protocol,
        &["GEMINI_API_KEY", "GEMINI_BASE_URL"],
        env,
    )
    .await
}

fn assert_no_key(archive: &str, out: &Output) {
    run::assert_no_key(KEY, archive, out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprise_run_against_a_configured_gemini_archives_what_was_served() {
    let quota = error_body(
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded.",
        j!([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.05s"}]),
    );
    let server = gemini_server::start(
        vec![json(429, quota)],
        Some(Canned::Stream {
            chunks: transcript(),
            cut: false,
        }),
        true,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[providers.gem]\nkind = \"gemini\"\nbase_url = \"{}\"\napi_key_env = \"REPRISE_TEST_GEMINI_KEY\"\n",
        base_url(&server)
    );
    let out = run_reprise(
        dir.path(),
        &config,
        "gem",
        &[("REPRISE_TEST_GEMINI_KEY", KEY)],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (archive, lines) = run::archive_lines(dir.path());
    assert_eq!(summary["targets"][0]["items"][0]["ok"], 3, "{archive}");

    let calls: Vec<&Value> = lines.iter().filter(|l| l.get("status").is_some()).collect();
    // Three outcomes and the one rate-limited attempt before them, retried.
    assert_eq!(calls.len(), 4, "{archive}");
    let limited: Vec<&&Value> = calls.iter().filter(|c| c["status"] != "ok").collect();
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0]["error"]["class"], "rate_limit");
    assert_eq!(limited[0]["retried"], true);
    for call in calls.iter().filter(|c| c["status"] == "ok") {
        assert_eq!(call["output"], "Paris.");
        assert_eq!(call["finish_reason"], "stop");
        assert_eq!(
            call["usage"],
            j!({"prompt_tokens": 9, "completion_tokens": 2})
        );
        assert_eq!(
            call["served"],
            j!({"model": MODEL_VERSION, "response_id": "resp-stream-1"})
        );
        assert!(call["timing"]["ttft_ms"].is_number(), "{call}");
    }
    let header = lines.iter().find(|l| l["kind"] == "header").unwrap();
    let target = &header["conditions"]["targets"][0];
    assert_eq!(
        target["endpoint"],
        format!(
            "{}/models/gemini-test:streamGenerateContent?alt=sse",
            base_url(&server)
        )
    );
    // Exactly what was sent: no log-probabilities unless the config asks for them.
    assert_eq!(
        target["requests"][0]["body"],
        j!({"contents": [{"role": "user", "parts": [{"text": "Capital of France?"}]}],
            "systemInstruction": {"parts": [{"text": "Answer in one word."}]},
            "generationConfig": {"temperature": 0.0, "seed": 42}})
    );
    // The model's identity at the start (header) and the end (close record).
    let identity = j!({"name": "models/gemini-test", "version": "001"});
    assert_eq!(header["servers"]["g"], identity, "{header}");
    let close = lines.iter().find(|l| l["kind"] == "close").unwrap();
    assert_eq!(close["servers"]["g"], identity, "{close}");
    assert_no_key(&archive, &out);
    let posts: Vec<_> = server
        .received()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 4);
    assert!(posts.iter().all(|r| r.headers["x-goog-api-key"] == KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_provider_needs_its_key_before_anything_is_sent() {
    let server = gemini_server::start(vec![], None, true).await;
    let dir = tempfile::tempdir().unwrap();
    let base = base_url(&server);
    let out = run_reprise(dir.path(), "", "gemini", &[("GEMINI_BASE_URL", &base)]).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr
            .contains("provider `gemini` reads its API key from $GEMINI_API_KEY, which is not set"),
        "{stderr}"
    );
    assert!(server.received().is_empty(), "no call was sent");
}
