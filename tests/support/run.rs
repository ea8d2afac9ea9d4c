//! `reprise run` end to end against a loopback provider: the binary with a private config and
//! data directory, the archive it wrote, and the check that a key reached none of them.
#![allow(dead_code)] // each test crate uses part of it

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_reprise");

/// `reprise run --json` on `protocol` with `config` as config.toml; `unset` are variables
/// removed (the developer's own keys and base URLs), `env` those set.
pub async fn run_reprise(
    dir: &Path,
    config: &str,
    protocol: &str,
    unset: &[&str],
    env: &[(&str, &str)],
) -> Output {
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(dir.join("config").join("config.toml"), config).unwrap();
    let path = dir.join("run.toml");
    std::fs::write(&path, protocol).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["run", &path.display().to_string(), "--json"])
        .env("REPRISE_CONFIG_DIR", dir.join("config"))
        .env("REPRISE_DATA_DIR", dir.join("data"));
    for var in unset {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// Every archive the runs in `dir` wrote, as text and as parsed lines.
pub fn archive_lines(dir: &Path) -> (String, Vec<Value>) {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir.join("data").join("sessions")).unwrap() {
        text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (text, lines)
}

/// `key` is in neither the archive nor what the command printed.
pub fn assert_no_key(key: &str, archive: &str, out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (what, text) in [
        ("archive", archive),
        ("stdout", &stdout),
        ("stderr", &stderr),
    ] {
        assert!(!text.contains(key), "the key leaked into {what}");
    }
}
