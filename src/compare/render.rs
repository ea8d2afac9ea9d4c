//! `reprise compare` output: the table for people, the JSON document for scripts.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use super::{format_p, Comparison, ItemComparison, Side, Test, COMPARE_FORMAT_VERSION};
use crate::text::inert;

/// The `--json` document. Field names are a contract; fields may be added.
pub fn json(c: &Comparison, path_a: &Path, path_b: &Path) -> Value {
    let side = |s: &Side, path: &Path| {
        let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
        v["archive"] = json!(path.display().to_string());
        v
    };
    json!({
        "format_version": COMPARE_FORMAT_VERSION,
        "a": side(&c.a, path_a),
        "b": side(&c.b, path_b),
        "same_identity": c.same_identity,
        "conditions": c.conditions,
        "served": c.served,
        "items": c.items,
        "not_compared": c.not_compared,
        "summary": c.summary,
        "tests": {
            "consistency": "Fisher's exact test, two-sided, on modal vs other calls",
            "outputs": "chi-square test of homogeneity on output counts; outputs with an expected count under 5 pooled into \"other\"",
            "answers": "chi-square test of homogeneity on extracted-answer counts, pooled the same way",
            "correction": "Holm over the items compared, per test",
        },
        "verdict": c.verdict,
    })
}

/// Longest value shown in a table cell; the JSON has them whole.
const CELL: usize = 48;

/// The human-readable report.
pub fn table(c: &Comparison, path_a: &Path, path_b: &Path) -> String {
    let mut out = String::new();
    for (label, s, path) in [("A", &c.a, path_a), ("B", &c.b, path_b)] {
        let _ = writeln!(
            out,
            "{label}  {} · identity {} · {} · {} records{} · {} · {}",
            inert(s.protocol.as_deref().unwrap_or("?")),
            // Archives are data from elsewhere: every text from them is made inert.
            inert(crate::archive::short_identity(&s.identity)),
            inert(
                &s.started_at
                    .chars()
                    .take(19)
                    .collect::<String>()
                    .replace('T', " ")
            ),
            s.records,
            s.outcome
                .map_or(" (unfinished)".into(), |o| if o == "completed" {
                    String::new()
                } else {
                    format!(" ({o})")
                }),
            inert(&path.display().to_string()),
            inert(&s.integrity)
        );
    }

    let _ = writeln!(out, "\nconditions");
    if c.conditions.is_empty() {
        let _ = writeln!(
            out,
            "  {}",
            if c.same_identity {
                "same identity: the same requests were sent the same way"
            } else {
                "identities differ but no field does (an older tool's conditions?)"
            }
        );
    } else {
        let rows: Vec<Vec<String>> = c
            .conditions
            .iter()
            .map(|ch| {
                vec![
                    inert(&ch.path).into_owned(),
                    cell(ch.a.as_deref()),
                    cell(ch.b.as_deref()),
                ]
            })
            .collect();
        grid(&mut out, &["field", "A", "B"], &rows, &[]);
    }

    let _ = writeln!(out, "\nserved identity");
    for s in &c.served {
        if s.changed.is_empty() {
            let shown = s.a.first().or(s.a_server.as_ref());
            let fields = shown.map_or("nothing reported".into(), |f| {
                f.iter()
                    .map(|(k, v)| format!("{k} {}", short(v)))
                    .collect::<Vec<_>>()
                    .join(" · ")
            });
            let _ = writeln!(out, "  {}: same ({fields})", inert(&s.target));
        } else {
            let _ = writeln!(out, "  {}: changed", inert(&s.target));
            for f in &s.changed {
                let vals = |v: &[String]| {
                    if v.is_empty() {
                        "—".to_string()
                    } else {
                        v.iter().map(|x| short(x)).collect::<Vec<_>>().join(", ")
                    }
                };
                let _ = writeln!(
                    out,
                    "    {}: {} → {}",
                    inert(&f.field),
                    vals(&f.a),
                    vals(&f.b)
                );
            }
        }
    }

    let mut targets: Vec<&str> = Vec::new();
    for i in &c.items {
        if !targets.contains(&i.target.as_str()) {
            targets.push(&i.target);
        }
    }
    for target in targets {
        let _ = writeln!(out, "\ndistributions · target {}", inert(target));
        let rows: Vec<Vec<String>> = c
            .items
            .iter()
            .filter(|i| i.target == target)
            .map(item_row)
            .collect();
        grid(
            &mut out,
            &[
                "item",
                "A modal share [95% CI]",
                "B modal share [95% CI]",
                "Fisher p",
                "A outputs in B",
                "B calls from A",
                "outputs χ² p",
                "answers χ² p",
            ],
            &rows,
            &[0, 1, 2],
        );
    }
    for missing in &c.not_compared {
        let _ = writeln!(
            out,
            "not compared (outputs on one side only): {}",
            inert(missing)
        );
    }
    if c.items.len() > 1 {
        let s = &c.summary;
        let _ = writeln!(
            out,
            "{} items: consistency differs in {}, outputs in {}, answers in {} (Holm-adjusted p < {})",
            s.items_compared, s.consistency_differs, s.outputs_differ, s.answers_differ, s.alpha
        );
    }
    if !c.items.is_empty() {
        let _ = writeln!(
            out,
            "\ntests: consistency — Fisher's exact (two-sided), modal vs other calls; \
             distributions — chi-square test of homogeneity, outputs with expected count < 5 \
             pooled into \"other\"{}; * significant at {}",
            if c.items.len() > 1 {
                "; p-values Holm-adjusted over items"
            } else {
                ""
            },
            super::ALPHA
        );
    }
    let _ = writeln!(out, "\nverdict: {}", c.verdict);
    out
}

