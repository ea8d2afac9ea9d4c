//! promptfoo's `promptfoo eval -o out.json`: `{"results": {"results": [EvaluateResult…]}}`
//! (summary versions 2 and 3). Each result is one call: target = the provider's label or id,
//! item = the test (`testIdx`) — with the prompt's label where the file has several prompts —
//! output = `response.output` (JSON output kept as compact JSON text). A result with an error
//! and no output is archived as a failed call.

use std::collections::HashSet;
use std::path::Path;

use serde_json::Value;

use super::{ImportedCall, ItemInfo, Parsed};
use crate::error::InputError;
use crate::record::Usage;

pub const DEFAULT_TARGET: &str = "promptfoo";

pub(super) fn parse(bytes: &[u8], file: &Path) -> Result<Parsed, InputError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
        InputError::new(file, format!("not valid JSON: {e}")).at_line(Some(e.line()))
    })?;
    let Some(results) = doc
        .get("results")
        .and_then(|r| r.get("results"))
        .and_then(Value::as_array)
    else {
        return Err(InputError::new(
            file,
            "no `results.results` array; expected the JSON written by `promptfoo eval -o out.json`",
        )
        .field("results.results"));
    };
    // The file is one JSON document; errors name the result, the line is where it is not known.
    let at = |i: usize, field: &str, message: &str| {
        InputError::new(file, message).field(format!("results.results[{i}].{field}"))
    };
    let prompt_label = |r: &Value| -> Option<String> {
        let p = &r["prompt"];
        p["label"]
            .as_str()
            .or_else(|| p["raw"].as_str())
            .map(str::to_string)
    };
    let labels: HashSet<Option<String>> = results.iter().map(prompt_label).collect();
    let several_prompts = labels.len() > 1;

    let mut parsed = Parsed::default();
    for (i, r) in results.iter().enumerate() {
        if !r.is_object() {
            return Err(at(i, "", "expected an object").field(format!("results.results[{i}]")));
        }
        let provider = &r["provider"];
        let target = match provider {
            Value::String(s) => s.clone(),
            _ => provider["label"]
                .as_str()
                .filter(|s| !s.is_empty())
                .or_else(|| provider["id"].as_str())
                .unwrap_or(DEFAULT_TARGET)
                .to_string(),
        };
        let Some(test) = r["testIdx"].as_u64() else {
            return Err(at(i, "testIdx", "missing; expected the test's index"));
        };
        let item = match (several_prompts, prompt_label(r)) {
            (true, Some(label)) => format!("{label} · test {test}"),
            _ => format!("test {test}"),
        };
        let response = &r["response"];
        let output = match &response["output"] {
            Value::String(s) => Ok(s.clone()),
            Value::Null => Err(r["error"]
                .as_str()
                .or_else(|| response["error"].as_str())
                .unwrap_or("no output")
                .to_string()),
            other => Ok(other.to_string()),
        };
        let latency_ms = match &r["latencyMs"] {
            Value::Null => None,
            v => match v.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 => Some(x),
                _ => {
                    return Err(at(
                        i,
                        "latencyMs",
                        "expected a non-negative number of milliseconds",
                    ))
                }
            },
        };
        let usage = match (
            response["tokenUsage"]["prompt"].as_u64(),
            response["tokenUsage"]["completion"].as_u64(),
        ) {
            (Some(prompt_tokens), Some(completion_tokens)) => Some(Usage {
                prompt_tokens,
                completion_tokens,
                reasoning_tokens: None,
            }),
            _ => None,
        };
        parsed
            .items
            .entry(item.clone())
            .or_insert_with(|| ItemInfo {
                user: r["prompt"]["raw"].as_str().map(str::to_string),
                expected: None,
            });
        parsed.calls.push(ImportedCall {
            target,
            item,
            output,
            latency_ms,
            served: Vec::new(),
            usage,
        });
    }
    Ok(parsed)
}
