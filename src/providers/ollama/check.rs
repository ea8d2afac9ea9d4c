//! `reprise providers` (and the pre-flight before `reprise run`) for the `ollama` kind:
//! `GET {base}/api/tags` — free, and says whether the model is pulled, with its digest.

use super::{wire, OllamaBackend};
use crate::providers::http::{excerpt, read_capped, SMALL_BODY_LIMIT};
use crate::providers::Check;

impl OllamaBackend {
    pub(super) async fn check_model(&self) -> Vec<Check> {
        let url = format!("{}/api/tags", self.settings.base_url);
        let mut response = match self.http.probe(&url, &url).await {
            Ok(response) => response,
            Err(check) => return vec![check],
        };
        let status = response.status().as_u16();
        if !response.status().is_success() {
            // A proxy may pass only /api/chat: that says nothing about chat.
            return vec![Check::unknown(
                "endpoint",
                format!("{url} answered HTTP {status}; no model list to check against"),
            )];
        }
        let listed = match read_capped(&mut response, SMALL_BODY_LIMIT).await {
            Ok(body) => wire::listed(&body),
            Err(_) => Err(String::new()),
        };
        let Ok(listed) = listed else {
            return vec![Check::unknown(
                "endpoint",
                format!("{url} did not answer with a model list"),
            )];
        };
        let count = match listed.len() {
            1 => "1 model".to_string(),
            n => format!("{n} models"),
        };
        let mut checks = vec![Check::pass("endpoint", format!("{url} lists {count}"))];
        let wanted = wire::full_name(&self.settings.model);
        let model = excerpt(&self.settings.model);
        let found = listed
            .into_iter()
            .find(|(name, _)| wire::full_name(name) == wanted);
        checks.push(match found {
            Some((name, Some(digest))) => {
                // The first call need not look it up again.
                let _ = self.digest.set(Some(digest.clone()));
                let short: String = digest.chars().take(12).collect();
                Check::pass(
                    "model",
                    format!("{} is pulled (digest {short})", excerpt(&name)),
                )
            }
            Some((name, None)) => Check::pass("model", format!("{} is pulled", excerpt(&name))),
            // Ollama answers 404 to a chat with a model it has not pulled.
            None => Check::fail(
                "model",
                format!("{model} is not pulled on this server (ollama pull {model})"),
            ),
        });
        checks
    }
}
