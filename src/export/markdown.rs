//! The Markdown report of a session: conditions, served identity, every measure per target ×
//! item, clusters with counts, and the earliest split. Every piece of archive text is made
//! inert (no control character survives) and escaped for Markdown.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::analysis::{compared_fields, ItemSnapshot, Snapshot, TargetSnapshot};
use crate::archive::Archive;

/// Clusters shown per item; the rest are counted in one line.
const CLUSTERS_SHOWN: usize = 10;
/// Characters of a cluster's text shown; longer texts say how much was left out.
const TEXT_SHOWN: usize = 600;
/// Characters of one parameter's JSON value shown.
const VALUE_SHOWN: usize = 200;
/// Tokens of shared prefix shown before the earliest split.
const PREFIX_TOKENS: usize = 12;

/// The report for `archive` (read from `path`) and its analysis `snapshot`.
pub fn markdown(archive: &Archive, snapshot: &Snapshot, path: &Path) -> String {
    let mut out = String::new();
    let header = &archive.header;
    let c = &header.conditions;
    let protocol = header.protocol_name().unwrap_or("unnamed");
    let _ = writeln!(out, "# reprise session: {}\n", esc(protocol));
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _ = writeln!(out, "- archive: {}", code(&file));
    let _ = writeln!(out, "- identity: {}", code(&header.identity));
    let _ = writeln!(
        out,
        "- recorded by {} {} on {}/{}",
        esc(&header.tool.name),
        esc(&header.tool.version),
        esc(&header.platform.os),
        esc(&header.platform.arch)
    );
    let _ = writeln!(out, "- started: {}", esc(&header.started_at));
    match &archive.close {
        Some(close) => {
            let _ = writeln!(
                out,
                "- ended: {} · outcome: {} · {} records of {} planned calls ({} ok, {} errors, {} cancelled)",
                esc(&close.ended_at),
                close.outcome.as_str(),
                close.records,
                close.planned_calls,
                close.ok,
                close.errors,
                close.cancelled
            );
        }
        None => {
            let _ = writeln!(
                out,
                "- **unfinished**: no closing record (the session was stopped or is still running); {} call records{}",
                archive.calls.len(),
                if archive.truncated_tail {
                    ", a partial last line ignored"
                } else {
                    ""
                }
            );
        }
    }
    if let Some(imported) = c.get("imported").filter(|v| v.is_object()) {
        let _ = writeln!(
            out,
            "- imported from {} ({} format, sha256 {}): outputs only, no requests",
            code(imported["file"].as_str().unwrap_or("?")),
            esc(imported["format"].as_str().unwrap_or("?")),
            code(imported["sha256"].as_str().unwrap_or("?"))
        );
    }
    conditions(&mut out, c);
    served(&mut out, archive, snapshot);
    measures(&mut out, snapshot);
    clusters(&mut out, snapshot);
    splits(&mut out, snapshot);
    out
}

fn conditions(out: &mut String, c: &Value) {
    let _ = writeln!(out, "\n## Conditions\n");
    if let Some(d) = c["protocol"]["description"]
        .as_str()
        .filter(|d| !d.is_empty())
    {
        let _ = writeln!(out, "{}\n", esc(d));
    }
    let campaign = &c["campaign"];
    if campaign.is_object() {
        let _ = writeln!(
            out,
            "- design: {} measured calls per target × item, {} warm-up, concurrency {}",
            json_short(&campaign["repeats"]),
            json_short(&campaign["warmup"]),
            json_short(&campaign["concurrency"])
        );
    }
    match c.get("answer").filter(|a| !a.is_null()) {
        Some(a) => {
            let _ = writeln!(
                out,
                "- answer extraction: pattern {}, normalised by {}",
                code(a["pattern"].as_str().unwrap_or("?")),
                esc(&json_short(&a["normalize"]))
            );
        }
        None => {
            let _ = writeln!(out, "- answer extraction: none");
        }
    }
    if let Some(tool) = c.get("tool").filter(|t| t.is_object()) {
        let _ = writeln!(
            out,
            "- tool: {} {}",
            esc(tool["name"].as_str().unwrap_or("?")),
            esc(tool["version"].as_str().unwrap_or("?"))
        );
    }

    let targets = c["targets"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(out, "\n### Targets\n");
    let _ = writeln!(out, "| target | provider | endpoint | model |");
    let _ = writeln!(out, "| --- | --- | --- | --- |");
    for t in &targets {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            cell(t["name"].as_str().unwrap_or("?")),
            cell(&json_short(&t["provider"])),
            cell(&json_short(&t["endpoint"])),
            cell(&json_short(&t["model"]))
        );
    }
    for t in &targets {
        parameters(out, t);
    }

    let items = c["items"].as_array().cloned().unwrap_or_default();
    if !items.is_empty() {
        let _ = writeln!(out, "\n### Items\n");
    }
    for item in &items {
        let _ = write!(out, "- {}", code(item["name"].as_str().unwrap_or("?")));
        if let Some(e) = item["expected"].as_str() {
            let _ = write!(out, " (expected {})", code(e));
        }
        let _ = writeln!(out);
        if let Some(user) = item["user"].as_str() {
            let _ = writeln!(out, "\n{}", fenced(user, TEXT_SHOWN));
        }
    }
}

