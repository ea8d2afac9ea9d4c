//! `reprise providers` for the `anthropic` kind: `GET {base}/models/{model}` — free, needs the
//! key, and resolves an alias to the dated model that would serve it.

use serde_json::Value;

use super::AnthropicBackend;
use crate::providers::http::{excerpt, read_capped, SMALL_BODY_LIMIT};
use crate::providers::Check;

impl AnthropicBackend {
    pub(super) async fn check_model(&self) -> Vec<Check> {
        let base = &self.settings.base_url;
        let mut url = match reqwest::Url::parse(&format!("{base}/models")) {
            Ok(url) => url,
            Err(e) => return vec![Check::fail("endpoint", format!("bad base_url: {e}"))],
        };
        // The model goes in as one path segment, escaped, whatever characters it holds.
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(&self.settings.model);
        }
        let shown = format!("{base}/models");
        let response = match self.http.probe(url.as_str(), &shown).await {
            Ok(response) => response,
            Err(check) => return vec![check],
        };
        let status = response.status().as_u16();
        let model = excerpt(&self.settings.model);
        match status {
            404 => self.model_not_found(response, &shown, &model).await,
            200..=299 => {
                let id = response
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["id"].as_str().map(excerpt));
                let resolved = match id {
                    Some(id) if id != model => format!("{model} is listed (as {id})"),
                    Some(_) => format!("{model} is listed"),
                    None => {
                        return vec![Check::unknown(
                            "endpoint",
                            format!("{shown} did not answer with a model"),
                        )]
                    }
                };
                vec![
                    Check::pass("endpoint", format!("{shown} answered")),
                    Check::pass("model", resolved),
                ]
            }
            // A server error or a proxy without the model list says nothing about messages.
            _ => vec![Check::unknown(
                "endpoint",
                format!("{shown} answered HTTP {status}"),
            )],
        }
    }

    /// The model lookup answered 404: Anthropic's error (`{"type":"error","error":
    /// {"type":"not_found_error",…}}`) means the model is unknown; any other 404 is a
    /// compatible server that serves `/messages` but no model lookup (llama.cpp), which says
    /// nothing about the model.
    async fn model_not_found(
        &self,
        mut response: reqwest::Response,
        shown: &str,
        model: &str,
    ) -> Vec<Check> {
        let body: Option<Value> = read_capped(&mut response, SMALL_BODY_LIMIT)
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let anthropic = body
            .as_ref()
            .is_some_and(|b| b["type"] == "error" && b["error"]["type"] == "not_found_error");
        if !anthropic {
            return vec![Check::unknown(
                "model",
                format!("{shown} has no model lookup (HTTP 404); could not check {model}"),
            )];
        }
        let whose = if self.http.has_key() {
            "this key can use"
        } else {
            "this server has"
        };
        vec![
            Check::pass("endpoint", format!("{shown} answered")),
            Check::fail("model", format!("{model} is not a model {whose}")),
        ]
    }
}
