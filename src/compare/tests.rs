//! Compare on constructed pairs of sessions, folded through the real analysis.

use std::path::Path;
use std::time::SystemTime;

use serde_json::{json, Value};

use super::*;
use crate::analysis::{AnalysisConfig, Analyzer};
use crate::archive::Header;
use crate::record::CallRecord;

fn conditions(temperature: f64, items: &[&str]) -> Value {
    json!({
        "tool": {"name": "reprise", "version": "0.1.0"},
        "protocol": {"name": "p", "description": ""},
        "campaign": {"repeats": 100, "concurrency": 4, "warmup": 0},
        "answer": null,
        "items": items.iter().map(|i| json!({"name": i, "user": format!("ask {i}")})).collect::<Vec<_>>(),
        "targets": [{
            "name": "local", "provider": "local", "model": null, "endpoint": "in-process",
            "requests": items.iter().map(|i| json!({"item": i, "body": {"temperature": temperature}})).collect::<Vec<_>>(),
        }],
    })
}

/// A session whose item `name` got `outputs[k].1` calls with text `outputs[k].0`.
fn session(cond: Value, items: &[(&str, &[(&str, u32)])], revision: &str) -> (Archive, Snapshot) {
    let mut calls = Vec::new();
    for (item, outputs) in items {
        let mut call = 0;
        for (text, n) in *outputs {
            for _ in 0..*n {
                let mut r = CallRecord::ok("local", item, call, text, 1.0);
                r.served.insert("model".into(), "m".into());
                r.served.insert("revision".into(), revision.into());
                calls.push(r);
                call += 1;
            }
        }
    }
    let config = crate::session::analysis_config_from_conditions(&cond);
    let mut analyzer = Analyzer::new(AnalysisConfig { ..config });
    for r in &calls {
        analyzer.fold(r);
    }
    let archive = Archive {
        header: Header::new(cond, None, SystemTime::UNIX_EPOCH),
        calls,
        close: None,
        truncated_tail: false,
    };
    (archive, analyzer.snapshot())
}

fn one(outputs: &[(&str, u32)]) -> (Archive, Snapshot) {
    session(conditions(0.0, &["q"]), &[("q", outputs)], "r1")
}

fn run(a: &(Archive, Snapshot), b: &(Archive, Snapshot)) -> Comparison {
    compare((&a.0, &a.1), (&b.0, &b.1))
}

#[test]
fn the_same_session_twice_differs_in_nothing() {
    let a = one(&[("A", 70), ("B", 20), ("C", 10)]);
    let c = run(&a, &a);
    assert!(c.same_identity);
    assert!(c.conditions.is_empty());
    assert!(c.served.iter().all(|s| s.changed.is_empty()));
    let item = &c.items[0];
    assert!(!item.consistency.significant);
    assert!((item.consistency.p - 1.0).abs() < 1e-9);
    let outputs = item.outputs.as_ref().unwrap();
    assert!(
        !outputs.significant && (outputs.p - 1.0).abs() < 1e-9,
        "{outputs:?}"
    );
    assert_eq!(item.overlap.a_distinct_in_b, 3);
    assert_eq!(item.overlap.b_share_with_a_output, 1.0);
    assert_eq!(
        c.verdict,
        "same conditions; consistency does not differ significantly (p = 1.00)"
    );
}

#[test]
fn modal_100_of_100_vs_60_of_100_is_significant() {
    let a = one(&[("A", 100)]);
    let b = one(&[("A", 60), ("B", 25), ("C", 15)]);
    let c = run(&a, &b);
    let item = &c.items[0];
    assert_eq!(item.consistency.test, FISHER);
    assert!(item.consistency.p < 0.05 && item.consistency.significant);
    assert!(item.outputs.as_ref().unwrap().significant);
    assert_eq!((item.a.modal_count, item.b.modal_count), (100, 60));
    assert_eq!(
        item.b.modal_share_ci,
        crate::analysis::measures::wilson_interval(60, 100, crate::analysis::measures::Z95)
    );
    assert_eq!(item.overlap.b_calls_with_a_output, 60);
    assert!(
        c.verdict
            .starts_with("same conditions; consistency differs significantly (p < 0.001)"),
        "{}",
        c.verdict
    );
}

