//! `reprise run` end to end against a loopback Chat Completions server named in config.toml:
//! what the archive records, and the API key absent from archive, stdout and stderr.

#[path = "support/chat_server.rs"]
mod chat_server;

use std::path::Path;
use std::process::{Command, Output};

use chat_server::{transcript, Canned, Server};
use serde_json::{json, Value};

const KEY: &str = "sk-test-FAKEKEY-7f3a9c";
const BIN: &str = env!("CARGO_BIN_EXE_reprise");

fn error_body(message: &str) -> String {
    json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}})
        .to_string()
}

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
    // Extra headers are sent, and are part of the conditions the identity covers.
    let header = lines.iter().find(|l| l["kind"] == "header").unwrap();
    let target = &header["conditions"]["targets"][0];
    assert_eq!(target["headers"], json!({"X-Team": "lab"}), "{header}");
    assert!(server
        .received()
        .iter()
        .all(|r| r.headers["x-team"] == "lab"));
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
            body: error_body(&format!("Incorrect API key provided: {KEY}")),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_llama_cpp_servers_build_is_in_the_archive_header_and_close() {
    let documents = vec![
        (
            "/v1/models",
            json!({"object": "list", "data": [{"id": "reprise-local-1", "object": "model",
                "created": 1752000000, "owned_by": "llamacpp"}]}),
        ),
        (
            "/props",
            json!({"build_info": "b5890-0d922267", "total_slots": 1,
                "model_path": "/models/local-1.gguf", "chat_template": "T",
                "default_generation_settings": {"params": {"seed": 4294967295u64}}}),
        ),
    ];
    let server = Server::start_with(
        documents,
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
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let archive = archive_text(dir.path());
    let lines: Vec<Value> = archive
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected = json!({
        "build_info": "b5890-0d922267",
        "chat_template_sha256": "e632b7095b0bf32c",
        "created": "1752000000",
        "default_seed": "4294967295",
        "id": "reprise-local-1",
        "model_path": "/models/local-1.gguf",
        "owned_by": "llamacpp",
        "total_slots": "1"
    });
    let header = lines.iter().find(|l| l["kind"] == "header").unwrap();
    assert_eq!(header["servers"]["srv"], expected, "{header}");
    let close = lines.last().unwrap();
    assert_eq!(close["servers"]["srv"], expected, "{close}");
    // Only the three calls reached the chat script; the key went nowhere but the wire.
    assert_eq!(server.received().len(), 3);
    assert!(!archive.contains(KEY));
}
