//! One archive line: the envelope (`kind`, `seq`, `prev`), the body, and the hash seal.
//!
//! The hash covers the exact bytes written: the compact JSON of the line without its `hash`
//! field. The seal replaces the final `}` with `,"hash":"sha256:<hex>"}`, so the hashed bytes are
//! recovered by cutting the seal off again, never by re-serialising (which would forgive edits
//! such as `1e5` → `1E5`).

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::identity::{sha256_hex, to_hex};
use crate::error::InputError;

const SEAL_START: &[u8] = b",\"hash\":\"sha256:";
const SEAL_END: &[u8] = b"\"}";
const HEX_LEN: usize = 64;
const SEAL_LEN: usize = SEAL_START.len() + HEX_LEN + SEAL_END.len();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Header,
    Call,
    Close,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Header => "header",
            Kind::Call => "call",
            Kind::Close => "close",
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    kind: &'static str,
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    prev: Option<&'a str>,
    #[serde(flatten)]
    body: &'a T,
}

/// Writes the sealed line (with its `\n`) into `out`, replacing its contents; returns the hash
/// (`sha256:<hex>`) that the next line's `prev` must carry.
pub(crate) fn seal<T: Serialize>(
    out: &mut Vec<u8>,
    kind: Kind,
    seq: u64,
    prev: Option<&str>,
    body: &T,
) -> serde_json::Result<String> {
    out.clear();
    let envelope = Envelope {
        kind: kind.as_str(),
        seq,
        prev,
        body,
    };
    serde_json::to_writer(&mut *out, &envelope)?;
    let hex = sha256_hex(out);
    // Compact JSON of an object always ends in `}`; the seal takes its place.
    out.pop();
    out.extend_from_slice(SEAL_START);
    out.extend_from_slice(hex.as_bytes());
    out.extend_from_slice(SEAL_END);
    out.push(b'\n');
    Ok(format!("sha256:{hex}"))
}

/// Why a line's seal does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SealError {
    /// The line does not end in `,"hash":"sha256:<64 lowercase hex>"}`.
    Missing,
    /// The hash does not match the bytes.
    Mismatch,
}

/// Checks the seal of one line (without its `\n`) and returns its hash (`sha256:<hex>`).
pub(crate) fn unseal(line: &[u8]) -> Result<String, SealError> {
    if line.len() < SEAL_LEN + 1 || !line.ends_with(SEAL_END) {
        return Err(SealError::Missing);
    }
    let body_end = line.len() - SEAL_LEN;
    let hex = &line[body_end + SEAL_START.len()..line.len() - SEAL_END.len()];
    if &line[body_end..body_end + SEAL_START.len()] != SEAL_START
        || !hex
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return Err(SealError::Missing);
    }
    let mut hasher = Sha256::new();
    hasher.update(&line[..body_end]);
    hasher.update(b"}");
    let actual = to_hex(&hasher.finalize());
    if actual.as_bytes() != hex {
        return Err(SealError::Mismatch);
    }
    Ok(format!("sha256:{actual}"))
}

/// A parsed line: its envelope and the remaining fields.
#[derive(Debug)]
pub(crate) struct Line<'a> {
    pub kind: Kind,
    pub seq: u64,
    pub prev: Option<String>,
    pub body: Body<'a>,
}

/// The fields of a line other than the envelope and the hash.
#[derive(Debug)]
pub(crate) enum Body<'a> {
    /// Raw JSON members (`"a":1,"b":2`) at byte `offset` of the line, as reprise lays lines
    /// out; decoded straight into the record type without an intermediate `Value`.
    Members { json: &'a [u8], offset: usize },
    /// Any other layout (say, a line rewritten by `jq`), already parsed.
    Map(Map<String, Value>),
}

impl Body<'_> {
    /// The fields as a JSON map.
    pub(crate) fn into_map(
        self,
        file: &Path,
        line_no: usize,
    ) -> Result<Map<String, Value>, InputError> {
        match self {
            Body::Map(map) => Ok(map),
            Body::Members { json, offset } => serde_json::from_slice(&object_of(json))
                .map_err(|e| syntax_error(&e, offset, file, line_no)),
        }
    }
}

