//! Completions on the wire: the `chat.completion` object, and the `chat.completion.chunk`
//! events of a stream, as OpenAI sends them.

use serde_json::{json, Value};

use crate::local::Generation;

/// What every response and chunk repeats.
#[derive(Debug, Clone)]
pub struct Meta {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: String,
}

/// An f32 as the shortest decimal that reads back as the same f32 (`-0.31`, not
/// `-0.3100000023841858`).
fn short(x: f32) -> Value {
    format!("{x}")
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

fn entry(token: &str, logprob: f32) -> Value {
    json!({"token": token, "logprob": short(logprob), "bytes": token.as_bytes()})
}

/// `logprobs.content[i]` for token `i`.
fn token_logprob(g: &Generation, i: usize) -> Value {
    let mut e = entry(&g.tokens[i], g.logprobs[i]);
    let top: Vec<Value> = g
        .top_logprobs
        .get(i)
        .map(|alts| alts.iter().map(|(t, lp)| entry(t, *lp)).collect())
        .unwrap_or_default();
    e["top_logprobs"] = Value::Array(top);
    e
}

fn usage(g: &Generation) -> Value {
    let completion = g.tokens.len() as u64;
    let prompt = u64::from(g.prompt_tokens);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    })
}

/// The non-streaming response body.
pub fn completion(meta: &Meta, g: &Generation, logprobs: bool) -> Value {
    let logprobs = if logprobs {
        json!({
            "content": (0..g.tokens.len()).map(|i| token_logprob(g, i)).collect::<Vec<_>>(),
            "refusal": null,
        })
    } else {
        Value::Null
    };
    json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": g.text, "refusal": null},
            "logprobs": logprobs,
            "finish_reason": g.finish_reason.as_str(),
        }],
        "usage": usage(g),
        "service_tier": "default",
        "system_fingerprint": meta.system_fingerprint,
    })
}

/// The chunks of a stream, before `[DONE]`: the role, one chunk per token, the finish reason,
/// then (with `include_usage`) the usage chunk with no choices.
pub fn chunks(meta: &Meta, g: &Generation, logprobs: bool, include_usage: bool) -> Vec<Value> {
    let chunk = |delta: Value, lp: Value, finish: Value| {
        let mut c = json!({
            "id": meta.id,
            "object": "chat.completion.chunk",
            "created": meta.created,
            "model": meta.model,
            "service_tier": "default",
            "system_fingerprint": meta.system_fingerprint,
            "choices": [{"index": 0, "delta": delta, "logprobs": lp, "finish_reason": finish}],
        });
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let mut out = Vec::with_capacity(g.tokens.len() + 3);
    out.push(chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        Value::Null,
        Value::Null,
    ));
    for (i, token) in g.tokens.iter().enumerate() {
        let lp = if logprobs {
            json!({"content": [token_logprob(g, i)], "refusal": null})
        } else {
            Value::Null
        };
        out.push(chunk(json!({"content": token}), lp, Value::Null));
    }
    out.push(chunk(
        json!({}),
        Value::Null,
        json!(g.finish_reason.as_str()),
    ));
    if include_usage {
        let mut last = chunk(Value::Null, Value::Null, Value::Null);
        last["choices"] = json!([]);
        last["usage"] = usage(g);
        out.push(last);
    }
    out
}

/// One server-sent event.
pub fn event(data: &str) -> String {
    format!("data: {data}\n\n")
}

/// The last event of every complete stream.
pub const DONE: &str = "data: [DONE]\n\n";
