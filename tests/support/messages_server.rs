//! A loopback Anthropic Messages server for tests: records each request it receives and
//! replays canned answers (whole bodies, named-event streams that may be cut, stalls), with
//! Anthropic's `request-id` header on every answer.
#![allow(dead_code)] // each test crate uses part of it

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::{stream, StreamExt};
use serde_json::{json, Value};

pub const REQUEST_ID: &str = "req_011CTest";

/// What the loopback server answers to one request.
#[derive(Clone)]
pub enum Canned {
    /// A status, extra headers and a body, all at once.
    Whole {
        status: u16,
        headers: Vec<(&'static str, &'static str)>,
        body: String,
    },
    /// An event stream sent in these chunks; `cut` drops the connection after them.
    Events { chunks: Vec<String>, cut: bool },
    /// Nothing for this long, then a whole message.
    Slow(Duration),
}

#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Default)]
struct Script {
    queue: VecDeque<Canned>,
    /// Answers every request once the queue is empty.
    otherwise: Option<Canned>,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct Server {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
}

impl Server {
    pub async fn start(queue: Vec<Canned>, otherwise: Option<Canned>) -> Server {
        let script = Arc::new(Mutex::new(Script {
            queue: queue.into(),
            otherwise,
            received: Vec::new(),
        }));
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server { addr, script }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }
}

async fn answer(State(script): State<Arc<Mutex<Script>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let canned = {
        let mut s = script.lock().unwrap();
        s.received.push(Received {
            path: parts.uri.path().to_string(),
            headers: parts.headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        s.queue.pop_front().or_else(|| s.otherwise.clone())
    };
    let r = Response::builder().header("request-id", REQUEST_ID);
    match canned.unwrap_or(Canned::Whole {
        status: 599,
        headers: vec![],
        body: "script exhausted".into(),
    }) {
        Canned::Whole {
            status,
            headers,
            body,
        } => {
            let mut r = r.status(StatusCode::from_u16(status).unwrap());
            if !headers.iter().any(|(k, _)| *k == "content-type") {
                r = r.header("content-type", "application/json");
            }
            for (k, v) in headers {
                r = r.header(k, v);
            }
            r.body(Body::from(body)).unwrap()
        }
        Canned::Events { chunks, cut } => {
            let sent = stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c))));
            // The cut comes after the client has read what was sent, as a dropped link would.
            let end = stream::once(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Err(std::io::Error::other("cut"))
            })
            .filter(move |_| std::future::ready(cut));
            r.header("content-type", "text/event-stream; charset=utf-8")
                .body(Body::from_stream(sent.chain(end)))
                .unwrap()
        }
        Canned::Slow(wait) => {
            tokio::time::sleep(wait).await;
            r.header("content-type", "application/json")
                .body(Body::from(whole_message().to_string()))
                .unwrap()
        }
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
