//! The circuit breaker end to end: `reprise run` against loopback servers that refuse every
//! call stops sending after the first wave, says why in one sentence, exits 2, and leaves an
//! archive that verifies; a target that answered once, the other targets, and `--breaker 0`
//! are never stopped.

#[path = "support/chat_server.rs"]
mod chat_server;
#[path = "support/run.rs"]
mod run;

use std::path::Path;
use std::process::{Command, Output};

use chat_server::{whole_reply, Canned, Server};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_reprise");

/// What OpenAI answers a reasoning model sent `max_tokens`.
const REFUSAL: &str = r#"{"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}}"#;

fn refusing() -> Canned {
    Canned::Whole {
        status: 400,
        headers: vec![],
        body: REFUSAL.into(),
    }
}

fn answering() -> Canned {
    Canned::Whole {
        status: 200,
        headers: vec![],
        body: whole_reply().to_string(),
    }
}

/// `[providers.NAME]` of kind `openai` at each server, non-streamed, retries off.
fn config(servers: &[(&str, &Server)]) -> String {
    servers
        .iter()
        .map(|(name, server)| {
            format!(
                "[providers.{name}]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"o3-mini\"\n\
                 stream = false\nmax_retries = 0\n",
                server.base_url()
            )
        })
        .collect()
}

/// `reprise run --json` on `protocol` with `config`, then `args`.
async fn run_reprise(dir: &Path, config: &str, protocol: &str, args: &[&str]) -> Output {
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(dir.join("config").join("config.toml"), config).unwrap();
    let path = dir.join("run.toml");
    std::fs::write(&path, protocol).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["run", &path.display().to_string(), "--json"])
        .args(args)
        .env("REPRISE_CONFIG_DIR", dir.join("config"))
        .env("REPRISE_DATA_DIR", dir.join("data"))
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL");
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// The one archive the run wrote: its path, call records and closing record.
fn archive(dir: &Path) -> (std::path::PathBuf, Vec<Value>, Value) {
    let sessions = dir.join("data").join("sessions");
    let path = std::fs::read_dir(&sessions)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let (_, lines) = run::archive_lines(dir);
    let calls = lines
        .iter()
        .filter(|l| l["kind"] == "call")
        .cloned()
        .collect();
    let close = lines.last().unwrap().clone();
    assert_eq!(close["kind"], "close");
    (path, calls, close)
}

fn verifies(path: &Path) {
    let o = Command::new(BIN).arg("verify").arg(path).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn protocol(targets: &[&str], repeats: u32, concurrency: u32) -> String {
    let mut text = format!(
        "[protocol]\nname = \"refused\"\n\n[prompt]\nuser = \"Capital of France?\"\n\n\
         [params]\nmax_tokens = 50\n\n[campaign]\nrepeats = {repeats}\nconcurrency = \
         {concurrency}\n"
    );
    for target in targets {
        text.push_str(&format!(
            "\n[[targets]]\nname = \"{target}\"\nprovider = \"{target}\"\n"
        ));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_calls_to_a_refusing_server_stop_after_the_first_wave() {
    let server = Server::start(vec![], Some(refusing())).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_reprise(
        dir.path(),
        &config(&[("gpt", &server)]),
        &protocol(&["gpt"], 1000, 8),
        &[],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    // At most the first wave: the calls in flight as the fifth refusal came back.
    let sent = server.received().len();
    assert!((5..=8 + 5).contains(&sent), "{sent} calls sent");
    // One sentence on stderr naming the target, the class and the refused field.
    let said = stderr.trim_end();
    assert_eq!(said.lines().count(), 1, "{stderr}");
    assert!(
        said.starts_with(
            "error: target `gpt`: the first 5 calls all failed (refused_parameter): provider \
             `gpt` refused parameter `max_tokens` (HTTP 400)"
        ),
        "{said}"
    );
    assert!(said.contains("'max_completion_tokens'"), "{said}");
    assert!(
        said.ends_with("; no more calls were sent to it (breaker = 5 in [campaign])"),
        "{said}"
    );
    let reason = said.strip_prefix("error: ").unwrap();

    let (path, calls, close) = archive(dir.path());
    assert_eq!(calls.len(), sent, "every call sent is recorded");
    assert_eq!(close["outcome"], "failed");
    assert_eq!(close["planned_calls"], 1000);
    assert_eq!(close["not_sent"], 1000 - sent as u64);
    assert_eq!(close["without_outcome"], 1000 - sent as u64);
    assert_eq!(close["reason"], reason);
    verifies(&path);
    // The JSON summary says it too.
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["stopped"]["reason"], reason);
    assert_eq!(summary["stopped"]["outcome"], "failed");
    assert_eq!(summary["stopped"]["not_sent"], 1000 - sent as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_answered_once_is_never_stopped() {
    // One answer, then refusals only: the first outcome was a success.
    let server = Server::start(vec![answering()], Some(refusing())).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_reprise(
        dir.path(),
        &config(&[("gpt", &server)]),
        &protocol(&["gpt"], 30, 1),
        &[],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Every call was sent and has its outcome: the campaign completed.
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(server.received().len(), 30);
    let (path, calls, close) = archive(dir.path());
    assert_eq!(calls.len(), 30);
    assert_eq!(close["outcome"], "completed");
    assert!(close.get("reason").is_none(), "{close}");
    verifies(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_targets_the_refused_one_stops_and_the_other_completes() {
    let refused = Server::start(vec![], Some(refusing())).await;
    let fine = Server::start(vec![], Some(answering())).await;
    let dir = tempfile::tempdir().unwrap();
    let mut text = protocol(&["gpt", "lab"], 100, 4);
    text = text.replace("concurrency = 4\n", "concurrency = 4\nbreaker = 3\n");
    let out = run_reprise(
        dir.path(),
        &config(&[("gpt", &refused), ("lab", &fine)]),
        &text,
        &[],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("target `gpt`: the first 3 calls all failed (refused_parameter)")
            && stderr.contains("(breaker = 3 in [campaign])"),
        "{stderr}"
    );
    assert!(refused.received().len() <= 4 + 3);
    assert_eq!(fine.received().len(), 100, "the other target completes");
    let (path, calls, close) = archive(dir.path());
    let ok = calls
        .iter()
        .filter(|c| c["target"] == "lab" && c["status"] == "ok");
    assert_eq!(ok.count(), 100);
    assert_eq!(close["outcome"], "failed");
    verifies(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_zero_sends_every_call() {
    let server = Server::start(vec![], Some(refusing())).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_reprise(
        dir.path(),
        &config(&[("gpt", &server)]),
        &protocol(&["gpt"], 40, 4),
        &["--breaker", "0"],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Every call refused, each its outcome: the campaign ran to its end, as asked.
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(server.received().len(), 40);
    let (path, calls, close) = archive(dir.path());
    assert_eq!(calls.len(), 40);
    assert_eq!(close["outcome"], "completed");
    verifies(&path);
}