#[test]
fn modal_100_of_100_vs_98_of_100_is_not_significant() {
    let a = one(&[("A", 100)]);
    let b = one(&[("A", 98), ("B", 2)]);
    let c = run(&a, &b);
    let item = &c.items[0];
    assert!(item.consistency.p > 0.05 && !item.consistency.significant);
    assert!((item.consistency.p - 0.4975).abs() < 1e-3);
    // B's two odd outputs are pooled with nothing left to compare against: no χ² test.
    assert!(
        item.outputs.as_ref().is_none_or(|t| !t.significant),
        "{:?}",
        item.outputs
    );
    assert_eq!(
        c.verdict,
        "same conditions; consistency does not differ significantly (p = 0.50)"
    );
}

#[test]
fn a_temperature_change_is_named_in_the_verdict() {
    let a = one(&[("A", 50)]);
    let b = session(conditions(0.7, &["q"]), &[("q", &[("A", 50)])], "r1");
    let c = run(&a, &b);
    assert!(!c.same_identity);
    assert_eq!(c.conditions.len(), 1);
    assert_eq!(c.conditions[0].path, "targets.local.body.temperature");
    assert_eq!(c.conditions[0].a.as_deref(), Some("0.0"));
    assert_eq!(c.conditions[0].b.as_deref(), Some("0.7"));
    assert!(
        c.verdict.starts_with(
            "conditions differ in 1 field (targets.local.body.temperature); consistency does not differ"
        ),
        "{}",
        c.verdict
    );
}

#[test]
fn a_silent_update_is_a_served_identity_change() {
    let a = one(&[("A", 10)]);
    let b = session(conditions(0.0, &["q"]), &[("q", &[("A", 10)])], "r2");
    let c = run(&a, &b);
    assert!(c.conditions.is_empty());
    let changed = &c.served[0].changed;
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0].field, "revision");
    assert_eq!(
        (changed[0].a.clone(), changed[0].b.clone()),
        (vec!["r1".to_string()], vec!["r2".to_string()])
    );
    assert!(
        c.verdict
            .starts_with("same conditions; served identity changed (revision); "),
        "{}",
        c.verdict
    );
}

#[test]
fn batteries_are_compared_per_item_with_holm() {
    let items = ["q1", "q2", "q3"];
    let a = session(
        conditions(0.0, &items),
        &[
            ("q1", &[("A", 100)]),
            ("q2", &[("A", 100)]),
            ("q3", &[("A", 100)]),
        ],
        "r1",
    );
    let b = session(
        conditions(0.0, &items),
        &[
            ("q1", &[("A", 100)]),
            ("q2", &[("A", 50), ("B", 50)]),
            ("q3", &[("A", 97), ("B", 3)]),
        ],
        "r1",
    );
    let c = run(&a, &b);
    assert_eq!(c.items.len(), 3);
    let sig: Vec<bool> = c.items.iter().map(|i| i.consistency.significant).collect();
    assert_eq!(sig, [false, true, false]);
    // Holm: the smallest p is multiplied by the number of items.
    let q2 = &c.items[1].consistency;
    assert!((q2.p_adjusted - (3.0 * q2.p).min(1.0)).abs() < 1e-15);
    assert_eq!(c.summary.consistency_differs, 1);
    assert!(
        c.verdict
            .contains("consistency differs significantly in 1 of 3 items (Holm-adjusted p < 0.05)"),
        "{}",
        c.verdict
    );
}

#[test]
fn items_on_one_side_only_are_listed_not_tested() {
    let a = session(
        conditions(0.0, &["q1", "q2"]),
        &[("q1", &[("A", 5)]), ("q2", &[("A", 5)])],
        "r1",
    );
    let b = session(conditions(0.0, &["q1"]), &[("q1", &[("A", 5)])], "r1");
    let c = run(&a, &b);
    assert_eq!(c.items.len(), 1);
    assert_eq!(c.not_compared, ["local/q2"]);
    assert!(c.conditions.iter().any(|ch| ch.path == "items.q2"));
}

#[test]
fn the_json_document_keeps_its_contract() {
    let a = one(&[("A", 100)]);
    let b = one(&[("A", 60), ("B", 40)]);
    let c = run(&a, &b);
    let doc = json(&c, Path::new("a.jsonl"), Path::new("b.jsonl"));
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["a"]["archive"], "a.jsonl");
    assert_eq!(doc["b"]["identity"], c.b.identity.as_str());
    let item = &doc["items"][0];
    assert_eq!(item["target"], "local");
    assert_eq!(item["consistency"]["test"], "fisher_exact_two_sided");
    assert!(item["consistency"]["p"].as_f64().unwrap() < 0.05);
    assert_eq!(item["outputs"]["test"], "chi_square_homogeneity");
    assert_eq!(item["outputs"]["df"], 1);
    assert_eq!(item["a"]["modal_share"], 1.0);
    assert_eq!(doc["summary"]["correction"], "holm");
    assert_eq!(doc["verdict"], c.verdict.as_str());
}

