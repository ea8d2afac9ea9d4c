//! Behaviour of the analyzer as the dashboard and report see it, through fold + snapshot.

use super::*;
use crate::protocol::Normalize;
use crate::record::{CallStatus, Usage};

fn config(items: &[&str]) -> AnalysisConfig {
    AnalysisConfig {
        answer: None,
        pair_budget: DEFAULT_PAIR_BUDGET,
        targets: vec!["t".into()],
        items: items.iter().map(|i| (i.to_string(), None)).collect(),
    }
}

fn run(cfg: AnalysisConfig, outputs: &[(&str, &str)]) -> Snapshot {
    let mut a = Analyzer::new(cfg);
    for (call, (item, out)) in outputs.iter().enumerate() {
        a.fold(&CallRecord::ok("t", item, call as u32, out, 10.0));
    }
    a.snapshot()
}

fn item<'a>(s: &'a Snapshot, target: &str, item: &str) -> &'a ItemSnapshot {
    let t = s.targets.iter().find(|t| t.target == target).unwrap();
    t.items.iter().find(|i| i.item == item).unwrap()
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[test]
fn design_worked_example_through_the_analyzer() {
    let s = run(
        config(&["q"]),
        &[("q", "A"), ("q", "B"), ("q", "A"), ("q", "C"), ("q", "A")],
    );
    let i = item(&s, "t", "q");
    assert_eq!((i.calls, i.ok, i.errors), (5, 5, 0));
    assert_eq!(i.distinct_outputs, 3);
    assert_eq!(r3(i.modal_share.unwrap()), 0.6);
    let ci = i.modal_share_ci.unwrap();
    assert_eq!([r3(ci[0]), r3(ci[1])], [0.231, 0.882]);
    assert_eq!(r3(i.pairwise_agreement.unwrap()), 0.3);
    assert_eq!(r3(i.entropy_bits.unwrap()), 1.371);
    assert_eq!(i.tar_raw, Some(0));
    assert_eq!(i.tar_answer, None);
    assert_eq!(i.verdict, Some(Verdict::Diverged));
    let clusters: Vec<_> = i
        .clusters
        .iter()
        .map(|c| (&*c.text, c.count, c.id))
        .collect();
    assert_eq!(clusters, [("A", 3, 0), ("B", 1, 1), ("C", 1, 2)]);
    assert_eq!(i.call_clusters, [(0, 0), (1, 1), (2, 0), (3, 2), (4, 0)]);
    // Every distinct pair differs in its one char: NED 1 for the 7 of 10 call pairs that differ.
    let ned = i.ned_mean.unwrap();
    assert!((ned.value - 0.7).abs() < 1e-9, "{ned:?}");
    assert!(ned.exact);
    assert_eq!(ned.pairs, 3);
    assert!((i.token_similarity_mean.unwrap().value - 0.3).abs() < 1e-9);
    assert_eq!(i.tokenizer, "words");
    // The split is at token 0; branches by calls.
    let d = i.first_divergence.as_ref().unwrap();
    assert_eq!(d.index, 0);
    let b: Vec<_> = d
        .branches
        .iter()
        .map(|b| (b.token.as_deref(), b.count))
        .collect();
    assert_eq!(b, [(Some("A"), 3), (Some("B"), 1), (Some("C"), 1)]);
}

#[test]
fn single_call() {
    let s = run(config(&["q"]), &[("q", "Paris.")]);
    let i = item(&s, "t", "q");
    assert_eq!(i.modal_share, Some(1.0));
    assert_eq!(i.pairwise_agreement, Some(1.0));
    assert_eq!(i.entropy_bits, Some(0.0));
    assert_eq!(i.verdict, Some(Verdict::Identical));
    assert_eq!(i.tar_raw, Some(1));
    assert_eq!(i.first_divergence, None);
    assert_eq!(i.ned_mean, None);
    assert_eq!(i.token_similarity_mean, None);
    assert_eq!(i.clusters[0].first_divergence, None);
    let ci = i.modal_share_ci.unwrap();
    assert!(ci[0] > 0.0 && ci[0] < 0.3 && ci[1] == 1.0, "{ci:?}");
}

