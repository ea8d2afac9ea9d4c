//! Writer → reader round trips, crash tolerance and bad-input messages.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;

use super::*;
use crate::record::{CallRecord, ErrorClass, Usage};

pub(super) fn header() -> Header {
    let conditions = json!({
        "protocol": {"name": "capitals"},
        "targets": [{"name": "local", "params": {"temperature": 0.7, "seed": 7}}],
        "repeats": 3,
    });
    Header::new(
        conditions,
        Some("capitals.toml".to_string()),
        UNIX_EPOCH + Duration::from_secs(1_714_566_896),
    )
}

/// Records that exercise every optional field and awkward text.
pub(super) fn records() -> Vec<CallRecord> {
    let mut a = CallRecord::ok(
        "local",
        "q1",
        0,
        "Paris.\nLine two \"quoted\" \\n\t\u{1}\u{7f}",
        12.5,
    );
    a.warmup = true;
    a.tokens = Some(vec!["Paris".into(), ".\n".into(), "é🙂\u{0}".into()]);
    a.logprobs = Some(vec![-0.125, -3.4e-7, 0.0, -1e30]);
    a.finish_reason = Some("stop".into());
    a.usage = Some(Usage {
        prompt_tokens: 12,
        completion_tokens: 3,
        reasoning_tokens: None,
    });
    a.timing.ttft_ms = Some(1.0e-3);
    a.served.insert("model".into(), "m\u{2028}x \\u0041".into());
    let b = CallRecord::ok(
        "local",
        "q1",
        1,
        "\\ud800 not an escape; \u{fffd} 日本",
        1e5,
    );
    let c = CallRecord::failed("local", "q2", 0, ErrorClass::RateLimit, "429 slow down");
    let d = CallRecord::failed("local", "q2", 1, ErrorClass::Cancelled, "cancelled");
    vec![a, b, c, d]
}

pub(super) fn write_archive(path: &Path, records: &[CallRecord], closed: bool) {
    let mut writer = ArchiveWriter::create(path, &header()).unwrap();
    for r in records {
        writer.append(r).unwrap();
    }
    assert_eq!(writer.records_written(), records.len() as u64);
    if closed {
        let close = writer.close_record(SessionOutcome::Completed, 4, Some(json!({"agree": 0.5})));
        writer.close(&close).unwrap();
    }
}

pub(super) fn temp_archive(records: &[CallRecord], closed: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.jsonl");
    write_archive(&path, records, closed);
    (dir, path)
}

#[test]
fn records_round_trip_exactly() {
    let (_dir, path) = temp_archive(&records(), true);
    let archive = read(&path).unwrap();
    assert_eq!(archive.header, header());
    assert_eq!(archive.calls, records());
    let close = archive.close.unwrap();
    assert_eq!(
        (close.records, close.ok, close.errors, close.cancelled),
        (4, 2, 1, 1)
    );
    assert_eq!(close.summary, Some(json!({"agree": 0.5})));
    assert!(!archive.truncated_tail);
}

