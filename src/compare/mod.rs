//! `compare`: what differs between two sessions — the conditions, field by field; what
//! served them; and their output distributions, with tests that say whether a difference is
//! more than chance. Plain library (no terminal): the CLI renders it, the dashboard can too.
//!
//! Tests used, stated wherever results are shown:
//! - consistency: Fisher's exact test (two-sided) on the 2×2 table of modal vs other calls;
//! - output (and extracted-answer) distribution: chi-square test of homogeneity on the 2×K
//!   table of counts, rare outputs pooled into "other" (see [`stats::chi_square_homogeneity`]);
//! - over several items: Holm's step-down adjustment, so "significant" holds at 5% family-wise.

pub mod diff;
mod render;
pub mod stats;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;

use crate::analysis::{compared, ItemSnapshot, Snapshot, TargetSnapshot};
use crate::archive::Archive;

pub use diff::{conditions_diff, Change};
pub use render::{json, table};
pub use stats::ALPHA;

/// Version of the `reprise compare --json` document.
pub const COMPARE_FORMAT_VERSION: u32 = 1;

/// Test names as they appear in the JSON document.
pub const FISHER: &str = "fisher_exact_two_sided";
pub const CHI_SQUARE: &str = "chi_square_homogeneity";
pub const CORRECTION: &str = "holm";

/// Everything `reprise compare` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub a: Side,
    pub b: Side,
    /// Equal conditions identities: the same requests were sent the same way.
    pub same_identity: bool,
    /// Condition fields that differ (empty when `same_identity`).
    pub conditions: Vec<Change>,
    /// Per target present on either side.
    pub served: Vec<ServedDiff>,
    /// Per target × item with successful calls on both sides.
    pub items: Vec<ItemComparison>,
    /// `target/item` pairs with outputs on one side only: not compared.
    pub not_compared: Vec<String>,
    pub summary: Summary,
    pub verdict: String,
}

