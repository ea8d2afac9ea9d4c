//! lm-evaluation-harness `--log_samples` files (`samples_<task>_<time>.jsonl`): one object
//! per document and filter, with `doc_id` and `resps` — per request, the generations (several
//! with `repeats`). Each generation is one call of item `doc <doc_id>`; the raw `resps` are
//! used, not `filtered_resps`. A document logged again under another filter holds the same
//! generations and is skipped. Loglikelihood tasks log scores, not text, and are refused.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::{field_error, json_lines, object_of, ImportedCall, ItemInfo, Parsed};
use crate::error::InputError;

pub const DEFAULT_TARGET: &str = "lm-eval";

pub(super) fn parse(bytes: &[u8], file: &Path) -> Result<Parsed, InputError> {
    let mut parsed = Parsed::default();
    // doc_id → the filter its generations were first taken under.
    let mut first_filter: HashMap<String, Option<String>> = HashMap::new();
    for line in json_lines(bytes, file) {
        let (n, text) = line?;
        let object = object_of(text, file, n)?;
        let doc_id = match object.get("doc_id") {
            Some(Value::Number(id)) => id.to_string(),
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            None => {
                return Err(field_error(
                    file,
                    n,
                    "doc_id",
                    "missing; expected an lm-evaluation-harness --log_samples line",
                ))
            }
            Some(_) => {
                return Err(field_error(
                    file,
                    n,
                    "doc_id",
                    "expected a number or string",
                ))
            }
        };
        let filter = object
            .get("filter")
            .and_then(Value::as_str)
            .map(str::to_string);
        match first_filter.get(&doc_id) {
            Some(first) if *first != filter => continue,
            Some(_) => {}
            None => {
                first_filter.insert(doc_id.clone(), filter);
            }
        }
        let outputs = generations(object.get("resps"), file, n)?;
        let item = format!("doc {doc_id}");
        parsed
            .items
            .entry(item.clone())
            .or_insert_with(|| ItemInfo {
                user: None,
                expected: object
                    .get("target")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            });
        for output in outputs {
            parsed.calls.push(ImportedCall {
                target: DEFAULT_TARGET.to_string(),
                item: item.clone(),
                output: Ok(output),
                latency_ms: None,
                served: Vec::new(),
                usage: None,
            });
        }
    }
    Ok(parsed)
}

/// The generated texts of `resps`: a list (per request) of lists of strings, or of strings.
fn generations(resps: Option<&Value>, file: &Path, line: usize) -> Result<Vec<String>, InputError> {
    let Some(Value::Array(requests)) = resps else {
        return Err(field_error(
            file,
            line,
            "resps",
            "missing or not a list; expected the model's responses",
        ));
    };
    let not_text = |field: String| {
        field_error(
            file,
            line,
            &field,
            "not text: only generation tasks (generate_until) log their outputs; loglikelihood tasks log scores",
        )
    };
    let mut out = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        match request {
            Value::String(s) => out.push(s.clone()),
            Value::Array(gens) => {
                for (j, g) in gens.iter().enumerate() {
                    match g {
                        Value::String(s) => out.push(s.clone()),
                        _ => return Err(not_text(format!("resps[{i}][{j}]"))),
                    }
                }
            }
            _ => return Err(not_text(format!("resps[{i}]"))),
        }
    }
    Ok(out)
}
