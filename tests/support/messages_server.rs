//! A loopback Anthropic Messages server for tests, on the scripted core (tests/support/
//! scripted.rs): canned whole bodies, named-event streams that may be cut, stalls, with
//! Anthropic's `request-id` header on every answer.
#![allow(dead_code)] // each test crate uses part of it

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

pub use super::scripted::{Canned, Received};
use super::scripted::{Options, Scripted};

pub const REQUEST_ID: &str = "req_011CTest";

/// The loopback Messages API: every answer carries Anthropic's `request-id` header.
#[derive(Clone)]
pub struct Server(Scripted);

impl Server {
    /// Every request, model lookups included, answered from the script.
    pub async fn start(queue: Vec<Canned>, otherwise: Option<Canned>) -> Server {
        Server::start_inner(queue, otherwise, None).await
    }

    /// As `start`, but model lookups (the pre-flight check of `reprise run`) are answered
    /// "it exists" outside the script, so a campaign runs into what the script answers.
    pub async fn start_with_models(queue: Vec<Canned>, otherwise: Option<Canned>) -> Server {
        Server::start_inner(queue, otherwise, Some(model_lookup)).await
    }

    async fn start_inner(
        queue: Vec<Canned>,
        otherwise: Option<Canned>,
        outside: Option<fn(&str, &str) -> Option<Value>>,
    ) -> Server {
        let options = Options {
            stream_type: "text/event-stream; charset=utf-8",
            headers: vec![("request-id", REQUEST_ID)],
            outside,
        };
        Server(Scripted::start(queue, otherwise, options).await)
    }

    pub fn addr(&self) -> SocketAddr {
        self.0.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.0.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.0.received()
    }
}

/// `GET /v1/models/{model}`: the model exists.
fn model_lookup(method: &str, path: &str) -> Option<Value> {
    let model = path.strip_prefix("/v1/models/")?;
    (method == "GET").then(|| json!({"type": "model", "id": model}))
}

/// Nothing for `wait`, then "Paris." whole.
pub fn slow(wait: Duration) -> Canned {
    Canned::Slow(wait, Box::new(Canned::json(200, &whole_message())))
}

/// A status, extra headers and a body.
pub fn whole(status: u16, headers: Vec<(&'static str, &'static str)>, body: String) -> Canned {
    Canned::Whole {
        status,
        headers: headers
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect(),
        body,
    }
}

/// "Paris." as one `Message`.
pub fn whole_message() -> Value {
    json!({
        "id": "msg_01Whole", "type": "message", "role": "assistant",
        "model": "claude-test-20250101",
        "content": [{"type": "text", "text": "Paris."}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0, "output_tokens": 2,
                  "service_tier": "standard", "inference_geo": "us"}
    })
}

/// The body of an Anthropic error response.
pub fn error_body(kind: &str, message: &str) -> String {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": REQUEST_ID})
        .to_string()
}

fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// A streamed "Paris." as Anthropic sends it: message_start, a text block in two deltas with a
/// ping between, message_delta with the stop reason and cumulative usage, message_stop; one
/// event split across two chunks.
pub fn transcript() -> Vec<String> {
    let delta = |text: &str| {
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "text_delta", "text": text}}),
        )
    };
    let second = delta(".");
    let (a, b) = second.split_at(30);
    vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_01Stream", "type": "message",
                "role": "assistant", "model": "claude-test-20250101", "content": [],
                "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0,
                          "cache_read_input_tokens": 0, "output_tokens": 1,
                          "service_tier": "standard"}}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
                   "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", json!({"type": "ping"})),
        delta("Paris"),
        a.to_string(),
        b.to_string(),
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        event(
            "message_delta",
            json!({"type": "message_delta",
                   "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                   "usage": {"output_tokens": 2}}),
        ),
        event("message_stop", json!({"type": "message_stop"})),
    ]
}
