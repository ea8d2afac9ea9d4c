use std::path::Path;

use super::*;
use crate::archive::{ArchiveWriter, Header, SessionOutcome};
use crate::record::{CallRecord, ErrorClass};

/// An archive at `path` with a hostile text, a retry, a warm-up call and an error.
fn write_archive(path: &Path, close: bool) -> Vec<CallRecord> {
    let conditions = serde_json::json!({
        "protocol": {"name": "p\x1b[2J", "description": "d"},
        "campaign": {"repeats": 3, "warmup": 1, "concurrency": 1},
        "answer": null,
        "items": [{"name": "q", "user": "Say hi\x07"}],
        "targets": [{"name": "local", "provider": "local", "model": null, "endpoint": "in-process",
                     "requests": [{"item": "q", "body": {"temperature": 0.5, "messages": []}}]}],
    });
    let header = Header::new(conditions, None, std::time::SystemTime::now());
    let mut w = ArchiveWriter::create(path, &header).unwrap();
    let mut warm = CallRecord::ok("local", "q", 0, "warm", 1.0);
    warm.warmup = true;
    let mut retried = CallRecord::failed("local", "q", 1, ErrorClass::RateLimit, "429, slow down");
    retried.retried = true;
    let mut hostile = CallRecord::ok("local", "q", 1, "a, \"quoted\"\nline two\x1b[31m", 2.5);
    hostile.attempt = 2;
    hostile.served.insert("model".into(), "m".into());
    let formula = CallRecord::ok("local", "q", 2, "=HYPERLINK(\"x\")", 1.0);
    let plain = CallRecord::ok("local", "q", 3, "=HYPERLINK(\"x\")", 1.0);
    let records = vec![warm, retried, hostile, formula, plain];
    for r in &records {
        w.append(r).unwrap();
    }
    if close {
        let c = w.close_record(SessionOutcome::Completed, 4, None);
        w.close(&c).unwrap();
    }
    records
}

#[test]
fn csv_has_one_row_per_attempt_and_survives_a_csv_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.jsonl");
    let records = write_archive(&path, true);
    let mut out = Vec::new();
    let notes = export(&path, ExportFormat::Csv, &mut out).unwrap();
    assert!(!notes.unfinished);
    let mut reader = csv::Reader::from_reader(out.as_slice());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        CSV_COLUMNS
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), records.len(), "warm-up and retries included");
    let col = |name: &str| CSV_COLUMNS.iter().position(|c| *c == name).unwrap();
    assert_eq!(&rows[0][col("warmup")], "true");
    assert_eq!(&rows[1][col("retried")], "true");
    assert_eq!(&rows[1][col("error_class")], "rate_limit");
    assert_eq!(&rows[1][col("error_message")], "429, slow down");
    // Commas, quotes, newlines and even escape bytes come back exactly.
    assert_eq!(&rows[2][col("output")], "a, \"quoted\"\nline two\x1b[31m");
    assert_eq!(&rows[2][col("attempt")], "2");
    assert_eq!(&rows[2][col("served")], r#"{"model":"m"}"#);
    assert_eq!(&rows[2][col("seq")], "3");
    // A formula is made text for spreadsheets.
    assert_eq!(&rows[3][col("output")], "'=HYPERLINK(\"x\")");
}

#[test]
fn formula_guard_only_touches_formula_starts() {
    for (cell, want) in [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("Paris", "Paris"),
        ("", ""),
        ("a=b", "a=b"),
    ] {
        assert_eq!(guard_formula(cell), want, "{cell:?}");
    }
}

#[test]
fn markdown_report_is_inert_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.jsonl");
    write_archive(&path, false);
    let mut out = Vec::new();
    let notes = export(&path, ExportFormat::Md, &mut out).unwrap();
    assert!(notes.unfinished, "no closing record");
    let md = String::from_utf8(out).unwrap();
    assert!(
        !md.chars().any(|c| c.is_control() && c != '\n'),
        "control characters reached the report"
    );
    for section in [
        "## Conditions",
        "## Served identity",
        "## Measures",
        "## Clusters",
        "## Earliest split",
    ] {
        assert!(md.contains(section), "missing {section}");
    }
    assert!(md.contains("**unfinished**"));
    assert!(md.contains("`temperature` = `0.5`"), "parameters sent");
    // Three measured outputs, two distinct: the modal one twice.
    assert!(md.contains("**×2** (66.7%)"), "{md}");
    // The text's own newline is kept inside its fenced block.
    assert!(md.contains("a, \"quoted\"\nline two␛[31m"));
}