#[test]
fn lines_are_compact_json_with_envelope_first() {
    let (_dir, path) = temp_archive(&records(), true);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(lines[0].starts_with(r#"{"kind":"header","seq":0,"format_version":1,"#));
    assert!(lines[1].starts_with(r#"{"kind":"call","seq":1,"prev":"sha256:"#));
    assert!(lines[5].starts_with(r#"{"kind":"close","seq":5,"prev":"sha256:"#));
    for (i, line) in lines.iter().enumerate() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let hash = value["hash"].as_str().unwrap();
        if i > 0 {
            let prev: serde_json::Value = serde_json::from_str(lines[i - 1]).unwrap();
            assert_eq!(value["prev"], prev["hash"]);
        }
        assert!(hash.starts_with("sha256:") && hash.len() == 71);
    }
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["tool"]["name"], "reprise");
    assert_eq!(first["platform"]["os"], std::env::consts::OS);
    assert_eq!(first["started_at"], "2024-05-01T12:34:56.000Z");
    assert_eq!(
        first["identity"],
        identity_of(&header().conditions).as_str()
    );
}

#[test]
fn an_archive_cut_at_any_byte_reads_up_to_its_last_complete_record() {
    let (dir, path) = temp_archive(&records(), true);
    let bytes = std::fs::read(&path).unwrap();
    let ends: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .map(|(i, _)| i + 1)
        .collect();
    let cut = dir.path().join("cut.jsonl");
    for len in 0..=bytes.len() {
        // Through the file system for a sample of cuts; in memory for the rest (same code).
        let result = if len % 97 == 0 || ends.contains(&len) {
            std::fs::write(&cut, &bytes[..len]).unwrap();
            read(&cut)
        } else {
            reader::read_bytes(&bytes[..len], &cut)
        };
        let complete = ends.iter().filter(|&&end| end <= len).count();
        if complete == 0 {
            let e = result.unwrap_err();
            assert_eq!(e.file, cut);
            let expected = if len == 0 {
                "empty file"
            } else {
                "header line is incomplete"
            };
            assert!(e.message.contains(expected), "cut at {len}: {e}");
            continue;
        }
        let archive = result.unwrap_or_else(|e| panic!("cut at {len}: {e}"));
        let calls = (complete - 1).min(4);
        assert_eq!(archive.calls, records()[..calls], "cut at {len}");
        assert_eq!(archive.close.is_some(), complete == 6, "cut at {len}");
        assert_eq!(
            archive.truncated_tail,
            !ends.contains(&len) && len > 0,
            "cut at {len}"
        );
    }
}

#[test]
fn writer_never_overwrites_and_creates_parent_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/s.jsonl");
    write_archive(&path, &records(), false);
    let before = std::fs::read(&path).unwrap();
    let e = ArchiveWriter::create(&path, &header()).err().unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // An unfinished archive (no close) reads fine.
    let archive = read(&path).unwrap();
    assert_eq!(archive.calls.len(), 4);
    assert!(archive.close.is_none());
}

#[test]
fn create_in_picks_the_session_name_and_avoids_collisions() {
    let dir = tempfile::tempdir().unwrap();
    let started = UNIX_EPOCH + Duration::from_secs(1_714_566_896);
    let h = header();
    let first = ArchiveWriter::create_in(dir.path(), &h, started, "Capitals").unwrap();
    let second = ArchiveWriter::create_in(dir.path(), &h, started, "Capitals").unwrap();
    let name = session_file_name(started, "Capitals", &h.identity);
    assert_eq!(first.path(), dir.path().join(&name));
    let stem = name.strip_suffix(".jsonl").unwrap();
    assert_eq!(second.path(), dir.path().join(format!("{stem}-2.jsonl")));
}

#[test]
fn close_with_wrong_counts_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.jsonl");
    let mut writer = ArchiveWriter::create(&path, &header()).unwrap();
    writer.append(&records()[0]).unwrap();
    let mut close = writer.close_record(SessionOutcome::Completed, 1, None);
    close.ok += 1;
    let e = writer.close(&close).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(read(&path).unwrap().close.is_none());
}

#[test]
fn resuming_goes_on_from_the_last_call_and_refuses_a_time_no_session_reaches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.jsonl");
    write_archive(&path, &records(), false);
    // The second record ends last: 0 + 1e5 ms.
    assert_eq!(reopen(&path).unwrap().ended, Duration::from_secs(100));
    let crafted = dir.path().join("crafted.jsonl");
    let mut late = records();
    late[2].timing.latency_ms = 1e300;
    write_archive(&crafted, &late, false);
    let e = reopen(&crafted).err().unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:4: field `timing.latency_ms`: 1e300 ms is beyond any session's length; the \
             session cannot be resumed",
            crafted.display()
        )
    );
}

#[test]
fn non_finite_numbers_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.jsonl");
    let mut writer = ArchiveWriter::create(&path, &header()).unwrap();
    let mut r = records()[0].clone();
    r.logprobs = Some(vec![-0.5, f32::NEG_INFINITY]);
    let e = writer.append(&r).unwrap_err();
    assert!(e.to_string().contains("logprobs[1]"), "{e}");
    r.logprobs = None;
    r.timing.latency_ms = f64::NAN;
    assert!(writer.append(&r).is_err());
    assert_eq!(writer.records_written(), 0);
    // The refused records left nothing behind; the writer goes on.
    writer.append(&records()[1]).unwrap();
    assert_eq!(read(&path).unwrap().calls, vec![records()[1].clone()]);
}

