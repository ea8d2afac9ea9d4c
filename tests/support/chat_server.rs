//! A loopback Chat Completions server for tests: records each request it receives and
//! replays canned answers (whole bodies, event streams that may be cut, stalls).
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
    /// Nothing for this long, then a whole reply.
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
        Server::start_with(vec![], queue, otherwise).await
    }

    /// As `start`, with fixed JSON answers to `GET path` for each of `documents` (a
    /// llama.cpp's `/props`, a vLLM's `/version`, a `/v1/models` that lists models).
    pub async fn start_with(
        documents: Vec<(&'static str, Value)>,
        queue: Vec<Canned>,
        otherwise: Option<Canned>,
    ) -> Server {
        let script = Arc::new(Mutex::new(Script {
            queue: queue.into(),
            otherwise,
            received: Vec::new(),
        }));
        let mut app = axum::Router::new();
        if !documents.iter().any(|(path, _)| *path == "/v1/models") {
            // An empty model list: the client's pre-flight check cannot tell, so it lets the
            // campaign run into whatever the script answers.
            app = app.route(
                "/v1/models",
                axum::routing::get(|| async { axum::Json(json!({"object": "list", "data": []})) }),
            );
        }
        // A plain Chat Completions server has no llama.cpp or vLLM identity documents; these
        // reads are kept out of the script and of `received`.
        for path in ["/props", "/version"] {
            if !documents.iter().any(|(p, _)| *p == path) {
                app = app.route(path, axum::routing::get(|| async { StatusCode::NOT_FOUND }));
            }
        }
        for (path, document) in documents {
            app = app.route(
                path,
                axum::routing::get(move || async move { axum::Json(document) }),
            );
        }
        let app = app.fallback(answer).with_state(script.clone());
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
            Response::builder()
                .header("content-type", "text/event-stream")
                .header("x-request-id", "req-stream-1")
                .body(Body::from_stream(sent.chain(end)))
                .unwrap()
        }
        Canned::Slow(wait) => {
            tokio::time::sleep(wait).await;
            Response::new(Body::from(whole_reply().to_string()))
        }
    }
}

pub fn whole_reply() -> Value {
    json!({
        "id": "chatcmpl-42", "object": "chat.completion", "created": 1741570283,
        "model": "reprise-local-1-rev2",
        "choices": [{"index": 0,
            "message": {"role": "assistant", "content": "Paris.", "refusal": null},
            "logprobs": {"content": [
                {"token": "Paris", "logprob": -0.125, "bytes": [80,97,114,105,115], "top_logprobs": []},
                {"token": ".", "logprob": -0.5, "bytes": [46], "top_logprobs": []}]},
            "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14},
        "service_tier": "default", "system_fingerprint": "fp_abc123"
    })
}

/// A streamed "Paris." as OpenAI sends it: role chunk, content with logprobs, finish, usage,
/// with a comment line and a split event along the way.
pub fn transcript() -> Vec<String> {
    let chunk = |delta: Value, logprobs: Value, finish: Value| {
        json!({"id": "chatcmpl-s1", "object": "chat.completion.chunk", "created": 1,
               "model": "reprise-local-1-rev2", "system_fingerprint": "fp_s",
               "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}],
               "usage": null})
        .to_string()
    };
    let lp = |t: &str, l: f64| json!({"content": [{"token": t, "logprob": l, "bytes": null, "top_logprobs": []}]});
    let usage = json!({"id": "chatcmpl-s1", "object": "chat.completion.chunk", "created": 1,
        "model": "reprise-local-1-rev2", "system_fingerprint": "fp_s", "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}})
    .to_string();
    let second = format!(
        "data: {}\n\n",
        chunk(json!({"content": "."}), lp(".", -0.5), Value::Null)
    );
    let (a, b) = second.split_at(20);
    vec![
        ": OPENROUTER PROCESSING\n\n".into(),
        format!(
            "data: {}\n\n",
            chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
                Value::Null
            )
        ),
        format!(
            "data: {}\n\n",
            chunk(
                json!({"content": "Paris"}),
                lp("Paris", -0.125),
                Value::Null
            )
        ),
        a.to_string(),
        b.to_string(),
        format!("data: {}\n\n", chunk(json!({}), Value::Null, json!("stop"))),
        format!("data: {usage}\n\n"),
        "data: [DONE]\n\n".into(),
    ]
}