fn item_row(i: &ItemComparison) -> Vec<String> {
    let share = |d: &super::Distribution| match d.modal_share_ci {
        Some([lo, hi]) => format!("{:.3} [{lo:.3}, {hi:.3}] of {}", d.modal_share, d.n),
        None => "—".into(),
    };
    let o = &i.overlap;
    vec![
        inert(&i.item).into_owned(),
        share(&i.a),
        share(&i.b),
        p_cell(Some(&i.consistency)),
        format!("{}/{}", o.a_distinct_in_b, o.a_distinct),
        format!("{:.0}%", o.b_share_with_a_output * 100.0),
        p_cell(i.outputs.as_ref()),
        p_cell(i.answers.as_ref()),
    ]
}

/// The (adjusted) p-value, starred when significant; — when the test does not apply.
fn p_cell(t: Option<&Test>) -> String {
    match t {
        None => "—".into(),
        Some(t) => {
            let p = format_p(t.p_adjusted);
            let p = p.trim_start_matches("p = ").replace("p ", "");
            if t.significant {
                format!("{p} *")
            } else {
                p
            }
        }
    }
}

fn cell(v: Option<&str>) -> String {
    v.map_or("(absent)".into(), short)
}

/// Sanitised and cut to [`CELL`] characters.
fn short(v: &str) -> String {
    let safe = inert(v);
    if safe.chars().count() > CELL {
        format!("{}…", safe.chars().take(CELL - 1).collect::<String>())
    } else {
        safe.into_owned()
    }
}

/// Aligned columns, two spaces apart; `left` columns left-aligned, others right-aligned.
fn grid(out: &mut String, header: &[&str], rows: &[Vec<String>], left: &[usize]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let left_all = left.is_empty();
    let line = |cells: Vec<String>| {
        let mut s = String::from("  ");
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = " ".repeat(w - c.chars().count());
            if left_all || left.contains(&i) {
                s.push_str(c);
                s.push_str(&pad);
            } else {
                s.push_str(&pad);
                s.push_str(c);
            }
            s.push_str("  ");
        }
        s.trim_end().to_string()
    };
    let _ = writeln!(
        out,
        "{}",
        line(header.iter().map(|h| h.to_string()).collect())
    );
    for row in rows {
        let _ = writeln!(out, "{}", line(row.clone()));
    }
}
