//! Appending a session to its archive as calls finish.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::line::{seal, Kind};
use super::{session_file_name, Close, Header, SessionOutcome};
use crate::record::{CallRecord, CallStatus};

/// Writes one session archive. Every record is one `write` of a whole line to the OS, so a
/// killed process leaves at most a partial last line, which readers ignore.
pub struct ArchiveWriter {
    path: PathBuf,
    file: File,
    seq: u64,
    prev: String,
    line: Vec<u8>,
    records: u64,
    ok: u64,
    errors: u64,
    cancelled: u64,
    /// Set after a failed write: a partial line may be on disk, so nothing may follow it.
    broken: bool,
}

impl ArchiveWriter {
    /// Creates the archive at `path` (never overwriting a file) and writes its header.
    pub fn create(path: &Path, header: &Header) -> io::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut line = Vec::with_capacity(8 * 1024);
        // Serialise before creating the file, so a bad header leaves nothing behind.
        let hash = seal(&mut line, Kind::Header, 0, None, header).map_err(invalid_data)?;
        let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
        file.write_all(&line)?;
        file.flush()?;
        Ok(ArchiveWriter {
            path: path.to_path_buf(),
            file,
            seq: 0,
            prev: hash,
            line,
            records: 0,
            ok: 0,
            errors: 0,
            cancelled: 0,
            broken: false,
        })
    }

    /// Reopens an unfinished archive to append to it: the file is cut after its last
    /// complete line (a crash leaves at most a partial one), and the chain continues from
    /// that line. The caller has verified the archive (see [`super::resume`]).
    pub(crate) fn reopen(
        path: &Path,
        complete_len: u64,
        seq: u64,
        prev: String,
        calls: &[CallRecord],
    ) -> io::Result<Self> {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(complete_len)?;
        drop(file);
        let file = OpenOptions::new().append(true).open(path)?;
        let count = |status| calls.iter().filter(|c| c.status == status).count() as u64;
        Ok(ArchiveWriter {
            path: path.to_path_buf(),
            file,
            seq,
            prev,
            line: Vec::with_capacity(8 * 1024),
            records: calls.len() as u64,
            ok: count(CallStatus::Ok),
            errors: count(CallStatus::Error),
            cancelled: count(CallStatus::Cancelled),
            broken: false,
        })
    }

    /// Creates the archive in `dir` under its [`session_file_name`], adding `-2`, `-3`, … if a
    /// session with the same name exists (two runs in the same second).
    pub fn create_in(
        dir: &Path,
        header: &Header,
        started: SystemTime,
        protocol_name: &str,
    ) -> io::Result<Self> {
        let name = session_file_name(started, protocol_name, &header.identity);
        let stem = name.strip_suffix(".jsonl").unwrap_or(&name);
        let mut last_error = None;
        for n in 1..=100 {
            let candidate = if n == 1 {
                dir.join(&name)
            } else {
                dir.join(format!("{stem}-{n}.jsonl"))
            };
            match Self::create(&candidate, header) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
                other => return other,
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
    }

    /// Appends one call record and hands the line to the OS before returning.
    pub fn append(&mut self, record: &CallRecord) -> io::Result<()> {
        check_finite(record)?;
        let seq = self.seq + 1;
        self.write_line(Kind::Call, seq, record)?;
        self.records += 1;
        match record.status {
            CallStatus::Ok => self.ok += 1,
            CallStatus::Error => self.errors += 1,
            CallStatus::Cancelled => self.cancelled += 1,
        }
        Ok(())
    }

    /// Writes the closing record and syncs the file to disk. The counts in `close` must match
    /// the records appended (see [`ArchiveWriter::close_record`]); otherwise nothing is written.
    pub fn close(mut self, close: &Close) -> io::Result<()> {
        let counted = (self.records, self.ok, self.errors, self.cancelled);
        let claimed = (close.records, close.ok, close.errors, close.cancelled);
        if counted != claimed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "closing record claims (records, ok, errors, cancelled) = {claimed:?} but \
                     {counted:?} were written"
                ),
            ));
        }
        let seq = self.seq + 1;
        self.write_line(Kind::Close, seq, close)?;
        self.file.sync_data()
    }

    /// A closing record with this writer's counts, ended now.
    pub fn close_record(
        &self,
        outcome: SessionOutcome,
        planned_calls: u64,
        summary: Option<serde_json::Value>,
    ) -> Close {
        Close {
            ended_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            outcome,
            planned_calls,
            records: self.records,
            ok: self.ok,
            errors: self.errors,
            cancelled: self.cancelled,
            without_outcome: 0,
            not_sent: 0,
            reason: None,
            summary,
            servers: BTreeMap::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Call records appended so far.
    pub fn records_written(&self) -> u64 {
        self.records
    }

    fn write_line<T: serde::Serialize>(
        &mut self,
        kind: Kind,
        seq: u64,
        body: &T,
    ) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other(
                "an earlier write to this archive failed; nothing more can be appended",
            ));
        }
        let hash = seal(&mut self.line, kind, seq, Some(&self.prev), body).map_err(invalid_data)?;
        if let Err(e) = self
            .file
            .write_all(&self.line)
            .and_then(|()| self.file.flush())
        {
            self.broken = true;
            return Err(e);
        }
        self.seq = seq;
        self.prev = hash;
        Ok(())
    }
}

fn invalid_data(e: serde_json::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// JSON has no NaN or infinity (serde_json would write `null` and the archive would not read
/// back), so such a record is refused before anything is written.
fn check_finite(record: &CallRecord) -> io::Result<()> {
    let timing = &record.timing;
    let bad = if !timing.start_ms.is_finite() {
        Some("timing.start_ms".to_string())
    } else if !timing.latency_ms.is_finite() {
        Some("timing.latency_ms".to_string())
    } else if timing.ttft_ms.is_some_and(|t| !t.is_finite()) {
        Some("timing.ttft_ms".to_string())
    } else {
        record
            .logprobs
            .iter()
            .flatten()
            .position(|p| !p.is_finite())
            .map(|i| format!("logprobs[{i}]"))
    };
    match bad {
        Some(field) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "call record {}/{} #{}: field `{field}` is not a finite number, which JSON cannot hold",
                record.target, record.item, record.call
            ),
        )),
        None => Ok(()),
    }
}
