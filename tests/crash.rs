//! Crashes: a headless run killed with SIGKILL at 20 points leaves an archive that is a clean
//! prefix of the session — every complete record verifies, at most the last line is cut — and
//! `reprise run --resume` completes each one to exactly its planned calls.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_reprise");

const PROTOCOL: &str = r#"
[protocol]
name = "crash"

[params]
temperature = 0.8
max_tokens = 40

[campaign]
repeats = 120
concurrency = 6

[[items]]
name = "one"
user = "Tell me about Richard Feynman."

[[items]]
name = "two"
user = "How is bread made?"

[[targets]]
name = "a"
provider = "local"
"#;

fn reprise(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("REPRISE_DATA_DIR", dir.join("data"))
        .env("REPRISE_CONFIG_DIR", dir.join("config"));
    cmd
}

fn complete_lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

#[test]
fn killed_at_twenty_points_every_archive_is_a_clean_prefix_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let protocol = dir.path().join("crash.toml");
    std::fs::write(&protocol, PROTOCOL).unwrap();
    let planned = 2 * 120;
    let mut killed = 0;
    for k in 0..20u64 {
        // Spread over the run: from the first records to near the end.
        let kill_after = 1 + (k * 7919 % 200) as usize;
        let archive = dir.path().join(format!("crash-{k}.jsonl"));
        let mut child = reprise(dir.path())
            .args([
                "run",
                protocol.to_str().unwrap(),
                "--out",
                archive.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while complete_lines(&archive) <= kill_after && child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "kill point {k}");
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();

        let verify = reprise(dir.path())
            .arg("verify")
            .arg(&archive)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&verify.stderr).into_owned();
        let finished = verify.status.success();
        // A clean prefix: nothing wrong but the missing end (and perhaps a half-written line).
        assert!(
            finished
                || said.contains("no closing record")
                || said.contains("the last line is incomplete"),
            "kill point {k}: {said}"
        );
        if finished {
            continue; // the run beat the kill
        }
        killed += 1;
        let resumed = reprise(dir.path())
            .args(["run", "--resume", archive.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(
            resumed.status.code(),
            Some(0),
            "kill point {k}: {}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        let verify = reprise(dir.path())
            .arg("verify")
            .arg(&archive)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "kill point {k}: {}",
            String::from_utf8_lossy(&verify.stderr)
        );
        let mut outcomes: HashMap<(String, u64), u32> = HashMap::new();
        for line in std::fs::read_to_string(&archive).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            if v["kind"] == "call" && v["retried"] != true && v["status"] != "cancelled" {
                let key = (
                    v["item"].as_str().unwrap().to_string(),
                    v["call"].as_u64().unwrap(),
                );
                *outcomes.entry(key).or_default() += 1;
            }
        }
        assert_eq!(outcomes.len(), planned, "kill point {k}");
        assert!(
            outcomes.values().all(|&n| n == 1),
            "kill point {k}: a call counted twice"
        );
    }
    // The points are inside the run, not after it.
    assert!(
        killed >= 15,
        "only {killed} of 20 runs were killed before they ended"
    );
}
