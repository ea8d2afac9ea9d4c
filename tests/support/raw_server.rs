//! A loopback HTTP/1.1 server on raw sockets, for what a framework server would never do: a
//! connection closed after a reply that advertised keep-alive, a stream whose last event
//! lacks its blank line, bytes exactly as a recording has them.
#![allow(dead_code)] // each test crate uses part of it

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as received.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// What happens to the connection once a reply is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Kept for the next request.
    KeepAlive,
    /// Closed at once.
    Close,
    /// Kept, but closed without an answer as soon as another request arrives on it: a server
    /// that closed after its reply, its close reaching the client only after the client had
    /// sent the next request on the connection (the race a pooled client loses).
    CloseOnNextRequest,
}

/// The bytes of one reply and what follows them.
#[derive(Debug, Clone)]
pub struct RawReply {
    pub bytes: Vec<u8>,
    pub after: After,
}

#[derive(Default)]
struct Log {
    answered: Vec<RawRequest>,
    /// Requests that arrived on a connection being closed, never answered.
    dropped: usize,
}

type Handler = dyn Fn(usize, &RawRequest) -> RawReply + Send + Sync;

#[derive(Clone)]
pub struct RawServer {
    pub addr: SocketAddr,
    log: Arc<Mutex<Log>>,
}

impl RawServer {
    /// Answers the n-th request (0-based, over all connections) with `handler(n, request)`.
    pub async fn start(
        handler: impl Fn(usize, &RawRequest) -> RawReply + Send + Sync + 'static,
    ) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let handler: Arc<Handler> = Arc::new(handler);
        let shared = log.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, handler.clone(), shared.clone()));
            }
        });
        RawServer { addr, log }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request answered, in order.
    pub fn answered(&self) -> Vec<RawRequest> {
        self.log.lock().unwrap().answered.clone()
    }

    /// Requests that arrived on a connection the server was closing, never answered.
    pub fn dropped(&self) -> usize {
        self.log.lock().unwrap().dropped
    }

    /// Answers every request with `bytes`, then does `after`.
    pub async fn always(bytes: Vec<u8>, after: After) -> RawServer {
        RawServer::start(move |_, _| RawReply {
            bytes: bytes.clone(),
            after,
        })
        .await
    }

    /// Answers the n-th request with `answers[n % answers.len()]`, closing the connection
    /// after each.
    pub async fn answering(answers: Vec<Answer>) -> RawServer {
        assert!(!answers.is_empty());
        RawServer::start(move |n, _| RawReply {
            bytes: match &answers[n % answers.len()] {
                Answer::Bytes(bytes) => bytes.clone(),
                Answer::Close => Vec::new(),
            },
            after: After::Close,
        })
        .await
    }

    /// Requests read so far, answered or not.
    pub fn requests(&self) -> usize {
        let log = self.log.lock().unwrap();
        log.answered.len() + log.dropped
    }
}

/// A scripted answer for [`RawServer::answering`].
#[derive(Debug, Clone)]
pub enum Answer {
    /// These bytes, exactly (any status line, headers, body, cut anywhere).
    Bytes(Vec<u8>),
    /// The connection closes with nothing sent.
    Close,
}

async fn serve(mut socket: TcpStream, handler: Arc<Handler>, log: Arc<Mutex<Log>>) {
    let mut buffer = Vec::new();
    let mut closing = false;
    while let Some(request) = read_request(&mut socket, &mut buffer).await {
        if closing {
            log.lock().unwrap().dropped += 1;
            return;
        }
        let reply = {
            let mut log = log.lock().unwrap();
            let n = log.answered.len() + log.dropped;
            log.answered.push(request.clone());
            n
        };
        let reply = handler(reply, &request);
        if socket.write_all(&reply.bytes).await.is_err() {
            return;
        }
        match reply.after {
            After::KeepAlive => {}
            After::Close => return,
            After::CloseOnNextRequest => closing = true,
        }
    }
}

/// The next request on the connection, or None when it closed first.
async fn read_request(socket: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<RawRequest> {
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut start = lines.next()?.split(' ');
    let (method, path) = (start.next()?.to_string(), start.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let body_start = head_end + 4;
    while buffer.len() < body_start + length {
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = buffer[body_start..body_start + length].to_vec();
    buffer.drain(..body_start + length);
    Some(RawRequest {
        method,
        path,
        headers,
        body,
    })
}

/// A whole reply: status, headers (a `content-length` is added) and body.
pub fn whole(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

/// A 200 reply of `content_type` sent in chunked transfer encoding, one chunk per part, with
/// `headers` added (say, `connection: keep-alive`).
pub fn chunked(content_type: &str, headers: &[(&str, &str)], parts: &[String]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n"
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    for part in parts.iter().filter(|p| !p.is_empty()) {
        out.push_str(&format!("{:x}\r\n{part}\r\n", part.len()));
    }
    out.push_str("0\r\n\r\n");
    out.into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
