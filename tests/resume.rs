//! `reprise run --resume`: a headless run killed with SIGKILL part-way is continued to its
//! planned count — every planned call exactly one outcome, the chain intact — and what cannot
//! be resumed (a closed, a changed, or a tampered archive; a changed protocol) is refused in
//! one sentence.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_reprise");

fn reprise(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("REPRISE_DATA_DIR", dir.join("data"))
        .env("REPRISE_CONFIG_DIR", dir.join("config"))
        .env_remove("NO_COLOR");
    cmd
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("the reprise binary runs")
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Starts a long headless run and kills it (SIGKILL) once `records` call records are on disk.
fn killed_run(dir: &Path, protocol: &Path, archive: &Path, records: usize) {
    let mut child = reprise(dir)
        .args(["run", &protocol.display().to_string(), "--out"])
        .arg(archive)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let written = std::fs::read_to_string(archive)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if written > records {
            break;
        }
        assert!(Instant::now() < deadline, "the run wrote {written} lines");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
}

const PROTOCOL: &str = r#"
[protocol]
name = "resumable"

[params]
temperature = 0.7
max_tokens = 60

[campaign]
repeats = 1500
concurrency = 8
warmup = 2

[[items]]
name = "capital"
user = "What is the capital of Australia?"

[[items]]
name = "bread"
user = "How is bread made?"

[[targets]]
name = "a"
provider = "local"

[[targets]]
name = "b"
provider = "local"
mode = "batched"
"#;

fn setup(dir: &Path, protocol: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    std::fs::create_dir_all(dir.join("config")).unwrap();
    let path = dir.join("resumable.toml");
    std::fs::write(&path, protocol).unwrap();
    (path, dir.join("session.jsonl"))
}

#[test]
fn a_killed_run_is_resumed_to_exactly_its_planned_calls() {
    let dir = tempfile::tempdir().unwrap();
    let (protocol, archive) = setup(dir.path(), PROTOCOL);
    killed_run(dir.path(), &protocol, &archive, 400);
    let before = lines(&archive);
    assert!(
        before.iter().all(|l| l["kind"] != "close"),
        "killed before closing"
    );
    let killed_calls = before.iter().filter(|l| l["kind"] == "call").count();
    // A crash mid-write leaves a partial line: resume cuts it.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&archive)
        .unwrap()
        .write_all(b"{\"kind\":\"call\",\"seq\":99999,\"pr")
        .unwrap();
    let unfinished = output(reprise(dir.path()).arg("verify").arg(&archive));
    assert_eq!(unfinished.status.code(), Some(1));

    let resumed = output(
        reprise(dir.path())
            .args(["run", "--json", "--resume"])
            .arg(&archive),
    );
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(0), "{stderr}");
    let verified = output(reprise(dir.path()).arg("verify").arg(&archive));
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );

    let after = lines(&archive);
    let calls: Vec<&Value> = after.iter().filter(|l| l["kind"] == "call").collect();
    assert!(calls.len() > killed_calls);
    // Every planned call (2 targets × 2 items × (2 warm-up + 1500)) has exactly one outcome.
    let mut outcomes: HashMap<(String, String, u64), u32> = HashMap::new();
    for c in &calls {
        let finished = c["status"] == "ok" || (c["status"] == "error" && c["retried"] != true);
        if finished {
            let key = (
                c["target"].as_str().unwrap().to_string(),
                c["item"].as_str().unwrap().to_string(),
                c["call"].as_u64().unwrap(),
            );
            *outcomes.entry(key).or_default() += 1;
        }
    }
    assert_eq!(outcomes.len(), 2 * 2 * 1502);
    assert!(outcomes.values().all(|&n| n == 1), "a call counted twice");
    let close = after.last().unwrap();
    assert_eq!(close["kind"], "close");
    assert_eq!(close["outcome"], "completed");
    assert_eq!(close["planned_calls"], 6008);
    // The summary counts every call of the session, before and after the kill.
    let summary: Value = serde_json::from_slice(&resumed.stdout).unwrap();
    for target in summary["targets"].as_array().unwrap() {
        for item in target["items"].as_array().unwrap() {
            assert_eq!(item["ok"], 1500, "{item}");
        }
    }
    // The identity is the one the header was written with, and times go on increasing.
    assert_eq!(close["summary"]["identity"], after[0]["identity"]);
    let resumed_first = &calls[killed_calls];
    let killed_last = calls[..killed_calls]
        .iter()
        .map(|c| c["timing"]["start_ms"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(resumed_first["timing"]["start_ms"].as_f64().unwrap() >= killed_last);
}

#[test]
fn what_cannot_be_resumed_is_refused_in_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let small = PROTOCOL.replace("repeats = 1500", "repeats = 3");
    let (protocol, archive) = setup(dir.path(), &small);
    let done = output(
        reprise(dir.path())
            .args(["run", &protocol.display().to_string(), "--out"])
            .arg(&archive),
    );
    assert_eq!(done.status.code(), Some(0));
    let refused = |dir: &Path, archive: &Path| {
        let o = output(reprise(dir).args(["run", "--resume"]).arg(archive));
        assert_eq!(o.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!stderr.contains("panicked"));
        stderr
    };
    let closed = refused(dir.path(), &archive);
    assert!(
        closed.contains("the session is closed (completed, 20 of 20 planned calls)"),
        "{closed}"
    );

    // An unfinished archive whose protocol file has changed since.
    let text = std::fs::read_to_string(&archive).unwrap();
    let unfinished: Vec<&str> = text.lines().take(10).collect();
    let cut = dir.path().join("cut.jsonl");
    std::fs::write(&cut, unfinished.join("\n") + "\n").unwrap();
    std::fs::write(
        &protocol,
        small.replace("max_tokens = 60", "max_tokens = 61"),
    )
    .unwrap();
    let changed = refused(dir.path(), &cut);
    assert!(
        changed.contains("the protocol no longer produces this session's conditions"),
        "{changed}"
    );
    // Nothing was appended to it.
    assert_eq!(std::fs::read_to_string(&cut).unwrap().lines().count(), 10);

    // A changed record: it does not verify, so it is not continued.
    let tampered = dir.path().join("tampered.jsonl");
    std::fs::write(
        &tampered,
        unfinished.join("\n").replacen("\"ok\"", "\"error\"", 1) + "\n",
    )
    .unwrap();
    let e = refused(dir.path(), &tampered);
    assert!(e.contains("cannot be resumed: it does not verify"), "{e}");

    // No archive at all.
    let e = refused(dir.path(), &dir.path().join("nope.jsonl"));
    assert!(e.contains("cannot read the archive"), "{e}");
    // --resume takes no protocol or overrides.
    let o = output(reprise(dir.path()).args(["run", "--resume", "x.jsonl", "--repeats", "3"]));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn an_archive_with_a_time_no_session_reaches_is_refused_not_panicked_on() {
    use reprise::archive::{ArchiveWriter, Header};
    use reprise::record::CallRecord;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crafted.jsonl");
    let header = Header::new(
        serde_json::json!({"protocol": {"name": "crafted"}}),
        Some(dir.path().join("resumable.toml").display().to_string()),
        std::time::SystemTime::now(),
    );
    let mut writer = ArchiveWriter::create(&path, &header).unwrap();
    writer
        .append(&CallRecord::ok("a", "capital", 0, "Canberra.", 1.0))
        .unwrap();
    // Sealed like any record: only its number is hostile.
    writer
        .append(&CallRecord::ok("a", "capital", 1, "Canberra.", 1e300))
        .unwrap();
    drop(writer);
    let o = output(reprise(dir.path()).args(["run", "--resume"]).arg(&path));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("crafted.jsonl:3: field `timing.latency_ms`: 1e300 ms is beyond any"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
}
