//! `reprise providers` (and the pre-flight before `reprise run`) for the `gemini` kind:
//! `GET {base}/models/{model}` — free, needs the key, and says whether the model exists.

use serde_json::Value;

use super::GeminiBackend;
use crate::providers::http::{excerpt, read_capped, SMALL_BODY_LIMIT};
use crate::providers::Check;

impl GeminiBackend {
    pub(super) async fn check_model(&self) -> Vec<Check> {
        let url = self.model_url();
        let shown = format!("{}/models", self.settings.base_url);
        let mut response = match self.http.probe(&url, &shown).await {
            Ok(response) => response,
            Err(check) => return vec![check],
        };
        let status = response.status().as_u16();
        let body: Value = match read_capped(&mut response, SMALL_BODY_LIMIT).await {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        let model = excerpt(&self.settings.model);
        match status {
            200..=299 => match body["name"].as_str() {
                Some(name) => vec![
                    Check::pass("endpoint", format!("{shown} answered")),
                    Check::pass("model", format!("{model} is listed (as {})", excerpt(name))),
                ],
                None => vec![Check::unknown(
                    "endpoint",
                    format!("{shown} did not answer with a model"),
                )],
            },
            // A wrong key is a 400 whose detail says API_KEY_INVALID.
            400 if is_key_refusal(&body) => vec![Check::fail(
                "endpoint",
                format!("{shown} refused the key (HTTP {status})"),
            )],
            404 => vec![
                Check::pass("endpoint", format!("{shown} answered")),
                Check::fail("model", format!("{model} is not a model this API serves")),
            ],
            _ => vec![Check::unknown(
                "endpoint",
                format!("{shown} answered HTTP {status}"),
            )],
        }
    }
}

fn is_key_refusal(body: &Value) -> bool {
    body["error"]["details"].as_array().is_some_and(|details| {
        details.iter().any(|d| {
            d["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("API_KEY"))
        })
    })
}
