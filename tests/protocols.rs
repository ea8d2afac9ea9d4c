//! Protocol loading as a user meets it: the shipped samples load, and every bad input gets the
//! exact one-line message in its fixture (`tests/fixtures/bad-protocols/NAME.{toml,expected}`).

use std::fs;
use std::path::{Path, PathBuf};

use reprise::protocol::{Normalize, Protocol, Target};

const BAD: &str = "tests/fixtures/bad-protocols";
const SAMPLES: &str = "sample-protocols";

/// Files in `dir` with extension `ext`, as relative paths (what a user would type), sorted.
fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .filter_map(|entry| entry.ok())
        .map(|entry| Path::new(dir).join(entry.file_name()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

fn load_sample(name: &str) -> Protocol {
    let path = Path::new(SAMPLES).join(name);
    Protocol::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_sample_protocol_loads_and_runs_locally() {
    let samples = files(SAMPLES, "toml");
    assert!(
        samples.len() >= 8,
        "expected at least 8 samples, found {}",
        samples.len()
    );
    for path in samples {
        let p = Protocol::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let description = p.meta.description.as_deref().unwrap_or("");
        assert!(
            description.len() > 20,
            "{}: a sample needs a description a speaker can read aloud",
            path.display()
        );
        // Samples run anywhere: the built-in model only (in either decoding mode).
        assert!(
            p.targets.iter().all(|t| t.provider == "local"),
            "{}",
            path.display()
        );
        assert!(
            (50..=200).contains(&p.campaign.repeats),
            "{}: repeats {}",
            path.display(),
            p.campaign.repeats
        );
        if let Some(answer) = &p.answer {
            // Every sample with an answer pattern must be able to find one in the local model's
            // closing line, which is what the prompts ask for.
            let re = answer.regex().unwrap_or_else(|e| panic!("{e}"));
            assert!(
                p.items.iter().all(|i| i.user.contains("Answer:")),
                "{}: prompts should ask for an `Answer:` line",
                path.display()
            );
            assert!(
                re.is_match("Some reasoning.\nAnswer: B")
                    || re.is_match("Some reasoning.\nAnswer: 42"),
                "{}: pattern does not match a typical closing line",
                path.display()
            );
        }
    }
}

#[test]
fn samples_demonstrate_what_their_names_say() {
    let bio = load_sample("biography.toml");
    assert_eq!(bio.params.temperature, Some(0.0));
    assert!(bio.answer.is_none());

    let mc = load_sample("multiple-choice.toml");
    assert_eq!(mc.params.temperature, Some(0.8));
    let re = mc
        .answer
        .as_ref()
        .and_then(|a| a.regex().ok())
        .expect("answer pattern");
    let caught = re
        .captures("The capital is Paris.\nAnswer: C")
        .and_then(|c| c.get(1));
    assert_eq!(caught.map(|m| m.as_str()), Some("C"));

    let arith = load_sample("arithmetic.toml");
    let answer = arith.answer.as_ref().expect("answer");
    assert_eq!(answer.normalize, vec![Normalize::Trim]);
    let re = answer.regex().expect("regex");
    let caught = re
        .captures("12 * 3 = 36, plus 6.\nAnswer: 42")
        .and_then(|c| c.get(1));
    assert_eq!(caught.map(|m| m.as_str().trim()), Some("42"));

    let battery = load_sample("battery.toml");
    assert!((4..=5).contains(&battery.items.len()));
    assert_eq!(battery.params.temperature, Some(0.7));
    assert!(battery.answer.is_some());

    let seeded = load_sample("seeded-sampling.toml");
    assert_eq!(seeded.params.temperature, Some(1.0));
    assert!(seeded.params.seed.is_some());

    let warmup = load_sample("warmup.toml");
    assert!(warmup.campaign.warmup > 0);
}

#[test]
fn every_bad_protocol_gets_its_exact_one_line_message() {
    let cases = files(BAD, "toml");
    assert!(
        cases.len() >= 21,
        "only {} bad-protocol fixtures",
        cases.len()
    );
    let mut failures = Vec::new();
    for path in &cases {
        let expected_path = path.with_extension("expected");
        let expected = fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        let expected = expected.trim_end_matches(['\n', '\r']);
        match Protocol::load(path) {
            Ok(_) => failures.push(format!("{}: loaded, but should fail", path.display())),
            Err(e) => {
                let got = e.to_string();
                assert!(!got.contains('\n'), "multi-line message: {got:?}");
                if got != expected {
                    failures.push(format!(
                        "{}:\n  expected: {expected}\n  got:      {got}",
                        path.display()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_expected_message_has_its_fixture() {
    for expected in files(BAD, "expected") {
        assert!(
            expected.with_extension("toml").exists(),
            "{} has no .toml",
            expected.display()
        );
    }
}

#[test]
fn a_missing_file_is_named_with_the_os_reason() {
    let path = Path::new(BAD).join("does-not-exist.toml");
    let err = Protocol::load(&path).expect_err("missing file must fail");
    let text = err.to_string();
    let prefix = "tests/fixtures/bad-protocols/does-not-exist.toml: cannot read protocol: ";
    assert!(text.starts_with(prefix), "{text}");
    // The OS words differ by platform; the error kind does not.
    let os = std::io::Error::from(std::io::ErrorKind::NotFound).to_string();
    assert!(
        text.contains("No such file") || text.contains(&os) || text.contains("cannot find"),
        "{text}"
    );
    assert_eq!(err.line, None);
}

#[test]
fn defaults_fill_in_what_a_minimal_protocol_leaves_out() {
    let p = Protocol::parse(
        Path::new("minimal.toml"),
        "[protocol]\nname = \"min\"\n[prompt]\nuser = \"Hi\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.items.len(), 1);
    assert_eq!(p.items[0].name, "prompt");
    assert_eq!(p.items[0].user, "Hi");
    assert_eq!(p.targets, vec![Target::local()]);
    assert_eq!(
        (
            p.campaign.repeats,
            p.campaign.concurrency,
            p.campaign.warmup
        ),
        (20, 4, 0)
    );
    assert_eq!(p.params.temperature, None);
}

#[test]
fn integer_temperatures_and_inline_tables_are_accepted() {
    let text = r#"
items = [ { name = "a", user = "First?" }, { name = "b", user = "Second?", expected = "2" } ]
params = { temperature = 1, top_p = 1, stop = ["\n"] }

[protocol]
name = "inline"
"#;
    let p = Protocol::parse(Path::new("inline.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.params.temperature, Some(1.0));
    assert_eq!(p.params.stop, vec!["\n".to_string()]);
    assert_eq!(p.items[1].expected.as_deref(), Some("2"));
}

#[test]
fn targets_get_default_names_and_configured_providers_are_accepted() {
    let text = r#"
[protocol]
name = "targets"
[prompt]
user = "Hi"
[[targets]]
provider = "local"
[[targets]]
provider = "openai"
model = "gpt-4o-mini"
[[targets]]
provider = "my-vllm"
"#;
    let path = Path::new("targets.toml");
    let err = Protocol::parse(path, text).expect_err("unconfigured name is unknown");
    assert_eq!(err.field.as_deref(), Some("targets[2].provider"));
    assert_eq!(err.line, Some(12));

    let p = Protocol::parse_with_providers(path, text, &["my-vllm".to_string()])
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = p.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["local", "openai/gpt-4o-mini", "my-vllm"]);
}

#[test]
fn two_targets_of_one_provider_are_fine_with_distinct_names() {
    let text = r#"
[protocol]
name = "two locals"
[prompt]
user = "Hi"
[[targets]]
provider = "local"
[[targets]]
name = "local-again"
provider = "local"
"#;
    let p = Protocol::parse(Path::new("t.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.targets.len(), 2);
}
