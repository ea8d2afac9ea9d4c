//! Export and import end to end: a real session on the built-in model, its outputs exported
//! as import JSONL and imported back, measure for measure; and the commands' exit codes.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use reprise::analysis::{Analyzer, PairEstimate, Snapshot};
use reprise::import::{import, ImportFormat, ImportOptions};
use reprise::protocol::Protocol;
use reprise::providers::local::LocalBackend;
use reprise::runner::RunControl;
use reprise::session::{
    analyse_archive, analysis_config_from_conditions, run_session, SessionSpec,
};

fn native_session(out: &Path) {
    let mut protocol = Protocol::load(Path::new("sample-protocols/battery.toml")).unwrap();
    protocol.campaign.repeats = 30;
    protocol.campaign.warmup = 1;
    let spec = SessionSpec {
        protocol,
        backends: vec![Arc::new(LocalBackend::new())],
        out: Some(out.to_path_buf()),
        dir: None,
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(run_session(spec, RunControl::default(), |_, _| {}))
        .unwrap();
}

/// The native archive re-analysed without its backend tokens: word tokens, as an import has.
fn native_with_word_tokens(path: &Path) -> Snapshot {
    let archive = reprise::archive::read(path).unwrap();
    let mut analyzer = Analyzer::new(analysis_config_from_conditions(&archive.header.conditions));
    for record in &archive.calls {
        let mut r = record.clone();
        r.tokens = None;
        r.logprobs = None;
        analyzer.fold(&r);
    }
    analyzer.snapshot()
}

#[test]
fn imported_outputs_measure_as_the_native_run() {
    let dir = tempfile::tempdir().unwrap();
    let native_path = dir.path().join("native.jsonl");
    native_session(&native_path);
    let (native_archive, native) = analyse_archive(&native_path).unwrap();

    // Export the measured outputs in the import shape, in archive order.
    let jsonl = dir.path().join("outputs.jsonl");
    let mut file = std::fs::File::create(&jsonl).unwrap();
    for r in native_archive.calls.iter().filter(|r| !r.warmup) {
        let line = serde_json::json!({
            "item": r.item, "output": r.output, "target": r.target,
            "latency_ms": r.timing.latency_ms,
        });
        writeln!(file, "{line}").unwrap();
    }
    drop(file);
    let imported_path = dir.path().join("imported.jsonl");
    let options = ImportOptions {
        format: ImportFormat::Jsonl,
        out: Some(imported_path.clone()),
        dir: None,
        name: None,
    };
    let imported = import(&jsonl, &options).unwrap();
    assert_eq!(imported.records, 150);
    reprise::archive::verify(&imported_path).unwrap();
    let verify = Command::new(env!("CARGO_BIN_EXE_reprise"))
        .arg("verify")
        .arg(&imported_path)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");

    let (_, from_import) = analyse_archive(&imported_path).unwrap();
    let words = native_with_word_tokens(&native_path);
    assert_eq!(from_import.targets.len(), 1);
    let mut diverged = 0;
    for (t, target) in native.targets.iter().enumerate() {
        let got = &from_import.targets[t];
        assert_eq!(got.target, target.target);
        assert_eq!(got.items.len(), target.items.len());
        for (i, want) in target.items.iter().enumerate() {
            // Items in the import come in order of first appearance: matched by name.
            let have = got.items.iter().find(|h| h.item == want.item).unwrap();
            let at = format!("{}/{}", target.target, want.item);
            assert_eq!((have.calls, have.ok), (want.calls, want.ok), "{at}");
            assert_eq!(have.distinct_outputs, want.distinct_outputs, "{at}");
            assert_eq!(have.modal_share, want.modal_share, "{at}");
            assert_eq!(have.modal_share_ci, want.modal_share_ci, "{at}");
            assert_eq!(have.pairwise_agreement, want.pairwise_agreement, "{at}");
            assert_eq!(have.entropy_bits, want.entropy_bits, "{at}");
            assert_eq!(have.tar_raw, want.tar_raw, "{at}");
            let counts = |s: &reprise::analysis::ItemSnapshot| -> Vec<(String, u64)> {
                s.clusters
                    .iter()
                    .map(|c| (c.text.to_string(), c.count))
                    .collect()
            };
            assert_eq!(counts(have), counts(want), "{at}: clusters");
            // Token measures agree under the same tokenizer.
            let same = &words.targets[t].items[i];
            assert_eq!(have.tokenizer, same.tokenizer, "{at}");
            assert_eq!(have.first_divergence, same.first_divergence, "{at}");
            // Means over pairs: the same up to the order of summation, which follows the
            // order records arrived in (concurrent in the run, file order in the import).
            let close = |a: Option<PairEstimate>, b: Option<PairEstimate>| match (a, b) {
                (Some(a), Some(b)) => {
                    (a.value - b.value).abs() <= 1e-12 && (a.exact, a.pairs) == (b.exact, b.pairs)
                }
                (a, b) => a == b,
            };
            assert!(close(have.ned_mean, same.ned_mean), "{at}");
            assert!(
                close(have.token_similarity_mean, same.token_similarity_mean),
                "{at}"
            );
            diverged += usize::from(want.distinct_outputs > 1);
        }
        // Means over items: the same up to the order of summation, as above.
        let near = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-12,
            (a, b) => a == b,
        };
        assert!(near(got.battery.tar_raw, target.battery.tar_raw));
        assert!(near(
            got.battery.mean_modal_share,
            target.battery.mean_modal_share
        ));
    }
    assert!(diverged > 0, "the comparison must cover items that vary");
}