/// Replaces line `n` (1-based) of the archive by `line`.
fn with_line(path: &Path, n: usize, line: &str) -> PathBuf {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[n - 1] = line;
    let out = path.with_file_name("edited.jsonl");
    std::fs::write(&out, lines.join("\n") + "\n").unwrap();
    out
}

#[test]
fn bad_records_name_file_line_and_field() {
    let (_dir, path) = temp_archive(&records(), true);
    let text = std::fs::read_to_string(&path).unwrap();
    let line3 = text.lines().nth(2).unwrap();

    let edited = with_line(
        &path,
        3,
        &line3.replace(r#""status":"ok""#, r#""status":"okk""#),
    );
    let e = read(&edited).unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (Some(3), Some("status")));
    assert!(
        e.to_string().ends_with(
            "edited.jsonl:3: field `status`: unknown variant `okk`, expected one of `ok`, \
             `error`, `cancelled`"
        ),
        "{e}"
    );

    let edited = with_line(
        &path,
        3,
        &line3.replace(r#""latency_ms":"#, r#""latency_ms":"x","y":"#),
    );
    let e = read(&edited).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("timing.latency_ms"), "{e}");

    let edited = with_line(&path, 3, "{not json");
    let e = read(&edited).unwrap_err();
    assert_eq!(e.line, Some(3));
    assert!(e.message.starts_with("not valid JSON"), "{e}");

    let edited = with_line(&path, 3, text.lines().next().unwrap());
    let e = read(&edited).unwrap_err();
    assert!(e.message.contains("second header"), "{e}");

    let edited = with_line(&path, 1, text.lines().nth(1).unwrap());
    let e = read(&edited).unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (Some(1), Some("kind")), "{e}");
    assert!(e.message.contains("expected the header record"), "{e}");
}

