//! Reading a `POST /v1/chat/completions` body as OpenAI does: unknown arguments, wrong types
//! and values out of range are refused with a 400 naming the parameter.

use serde_json::{Map, Value};

use super::error::ApiError;
use crate::local::GenRequest;
use crate::providers::local::{DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE};

/// Arguments accepted and ignored: they change nothing the local model does.
const IGNORED: [&str; 6] = [
    "user",
    "metadata",
    "store",
    "service_tier",
    "parallel_tool_calls",
    "safety_identifier",
];

/// A request, ready for the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub model: String,
    pub gen: GenRequest,
    pub stream: bool,
    pub include_usage: bool,
    /// `logprobs: true`: each token with its log probability (and `gen.top_logprobs` others).
    pub logprobs: bool,
}

pub fn parse(body: &[u8]) -> Result<Completion, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(
            None,
            format!("We could not parse the JSON body of your request ({e})."),
        )
    })?;
    let Value::Object(map) = value else {
        return Err(ApiError::invalid(
            None,
            "The request body must be a JSON object.",
        ));
    };
    let known = [
        "model",
        "messages",
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "max_completion_tokens",
        "seed",
        "stop",
        "n",
        "stream",
        "stream_options",
        "logprobs",
        "top_logprobs",
        "frequency_penalty",
        "presence_penalty",
    ];
    if let Some(key) = map
        .keys()
        .find(|k| !known.contains(&k.as_str()) && !IGNORED.contains(&k.as_str()))
    {
        return Err(ApiError::invalid(
            Some(key),
            format!("Unrecognized request argument supplied: {key}"),
        ));
    }
    let model = match map.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(_) => return Err(type_error("model", "a non-empty string")),
        None => {
            return Err(ApiError::invalid(
                Some("model"),
                "you must provide a model parameter",
            ))
        }
    };
    let (system, user) = messages(map.get("messages"))?;
    let temperature = number(&map, "temperature", 0.0, 2.0)?;
    let top_p = number(&map, "top_p", 0.0, 1.0)?;
    let top_k = integer(&map, "top_k", 0, u64::from(u32::MAX))?;
    let max_tokens = match integer(&map, "max_completion_tokens", 1, 1 << 20)? {
        Some(n) => Some(n),
        None => integer(&map, "max_tokens", 1, 1 << 20)?,
    };
    let seed = match map.get("seed") {
        None | Some(Value::Null) => None,
        // OpenAI takes any int64; the model's generator is seeded with its bits.
        Some(v) => Some(
            v.as_i64()
                .map(|s| s as u64)
                .or_else(|| v.as_u64())
                .ok_or_else(|| type_error("seed", "an integer"))?,
        ),
    };
    let stop = match map.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.len() <= 4 => items
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| type_error("stop", "a string or an array of up to 4 strings"))?,
        Some(_) => {
            return Err(type_error(
                "stop",
                "a string or an array of up to 4 strings",
            ))
        }
    };
    if let Some(n) = integer(&map, "n", 1, 128)? {
        if n != 1 {
            return Err(ApiError::invalid(
                Some("n"),
                format!("reprise serve generates one choice per request; n must be 1, got {n}."),
            ));
        }
    }
    for penalty in ["frequency_penalty", "presence_penalty"] {
        if let Some(p) = number(&map, penalty, -2.0, 2.0)? {
            if p != 0.0 {
                return Err(ApiError::invalid(
                    Some(penalty),
                    format!(
                        "The local model does not implement {penalty}; send 0 or leave it out."
                    ),
                ));
            }
        }
    }
    let stream = boolean(&map, "stream")?.unwrap_or(false);
    let include_usage = match map.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => {
            if !stream {
                return Err(ApiError::invalid(
                    Some("stream_options"),
                    "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                ));
            }
            match o.get("include_usage") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(type_error("stream_options.include_usage", "a boolean")),
            }
        }
        Some(_) => return Err(type_error("stream_options", "an object")),
    };
    let logprobs = boolean(&map, "logprobs")?.unwrap_or(false);
    let top_logprobs = integer(&map, "top_logprobs", 0, 20)?;
    if top_logprobs.is_some_and(|n| n > 0) && !logprobs {
        return Err(ApiError::invalid(
            Some("top_logprobs"),
            "logprobs must be set to true when top_logprobs is given.",
        ));
    }
    let gen = GenRequest {
        system,
        user,
        temperature: temperature.map_or(DEFAULT_TEMPERATURE, |t| t as f32),
        top_p: top_p.map_or(1.0, |p| p as f32),
        top_k: top_k.map_or(0, |k| k as u32),
        max_tokens: max_tokens.map_or(DEFAULT_MAX_TOKENS, |n| n as u32),
        seed,
        stop,
        top_logprobs: top_logprobs.unwrap_or(0) as u32,
    };
    Ok(Completion {
        model,
        gen,
        stream,
        include_usage,
        logprobs,
    })
}

/// System (and developer) messages make the system prompt; the conversation's user and
/// assistant turns, in order, make the prompt the model continues.
fn messages(value: Option<&Value>) -> Result<(Option<String>, String), ApiError> {
    let Some(value) = value else {
        return Err(ApiError::invalid(
            Some("messages"),
            "Missing required parameter: 'messages'.",
        ));
    };
    let Some(list) = value.as_array().filter(|l| !l.is_empty()) else {
        return Err(type_error("messages", "a non-empty array"));
    };
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<String> = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let field = format!("messages[{i}]");
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| type_error(&format!("{field}.role"), "a string"))?;
        let content = content(m.get("content"), &format!("{field}.content"))?;
        match role {
            "system" | "developer" => system.push(content),
            "user" | "assistant" => turns.push(content),
            other => {
                return Err(ApiError::invalid(
                    Some(&format!("{field}.role")),
                    format!(
                        "Invalid value: '{other}'. Supported values are: 'system', 'developer', 'user' and 'assistant'."
                    ),
                ))
            }
        }
    }
    if turns.is_empty() {
        return Err(ApiError::invalid(
            Some("messages"),
            "messages must contain at least one user message.",
        ));
    }
    let system = (!system.is_empty()).then(|| system.join("\n"));
    Ok((system, turns.join("\n")))
}

