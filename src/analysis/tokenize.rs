//! The built-in tokenizer (used when the backend gave no tokens) and the token interner that
//! lets edit distances run on integer ids.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use unicode_segmentation::UnicodeSegmentation;

/// Splits text into words and punctuation on Unicode word boundaries (UAX #29). A run of
/// horizontal whitespace is glued to the token after it (" world"), the way LLM tokenizers do,
/// so whitespace never forms a branch of its own; line breaks stay separate tokens. The tokens
/// concatenate back to the text exactly.
pub fn word_tokens(text: &str) -> Vec<&str> {
    // Most model output is ASCII; its word bounds come from a table-free scanner that the
    // tests hold equal to UAX #29 (this is the hot part of folding a new distinct output).
    if text.is_ascii() {
        glue_spaces(text, AsciiWordBounds { text, pos: 0 })
    } else {
        glue_spaces(text, text.split_word_bound_indices())
    }
}

fn glue_spaces<'a>(
    text: &'a str,
    segments: impl Iterator<Item = (usize, &'a str)>,
) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut pending: Option<usize> = None;
    for (idx, seg) in segments {
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

/// UAX #29 word boundaries for ASCII text, as `split_word_bound_indices` gives them.
struct AsciiWordBounds<'a> {
    text: &'a str,
    pos: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wb {
    Cr,
    Lf,
    Newline,
    Space,
    Letter,
    Numeric,
    ExtendNumLet,
    MidLetter,
    MidNum,
    MidNumLet,
    SingleQuote,
    Other,
}

const fn wb(b: u8) -> Wb {
    match b {
        b'\r' => Wb::Cr,
        b'\n' => Wb::Lf,
        0x0b | 0x0c => Wb::Newline,
        b' ' => Wb::Space,
        b'A'..=b'Z' | b'a'..=b'z' => Wb::Letter,
        b'0'..=b'9' => Wb::Numeric,
        b'_' => Wb::ExtendNumLet,
        b':' => Wb::MidLetter,
        b',' | b';' => Wb::MidNum,
        b'.' => Wb::MidNumLet,
        b'\'' => Wb::SingleQuote,
        _ => Wb::Other,
    }
}

/// `wb` for every byte, looked up instead of matched on the hot path.
const WB: [Wb; 256] = {
    let mut table = [Wb::Other; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = wb(b as u8);
        b += 1;
    }
    table
};

/// Whether UAX #29 keeps bytes `i - 1` and `i` together (rules WB3 to WB13b).
fn joined(bytes: &[u8], i: usize) -> bool {
    use Wb::*;
    let cat = |j: usize| bytes.get(j).map_or(Other, |&b| WB[b as usize]);
    let (prev, next) = (WB[bytes[i - 1] as usize], WB[bytes[i] as usize]);
    let before = if i >= 2 { cat(i - 2) } else { Other };
    let after = cat(i + 1);
    let mid_letter = |c| matches!(c, MidLetter | MidNumLet | SingleQuote);
    let mid_num = |c| matches!(c, MidNum | MidNumLet | SingleQuote);
    let word = |c| matches!(c, Letter | Numeric | ExtendNumLet);
    match (prev, next) {
        (Cr, Lf) => true,
        (Cr | Lf | Newline, _) | (_, Cr | Lf | Newline) => false,
        (Space, Space) => true,
        (Letter | Numeric, Letter | Numeric) => true,
        (Letter, m) if mid_letter(m) => after == Letter,
        (m, Letter) if mid_letter(m) => before == Letter,
        (Numeric, m) if mid_num(m) => after == Numeric,
        (m, Numeric) if mid_num(m) => before == Numeric,
        (p, ExtendNumLet) => word(p),
        (ExtendNumLet, n) => word(n),
        _ => false,
    }
}

impl<'a> Iterator for AsciiWordBounds<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        if start >= bytes.len() {
            return None;
        }
        let mut end = start + 1;
        let alnum = |b: u8| b.is_ascii_alphanumeric();
        while end < bytes.len() {
            // The common case first: inside a run of letters and digits.
            let inside_run = alnum(bytes[end - 1]) && alnum(bytes[end]);
            if !inside_run && !joined(bytes, end) {
                break;
            }
            end += 1;
        }
        self.pos = end;
        Some((start, &self.text[start..end]))
    }
}

/// Maps token strings to dense u32 ids, shared by all items of an analyzer.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    ids: FxHashMap<Box<str>, u32>,
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
    fn ascii_scanner_agrees_with_uax29() {
        use rand::{Rng, SeedableRng};
        let alphabet = b"aZq09_.,;:'\" \t\r\n\x0b\x0c-!?()#$";
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(29);
        for _ in 0..20_000 {
            let len = rng.random_range(0..24);
            let text: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
                .collect();
            let fast: Vec<_> = AsciiWordBounds {
                text: &text,
                pos: 0,
            }
            .collect();
            let reference: Vec<_> = text.split_word_bound_indices().collect();
            assert_eq!(fast, reference, "{text:?}");
        }
        for text in [
            "can't stop",
            "3.14, 1,000.5; a.b",
            "e.g. x_1 _y 2a a2",
            "a:b 1:2",
            "''",
        ] {
            let fast: Vec<_> = AsciiWordBounds { text, pos: 0 }.collect();
            assert_eq!(
                fast,
                text.split_word_bound_indices().collect::<Vec<_>>(),
                "{text:?}"
            );
        }
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