/// Every parameter of the request bodies sent to target `t` except the messages (shown
/// under Items): its value for the first item, or each item's where they differ.
fn parameters(out: &mut String, t: &Value) {
    let name = t["name"].as_str().unwrap_or("?");
    let requests = t["requests"].as_array().cloned().unwrap_or_default();
    if let Some(headers) = t.get("headers").and_then(Value::as_object) {
        let names: Vec<String> = headers.keys().map(|k| code(k)).collect();
        let _ = writeln!(
            out,
            "\nExtra headers sent to {}: {}",
            esc(name),
            names.join(", ")
        );
    }
    let Some(first) = requests.first().and_then(|r| r["body"].as_object()) else {
        return;
    };
    let _ = writeln!(out, "\nParameters sent to {}:\n", esc(name));
    for (key, value) in first {
        if key == "messages" {
            continue;
        }
        let differs = requests.iter().any(|r| r["body"].get(key) != Some(value));
        if differs {
            let per_item: Vec<String> = requests
                .iter()
                .map(|r| {
                    format!(
                        "{} {}",
                        esc(r["item"].as_str().unwrap_or("?")),
                        code(&json_short(r["body"].get(key).unwrap_or(&Value::Null)))
                    )
                })
                .collect();
            let _ = writeln!(out, "- {}: by item: {}", code(key), per_item.join(", "));
        } else {
            let _ = writeln!(out, "- {} = {}", code(key), code(&json_short(value)));
        }
    }
}

fn served(out: &mut String, archive: &Archive, snapshot: &Snapshot) {
    let _ = writeln!(out, "\n## Served identity\n");
    let start = &archive.header.servers;
    let end = archive.close.as_ref().map(|c| &c.servers);
    for target in &snapshot.targets {
        let _ = writeln!(out, "### {}\n", esc(&target.target));
        if let Some(fields) = start.get(&target.target) {
            let _ = writeln!(out, "- server at start: {}", fields_line(fields));
        }
        // A volatile field (a `created` that is the time of the request) is no difference.
        let at_start = start.get(&target.target).map(compared_fields);
        match end.and_then(|e| e.get(&target.target)) {
            Some(fields) if at_start != Some(compared_fields(fields)) => {
                let _ = writeln!(out, "- ⚠ server at end differs: {}", fields_line(fields));
            }
            _ => {}
        }
        if target.served.is_empty() {
            let _ = writeln!(out, "- no call said what served it");
        }
        if target.served.len() > 1 {
            let _ = writeln!(
                out,
                "- ⚠ what served the calls changed during the session: {} identities",
                target.served.len()
            );
        }
        for (n, id) in target.served.iter().enumerate() {
            let _ = writeln!(
                out,
                "- {}. from {} call {} (record {} of the target), {} records: {}",
                n + 1,
                code(&id.first.item),
                id.first.call,
                id.first.after_records + 1,
                id.records,
                fields_line(&id.fields)
            );
        }
        let _ = writeln!(out);
    }
}

fn fields_line(fields: &std::collections::BTreeMap<String, String>) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{} {}", esc(k), code(v)))
        .collect();
    parts.join(" · ")
}