#[test]
fn all_calls_failed() {
    let mut a = Analyzer::new(config(&["q"]));
    a.fold(&CallRecord::failed(
        "t",
        "q",
        0,
        ErrorClass::RateLimit,
        "429",
    ));
    a.fold(&CallRecord::failed(
        "t",
        "q",
        1,
        ErrorClass::RateLimit,
        "429",
    ));
    a.fold(&CallRecord::failed(
        "t",
        "q",
        2,
        ErrorClass::Timeout,
        "slow",
    ));
    let s = a.snapshot();
    let i = item(&s, "t", "q");
    assert_eq!((i.calls, i.ok, i.errors, i.cancelled), (3, 0, 3, 0));
    assert_eq!(i.errors_by_class[&ErrorClass::RateLimit], 2);
    assert_eq!(i.errors_by_class[&ErrorClass::Timeout], 1);
    assert_eq!(i.distinct_outputs, 0);
    assert_eq!(i.modal_share, None);
    assert_eq!(i.modal_share_ci, None);
    assert_eq!(i.pairwise_agreement, None);
    assert_eq!(i.entropy_bits, None);
    assert_eq!(i.tar_raw, None);
    assert_eq!(i.verdict, None);
    assert_eq!(i.ned_mean, None);
    assert_eq!(i.tokens_per_s, None);
    assert_eq!(i.latency_ms, LatencySummary::default());
    assert_eq!(s.targets[0].battery.items, 0);
    assert_eq!(s.targets[0].battery.mean_modal_share, None);
}

#[test]
fn retries_count_the_call_once() {
    let mut a = Analyzer::new(config(&["q"]));
    // Call 0: rate-limited, then fine.
    a.fold(&CallRecord::failed(
        "t",
        "q",
        0,
        ErrorClass::RateLimit,
        "429",
    ));
    let mut ok = CallRecord::ok("t", "q", 0, "yes", 5.0);
    ok.attempt = 2;
    a.fold(&ok);
    // Call 1: two failures.
    a.fold(&CallRecord::failed(
        "t",
        "q",
        1,
        ErrorClass::Timeout,
        "slow",
    ));
    let mut e = CallRecord::failed("t", "q", 1, ErrorClass::Server, "500");
    e.attempt = 2;
    a.fold(&e);
    // Call 2: cancelled.
    a.fold(&CallRecord::failed(
        "t",
        "q",
        2,
        ErrorClass::Cancelled,
        "stop",
    ));
    let s = a.snapshot();
    let i = item(&s, "t", "q");
    assert_eq!((i.calls, i.ok, i.errors, i.cancelled), (3, 1, 1, 1));
    let classes: Vec<_> = i.errors_by_class.iter().map(|(c, n)| (*c, *n)).collect();
    assert_eq!(
        classes,
        [
            (ErrorClass::RateLimit, 1),
            (ErrorClass::Server, 1),
            (ErrorClass::Timeout, 1),
            (ErrorClass::Cancelled, 1)
        ]
    );
    assert_eq!(i.distinct_outputs, 1);
    assert_eq!(i.call_clusters, [(0, 0)]);
}

#[test]
fn attempts_marked_retried_are_retries_not_errors() {
    let mut a = Analyzer::new(config(&["q"]));
    let mut limited = CallRecord::failed("t", "q", 0, ErrorClass::RateLimit, "429");
    limited.retried = true;
    a.fold(&limited);
    let mut ok = CallRecord::ok("t", "q", 0, "yes", 5.0);
    ok.attempt = 2;
    a.fold(&ok);
    let mut down = CallRecord::failed("t", "q", 1, ErrorClass::Server, "500");
    down.retried = true;
    a.fold(&down);
    let mut again = CallRecord::failed("t", "q", 1, ErrorClass::Server, "500");
    again.attempt = 2;
    a.fold(&again);
    let s = a.snapshot();
    let i = item(&s, "t", "q");
    assert_eq!((i.calls, i.ok, i.errors), (2, 1, 1));
    let errors: Vec<_> = i.errors_by_class.iter().map(|(c, n)| (*c, *n)).collect();
    assert_eq!(
        errors,
        [(ErrorClass::Server, 1)],
        "only the last attempt's failure"
    );
    let retries: Vec<_> = i.retries_by_class.iter().map(|(c, n)| (*c, *n)).collect();
    assert_eq!(
        retries,
        [(ErrorClass::RateLimit, 1), (ErrorClass::Server, 1)]
    );
}

