//! The built-in tokenizer (used when the backend gave no tokens) and the token interner that
//! lets edit distances run on integer ids.

use std::collections::HashMap;
use std::sync::Arc;

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

/// A token sequence stored compactly: the tokens joined in one buffer plus their end offsets
/// (~4 bytes a token instead of a `String` each), cheap to clone into every snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenList {
    joined: Arc<str>,
    ends: Arc<[u32]>,
}

impl TokenList {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.joined.get(start..end)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

impl<S: AsRef<str>> FromIterator<S> for TokenList {
    fn from_iter<I: IntoIterator<Item = S>>(tokens: I) -> Self {
        let mut joined = String::new();
        let mut ends = Vec::new();
        for t in tokens {
            joined.push_str(t.as_ref());
            // Outputs over 4 GiB do not occur; saturating keeps `get` from slicing past the end.
            ends.push(u32::try_from(joined.len()).unwrap_or(u32::MAX));
        }
        TokenList {
            joined: joined.into(),
            ends: ends.into(),
        }
    }
}

impl serde::Serialize for TokenList {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod token_list_tests {
    use super::*;

    #[test]
    fn keeps_every_token_including_empty_and_unicode_ones() {
        let list: TokenList = ["Hé", "", " wörld", "."].into_iter().collect();
        assert_eq!(list.len(), 4);
        assert_eq!(list.iter().collect::<Vec<_>>(), ["Hé", "", " wörld", "."]);
        assert_eq!(list.get(2), Some(" wörld"));
        assert_eq!(list.get(4), None);
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            r#"["Hé",""," wörld","."]"#
        );
    }
}
