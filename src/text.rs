//! Text from models and archives is data: before it reaches a terminal, every control
//! character (C0, DEL, C1) becomes a visible, inert stand-in, so no escape sequence survives.

use std::borrow::Cow;

/// `s` with control characters replaced: C0 and DEL by their Unicode control pictures
/// (ESC → ␛, newline → ␊), C1 by U+FFFD. Everything else is kept.
pub fn inert(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| match c as u32 {
                0x00..=0x1f => char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'),
                0x7f => '\u{2421}',
                0x80..=0x9f => '\u{fffd}',
                _ => c,
            })
            .collect(),
    )
}

/// Parameters held as f32 (a temperature of 0.7 is recorded as 0.699999988079071) are shown
/// as the f32 they were: `0.7`. Other floats keep every digit.
pub fn parameter_float(x: f64) -> String {
    let narrow = x as f32;
    let s = if f64::from(narrow) == x {
        narrow.to_string()
    } else {
        x.to_string()
    };
    if s.contains(['.', 'e', 'i', 'N']) {
        s
    } else {
        format!("{s}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_become_inert() {
        let hostile = "ok\x1b[2J\x1b]0;title\x07\u{9b}31m\r\nend\x7f";
        let safe = inert(hostile);
        assert!(!safe.chars().any(char::is_control), "{safe:?}");
        assert_eq!(safe, "ok␛[2J␛]0;title␇\u{fffd}31m␍␊end␡");
        assert!(matches!(inert("plain café"), Cow::Borrowed(_)));
    }
}
