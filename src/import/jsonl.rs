//! The plain JSON Lines import: one object per line with `item` and `output` (strings,
//! required), optional `target` (default `imported`), `latency_ms` (number) and `model`
//! (string, archived as `served.model`). Other fields are ignored.

use std::path::Path;

use serde_json::Value;

use super::{field_error, json_lines, latency, object_of, ImportedCall, Parsed};
use crate::error::InputError;

/// The target of lines that name none.
pub const DEFAULT_TARGET: &str = "imported";

pub(super) fn parse(bytes: &[u8], file: &Path) -> Result<Parsed, InputError> {
    let mut parsed = Parsed::default();
    for line in json_lines(bytes, file) {
        let (n, text) = line?;
        let object = object_of(text, file, n)?;
        let string = |field: &str, required: bool| -> Result<Option<String>, InputError> {
            match object.get(field) {
                Some(Value::String(s)) => Ok(Some(s.clone())),
                None | Some(Value::Null) if !required => Ok(None),
                None => Err(field_error(file, n, field, "missing; expected a string")),
                Some(_) => Err(field_error(file, n, field, "expected a string")),
            }
        };
        let item = string("item", true)?.unwrap_or_default();
        if item.is_empty() {
            return Err(field_error(file, n, "item", "empty; name the item"));
        }
        let output = string("output", true)?.unwrap_or_default();
        let target = string("target", false)?.unwrap_or_else(|| DEFAULT_TARGET.to_string());
        if target.is_empty() {
            return Err(field_error(
                file,
                n,
                "target",
                "empty; name the target or leave it out",
            ));
        }
        let latency_ms = latency(
            object.get("latency_ms").unwrap_or(&Value::Null),
            file,
            n,
            "latency_ms",
        )?;
        let served = string("model", false)?
            .map(|m| vec![("model".to_string(), m)])
            .unwrap_or_default();
        parsed.calls.push(ImportedCall {
            target,
            item,
            output: Ok(output),
            latency_ms,
            served,
            usage: None,
        });
    }
    Ok(parsed)
}