#[test]
fn warmup_is_excluded_everywhere() {
    let mut a = Analyzer::new(config(&["q"]));
    let mut w = CallRecord::ok("t", "q", 0, "cold start", 900.0);
    w.warmup = true;
    a.fold(&w);
    let mut wf = CallRecord::failed("t", "q", 1, ErrorClass::Timeout, "slow");
    wf.warmup = true;
    a.fold(&wf);
    a.fold(&CallRecord::ok("t", "q", 2, "warm", 10.0));
    a.fold(&CallRecord::ok("t", "q", 3, "warm", 10.0));
    let s = a.snapshot();
    let i = item(&s, "t", "q");
    assert_eq!((i.calls, i.ok, i.errors), (2, 2, 0));
    assert!(i.errors_by_class.is_empty());
    assert_eq!(i.distinct_outputs, 1);
    assert_eq!(i.verdict, Some(Verdict::Identical));
    assert_eq!(i.latency_ms.max, 10.0);
}

#[test]
fn empty_outputs() {
    let s = run(config(&["q"]), &[("q", ""), ("q", ""), ("q", "x")]);
    let i = item(&s, "t", "q");
    assert_eq!(i.distinct_outputs, 2);
    // Pairs: ("","") 0, ("","x") 1 twice.
    assert!((i.ned_mean.unwrap().value - 2.0 / 3.0).abs() < 1e-9);
    assert!((i.token_similarity_mean.unwrap().value - 1.0 / 3.0).abs() < 1e-9);
    let d = i.first_divergence.as_ref().unwrap();
    assert_eq!(d.index, 0);
    let b: Vec<_> = d
        .branches
        .iter()
        .map(|b| (b.token.as_deref(), b.count))
        .collect();
    assert_eq!(b, [(None, 2), (Some("x"), 1)]);

    let s = run(config(&["q"]), &[("q", ""), ("q", "")]);
    let i = item(&s, "t", "q");
    assert_eq!(i.ned_mean.unwrap().value, 0.0);
    assert_eq!(i.token_similarity_mean.unwrap().value, 1.0);
}

#[test]
fn unicode_distance_is_in_chars() {
    let s = run(config(&["q"]), &[("q", "naïve café"), ("q", "naive cafe")]);
    let i = item(&s, "t", "q");
    assert!((i.ned_mean.unwrap().value - 0.2).abs() < 1e-9);
    // Tokens "naïve", " café" vs "naive", " cafe": both differ.
    assert!(i.token_similarity_mean.unwrap().value.abs() < 1e-9);
}

#[test]
fn targets_and_items_in_config_order_then_arrival() {
    let mut cfg = config(&["a", "b"]);
    cfg.targets = vec!["t1".into(), "t2".into()];
    let mut an = Analyzer::new(cfg);
    let s = an.snapshot();
    let names: Vec<_> = s.targets.iter().map(|t| t.target.as_str()).collect();
    assert_eq!(names, ["t1", "t2"]);
    assert!(s.targets[1]
        .items
        .iter()
        .all(|i| i.calls == 0 && i.verdict.is_none()));
    an.fold(&CallRecord::ok("zz", "c", 0, "x", 1.0));
    an.fold(&CallRecord::ok("t2", "b", 0, "x", 1.0));
    an.fold(&CallRecord::ok("t2", "new", 0, "x", 1.0));
    let s = an.snapshot();
    let names: Vec<_> = s.targets.iter().map(|t| t.target.as_str()).collect();
    assert_eq!(names, ["t1", "t2", "zz"]);
    let items =
        |t: usize| -> Vec<&str> { s.targets[t].items.iter().map(|i| i.item.as_str()).collect() };
    assert_eq!(items(1), ["a", "b", "new"]);
    assert_eq!(items(2), ["a", "b", "c"]);
    assert_eq!(item(&s, "t2", "b").ok, 1);
}

