//! The real binary, end to end: run, report, archive, verify, sessions, exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_reprise");

/// Runs reprise with a private data directory, so tests never touch the user's sessions.
fn reprise(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("REPRISE_DATA_DIR", data)
        // Never the developer's own providers or keys: no test may reach a real API.
        .env("REPRISE_CONFIG_DIR", data.join("config"))
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("GEMINI_API_KEY")
        .env_remove("GEMINI_BASE_URL")
        .env_remove("NO_COLOR")
        .output()
        .expect("the reprise binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run_json(data: &Path, protocol: &str, extra: &[&str]) -> Value {
    let mut args = vec!["run", protocol, "--json"];
    args.extend_from_slice(extra);
    let o = reprise(data, &args);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
    serde_json::from_slice(&o.stdout).expect("--json prints one JSON document")
}

fn only_item(summary: &Value) -> &Value {
    let items = summary["targets"][0]["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    &items[0]
}

#[test]
fn temperature_zero_gives_one_output_over_200_calls_at_concurrency_8() {
    let data = tempfile::tempdir().unwrap();
    let s = run_json(
        data.path(),
        "sample-protocols/biography.toml",
        &[
            "--target",
            "local",
            "--repeats",
            "200",
            "--concurrency",
            "8",
        ],
    );
    assert_eq!(s["format_version"], 1);
    assert!(s["identity"].as_str().unwrap().starts_with("sha256:"));
    let item = &s["targets"][0]["items"][0];
    assert_eq!(item["calls"], 200);
    assert_eq!(item["ok"], 200);
    assert_eq!(item["errors"], 0);
    assert_eq!(item["distinct_outputs"], 1);
    assert_eq!(item["modal_share"], 1.0);
    assert_eq!(item["verdict"], "identical");
    assert_eq!(item["tar_raw"], 1);
    assert!(item["first_divergence"].is_null());
    let ci = item["modal_share_ci"].as_array().unwrap();
    assert!((ci[0].as_f64().unwrap() - 0.981).abs() < 0.001, "{ci:?}");
    // The archive named in the summary exists, sits in the data directory and verifies.
    let archive = PathBuf::from(s["archive"].as_str().unwrap());
    assert!(archive.starts_with(data.path()), "{archive:?}");
    let short = &s["identity"].as_str().unwrap()["sha256:".len()..]["".len()..12];
    assert!(
        archive
            .file_name()
            .unwrap()
            .to_string_lossy()
            .contains(short),
        "the file name carries the short identity"
    );
    let v = reprise(data.path(), &["verify", archive.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));
}

#[test]
fn sampling_without_seed_varies_and_with_seed_does_not() {
    let data = tempfile::tempdir().unwrap();
    let hot = run_json(
        data.path(),
        "tests/fixtures/run/hot-unseeded.toml",
        &["--repeats", "200", "--concurrency", "8"],
    );
    let item = only_item(&hot);
    assert!(item["distinct_outputs"].as_u64().unwrap() > 1, "{item}");
    assert_eq!(item["verdict"], "diverged");
    assert!(item["modal_share"].as_f64().unwrap() < 1.0);
    assert!(item["first_divergence"]["index"].is_u64());
    assert!(item["ned_mean"].as_f64().unwrap() > 0.0);

    let seeded = run_json(
        data.path(),
        "tests/fixtures/run/hot-seeded.toml",
        &["--repeats", "200", "--concurrency", "8"],
    );
    let item = only_item(&seeded);
    assert_eq!(item["distinct_outputs"], 1, "{item}");
    assert_eq!(item["verdict"], "identical");
}

#[test]
fn fail_under_gates_on_modal_share() {
    let data = tempfile::tempdir().unwrap();
    let pass = reprise(
        data.path(),
        &[
            "run",
            "tests/fixtures/run/greedy.toml",
            "--fail-under",
            "1.0",
        ],
    );
    assert_eq!(pass.status.code(), Some(0), "{}", stderr(&pass));
    let fail = reprise(
        data.path(),
        &[
            "run",
            "tests/fixtures/run/hot-unseeded.toml",
            "--fail-under",
            "0.99",
        ],
    );
    assert_eq!(fail.status.code(), Some(1), "{}", stderr(&fail));
    assert!(stderr(&fail).contains("item `prompt`"), "{}", stderr(&fail));
}

#[test]
fn table_names_the_measures_and_the_archive() {
    let data = tempfile::tempdir().unwrap();
    let o = reprise(data.path(), &["run", "tests/fixtures/run/greedy.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    for needle in [
        "modal share",
        "distinct",
        "identical",
        "archive",
        "identity",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    // Not a terminal: no progress output on stderr.
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
}

#[test]
fn every_sample_protocol_runs_on_the_local_target() {
    let data = tempfile::tempdir().unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir("sample-protocols").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        seen += 1;
        let out = data.path().join(format!("{seen}.jsonl"));
        let s = run_json(
            data.path(),
            path.to_str().unwrap(),
            &[
                "--target",
                "local",
                "--repeats",
                "3",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        for item in s["targets"][0]["items"].as_array().unwrap() {
            assert_eq!(item["ok"], 3, "{}: {item}", path.display());
        }
        let v = reprise(data.path(), &["verify", out.to_str().unwrap()]);
        assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));
    }
    assert!(seen >= 6, "at least six sample protocols, found {seen}");
}

#[test]
fn verify_names_the_record_that_was_changed() {
    let data = tempfile::tempdir().unwrap();
    let out = data.path().join("s.jsonl");
    let o = reprise(
        data.path(),
        &[
            "run",
            "tests/fixtures/run/greedy.toml",
            "--repeats",
            "5",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ok = reprise(data.path(), &["verify", out.to_str().unwrap()]);
    assert_eq!(ok.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(stdout.starts_with("OK"), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "one OK line: {stdout}");

    // Change one output character in the third record (line 4).
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[3] = lines[3].replacen("\"output\":\"", "\"output\":\"X", 1);
    std::fs::write(&out, lines.join("\n") + "\n").unwrap();
    let bad = reprise(data.path(), &["verify", out.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("record 3"), "{}", stderr(&bad));
}

#[test]
fn sessions_lists_what_was_run() {
    let data = tempfile::tempdir().unwrap();
    let o = reprise(
        data.path(),
        &["run", "tests/fixtures/run/greedy.toml", "--repeats", "4"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let l = reprise(data.path(), &["sessions"]);
    assert_eq!(l.status.code(), Some(0), "{}", stderr(&l));
    let out = String::from_utf8_lossy(&l.stdout);
    assert!(out.contains("greedy"), "{out}");
    assert!(out.contains("completed"), "{out}");
}

#[test]
fn bad_protocols_get_one_line_and_exit_2() {
    let dir = Path::new("tests/fixtures/bad-protocols");
    let data = tempfile::tempdir().unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        seen += 1;
        let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
        let o = reprise(data.path(), &["run", path.to_str().unwrap()]);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{}: {}",
            path.display(),
            stderr(&o)
        );
        let err = stderr(&o);
        assert_eq!(
            err.lines().count(),
            1,
            "one line for {}: {err}",
            path.display()
        );
        assert_eq!(err.trim_end(), format!("error: {}", expected.trim_end()));
        assert!(o.stdout.is_empty());
    }
    assert!(seen >= 15, "fixtures found: {seen}");
}

#[test]
fn missing_file_unknown_target_and_unsupported_provider_exit_2() {
    let data = tempfile::tempdir().unwrap();
    let missing = reprise(data.path(), &["run", "tests/fixtures/run/nope.toml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).starts_with("error: tests/fixtures/run/nope.toml: "));

    let unknown = reprise(
        data.path(),
        &["run", "tests/fixtures/run/greedy.toml", "--target", "gpt-9"],
    );
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("--target `gpt-9`"),
        "{}",
        stderr(&unknown)
    );

    // A remote target without its key: one sentence, before anything is sent.
    let remote = reprise(data.path(), &["run", "tests/fixtures/run/remote-only.toml"]);
    assert_eq!(remote.status.code(), Some(2));
    assert_eq!(stderr(&remote).lines().count(), 1, "{}", stderr(&remote));
    assert!(
        stderr(&remote).contains("$GEMINI_API_KEY, which is not set"),
        "{}",
        stderr(&remote)
    );
    // ...and the suggestion works.
    let local = reprise(
        data.path(),
        &[
            "run",
            "tests/fixtures/run/remote-only.toml",
            "--target",
            "local",
            "--repeats",
            "2",
        ],
    );
    assert_eq!(local.status.code(), Some(0), "{}", stderr(&local));

    let zero = reprise(
        data.path(),
        &["run", "tests/fixtures/run/greedy.toml", "--repeats", "0"],
    );
    assert_eq!(zero.status.code(), Some(2));
    assert!(!stderr(&zero).contains("panicked"));
}

#[test]
fn serve_refuses_a_stall_no_duration_holds_in_one_line() {
    let data = tempfile::tempdir().unwrap();
    for stall in ["-1", "1e300", "NaN", "inf"] {
        let flag = format!("--stall-secs={stall}");
        let o = reprise(data.path(), &["serve", &flag]);
        assert_eq!(o.status.code(), Some(2), "{stall}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("expected seconds from 0 to 86400"),
            "{}",
            stderr(&o)
        );
        assert!(!stderr(&o).contains("panicked"));
    }
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_cleanly_with_a_closed_verifiable_archive() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use std::time::{Duration, Instant};

    let data = tempfile::tempdir().unwrap();
    let out = data.path().join("interrupted.jsonl");
    let child = Command::new(BIN)
        .args([
            "run",
            "tests/fixtures/run/greedy.toml",
            "--repeats",
            "1000000",
            "--concurrency",
            "2",
            "--out",
            out.to_str().unwrap(),
        ])
        .env("REPRISE_DATA_DIR", data.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until some calls are on disk, then interrupt as a terminal would.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&out).map_or(0, |t| t.lines().count()) < 5 {
        assert!(Instant::now() < deadline, "no records written");
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("stopping"), "{}", stderr(&o));
    let v = reprise(data.path(), &["verify", out.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));
    let last = std::fs::read_to_string(&out).unwrap();
    let close: Value = serde_json::from_str(last.lines().last().unwrap()).unwrap();
    assert_eq!(close["kind"], "close");
    assert_eq!(close["outcome"], "cancelled");
    // The calls never sent are counted, and the reason said.
    let unsent = close["not_sent"].as_u64().unwrap();
    assert!(unsent > 0, "{close}");
    assert_eq!(close["without_outcome"].as_u64(), Some(unsent), "{close}");
    assert!(
        close["reason"]
            .as_str()
            .unwrap()
            .starts_with("stopped by the user: "),
        "{close}"
    );
}

/// Every call's output in an archive, in call order.
fn archived_outputs(archive: &str) -> Vec<String> {
    let text = std::fs::read_to_string(archive).unwrap();
    let mut calls: Vec<(u64, String)> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["kind"] == "call")
        .map(|v| {
            (
                v["call"].as_u64().unwrap(),
                v["output"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    calls.sort();
    calls.into_iter().map(|(_, o)| o).collect()
}

#[test]
fn batched_decoding_at_temperature_zero_splits_only_when_calls_share_a_batch() {
    let data = tempfile::tempdir().unwrap();
    let demo = "sample-protocols/batching-demo.toml";
    let alone = run_json(
        data.path(),
        demo,
        &["--repeats", "50", "--concurrency", "1"],
    );
    assert_eq!(only_item(&alone)["distinct_outputs"], 1, "{alone}");
    let crowded = run_json(
        data.path(),
        demo,
        &["--repeats", "500", "--concurrency", "32"],
    );
    let item = only_item(&crowded);
    assert!(item["distinct_outputs"].as_u64().unwrap() > 1, "{item}");
    // A near-tie tipped late, not noise from the first token.
    let split = &item["first_divergence"];
    assert!(split["index"].as_u64().unwrap() >= 5, "{split}");
    assert!(split["branches"].as_array().unwrap().len() >= 2, "{split}");
    // What served each call says how it was decoded.
    let archive = crowded["archive"].as_str().unwrap();
    let text = std::fs::read_to_string(archive).unwrap();
    assert!(text.contains(r#""mode":"batched""#));
}

#[test]
fn batch_invariant_decoding_gives_the_lone_output_at_any_concurrency() {
    let data = tempfile::tempdir().unwrap();
    let invariant = "sample-protocols/batch-invariant.toml";
    let crowded = run_json(
        data.path(),
        invariant,
        &["--repeats", "500", "--concurrency", "32"],
    );
    assert_eq!(only_item(&crowded)["distinct_outputs"], 1, "{crowded}");
    // Another process, one call at a time: byte for byte the same text.
    let alone = run_json(
        data.path(),
        invariant,
        &["--repeats", "3", "--concurrency", "1"],
    );
    let a = archived_outputs(crowded["archive"].as_str().unwrap());
    let b = archived_outputs(alone["archive"].as_str().unwrap());
    assert_eq!(a.len(), 500);
    assert!(a.iter().chain(&b).all(|o| o == &b[0]));
    // The batched demo alone in its batch decodes exactly the same text.
    let demo_alone = run_json(
        data.path(),
        "sample-protocols/batching-demo.toml",
        &["--repeats", "3", "--concurrency", "1"],
    );
    assert_eq!(
        archived_outputs(demo_alone["archive"].as_str().unwrap())[0],
        b[0]
    );
}

fn write_protocol(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, format!("[protocol]\nname = \"{name}\"\n{body}")).unwrap();
    path.display().to_string()
}

#[test]
fn seeded_sampling_at_temperature_0_8_gives_one_output_per_seed() {
    let dir = tempfile::tempdir().unwrap();
    let mut firsts = Vec::new();
    for seed in [1, 2, 3, 4] {
        let protocol = write_protocol(
            dir.path(),
            &format!("seed-{seed}"),
            &format!(
                "[prompt]\nuser = \"Tell me about Richard Feynman.\"\n[params]\ntemperature = 0.8\nmax_tokens = 120\nseed = {seed}\n[[targets]]\nprovider = \"local\"\n"
            ),
        );
        let summary = run_json(
            dir.path(),
            &protocol,
            &["--repeats", "100", "--concurrency", "16"],
        );
        assert_eq!(
            only_item(&summary)["distinct_outputs"],
            1,
            "seed {seed}: {summary}"
        );
        firsts.push(archived_outputs(summary["archive"].as_str().unwrap())[0].clone());
    }
    // Sampling it is: the seed picks the text (a confident model may agree on some seeds).
    firsts.sort();
    firsts.dedup();
    assert!(firsts.len() >= 2, "{firsts:?}");
}

#[test]
fn drift_after_shows_a_second_served_identity_from_the_call_it_began() {
    let dir = tempfile::tempdir().unwrap();
    let protocol = write_protocol(
        dir.path(),
        "drift",
        "[prompt]\nuser = \"Write a short poem about the sea.\"\n[params]\ntemperature = 0.0\nmax_tokens = 60\n[[targets]]\nprovider = \"local\"\ndrift_after = 30\n",
    );
    let summary = run_json(
        dir.path(),
        &protocol,
        &["--repeats", "60", "--concurrency", "1"],
    );
    let served = summary["targets"][0]["served"].as_array().unwrap();
    assert_eq!(served.len(), 2, "{summary}");
    assert_ne!(
        served[0]["fields"]["revision"],
        served[1]["fields"]["revision"]
    );
    assert_eq!(served[0]["fields"]["model"], served[1]["fields"]["model"]);
    assert_eq!(served[1]["first"]["call"], 30);
    assert_eq!(
        (served[0]["records"].as_u64(), served[1]["records"].as_u64()),
        (Some(30), Some(30))
    );
    // The archive itself says which call each revision served, and the update moved the text.
    let text = std::fs::read_to_string(summary["archive"].as_str().unwrap()).unwrap();
    let calls: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["kind"] == "call")
        .collect();
    for c in &calls {
        let expected = if c["call"].as_u64().unwrap() < 30 {
            &served[0]
        } else {
            &served[1]
        };
        assert_eq!(
            c["served"]["revision"], expected["fields"]["revision"],
            "{c}"
        );
    }
    assert_eq!(only_item(&summary)["distinct_outputs"], 2, "{summary}");
    let header: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let close: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(
        header["servers"]["local"]["revision"],
        served[0]["fields"]["revision"]
    );
    assert_eq!(
        close["servers"]["local"]["revision"],
        served[1]["fields"]["revision"]
    );
    // And the table says so, naming the call.
    let out = reprise(
        dir.path(),
        &["run", &protocol, "--repeats", "40", "--concurrency", "1"],
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("served identity changed: 2 identities"),
        "{table}"
    );
    assert!(
        table.contains("2. from prompt call 30 (record 31 of the target), 10 records"),
        "{table}"
    );
}