/// Parses one line (without its `\n`); `line_no` is 1-based, for messages.
pub(crate) fn parse<'a>(
    bytes: &'a [u8],
    file: &Path,
    line_no: usize,
) -> Result<Line<'a>, InputError> {
    match split(bytes) {
        Some(line) => Ok(line),
        None => parse_any_layout(bytes, file, line_no),
    }
}

/// The envelope of a line laid out as the writer lays it out:
/// `{"kind":"<kind>","seq":<n>[,"prev":"sha256:<hex>"],<members>,"hash":"sha256:<hex>"}`.
fn split(line: &[u8]) -> Option<Line<'_>> {
    let rest = line.strip_prefix(b"{\"kind\":\"")?;
    let (kind, rest) = [Kind::Header, Kind::Call, Kind::Close]
        .into_iter()
        .find_map(|kind| Some((kind, rest.strip_prefix(kind.as_str().as_bytes())?)))?;
    let rest = rest.strip_prefix(b"\",\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || (digits > 1 && rest[0] == b'0') {
        return None;
    }
    let seq: u64 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let mut rest = &rest[digits..];
    let mut prev = None;
    if let Some(after) = rest.strip_prefix(b",\"prev\":\"sha256:") {
        let hex = after.get(..HEX_LEN)?;
        if !is_hex(hex) {
            return None;
        }
        prev = Some(format!("sha256:{}", std::str::from_utf8(hex).ok()?));
        rest = after[HEX_LEN..].strip_prefix(b"\"")?;
    }
    let rest = rest.strip_prefix(b",")?;
    let members = rest.get(..rest.len().checked_sub(SEAL_LEN)?)?;
    if members.is_empty() || !is_seal(&rest[members.len()..]) {
        return None;
    }
    Some(Line {
        kind,
        seq,
        prev,
        body: Body::Members {
            json: members,
            offset: line.len() - rest.len(),
        },
    })
}

fn is_hex(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

fn is_seal(bytes: &[u8]) -> bool {
    bytes.len() == SEAL_LEN
        && bytes.starts_with(SEAL_START)
        && bytes.ends_with(SEAL_END)
        && is_hex(&bytes[SEAL_START.len()..SEAL_START.len() + HEX_LEN])
}

/// `{` + members + `}`.
fn object_of(members: &[u8]) -> Vec<u8> {
    let mut object = Vec::with_capacity(members.len() + 2);
    object.push(b'{');
    object.extend_from_slice(members);
    object.push(b'}');
    object
}

fn parse_any_layout<'a>(
    bytes: &'a [u8],
    file: &Path,
    line_no: usize,
) -> Result<Line<'a>, InputError> {
    let at = |message: String| InputError::new(file, message).at_line(Some(line_no));
    let mut body: Map<String, Value> =
        serde_json::from_slice(bytes).map_err(|e| syntax_error(&e, 0, file, line_no))?;
    let kind = match body.remove("kind") {
        Some(Value::String(kind)) => match kind.as_str() {
            "header" => Kind::Header,
            "call" => Kind::Call,
            "close" => Kind::Close,
            other => {
                return Err(at(format!(
                    "unknown record kind `{}`, expected `header`, `call` or `close`",
                    other.escape_debug()
                ))
                .field("kind"))
            }
        },
        Some(_) => return Err(at("expected a string".to_string()).field("kind")),
        None => return Err(at("missing; not a reprise archive record".to_string()).field("kind")),
    };
    let seq = match body.remove("seq") {
        Some(seq) => seq
            .as_u64()
            .ok_or_else(|| at("expected a non-negative integer".to_string()).field("seq"))?,
        None => return Err(at("missing".to_string()).field("seq")),
    };
    let prev = match body.remove("prev") {
        Some(Value::String(prev)) => Some(prev),
        Some(_) => return Err(at("expected a string".to_string()).field("prev")),
        None => None,
    };
    body.remove("hash");
    Ok(Line {
        kind,
        seq,
        prev,
        body: Body::Map(body),
    })
}

