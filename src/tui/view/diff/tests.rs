use std::sync::Arc;
use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

use super::*;
use crate::analysis::{AnalysisConfig, Analyzer, DEFAULT_PAIR_BUDGET};
use crate::record::{CallRecord, ErrorClass};
use crate::tui::keys::{Command, Tab};
use crate::tui::state::Live;
use crate::tui::testing::{frame, line_with, lines, live_app};
use crate::tui::theme::ColorSupport;

/// The app on the diff tab, with `outputs[i]` as call `i` of one item, brought up to date.
fn app_with(outputs: &[&str]) -> App {
    let records: Vec<CallRecord> = outputs
        .iter()
        .enumerate()
        .map(|(call, out)| CallRecord::ok("local", "capital", call as u32, out, 12.0))
        .collect();
    let mut app = live_app(&["local"], &["capital"], &records);
    app.planned_calls = 20;
    app.apply(Command::ShowTab(Tab::Diff));
    app.refresh();
    app
}

fn draw(app: &App, width: u16, height: u16) -> Buffer {
    frame(app, width, height, Duration::from_secs(5))
}

/// The cells of the first occurrence of `needle` (after `after` on its line, if given).
fn cells_of(buffer: &Buffer, needle: &str, after: &str) -> Vec<(u16, u16)> {
    let all = lines(buffer);
    for (y, line) in all.iter().enumerate() {
        let from = line.find(after).map(|i| i + after.len());
        let Some(at) = from.and_then(|f| line[f..].find(needle).map(|i| i + f)) else {
            continue;
        };
        // Column of a byte index: lines hold one symbol per cell.
        let x0 = line[..at].chars().count() as u16;
        let n = needle.chars().count() as u16;
        return (x0..x0 + n).map(|x| (x, y as u16)).collect();
    }
    panic!("no {needle:?} after {after:?} in\n{}", all.join("\n"));
}

const OUTPUTS: &[&str] = &[
    "The capital is Paris.",
    "The capital is Paris.",
    "The capital is Lyon.",
    "The capital is Paris.",
];

#[test]
fn insertions_and_deletions_carry_the_theme_styles_at_both_sizes() {
    let app = app_with(OUTPUTS);
    let insert = app.theme.diff_insert();
    let delete = app.theme.diff_delete();
    for (w, h) in [(100, 30), (80, 24)] {
        let buffer = draw(&app, w, h);
        let all = lines(&buffer);
        line_with(&all, "call 2 (#1, 1 call) vs modal (#0, 3 calls)");
        line_with(&all, "1 difference · first at token 3 · difference 1/1");
        line_with(&all, "The capital is Paris Lyon.");
        for (x, y) in cells_of(&buffer, "Lyon", "Paris ") {
            let cell = &buffer[(x, y)];
            assert_eq!((cell.fg, cell.bg), (insert.fg.unwrap(), insert.bg.unwrap()));
        }
        for (x, y) in cells_of(&buffer, "Paris", "is ") {
            let cell = &buffer[(x, y)];
            assert_eq!((cell.fg, cell.bg), (delete.fg.unwrap(), delete.bg.unwrap()));
            assert!(cell.modifier.contains(Modifier::CROSSED_OUT));
            // The current difference is emphasised.
            assert!(cell.modifier.contains(Modifier::UNDERLINED), "{w}x{h}");
        }
        for (x, y) in cells_of(&buffer, "capital", "The ") {
            assert_eq!(buffer[(x, y)].bg, Color::Reset);
        }
        // The call list only where it fits: calls in arrival order, `=` where the output is the
        // base's.
        let list = all.iter().any(|l| l.contains("calls 4"));
        assert_eq!(list, w >= 100, "{w}x{h}");
        if list {
            line_with(&all, "=      0 #0");
            line_with(&all, "       2 #1");
        }
    }
}

#[test]
fn without_colour_markers_carry_the_meaning() {
    let mut app = app_with(OUTPUTS);
    app.theme.support = ColorSupport::None;
    for (w, h) in [(100, 30), (80, 24)] {
        let all = lines(&draw(&app, w, h));
        line_with(&all, "The capital is[- Paris-][+ Lyon+].");
    }
}

#[test]
fn identical_outputs_say_so() {
    let mut app = app_with(OUTPUTS);
    app.apply(Command::SelectUp);
    app.refresh();
    let all = lines(&draw(&app, 100, 30));
    line_with(
        &all,
        "call 1 (#0, 3 calls) vs modal (#0, 3 calls) · identical to the base",
    );
    line_with(&all, "The capital is Paris.");
    // A chosen base is named by its call.
    app.apply(Command::SelectDown);
    app.apply(Command::SetBase);
    app.apply(Command::SelectUp);
    app.refresh();
    let all = lines(&draw(&app, 100, 30));
    line_with(
        &all,
        "call 1 (#0, 3 calls) vs call 2 (#1, 1 call) · 1 difference",
    );
    line_with(&all, "b      2 #1");
}

#[test]
fn waits_for_the_first_answer() {
    let mut app = App::new("capitals".into(), vec!["local".into()], 20);
    app.apply(Command::ShowTab(Tab::Diff));
    app.refresh();
    let all = lines(&draw(&app, 80, 24));
    line_with(&all, "waiting for the first answer");
}

