//! A loopback Gemini API for tests, on the scripted core: `generateContent` and
//! `streamGenerateContent?alt=sse` answered from the script; `GET /v1beta/models/{model}`
//! answered "it exists" when asked for (the pre-flight of `reprise run`).
#![allow(dead_code)] // each test crate uses part of it

use serde_json::{json, Value};

use super::scripted::Options;
pub use super::scripted::{Canned, Scripted};

pub const MODEL_VERSION: &str = "gemini-test-001";

/// Starts the server; `models` answers model lookups outside the script.
pub async fn start(queue: Vec<Canned>, otherwise: Option<Canned>, models: bool) -> Scripted {
    let options = Options {
        stream_type: "text/event-stream",
        headers: vec![],
        outside: models.then_some(model_lookup as fn(&str, &str) -> Option<Value>),
    };
    Scripted::start(queue, otherwise, options).await
}

/// `GET /v1beta/models/{model}`: the model exists, version 001.
fn model_lookup(method: &str, path: &str) -> Option<Value> {
    let model = path.strip_prefix("/v1beta/models/")?;
    (method == "GET" && !model.contains(':')).then(|| {
        json!({"name": format!("models/{model}"), "version": "001", "displayName": "Gemini Test"})
    })
}

pub fn base_url(server: &Scripted) -> String {
    format!("http://{}/v1beta", server.addr)
}

/// "Paris." as one `GenerateContentResponse`.
pub fn whole_response() -> Value {
    json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Paris."}]},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 2, "totalTokenCount": 11},
        "modelVersion": MODEL_VERSION,
        "responseId": "resp-whole-1"
    })
}

/// A streamed "Paris." as Gemini sends it: `data:` events each a partial response, no end
/// marker, the finish reason and final usage on the last; one event split across chunks.
pub fn transcript() -> Vec<String> {
    let event = |text: &str, finish: Option<&str>, out: u64| {
        let mut candidate =
            json!({"content": {"role": "model", "parts": [{"text": text}]}, "index": 0});
        if let Some(f) = finish {
            candidate["finishReason"] = json!(f);
        }
        format!(
            "data: {}\r\n\r\n",
            json!({"candidates": [candidate],
                   "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": out},
                   "modelVersion": MODEL_VERSION, "responseId": "resp-stream-1"})
        )
    };
    let last = event(".", Some("STOP"), 2);
    let (a, b) = last.split_at(25);
    vec![event("Paris", None, 1), a.to_string(), b.to_string()]
}

/// A `google.rpc.Status` error body.
pub fn error_body(code: u16, status: &str, message: &str, details: Value) -> String {
    json!({"error": {"code": code, "message": message, "status": status, "details": details}})
        .to_string()
}

pub fn json(status: u16, body: String) -> Canned {
    Canned::Whole {
        status,
        headers: vec![],
        body,
    }
}
