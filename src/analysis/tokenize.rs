//! The built-in tokenizer (used when the backend gave no tokens) and the token interner that
//! lets edit distances run on integer ids.

use std::collections::HashMap;

use unicode_segmentation::UnicodeSegmentation;

/// Splits text into words and punctuation on Unicode word boundaries (UAX #29). A run of
/// horizontal whitespace is glued to the token after it (" world"), the way LLM tokenizers do,
/// so whitespace never forms a branch of its own; line breaks stay separate tokens. The tokens
/// concatenate back to the text exactly.
pub fn word_tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut pending: Option<usize> = None;
    for (idx, seg) in text.split_word_bound_indices() {
        let blank = seg.chars().all(char::is_whitespace);
        let line_break = seg.contains(['\n', '\r']);
        if blank && !line_break {
            // Two blank segments in a row (rare) stay together.
            pending.get_or_insert(idx);
            continue;
        }
        match pending.take() {
            Some(start) if !line_break => out.push(&text[start..idx + seg.len()]),
            Some(start) => {
                out.push(&text[start..idx]);
                out.push(seg);
            }
            None => out.push(seg),
        }
    }
    if let Some(start) = pending {
        out.push(&text[start..]);
    }
    out
}

/// Maps token strings to dense u32 ids, shared by all items of an analyzer.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    ids: HashMap<Box<str>, u32>,
}

impl Interner {
    pub fn intern(&mut self, token: &str) -> u32 {
        if let Some(&id) = self.ids.get(token) {
            return id;
        }
        // More than 4 billion distinct tokens cannot fit in memory anyway; saturate, never panic.
        let id = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
        self.ids.insert(token.into(), id);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_concatenate_back_to_the_text() {
        for text in [
            "Hello, world! It's 29.3°F.",
            "  leading and trailing  ",
            "line one\nline two\r\n\n  indented",
            "naïve café — 東京は晴れ。",
            "",
            "   ",
        ] {
            assert_eq!(word_tokens(text).concat(), text);
        }
    }

    #[test]
    fn words_carry_their_leading_space() {
        assert_eq!(
            word_tokens("The answer is 42."),
            ["The", " answer", " is", " 42", "."]
        );
        assert_eq!(word_tokens("a\nb"), ["a", "\n", "b"]);
        assert_eq!(word_tokens("a  \n b"), ["a", "  ", "\n", " b"]);
        assert_eq!(word_tokens("end "), ["end", " "]);
    }

    #[test]
    fn interner_gives_stable_ids() {
        let mut i = Interner::default();
        let a = i.intern("a");
        let b = i.intern(" b");
        assert_ne!(a, b);
        assert_eq!(i.intern("a"), a);
    }
}
