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
/// Bonus for the same expression read left to right, ignoring precedence: a likely slip.
pub const SLIP_BONUS: f32 = 1.5;

/// What kind of answer the prompt asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One of the lettered options.
    Choice,
    Number,
    /// A word or name, e.g. `Answer: <city>`.
    Free,
}

/// A prompt that asks for a final answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Asked {
    /// Candidates found in the prompt itself (options, numbers, computed values).
    pub candidates: Vec<Candidate>,
    /// The question without its options and answer instructions, plus the answer's type
    /// word (`<city>` → "city"): what the answer must go with.
    pub question: String,
    pub kind: Kind,
}

/// What `user` asks for, when it asks for a final answer.
pub fn detect(user: &str) -> Option<Asked> {
    let options = options(user);
    let placeholder = placeholder(user);
    let mut question: String = sentences(user)
        .into_iter()
        .filter(|s| !s.to_lowercase().contains("answer"))
        .filter(|s| {
            !options
                .iter()
                .any(|o| !o.text.is_empty() && s.contains(&o.text))
        })
        .collect::<Vec<_>>()
        .join(" ");
    if options.len() >= 2 {
        return Some(Asked {
            candidates: options,
            question,
            kind: Kind::Choice,
        });
    }
    if !user.to_lowercase().contains("answer") {
        return None;
    }
    let numbers = numbers(user);
    let kind = match placeholder.as_deref() {
        Some("number") => Kind::Number,
        Some(_) => Kind::Free,
        None if numbers.is_empty() => Kind::Free,
        None => Kind::Number,
    };
    if let Some(p) = placeholder {
        question.push(' ');
        question.push_str(&p);
    }
    Some(Asked {
        candidates: if kind == Kind::Number {
            numbers
        } else {
            Vec::new()
        },
        question,
        kind,
    })
}

/// The word in `<...>` after "Answer:", lowercased, e.g. "city".
fn placeholder(user: &str) -> Option<String> {
    let lower = user.to_lowercase();
    let at = lower.find("answer:")?;
    let rest = &lower[at..];
    let open = rest.find('<')?;
    let close = rest[open..].find('>')? + open;
    let word = rest[open + 1..close].trim();
    (!word.is_empty()).then(|| word.to_string())
}

