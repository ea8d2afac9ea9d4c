//! Conditions identity and session file names.

use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// `sha256:<hex>` over the RFC 8785 (JCS) canonical JSON of `conditions`: key order, number
/// spelling and string escapes do not change it; any change of value does.
pub fn identity_of(conditions: &serde_json::Value) -> String {
    // A `Value` holds no NaN/infinity and only string keys, so canonicalisation cannot fail;
    // the fallback keeps this total without a panic path.
    let canonical = serde_json_canonicalizer::to_vec(conditions)
        .unwrap_or_else(|_| serde_json::to_vec(conditions).unwrap_or_default());
    format!("sha256:{}", sha256_hex(&canonical))
}

/// The first 12 hex digits of an identity, as shown in file names and lists.
pub fn short_identity(identity: &str) -> &str {
    let hex = identity.strip_prefix("sha256:").unwrap_or(identity);
    // Cut on a char boundary even if the identity is not hex (it comes from files).
    let end = hex
        .char_indices()
        .nth(12)
        .map_or(hex.len(), |(index, _)| index);
    &hex[..end]
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// Lowercase hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `YYYYMMDD-HHMMSS-<protocol-slug>-<short identity>.jsonl`, the time in UTC.
pub fn session_file_name(started: SystemTime, protocol_name: &str, identity: &str) -> String {
    // "2024-05-01T12:34:56Z": pick the digits out of the fixed-width RFC 3339 form.
    let stamp = humantime::format_rfc3339_seconds(started).to_string();
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    let (date, time) = digits.split_at(digits.len().min(8));
    format!(
        "{date}-{time}-{}-{}.jsonl",
        slug(protocol_name),
        short_identity(identity)
    )
}

/// Lowercase ASCII letters, digits and single dashes; at most 40 chars; never empty.
fn slug(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if slug.len() >= 40 {
            break;
        }
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "session".to_string()
    } else {
        slug.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use serde_json::json;

    use super::*;

    fn canonical(json: &str) -> String {
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        String::from_utf8(serde_json_canonicalizer::to_vec(&value).unwrap()).unwrap()
    }

    #[test]
    fn canonical_form_follows_rfc_8785() {
        // The example of RFC 8785 section 3.2.2 (numbers, literals, string escapes).
        let input = r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        let expected = r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#;
        assert_eq!(canonical(input), expected);
        // Keys sort by UTF-16 code units (RFC 8785 section 3.2.3).
        assert_eq!(
            canonical(r#"{"b":1,"a":{"z":1.0,"y":1e21},"\u00e9":0,"A":0}"#),
            r#"{"A":0,"a":{"y":1e+21,"z":1},"b":1,"é":0}"#
        );
    }

    #[test]
    fn identity_ignores_spelling_but_not_values() {
        let a = identity_of(&json!({"model": "m", "temperature": 1.0, "seed": 7}));
        let b: serde_json::Value =
            serde_json::from_str(r#"{ "seed" : 7, "temperature": 1, "model": "\u006d" }"#).unwrap();
        assert_eq!(a, identity_of(&b));
        assert!(a.starts_with("sha256:") && a.len() == 7 + 64, "{a}");
        let c = identity_of(&json!({"model": "m", "temperature": 0.7, "seed": 7}));
        assert_ne!(a, c);
        // A known value pins the hash construction itself: sha256 of `{}`.
        assert_eq!(
            identity_of(&json!({})),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn file_name_has_utc_time_slug_and_short_identity() {
        let started = UNIX_EPOCH + Duration::from_secs(1_714_566_896); // 2024-05-01T12:34:56Z
        let identity = "sha256:0123456789abcdef0123";
        assert_eq!(
            session_file_name(started, "Capital Cities (v2)!", identity),
            "20240501-123456-capital-cities-v2-0123456789ab.jsonl"
        );
        assert_eq!(
            session_file_name(started, "  ../../etc ", identity),
            "20240501-123456-etc-0123456789ab.jsonl"
        );
        assert_eq!(
            session_file_name(started, "日本", identity),
            "20240501-123456-session-0123456789ab.jsonl"
        );
        let long = session_file_name(started, &"a".repeat(100), identity);
        assert_eq!(
            long,
            format!("20240501-123456-{}-0123456789ab.jsonl", "a".repeat(40))
        );
    }

    #[test]
    fn short_identity_is_safe_on_odd_input() {
        assert_eq!(short_identity("sha256:abcdef0123456789"), "abcdef012345");
        assert_eq!(short_identity("abc"), "abc");
        assert_eq!(short_identity("ééééééééééééééé"), "éééééééééééé");
    }
}
