//! A loopback HTTP server that answers each request with whatever bytes a test scripts — any
//! status line, headers and body, cut at any byte, or the connection closed unanswered — as no
//! server library would let it. Every answer closes its connection.
#![allow(dead_code)] // each test crate uses part of it

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// These bytes, exactly, then the connection closes.
    Bytes(Vec<u8>),
    /// The connection closes with nothing sent.
    Close,
}

pub struct RawServer {
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl RawServer {
    /// Answers the n-th request with `answers[n % answers.len()]`.
    pub async fn start(answers: Vec<Answer>) -> RawServer {
        assert!(!answers.is_empty());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&requests);
        let answers = Arc::new(answers);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counted = Arc::clone(&counted);
                let answers = Arc::clone(&answers);
                tokio::spawn(async move {
                    let mut stream = stream;
                    if read_request(&mut stream).await.is_some() {
                        let n = counted.fetch_add(1, Ordering::SeqCst);
                        if let Answer::Bytes(bytes) = &answers[n % answers.len()] {
                            let _ = stream.write_all(bytes).await;
                        }
                    }
                    let _ = stream.shutdown().await;
                });
            }
        });
        RawServer { addr, requests }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Requests read so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads one request (head and `content-length` body); None when the client went away.
async fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        bytes.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while bytes.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        bytes.extend_from_slice(&chunk[..n]);
    }
    Some(bytes)
}
