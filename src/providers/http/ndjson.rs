//! A newline-delimited JSON line splitter (Ollama's `application/x-ndjson` streams).
//!
//! Bytes go in as they arrive, in chunks of any size; each complete, non-blank line comes
//! out. Lines end with `\n` (a `\r` before it is dropped). A line is only cut at a `\n`, so a
//! multi-byte character split across chunks is reassembled before it is decoded.

/// One line may not grow past this: a server that never ends a line cannot exhaust memory.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct LineDecoder {
    /// The current, unfinished line.
    line: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a stream line is longer than {MAX_LINE} bytes")]
pub struct LineTooLong;

impl LineDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `bytes`; returns every non-blank line they complete, in order, without its end.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, LineTooLong> {
        let mut lines = Vec::new();
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.extend(&rest[..end])?;
            if let Some(line) = self.take() {
                lines.push(line);
            }
            rest = &rest[end + 1..];
        }
        self.extend(rest)?;
        Ok(lines)
    }

    /// The last line, if the stream ended without its newline (NDJSON allows that); blank
    /// leftovers are nothing.
    pub fn finish(&mut self) -> Option<String> {
        self.take()
    }

    /// True when part of a line has arrived that no newline has ended yet.
    pub fn pending(&self) -> bool {
        self.line.iter().any(|b| !b.is_ascii_whitespace())
    }

    fn extend(&mut self, bytes: &[u8]) -> Result<(), LineTooLong> {
        if self.line.len() + bytes.len() > MAX_LINE {
            return Err(LineTooLong);
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn take(&mut self) -> Option<String> {
        let line = std::mem::take(&mut self.line);
        let text = String::from_utf8_lossy(&line);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        (!text.trim().is_empty()).then(|| text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "{\"a\":\"é\"}\n\n{\"b\":2}\r\n  \n{\"c\":\"日本\"}\n";

    #[test]
    fn any_chunking_gives_the_same_lines() {
        let whole = LineDecoder::new().push(TEXT.as_bytes()).unwrap();
        assert_eq!(whole, ["{\"a\":\"é\"}", "{\"b\":2}", "{\"c\":\"日本\"}"]);
        let bytes = TEXT.as_bytes();
        for split in 0..=bytes.len() {
            let mut d = LineDecoder::new();
            let mut got = d.push(&bytes[..split]).unwrap();
            got.extend(d.push(&bytes[split..]).unwrap());
            assert_eq!(got, whole, "split at {split}");
            assert!(!d.pending(), "split at {split}");
        }
        let mut d = LineDecoder::new();
        let one_by_one: Vec<String> = bytes.iter().flat_map(|b| d.push(&[*b]).unwrap()).collect();
        assert_eq!(one_by_one, whole);
    }

    #[test]
    fn a_last_line_without_newline_is_pending_then_finished() {
        let mut d = LineDecoder::new();
        assert_eq!(d.push(b"{\"a\":1}\n{\"done\":tr").unwrap(), ["{\"a\":1}"]);
        assert!(d.pending());
        assert_eq!(d.push(b"ue}").unwrap(), Vec::<String>::new());
        assert_eq!(d.finish().as_deref(), Some("{\"done\":true}"));
        assert!(!d.pending());
        assert_eq!(d.finish(), None);
    }

    #[test]
    fn a_line_without_end_is_bounded() {
        let mut d = LineDecoder::new();
        assert_eq!(d.push(&vec![b'a'; MAX_LINE]), Ok(vec![]));
        assert_eq!(d.push(b"a"), Err(LineTooLong));
    }
}
