//! The headless report: a readable table, or the JSON summary (a fixed contract).

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use crate::analysis::{Divergence, ItemSnapshot, Snapshot, TargetSnapshot};
use crate::archive::Close;

pub const SUMMARY_FORMAT_VERSION: u32 = 1;

/// The JSON summary. Field names in the contract are fixed; others may be added.
pub fn summary_json(snapshot: &Snapshot, archive: &Path, identity: &str) -> Value {
    json!({
        "format_version": SUMMARY_FORMAT_VERSION,
        "archive": archive.display().to_string(),
        "identity": identity,
        "targets": snapshot.targets.iter().map(target_json).collect::<Vec<_>>(),
    })
}

/// `summary` with, when the session did not complete, a `stopped` object saying how and why
/// (the closing record's outcome, reason and counts of planned calls left without an outcome).
pub fn with_stop(mut summary: Value, close: &Close) -> Value {
    if let Some(reason) = &close.reason {
        summary["stopped"] = json!({
            "outcome": close.outcome.as_str(),
            "reason": reason,
            "planned_calls": close.planned_calls,
            "not_sent": close.not_sent,
            "without_outcome": close.without_outcome,
        });
    }
    summary
}

fn target_json(target: &TargetSnapshot) -> Value {
    json!({
        "target": target.target,
        "items": target.items.iter().map(item_json).collect::<Vec<_>>(),
        "battery": target.battery,
        "served": target.served,
    })
}

fn item_json(item: &ItemSnapshot) -> Value {
    json!({
        "item": item.item,
        "calls": item.calls,
        "ok": item.ok,
        "errors": item.errors,
        "cancelled": item.cancelled,
        "errors_by_class": item.errors_by_class,
        "retries_by_class": item.retries_by_class,
        "distinct_outputs": item.distinct_outputs,
        "modal_share": item.modal_share,
        "modal_share_ci": item.modal_share_ci,
        "pairwise_agreement": item.pairwise_agreement,
        "entropy_bits": item.entropy_bits,
        "tar_raw": item.tar_raw,
        "tar_answer": item.tar_answer,
        "verdict": item.verdict,
        "first_divergence": item.first_divergence,
        "ned_mean": item.ned_mean.map(|e| e.value),
        "ned_estimate": item.ned_mean,
        "token_similarity_mean": item.token_similarity_mean,
        "accuracy": item.accuracy,
        "answers": item.answers,
        "tokenizer": item.tokenizer,
        "tokens_per_s": item.tokens_per_s,
        "latency_ms": item.latency_ms,
    })
}

/// The human-readable table for stdout.
pub fn table(snapshot: &Snapshot, archive: &Path, identity: &str, protocol: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} · identity {} · archive {}",
        crate::text::inert(protocol),
        crate::archive::short_identity(identity),
        archive.display()
    );
    for target in &snapshot.targets {
        let _ = writeln!(out, "\ntarget {}", crate::text::inert(&target.target));
        let header = [
            "item",
            "calls",
            "ok",
            "err",
            "distinct",
            "modal share [95% CI]",
            "pairwise",
            "entropy",
            "NED",
            "verdict",
            "first split",
            "answers",
            "correct",
            "p50 ms",
            "p99 ms",
            "tok/s",
        ];
        let rows: Vec<Vec<String>> = target.items.iter().map(item_row).collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            let mut s = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                let pad = w - cell.chars().count();
                // Text columns left-aligned, numbers right-aligned.
                if i == 0 || i == 5 || i == 9 || i == 10 || i == 11 {
                    s.push_str(cell);
                    s.push_str(&" ".repeat(pad));
                } else {
                    s.push_str(&" ".repeat(pad));
                    s.push_str(cell);
                }
                s.push_str("  ");
            }
            s.trim_end().to_string()
        };
        let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
        let _ = writeln!(out, "{}", line(&header));
        for row in &rows {
            let _ = writeln!(out, "{}", line(row));
        }
        let b = &target.battery;
        if target.items.len() > 1 {
            let _ = writeln!(
                out,
                "battery of {} items: TARr {} · TARa {} · mean modal share {} {}",
                b.items,
                opt(b.tar_raw, 2),
                opt(b.tar_answer, 2),
                opt(b.mean_modal_share, 3),
                b.mean_modal_share_ci
                    .map(|[lo, hi]| format!("[{lo:.3}, {hi:.3}] (bootstrap over items)"))
                    .unwrap_or_default(),
            );
        }
        for item in &target.items {
            if !item.retries_by_class.is_empty() {
                let classes: Vec<String> = item
                    .retries_by_class
                    .iter()
                    .map(|(class, n)| format!("{} {n}", class.as_str()))
                    .collect();
                let _ = writeln!(
                    out,
                    "retried in {}: {}",
                    crate::text::inert(&item.item),
                    classes.join(", ")
                );
            }
            if !item.errors_by_class.is_empty() {
                let classes: Vec<String> = item
                    .errors_by_class
                    .iter()
                    .map(|(class, n)| format!("{} {n}", class.as_str()))
                    .collect();
                let _ = writeln!(
                    out,
                    "errors in {}: {}",
                    crate::text::inert(&item.item),
                    classes.join(", ")
                );
            }
        }
        served_lines(&mut out, target);
    }
    out
}

