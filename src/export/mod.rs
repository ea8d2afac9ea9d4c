//! `reprise export`: a session archive as CSV (one row per call attempt), a Markdown report,
//! or the summary JSON of `reprise run --json`. Archive text is data: the Markdown report
//! neutralises control characters; the CSV keeps text exact but guards spreadsheet formulas.

mod markdown;

use std::io::{self, Write};
use std::path::Path;

use crate::archive::Archive;
use crate::error::InputError;
use crate::record::CallRecord;
use crate::report;
use crate::session::analyse_archive;

pub use markdown::markdown;

/// What `reprise export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One row per call attempt, RFC 4180.
    Csv,
    /// A Markdown report: conditions, identity, measures, clusters, earliest split.
    Md,
    /// The summary JSON of `reprise run --json`.
    Json,
}

/// Why an export failed: the archive could not be read (exit 2), or the output not written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Input(#[from] InputError),
    #[error("cannot write the export: {0}")]
    Write(#[from] io::Error),
}

/// What the caller should tell the user besides the export itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportNotes {
    /// The archive has no closing record (the session was killed or is still running).
    pub unfinished: bool,
    /// A partial last line was ignored.
    pub truncated_tail: bool,
    /// Call records exported.
    pub records: usize,
}

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 19] = [
    "seq",
    "target",
    "item",
    "call",
    "attempt",
    "warmup",
    "retried",
    "status",
    "error_class",
    "error_message",
    "start_ms",
    "latency_ms",
    "ttft_ms",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "finish_reason",
    "served",
    "output",
];

/// Reads the archive at `path` and writes it to `out` in `format`.
pub fn export(
    path: &Path,
    format: ExportFormat,
    out: &mut dyn Write,
) -> Result<ExportNotes, ExportError> {
    let (archive, snapshot) = analyse_archive(path)?;
    let notes = ExportNotes {
        unfinished: archive.close.is_none(),
        truncated_tail: archive.truncated_tail,
        records: archive.calls.len(),
    };
    match format {
        ExportFormat::Csv => write_csv(&archive, out)?,
        ExportFormat::Json => {
            let summary = report::summary_json(&snapshot, path, &archive.header.identity);
            let text = serde_json::to_string_pretty(&summary).map_err(io::Error::other)?;
            writeln!(out, "{text}")?;
        }
        ExportFormat::Md => out.write_all(markdown(&archive, &snapshot, path).as_bytes())?,
    }
    out.flush()?;
    Ok(notes)
}

/// One CSV row per call record, in archive order; `seq` is the record's 1-based position
/// among the call records (its line `seq` in the archive).
pub fn write_csv(archive: &Archive, out: &mut dyn Write) -> io::Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    writer.write_record(CSV_COLUMNS).map_err(csv_io)?;
    for (i, record) in archive.calls.iter().enumerate() {
        let row = csv_row(i as u64 + 1, record);
        writer
            .write_record(row.iter().map(|cell| guard_formula(cell).into_owned()))
            .map_err(csv_io)?;
    }
    writer.flush()
}

fn csv_row(seq: u64, r: &CallRecord) -> [String; 19] {
    let opt = |v: Option<String>| v.unwrap_or_default();
    [
        seq.to_string(),
        r.target.clone(),
        r.item.clone(),
        r.call.to_string(),
        r.attempt.to_string(),
        r.warmup.to_string(),
        r.retried.to_string(),
        serde_plain(&r.status),
        opt(r.error.as_ref().map(|e| e.class.as_str().to_string())),
        opt(r.error.as_ref().map(|e| e.message.clone())),
        r.timing.start_ms.to_string(),
        r.timing.latency_ms.to_string(),
        opt(r.timing.ttft_ms.map(|t| t.to_string())),
        opt(r.usage.map(|u| u.prompt_tokens.to_string())),
        opt(r.usage.map(|u| u.completion_tokens.to_string())),
        opt(r
            .usage
            .and_then(|u| u.reasoning_tokens)
            .map(|n| n.to_string())),
        opt(r.finish_reason.clone()),
        if r.served.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&r.served).unwrap_or_default()
        },
        opt(r.output.clone()),
    ]
}

/// `ok`, `error`, `cancelled`: the archive's own spelling.
fn serde_plain(status: &crate::record::CallStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A spreadsheet opening the CSV would run a cell starting with `=`, `+`, `-` or `@` (or a
/// tab or carriage return before one) as a formula; a leading `'` makes it text.
pub fn guard_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

fn csv_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests;
