use super::*;
use crate::analysis::{AnalysisConfig, Analyzer, DEFAULT_PAIR_BUDGET};
use crate::record::CallRecord;

fn analyzer() -> Analyzer {
    Analyzer::new(AnalysisConfig {
        answer: None,
        pair_budget: DEFAULT_PAIR_BUDGET,
        targets: vec!["local".into()],
        items: vec![("q".into(), None), ("r".into(), None)],
    })
}

fn fold(a: &mut Analyzer, item: &str, calls: &[(u32, &str)]) {
    for &(call, out) in calls {
        a.fold(&CallRecord::ok("local", item, call, out, 10.0));
    }
}

fn item(a: &Analyzer, name: &str) -> ItemSnapshot {
    let snapshot = a.snapshot();
    snapshot.targets[0]
        .items
        .iter()
        .find(|i| i.item == name)
        .cloned()
        .unwrap()
}

const PARIS: &str = "The capital is Paris.";
const LYON: &str = "The capital is Lyon.";

/// Calls 0, 1, 3 say Paris (cluster #0, modal), call 2 says Lyon (#1).
fn paris_lyon() -> Analyzer {
    let mut a = analyzer();
    fold(
        &mut a,
        "q",
        &[(0, PARIS), (1, PARIS), (2, LYON), (3, PARIS)],
    );
    a
}

fn shown_ops(d: &TokenDiff) -> Vec<(Op, String)> {
    d.segments
        .iter()
        .map(|s| {
            let text: String = (0..s.len()).map(|k| d.token(s, k)).collect();
            (s.op, text)
        })
        .collect()
}

#[test]
fn pairs_the_first_differing_call_with_the_modal_output() {
    let a = paris_lyon();
    let item = item(&a, "q");
    let mut state = DiffState::default();
    state.refresh(Some(&item));
    assert_eq!(state.selected(), Some(Selected { call: 2, pos: 2 }));
    let d = state.diff().unwrap();
    assert_eq!((d.base_id, d.call_id), (0, 1));
    assert_eq!(
        shown_ops(d),
        [
            (Op::Equal, "The capital is".to_string()),
            (Op::Delete, " Paris".to_string()),
            (Op::Insert, " Lyon".to_string()),
            (Op::Equal, ".".to_string()),
        ]
    );
    assert_eq!(d.hunks.len(), 1);
    // The split the analysis reports and the diff's first difference agree.
    assert_eq!(
        Some(d.hunks[0].call_token),
        item.clusters[1].first_divergence
    );
    assert_eq!(d.hunks[0].at, 3);
    assert_eq!(d.len, 6);
    assert_eq!(state.current, Some(0));
    assert_eq!(state.scroll.anchor, 3);
}

#[test]
fn an_unchanged_pair_is_not_diffed_again() {
    let mut a = paris_lyon();
    let mut state = DiffState::default();
    state.refresh(Some(&item(&a, "q")));
    state.refresh(Some(&item(&a, "q")));
    // New calls change the counts, not the pair.
    fold(&mut a, "q", &[(4, PARIS), (5, LYON)]);
    let item2 = item(&a, "q");
    state.refresh(Some(&item2));
    assert_eq!(state.computations(), 1);
    state.apply(Command::PageDown, Some(&item2));
    let scroll = state.scroll;
    assert_eq!(scroll.pages, 1);
    // Call 1 is modal: compared with the modal output, identical (a new pair).
    state.apply(Command::SelectUp, Some(&item2));
    assert_eq!(state.computations(), 2);
    assert!(state.diff().unwrap().hunks.is_empty());
    assert_eq!(state.current, None);
    // Back to call 2: the pair is cached, with where the reader was.
    state.apply(Command::SelectDown, Some(&item2));
    assert_eq!(state.computations(), 2);
    assert_eq!(state.scroll, scroll);
    // Call 3 has call 1's output: the same pair as call 1.
    state.apply(Command::SelectDown, Some(&item2));
    assert_eq!(state.selected().map(|s| s.call), Some(3));
    assert_eq!(state.computations(), 2);
}

#[test]
fn differences_wrap_around_and_scroll_into_view() {
    let mut a = analyzer();
    fold(
        &mut a,
        "q",
        &[
            (0, "a b c d e f g"),
            (1, "a b c d e f g"),
            (2, "a X c d Y f"),
        ],
    );
    let item = item(&a, "q");
    let mut state = DiffState::default();
    state.refresh(Some(&item));
    let hunks = state.diff().unwrap().hunks.clone();
    assert_eq!(hunks.len(), 3, "{hunks:?}");
    assert_eq!(state.current, Some(0));
    let mut seen = Vec::new();
    for _ in 0..3 {
        state.apply(Command::NextDifference, Some(&item));
        seen.push(state.current.unwrap());
        let at = hunks[state.current.unwrap()].at;
        assert_eq!(
            state.scroll,
            Scroll {
                anchor: at,
                rows: -CONTEXT_ROWS,
                pages: 0
            }
        );
    }
    assert_eq!(seen, [1, 2, 0]);
    state.apply(Command::PrevDifference, Some(&item));
    assert_eq!(state.current, Some(2));
    state.apply(Command::PageDown, Some(&item));
    state.apply(Command::PageDown, Some(&item));
    state.apply(Command::PageUp, Some(&item));
    assert_eq!(state.scroll.pages, 1);
    // Moving to a difference forgets the paging.
    state.apply(Command::NextDifference, Some(&item));
    assert_eq!(state.scroll.pages, 0);
}

