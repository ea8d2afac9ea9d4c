//! Reopening an unfinished session (killed, or cut by a crash) to finish it: only an archive
//! whose every record verifies may be continued, and the chain goes on from its last record.

use std::path::Path;
use std::time::Duration;

use super::line;
use super::reader::{complete_lines, read_bytes};
use super::verify::{verify_bytes, VerifyError};
use super::{Archive, ArchiveWriter};
use crate::error::InputError;

/// An unfinished archive, checked, and a writer that appends to it.
pub struct Reopened {
    pub archive: Archive,
    pub writer: ArchiveWriter,
    /// Session time when its last call ended: the times of new records go on from there.
    pub ended: Duration,
}

/// Verifies `path` and reopens it for appending. Refused, in one sentence: an archive that
/// does not verify (it was changed), or one that is closed (nothing to resume).
pub fn reopen(path: &Path) -> Result<Reopened, InputError> {
    let mut bytes = std::fs::read(path)
        .map_err(|e| InputError::new(path, format!("cannot read the archive: {e}")))?;
    // A crash leaves at most a partial last line: that record was never written, so it is
    // dropped, and the rest must verify.
    let complete_len = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes.truncate(complete_len);
    match verify_bytes(&bytes, path) {
        Err(VerifyError::Unfinished { .. }) => {}
        Ok(report) => {
            return Err(InputError::new(
                path,
                format!(
                    "the session is closed ({}, {} of {} planned calls); only an unfinished session can be resumed",
                    report.close.outcome.as_str(),
                    report.close.records,
                    report.close.planned_calls
                ),
            ))
        }
        Err(VerifyError::Unreadable { message, .. }) => {
            return Err(InputError::new(path, format!("cannot read the archive: {message}")))
        }
        Err(e @ VerifyError::Record { .. }) => {
            return Err(InputError::new(
                path,
                format!("cannot be resumed: it does not verify: {}", strip_path(&e, path)),
            ))
        }
    }
    let archive = read_bytes(&bytes, path)?;
    let ended = ended(&archive, path)?;
    let (lines, _) = complete_lines(&bytes);
    let complete: Vec<&[u8]> = lines.collect();
    let last = complete
        .last()
        .ok_or_else(|| InputError::new(path, "the archive has no complete record"))?;
    // Verified above: the last complete line carries its seal.
    let prev =
        line::unseal(last).map_err(|_| InputError::new(path, "the last record has no hash"))?;
    let seq = (complete.len() - 1) as u64;
    let writer = ArchiveWriter::reopen(path, complete_len as u64, seq, prev, &archive.calls)
        .map_err(|e| InputError::new(path, format!("cannot reopen the archive: {e}")))?;
    Ok(Reopened {
        archive,
        writer,
        ended,
    })
}

/// When the archive's last call ended, in session time. A time no session reaches (a
/// crafted `1e300`) is refused, naming its line and field.
fn ended(archive: &Archive, path: &Path) -> Result<Duration, InputError> {
    let mut ended = Duration::ZERO;
    for (index, call) in archive.calls.iter().enumerate() {
        let timing = &call.timing;
        let end_ms = (timing.start_ms + timing.latency_ms).max(0.0);
        let Ok(end) = Duration::try_from_secs_f64(end_ms / 1000.0) else {
            let (field, value) = if timing.start_ms.abs() >= timing.latency_ms.abs() {
                ("timing.start_ms", timing.start_ms)
            } else {
                ("timing.latency_ms", timing.latency_ms)
            };
            return Err(InputError::new(
                path,
                format!(
                    "{value:e} ms is beyond any session's length; the session cannot be resumed"
                ),
            )
            // The header is line 1; call records follow it.
            .at_line(Some(index + 2))
            .field(field));
        };
        ended = ended.max(end);
    }
    Ok(ended)
}

/// A verify error's sentence without its leading `path: ` (the InputError names the file).
fn strip_path(e: &VerifyError, path: &Path) -> String {
    let text = e.to_string();
    let prefix = format!("{}: ", path.display());
    text.strip_prefix(&prefix).unwrap_or(&text).to_string()
}
