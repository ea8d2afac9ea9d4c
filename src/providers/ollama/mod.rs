//! The `ollama` kind: Ollama's native `POST {base}/api/chat`, streamed as NDJSON (one JSON
//! object per line, the last with `done: true` and the counters) or whole. Served identity:
//! the returned model and the model's digest from `GET /api/tags` (looked up once, on the
//! first successful call); `server_identity` adds `GET /api/version`. One call is one
//! attempt: retries belong to the runner.
//!
//! Log-probabilities are asked for (`"logprobs": true`) when the target's settings want them;
//! Ollama 0.12.11 and later answer with each token, older servers ignore the field, and then
//! the reply has no tokens. Options the protocol leaves out fall back to the model's Modelfile
//! defaults.

mod check;
pub mod wire;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use tokio::sync::OnceCell;

use super::http::{excerpt, Auth, Framing, Http, Route, Settings, Timeouts};
use super::{Backend, CallFailure, ChatRequest, Check, Reply};
use wire::Assembly;

/// Where `provider = "ollama"` goes unless `$OLLAMA_HOST` says otherwise.
pub const OLLAMA_BASE_URL: &str = "http://127.0.0.1:11434";
/// Ollama's own variable (`host`, `host:port` or `scheme://host:port`).
pub const OLLAMA_HOST_ENV: &str = "OLLAMA_HOST";

/// Ollama's defaults: the first call loads the model into memory before its first byte, which
/// takes minutes for a large model on a slow disk.
pub fn default_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(10),
        first_byte: Duration::from_secs(180),
        total: Duration::from_secs(600),
    }
}

/// Settings for an Ollama server at `base_url` (the root, no `/api`): streamed, no key,
/// Ollama's timeouts.
pub fn settings(provider: &str, base_url: &str, model: &str) -> Settings {
    let mut s = Settings::new(provider, base_url, model);
    s.timeouts = default_timeouts();
    s
}

/// `provider = "ollama"`: `$OLLAMA_HOST` or 127.0.0.1:11434, no key.
pub fn builtin(model: Option<&str>) -> Result<Settings, String> {
    let base = std::env::var(OLLAMA_HOST_ENV)
        .ok()
        .filter(|h| !h.trim().is_empty())
        .map_or_else(|| OLLAMA_BASE_URL.to_string(), |h| host_url(&h));
    let mut s = Settings::builtin("ollama", model, base, None)?;
    s.timeouts = default_timeouts();
    Ok(s)
}

/// An `$OLLAMA_HOST` value as a base URL, the way Ollama reads it: scheme `http` and port
/// 11434 (443 for `https`) unless given.
pub fn host_url(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    let (scheme, rest) = host.split_once("://").unwrap_or(("http", host));
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    // `[::1]` has colons but no port; a port is digits after the last colon, outside brackets.
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let port = if has_port {
        ""
    } else if scheme.eq_ignore_ascii_case("https") {
        ":443"
    } else {
        ":11434"
    };
    format!("{scheme}://{authority}{port}{path}")
}

/// An `ollama`-kind target.
#[derive(Debug)]
pub struct OllamaBackend {
    settings: Settings,
    http: Http,
    /// The model's digest from `/api/tags`, once a listing was read (None: not listed).
    digest: OnceCell<Option<String>>,
}

