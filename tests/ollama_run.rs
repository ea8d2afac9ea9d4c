//! `reprise run` end to end against a loopback Ollama named in config.toml: what the archive
//! records (the digest included), retries, the pre-flight check, and a proxy's API key absent
//! from archive, stdout and stderr.

#[path = "support/ollama_server.rs"]
mod ollama_server;

use std::path::Path;
use std::process::Command;

use ollama_server::{transcript, Canned, Server, DIGEST};
use serde_json::{json, Value};

const KEY: &str = "sk-test-FAKEKEY-0llama-5e1d";
const BIN: &str = env!("CARGO_BIN_EXE_reprise");

fn whole(status: u16, headers: Vec<(&'static str, &'static str)>, error: &str) -> Canned {
    Canned::Whole {
        status,
        headers,
        body: json!({ "error": error }).to_string(),
    }
}

const PROTOCOL: &str = r#"
[protocol]
name = "native"

[prompt]
system = "Answer in one word."
user = "Capital of France?"

[params]
temperature = 0.0
seed = 42
max_tokens = 8

[campaign]
repeats = 3
concurrency = 2

[[targets]]
name = "lab"
provider = "lab"
"#;

/// Runs PROTOCOL against provider `lab` (`model`, and `extra` config lines) with the fake key
/// set; returns the output and the archive's text.
async fn run_reprise(
    dir: &Path,
    base_url: &str,
    model: &str,
    extra: &str,
) -> (std::process::Output, String) {
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        format!("[providers.lab]\nkind = \"ollama\"\nbase_url = \"{base_url}\"\nmodel = \"{model}\"\napi_key_env = \"REPRISE_TEST_OLLAMA_KEY\"\n{extra}"),
    )
    .unwrap();
    let protocol = dir.join("native.toml");
    std::fs::write(&protocol, PROTOCOL).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["run", &protocol.display().to_string(), "--json"])
        .env("REPRISE_CONFIG_DIR", &config)
        .env("REPRISE_DATA_DIR", dir.join("data"))
        .env("REPRISE_TEST_OLLAMA_KEY", KEY);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let mut archive = String::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("data").join("sessions")) {
        for entry in entries {
            archive.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
        }
    }
    (out, archive)
}

fn assert_no_key(out: &std::process::Output, archive: &str) {
    for (what, text) in [
        ("archive", archive.to_string()),
        ("stdout", String::from_utf8_lossy(&out.stdout).into_owned()),
        ("stderr", String::from_utf8_lossy(&out.stderr).into_owned()),
    ] {
        assert!(!text.contains(KEY), "the key leaked into {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprise_run_against_a_configured_ollama_archives_the_digest() {
    let server = Server::start(
        vec![],
        Some(Canned::Lines {
            chunks: transcript(),
            cut: false,
        }),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (out, archive) = run_reprise(dir.path(), &server.base_url(), "llama3.2", "").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["targets"][0]["items"][0]["ok"], 3);
    let lines: Vec<Value> = archive
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let calls: Vec<&Value> = lines.iter().filter(|l| l.get("status").is_some()).collect();
    assert_eq!(calls.len(), 3, "{archive}");
    for call in &calls {
        assert_eq!(call["status"], "ok");
        assert_eq!(call["output"], "Paris.");
        assert_eq!(call["finish_reason"], "stop");
        assert_eq!(
            call["usage"],
            json!({"prompt_tokens": 26, "completion_tokens": 3})
        );
        assert_eq!(
            call["served"],
            json!({"model": "llama3.2", "digest": DIGEST})
        );
        assert!(call["timing"]["ttft_ms"].is_number(), "{call}");
        assert!(
            call.get("tokens").is_none(),
            "the server sent no log-probabilities"
        );
    }
    // The conditions name the endpoint and the exact body sent.
    assert!(archive.contains(&format!("{}/api/chat", server.base_url())));
    assert!(
        archive.contains(r#""options":{"num_predict":8,"seed":42,"temperature":0.0}"#),
        "{archive}"
    );
    let chats = server.received_at("/api/chat");
    assert_eq!(chats.len(), 3);
    assert!(chats
        .iter()
        .all(|r| r.headers["authorization"] == format!("Bearer {KEY}")));
    assert_no_key(&out, &archive);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprise_run_archives_failures_without_the_key() {
    let server = Server::start(
        vec![],
        Some(whole(401, vec![], &format!("bad token {KEY}"))),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (out, archive) = run_reprise(dir.path(), &server.base_url(), "llama3.2", "").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(archive.matches(r#""class":"auth""#).count(), 3, "{archive}");
    assert_no_key(&out, &archive);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_or_failing_server_is_retried_and_every_attempt_archived() {
    let server = Server::start(
        vec![
            whole(500, vec![], "llama runner process has terminated"),
            whole(429, vec![("retry-after", "0")], "server busy"),
        ],
        Some(Canned::Lines {
            chunks: transcript(),
            cut: false,
        }),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (out, archive) = run_reprise(dir.path(), &server.base_url(), "llama3.2", "").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let calls: Vec<Value> = archive
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l.get("status").is_some())
        .collect();
    assert_eq!(calls.len(), 5, "{archive}");
    let mut retried: Vec<&str> = calls
        .iter()
        .filter(|c| c["retried"] == true)
        .filter_map(|c| c["error"]["class"].as_str())
        .collect();
    retried.sort_unstable();
    assert_eq!(retried, ["rate_limit", "server"], "{archive}");
    assert_eq!(calls.iter().filter(|c| c["status"] == "ok").count(), 3);
    assert_no_key(&out, &archive);

    // max_retries = 0: the failure is the call's outcome.
    let failing = Server::start(vec![], Some(whole(503, vec![], "server busy"))).await;
    let dir = tempfile::tempdir().unwrap();
    let (out, archive) = run_reprise(
        dir.path(),
        &failing.base_url(),
        "llama3.2",
        "max_retries = 0\n",
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(failing.received_at("/api/chat").len(), 3, "no retries");
    assert_eq!(
        archive.matches(r#""class":"server""#).count(),
        3,
        "{archive}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_not_pulled_stops_the_run_before_any_call() {
    let server = Server::start(vec![], None).await;
    let dir = tempfile::tempdir().unwrap();
    let (out, archive) = run_reprise(dir.path(), &server.base_url(), "mistral", "").await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "target `lab`: mistral is not pulled on this server (ollama pull mistral) (model); nothing was run"
        ),
        "{stderr}"
    );
    assert!(
        server.received_at("/api/chat").is_empty(),
        "no call was sent"
    );
    assert!(archive.is_empty());
    assert_no_key(&out, &archive);
}