/// One session, as the comparison names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub identity: String,
    pub protocol: Option<String>,
    pub started_at: String,
    pub tool_version: String,
    /// Call records in the archive.
    pub records: u64,
    /// `completed`, `cancelled`, `failed`, or None for an unfinished session.
    pub outcome: Option<&'static str>,
    /// What `verify` says of the file: `chain intact`, `unfinished, chain intact`, or the
    /// first problem; `not checked` until [`Comparison::with_integrity`].
    pub integrity: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServedDiff {
    pub target: String,
    /// Distinct served identities seen on calls, in order of first appearance.
    pub a: Vec<BTreeMap<String, String>>,
    pub b: Vec<BTreeMap<String, String>>,
    /// What the server said about itself as each session started (header), where it did.
    pub a_server: Option<BTreeMap<String, String>>,
    pub b_server: Option<BTreeMap<String, String>>,
    /// Fields whose values differ between the sessions (calls and server reports together;
    /// volatile fields, such as a `created` that is the time of the request, never do).
    pub changed: Vec<FieldChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    /// Every value the field took in each session (empty: never reported).
    pub a: Vec<String>,
    pub b: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemComparison {
    pub target: String,
    pub item: String,
    pub a: Distribution,
    pub b: Distribution,
    /// Modal share A vs B.
    pub consistency: Test,
    pub overlap: Overlap,
    /// Output distribution A vs B; None when both sides gave a single, shared output.
    pub outputs: Option<Test>,
    /// Extracted-answer distribution A vs B, when both sides extracted answers.
    pub answers: Option<Test>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Distribution {
    /// Successful calls.
    pub n: u64,
    pub distinct_outputs: u64,
    pub modal_count: u64,
    pub modal_share: f64,
    /// Wilson 95%.
    pub modal_share_ci: Option<[f64; 2]>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Test {
    /// [`FISHER`] or [`CHI_SQUARE`].
    pub test: &'static str,
    pub p: f64,
    /// Holm-adjusted over the compared items (equal to `p` for one item).
    pub p_adjusted: f64,
    pub significant: bool,
    /// Chi-square only: statistic, degrees of freedom, categories tested, categories pooled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistic: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub df: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pooled: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overlap {
    pub a_distinct: u64,
    /// How many of A's distinct outputs B also produced.
    pub a_distinct_in_b: u64,
    pub b_calls: u64,
    /// B's calls whose output A also produced, and their share.
    pub b_calls_with_a_output: u64,
    pub b_share_with_a_output: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub items_compared: usize,
    pub consistency_differs: usize,
    pub outputs_differ: usize,
    pub answers_differ: usize,
    pub alpha: f64,
    pub correction: &'static str,
}

/// Compares two sessions, each an archive and the snapshot it folds to
/// (`session::analyse_archive`).
pub fn compare(a: (&Archive, &Snapshot), b: (&Archive, &Snapshot)) -> Comparison {
    let (archive_a, snap_a) = a;
    let (archive_b, snap_b) = b;
    let same_identity = archive_a.header.identity == archive_b.header.identity;
    let conditions = conditions_diff(&archive_a.header.conditions, &archive_b.header.conditions);
    // Equal identities give no changes (tested); an edited archive that keeps its identity
    // still shows what differs, and `verify` is what catches the edit.

    let names = target_names(snap_a, snap_b);
    let served = names
        .iter()
        .map(|name| served_diff(name, archive_a, snap_a, archive_b, snap_b))
        .collect();

    let mut items = Vec::new();
    let mut not_compared = Vec::new();
    for name in &names {
        let ta = snap_a.targets.iter().find(|t| &t.target == name);
        let tb = snap_b.targets.iter().find(|t| &t.target == name);
        for item in item_names(ta, tb) {
            let ia = ta.and_then(|t| t.items.iter().find(|i| i.item == item));
            let ib = tb.and_then(|t| t.items.iter().find(|i| i.item == item));
            match (ia, ib) {
                (Some(x), Some(y)) if x.ok > 0 && y.ok > 0 => {
                    items.push(compare_item(name, x, y));
                }
                // Neither side has outputs: nothing was measured, so nothing is missing.
                (x, y) if x.map_or(0, |i| i.ok) + y.map_or(0, |i| i.ok) == 0 => {}
                _ => not_compared.push(format!("{name}/{item}")),
            }
        }
    }
    adjust(&mut items);
    let summary = Summary {
        items_compared: items.len(),
        consistency_differs: items.iter().filter(|i| i.consistency.significant).count(),
        outputs_differ: items
            .iter()
            .filter(|i| i.outputs.as_ref().is_some_and(|t| t.significant))
            .count(),
        answers_differ: items
            .iter()
            .filter(|i| i.answers.as_ref().is_some_and(|t| t.significant))
            .count(),
        alpha: ALPHA,
        correction: CORRECTION,
    };
    let mut comparison = Comparison {
        a: side(archive_a),
        b: side(archive_b),
        same_identity,
        conditions,
        served,
        items,
        not_compared,
        summary,
        verdict: String::new(),
    };
    comparison.verdict = verdict(&comparison);
    comparison
}

fn side(archive: &Archive) -> Side {
    Side {
        identity: archive.header.identity.clone(),
        protocol: archive.header.protocol_name().map(str::to_string),
        started_at: archive.header.started_at.clone(),
        tool_version: archive.header.tool.version.clone(),
        records: archive.calls.len() as u64,
        outcome: archive.close.as_ref().map(|c| c.outcome.as_str()),
        integrity: "not checked".into(),
    }
}

impl Comparison {
    /// Adds what `verify` found in each file. An archive that does not verify was changed
    /// after it was written: the verdict says so first, since nothing else about it holds.
    pub fn with_integrity(
        mut self,
        a: Result<(), crate::archive::VerifyError>,
        b: Result<(), crate::archive::VerifyError>,
    ) -> Comparison {
        let mut warnings = Vec::new();
        for (label, side, result) in [("A", &mut self.a, a), ("B", &mut self.b, b)] {
            side.integrity = match result {
                Ok(()) => "chain intact".into(),
                Err(crate::archive::VerifyError::Unfinished { .. }) => {
                    "unfinished, chain intact".into()
                }
                Err(e) => {
                    let problem = match &e {
                        crate::archive::VerifyError::Record {
                            record, problem, ..
                        } => {
                            format!("record {record}: {problem}")
                        }
                        other => other.to_string(),
                    };
                    warnings.push(format!("⚠ {label} does not verify ({problem})"));
                    format!("does not verify: {problem}")
                }
            };
        }
        if !warnings.is_empty() {
            self.verdict = format!("{}; {}", warnings.join("; "), self.verdict);
        }
        self
    }
}

/// A's targets in order, then B's extra ones.
fn target_names(a: &Snapshot, b: &Snapshot) -> Vec<String> {
    let mut names: Vec<String> = a.targets.iter().map(|t| t.target.clone()).collect();
    for t in &b.targets {
        if !names.contains(&t.target) {
            names.push(t.target.clone());
        }
    }
    names
}

fn item_names(a: Option<&TargetSnapshot>, b: Option<&TargetSnapshot>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for t in [a, b].into_iter().flatten() {
        for i in &t.items {
            if !names.contains(&i.item) {
                names.push(i.item.clone());
            }
        }
    }
    names
}

fn served_diff(
    target: &str,
    archive_a: &Archive,
    snap_a: &Snapshot,
    archive_b: &Archive,
    snap_b: &Snapshot,
) -> ServedDiff {
    let calls = |s: &Snapshot| -> Vec<BTreeMap<String, String>> {
        s.targets
            .iter()
            .find(|t| t.target == target)
            .map(|t| t.served.iter().map(|id| id.fields.clone()).collect())
            .unwrap_or_default()
    };
    let server = |a: &Archive| a.header.servers.get(target).cloned();
    let (a, b) = (calls(snap_a), calls(snap_b));
    let (a_server, b_server) = (server(archive_a), server(archive_b));
    // Each compared field's values per session: from every call identity and the server's
    // reports (at the start, and at the end where the session closed). A volatile field (a
    // `created` that is the time of the request) is no change.
    let values = |ids: &[BTreeMap<String, String>], archive: &Archive| {
        let mut v: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let reports = [
            archive.header.servers.get(target),
            archive.close.as_ref().and_then(|c| c.servers.get(target)),
        ];
        for fields in ids.iter().chain(reports.into_iter().flatten()) {
            for (k, value) in fields.iter().filter(|(k, _)| compared(k)) {
                v.entry(k.clone()).or_default().insert(value.clone());
            }
        }
        v
    };
    let (va, vb) = (values(&a, archive_a), values(&b, archive_b));
    let keys: BTreeSet<&String> = va.keys().chain(vb.keys()).collect();
    let changed = keys
        .into_iter()
        .filter(|k| va.get(*k) != vb.get(*k))
        .map(|k| FieldChange {
            field: k.clone(),
            a: va
                .get(k)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default(),
            b: vb
                .get(k)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default(),
        })
        .collect();
    ServedDiff {
        target: target.to_string(),
        a,
        b,
        a_server,
        b_server,
        changed,
    }
}

fn compare_item(target: &str, a: &ItemSnapshot, b: &ItemSnapshot) -> ItemComparison {
    let (da, db) = (distribution(a), distribution(b));
    let p = stats::fisher_exact(
        da.modal_count,
        da.n - da.modal_count,
        db.modal_count,
        db.n - db.modal_count,
    );
    let consistency = Test {
        test: FISHER,
        p,
        p_adjusted: p,
        significant: false,
        statistic: None,
        df: None,
        categories: None,
        pooled: None,
    };
    // Outputs: one category per distinct text on either side.
    let mut index: HashMap<&str, usize> = HashMap::new();
    for c in a.clusters.iter().chain(&b.clusters) {
        let next = index.len();
        index.entry(c.text.as_ref()).or_insert(next);
    }
    let counts = |item: &ItemSnapshot| {
        let mut v = vec![0u64; index.len()];
        for c in &item.clusters {
            v[index[c.text.as_ref()]] += c.count;
        }
        v
    };
    let outputs = stats::chi_square_homogeneity(&counts(a), &counts(b)).map(chi_test);
    let answers = (!a.answers.is_empty() && !b.answers.is_empty())
        .then(|| {
            let keys: BTreeSet<&Option<String>> = a
                .answers
                .iter()
                .chain(&b.answers)
                .map(|x| &x.answer)
                .collect();
            let row = |item: &ItemSnapshot| -> Vec<u64> {
                keys.iter()
                    .map(|k| {
                        item.answers
                            .iter()
                            .filter(|x| &&x.answer == k)
                            .map(|x| x.count)
                            .sum()
                    })
                    .collect()
            };
            stats::chi_square_homogeneity(&row(a), &row(b)).map(chi_test)
        })
        .flatten();
    ItemComparison {
        target: target.to_string(),
        item: a.item.clone(),
        a: da,
        b: db,
        consistency,
        overlap: overlap(a, b),
        outputs,
        answers,
    }
}

fn chi_test(t: stats::ChiSquare) -> Test {
    Test {
        test: CHI_SQUARE,
        p: t.p,
        p_adjusted: t.p,
        significant: false,
        statistic: Some(t.statistic),
        df: Some(t.df),
        categories: Some(t.categories),
        pooled: Some(t.pooled),
    }
}

fn distribution(item: &ItemSnapshot) -> Distribution {
    // Clusters are sorted by count, descending: the first is the modal output.
    let n: u64 = item.clusters.iter().map(|c| c.count).sum();
    let modal = item.clusters.first().map_or(0, |c| c.count);
    Distribution {
        n,
        distinct_outputs: item.distinct_outputs,
        modal_count: modal,
        modal_share: if n > 0 { modal as f64 / n as f64 } else { 0.0 },
        modal_share_ci: crate::analysis::measures::wilson_interval(
            modal,
            n,
            crate::analysis::measures::Z95,
        ),
    }
}

fn overlap(a: &ItemSnapshot, b: &ItemSnapshot) -> Overlap {
    let in_a: HashSet<&str> = a.clusters.iter().map(|c| c.text.as_ref()).collect();
    let in_b: HashSet<&str> = b.clusters.iter().map(|c| c.text.as_ref()).collect();
    let b_calls: u64 = b.clusters.iter().map(|c| c.count).sum();
    let shared_calls: u64 = b
        .clusters
        .iter()
        .filter(|c| in_a.contains(c.text.as_ref()))
        .map(|c| c.count)
        .sum();
    Overlap {
        a_distinct: a.clusters.len() as u64,
        a_distinct_in_b: in_a.iter().filter(|t| in_b.contains(*t)).count() as u64,
        b_calls,
        b_calls_with_a_output: shared_calls,
        b_share_with_a_output: if b_calls > 0 {
            shared_calls as f64 / b_calls as f64
        } else {
            0.0
        },
    }
}

/// Holm over the compared items, separately for each kind of test; marks significance.
fn adjust(items: &mut [ItemComparison]) {
    type Pick = fn(&mut ItemComparison) -> Option<&mut Test>;
    let picks: [Pick; 3] = [
        |i| Some(&mut i.consistency),
        |i| i.outputs.as_mut(),
        |i| i.answers.as_mut(),
    ];
    for pick in picks {
        let p: Vec<f64> = items
            .iter_mut()
            .filter_map(|i| pick(i).map(|t| t.p))
            .collect();
        let mut adjusted = stats::holm(&p).into_iter();
        for item in items.iter_mut() {
            if let Some(t) = pick(item) {
                t.p_adjusted = adjusted.next().unwrap_or(t.p);
                t.significant = t.p_adjusted < ALPHA;
            }
        }
    }
}

/// `p = 0.003`, `p = 0.50`, `p < 0.001`.
pub fn format_p(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".into()
    } else if p < 0.01 {
        format!("p = {p:.3}")
    } else {
        format!("p = {p:.2}")
    }
}

/// One line: conditions; served identity; consistency; distributions where they differ.
fn verdict(c: &Comparison) -> String {
    let mut parts = Vec::new();
    parts.push(match c.conditions.len() {
        0 if c.same_identity => "same conditions".to_string(),
        0 => "conditions identities differ, no field differs".to_string(),
        n => {
            let mut names: Vec<&str> = c
                .conditions
                .iter()
                .take(3)
                .map(|x| x.path.as_str())
                .collect();
            if n > 3 {
                names.push("…");
            }
            format!(
                "conditions differ in {n} field{} ({})",
                if n == 1 { "" } else { "s" },
                names.join(", ")
            )
        }
    });
    let served: BTreeSet<&str> = c
        .served
        .iter()
        .flat_map(|s| s.changed.iter().map(|f| f.field.as_str()))
        .collect();
    if !served.is_empty() {
        parts.push(format!(
            "served identity changed ({})",
            served.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let s = &c.summary;
    match c.items.as_slice() {
        [] => parts.push("no item has outputs in both sessions: nothing to test".into()),
        [one] => {
            let t = &one.consistency;
            let does = if t.significant {
                "differs"
            } else {
                "does not differ"
            };
            parts.push(format!(
                "consistency {does} significantly ({})",
                format_p(t.p)
            ));
            if one.overlap.a_distinct_in_b == 0 {
                parts.push("no output in common".into());
            }
            for (what, test) in [("output", &one.outputs), ("answer", &one.answers)] {
                if let Some(t) = test.as_ref().filter(|t| t.significant) {
                    parts.push(format!(
                        "{what} distribution differs significantly ({})",
                        format_p(t.p)
                    ));
                }
            }
        }
        many => {
            let n = many.len();
            parts.push(if s.consistency_differs == 0 {
                format!("consistency does not differ significantly in any of {n} items (Holm)")
            } else {
                format!(
                    "consistency differs significantly in {} of {n} items (Holm-adjusted p < {ALPHA})",
                    s.consistency_differs
                )
            });
            for (what, k) in [("output", s.outputs_differ), ("answer", s.answers_differ)] {
                if k > 0 {
                    parts.push(format!(
                        "{what} distribution differs significantly in {k} of {n} items"
                    ));
                }
            }
        }
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests;