impl OllamaBackend {
    /// The backend for `settings`; fails (one sentence) on an unusable URL or header.
    pub fn new(settings: Settings) -> Result<Self, String> {
        let route = Route {
            path: "/api/chat".into(),
            framing: Framing::Ndjson,
            // For a proxy in front of Ollama; Ollama itself takes no key.
            auth: Auth::Bearer,
            fixed: &[],
            request_id: None,
        };
        let http = Http::new(&settings, route)?;
        Ok(OllamaBackend {
            settings,
            http,
            digest: OnceCell::new(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The model's digest, read from `/api/tags` once; a server that did not answer is asked
    /// again on the next call (one that answered without the model is not).
    async fn digest(&self) -> Option<String> {
        self.digest
            .get_or_try_init(|| async {
                self.lookup_digest()
                    .await
                    .map(|found| found.map(|(_, digest)| digest))
            })
            .await
            .ok()
            .and_then(Clone::clone)
    }

    /// `(listed name, digest)` of the model; `Ok(None)` when the server answered but does not
    /// list it (or has no `/api/tags`, as behind some proxies), Err when it did not answer.
    async fn lookup_digest(&self) -> Result<Option<(String, String)>, String> {
        Ok(self
            .get_small("/api/tags")
            .await?
            .and_then(|body| wire::digest_of(&body, &self.settings.model).ok().flatten()))
    }

    async fn get_small(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        let url = format!("{}{path}", self.settings.base_url);
        self.http.get_small(&url).await
    }
}

#[async_trait]
impl Backend for OllamaBackend {
    /// Options go under `options`, named as Ollama names them (`max_tokens` → `num_predict`);
    /// only what the protocol set. `stream` is always explicit (Ollama's default is true);
    /// `logprobs` is there when the settings want tokens.
    fn request_body(&self, request: &ChatRequest) -> Value {
        let mut messages = Vec::new();
        if let Some(system) = &request.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": request.user}));
        let p = &request.params;
        let mut options = Map::new();
        let mut set = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                options.insert(key.to_string(), value);
            }
        };
        set("temperature", p.temperature.map(|v| json!(v)));
        set("top_p", p.top_p.map(|v| json!(v)));
        set("top_k", p.top_k.map(|v| json!(v)));
        set("seed", p.seed.map(|v| json!(v)));
        set("num_predict", p.max_tokens.map(|v| json!(v)));
        set("stop", (!p.stop.is_empty()).then(|| json!(p.stop)));
        let mut body = json!({
            "model": self.settings.model,
            "messages": messages,
            "stream": self.settings.stream,
        });
        if !options.is_empty() {
            body["options"] = Value::Object(options);
        }
        if self.settings.logprobs {
            body["logprobs"] = json!(true);
        }
        body
    }

    fn endpoint(&self) -> String {
        self.http.endpoint().to_string()
    }

    fn http_settings(&self) -> Option<&Settings> {
        Some(&self.settings)
    }

    /// `GET {base}/api/tags`: reachable, key (if any) accepted, model pulled.
    async fn check(&self) -> Vec<Check> {
        self.check_model().await
    }

    async fn call(&self, request: &ChatRequest) -> Result<Reply, CallFailure> {
        let body = self.request_body(request);
        let provider = &self.settings.provider;
        let model = &self.settings.model;
        let options: Vec<&str> = body
            .get("options")
            .and_then(Value::as_object)
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut reply = self
            .http
            .call(
                &body,
                Assembly::new(provider, self.settings.logprobs),
                |r| {
                    let error = wire::server_error(&r.body, model, &options);
                    super::http::status::classify(
                        provider,
                        r.status,
                        r.retry_after.as_deref(),
                        r.keyed,
                        error,
                    )
                },
            )
            .await?;
        // After the reply, so neither its timing nor its deadline includes the lookup.
        if let Some(digest) = self.digest().await {
            reply.served.insert("digest".into(), digest);
        }
        Ok(reply)
    }

    /// Read fresh on every call (so a campaign's start and end can be compared): the model as
    /// `/api/tags` lists it, its `digest`, and the server's `version`. Keys absent where the
    /// server did not say.
    async fn server_identity(&self) -> Option<BTreeMap<String, String>> {
        let (tags, version) = tokio::join!(self.lookup_digest(), self.get_small("/api/version"));
        let mut identity = BTreeMap::new();
        let listed = tags.ok().flatten();
        let model = listed
            .as_ref()
            .map_or_else(|| wire::full_name(&self.settings.model), |(n, _)| n.clone());
        identity.insert("model".to_string(), excerpt(&model));
        if let Some((_, digest)) = listed {
            // Calls before this one found nothing cached yet: they may use this listing.
            let _ = self.digest.set(Some(digest.clone()));
            identity.insert("digest".to_string(), digest);
        }
        if let Some(version) = version.ok().flatten().and_then(|b| wire::version_of(&b)) {
            identity.insert("version".to_string(), version);
        }
        Some(identity)
    }
}

#[cfg(test)]
mod tests;
