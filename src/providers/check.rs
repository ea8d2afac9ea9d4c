//! `reprise providers`: each configured provider checked — key present, endpoint reachable,
//! model listed — without a billable call unless a probe is asked for.

use std::fmt::Write as _;
use std::time::Instant;

use super::{configured_backend, Backend, ChatRequest, Check};
use crate::config::Providers;
use crate::protocol::Params;

/// What `reprise providers` says about one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub name: String,
    pub kind: String,
    /// Where requests go (no secrets); the base URL when the backend could not be built.
    pub endpoint: String,
    pub model: String,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// Before a campaign: the first blocking failure among the targets' checks, as one sentence
/// naming the target ("target `x`: …"), or None when every target may be called.
pub async fn preflight(targets: &[(String, std::sync::Arc<dyn Backend>)]) -> Option<String> {
    for (name, backend) in targets.iter().filter(|(_, b)| b.preflight()) {
        if let Some(c) = backend
            .check()
            .await
            .into_iter()
            .find(|c| !c.ok && c.blocking)
        {
            return Some(format!(
                "target `{name}`: {} ({}); nothing was run",
                c.detail, c.what
            ));
        }
    }
    None
}

/// Every configured provider, in name order; `probe` adds one minimal chat call each.
pub async fn check_configured(providers: &Providers, probe: bool) -> Vec<Report> {
    let mut reports = Vec::new();
    for (name, config) in &providers.named {
        let mut report = Report {
            name: name.clone(),
            kind: format!("{:?}", config.kind).to_lowercase(),
            endpoint: config.base_url.clone(),
            model: config.model.clone().unwrap_or_default(),
            checks: Vec::new(),
        };
        match configured_backend(name, config, None) {
            Err(message) => report.checks.push(Check::fail("setup", message)),
            Ok(backend) => {
                report.endpoint = backend.endpoint();
                report.checks.push(key_check(config));
                report.checks.extend(backend.check().await);
                if probe {
                    report.checks.push(probe_call(backend.as_ref()).await);
                }
            }
        }
        reports.push(report);
    }
    reports
}

fn key_check(config: &crate::config::ProviderConfig) -> Check {
    // Building the backend read the key: here it is present.
    match (&config.api_key_env, &config.api_key_file) {
        (Some(var), _) => Check::pass("key", format!("from ${var}")),
        (None, Some(file)) => Check::pass("key", format!("from {}", file.display())),
        (None, None) => Check::pass("key", "none configured (the server needs none)"),
    }
}

/// One chat call asking for a single token: billable, so only on request.
pub async fn probe_call(backend: &dyn Backend) -> Check {
    let request = ChatRequest {
        system: None,
        user: "Reply with OK.".into(),
        params: Params {
            temperature: Some(0.0),
            max_tokens: Some(1),
            ..Params::default()
        },
    };
    let started = Instant::now();
    match backend.call(&request).await {
        Ok(reply) => {
            let served: Vec<String> = reply
                .served
                .iter()
                .filter(|(k, _)| !crate::analysis::PER_CALL_KEYS.contains(&k.as_str()))
                .map(|(k, v)| format!("{k} {}", crate::text::inert(v)))
                .collect();
            Check::pass(
                "probe",
                format!(
                    "answered in {} ms; served {}",
                    started.elapsed().as_millis(),
                    if served.is_empty() {
                        "(no identity given)".to_string()
                    } else {
                        served.join(" · ")
                    }
                ),
            )
        }
        Err(failure) => Check::fail(
            "probe",
            format!("{}: {}", failure.class.as_str(), failure.message),
        ),
    }
}

/// The reports as text: a block per provider, ✓ or ✗ per check.
pub fn render(reports: &[Report]) -> String {
    let mut out = String::new();
    if reports.is_empty() {
        let _ = writeln!(
            out,
            "no providers configured; add [providers.NAME] to config.toml (see the README's \"Use your own models\")"
        );
        return out;
    }
    for r in reports {
        let _ = writeln!(
            out,
            "{} ({}) {}{}",
            crate::text::inert(&r.name),
            r.kind,
            crate::text::inert(&r.endpoint),
            if r.model.is_empty() {
                String::new()
            } else {
                format!(" · model {}", crate::text::inert(&r.model))
            }
        );
        for c in &r.checks {
            let _ = writeln!(
                out,
                "  {} {:<8} {}",
                match (c.ok, c.blocking) {
                    (true, _) => "✓",
                    (false, true) => "✗",
                    (false, false) => "?",
                },
                c.what,
                crate::text::inert(&c.detail)
            );
        }
    }
    out
}
