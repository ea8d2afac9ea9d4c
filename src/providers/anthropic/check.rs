//! `reprise providers` for the `anthropic` kind: `GET {base}/models/{model}` — free, needs the
//! key, and resolves an alias to the dated model that would serve it.

use serde_json::Value;

use super::AnthropicBackend;
use crate::providers::openai::wire::excerpt;
use crate::providers::openai::{cause, seconds};
use crate::providers::Check;

impl AnthropicBackend {
    pub(super) async fn check_model(&self) -> Vec<Check> {
        let base = self.settings.base_url.trim_end_matches('/');
        let mut url = match reqwest::Url::parse(&format!("{base}/models")) {
            Ok(url) => url,
            Err(e) => return vec![Check::fail("endpoint", format!("bad base_url: {e}"))],
        };
        // The model goes in as one path segment, escaped, whatever characters it holds.
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(&self.settings.model);
        }
        let shown = format!("{base}/models");
        let scrub = |text: String| match &self.settings.key {
            Some(key) => key.scrub(&text),
            None => text,
        };
        let request = self.client.get(url).headers(self.headers.clone());
        let wait = self.settings.timeouts.first_byte;
        let response = match tokio::time::timeout(wait, request.send()).await {
            Err(_) => {
                return vec![Check::fail(
                    "endpoint",
                    format!("{shown} sent nothing within {}", seconds(wait)),
                )]
            }
            Ok(Err(e)) => {
                return vec![Check::fail(
                    "endpoint",
                    scrub(format!("{shown} unreachable: {}", cause(&e))),
                )]
            }
            Ok(Ok(r)) => r,
        };
        let status = response.status().as_u16();
        let model = excerpt(&self.settings.model);
        match status {
            401 | 403 => vec![Check::fail(
                "endpoint",
                format!("{shown} refused the key (HTTP {status})"),
            )],
            404 => vec![
                Check::pass("endpoint", format!("{shown} answered")),
                Check::fail("model", format!("{model} is not a model this key can use")),
            ],
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
                        return vec![Check::fail(
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
            _ => vec![Check::fail(
                "endpoint",
                format!("{shown} answered HTTP {status}"),
            )],
        }
    }
}