/// A JSON error from parsing a whole line (or members found at byte `offset` of it).
fn syntax_error(e: &serde_json::Error, offset: usize, file: &Path, line_no: usize) -> InputError {
    let message = if e.is_data() {
        "not a JSON object; not a reprise archive record".to_string()
    } else {
        // The members were parsed behind an added `{`, one byte before `offset`.
        let column = (e.column() + offset).saturating_sub(usize::from(offset > 0));
        format!("not valid JSON (column {column}): {}", strip_position(e))
    };
    InputError::new(file, message).at_line(Some(line_no))
}

/// Turns the body of a line into its record type, naming the offending field on failure.
pub(crate) fn decode<T: DeserializeOwned>(
    body: Body<'_>,
    file: &Path,
    line_no: usize,
) -> Result<T, InputError> {
    let result: Result<T, _> = match body {
        Body::Map(map) => serde_path_to_error::deserialize(Value::Object(map)),
        Body::Members { json, offset } => {
            let object = object_of(json);
            // Fast path without path tracking; on failure, decode again to name the field.
            if let Ok(value) = serde_json::from_slice(&object) {
                return Ok(value);
            }
            let syntax = |e: &serde_json::Error| syntax_error(e, offset, file, line_no);
            // A field error in members that are not one well-formed object (`"a":1},{"b":2`)
            // is really a syntax error; say so.
            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&object) {
                return Err(syntax(&e));
            }
            let mut de = serde_json::Deserializer::from_slice(&object);
            serde_path_to_error::deserialize(&mut de)
        }
    };
    result.map_err(|e| {
        let path = e.path().to_string();
        let error = InputError::new(file, strip_position(e.inner())).at_line(Some(line_no));
        if path.is_empty() || path == "." {
            error
        } else {
            error.field(path)
        }
    })
}

/// serde_json appends "at line 1 column 9" to its messages; we report positions ourselves.
fn strip_position(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn seal_round_trips_and_catches_any_change() {
        let mut out = Vec::new();
        let body = json!({"x": 1e5, "text": "a\"b\nc"});
        let hash = seal(&mut out, Kind::Call, 3, Some("sha256:00"), &body).unwrap();
        let line = &out[..out.len() - 1];
        let text = std::str::from_utf8(line).unwrap();
        assert!(
            text.starts_with(r#"{"kind":"call","seq":3,"prev":"sha256:00","#),
            "{text}"
        );
        assert!(text.ends_with(&format!(r#","hash":"{hash}"}}"#)), "{text}");
        assert_eq!(unseal(line), Ok(hash.clone()));
        // Same value, different spelling: still an edit.
        let respelled = text.replace("100000.0", "1E5");
        assert_ne!(respelled, text);
        assert_eq!(unseal(respelled.as_bytes()), Err(SealError::Mismatch));
        assert_eq!(unseal(b"{\"a\":1}"), Err(SealError::Missing));
        let upper = text.replace(&hash[7..], &hash[7..].to_uppercase());
        assert_eq!(unseal(upper.as_bytes()), Err(SealError::Missing));
    }

    #[test]
    fn parse_names_the_bad_envelope_field() {
        let file = Path::new("s.jsonl");
        let e = parse(br#"{"kind":"calls","seq":1}"#, file, 4).unwrap_err();
        assert_eq!(
            e.to_string(),
            "s.jsonl:4: field `kind`: unknown record kind `calls`, expected `header`, `call` or `close`"
        );
        let e = parse(br#"{"kind":"call","seq":-1}"#, file, 2).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("seq"));
        let e = parse(br#"{"kind":"call","#, file, 2).unwrap_err();
        assert!(e.message.starts_with("not valid JSON (column 15)"), "{e}");
        let e = parse(b"[1]", file, 2).unwrap_err();
        assert!(e.message.starts_with("not a JSON object"), "{e}");
    }
}
