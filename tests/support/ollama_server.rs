//! A loopback Ollama for tests: `/api/chat` replays canned answers (whole bodies, NDJSON
//! streams that may be cut, stalls) and records each request; `/api/tags` and `/api/version`
//! answer identity documents the test can change.
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

pub const DIGEST: &str = "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72";

/// What the loopback server answers to one `/api/chat` request.
#[derive(Clone)]
pub enum Canned {
    /// A status, extra headers and a body, all at once.
    Whole {
        status: u16,
        headers: Vec<(&'static str, &'static str)>,
        body: String,
    },
    /// An NDJSON stream sent in these chunks; `cut` drops the connection after them.
    Lines { chunks: Vec<String>, cut: bool },
    /// Nothing for this long, then a whole reply.
    Slow(Duration),
}

#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

struct Script {
    queue: VecDeque<Canned>,
    /// Answers every chat request once the queue is empty.
    otherwise: Option<Canned>,
    tags: Value,
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
            tags: tags(DIGEST),
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
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    /// The requests to one path.
    pub fn received_at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// What `/api/tags` answers from now on (a model pulled again shows a new digest; null:
    /// a 404, as from a proxy that only passes `/api/chat`).
    pub fn set_tags(&self, tags: Value) {
        self.script.lock().unwrap().tags = tags;
    }
}

/// A `/api/tags` listing with `llama3.2:latest` at `digest`, and another model.
pub fn tags(digest: &str) -> Value {
    json!({"models": [
        {"name": "qwen2.5:7b", "model": "qwen2.5:7b", "modified_at": "2026-01-02T10:00:00Z",
         "size": 4683087332u64, "digest": "845dbda0ea48ed749caafd9e6037047aa19acfcfd82e704d7ca97d631a0b697e",
         "details": {"format": "gguf", "family": "qwen2", "parameter_size": "7.6B", "quantization_level": "Q4_K_M"}},
        {"name": "llama3.2:latest", "model": "llama3.2:latest", "modified_at": "2026-01-01T10:00:00Z",
         "size": 2019393189u64, "digest": digest,
         "details": {"format": "gguf", "family": "llama", "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}}
    ]})
}

async fn answer(State(script): State<Arc<Mutex<Script>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let (canned, tags) = {
        let mut s = script.lock().unwrap();
        s.received.push(Received {
            method: parts.method.to_string(),
            path: path.clone(),
            headers: parts.headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        let canned = if path == "/api/chat" {
            s.queue.pop_front().or_else(|| s.otherwise.clone())
        } else {
            None
        };
        (canned, s.tags.clone())
    };
    let json_body = |status: u16, body: String| {
        Response::builder()
            .status(StatusCode::from_u16(status).unwrap())
            .header("content-type", "application/json; charset=utf-8")
            .body(Body::from(body))
            .unwrap()
    };
    match path.as_str() {
        "/api/tags" if tags.is_null() => return json_body(404, "404 page not found".into()),
        "/api/tags" => return json_body(200, tags.to_string()),
        "/api/version" => return json_body(200, json!({"version": "0.6.2"}).to_string()),
        "/api/chat" => {}
        _ => return json_body(404, "404 page not found".into()),
    }
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
            let mut r = Response::builder().status(StatusCode::from_u16(status).unwrap());
            if !headers.iter().any(|(k, _)| *k == "content-type") {
                r = r.header("content-type", "application/json; charset=utf-8");
            }
            for (k, v) in headers {
                r = r.header(k, v);
            }
            r.body(Body::from(body)).unwrap()
        }
        Canned::Lines { chunks, cut } => {
            let sent = stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c))));
            // The cut comes after the client has read what was sent, as a dropped link would.
            let end = stream::once(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Err(std::io::Error::other("cut"))
            })
            .filter(move |_| std::future::ready(cut));
            Response::builder()
                .header("content-type", "application/x-ndjson")
                .body(Body::from_stream(sent.chain(end)))
                .unwrap()
        }
        Canned::Slow(wait) => {
            tokio::time::sleep(wait).await;
            json_body(200, whole_reply().to_string())
        }
    }
}

/// A `stream: false` reply, as Ollama sends it.
pub fn whole_reply() -> Value {
    json!({
        "model": "llama3.2", "created_at": "2026-01-05T12:00:00.123456789Z",
        "message": {"role": "assistant", "content": "Paris."},
        "done": true, "done_reason": "stop",
        "total_duration": 512345678u64, "load_duration": 12345678u64,
        "prompt_eval_count": 26, "prompt_eval_duration": 100000000u64,
        "eval_count": 3, "eval_duration": 300000000u64
    })
}

/// A streamed "Paris." as Ollama sends it, one object per line, the last with the counters;
/// one line is split across two chunks and two lines share one chunk.
pub fn transcript() -> Vec<String> {
    let line = |content: &str| {
        format!(
            "{}\n",
            json!({"model": "llama3.2", "created_at": "2026-01-05T12:00:00.1Z",
                   "message": {"role": "assistant", "content": content}, "done": false})
        )
    };
    let done = format!(
        "{}\n",
        json!({"model": "llama3.2", "created_at": "2026-01-05T12:00:00.4Z",
               "message": {"role": "assistant", "content": ""},
               "done": true, "done_reason": "stop",
               "total_duration": 512345678u64, "load_duration": 12345678u64,
               "prompt_eval_count": 26, "prompt_eval_duration": 100000000u64,
               "eval_count": 3, "eval_duration": 300000000u64})
    );
    let second = line("is");
    let (a, b) = second.split_at(30);
    vec![
        line("Par"),
        a.to_string(),
        format!("{b}{}", line(".")),
        done,
    ]
}