fn reprise(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reprise"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn commands_exit_2_on_bad_input_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"item\":\"q\",\"output\":\"A\"}\n{\"item\":\"q\",\"output\":[1]}\n",
    )
    .unwrap();
    let out = dir.path().join("a.jsonl");
    let run = reprise(&[
        "import",
        bad.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("bad.jsonl:2: field `output`"), "{stderr}");
    assert!(!out.exists());

    let export = reprise(&["export", bad.to_str().unwrap(), "--format", "md"]);
    assert_eq!(export.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&export.stderr).lines().count(), 1);
    let md = dir.path().join("r.md");
    let export = reprise(&[
        "export",
        bad.to_str().unwrap(),
        "--format",
        "csv",
        "--out",
        md.to_str().unwrap(),
    ]);
    assert_eq!(export.status.code(), Some(2));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only the input remains"
    );
}

#[test]
fn export_to_a_file_and_of_an_unfinished_archive() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"item\":\"q\",\"output\":\"A\"}\n{\"item\":\"q\",\"output\":\"B\"}\n",
    )
    .unwrap();
    let archive = dir.path().join("a.jsonl");
    let run = reprise(&[
        "import",
        input.to_str().unwrap(),
        "--out",
        archive.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{run:?}");
    assert!(String::from_utf8_lossy(&run.stdout).contains("imported 2 outputs"));

    // Cut the closing record: the session reads as unfinished and still exports.
    let text = std::fs::read_to_string(&archive).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(
        &archive,
        format!("{}\n", lines[..lines.len() - 1].join("\n")),
    )
    .unwrap();
    let csv = dir.path().join("calls.csv");
    let run = reprise(&[
        "export",
        archive.to_str().unwrap(),
        "--format",
        "csv",
        "--out",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    assert!(String::from_utf8_lossy(&run.stderr).contains("unfinished"));
    let mut reader = csv::Reader::from_path(&csv).unwrap();
    assert_eq!(reader.records().count(), 2);
    // Never over an existing file.
    let again = reprise(&[
        "export",
        archive.to_str().unwrap(),
        "--format",
        "json",
        "--out",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(csv::Reader::from_path(&csv).unwrap().records().count(), 2);
}