fn measures(out: &mut String, snapshot: &Snapshot) {
    let _ = writeln!(out, "## Measures\n");
    for target in &snapshot.targets {
        let _ = writeln!(out, "### {}\n", esc(&target.target));
        let _ = writeln!(
            out,
            "| item | calls | ok | errors | distinct | modal share [95% CI] | pairwise | entropy (bits) | NED | token similarity | verdict | first split | correct | p50 ms | p90 ms | p99 ms | max ms | tok/s |"
        );
        let _ = writeln!(out, "|{}", " --- |".repeat(18));
        for item in &target.items {
            let _ = writeln!(out, "| {} |", item_row(item).join(" | "));
        }
        battery(out, target);
        for item in &target.items {
            for (label, by_class) in [
                ("errors", &item.errors_by_class),
                ("retries", &item.retries_by_class),
            ] {
                if by_class.is_empty() {
                    continue;
                }
                let classes: Vec<String> = by_class
                    .iter()
                    .map(|(class, n)| format!("{} {n}", class.as_str()))
                    .collect();
                let _ = writeln!(
                    out,
                    "- {label} in {}: {}",
                    code(&item.item),
                    classes.join(", ")
                );
            }
            if !item.answers.is_empty() && item.ok > 0 {
                let answers: Vec<String> = item
                    .answers
                    .iter()
                    .map(|a| {
                        format!(
                            "{} ×{}",
                            a.answer.as_deref().map_or("(none)".into(), code),
                            a.count
                        )
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "- answers in {}: {}",
                    code(&item.item),
                    answers.join(", ")
                );
            }
        }
        let _ = writeln!(out);
    }
}

fn battery(out: &mut String, target: &TargetSnapshot) {
    let b = &target.battery;
    if target.items.len() < 2 {
        return;
    }
    let _ = writeln!(
        out,
        "\nBattery of {} items: TARr {} · TARa {} · mean modal share {}{}\n",
        b.items,
        opt(b.tar_raw, 2),
        opt(b.tar_answer, 2),
        opt(b.mean_modal_share, 3),
        b.mean_modal_share_ci
            .map(|[lo, hi]| format!(" [{lo:.3}, {hi:.3}] (bootstrap over items)"))
            .unwrap_or_default()
    );
}

fn item_row(item: &ItemSnapshot) -> Vec<String> {
    let pair = |e: Option<crate::analysis::PairEstimate>| match e {
        Some(e) if e.exact => format!("{:.3}", e.value),
        Some(e) => format!("≈{:.3}", e.value),
        None => "—".into(),
    };
    let latency = |v: f64| {
        if item.ok > 0 {
            format!("{v:.1}")
        } else {
            "—".into()
        }
    };
    vec![
        cell(&item.item),
        item.calls.to_string(),
        item.ok.to_string(),
        item.errors.to_string(),
        item.distinct_outputs.to_string(),
        match (item.modal_share, item.modal_share_ci) {
            (Some(m), Some([lo, hi])) => format!("{m:.3} [{lo:.3}, {hi:.3}]"),
            (Some(m), None) => format!("{m:.3}"),
            _ => "—".into(),
        },
        opt(item.pairwise_agreement, 3),
        opt(item.entropy_bits, 3),
        pair(item.ned_mean),
        pair(item.token_similarity_mean),
        item.verdict
            .and_then(|v| serde_json::to_value(v).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "—".into()),
        item.first_divergence
            .as_ref()
            .map_or_else(|| "—".into(), |d| format!("token {}", d.index)),
        item.accuracy
            .map_or_else(|| "—".into(), |a| format!("{:.0}%", a * 100.0)),
        latency(item.latency_ms.p50),
        latency(item.latency_ms.p90),
        latency(item.latency_ms.p99),
        latency(item.latency_ms.max),
        item.tokens_per_s
            .map_or_else(|| "—".into(), |t| format!("{t:.0}")),
    ]
}

fn clusters(out: &mut String, snapshot: &Snapshot) {
    let _ = writeln!(out, "## Clusters (distinct outputs)\n");
    for target in &snapshot.targets {
        for item in &target.items {
            if item.clusters.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "### {} · {}: {} distinct of {} outputs\n",
                esc(&target.target),
                esc(&item.item),
                item.distinct_outputs,
                item.ok
            );
            for cluster in item.clusters.iter().take(CLUSTERS_SHOWN) {
                let share = cluster.count as f64 * 100.0 / item.ok.max(1) as f64;
                let _ = write!(out, "**×{}** ({share:.1}%)", cluster.count);
                if let Some(answer) = &cluster.answer {
                    let _ = write!(out, " · answer {}", code(answer));
                }
                if let Some(at) = cluster.first_divergence {
                    let _ = write!(out, " · leaves the modal output at token {at}");
                }
                let _ = writeln!(out, "\n\n{}\n", fenced(&cluster.text, TEXT_SHOWN));
            }
            if item.clusters.len() > CLUSTERS_SHOWN {
                let rest = &item.clusters[CLUSTERS_SHOWN..];
                let calls: u64 = rest.iter().map(|c| c.count).sum();
                let _ = writeln!(
                    out,
                    "… and {} more distinct outputs ({calls} outputs)\n",
                    rest.len()
                );
            }
        }
    }
}

