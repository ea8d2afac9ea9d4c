//! Reading an archive back, tolerant of a crash: a partial last line is ignored.

use std::path::Path;

use super::line::{self, Kind};
use super::{Archive, Close, Header, FORMAT_VERSION};
use crate::error::InputError;
use crate::record::CallRecord;

/// Reads every complete record of the archive at `path`. Does not check the hash chain
/// (see [`super::verify`]); does check that each record is well-formed.
pub fn read(path: &Path) -> Result<Archive, InputError> {
    let bytes = std::fs::read(path)
        .map_err(|e| InputError::new(path, format!("cannot read the archive: {e}")))?;
    read_bytes(&bytes, path)
}

/// [`read`] on the contents of `path`.
pub(crate) fn read_bytes(bytes: &[u8], path: &Path) -> Result<Archive, InputError> {
    let (lines, truncated_tail) = complete_lines(bytes);
    let mut lines = lines.enumerate().map(|(i, l)| (i + 1, l));

    let header =
        match lines.next() {
            Some((line_no, bytes)) => header_of(bytes, path, line_no)?,
            None if truncated_tail => return Err(InputError::new(
                path,
                "the header line is incomplete (no newline): the file was cut while the session \
                 was being created",
            )
            .at_line(Some(1))),
            None => {
                return Err(InputError::new(
                    path,
                    "empty file, not a reprise session archive",
                ))
            }
        };

    let rest: Vec<(usize, &[u8])> = lines.collect();
    let mut calls = Vec::with_capacity(rest.len());
    let mut close: Option<Close> = None;
    // In line order, so the first problem reported is the one a sequential read would meet.
    for (line_no, decoded) in decode_lines(&rest, bytes.len(), path) {
        let at = |message: &str| InputError::new(path, message).at_line(Some(line_no));
        let decoded = decoded?;
        if matches!(decoded, Decoded::Blank) {
            continue;
        }
        if close.is_some() {
            return Err(at("a record follows the closing record"));
        }
        match decoded {
            Decoded::Blank => {}
            Decoded::Call(call) => calls.push(call),
            Decoded::Close(c) => close = Some(c),
            Decoded::Header => return Err(at("a second header; only line 1 may be a header")),
        }
    }
    Ok(Archive {
        header,
        calls,
        close,
        truncated_tail,
    })
}

enum Decoded {
    Blank,
    Call(CallRecord),
    Close(Close),
    Header,
}

fn decode_line(bytes: &[u8], path: &Path, line_no: usize) -> Result<Decoded, InputError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Decoded::Blank);
    }
    let record = line::parse(bytes, path, line_no)?;
    Ok(match record.kind {
        Kind::Call => Decoded::Call(line::decode(record.body, path, line_no)?),
        Kind::Close => Decoded::Close(line::decode(record.body, path, line_no)?),
        Kind::Header => Decoded::Header,
    })
}

/// Below this, threads cost more than they save.
pub(crate) const PARALLEL_BYTES: usize = 4 << 20;

/// Decodes the lines in order, on several threads for a large archive. Each thread stops at
/// its first error; the caller stops there too, so nothing after it is needed.
fn decode_lines(
    lines: &[(usize, &[u8])],
    total_bytes: usize,
    path: &Path,
) -> Vec<(usize, Result<Decoded, InputError>)> {
    let decode_chunk = |chunk: &[(usize, &[u8])]| {
        let mut out = Vec::with_capacity(chunk.len());
        for &(line_no, bytes) in chunk {
            let decoded = decode_line(bytes, path, line_no);
            let failed = decoded.is_err();
            out.push((line_no, decoded));
            if failed {
                break;
            }
        }
        out
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if threads < 2 || total_bytes < PARALLEL_BYTES || lines.len() < threads {
        return decode_chunk(lines);
    }
    let chunk_len = lines.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = lines
            .chunks(chunk_len)
            .map(|chunk| (chunk, scope.spawn(move || decode_chunk(chunk))))
            .collect();
        let mut out = Vec::with_capacity(lines.len());
        for (chunk, handle) in handles {
            match handle.join() {
                Ok(decoded) => out.extend(decoded),
                Err(_) => {
                    let line_no = chunk.first().map(|&(n, _)| n);
                    let message = "internal error while decoding these records";
                    out.push((0, Err(InputError::new(path, message).at_line(line_no))));
                    break;
                }
            }
        }
        out
    })
}

/// The complete (`\n`-terminated) lines, without their terminator, and whether a partial line
/// followed them. A `\r` stays: JSON parsing skips it, and `verify` must see it as a change.
pub(crate) fn complete_lines(bytes: &[u8]) -> (impl Iterator<Item = &[u8]>, bool) {
    let (complete, tail) = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => bytes.split_at(end + 1),
        None => (&bytes[..0], bytes),
    };
    let lines = complete
        .split_inclusive(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\n").unwrap_or(l));
    (lines, !tail.is_empty())
}

/// Parses line 1, checking kind and format version before the fields, so an archive from a
/// newer reprise gets a message about the version rather than about some field.
pub(crate) fn header_of(bytes: &[u8], path: &Path, line_no: usize) -> Result<Header, InputError> {
    let at = |message: String| InputError::new(path, message).at_line(Some(line_no));
    let record = line::parse(bytes, path, line_no)?;
    if record.kind != Kind::Header {
        return Err(at(format!(
            "expected the header record, found a `{}` record; not the start of a session archive",
            record.kind.as_str()
        ))
        .field("kind"));
    }
    let body = record.body.into_map(path, line_no)?;
    match body.get("format_version").map(serde_json::Value::as_u64) {
        Some(Some(v)) if v == u64::from(FORMAT_VERSION) => {}
        Some(Some(v)) => {
            return Err(at(format!(
                "format version {v} is not supported; this reprise reads version {FORMAT_VERSION} \
                 (the archive may come from a newer reprise)"
            ))
            .field("format_version"))
        }
        Some(None) => return Err(at("expected a whole number".to_string()).field("format_version")),
        None => {
            return Err(
                at("missing; not a reprise session archive".to_string()).field("format_version")
            )
        }
    }
    line::decode(line::Body::Map(body), path, line_no)
}
