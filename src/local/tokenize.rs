//! Word-level tokenizer: a token is a word or one punctuation character, carrying the single
//! space that precedes it, so any text is exactly the concatenation of its tokens.

/// Characters that belong inside a word token.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits `text` into tokens; `tokenize(t).concat() == t` for every input.
pub fn tokenize(text: &str) -> Vec<&str> {
    let bytes_len = text.len();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let end_of = |idx: usize| chars.get(idx).map_or(bytes_len, |&(b, _)| b);
    while i < chars.len() {
        let (start, c) = chars[i];
        if c == ' ' {
            let mut j = i;
            while j < chars.len() && chars[j].1 == ' ' {
                j += 1;
            }
            let next_is_unit = j < chars.len() && !chars[j].1.is_whitespace();
            if !next_is_unit {
                out.push(&text[start..end_of(j)]);
                i = j;
                continue;
            }
            // Extra indentation becomes its own token; the last space joins the next unit.
            if j - i > 1 {
                out.push(&text[start..end_of(j - 1)]);
            }
            let unit_end = unit_end(&chars, j);
            out.push(&text[end_of(j - 1)..end_of(unit_end)]);
            i = unit_end;
        } else if c.is_whitespace() {
            out.push(&text[start..end_of(i + 1)]);
            i += 1;
        } else {
            let e = unit_end(&chars, i);
            out.push(&text[start..end_of(e)]);
            i = e;
        }
    }
    out
}

/// End index (in chars) of the word or punctuation unit starting at `i`.
fn unit_end(chars: &[(usize, char)], i: usize) -> usize {
    if !is_word_char(chars[i].1) {
        return i + 1;
    }
    let mut j = i + 1;
    while j < chars.len() {
        let c = chars[j].1;
        // An apostrophe between letters stays in the word ("Feynman's", "don't").
        let inner_apostrophe =
            (c == '\'' || c == '’') && chars.get(j + 1).is_some_and(|&(_, n)| n.is_alphabetic());
        if is_word_char(c) || inner_apostrophe {
            j += 1;
        } else {
            break;
        }
    }
    j
}

/// The lowercase word inside a token, or `None` for punctuation and whitespace.
pub fn word_key(token: &str) -> Option<String> {
    let w = token.trim_start_matches(' ');
    let first = w.chars().next()?;
    if is_word_char(first) {
        Some(w.to_lowercase())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_concatenate_to_the_text() {
        let cases = [
            "Richard Feynman was born in 1918.",
            "def f(x):\n    return x[::-1]\n",
            "  leading and trailing  ",
            "Feynman's \"quoted\" café, naïve — ok?\t\r\n",
            "",
        ];
        for t in cases {
            assert_eq!(tokenize(t).concat(), t, "{t:?}");
        }
    }

    #[test]
    fn words_carry_their_leading_space() {
        assert_eq!(
            tokenize("Feynman was born."),
            vec!["Feynman", " was", " born", "."]
        );
        assert_eq!(
            tokenize("x:\n    return"),
            vec!["x", ":", "\n", "   ", " return"]
        );
    }

    #[test]
    fn word_key_lowercases_and_skips_punctuation() {
        assert_eq!(word_key(" Bread").as_deref(), Some("bread"));
        assert_eq!(word_key("."), None);
        assert_eq!(word_key("\n"), None);
    }
}
