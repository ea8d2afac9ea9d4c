//! Final-answer lines: when the prompt asks for an answer, the model ends its text with
//! `\nAnswer: X`, X chosen by its own scoring among candidates found in the prompt.

use super::tokenize::tokenize;

/// One possible answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// What is printed after `Answer: `.
    pub label: String,
    /// The option's text (multiple choice), scored against what the model wrote.
    pub text: String,
    /// A prior in score units: a value the model can compute from the prompt gets one.
    pub bonus: f32,
}

/// Score bonus for the value computed from an arithmetic expression in the prompt.
pub const COMPUTED_BONUS: f32 = 3.0;

/// The answer candidates, when `user` asks for a final answer and offers some.
pub fn detect(user: &str) -> Option<Vec<Candidate>> {
    let options = options(user);
    if options.len() >= 2 {
        return Some(options);
    }
    if !user.to_lowercase().contains("answer") {
        return None;
    }
    let numbers = numbers(user);
    (!numbers.is_empty()).then_some(numbers)
}

/// Options such as `A) text`, `(B) text`, `C. text` or `D: text`, in order A, B, C, D.
fn options(user: &str) -> Vec<Candidate> {
    let chars: Vec<(usize, char)> = user.char_indices().collect();
    // (letter, start of marker, start of option text)
    let mut markers: Vec<(char, usize, usize)> = Vec::new();
    for i in 0..chars.len() {
        let (pos, c) = chars[i];
        let want = (b'A' + markers.len() as u8) as char;
        if c != want || markers.len() >= 4 {
            continue;
        }
        let before = if i == 0 { None } else { Some(chars[i - 1].1) };
        let paren = before == Some('(');
        let boundary = match before {
            None => true,
            Some(b) => b.is_whitespace() || b == '(',
        };
        let after = chars.get(i + 1).map(|&(_, a)| a);
        let closes = matches!(after, Some(')' | '.' | ':'));
        let spaced = chars.get(i + 2).is_none_or(|&(_, s)| s.is_whitespace());
        if boundary && closes && spaced {
            let start = if paren { chars[i - 1].0 } else { pos };
            let text_start = chars.get(i + 2).map_or(user.len(), |&(p, _)| p);
            markers.push((c, start, text_start));
        }
    }
    let mut out = Vec::new();
    for (k, &(letter, _, text_start)) in markers.iter().enumerate() {
        let end = markers.get(k + 1).map_or(user.len(), |m| m.1);
        let text = user[text_start..end].lines().next().unwrap_or("").trim();
        out.push(Candidate {
            label: letter.to_string(),
            text: text.to_string(),
            bonus: 0.0,
        });
    }
    out
}

/// Numbers written in the prompt, first occurrence first; a value computed from the first
/// `a op b` expression (op: + - * x × / ÷ plus minus times) comes first with a bonus.
fn numbers(user: &str) -> Vec<Candidate> {
    let raw = tokenize(user);
    let toks: Vec<&str> = raw.iter().map(|t| t.trim()).collect();
    let mut values: Vec<(usize, usize, f64, String)> = Vec::new(); // (first tok, last tok, value, text)
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            let mut text = t.to_string();
            let mut last = i;
            let decimal = toks.get(i + 1) == Some(&".")
                && toks
                    .get(i + 2)
                    .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
            // "3.5" but not a sentence-ending "3. Next": the raw token carries no space.
            if decimal && !raw[i + 2].starts_with(' ') {
                text = format!("{t}.{}", toks[i + 2]);
                last = i + 2;
            }
            if let Ok(v) = text.parse::<f64>() {
                values.push((i, last, v, text));
            }
            i = last + 1;
        } else {
            i += 1;
        }
    }
    let mut out: Vec<Candidate> = Vec::new();
    for w in values.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let between: Vec<&str> = toks[a.1 + 1..b.0]
            .iter()
            .copied()
            .filter(|t| !t.is_empty())
            .collect();
        let op = match between.as_slice() {
            ["+"] | ["plus"] => Some(a.2 + b.2),
            ["-"] | ["minus"] => Some(a.2 - b.2),
            ["*"] | ["x"] | ["×"] | ["times"] => Some(a.2 * b.2),
            ["/"] | ["÷"] | ["divided", "by"] if b.2 != 0.0 => Some(a.2 / b.2),
            _ => None,
        };
        if let Some(v) = op.filter(|v| v.is_finite()) {
            out.push(Candidate {
                label: format_number(v),
                text: String::new(),
                bonus: COMPUTED_BONUS,
            });
            break;
        }
    }
    for (_, _, _, text) in values {
        if !out.iter().any(|c| c.label == text) {
            out.push(Candidate {
                label: text,
                text: String::new(),
                bonus: 0.0,
            });
        }
    }
    out
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(c: &[Candidate]) -> Vec<&str> {
        c.iter().map(|c| c.label.as_str()).collect()
    }

    #[test]
    fn finds_lettered_options_with_their_text() {
        let q = "Which element did Marie Curie discover?\nA) helium\nB) radium\nC) iron\nD) neon\nAnswer with a letter.";
        let c = detect(q).unwrap_or_default();
        assert_eq!(labels(&c), ["A", "B", "C", "D"]);
        assert_eq!(c[1].text, "radium");
        let inline = detect("Pick one: (A) bread (B) rice. Answer:").unwrap_or_default();
        assert_eq!(labels(&inline), ["A", "B"]);
        assert_eq!(inline[0].text, "bread");
    }

    #[test]
    fn numbers_and_computed_value() {
        let c = detect("What is 12 + 30? Give the final answer.").unwrap_or_default();
        assert_eq!(labels(&c), ["42", "12", "30"]);
        assert_eq!(c[0].bonus, COMPUTED_BONUS);
        let d = detect("Compute 7 times 8 and 2.5. Answer:").unwrap_or_default();
        assert_eq!(labels(&d), ["56", "7", "8", "2.5"]);
    }

    #[test]
    fn no_answer_line_unless_asked() {
        assert!(detect("Tell me about Richard Feynman in 3 paragraphs.").is_none());
        assert!(detect("Tell me about A) nothing").is_none());
    }
}
