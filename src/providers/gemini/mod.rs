//! The `gemini` kind: Google's Gemini API, `POST {base}/models/{model}:generateContent`, or
//! `:streamGenerateContent?alt=sse` streamed as server-sent events that each carry a partial
//! response. The key travels in `x-goog-api-key`. One call is one attempt: retries belong to
//! the runner.
//!
//! What the body carries: the prompt as one user turn in `contents`, the system prompt as
//! `systemInstruction`, and under `generationConfig` only what the protocol set —
//! `temperature`, `topP`, `topK`, `maxOutputTokens`, `seed` (Gemini honours it "best effort"),
//! `stopSequences` — plus `responseLogprobs` when the provider's `logprobs` is on. Many Gemini
//! models refuse log-probabilities (a `refused_parameter` failure), so the built-in provider
//! leaves them off; a configured one asks only when `logprobs = true` is written.
//!
//! Served identity per call: `modelVersion` and `responseId`; `server_identity` adds the
//! model's `name` and `version` from `GET {base}/models/{model}`.

mod check;
pub mod wire;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::http::{self, excerpt, Auth, Framing, Http, Route, Settings};
use super::{Backend, CallFailure, ChatRequest, Check, Reply};
use wire::Assembly;

/// Where `provider = "gemini"` goes unless `$GEMINI_BASE_URL` says otherwise.
pub const GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";
pub const GEMINI_BASE_URL_ENV: &str = "GEMINI_BASE_URL";
pub const GEMINI_API_KEY_ENV: &str = "GEMINI_API_KEY";

/// `provider = "gemini"`: `$GEMINI_BASE_URL` or the Gemini API, key from `$GEMINI_API_KEY`,
/// no log-probabilities.
pub fn builtin(model: Option<&str>) -> Result<Settings, String> {
    let base = http::settings::env_or(GEMINI_BASE_URL_ENV, GEMINI_BASE_URL);
    let mut s = Settings::builtin("gemini", model, base, Some(GEMINI_API_KEY_ENV))?;
    s.logprobs = false;
    Ok(s)
}

/// A `gemini`-kind target.
#[derive(Debug)]
pub struct GeminiBackend {
    settings: Settings,
    http: Http,
}

impl GeminiBackend {
    /// The backend for `settings`; fails (one sentence) on an unusable URL, header or key.
    pub fn new(settings: Settings) -> Result<Self, String> {
        let method = if settings.stream {
            "streamGenerateContent?alt=sse"
        } else {
            "generateContent"
        };
        let route = Route {
            path: format!("{}:{method}", model_path(&settings.model)),
            framing: Framing::Sse,
            auth: Auth::Header("x-goog-api-key"),
            fixed: &[],
            request_id: None,
        };
        let http = Http::new(&settings, route)?;
        Ok(GeminiBackend { settings, http })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// `{base}/models/{model}`: the model's metadata.
    fn model_url(&self) -> String {
        format!(
            "{}{}",
            self.settings.base_url,
            model_path(&self.settings.model)
        )
    }
}

/// `/models/{model}`, the model escaped as one path segment; a `models/` prefix (as the API's
/// own listings write names) is accepted.
fn model_path(model: &str) -> String {
    let name = model.strip_prefix("models/").unwrap_or(model);
    let mut path = String::from("/models/");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            path.push(b as char);
        } else {
            path.push_str(&format!("%{b:02X}"));
        }
    }
    path
}

#[async_trait]
impl Backend for GeminiBackend {
    fn request_body(&self, request: &ChatRequest) -> Value {
        let p = &request.params;
        let mut config = Map::new();
        let mut set = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                config.insert(key.to_string(), value);
            }
        };
        set("temperature", p.temperature.map(|v| json!(v)));
        set("topP", p.top_p.map(|v| json!(v)));
        set("topK", p.top_k.map(|v| json!(v)));
        set("maxOutputTokens", p.max_tokens.map(|v| json!(v)));
        set("seed", p.seed.map(|v| json!(v)));
        set("stopSequences", (!p.stop.is_empty()).then(|| json!(p.stop)));
        set(
            "responseLogprobs",
            self.settings.logprobs.then_some(json!(true)),
        );
        let mut body = json!({
            "contents": [{"role": "user", "parts": [{"text": request.user}]}],
        });
        if let Some(system) = &request.system {
            body["systemInstruction"] = json!({"parts": [{"text": system}]});
        }
        if !config.is_empty() {
            body["generationConfig"] = Value::Object(config);
        }
        body
    }

    fn endpoint(&self) -> String {
        self.http.endpoint().to_string()
    }

    fn http_settings(&self) -> Option<&Settings> {
        Some(&self.settings)
    }

    /// The model's `name` and `version` as `GET {base}/models/{model}` gives them.
    async fn server_identity(&self) -> Option<BTreeMap<String, String>> {
        let body = self.http.get_small(&self.model_url()).await.ok()??;
        let model: Value = serde_json::from_slice(&body).ok()?;
        let fields: BTreeMap<String, String> = ["name", "version"]
            .into_iter()
            .filter_map(|k| Some((k.to_string(), excerpt(model[k].as_str()?))))
            .collect();
        (!fields.is_empty()).then_some(fields)
    }

    /// `GET {base}/models/{model}`: reachable, key accepted, model known.
    async fn check(&self) -> Vec<Check> {
        self.check_model().await
    }

    async fn call(&self, request: &ChatRequest) -> Result<Reply, CallFailure> {
        let body = self.request_body(request);
        let sent: Vec<&str> = body["generationConfig"]
            .as_object()
            .map(|c| c.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let provider = &self.settings.provider;
        let assembly = Assembly::new(provider, self.settings.logprobs);
        self.http
            .call(&body, assembly, |r| {
                let error = wire::server_error(&r.body, &sent);
                // Google's wait is in the body (RetryInfo), which the message names.
                http::status::classify(provider, r.status, None, r.keyed, error)
            })
            .await
    }
}

#[cfg(test)]
mod tests;