#[test]
fn the_table_names_the_tests_and_is_inert() {
    let a = session(
        conditions(0.0, &["q\x1b[2J"]),
        &[("q\x1b[2J", &[("A\x1b]0;x\x07", 10)])],
        "r1",
    );
    let c = run(&a, &a);
    let t = table(&c, Path::new("a.jsonl"), Path::new("b.jsonl"));
    assert!(!t.contains('\x1b') && !t.contains('\x07'), "{t:?}");
    assert!(t.contains("Fisher's exact"), "{t}");
    assert!(t.contains("chi-square"), "{t}");
    assert!(t.contains("verdict: same conditions"), "{t}");
}

#[test]
fn disjoint_outputs_are_said_even_when_too_few_to_test() {
    let a = one(&[("A", 3)]);
    let b = one(&[("B", 3)]);
    let c = run(&a, &b);
    assert!(
        c.items[0].outputs.is_none(),
        "3 calls a side: every expected count under 5"
    );
    assert!(
        c.verdict.ends_with("(p = 1.00); no output in common"),
        "{}",
        c.verdict
    );
}

#[test]
fn an_edited_archive_that_kept_its_identity_still_shows_the_edit() {
    let a = one(&[("A", 5)]);
    let mut b = session(conditions(0.7, &["q"]), &[("q", &[("A", 5)])], "r1");
    b.0.header.identity = a.0.header.identity.clone();
    let c = run(&a, &b);
    assert!(c.same_identity);
    assert_eq!(c.conditions.len(), 1);
    assert!(
        c.verdict.starts_with("conditions differ in 1 field"),
        "{}",
        c.verdict
    );
}

/// `one`'s session as served by a llama.cpp server: what `/v1/models` and `/props` said at
/// the start and at the end (`created` is the time of each request), and the calls' build.
fn llama_cpp(created: [&str; 2], fingerprint: &str) -> (Archive, Snapshot) {
    let (mut archive, _) = one(&[("A", 5)]);
    let server = |created: &str| {
        [
            ("build_info", "b5890-0d922267"),
            ("created", created),
            ("id", "qwen"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>()
    };
    archive
        .header
        .servers
        .insert("local".into(), server(created[0]));
    archive.close = Some(crate::archive::Close {
        ended_at: "2026-01-01T00:01:00Z".into(),
        outcome: crate::archive::SessionOutcome::Completed,
        planned_calls: 5,
        records: 5,
        ok: 5,
        errors: 0,
        cancelled: 0,
        summary: None,
        servers: [("local".to_string(), server(created[1]))].into(),
        without_outcome: 0,
        not_sent: 0,
        reason: None,
    });
    for r in &mut archive.calls {
        r.served.insert("created".into(), "1752000001".into());
        r.served
            .insert("system_fingerprint".into(), fingerprint.into());
    }
    let config = crate::session::analysis_config_from_conditions(&archive.header.conditions);
    let mut analyzer = Analyzer::new(config);
    for r in &archive.calls {
        analyzer.fold(r);
    }
    (archive, analyzer.snapshot())
}

#[test]
fn a_created_that_is_the_time_of_the_request_is_no_identity_change() {
    let a = llama_cpp(["1752000000", "1752000090"], "b5890-0d922267");
    let b = llama_cpp(["1752003600", "1752003700"], "b5890-0d922267");
    let c = run(&a, &b);
    assert!(c.served[0].changed.is_empty(), "{:?}", c.served[0].changed);
    assert!(
        c.verdict.starts_with("same conditions; consistency"),
        "{}",
        c.verdict
    );
    // Recorded all the same, for whoever audits the archives.
    assert_eq!(
        c.served[0].a_server.as_ref().unwrap()["created"],
        "1752000000"
    );
    assert_eq!(
        c.served[0].b_server.as_ref().unwrap()["created"],
        "1752003600"
    );

    // A real change still shows, and only it.
    let d = llama_cpp(["1752003600", "1752003700"], "b6000-1a2b3c4d");
    let c = run(&a, &d);
    let fields: Vec<&str> = c.served[0]
        .changed
        .iter()
        .map(|f| f.field.as_str())
        .collect();
    assert_eq!(fields, ["system_fingerprint"]);
    assert!(
        c.verdict
            .starts_with("same conditions; served identity changed (system_fingerprint); "),
        "{}",
        c.verdict
    );
}
