//! `verify`: is this archive exactly as reprise wrote it, complete and unreordered?

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use super::identity::{identity_of, short_identity};
use super::line::{self, Kind, SealError};
use super::reader::{complete_lines, header_of};
use super::{Close, SessionOutcome};
use crate::record::{CallRecord, CallStatus};

/// A verified archive, for a one-line "OK …" message.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyReport {
    pub path: PathBuf,
    pub identity: String,
    pub started_at: String,
    /// The closing record, whose counts were checked against the call records.
    pub close: Close,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OK {}: {} records ({} ok, {} errors, {} cancelled), {}, identity {}, chain intact",
            self.path.display(),
            self.close.records,
            self.close.ok,
            self.close.errors,
            self.close.cancelled,
            self.close.outcome.as_str(),
            short_identity(&self.identity),
        )
    }
}

/// The first thing wrong with an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The file could not be read at all.
    Unreadable { path: PathBuf, message: String },
    /// Record `record` (0 = header), on 1-based line `line`, is not as written.
    Record {
        path: PathBuf,
        record: u64,
        line: usize,
        problem: String,
    },
    /// Every record holds, but the closing record is missing.
    Unfinished { path: PathBuf, last_record: u64 },
}

impl VerifyError {
    /// The record at fault (0 = header; for an unfinished archive, the last record present).
    pub fn record(&self) -> Option<u64> {
        match self {
            VerifyError::Unreadable { .. } => None,
            VerifyError::Record { record, .. } => Some(*record),
            VerifyError::Unfinished { last_record, .. } => Some(*last_record),
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Unreadable { path, message } => {
                write!(f, "{}: cannot read the archive: {message}", path.display())
            }
            VerifyError::Record {
                path,
                record,
                line,
                problem,
            } => write!(
                f,
                "{}: record {record} (line {line}): {problem}",
                path.display()
            ),
            VerifyError::Unfinished { path, last_record } => write!(
                f,
                "{}: no closing record after record {last_record} — the session is unfinished or \
                 was cut",
                path.display()
            ),
        }
    }
}

impl std::error::Error for VerifyError {}