#[test]
fn modal_change_recomputes_first_divergence() {
    let mut a = Analyzer::new(config(&["q"]));
    let fold = |a: &mut Analyzer, call: u32, text: &str| {
        a.fold(&CallRecord::ok("t", "q", call, text, 1.0));
    };
    fold(&mut a, 0, "one two three four");
    fold(&mut a, 1, "one two six");
    fold(&mut a, 2, "one five");
    let s = a.snapshot();
    let prefixes: Vec<_> = item(&s, "t", "q")
        .clusters
        .iter()
        .map(|c| (c.id, c.first_divergence))
        .collect();
    assert_eq!(prefixes, [(0, None), (1, Some(2)), (2, Some(1))]);
    // "one two six" becomes modal: the others are now measured against it.
    fold(&mut a, 3, "one two six");
    let s = a.snapshot();
    let i = item(&s, "t", "q");
    let prefixes: Vec<_> = i
        .clusters
        .iter()
        .map(|c| (c.id, c.first_divergence))
        .collect();
    assert_eq!(prefixes, [(1, None), (0, Some(2)), (2, Some(1))]);
    let d = i.first_divergence.as_ref().unwrap();
    assert_eq!(d.index, 1);
    let b: Vec<_> = d
        .branches
        .iter()
        .map(|b| (b.token.as_deref(), b.count))
        .collect();
    assert_eq!(b, [(Some(" two"), 3), (Some(" five"), 1)]);
}