/// A string, or an array of `{"type": "text", "text": …}` parts.
fn content(value: Option<&Value>, field: &str) -> Result<String, ApiError> {
    match value {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => parts
            .iter()
            .map(
                |p| match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (Some("text"), Some(Value::String(t))) => Ok(t.clone()),
                    _ => Err(ApiError::invalid(
                        Some(field),
                        "Only text content parts are supported by the local model.",
                    )),
                },
            )
            .collect::<Result<Vec<_>, _>>()
            .map(|p| p.join("")),
        _ => Err(type_error(field, "a string or an array of text parts")),
    }
}

fn type_error(param: &str, expected: &str) -> ApiError {
    ApiError::invalid(
        Some(param),
        format!("Invalid type for '{param}': expected {expected}."),
    )
}

fn number(
    map: &Map<String, Value>,
    key: &str,
    min: f64,
    max: f64,
) -> Result<Option<f64>, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let x = v.as_f64().ok_or_else(|| type_error(key, "a number"))?;
            if !(min..=max).contains(&x) {
                return Err(ApiError::invalid(
                    Some(key),
                    format!("Invalid '{key}': {x} is not between {min} and {max}."),
                ));
            }
            Ok(Some(x))
        }
    }
}

fn integer(
    map: &Map<String, Value>,
    key: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let x = v.as_u64().ok_or_else(|| {
                if v.as_i64().is_some() {
                    ApiError::invalid(
                        Some(key),
                        format!("Invalid '{key}': must be at least {min}."),
                    )
                } else {
                    type_error(key, "an integer")
                }
            })?;
            if !(min..=max).contains(&x) {
                return Err(ApiError::invalid(
                    Some(key),
                    format!("Invalid '{key}': {x} is not between {min} and {max}."),
                ));
            }
            Ok(Some(x))
        }
    }
}

fn boolean(map: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(type_error(key, "a boolean")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_json(v: Value) -> Result<Completion, ApiError> {
        parse(v.to_string().as_bytes())
    }

    #[test]
    fn a_full_request_becomes_the_model_request() {
        let c = parse_json(serde_json::json!({
            "model": "reprise-local-1",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Tell me "}, {"type": "text", "text": "about bread."}]}
            ],
            "temperature": 0.8, "top_p": 0.9, "seed": 7, "max_completion_tokens": 50,
            "stop": "\n\n", "n": 1, "stream": true, "stream_options": {"include_usage": true},
            "logprobs": true, "top_logprobs": 2, "user": "someone"
        }))
        .unwrap();
        assert_eq!(c.model, "reprise-local-1");
        assert!(c.stream && c.include_usage && c.logprobs);
        assert_eq!(
            c.gen,
            GenRequest {
                system: Some("Be brief.".into()),
                user: "Tell me about bread.".into(),
                temperature: 0.8,
                top_p: 0.9,
                top_k: 0,
                max_tokens: 50,
                seed: Some(7),
                stop: vec!["\n\n".into()],
                top_logprobs: 2,
            }
        );
    }

    #[test]
    fn defaults_are_openai_defaults() {
        let c = parse_json(
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap();
        assert_eq!((c.gen.temperature, c.gen.max_tokens), (1.0, 256));
        assert!(!c.stream && !c.include_usage && !c.logprobs);
    }

    #[test]
    fn bad_requests_name_the_parameter() {
        let bad = |v: Value| parse_json(v).unwrap_err();
        let user = serde_json::json!([{"role": "user", "content": "hi"}]);
        let e = bad(serde_json::json!({"model": "m", "messages": user, "n": 2}));
        assert_eq!(e.param.as_deref(), Some("n"));
        let e = bad(serde_json::json!({"model": "m", "messages": user, "temperature": 3}));
        assert_eq!(
            (e.param.as_deref(), e.message.as_str()),
            (
                Some("temperature"),
                "Invalid 'temperature': 3 is not between 0 and 2."
            )
        );
        let e = bad(serde_json::json!({"model": "m", "messages": user, "frobnicate": 1}));
        assert_eq!(
            e.message,
            "Unrecognized request argument supplied: frobnicate"
        );
        let e = bad(serde_json::json!({"model": "m", "messages": user, "top_logprobs": 3}));
        assert_eq!(e.param.as_deref(), Some("top_logprobs"));
        let e = bad(
            serde_json::json!({"model": "m", "messages": user, "top_logprobs": 21, "logprobs": true}),
        );
        assert_eq!(e.param.as_deref(), Some("top_logprobs"));
        let e = bad(
            serde_json::json!({"model": "m", "messages": user, "stream_options": {"include_usage": true}}),
        );
        assert_eq!(e.param.as_deref(), Some("stream_options"));
        let e =
            bad(serde_json::json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}));
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
        let e = bad(serde_json::json!({"messages": user}));
        assert_eq!(e.param.as_deref(), Some("model"));
        let e = bad(serde_json::json!({"model": "m", "messages": user, "presence_penalty": 0.5}));
        assert_eq!(e.param.as_deref(), Some("presence_penalty"));
        let e = parse(b"{not json").unwrap_err();
        assert!(
            e.message.starts_with("We could not parse the JSON body"),
            "{}",
            e.message
        );
        assert_eq!(e.status, 400);
    }
}