/// The prompt split after . ? ! and line breaks (decimal points are not followed by a space).
fn sentences(user: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = user.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let end = match b {
            b'\n' => true,
            b'.' | b'?' | b'!' => bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace()),
            _ => false,
        };
        if end {
            let s = user[start..=i].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = i + 1;
        }
    }
    let s = user[start..].trim();
    if !s.is_empty() {
        out.push(s);
    }
    out
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
    // The longest chain `a op b op c …` in the prompt, with and without precedence.
    let mut best: Option<(usize, f64, f64)> = None;
    let mut k = 0;
    while k < values.len() {
        let mut nums = vec![values[k].2];
        let mut ops: Vec<char> = Vec::new();
        let mut m = k;
        while m + 1 < values.len() {
            let between: Vec<&str> = toks[values[m].1 + 1..values[m + 1].0]
                .iter()
                .copied()
                .filter(|t| !t.is_empty())
                .collect();
            let op = match between.as_slice() {
                ["+"] | ["plus"] => '+',
                ["-"] | ["minus"] => '-',
                ["*"] | ["x"] | ["×"] | ["times"] => '*',
                ["/"] | ["÷"] | ["divided", "by"] => '/',
                _ => break,
            };
            ops.push(op);
            nums.push(values[m + 1].2);
            m += 1;
        }
        if !ops.is_empty() && best.is_none_or(|b| ops.len() > b.0) {
            if let (Some(v), Some(slip)) = (evaluate(&nums, &ops), left_to_right(&nums, &ops)) {
                best = Some((ops.len(), v, slip));
            }
        }
        k = m + 1;
    }
    if let Some((_, v, slip)) = best {
        out.push(Candidate {
            label: format_number(v),
            text: String::new(),
            bonus: COMPUTED_BONUS,
        });
        let slip = format_number(slip);
        if slip != out[0].label {
            out.push(Candidate {
                label: slip,
                text: String::new(),
                bonus: SLIP_BONUS,
            });
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

/// `nums[0] ops[0] nums[1] …` with * and / before + and -; `None` on division by zero.
fn evaluate(nums: &[f64], ops: &[char]) -> Option<f64> {
    let mut terms: Vec<f64> = vec![nums[0]];
    let mut signs: Vec<char> = Vec::new();
    for (i, &op) in ops.iter().enumerate() {
        let x = nums[i + 1];
        match op {
            '*' | '/' => {
                let last = terms.last_mut()?;
                if op == '*' {
                    *last *= x;
                } else if x == 0.0 {
                    return None;
                } else {
                    *last /= x;
                }
            }
            _ => {
                signs.push(op);
                terms.push(x);
            }
        }
    }
    let mut total = terms[0];
    for (s, t) in signs.iter().zip(&terms[1..]) {
        total = if *s == '+' { total + t } else { total - t };
    }
    total.is_finite().then_some(total)
}

/// The same chain applied strictly left to right.
fn left_to_right(nums: &[f64], ops: &[char]) -> Option<f64> {
    let mut total = nums[0];
    for (i, &op) in ops.iter().enumerate() {
        let x = nums[i + 1];
        total = match op {
            '+' => total + x,
            '-' => total - x,
            '*' => total * x,
            _ if x == 0.0 => return None,
            _ => total / x,
        };
    }
    total.is_finite().then_some(total)
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

    fn labels(a: &Option<Asked>) -> Vec<&str> {
        a.iter()
            .flat_map(|a| a.candidates.iter().map(|c| c.label.as_str()))
            .collect()
    }

    #[test]
    fn finds_lettered_options_with_their_text() {
        let q = "Which element did Marie Curie discover?\nA) helium\nB) radium\nC) iron\nD) neon\nAnswer with a letter.";
        let c = detect(q);
        assert_eq!(labels(&c), ["A", "B", "C", "D"]);
        let c = c.unwrap_or_else(|| unreachable!());
        assert_eq!(c.candidates[1].text, "radium");
        assert_eq!(c.kind, Kind::Choice);
        // The question without options or instructions is what the answer must go with.
        assert_eq!(c.question, "Which element did Marie Curie discover?");
        let inline = detect("Pick one: (A) bread (B) rice. Answer:");
        assert_eq!(labels(&inline), ["A", "B"]);
    }

    #[test]
    fn numbers_and_computed_value() {
        let c = detect("What is 12 + 30? Give the final answer.");
        assert_eq!(labels(&c), ["42", "12", "30"]);
        let d = detect("Compute 7 times 8 and 2.5. Answer:");
        assert_eq!(labels(&d), ["56", "7", "8", "2.5"]);
        // Precedence, with the left-to-right slip as a weaker candidate.
        let e = detect("What is 12 + 17 * 4? End with a line 'Answer: <number>'.");
        assert_eq!(labels(&e)[..2], ["80", "116"]);
        let e = e.unwrap_or_else(|| unreachable!());
        assert_eq!(e.candidates[0].bonus, COMPUTED_BONUS);
        assert_eq!(e.kind, Kind::Number);
    }

    #[test]
    fn free_text_answers_carry_their_type() {
        let a = detect("What is the capital of Australia? End with a line 'Answer: <city>'.");
        let a = a.unwrap_or_else(|| unreachable!());
        assert_eq!(a.kind, Kind::Free);
        assert!(a.candidates.is_empty());
        assert_eq!(a.question, "What is the capital of Australia? city");
    }

    #[test]
    fn no_answer_line_unless_asked() {
        assert!(detect("Tell me about Richard Feynman in 3 paragraphs.").is_none());
        assert!(detect("Tell me about A) nothing").is_none());
    }
}