/// Checks every record's hash, the chain (`seq`, `prev`), the header identity, and that the
/// closing record exists, its counts match the call records, and a session it calls
/// completed has an outcome for every planned call.
pub fn verify(path: &Path) -> Result<VerifyReport, VerifyError> {
    let bytes = std::fs::read(path).map_err(|e| VerifyError::Unreadable {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    verify_bytes(&bytes, path)
}

/// [`verify`] on the contents of `path`.
pub(crate) fn verify_bytes(bytes: &[u8], path: &Path) -> Result<VerifyReport, VerifyError> {
    let bad = |index: usize, problem: String| VerifyError::Record {
        path: path.to_path_buf(),
        record: index as u64,
        line: index + 1,
        problem,
    };
    let (lines, truncated_tail) = complete_lines(bytes);

    let mut header = None;
    let mut close: Option<Close> = None;
    let mut prev = String::new();
    let mut count = 0usize;
    let (mut ok, mut errors, mut cancelled) = (0u64, 0u64, 0u64);
    // (target, item, call) of the planned calls with an outcome.
    let mut settled: HashSet<(String, String, u32)> = HashSet::new();
    for (index, bytes) in lines.enumerate() {
        count = index + 1;
        let line_no = index + 1;
        let hash = line::unseal(bytes).map_err(|e| match e {
            SealError::Missing => bad(
                index,
                "no `hash` at the end of the line — the record was changed or is not from reprise"
                    .to_string(),
            ),
            SealError::Mismatch => bad(index, "hash mismatch — the record was changed".to_string()),
        })?;
        let record =
            line::parse(bytes, path, line_no).map_err(|e| bad(index, field_message(&e)))?;
        if close.is_some() {
            return Err(bad(
                index,
                "a record follows the closing record — records were added after the session closed"
                    .to_string(),
            ));
        }
        if record.seq != index as u64 {
            return Err(bad(
                index,
                format!(
                    "expected seq {index}, found {} — a record was deleted or reordered",
                    record.seq
                ),
            ));
        }
        match (index, &record.prev) {
            (0, None) => {}
            (0, Some(_)) => {
                return Err(bad(
                    0,
                    "the header carries `prev` — records were added before it".to_string(),
                ))
            }
            (_, Some(p)) if *p == prev => {}
            (_, _) => {
                return Err(bad(
                    index,
                    format!(
                        "`prev` does not match the hash of record {} — a record was deleted, \
                         reordered or replaced",
                        index - 1
                    ),
                ))
            }
        }
        match (index, record.kind) {
            (0, Kind::Header) => {
                let h = header_of(bytes, path, line_no).map_err(|e| bad(0, field_message(&e)))?;
                if identity_of(&h.conditions) != h.identity {
                    return Err(bad(
                        0,
                        "the identity does not match the conditions — the header was changed"
                            .to_string(),
                    ));
                }
                header = Some(h);
            }
            (0, kind) => {
                return Err(bad(
                    0,
                    format!(
                        "expected the header, found a `{}` record — the header was deleted",
                        kind.as_str()
                    ),
                ))
            }
            (_, Kind::Header) => {
                return Err(bad(index, "a second header record".to_string()));
            }
            (_, Kind::Call) => {
                let call: CallRecord = line::decode(record.body, path, line_no)
                    .map_err(|e| bad(index, field_message(&e)))?;
                match call.status {
                    CallStatus::Ok => ok += 1,
                    CallStatus::Error => errors += 1,
                    CallStatus::Cancelled => cancelled += 1,
                }
                if call.status != CallStatus::Error || !call.retried {
                    settled.insert((call.target, call.item, call.call));
                }
            }
            (_, Kind::Close) => {
                let c: Close = line::decode(record.body, path, line_no)
                    .map_err(|e| bad(index, field_message(&e)))?;
                let calls = index as u64 - 1;
                if (c.records, c.ok, c.errors, c.cancelled) != (calls, ok, errors, cancelled) {
                    return Err(bad(
                        index,
                        format!(
                            "the closing record counts {} records ({} ok, {} errors, {} \
                             cancelled) but the archive holds {calls} ({ok} ok, {errors} errors, \
                             {cancelled} cancelled)",
                            c.records, c.ok, c.errors, c.cancelled
                        ),
                    ));
                }
                if let Some(problem) = plan_problem(&c, settled.len() as u64) {
                    return Err(bad(index, problem));
                }
                close = Some(c);
            }
        }
        prev = hash;
    }
    if truncated_tail {
        return Err(bad(
            count,
            "the last line is incomplete (no newline) — the file was cut while this record was \
             written"
                .to_string(),
        ));
    }
    let Some(header) = header else {
        return Err(bad(0, "empty file — not a session archive".to_string()));
    };
    let Some(close) = close else {
        return Err(VerifyError::Unfinished {
            path: path.to_path_buf(),
            last_record: count.saturating_sub(1) as u64,
        });
    };
    Ok(VerifyReport {
        path: path.to_path_buf(),
        identity: header.identity,
        started_at: header.started_at,
        close,
    })
}

/// What the closing record claims about the plan that the call records deny: a session
/// closed `completed` with a planned call that has no outcome, or a count of such calls
/// other than the archive's (`settled`: planned calls with an outcome).
fn plan_problem(close: &Close, settled: u64) -> Option<String> {
    let without = close.planned_calls.saturating_sub(settled);
    if close.outcome == SessionOutcome::Completed && without > 0 {
        return Some(format!(
            "the closing record says completed but {without} of {} planned calls have no \
             outcome — a call was lost",
            close.planned_calls
        ));
    }
    if close.without_outcome > 0 && close.without_outcome != without {
        return Some(format!(
            "the closing record counts {} planned calls without an outcome but the archive \
             has {without}",
            close.without_outcome
        ));
    }
    None
}

/// An input error's field and message, without the file and line (the caller names those).
fn field_message(e: &crate::error::InputError) -> String {
    match &e.field {
        Some(field) => format!("field `{field}`: {}", e.message),
        None => e.message.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::super::line::seal;
    use super::super::tests::{records, temp_archive};
    use super::*;

    fn archive_bytes() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let (dir, path) = temp_archive(&records(), true);
        let bytes = std::fs::read(&path).unwrap();
        (dir, path, bytes)
    }

    fn lines_of(bytes: &[u8]) -> Vec<Vec<u8>> {
        bytes
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// Rewrites the archive after `edit` changes the parsed lines, re-sealing and re-chaining
    /// every line, as a forger who knows the format would.
    fn forge(bytes: &[u8], edit: impl Fn(&mut Vec<Map<String, Value>>)) -> Vec<u8> {
        let mut lines: Vec<Map<String, Value>> = lines_of(bytes)
            .iter()
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        edit(&mut lines);
        let mut out = Vec::new();
        let mut prev: Option<String> = None;
        for mut body in lines {
            let kind = match body.remove("kind").unwrap().as_str().unwrap() {
                "header" => Kind::Header,
                "call" => Kind::Call,
                _ => Kind::Close,
            };
            let seq = body.remove("seq").unwrap().as_u64().unwrap();
            body.remove("prev");
            body.remove("hash");
            let mut line = Vec::new();
            prev = Some(seal(&mut line, kind, seq, prev.as_deref(), &body).unwrap());
            out.extend_from_slice(&line);
        }
        out
    }

    fn failure(bytes: &[u8]) -> VerifyError {
        verify_bytes(bytes, Path::new("s.jsonl")).unwrap_err()
    }

    #[test]
    fn a_fresh_archive_verifies() {
        let (_dir, path, _) = archive_bytes();
        let report = verify(&path).unwrap();
        assert_eq!(
            (
                report.close.records,
                report.close.ok,
                report.close.errors,
                report.close.cancelled
            ),
            (4, 2, 1, 1)
        );
        assert_eq!(
            report.close.outcome,
            crate::archive::SessionOutcome::Completed
        );
        let message = report.to_string();
        assert!(message.starts_with("OK "), "{message}");
        assert!(
            message.ends_with(&format!(
                "4 records (2 ok, 1 errors, 1 cancelled), completed, identity {}, chain intact",
                short_identity(&report.identity)
            )),
            "{message}"
        );
        // The forger re-seals what it parsed, so unchanged content verifies again.
        let (_, _, bytes) = archive_bytes();
        assert!(verify_bytes(&forge(&bytes, |_| {}), &path).is_ok());
    }

    #[test]
    fn any_single_byte_change_fails_at_the_record_holding_it() {
        let (_dir, _path, bytes) = archive_bytes();
        let mut line_of = Vec::new();
        for (index, line) in lines_of(&bytes).iter().enumerate() {
            line_of.extend(std::iter::repeat_n(index as u64, line.len()));
        }
        for offset in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[offset] ^= 0x01;
            let e = failure(&changed);
            assert_eq!(e.record(), Some(line_of[offset]), "byte {offset}: {e}");
        }
        let mut changed = bytes.clone();
        let at = bytes.windows(5).position(|w| w == b"Paris").unwrap();
        changed[at] = b'p';
        assert_eq!(
            failure(&changed).to_string(),
            "s.jsonl: record 1 (line 2): hash mismatch — the record was changed"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Any byte set to any other value, anywhere, is caught at the record holding it.
        #[test]
        fn any_byte_set_to_any_other_value_is_caught(at in 0usize..1_000_000, to in 0u8..=255) {
            let (_dir, _path, bytes) = archive_bytes();
            let at = at % bytes.len();
            proptest::prop_assume!(bytes[at] != to);
            let mut changed = bytes.clone();
            changed[at] = to;
            let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() as u64;
            let e = failure(&changed);
            // A changed newline joins two lines, or ends the archive early: the damage is
            // found at that line or the one before it.
            let record = e.record().unwrap();
            proptest::prop_assert!(record == line || (bytes[at] == b'\n' && record + 1 >= line), "{}", e);
        }

        /// Records dropped, duplicated or moved, in any number and order, never verify.
        #[test]
        fn any_other_sequence_of_records_is_caught(
            order in proptest::collection::vec(0usize..6, 0..12)
        ) {
            let (_dir, _path, bytes) = archive_bytes();
            let lines = lines_of(&bytes);
            let order: Vec<usize> = order.into_iter().map(|i| i % lines.len()).collect();
            proptest::prop_assume!(order != (0..lines.len()).collect::<Vec<_>>());
            let shuffled: Vec<u8> = order.iter().flat_map(|&i| lines[i].clone()).collect();
            proptest::prop_assert!(verify_bytes(&shuffled, Path::new("s.jsonl")).is_err());
        }
    }

    #[test]
    fn a_deleted_record_is_named() {
        let (_dir, _path, bytes) = archive_bytes();
        let lines = lines_of(&bytes);
        for deleted in 0..lines.len() {
            let mut kept = lines.clone();
            kept.remove(deleted);
            let e = failure(&kept.concat());
            let expected = if deleted == lines.len() - 1 {
                "s.jsonl: no closing record after record 4 — the session is unfinished or was cut"
                    .to_string()
            } else if deleted == 0 {
                "s.jsonl: record 0 (line 1): expected seq 0, found 1 — a record was deleted or \
                 reordered"
                    .to_string()
            } else {
                format!(
                    "s.jsonl: record {deleted} (line {}): expected seq {deleted}, found {} — a \
                     record was deleted or reordered",
                    deleted + 1,
                    deleted + 1
                )
            };
            assert_eq!(e.to_string(), expected);
        }
    }

    #[test]
    fn swapped_records_are_named() {
        let (_dir, _path, bytes) = archive_bytes();
        let lines = lines_of(&bytes);
        for first in 0..lines.len() - 1 {
            let mut swapped = lines.clone();
            swapped.swap(first, first + 1);
            let e = failure(&swapped.concat());
            assert_eq!(e.record(), Some(first as u64), "{e}");
            assert!(e.to_string().contains("deleted or reordered"), "{e}");
        }
    }

    #[test]
    fn a_truncated_archive_fails() {
        let (_dir, _path, bytes) = archive_bytes();
        let ends: Vec<usize> = lines_of(&bytes).iter().map(Vec::len).collect();
        for len in 0..bytes.len() {
            let e = failure(&bytes[..len]);
            let complete = ends
                .iter()
                .scan(0, |end, l| {
                    *end += l;
                    Some(*end)
                })
                .filter(|&end| end <= len)
                .count();
            match e {
                VerifyError::Unfinished { last_record, .. } => {
                    assert_eq!(last_record + 1, complete as u64, "cut at {len}")
                }
                VerifyError::Record { record, .. } => {
                    assert_eq!(record, complete as u64, "cut at {len}: {e}")
                }
                VerifyError::Unreadable { .. } => panic!("cut at {len}: {e}"),
            }
        }
        let e = failure(&bytes[..bytes.len() - 1]);
        assert!(
            e.to_string()
                .contains("record 5 (line 6): the last line is incomplete"),
            "{e}"
        );
    }

    #[test]
    fn forged_counts_or_identity_are_caught() {
        let (_dir, _path, bytes) = archive_bytes();
        let forged = forge(&bytes, |lines| {
            lines[5].insert("ok".into(), json!(3));
        });
        assert_eq!(
            failure(&forged).to_string(),
            "s.jsonl: record 5 (line 6): the closing record counts 4 records (3 ok, 1 errors, 1 \
             cancelled) but the archive holds 4 (2 ok, 1 errors, 1 cancelled)"
        );
        // A call dropped and the chain re-sealed: the close no longer adds up.
        let forged = forge(&bytes, |lines| {
            lines.remove(4);
            lines[4].insert("seq".into(), json!(4));
        });
        assert_eq!(failure(&forged).record(), Some(4));
        let forged = forge(&bytes, |lines| {
            lines[0]["conditions"]["repeats"] = json!(4);
        });
        assert_eq!(
            failure(&forged).to_string(),
            "s.jsonl: record 0 (line 1): the identity does not match the conditions — the header \
             was changed"
        );
        let forged = forge(&bytes, |lines| {
            lines[2].insert("status".into(), json!("fine"));
        });
        let e = failure(&forged).to_string();
        assert!(
            e.starts_with("s.jsonl: record 2 (line 3): field `status`: unknown variant `fine`"),
            "{e}"
        );
    }

    /// An archive of [`records`] (four planned calls, each with its outcome) closed by `close`.
    fn closed_with(close: impl Fn(&mut Close)) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let mut writer =
            super::super::ArchiveWriter::create(&path, &super::super::tests::header()).unwrap();
        for r in records() {
            writer.append(&r).unwrap();
        }
        let mut c = writer.close_record(SessionOutcome::Completed, 4, None);
        close(&mut c);
        writer.close(&c).unwrap();
        std::fs::read(&path).unwrap()
    }

    #[test]
    fn a_completed_session_with_a_planned_call_lost_is_caught() {
        assert!(verify_bytes(&closed_with(|_| {}), Path::new("s.jsonl")).is_ok());
        // Five planned, four recorded, "completed": the lost call of issue 14.
        let lost = closed_with(|c| c.planned_calls = 5);
        assert_eq!(
            failure(&lost).to_string(),
            "s.jsonl: record 5 (line 6): the closing record says completed but 1 of 5 planned \
             calls have no outcome — a call was lost"
        );
        // Closed as failed and saying so: it verifies.
        let said = closed_with(|c| {
            c.planned_calls = 5;
            c.outcome = SessionOutcome::Failed;
            c.without_outcome = 1;
            c.not_sent = 1;
        });
        let report = verify_bytes(&said, Path::new("s.jsonl")).unwrap();
        assert_eq!(report.close.without_outcome, 1);
        let miscounted = closed_with(|c| {
            c.planned_calls = 6;
            c.outcome = SessionOutcome::Failed;
            c.without_outcome = 1;
        });
        assert_eq!(
            failure(&miscounted).to_string(),
            "s.jsonl: record 5 (line 6): the closing record counts 1 planned calls without an \
             outcome but the archive has 2"
        );
    }

    #[test]
    fn records_after_the_close_are_caught() {
        let (_dir, _path, bytes) = archive_bytes();
        let forged = forge(&bytes, |lines| {
            let mut extra = lines[1].clone();
            extra.insert("seq".into(), json!(6));
            lines.push(extra);
        });
        let e = failure(&forged).to_string();
        assert!(
            e.contains("record 6 (line 7): a record follows the closing record"),
            "{e}"
        );
    }
}
