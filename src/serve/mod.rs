//! `reprise serve`: the built-in model behind an OpenAI-compatible HTTP API —
//! `POST /v1/chat/completions` (JSON, or SSE ending in `[DONE]`), `GET /v1/models`,
//! `GET /version` — with optional fault injection, decoding mode and simulated silent update,
//! so any OpenAI client can watch batching nondeterminism, drift and failures.

mod error;
pub mod faults;
mod request;
mod response;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use futures_util::StreamExt;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::local::batch::BatchEngine;
use crate::local::{Drift, Generation, LocalModel};
use crate::protocol::DecodeMode;

pub use error::ApiError;
pub use faults::{Fault, Faults};

/// The model id clients ask for.
pub fn model_id() -> &'static str {
    LocalModel::builtin().name()
}

/// This server's build, as reported in the served identity.
pub fn build() -> String {
    crate::BUILD.to_string()
}

/// When the model was "released", for `/v1/models` (fixed: the weights never change on their
/// own; a simulated update changes the revision, not this).
const MODEL_CREATED: u64 = 1_767_225_600;

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub mode: DecodeMode,
    pub faults: Faults,
    /// Requests served by the model before it is silently updated.
    pub drift_after: Option<u64>,
    /// Seeds the fault draws and response ids, for reproducible fault sequences.
    pub seed: Option<u64>,
    /// How long a `stall` fault holds a response back.
    pub stall: Duration,
    /// The `Retry-After` of a simulated 429, in seconds.
    pub retry_after: u64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            mode: DecodeMode::BatchInvariant,
            faults: Faults::none(),
            drift_after: None,
            seed: None,
            stall: Duration::from_secs(30),
            retry_after: 1,
        }
    }
}

/// Requests seen, by outcome (for the summary printed when the server stops).
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub completions: AtomicU64,
    pub invalid: AtomicU64,
    faults: [AtomicU64; 5],
}

impl Stats {
    pub fn faults(&self, fault: Fault) -> u64 {
        self.faults[fault as usize].load(Ordering::Relaxed)
    }

    /// One line: `120 requests: 110 completions, 4 invalid, 429 ×3, cut ×1 …`.
    pub fn summary(&self) -> String {
        let mut parts = vec![
            format!("{} completions", self.completions.load(Ordering::Relaxed)),
            format!(
                "{} refused as invalid",
                self.invalid.load(Ordering::Relaxed)
            ),
        ];
        for f in Fault::ALL {
            let n = self.faults(f);
            if n > 0 {
                parts.push(format!("{} ×{n}", f.name()));
            }
        }
        format!(
            "{} requests: {}",
            self.requests.load(Ordering::Relaxed),
            parts.join(", ")
        )
    }
}

struct Shared {
    config: ServeConfig,
    drift: Drift,
    batch: Option<BatchEngine>,
    rng: Mutex<ChaCha8Rng>,
    stats: Arc<Stats>,
    build: String,
}

impl Shared {
    fn draw(&self) -> (f64, u128) {
        match self.rng.lock() {
            Ok(mut rng) => (rng.random::<f64>(), rng.random::<u128>()),
            // A panicked holder cannot leave a generator half-updated in a way that matters.
            Err(poisoned) => {
                let mut rng = poisoned.into_inner();
                (rng.random::<f64>(), rng.random::<u128>())
            }
        }
    }

    fn fingerprint(&self, model: &LocalModel) -> String {
        let rev = model.revision();
        let hex = rev.strip_prefix("sha256:").unwrap_or(rev);
        format!(
            "fp_{}_{}_{}",
            &hex[..hex.len().min(12)],
            self.config.mode.as_str(),
            self.build
        )
    }
}

/// A bound server, not yet serving.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) and starts the batch decoder in batched mode.
    pub async fn bind(addr: SocketAddr, config: ServeConfig) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let batch = match config.mode {
            DecodeMode::BatchInvariant => None,
            DecodeMode::Batched => Some(BatchEngine::start()?),
        };
        let rng = match config.seed {
            Some(seed) => ChaCha8Rng::seed_from_u64(seed),
            None => ChaCha8Rng::from_os_rng(),
        };
        // Build the weights now, not on the first request.
        let _ = LocalModel::builtin();
        if config.drift_after.is_some() {
            let _ = LocalModel::updated();
        }
        let shared = Arc::new(Shared {
            drift: Drift::new(config.drift_after),
            batch,
            rng: Mutex::new(rng),
            stats: Arc::default(),
            build: build(),
            config,
        });
        Ok(Server { listener, shared })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.shared.stats.clone()
    }

    /// Serves until `shutdown` resolves; requests in progress are finished first.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/models", get(models))
            .route("/v1/models/{id}", get(one_model))
            .route("/version", get(version))
            .fallback(unknown)
            .method_not_allowed_fallback(unknown)
            .with_state(self.shared);
        // Without TCP_NODELAY each small stream event after the first waits for a delayed ACK
        // (~40 ms on Linux): a stream would trickle, and TTFT and throughput would lie.
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

async fn unknown(method: Method, uri: Uri) -> ApiError {
    ApiError::unknown_url(method.as_str(), uri.path())
}