/// Served identities, listed when what served the target changed during the campaign: each
/// with the call where it first appeared.
fn served_lines(out: &mut String, target: &TargetSnapshot) {
    if target.served.len() < 2 {
        return;
    }
    let _ = writeln!(
        out,
        "⚠ served identity changed: {} identities",
        target.served.len()
    );
    for (n, id) in target.served.iter().enumerate() {
        let fields: Vec<String> = id
            .fields
            .iter()
            .map(|(k, v)| format!("{k} {}", crate::text::inert(v)))
            .collect();
        let _ = writeln!(
            out,
            "  {}. from {} call {} (record {} of the target), {} records: {}",
            n + 1,
            crate::text::inert(&id.first.item),
            id.first.call,
            id.first.after_records + 1,
            id.records,
            fields.join(" · ")
        );
    }
}

fn item_row(item: &ItemSnapshot) -> Vec<String> {
    vec![
        // Names may come from someone else's archive: never let them drive the terminal.
        crate::text::inert(&item.item).into_owned(),
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
        match item.ned_mean {
            Some(e) if e.exact => format!("{:.3}", e.value),
            Some(e) => format!("≈{:.3}", e.value),
            None => "—".into(),
        },
        item.verdict
            .map(|v| {
                serde_json::to_value(v)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .unwrap_or_else(|| "—".into()),
        item.first_divergence
            .as_ref()
            .map(split_label)
            .unwrap_or_else(|| "—".into()),
        answers_label(item),
        item.accuracy
            .map_or_else(|| "—".into(), |a| format!("{:.0}%", a * 100.0)),
        if item.ok > 0 {
            format!("{:.1}", item.latency_ms.p50)
        } else {
            "—".into()
        },
        if item.ok > 0 {
            format!("{:.1}", item.latency_ms.p99)
        } else {
            "—".into()
        },
        item.tokens_per_s
            .map_or_else(|| "—".into(), |t| format!("{t:.0}")),
    ]
}

/// `B 97% · C 3%`: the two most frequent extracted answers (`?` where extraction failed).
fn answers_label(item: &ItemSnapshot) -> String {
    if item.answers.is_empty() || item.ok == 0 {
        return "—".into();
    }
    let mut parts: Vec<String> = item
        .answers
        .iter()
        .take(2)
        .map(|a| {
            let answer = a.answer.as_deref().map_or("?".into(), crate::text::inert);
            let pct = a.count as f64 * 100.0 / item.ok as f64;
            if pct < 0.5 {
                format!("{answer} <1%")
            } else {
                format!("{answer} {pct:.0}%")
            }
        })
        .collect();
    if item.answers.len() > 2 {
        parts.push(format!("+{}", item.answers.len() - 2));
    }
    parts.join(" · ")
}

/// `@12: "Queens"×92 "Bronx"×8`, at most three branches.
fn split_label(d: &Divergence) -> String {
    let mut s = format!("@{}:", d.index);
    for b in d.branches.iter().take(3) {
        let token = match &b.token {
            Some(t) => format!("{:?}", crate::text::inert(t)),
            None => "<end>".into(),
        };
        let _ = write!(s, " {token}×{}", b.count);
    }
    if d.branches.len() > 3 {
        let _ = write!(s, " +{}", d.branches.len() - 3);
    }
    s
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map(|v| format!("{v:.decimals$}"))
        .unwrap_or_else(|| "—".into())
}

/// The `reprise sessions` listing: one line per session, oldest first.
pub fn sessions_table(dir: &Path, listing: &crate::archive::SessionList) -> String {
    let mut out = String::new();
    if listing.sessions.is_empty() {
        let _ = writeln!(out, "no sessions in {}", dir.display());
    }
    let rows: Vec<[String; 6]> = listing
        .sessions
        .iter()
        .map(|s| {
            [
                s.started_at
                    .chars()
                    .take(19)
                    .collect::<String>()
                    .replace('T', " "),
                crate::text::inert(s.protocol_name.as_deref().unwrap_or("?")).into_owned(),
                crate::archive::short_identity(&s.identity).to_string(),
                s.records.to_string(),
                s.outcome.map_or("unfinished", |o| o.as_str()).to_string(),
                s.summary
                    .as_ref()
                    .map(consistency)
                    .unwrap_or_else(|| "—".into()),
            ]
        })
        .collect();
    let header = [
        "started (UTC)",
        "protocol",
        "identity",
        "records",
        "outcome",
        "consistency",
    ];
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    if !rows.is_empty() {
        let cells: Vec<String> = header
            .iter()
            .zip(&widths)
            .map(|(h, w)| format!("{h:<w$}"))
            .collect();
        let _ = writeln!(out, "{}  file", cells.join("  "));
    }
    for (row, session) in rows.iter().zip(&listing.sessions) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let file = session
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(out, "{}  {}", cells.join("  "), crate::text::inert(&file));
    }
    for skipped in &listing.skipped {
        let _ = writeln!(out, "skipped: {}", crate::text::inert(&skipped.to_string()));
    }
    out
}

/// `0.950 mean modal share, 3/5 identical` from a closing record's summary.
/// The consistency column of `reprise sessions`, from a closing record's summary.
pub fn consistency(summary: &Value) -> String {
    let items: Vec<&Value> = summary["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["items"].as_array().into_iter().flatten())
        .collect();
    let shares: Vec<f64> = items
        .iter()
        .filter_map(|i| i["modal_share"].as_f64())
        .collect();
    if shares.is_empty() {
        return "—".into();
    }
    let identical = items.iter().filter(|i| i["verdict"] == "identical").count();
    format!(
        "{:.3} mean modal share, {identical}/{} identical",
        shares.iter().sum::<f64>() / shares.len() as f64,
        items.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{AnalysisConfig, Analyzer};
    use crate::record::CallRecord;

    fn snapshot(item: &str, outputs: &[&str]) -> Snapshot {
        let mut a = Analyzer::new(AnalysisConfig {
            answer: None,
            pair_budget: 100,
            targets: vec!["local".into()],
            items: vec![(item.into(), None)],
        });
        for (i, o) in outputs.iter().enumerate() {
            a.fold(&CallRecord::ok("local", item, i as u32, o, 1.0));
        }
        a.snapshot()
    }

    #[test]
    fn summary_keeps_the_contract_names() {
        let s = snapshot("q", &["A", "A", "A", "B", "C"]);
        let json = summary_json(&s, Path::new("/tmp/x.jsonl"), "sha256:ab");
        assert_eq!(json["format_version"], 1);
        assert_eq!(json["archive"], "/tmp/x.jsonl");
        assert_eq!(json["identity"], "sha256:ab");
        let item = &json["targets"][0]["items"][0];
        assert_eq!(json["targets"][0]["target"], "local");
        for key in [
            "item",
            "calls",
            "ok",
            "errors",
            "distinct_outputs",
            "modal_share",
            "modal_share_ci",
            "pairwise_agreement",
            "entropy_bits",
            "tar_raw",
            "tar_answer",
            "verdict",
            "first_divergence",
            "ned_mean",
            "latency_ms",
        ] {
            assert!(item.get(key).is_some(), "missing {key}");
        }
        assert_eq!(item["distinct_outputs"], 3);
        assert_eq!(item["modal_share"], 0.6);
        assert_eq!(item["verdict"], "diverged");
        assert_eq!(item["first_divergence"]["index"], 0);
        assert_eq!(item["first_divergence"]["branches"][0]["token"], "A");
        assert_eq!(item["first_divergence"]["branches"][0]["count"], 3);
        assert!(item["tar_answer"].is_null());
        assert!(item["ned_mean"].is_number());
        for p in ["p50", "p90", "p99", "max"] {
            assert!(item["latency_ms"][p].is_number(), "{p}");
        }
    }

    #[test]
    fn table_text_from_names_and_tokens_is_inert() {
        let s = snapshot("q\x1b]0;pwned\x07", &["\x1b[2Jx", "\x1b[31my"]);
        let t = table(&s, Path::new("a.jsonl"), "sha256:ab", "p\x1b[2J");
        assert!(!t.contains('\x1b') && !t.contains('\x07'), "{t:?}");
        assert!(t.contains("identical") || t.contains("diverged"));
    }
}
