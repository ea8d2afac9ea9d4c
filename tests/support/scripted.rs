//! The core every loopback provider server shares: it records each request it receives and
//! replays canned answers in order — whole bodies with any status and headers, streams sent
//! in given chunks that may be cut, and stalls. A wire format's server adds its routes (model
//! lists, identity endpoints) and its bodies on top.
#![allow(dead_code)] // each test crate uses part of it

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::{stream, StreamExt};
use serde_json::Value;

/// What the server answers to one request.
#[derive(Clone)]
pub enum Canned {
    /// A status, extra headers and a body, all at once (`application/json` unless a
    /// `content-type` header is given).
    Whole {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// A 200 stream sent in these chunks; `cut` drops the connection after them.
    Stream { chunks: Vec<String>, cut: bool },
    /// Nothing for this long, then the answer.
    Slow(Duration, Box<Canned>),
}

impl Canned {
    pub fn json(status: u16, body: &Value) -> Canned {
        Canned::Whole {
            status,
            headers: vec![],
            body: body.to_string(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
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

/// How a wire format's server differs from the core.
#[derive(Clone)]
pub struct Options {
    /// The content type of a `Canned::Stream`.
    pub stream_type: &'static str,
    /// Headers on every scripted answer (a request id).
    pub headers: Vec<(&'static str, &'static str)>,
    /// Requests answered outside the script, unrecorded (model lookups, identity
    /// endpoints): `(method, path)` → a 200 JSON body, or None for the script.
    pub outside: Option<fn(&str, &str) -> Option<Value>>,
}

#[derive(Clone)]
pub struct Scripted {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
}

impl Scripted {
    pub async fn start(queue: Vec<Canned>, otherwise: Option<Canned>, options: Options) -> Self {
        let script = Arc::new(Mutex::new(Script {
            queue: queue.into(),
            otherwise,
            received: Vec::new(),
        }));
        let shared = script.clone();
        let app = axum::Router::new().fallback(move |request: Request| {
            let script = shared.clone();
            let options = options.clone();
            async move { answer(script, request, options).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Scripted { addr, script }
    }

    /// Every request the script answered, in order.
    pub fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }
}

async fn answer(script: Arc<Mutex<Script>>, request: Request, options: Options) -> Response {
    let (parts, body) = request.into_parts();
    if let Some(found) = options
        .outside
        .and_then(|outside| outside(parts.method.as_str(), parts.uri.path()))
    {
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(found.to_string()))
            .unwrap();
    }
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let canned = {
        let mut s = script.lock().unwrap();
        s.received.push(Received {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(str::to_string),
            headers: parts.headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        s.queue.pop_front().or_else(|| s.otherwise.clone())
    };
    let canned = canned.unwrap_or(Canned::Whole {
        status: 599,
        headers: vec![],
        body: "script exhausted".into(),
    });
    respond(canned, options.stream_type, &options.headers).await
}

async fn respond(
    mut canned: Canned,
    stream_type: &'static str,
    headers: &[(&'static str, &'static str)],
) -> Response {
    while let Canned::Slow(wait, then) = canned {
        tokio::time::sleep(wait).await;
        canned = *then;
    }
    let mut r = Response::builder();
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    match canned {
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
        Canned::Stream { chunks, cut } => {
            let sent = stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c))));
            // The cut comes after the client has read what was sent, as a dropped link would.
            let end = stream::once(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Err(std::io::Error::other("cut"))
            })
            .filter(move |_| std::future::ready(cut));
            r.header("content-type", stream_type)
                .body(Body::from_stream(sent.chain(end)))
                .unwrap()
        }
        Canned::Slow(..) => unreachable!("unwrapped above"),
    }
}
