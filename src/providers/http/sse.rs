//! A server-sent events decoder for `data:`-only streams (OpenAI and compatible servers).
//!
//! Bytes go in as they arrive, in chunks of any size; each complete event's data comes out.
//! Comment lines (`: keep-alive`, OpenRouter's `: OPENROUTER PROCESSING`) and the `event`,
//! `id` and `retry` fields are ignored; lines end with `\n`, `\r\n` or a lone `\r`.

/// One line may not grow past this: a server that never ends a line cannot exhaust memory.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct SseDecoder {
    /// The current, unfinished line.
    line: Vec<u8>,
    /// The data lines of the current event, joined with `\n`.
    data: Option<String>,
    /// The previous byte was a `\r`, so a `\n` now ends nothing new.
    after_cr: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an event-stream line is longer than {MAX_LINE} bytes")]
pub struct LineTooLong;

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `bytes`; returns the data of every event they complete, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, LineTooLong> {
        let mut events = Vec::new();
        for &b in bytes {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    if let Some(data) = self.end_line() {
                        events.push(data);
                    }
                }
                _ => {
                    self.after_cr = false;
                    if self.line.len() >= MAX_LINE {
                        return Err(LineTooLong);
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(events)
    }

    /// True when bytes of an event were seen that no blank line has completed yet.
    pub fn pending(&self) -> bool {
        !self.line.is_empty() || self.data.is_some()
    }

    /// The stream ended: the data of an event still held, as if its blank line had come — a
    /// server may close right after its last `data:` line, and the official SDKs take that
    /// event. Whether it is whole (or was cut mid-line) is for the wire format to tell.
    pub fn finish(&mut self) -> Option<String> {
        if !self.line.is_empty() {
            self.end_line();
        }
        self.data.take()
    }

    /// Ends the current line; a blank line dispatches the event.
    fn end_line(&mut self) -> Option<String> {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            return self.data.take();
        }
        if line[0] == b':' {
            return None;
        }
        let line = String::from_utf8_lossy(&line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_at_once(text: &str) -> Vec<String> {
        SseDecoder::new().push(text.as_bytes()).unwrap()
    }

    #[test]
    fn events_comments_and_multiline_data() {
        let text = ": OPENROUTER PROCESSING\n\ndata: {\"a\":1}\n\nevent: x\nid: 7\ndata: one\ndata:two\n\ndata: [DONE]\n\n";
        assert_eq!(all_at_once(text), ["{\"a\":1}", "one\ntwo", "[DONE]"]);
    }

    #[test]
    fn any_chunking_gives_the_same_events() {
        let text = "data: {\"x\":\"é\"}\r\n\r\n: c\r\ndata: b\r\rdata: c\n\n";
        let whole = all_at_once(text);
        assert_eq!(whole, ["{\"x\":\"é\"}", "b", "c"]);
        let bytes = text.as_bytes();
        for split in 0..bytes.len() {
            let mut d = SseDecoder::new();
            let mut got = d.push(&bytes[..split]).unwrap();
            got.extend(d.push(&bytes[split..]).unwrap());
            assert_eq!(got, whole, "split at {split}");
            assert!(!d.pending());
        }
        let mut d = SseDecoder::new();
        let one_by_one: Vec<String> = bytes.iter().flat_map(|b| d.push(&[*b]).unwrap()).collect();
        assert_eq!(one_by_one, whole);
    }

    #[test]
    fn an_unfinished_event_is_pending_not_emitted() {
        let mut d = SseDecoder::new();
        assert_eq!(d.push(b"data: {\"a\":1}\n").unwrap(), Vec::<String>::new());
        assert!(d.pending());
        let mut d = SseDecoder::new();
        d.push(b"data: {\"a\"").unwrap();
        assert!(d.pending());
    }

    #[test]
    fn the_last_event_without_its_blank_line_is_finished_at_the_end() {
        for ending in [
            "data: {\"a\":1}",
            "data: {\"a\":1}\n",
            "data: {\"a\":1}\r\n",
        ] {
            let mut d = SseDecoder::new();
            assert_eq!(d.push(ending.as_bytes()).unwrap(), Vec::<String>::new());
            assert_eq!(d.finish().as_deref(), Some("{\"a\":1}"), "{ending:?}");
            assert!(!d.pending());
        }
        let mut d = SseDecoder::new();
        d.push(b"data: one\n\n: comment only").unwrap();
        assert_eq!(d.finish(), None, "a comment is no event");
    }

    #[test]
    fn a_line_without_end_is_bounded() {
        let mut d = SseDecoder::new();
        let big = vec![b'a'; MAX_LINE];
        assert_eq!(d.push(&big), Ok(vec![]));
        assert_eq!(d.push(b"a"), Err(LineTooLong));
    }
}