#[test]
fn says_when_every_call_so_far_failed() {
    let mut analyzer = Analyzer::new(AnalysisConfig {
        answer: None,
        pair_budget: DEFAULT_PAIR_BUDGET,
        targets: vec!["local".into()],
        items: vec![("capital".into(), None)],
    });
    let failed = CallRecord::failed("local", "capital", 0, ErrorClass::Timeout, "slow");
    analyzer.fold(&failed);
    let mut app = App::new("capitals".into(), vec!["local".into()], 20);
    app.live = Arc::new(Live {
        snapshot: Some(analyzer.snapshot()),
        records: 1,
        ..Live::default()
    });
    app.apply(Command::ShowTab(Tab::Diff));
    app.refresh();
    line_with(
        &lines(&draw(&app, 80, 24)),
        "no successful call yet (1 failed)",
    );
}

#[test]
fn model_text_is_drawn_inert() {
    let app = app_with(&[
        "ok \x1b[2J done",
        "ok \x1b[2J done",
        "ok \x1b]0;pwned\x07 done",
    ]);
    let buffer = draw(&app, 100, 30);
    let all = lines(&buffer);
    assert!(!all.iter().any(|l| l.contains('\x1b')));
    // The shared ESC, then the deleted and the inserted sequence, all as visible text.
    line_with(&all, "ok ␛[2J]0;pwned␇ done");
}

#[test]
fn line_breaks_start_new_rows_and_changed_ones_stay_visible() {
    let app = app_with(&["one\ntwo\nthree", "one\ntwo\nthree", "one\ntwo three"]);
    let all = lines(&draw(&app, 80, 24));
    line_with(&all, "│one");
    // The deleted line break is marked, then its row ends.
    line_with(&all, "│two↵");
    line_with(&all, "│three");
}

/// A text of `n` words on lines of 12, the last line changed.
fn long_text(n: usize, last: &str) -> String {
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(if i % 12 == 0 { '\n' } else { ' ' });
        }
        s.push_str(&format!("w{i}"));
    }
    s.push(' ');
    s.push_str(last);
    s
}

#[test]
fn a_long_text_scrolls_to_a_difference_near_its_end() {
    let base = long_text(5_000, "end");
    let call = long_text(5_000, "finish");
    let mut app = app_with(&[&base, &base, &call]);
    let d = app.diff.diff().unwrap();
    assert!(d.len >= 5_000, "{}", d.len);
    assert_eq!(d.hunks.len(), 1);
    let buffer = draw(&app, 200, 60);
    let all = lines(&buffer);
    // The difference is on screen, the start of the text is not.
    line_with(&all, "w4999 end finish");
    assert!(!all.iter().any(|l| l.contains("│w0 w1 ")));
    for (x, y) in cells_of(&buffer, "finish", "end ") {
        assert_eq!(buffer[(x, y)].bg, app.theme.diff_insert().bg.unwrap());
    }
    // Paging up from there shows earlier text; n brings the difference back.
    app.apply(Command::PageUp);
    let all = lines(&draw(&app, 200, 60));
    assert!(!all.iter().any(|l| l.contains("finish")));
    app.apply(Command::NextDifference);
    line_with(&lines(&draw(&app, 200, 60)), "w4999 end finish");
}

/// Lays out every row, the slow way: the reference for the lazy window.
fn all_rows(wrap: &Wrap) -> Vec<String> {
    let mut rows = Vec::new();
    let mut start = Some(Start {
        pos: ORIGIN,
        soft: false,
    });
    while let Some(s) = start {
        let mut spans = Vec::new();
        start = wrap
            .row(s, Some(&mut spans))
            .filter(|n| n.pos.token < wrap.diff.len);
        rows.push(spans.iter().map(|s| s.content.as_ref()).collect());
    }
    rows
}

fn text_of(lines: &[Line]) -> Vec<String> {
    lines.iter().map(|l| l.to_string()).collect()
}

#[test]
fn the_lazy_window_agrees_with_laying_out_everything() {
    // Long lines, short lines, blank lines, a word wider than the pane.
    let base = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda\n\nmu nu \
                xi omicron pi rho sigma tau upsilon phi chi psi omega\nshort\n\
                Pneumonoultramicroscopicsilicovolcanoconiosis is long and then some";
    let call = base.replace("sigma", "SIGMA").replace("short", "brief");
    let app = app_with(&[base, base, &call]);
    let diff = app.diff.diff().unwrap();
    for width in [9, 16, 23] {
        let wrap = Wrap {
            diff,
            width,
            color: true,
            theme: &app.theme,
            current: None,
        };
        let reference = all_rows(&wrap);
        let n = reference.len();
        assert!(
            reference.iter().all(|r| r.width() <= width),
            "{reference:?}"
        );
        for height in [1, 3, 7] {
            for anchor in [0, 5, 17, 23, 30, diff.len - 1] {
                // Far up clamps to the top, far down to the last full page.
                let top = Scroll {
                    anchor,
                    rows: -1_000,
                    pages: 0,
                };
                let lines = window(&wrap, top, height);
                assert_eq!(
                    text_of(&lines),
                    reference[..height.min(n)],
                    "w{width} a{anchor}"
                );
                let bottom = Scroll {
                    anchor,
                    rows: 0,
                    pages: 1_000,
                };
                let lines = window(&wrap, bottom, height);
                assert_eq!(text_of(&lines), reference[n.saturating_sub(height)..]);
            }
            // Page by page from the top, everything once.
            for page in 0..n.div_ceil(height) {
                let scroll = Scroll {
                    anchor: 0,
                    rows: 0,
                    pages: page as i32,
                };
                let lines = window(&wrap, scroll, height);
                let from = (page * height).min(n.saturating_sub(height));
                assert_eq!(text_of(&lines), reference[from..(from + height).min(n)]);
            }
        }
    }
}