#[test]
fn a_chosen_call_becomes_the_base_until_m() {
    let a = paris_lyon();
    let item = item(&a, "q");
    let mut state = DiffState::default();
    state.refresh(Some(&item));
    state.apply(Command::SetBase, Some(&item));
    assert_eq!(state.base, Base::Call(2));
    assert_eq!(state.base_call(), Some(Selected { call: 2, pos: 2 }));
    assert!(state.diff().unwrap().hunks.is_empty());
    // Call 1 (Paris) against call 2 (Lyon): Paris is now the inserted side.
    state.apply(Command::SelectUp, Some(&item));
    let d = state.diff().unwrap();
    assert_eq!((d.base_id, d.call_id), (1, 0));
    assert_eq!(shown_ops(d)[1], (Op::Delete, " Lyon".to_string()));
    assert_eq!(shown_ops(d)[2], (Op::Insert, " Paris".to_string()));
    state.apply(Command::BaseModal, Some(&item));
    assert_eq!(state.base_call(), None);
    assert!(state.diff().unwrap().hunks.is_empty());
}

#[test]
fn the_selection_follows_its_call_when_clusters_reorder() {
    let mut a = paris_lyon();
    let mut state = DiffState::default();
    state.refresh(Some(&item(&a, "q")));
    assert_eq!(state.cluster_indices(), (0, 1));
    // Lyon overtakes Paris: cluster #1 moves to the top and becomes the modal output.
    fold(&mut a, "q", &[(4, LYON), (5, LYON), (6, LYON)]);
    let item = item(&a, "q");
    assert_eq!(item.clusters[0].id, 1);
    state.refresh(Some(&item));
    assert_eq!(state.selected(), Some(Selected { call: 2, pos: 2 }));
    assert_eq!(state.cluster_indices(), (0, 0));
    assert!(state.diff().unwrap().hunks.is_empty());
}

#[test]
fn another_item_resets_the_selection_and_the_base() {
    let mut a = paris_lyon();
    fold(&mut a, "r", &[(0, "yes"), (1, "no"), (2, "yes")]);
    let mut state = DiffState::default();
    state.refresh(Some(&item(&a, "q")));
    state.apply(Command::SetBase, Some(&item(&a, "q")));
    state.refresh(Some(&item(&a, "r")));
    assert_eq!(state.base, Base::Modal);
    assert_eq!(state.selected(), Some(Selected { call: 1, pos: 1 }));
    assert_eq!(state.item(), Some("r"));
    let d = state.diff().unwrap();
    assert_eq!(
        shown_ops(d),
        [(Op::Delete, "yes".into()), (Op::Insert, "no".into())]
    );
}

#[test]
fn d_from_the_clusters_list_shows_that_clusters_first_call() {
    let a = paris_lyon();
    let item = item(&a, "q");
    let mut state = DiffState::default();
    state.focus_cluster(&item, 0);
    assert_eq!(state.selected(), Some(Selected { call: 0, pos: 0 }));
    state.focus_cluster(&item, 1);
    assert_eq!(state.selected(), Some(Selected { call: 2, pos: 2 }));
    // An id the item does not have leaves the selection as it was.
    state.focus_cluster(&item, 9);
    assert_eq!(state.selected().map(|s| s.call), Some(2));
}

#[test]
fn nothing_to_compare_before_the_first_answer() {
    let a = analyzer();
    let item = item(&a, "q");
    let mut state = DiffState::default();
    state.refresh(None);
    state.refresh(Some(&item));
    for command in [
        Command::SelectDown,
        Command::NextDifference,
        Command::SetBase,
        Command::PageDown,
    ] {
        state.apply(command, Some(&item));
    }
    assert_eq!(state.selected(), None);
    assert!(state.diff().is_none());
}

#[test]
fn shown_positions_cover_both_sides() {
    let mut a = analyzer();
    fold(
        &mut a,
        "q",
        &[(0, "one two three"), (1, "one two three"), (2, "zero two")],
    );
    let item = item(&a, "q");
    let mut state = DiffState::default();
    state.refresh(Some(&item));
    let d = state.diff().unwrap();
    let shown: Vec<&str> = (0..d.len).map(|p| d.shown(p).unwrap().1).collect();
    assert_eq!(shown, ["one", "zero", " two", " three"]);
    assert_eq!(d.hunks.len(), 2);
    assert_eq!(d.shown(d.len), None);
}

#[test]
fn opening_the_view_moves_off_a_call_that_became_modal() {
    use crate::analysis::{AnalysisConfig, Analyzer, DEFAULT_PAIR_BUDGET};
    use crate::record::CallRecord;
    let mut analyzer = Analyzer::new(AnalysisConfig {
        answer: None,
        pair_budget: DEFAULT_PAIR_BUDGET,
        targets: vec!["t".into()],
        items: vec![("i".into(), None)],
    });
    analyzer.fold(&CallRecord::ok("t", "i", 0, "alpha beta", 1.0));
    analyzer.fold(&CallRecord::ok("t", "i", 1, "alpha gamma", 1.0));
    let early = analyzer.snapshot();
    let mut state = DiffState::default();
    state.refresh(Some(&early.targets[0].items[0]));
    // Call 1 differs from the modal (first-seen) output: it is selected.
    assert_eq!(state.selected().unwrap().call, 1);
    // Then call 1's output becomes the modal one: call 1 would show "identical".
    analyzer.fold(&CallRecord::ok("t", "i", 2, "alpha gamma", 1.0));
    let later = analyzer.snapshot();
    let item = &later.targets[0].items[0];
    state.refresh(Some(item));
    assert_eq!(state.selected().unwrap().call, 1);
    state.open(Some(item));
    assert_eq!(
        state.selected().unwrap().call,
        0,
        "a call that differs is shown"
    );
}