fn splits(out: &mut String, snapshot: &Snapshot) {
    let _ = writeln!(out, "## Earliest split\n");
    let mut any = false;
    for target in &snapshot.targets {
        for item in &target.items {
            let Some(d) = &item.first_divergence else {
                continue;
            };
            any = true;
            let _ = writeln!(
                out,
                "### {} · {}: token {} ({} tokenizer)\n",
                esc(&target.target),
                esc(&item.item),
                d.index,
                item.tokenizer
            );
            if let Some(modal) = item.clusters.first() {
                let from = d.index.saturating_sub(PREFIX_TOKENS);
                let prefix: String = (from..d.index)
                    .filter_map(|i| modal.tokens.get(i))
                    .collect();
                if !prefix.is_empty() {
                    let _ = writeln!(
                        out,
                        "Shared text before the split{}:\n\n{}\n",
                        if from > 0 { " (its end)" } else { "" },
                        fenced(&prefix, TEXT_SHOWN)
                    );
                }
            }
            let _ = writeln!(out, "| next token | outputs |\n| --- | --- |");
            for b in &d.branches {
                let token = match &b.token {
                    Some(t) => code(t),
                    None => "(output ends)".into(),
                };
                let _ = writeln!(out, "| {token} | {} |", b.count);
            }
            let _ = writeln!(out);
        }
    }
    if !any {
        let _ = writeln!(
            out,
            "No item split: every item's outputs agree token for token."
        );
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{v:.decimals$}"))
}

/// A JSON value in one short line (strings without quotes).
fn json_short(v: &Value) -> String {
    let s = match v {
        Value::Null => "—".to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => n
            .as_f64()
            .map_or_else(|| n.to_string(), crate::text::parameter_float),
        other => other.to_string(),
    };
    truncate(&s, VALUE_SHOWN)
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

/// Inline text: control characters made visible, Markdown punctuation escaped.
pub(super) fn esc(s: &str) -> String {
    let inert = crate::text::inert(s);
    let mut out = String::with_capacity(inert.len());
    for ch in inert.chars() {
        if "\\`*_[]<>|#!~&".contains(ch) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// A table cell: as inline text (the escaped `|` keeps the columns).
fn cell(s: &str) -> String {
    esc(s)
}

/// Inline code: control characters made visible, delimited by more backticks than it holds.
pub(super) fn code(s: &str) -> String {
    let inert = crate::text::inert(s).replace('|', "¦");
    let fence = "`".repeat(longest_run(&inert, '`') + 1);
    let pad = if inert.starts_with('`') || inert.ends_with('`') || inert.is_empty() {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{inert}{pad}{fence}")
}

/// A fenced block keeping line breaks and tabs; every other control character made visible.
/// Cut after `max` characters, saying how many were left out.
pub(super) fn fenced(s: &str, max: usize) -> String {
    let mut text: String = s
        .chars()
        .map(|ch| {
            if ch == '\n' || ch == '\t' {
                ch.to_string()
            } else {
                crate::text::inert(ch.encode_utf8(&mut [0; 4])).into_owned()
            }
        })
        .collect();
    let total = s.chars().count();
    if total > max {
        text = truncate(&text, max);
        text.push_str(&format!("\n[… {} more characters]", total - max));
    }
    let fence = "`".repeat(longest_run(&text, '`').max(2) + 1);
    format!("{fence}text\n{text}\n{fence}")
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for ch in s.chars() {
        run = if ch == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}
