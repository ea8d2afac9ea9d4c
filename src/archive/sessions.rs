//! Listing the sessions in a directory from each archive's first and last line only.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::line::{self, Kind};
use super::reader::header_of;
use super::{protocol_name_of, Close, SessionOutcome};
use crate::error::InputError;

/// One session as shown in a list.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    pub path: PathBuf,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// `conditions.protocol.name`, where present.
    pub protocol_name: Option<String>,
    pub identity: String,
    /// Call records (from the closing record, or the last record's `seq` if unfinished).
    pub records: u64,
    /// `None`: the session is unfinished (still running, or killed).
    pub outcome: Option<SessionOutcome>,
    pub ended_at: Option<String>,
    pub summary: Option<serde_json::Value>,
}

/// The sessions found, oldest first, and the files that could not be listed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
    pub skipped: Vec<InputError>,
}

/// Lists the `*.jsonl` archives in `dir`, oldest first. A missing directory lists nothing.
pub fn list_sessions(dir: &Path) -> io::Result<SessionList> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(SessionList::default()),
        Err(e) => return Err(e),
    };
    let mut list = SessionList::default();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|ext| ext != "jsonl") || !path.is_file() {
            continue;
        }
        match session_info(&path) {
            Ok(info) => list.sessions.push(info),
            Err(e) => list.skipped.push(e),
        }
    }
    // RFC 3339 strings in UTC from one writer sort as times; parse anyway in case of mixed
    // precision, and fall back to the text.
    list.sessions.sort_by(|a, b| {
        let time = |s: &SessionInfo| humantime::parse_rfc3339_weak(&s.started_at).ok();
        (time(a), &a.started_at, &a.path).cmp(&(time(b), &b.started_at, &b.path))
    });
    list.skipped.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(list)
}

/// Reads the header and the last complete line of one archive.
pub fn session_info(path: &Path) -> Result<SessionInfo, InputError> {
    let io_error = |e: io::Error| InputError::new(path, format!("cannot read the archive: {e}"));
    let mut file = File::open(path).map_err(io_error)?;
    let mut first = Vec::new();
    BufReader::new(&mut file)
        .read_until(b'\n', &mut first)
        .map_err(io_error)?;
    if first.pop() != Some(b'\n') {
        return Err(InputError::new(
            path,
            "the header line is incomplete: the file was cut while the session was being created",
        )
        .at_line(Some(1)));
    }
    let header = header_of(&first, path, 1)?;
    let last = last_line(&mut file).map_err(io_error)?;

    let mut info = SessionInfo {
        path: path.to_path_buf(),
        started_at: header.started_at.clone(),
        protocol_name: protocol_name_of(&header.conditions).map(str::to_string),
        identity: header.identity.clone(),
        records: 0,
        outcome: None,
        ended_at: None,
        summary: None,
    };
    if let Some(last) = last.filter(|l| *l != first) {
        // The line number is unknown without reading the whole file.
        let record = line::parse(&last, path, 0).map_err(|e| e.at_line(None))?;
        match record.kind {
            Kind::Close => {
                let close: Close =
                    line::decode(record.body, path, 0).map_err(|e| e.at_line(None))?;
                info.records = close.records;
                info.outcome = Some(close.outcome);
                info.ended_at = Some(close.ended_at);
                info.summary = close.summary;
            }
            // Records are numbered from the header (seq 0), so a call's seq counts the calls.
            Kind::Call => info.records = record.seq,
            Kind::Header => {}
        }
    }
    Ok(info)
}

/// The last `\n`-terminated line (without it), reading backwards from the end in growing
/// windows so only the tail of a large archive is read.
fn last_line(file: &mut File) -> io::Result<Option<Vec<u8>>> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut window: u64 = 64 * 1024;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::new();
        file.by_ref().take(len - start).read_to_end(&mut tail)?;
        // Drop a partial last line, as after a crash mid-write.
        let Some(end) = tail.iter().rposition(|&b| b == b'\n') else {
            if start == 0 {
                return Ok(None);
            }
            window = window.saturating_mul(4);
            continue;
        };
        match tail[..end].iter().rposition(|&b| b == b'\n') {
            Some(begin) => return Ok(Some(tail[begin + 1..end].to_vec())),
            None if start == 0 => return Ok(Some(tail[..end].to_vec())),
            None => window = window.saturating_mul(4),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use serde_json::json;

    use super::super::tests::records;
    use super::super::{ArchiveWriter, Header};
    use super::*;

    fn session(
        dir: &Path,
        name: &str,
        secs: u64,
        calls: usize,
        summary: Option<serde_json::Value>,
    ) -> PathBuf {
        let header = Header::new(
            json!({"protocol": {"name": name}}),
            None,
            UNIX_EPOCH + Duration::from_secs(secs),
        );
        let path = dir.join(format!("{name}.jsonl"));
        let mut writer = ArchiveWriter::create(&path, &header).unwrap();
        for r in records().iter().cycle().take(calls) {
            writer.append(r).unwrap();
        }
        if let Some(summary) = summary {
            let close = writer.close_record(SessionOutcome::Cancelled, 9, Some(summary));
            writer.close(&close).unwrap();
        }
        path
    }

    #[test]
    fn lists_finished_and_unfinished_sessions_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A summary bigger than the first tail window makes the reader look further back.
        let big = json!({"note": "x".repeat(300_000)});
        session(d, "big", 3_000, 50, Some(big.clone()));
        session(d, "closed", 1_000, 3, Some(json!({"agree": 1})));
        let killed = session(d, "killed", 2_000, 7, None);
        let mut bytes = std::fs::read(&killed).unwrap();
        bytes.extend_from_slice(br#"{"kind":"call","seq":8,"prev":"#);
        std::fs::write(&killed, bytes).unwrap();
        session(d, "empty", 4_000, 0, None);
        std::fs::write(d.join("junk.jsonl"), "not json\n").unwrap();
        std::fs::write(d.join("notes.txt"), "ignored").unwrap();

        let list = list_sessions(d).unwrap();
        let names: Vec<_> = list
            .sessions
            .iter()
            .map(|s| s.protocol_name.as_deref().unwrap())
            .collect();
        assert_eq!(names, ["closed", "killed", "big", "empty"]);
        let [closed, killed, big_s, empty] = &list.sessions[..] else {
            unreachable!()
        };
        assert_eq!(
            (closed.records, closed.outcome),
            (3, Some(SessionOutcome::Cancelled))
        );
        assert_eq!(closed.summary, Some(json!({"agree": 1})));
        assert_eq!(closed.started_at, "1970-01-01T00:16:40.000Z");
        assert_eq!((killed.records, killed.outcome), (7, None));
        assert_eq!((big_s.records, big_s.summary.as_ref()), (50, Some(&big)));
        assert_eq!((empty.records, empty.outcome), (0, None));
        assert_eq!(list.skipped.len(), 1);
        assert!(list.skipped[0].file.ends_with("junk.jsonl"));
        assert!(
            list.skipped[0].to_string().contains("not valid JSON"),
            "{}",
            list.skipped[0]
        );
    }

    #[test]
    fn a_missing_directory_lists_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let list = list_sessions(&dir.path().join("none")).unwrap();
        assert!(list.sessions.is_empty() && list.skipped.is_empty());
    }
}
