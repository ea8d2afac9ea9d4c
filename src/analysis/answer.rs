//! Answer extraction: the protocol's regex (one capture group), then its normalisation steps.

use regex::Regex;

use crate::protocol::{AnswerSpec, Normalize};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AnswerPatternError {
    #[error("answer pattern is not a valid regex: {0}")]
    Invalid(String),
    #[error("answer pattern must have exactly one capture group, it has {0}")]
    Groups(usize),
}

/// A compiled answer specification.
#[derive(Debug, Clone)]
pub struct AnswerExtractor {
    regex: Regex,
    normalize: Vec<Normalize>,
}

impl AnswerExtractor {
    pub fn new(spec: &AnswerSpec) -> Result<Self, AnswerPatternError> {
        let regex =
            Regex::new(&spec.pattern).map_err(|e| AnswerPatternError::Invalid(e.to_string()))?;
        let groups = regex.captures_len() - 1;
        if groups != 1 {
            return Err(AnswerPatternError::Groups(groups));
        }
        Ok(AnswerExtractor {
            regex,
            normalize: spec.normalize.clone(),
        })
    }

    /// Group 1 of the first match, normalised; None when nothing matches.
    pub fn extract(&self, text: &str) -> Option<String> {
        let caps = self.regex.captures(text)?;
        let raw = caps.get(1)?.as_str();
        Some(normalize(raw, &self.normalize))
    }

    /// Applies the normalisation steps (used for expected answers too).
    pub fn normalize(&self, text: &str) -> String {
        normalize(text, &self.normalize)
    }
}

/// Applies normalisation steps in order.
pub fn normalize(text: &str, steps: &[Normalize]) -> String {
    let mut s = text.to_string();
    for step in steps {
        s = match step {
            Normalize::Trim => s.trim().to_string(),
            Normalize::Lowercase => s.to_lowercase(),
            Normalize::CollapseWhitespace => collapse_whitespace(&s),
            Normalize::StripPunctuation => s
                .trim_end_matches(['.', '!', '?', ',', ';', ':'])
                .to_string(),
        };
    }
    s
}

fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_run = false;
    for c in s.chars() {
        if c.is_whitespace() {
            if !in_run {
                out.push(' ');
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    out
}

/// Extracts the answer from `text` per `spec`; None when the pattern does not match or is
/// invalid. Compiles the pattern on every call: use [`AnswerExtractor`] in loops.
pub fn extract_answer(spec: &AnswerSpec, text: &str) -> Option<String> {
    AnswerExtractor::new(spec).ok()?.extract(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pattern: &str, normalize: Vec<Normalize>) -> AnswerSpec {
        AnswerSpec {
            pattern: pattern.into(),
            normalize,
        }
    }

    #[test]
    fn extracts_first_match_then_normalises_in_order() {
        let s = spec(
            r"(?i)answer:\s*(.+)",
            vec![
                Normalize::Trim,
                Normalize::StripPunctuation,
                Normalize::Lowercase,
            ],
        );
        assert_eq!(
            extract_answer(&s, "Thinking...\nAnswer:  Paris!! \nAnswer: Rome"),
            Some("paris".into())
        );
        assert_eq!(extract_answer(&s, "no idea"), None);
    }

    #[test]
    fn collapse_whitespace_joins_runs() {
        assert_eq!(
            normalize(" a \t b\n\nc", &[Normalize::CollapseWhitespace]),
            " a b c"
        );
        assert_eq!(
            normalize(
                "  New   York ",
                &[Normalize::CollapseWhitespace, Normalize::Trim]
            ),
            "New York"
        );
    }

    #[test]
    fn rejects_bad_patterns() {
        assert!(matches!(
            AnswerExtractor::new(&spec("(a", vec![])),
            Err(AnswerPatternError::Invalid(_))
        ));
        assert_eq!(
            AnswerExtractor::new(&spec("(a)(b)", vec![])).err(),
            Some(AnswerPatternError::Groups(2))
        );
        assert_eq!(extract_answer(&spec("(a", vec![]), "a"), None);
    }
}