#[test]
fn answers_accuracy_and_verdicts() {
    let mut cfg = config(&["agree", "split", "unparsed"]);
    cfg.answer = Some(AnswerSpec {
        pattern: r"(?i)answer:\s*(\w+)".into(),
        normalize: vec![Normalize::Lowercase],
    });
    cfg.items[0].1 = Some("PARIS".into());
    cfg.items[1].1 = Some("paris".into());
    let s = run(
        cfg,
        &[
            ("agree", "Answer: Paris"),
            ("agree", "I think. answer: paris"),
            ("split", "Answer: Paris"),
            ("split", "Answer: Lyon"),
            ("split", "Answer: Paris"),
            ("unparsed", "Answer: Paris"),
            ("unparsed", "no idea"),
        ],
    );
    let i = item(&s, "t", "agree");
    assert_eq!(i.verdict, Some(Verdict::AnswersAgree));
    assert_eq!((i.tar_raw, i.tar_answer), (Some(0), Some(1)));
    assert_eq!(i.accuracy, Some(1.0));
    assert_eq!(i.clusters[0].answer.as_deref(), Some("paris"));
    let i = item(&s, "t", "split");
    assert_eq!(i.verdict, Some(Verdict::Diverged));
    assert_eq!(i.tar_answer, Some(0));
    assert!((i.accuracy.unwrap() - 2.0 / 3.0).abs() < 1e-12);
    let answers: Vec<_> = i
        .answers
        .iter()
        .map(|a| (a.answer.as_deref(), a.count))
        .collect();
    assert_eq!(answers, [(Some("paris"), 2), (Some("lyon"), 1)]);
    let i = item(&s, "t", "unparsed");
    assert_eq!(i.tar_answer, Some(0));
    assert_eq!(i.accuracy, None);
    assert_eq!(i.clusters[1].answer, None);
    let answers: Vec<_> = i
        .answers
        .iter()
        .map(|a| (a.answer.as_deref(), a.count))
        .collect();
    assert_eq!(
        answers,
        [(None, 1), (Some("paris"), 1)],
        "failed extractions counted"
    );

    let b = &s.targets[0].battery;
    assert_eq!(b.items, 3);
    assert!((b.tar_answer.unwrap() - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(b.tar_raw, Some(0.0));
}

#[test]
fn battery_over_three_items() {
    let s = run(
        config(&["a", "b", "c", "empty"]),
        &[
            ("a", "x"),
            ("a", "x"),
            ("b", "x"),
            ("b", "x"),
            ("b", "y"),
            ("c", "x"),
            ("c", "y"),
        ],
    );
    let b = &s.targets[0].battery;
    assert_eq!(b.items, 3);
    assert!((b.tar_raw.unwrap() - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(b.tar_answer, None);
    let mean = (1.0 + 2.0 / 3.0 + 0.5) / 3.0;
    assert!((b.mean_modal_share.unwrap() - mean).abs() < 1e-12);
    let ci = b.mean_modal_share_ci.unwrap();
    assert!(
        ci[0] >= 0.5 && ci[0] < mean && mean < ci[1] && ci[1] <= 1.0,
        "{ci:?}"
    );
    // Same data, same interval (fixed seed), whether cached or recomputed.
    let data = [
        ("a", "x"),
        ("a", "x"),
        ("b", "x"),
        ("b", "x"),
        ("b", "y"),
        ("c", "x"),
        ("c", "y"),
    ];
    let mut an = Analyzer::new(config(&["a", "b", "c", "empty"]));
    for (call, (it, out)) in data.iter().enumerate() {
        an.fold(&CallRecord::ok("t", it, call as u32, out, 1.0));
    }
    assert_eq!(
        an.snapshot().targets[0].battery.mean_modal_share_ci,
        Some(ci)
    );
    assert_eq!(
        an.snapshot().targets[0].battery.mean_modal_share_ci,
        Some(ci)
    );

    let one = run(config(&["a"]), &[("a", "x"), ("a", "y")]);
    assert_eq!(one.targets[0].battery.mean_modal_share_ci, Some([0.5, 0.5]));
}

#[test]
fn backend_tokens_latency_and_throughput() {
    let mut a = Analyzer::new(config(&["q"]));
    for call in 0..100u32 {
        let text = if call % 2 == 0 {
            "Hello world"
        } else {
            "Hello there"
        };
        let mut r = CallRecord::ok("t", "q", call, text, (call + 1) as f64);
        let second = if call % 2 == 0 { " world" } else { " there" };
        r.tokens = Some(vec!["Hel".into(), "lo".into(), second.into()]);
        r.usage = Some(Usage {
            prompt_tokens: 5,
            completion_tokens: 4,
            reasoning_tokens: None,
        });
        a.fold(&r);
    }
    let s = a.snapshot();
    let i = item(&s, "t", "q");
    assert_eq!(i.tokenizer, "backend");
    assert_eq!(i.first_divergence.as_ref().unwrap().index, 2);
    assert_eq!(
        i.clusters[0].tokens.iter().collect::<Vec<_>>(),
        ["Hel", "lo", " world"]
    );
    let l = i.latency_ms;
    assert!((l.p50 - 50.0).abs() < 0.1, "{l:?}");
    assert!((l.p90 - 90.0).abs() < 0.1, "{l:?}");
    assert!((l.p99 - 99.0).abs() < 0.1, "{l:?}");
    assert_eq!(l.max, 100.0);
    assert!(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max, "{l:?}");
    // 400 tokens over 5.05 s.
    assert!((i.tokens_per_s.unwrap() - 400.0 / 5.05).abs() < 1e-9);
}

#[test]
fn second_success_of_one_call_is_not_a_new_sample() {
    let mut a = Analyzer::new(config(&["q"]));
    a.fold(&CallRecord::ok("t", "q", 0, "x", 1.0));
    let mut dup = CallRecord::ok("t", "q", 0, "y", 1.0);
    dup.attempt = 2;
    a.fold(&dup);
    let s = a.snapshot();
    let i = item(&s, "t", "q");
    assert_eq!((i.calls, i.ok, i.distinct_outputs), (1, 1, 1));
}

#[test]
fn ok_status_without_output_is_an_empty_output() {
    let mut a = Analyzer::new(config(&["q"]));
    let mut r = CallRecord::ok("t", "q", 0, "", 1.0);
    r.output = None;
    assert_eq!(r.status, CallStatus::Ok);
    a.fold(&r);
    assert_eq!(&*item(&a.snapshot(), "t", "q").clusters[0].text, "");
}

/// Numbered sentences with a few word changes, so outputs are distinct but related.
fn varied_outputs(n: usize) -> Vec<String> {
    let words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];
    (0..n)
        .map(|i| {
            (0..40)
                .map(|w| {
                    if (w * 7 + i) % 11 == 0 || (w + i) % 13 == 0 {
                        words[(i + w) % words.len()]
                    } else {
                        "same"
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
                + &format!(" #{i}")
        })
        .collect()
}

fn measures_for(outputs: &[String], budget: u64) -> ItemSnapshot {
    let mut cfg = config(&["q"]);
    cfg.pair_budget = budget;
    let mut a = Analyzer::new(cfg);
    for (call, o) in outputs.iter().enumerate() {
        a.fold(&CallRecord::ok("t", "q", call as u32, o, 1.0));
        // Some outputs repeat, so counts weight the pairs.
        if call % 3 == 0 {
            a.fold(&CallRecord::ok("t", "q", 10_000 + call as u32, o, 1.0));
        }
    }
    item(&a.snapshot(), "t", "q").clone()
}

#[test]
fn estimate_beyond_the_budget_is_labelled_close_and_deterministic() {
    let outputs = varied_outputs(120);
    let exact = measures_for(&outputs, u64::MAX);
    let est = measures_for(&outputs, 45);
    let again = measures_for(&outputs, 45);
    let (e, x) = (est.ned_mean.unwrap(), exact.ned_mean.unwrap());
    assert!(x.exact && !e.exact);
    assert_eq!(x.pairs, 120 * 119 / 2);
    // 10 outputs compared exhaustively (45 pairs), then 4 sampled per new output.
    assert_eq!(e.pairs, 45 + 110 * 4);
    assert!((e.value - x.value).abs() < 0.02, "{e:?} vs {x:?}");
    let (et, xt) = (
        est.token_similarity_mean.unwrap(),
        exact.token_similarity_mean.unwrap(),
    );
    assert!((et.value - xt.value).abs() < 0.02, "{et:?} vs {xt:?}");
    assert_eq!(est, again);
}

#[test]
fn fold_order_does_not_change_measures() {
    let texts = [
        "The answer is 4.",
        "The answer is four.",
        "It is 4.",
        "The answer is 4.",
    ];
    let forward: Vec<(&str, &str)> = texts.iter().map(|t| ("q", *t)).collect();
    let backward: Vec<(&str, &str)> = texts.iter().rev().map(|t| ("q", *t)).collect();
    let a = run(config(&["q"]), &forward);
    let b = run(config(&["q"]), &backward);
    let (a, b) = (item(&a, "t", "q"), item(&b, "t", "q"));
    assert_eq!(a.modal_share_ci, b.modal_share_ci);
    assert_eq!(a.pairwise_agreement, b.pairwise_agreement);
    assert_eq!(a.entropy_bits, b.entropy_bits);
    assert_eq!(a.ned_mean, b.ned_mean);
    assert_eq!(a.token_similarity_mean, b.token_similarity_mean);
    assert_eq!(a.first_divergence, b.first_divergence);
    assert_eq!(a.latency_ms, b.latency_ms);
    assert_eq!(a.tokens_per_s, b.tokens_per_s);
    let key = |i: &ItemSnapshot| -> Vec<(String, u64)> {
        let mut v: Vec<_> = i
            .clusters
            .iter()
            .map(|c| (c.text.to_string(), c.count))
            .collect();
        v.sort();
        v
    };
    assert_eq!(key(a), key(b));
    assert_eq!(a.clusters[0].text, b.clusters[0].text);
}

#[test]
fn snapshot_serialises_for_the_report() {
    let s = run(config(&["q"]), &[("q", "a"), ("q", "b")]);
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.contains(r#""verdict":"diverged""#), "{json}");
    assert!(json.contains(r#""tokenizer":"words""#), "{json}");
}

#[test]
fn percentiles_never_exceed_the_exact_maximum() {
    // 17.577 ms sits inside an HDR bucket whose upper edge is 17.583 ms.
    let mut a = Analyzer::new(config(&["q"]));
    for (call, ms) in [1.31, 2.2, 17.577].into_iter().enumerate() {
        a.fold(&CallRecord::ok("t", "q", call as u32, "x", ms));
    }
    let s = a.snapshot();
    let l = item(&s, "t", "q").latency_ms;
    assert_eq!(l.max, 17.577);
    assert!(l.p99 <= l.max, "{l:?}");
}
