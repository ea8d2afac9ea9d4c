//! `reprise compare` end to end: real archives from `reprise run` on the local model.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_reprise");

/// Runs reprise with a private data directory and no user config or keys.
fn reprise(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("REPRISE_DATA_DIR", data)
        .env("REPRISE_CONFIG_DIR", data.join("config"))
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("NO_COLOR")
        .output()
        .expect("the reprise binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `protocol` into `data/name.jsonl`; its path.
fn archive(data: &Path, protocol: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = data.join(format!("{name}.jsonl"));
    let mut args = vec![
        "run",
        protocol.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = reprise(data, &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    out
}

fn compare_json(data: &Path, a: &Path, b: &Path) -> Value {
    let o = reprise(
        data,
        &[
            "compare",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("--json prints one JSON document")
}

/// The seeded sampling fixture with another temperature.
fn with_temperature(data: &Path, t: &str) -> PathBuf {
    let src = std::fs::read_to_string("tests/fixtures/run/hot-seeded.toml").unwrap();
    assert!(src.contains("temperature = 1.0"));
    let path = data.join(format!("t{t}.toml"));
    std::fs::write(
        &path,
        src.replace("temperature = 1.0", &format!("temperature = {t}")),
    )
    .unwrap();
    path
}

#[test]
fn two_runs_of_a_deterministic_protocol_do_not_differ() {
    let data = tempfile::tempdir().unwrap();
    let protocol = Path::new("tests/fixtures/run/hot-seeded.toml");
    let a = archive(data.path(), protocol, "a", &["--repeats", "30"]);
    let b = archive(
        data.path(),
        protocol,
        "b",
        &["--repeats", "30", "--concurrency", "4"],
    );
    for (x, y) in [(&a, &a), (&a, &b)] {
        let doc = compare_json(data.path(), x, y);
        assert_eq!(doc["same_identity"], true, "{doc}");
        assert_eq!(doc["conditions"].as_array().unwrap().len(), 0);
        assert!(doc["served"][0]["changed"].as_array().unwrap().is_empty());
        let item = &doc["items"][0];
        assert_eq!(item["consistency"]["significant"], false);
        assert_eq!(item["overlap"]["b_share_with_a_output"], 1.0);
        assert_eq!(
            doc["verdict"],
            "same conditions; consistency does not differ significantly (p = 1.00)"
        );
    }
}

#[test]
fn a_changed_temperature_is_named_and_the_table_says_which_tests() {
    let data = tempfile::tempdir().unwrap();
    let a = archive(
        data.path(),
        &with_temperature(data.path(), "1.0"),
        "a",
        &["--repeats", "20"],
    );
    let b = archive(
        data.path(),
        &with_temperature(data.path(), "0.7"),
        "b",
        &["--repeats", "20"],
    );
    let doc = compare_json(data.path(), &a, &b);
    let changes = doc["conditions"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["path"], "targets.local.body.temperature");
    assert_eq!(changes[0]["a"], "1.0");
    assert_eq!(changes[0]["b"], "0.7", "f32 parameters shown as written");
    let verdict = doc["verdict"].as_str().unwrap();
    assert!(
        verdict.starts_with("conditions differ in 1 field (targets.local.body.temperature)"),
        "{verdict}"
    );

    let o = reprise(
        data.path(),
        &["compare", a.to_str().unwrap(), b.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0));
    let table = text(&o.stdout);
    assert!(
        table.contains("targets.local.body.temperature  1.0"),
        "{table}"
    );
    assert!(table.contains("Fisher's exact"), "{table}");
    assert!(table.contains("chi-square"), "{table}");
    assert!(table.contains(&format!("verdict: {verdict}")), "{table}");
}

#[test]
fn sampling_without_a_seed_is_less_consistent_than_with_one() {
    let data = tempfile::tempdir().unwrap();
    let seeded = archive(
        data.path(),
        Path::new("tests/fixtures/run/hot-seeded.toml"),
        "s",
        &["--repeats", "40"],
    );
    let hot = archive(
        data.path(),
        Path::new("tests/fixtures/run/hot-unseeded.toml"),
        "h",
        &["--repeats", "40"],
    );
    let doc = compare_json(data.path(), &seeded, &hot);
    assert!(doc["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["path"] == "targets.local.body.seed"));
    let item = &doc["items"][0];
    assert_eq!(item["consistency"]["test"], "fisher_exact_two_sided");
    assert!(item["consistency"]["p"].as_f64().unwrap() < 0.05, "{item}");
    assert!(doc["verdict"]
        .as_str()
        .unwrap()
        .contains("consistency differs significantly"));
}

#[test]
fn an_unreadable_archive_is_one_sentence_naming_it() {
    let data = tempfile::tempdir().unwrap();
    let good = archive(
        data.path(),
        Path::new("tests/fixtures/run/hot-seeded.toml"),
        "a",
        &["--repeats", "2"],
    );
    let bad = data.path().join("garbage.jsonl");
    std::fs::write(&bad, "this is not an archive\n").unwrap();
    let missing = data.path().join("missing.jsonl");
    for (a, b, named) in [(&good, &bad, &bad), (&missing, &good, &missing)] {
        let o = reprise(
            data.path(),
            &["compare", a.to_str().unwrap(), b.to_str().unwrap()],
        );
        assert_eq!(o.status.code(), Some(2));
        let err = text(&o.stderr);
        assert!(err.starts_with("error: "), "{err}");
        assert!(err.contains(named.to_str().unwrap()), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn help_shows_an_example() {
    let data = tempfile::tempdir().unwrap();
    let o = reprise(data.path(), &["compare", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let help = text(&o.stdout);
    assert!(
        help.contains("reprise compare before.jsonl after.jsonl"),
        "{help}"
    );
    assert!(help.contains("--json"));
}

#[test]
fn an_archive_that_does_not_verify_is_flagged_first() {
    let base = "tests/fixtures/bad-archives/base.jsonl.src";
    let changed = "tests/fixtures/bad-archives/hash-mismatch.jsonl";
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_reprise"))
        .args(["compare", base, changed, "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["a"]["integrity"], "chain intact");
    assert_eq!(
        doc["b"]["integrity"],
        "does not verify: record 1: hash mismatch — the record was changed"
    );
    assert!(
        doc["verdict"]
            .as_str()
            .unwrap()
            .starts_with("⚠ B does not verify (record 1: hash mismatch"),
        "{}",
        doc["verdict"]
    );
}