fn model_object(shared: &Shared) -> Value {
    // The revision that would serve the next request.
    let current = match shared.config.drift_after {
        Some(after) if shared.stats.completions.load(Ordering::Relaxed) >= after => {
            LocalModel::updated()
        }
        _ => LocalModel::builtin(),
    };
    json!({
        "id": model_id(),
        "object": "model",
        "created": MODEL_CREATED,
        "owned_by": "reprise",
        "revision": current.revision(),
        "mode": shared.config.mode.as_str(),
        "build": shared.build,
    })
}

async fn models(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({"object": "list", "data": [model_object(&shared)]}))
}

async fn one_model(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    if id != model_id() {
        return ApiError::model_not_found(&id).into_response();
    }
    Json(model_object(&shared)).into_response()
}

async fn version(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({"version": env!("CARGO_PKG_VERSION"), "build": shared.build}))
}

async fn chat(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let started = Instant::now();
    shared.stats.requests.fetch_add(1, Ordering::Relaxed);
    let (u, id_bits) = shared.draw();
    let request_id = format!("req_{:032x}", id_bits);
    let mut response = match completion(&shared, &body, u, id_bits).await {
        Ok(r) => r,
        Err(e) => {
            if e.status == 400 || e.status == 404 {
                shared.stats.invalid.fetch_add(1, Ordering::Relaxed);
            }
            e.into_response()
        }
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", v);
    }
    headers.insert(
        "openai-processing-ms",
        HeaderValue::from(started.elapsed().as_millis() as u64),
    );
    response
}

async fn completion(
    shared: &Shared,
    body: &[u8],
    u: f64,
    id_bits: u128,
) -> Result<Response, ApiError> {
    let req = request::parse(body)?;
    if req.model != model_id() {
        return Err(ApiError::model_not_found(&req.model));
    }
    let fault = shared.config.faults.pick(u);
    if let Some(f) = fault {
        shared.stats.faults[f as usize].fetch_add(1, Ordering::Relaxed);
    }
    match fault {
        Some(Fault::RateLimit) => {
            return Err(ApiError::rate_limited(
                &req.model,
                shared.config.retry_after,
            ))
        }
        Some(Fault::Server) => return Err(ApiError::server()),
        Some(Fault::Stall) => tokio::time::sleep(shared.config.stall).await,
        _ => {}
    }
    let model = shared.drift.next();
    let generation = generate(shared, model, req.gen.clone()).await?;
    shared.stats.completions.fetch_add(1, Ordering::Relaxed);
    let meta = response::Meta {
        id: format!("chatcmpl-{:024x}", id_bits >> 32),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        model: model_id().to_string(),
        system_fingerprint: shared.fingerprint(model),
    };
    let cut = fault == Some(Fault::Cut);
    let malformed = fault == Some(Fault::Malformed);
    if req.stream {
        Ok(stream_response(&meta, &generation, &req, cut, malformed))
    } else {
        let text = response::completion(&meta, &generation, req.logprobs).to_string();
        Ok(json_response(text, cut, malformed))
    }
}

async fn generate(
    shared: &Shared,
    model: &'static LocalModel,
    gen: crate::local::GenRequest,
) -> Result<Generation, ApiError> {
    match &shared.batch {
        Some(engine) => engine
            .generate(model, gen)
            .await
            .ok_or_else(|| ApiError::unavailable("The local model's batch decoder stopped.")),
        None => tokio::task::spawn_blocking(move || model.generate(&gen))
            .await
            .map_err(|e| ApiError::unavailable(format!("The local model's worker stopped: {e}."))),
    }
}

/// The body as bytes: whole; cut off after half with the connection closed; or whole in
/// length but not JSON.
fn json_response(text: String, cut: bool, malformed: bool) -> Response {
    let half = text.len() / 2;
    let body = if cut {
        // Sent chunked, so the missing end of the body is what the client sees.
        let part = Bytes::from(text.as_bytes()[..half].to_vec());
        let stream = futures_util::stream::iter([Ok(part)]).chain(cut_connection());
        let mut r = Response::new(Body::from_stream(stream));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return r;
    } else if malformed {
        format!("{}<", &text[..half])
    } else {
        text
    };
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Ends a body with an error, which makes the server drop the connection — after a pause, so
/// what was sent before reaches the client first.
fn cut_connection() -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::once(async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Err(std::io::Error::other(
            "connection cut (simulated by --faults)",
        ))
    })
}

fn stream_response(
    meta: &response::Meta,
    g: &Generation,
    req: &request::Completion,
    cut: bool,
    malformed: bool,
) -> Response {
    let chunks = response::chunks(meta, g, req.logprobs, req.include_usage);
    let mut events: Vec<Result<Bytes, std::io::Error>> = chunks
        .iter()
        .map(|c| Ok(Bytes::from(response::event(&c.to_string()))))
        .collect();
    let middle = events.len() / 2;
    if malformed {
        let broken = chunks[middle].to_string();
        events[middle] = Ok(Bytes::from(response::event(&broken[..broken.len() / 2])));
    }
    let body = if cut {
        // Half the events, then the connection drops: no finish reason, no [DONE].
        events.truncate(middle);
        Body::from_stream(futures_util::stream::iter(events).chain(cut_connection()))
    } else {
        events.push(Ok(Bytes::from_static(response::DONE.as_bytes())));
        Body::from_stream(futures_util::stream::iter(events))
    };
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}