#[test]
fn another_format_version_is_a_clear_error() {
    let (_dir, path) = temp_archive(&records(), true);
    let text = std::fs::read_to_string(&path).unwrap();
    let line1 = text.lines().next().unwrap();
    let edited = with_line(
        &path,
        1,
        &line1.replace(r#""format_version":1"#, r#""format_version":2"#),
    );
    let e = read(&edited).unwrap_err();
    assert_eq!(
        (e.line, e.field.as_deref()),
        (Some(1), Some("format_version"))
    );
    assert!(
        e.message.starts_with("format version 2 is not supported"),
        "{e}"
    );
}

#[test]
fn default_dir_honours_the_data_dir_variable() {
    let old = std::env::var_os(DATA_DIR_ENV);
    std::env::set_var(DATA_DIR_ENV, "/tmp/reprise-test-data");
    let dir = default_dir();
    match old {
        Some(old) => std::env::set_var(DATA_DIR_ENV, old),
        None => std::env::remove_var(DATA_DIR_ENV),
    }
    assert_eq!(dir, Some(PathBuf::from("/tmp/reprise-test-data/sessions")));
}

#[test]
fn lines_rewritten_in_another_layout_still_read() {
    let (_dir, path) = temp_archive(&records(), true);
    let text = std::fs::read_to_string(&path).unwrap();
    // As `jq -c -S` would write them: keys sorted, so the envelope is no longer first.
    let sorted: String = text
        .lines()
        .map(|l| {
            let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(l).unwrap();
            assert_ne!(map.keys().next().map(String::as_str), Some("kind"));
            serde_json::to_string(&map).unwrap() + "\n"
        })
        .collect();
    let out = path.with_file_name("sorted.jsonl");
    std::fs::write(&out, sorted).unwrap();
    let (a, b) = (read(&path).unwrap(), read(&out).unwrap());
    assert_eq!((a.header, a.calls, a.close), (b.header, b.calls, b.close));
    // Different bytes, so verify rejects it.
    assert!(verify(&out).is_err());
}

#[test]
fn malformed_members_are_syntax_errors_at_the_right_column() {
    let (_dir, path) = temp_archive(&records(), true);
    let text = std::fs::read_to_string(&path).unwrap();
    let line3 = text.lines().nth(2).unwrap();

    let broken = line3.replace(r#""status":"ok""#, r#""status":ok"#);
    let column = broken.find(":ok").unwrap() + 2;
    let e = read(&with_line(&path, 3, &broken)).unwrap_err();
    assert_eq!(e.line, Some(3));
    assert!(
        e.message
            .starts_with(&format!("not valid JSON (column {column}): expected value")),
        "{e}"
    );

    // Members that close the object early must not pass as one record.
    let early = line3.replacen(r#","status":"#, r#"},{"status":"#, 1);
    let e = read(&with_line(&path, 3, &early)).unwrap_err();
    assert!(e.message.starts_with("not valid JSON"), "{e}");

    let extra = line3.replace(r#""status":"ok""#, r#""status":"ok","colour":"red""#);
    let e = read(&with_line(&path, 3, &extra)).unwrap_err();
    assert!(e.message.starts_with("unknown field `colour`"), "{e}");
}

#[test]
fn crlf_line_ends_read_but_do_not_verify() {
    let (_dir, path) = temp_archive(&records(), true);
    let text = std::fs::read_to_string(&path).unwrap();
    let out = path.with_file_name("crlf.jsonl");
    std::fs::write(&out, text.replace('\n', "\r\n")).unwrap();
    assert_eq!(read(&out).unwrap().calls, records());
    let e = verify(&out).unwrap_err();
    assert_eq!(e.record(), Some(0), "{e}");
}

#[test]
fn random_text_and_logprobs_round_trip_exactly() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    // Edge characters: controls, JSON syntax, escapes-as-text, surrogate neighbours, the top.
    let specials = [
        '\0',
        '\u{1}',
        '\u{1f}',
        '\u{7f}',
        '"',
        '\\',
        '/',
        '\n',
        '\r',
        '\t',
        '\u{2028}',
        '\u{d7ff}',
        '\u{e000}',
        '\u{fffd}',
        '\u{ffff}',
        '\u{10ffff}',
        'u',
        '{',
        '}',
    ];
    let records: Vec<CallRecord> = (0..200)
        .map(|i| {
            let text: String = (0..rng.random_range(0..60))
                .map(|_| match rng.random_range(0..3) {
                    0 => specials[rng.random_range(0..specials.len())],
                    1 => char::from(rng.random_range(0x20u8..0x7f)),
                    _ => rng.random::<char>(),
                })
                .collect();
            let mut r = CallRecord::ok("t", &text, i, &text, rng.random::<f64>() * 1e4);
            r.tokens = Some(vec![text.clone(), String::new()]);
            r.logprobs = Some(
                (0..8)
                    .map(|_| f32::from_bits(rng.random::<u32>()))
                    .filter(|p| p.is_finite())
                    .collect(),
            );
            r
        })
        .collect();
    let (_dir, path) = temp_archive(&records, false);
    let back = read(&path).unwrap().calls;
    assert_eq!(back.len(), records.len());
    for (a, b) in records.iter().zip(&back) {
        assert_eq!(a, b);
        // Bit-exact, not just equal (`-0.0 == 0.0`).
        let bits = |r: &CallRecord| {
            r.logprobs
                .iter()
                .flatten()
                .map(|p| p.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(a), bits(b));
    }
}

#[test]
fn a_large_archive_reads_the_same_on_several_threads_and_reports_the_first_problem() {
    let big: Vec<CallRecord> = (0..800)
        .map(|i| CallRecord::ok("t", "q", i, &format!("{i} {}", "word ".repeat(1200)), 1.0))
        .collect();
    let (_dir, path) = temp_archive(&big, true);
    assert!(std::fs::metadata(&path).unwrap().len() > reader::PARALLEL_BYTES as u64);
    let archive = read(&path).unwrap();
    assert_eq!(archive.calls, big);
    assert!(archive.close.is_some());

    // A bad record late in the file and, earlier, a close in the middle: a sequential read
    // meets the record after that close first, so that is what must be reported.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[790] = lines[790].replace(r#""status":"ok""#, r#""status":"bad""#);
    lines[100] = lines.last().unwrap().clone();
    let out = path.with_file_name("edited.jsonl");
    std::fs::write(&out, lines.join("\n") + "\n").unwrap();
    let e = read(&out).unwrap_err();
    assert_eq!(e.line, Some(102), "{e}");
    assert!(e.message.contains("follows the closing record"), "{e}");
    // Without that, the late bad record is found.
    lines[100] = text.lines().nth(100).unwrap().to_string();
    std::fs::write(&out, lines.join("\n") + "\n").unwrap();
    let e = read(&out).unwrap_err();
    assert_eq!(
        (e.line, e.field.as_deref()),
        (Some(791), Some("status")),
        "{e}"
    );
}