#[test]
fn json_is_the_run_summary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.jsonl");
    write_archive(&path, true);
    let mut out = Vec::new();
    export(&path, ExportFormat::Json, &mut out).unwrap();
    let got: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let (archive, snapshot) = analyse_archive(&path).unwrap();
    assert_eq!(
        got,
        report::summary_json(&snapshot, &path, &archive.header.identity)
    );
    assert_eq!(got["targets"][0]["items"][0]["distinct_outputs"], 2);
}

#[test]
fn a_bad_archive_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, "not json\n").unwrap();
    let err = export(&path, ExportFormat::Csv, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, ExportError::Input(_)), "{err}");
    assert!(err.to_string().contains("bad.jsonl"), "{err}");
}

#[test]
fn markdown_code_spans_and_fences_cannot_be_closed_by_the_text() {
    assert_eq!(markdown::code("a`b"), "``a`b``");
    let block = markdown::fenced("```\nrm -rf /\n```", 100);
    assert!(block.starts_with("````text\n"), "{block}");
    assert!(block.ends_with("\n````"));
    let cut = markdown::fenced(&"x".repeat(50), 10);
    assert!(cut.contains("[… 40 more characters]"), "{cut}");
}

#[test]
fn csv_shows_reasoning_tokens_beside_the_completion_tokens() {
    let mut thinking = CallRecord::ok("local", "q", 0, "4", 1.0);
    thinking.usage = Some(crate::record::Usage {
        prompt_tokens: 12,
        completion_tokens: 1,
        reasoning_tokens: Some(290),
    });
    let mut plain = CallRecord::ok("local", "q", 1, "4", 1.0);
    plain.usage = Some(crate::record::Usage {
        reasoning_tokens: None,
        ..thinking.usage.unwrap()
    });
    let row = |r: &CallRecord| csv_row(1, r);
    let col = |name: &str| CSV_COLUMNS.iter().position(|c| *c == name).unwrap();
    assert_eq!(col("reasoning_tokens"), col("completion_tokens") + 1);
    assert_eq!(row(&thinking)[col("completion_tokens")], "1");
    assert_eq!(row(&thinking)[col("reasoning_tokens")], "290");
    assert_eq!(
        row(&plain)[col("reasoning_tokens")],
        "",
        "not counted apart"
    );
}

/// The report of a one-call session whose server said `start` about itself as the session
/// began and `end` as it ended.
fn report_with_servers(start: &[(&str, &str)], end: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.jsonl");
    let fields = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let conditions = serde_json::json!({"protocol": {"name": "p"}, "items": [], "targets": []});
    let mut header = Header::new(conditions, None, std::time::SystemTime::now());
    header.servers.insert("local".into(), fields(start));
    let mut w = ArchiveWriter::create(&path, &header).unwrap();
    w.append(&CallRecord::ok("local", "q", 0, "Paris.", 1.0))
        .unwrap();
    let mut c = w.close_record(SessionOutcome::Completed, 1, None);
    c.servers.insert("local".into(), fields(end));
    w.close(&c).unwrap();
    let mut out = Vec::new();
    export(&path, ExportFormat::Md, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn markdown_does_not_call_a_server_changed_for_the_time_of_the_request() {
    // llama.cpp's /v1/models answers `created` = now: the same server, asked twice.
    let md = report_with_servers(
        &[("build_info", "b5890-0d922267"), ("created", "1752000000")],
        &[("build_info", "b5890-0d922267"), ("created", "1752000090")],
    );
    assert!(
        md.contains("- server at start: build\\_info `b5890-0d922267` · created `1752000000`"),
        "{md}"
    );
    assert!(!md.contains("server at end differs"), "{md}");

    let md = report_with_servers(
        &[("build_info", "b5890-0d922267"), ("created", "1752000000")],
        &[("build_info", "b6000-1a2b3c4d"), ("created", "1752000090")],
    );
    assert!(
        md.contains(
            "- ⚠ server at end differs: build\\_info `b6000-1a2b3c4d` · created `1752000090`"
        ),
        "{md}"
    );
}
