//! The `openai` kind: `POST {base_url}/chat/completions`, streamed (server-sent events) or
//! whole. Speaks to OpenAI and every compatible server (vLLM, llama.cpp, LM Studio, Ollama's
//! compatibility endpoint, OpenRouter, `reprise serve`, …). One call is one attempt: retries
//! belong to the runner.

pub mod identity;
pub mod wire;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::http::{self, excerpt, models, Auth, Framing, Http, Route, Settings};
use super::{Backend, CallFailure, ChatRequest, Check, Reply};
use crate::config::TokenLimitField;
use crate::record::ErrorClass;
use wire::Assembly;

/// Where `provider = "openai"` goes unless `$OPENAI_BASE_URL` says otherwise.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
pub const OPENAI_BASE_URL_ENV: &str = "OPENAI_BASE_URL";
pub const OPENAI_API_KEY_ENV: &str = "OPENAI_API_KEY";

/// `provider = "openai"`: `$OPENAI_BASE_URL` or api.openai.com, key from `$OPENAI_API_KEY`.
pub fn builtin(model: Option<&str>) -> Result<Settings, String> {
    let base = http::settings::env_or(OPENAI_BASE_URL_ENV, OPENAI_BASE_URL);
    Settings::builtin("openai", model, base, Some(OPENAI_API_KEY_ENV))
}

/// An `openai`-kind target.
#[derive(Debug)]
pub struct OpenAiBackend {
    settings: Settings,
    http: Http,
}

impl OpenAiBackend {
    /// The backend for `settings`; fails (one sentence) on an unusable URL or header.
    pub fn new(settings: Settings) -> Result<Self, String> {
        let route = Route {
            path: "/chat/completions".into(),
            framing: Framing::Sse,
            auth: Auth::Bearer,
            fixed: &[],
            request_id: Some("x-request-id"),
        };
        let http = Http::new(&settings, route)?;
        Ok(OpenAiBackend { settings, http })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn models_url(&self) -> String {
        format!("{}/models", self.settings.base_url)
    }
}

#[async_trait]
impl Backend for OpenAiBackend {
    fn request_body(&self, request: &ChatRequest) -> Value {
        let mut messages = Vec::new();
        if let Some(system) = &request.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": request.user}));
        let mut body = json!({"model": self.settings.model, "messages": messages});
        // Only what the protocol set: a server's default is its own business (and recorded as
        // absent). top_k is not a Chat Completions field.
        let p = &request.params;
        let set = |body: &mut Value, key: &str, value: Value| body[key] = value;
        if let Some(t) = p.temperature {
            set(&mut body, "temperature", json!(t));
        }
        if let Some(t) = p.top_p {
            set(&mut body, "top_p", json!(t));
        }
        if let Some(m) = p.max_tokens {
            set(&mut body, self.settings.max_tokens_field.as_str(), json!(m));
        }
        if let Some(s) = p.seed {
            set(&mut body, "seed", json!(s));
        }
        if !p.stop.is_empty() {
            set(&mut body, "stop", json!(p.stop));
        }
        if self.settings.stream {
            set(&mut body, "stream", json!(true));
            set(&mut body, "stream_options", json!({"include_usage": true}));
        }
        if self.settings.logprobs {
            set(&mut body, "logprobs", json!(true));
        }
        body
    }

    fn endpoint(&self) -> String {
        self.http.endpoint().to_string()
    }

    fn http_settings(&self) -> Option<&Settings> {
        Some(&self.settings)
    }

    /// The model's entry in `GET {base}/models` (with llama.cpp's `meta`: `n_params`, `size`,
    /// …), plus llama.cpp's `GET {root}/props` (`build_info`, `model_path`, `total_slots`,
    /// `default_seed`, `chat_template_sha256`, `quantization`) and vLLM's `GET {root}/version`
    /// (`server_version`) where the server has them; `{root}` is the base URL without its
    /// `/v1`. Fetched together; whatever fails is left out.
    async fn server_identity(&self) -> Option<BTreeMap<String, String>> {
        let root = identity::server_root(&self.settings.base_url);
        let models_url = self.models_url();
        let (props_url, version_url) = (format!("{root}/props"), format!("{root}/version"));
        let (models, props, version) = tokio::join!(
            self.http.get_small(&models_url),
            self.http.get_small(&props_url),
            self.http.get_small(&version_url),
        );
        let body = |fetched: Result<Option<Vec<u8>>, String>| fetched.ok().flatten();
        let entry = body(models)
            .map(|b| identity::model_entry(&b, &self.settings.model))
            .unwrap_or_default();
        let props = body(props).map(|b| identity::props(&b));
        let version = body(version).map(|b| identity::version(&b));
        identity::combine(entry, props.into_iter().chain(version))
    }

    /// `GET {base}/models`: reachable, key accepted, model listed.
    async fn check(&self) -> Vec<Check> {
        let url = self.models_url();
        let response = match self.http.probe(&url, &url).await {
            Ok(response) => response,
            Err(check) => return vec![check],
        };
        let status = response.status();
        if !status.is_success() {
            // Many compatible servers have no model list: that says nothing about chat.
            return vec![Check::unknown(
                "endpoint",
                format!("{url} answered HTTP {status}; no model list to check against"),
            )];
        }
        let ids: Vec<String> = match response.json::<Value>().await {
            Ok(v) => v["data"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(|m| m["id"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            Err(_) => {
                return vec![Check::unknown(
                    "endpoint",
                    format!("{url} did not answer with a model list"),
                )]
            }
        };
        if ids.is_empty() {
            return vec![Check::unknown(
                "model",
                format!("{url} lists no models to check against"),
            )];
        }
        let mut checks = vec![Check::pass(
            "endpoint",
            format!("{url} lists {}", models(ids.len())),
        )];
        let model = &self.settings.model;
        checks.push(if ids.iter().any(|id| id == model) {
            Check::pass("model", format!("{} is listed", excerpt(model)))
        } else {
            Check::fail(
                "model",
                format!(
                    "{} is not among the {} listed",
                    excerpt(model),
                    models(ids.len())
                ),
            )
        });
        checks
    }

    async fn call(&self, request: &ChatRequest) -> Result<Reply, CallFailure> {
        let body = self.request_body(request);
        let provider = &self.settings.provider;
        let assembly = Assembly::new(provider, self.settings.logprobs);
        self.http
            .call(&body, assembly, |r| {
                let error = wire::server_error(&r.body);
                let refused = error.param.clone();
                let mut failure =
                    http::status::classify(provider, r.status, r.retry_after.as_deref(), r.keyed, error);
                // OpenAI's reasoning models refuse the deprecated name: say how to send the
                // other one.
                if failure.class == ErrorClass::RefusedParameter
                    && refused.as_deref() == Some("max_tokens")
                    && self.settings.max_tokens_field == TokenLimitField::MaxTokens
                {
                    let said = failure.message.trim_end_matches('.').len();
                    failure.message.truncate(said);
                    failure.message.push_str(
                        "; max_tokens_field = \"max_completion_tokens\" on the provider sends it as this model asks",
                    );
                }
                failure
            })
            .await
    }
}

#[cfg(test)]
mod tests;
