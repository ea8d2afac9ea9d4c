//! The divergence panel drawn from real snapshots (records folded by the analyzer), asserted
//! on symbols and on colours where colour is the meaning.

use std::sync::Arc;

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::Terminal;

use super::super::super::state::{App, Live};
use super::super::super::theme::{ColorSupport, Theme};
use super::{draw_heat, render, split_label};
use crate::analysis::{AnalysisConfig, Analyzer, ItemSnapshot, DEFAULT_PAIR_BUDGET};
use crate::record::{CallRecord, ErrorClass};

fn analyzer() -> Analyzer {
    Analyzer::new(AnalysisConfig {
        answer: None,
        pair_budget: DEFAULT_PAIR_BUDGET,
        targets: vec!["local".into()],
        items: vec![("capital".into(), None)],
    })
}

fn app_with(outputs: &[&str]) -> App {
    let mut a = analyzer();
    for (call, out) in outputs.iter().enumerate() {
        a.fold(&CallRecord::ok("local", "capital", call as u32, out, 10.0));
    }
    let mut app = App::new("p".into(), vec!["local".into()], 100);
    app.live = Arc::new(Live {
        snapshot: Some(a.snapshot()),
        ..Live::default()
    });
    app
}

fn item(app: &App) -> &ItemSnapshot {
    app.item_of(0).unwrap().1
}

/// A theme whose empty colour differs from the terminal default, so "past the end" is seen.
fn theme() -> Theme {
    Theme {
        heat_empty: Color::Indexed(236),
        ..Theme::dark()
    }
}

fn row(buf: &Buffer, y: u16) -> String {
    (buf.area.x..buf.area.right())
        .map(|x| buf[(x, y)].symbol().to_string())
        .collect()
}

fn panel(app: &App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| render(frame, frame.area(), app, 0))
        .unwrap();
    terminal.backend().buffer().clone()
}

const BASE: &str = "a b c d e f g h";

/// 3 × the modal output, 1 × an output turning at token 1 ("Z" for "b").
fn early_split() -> App {
    app_with(&[BASE, BASE, BASE, "a Z c d e f g h"])
}

// Map geometry in the tests below: gutter 4 ("▶#1 "), then 64 columns for 8 tokens = 8
// columns per token; 10 lines = marker, 7 map rows (14 sub-rows), axis, legend.
const AREA: Rect = Rect::new(0, 0, 68, 10);
const MAP_X: u16 = 4;

#[test]
fn split_is_marked_over_its_column_with_the_branches() {
    let app = early_split();
    let mut buf = Buffer::empty(AREA);
    draw_heat(&mut buf, AREA, &theme(), item(&app), 0, false);
    let marker = row(&buf, 0);
    // Token 1 starts at map column 8.
    assert_eq!(
        marker.chars().position(|c| c == '▼'),
        Some(usize::from(MAP_X) + 8)
    );
    assert!(
        marker.contains(r#"▼ split @ token 1 · "b" ×3 · "Z" ×1"#),
        "{marker}"
    );
}

#[test]
fn shared_cells_take_the_top_colour_and_diverged_cells_the_bottom() {
    let app = early_split();
    let t = theme();
    let mut buf = Buffer::empty(AREA);
    draw_heat(&mut buf, AREA, &t, item(&app), 0, false);
    // Row 1 holds the modal calls: agreement everywhere, in both half-rows.
    for x in MAP_X..AREA.right() {
        let c = &buf[(x, 1)];
        assert_eq!(
            (c.symbol(), c.fg, c.bg),
            ("▀", t.heat(1.0), t.heat(1.0)),
            "x={x}"
        );
    }
    // The last map row (sub-rows 12 and 13) holds the one diverging call: shared before the
    // split column, diverged from it on.
    let last = 7;
    for x in MAP_X..MAP_X + 8 {
        assert_eq!(buf[(x, last)].fg, t.heat(1.0), "x={x}");
    }
    for x in MAP_X + 8..AREA.right() {
        let c = &buf[(x, last)];
        assert_eq!((c.fg, c.bg), (t.heat(0.0), t.heat(0.0)), "x={x}");
    }
    assert_ne!(t.heat(0.0), t.heat(1.0));
    // The gutter names the modal cluster (selected) on the first row and #1 where it starts.
    assert!(row(&buf, 1).starts_with("▶#0"), "{}", row(&buf, 1));
    assert!(row(&buf, 6).starts_with(" #1"), "{}", row(&buf, 6));
}

#[test]
fn cells_past_the_end_of_an_output_are_empty() {
    let app = app_with(&[BASE, BASE, BASE, "a b"]);
    let t = theme();
    let mut buf = Buffer::empty(AREA);
    draw_heat(&mut buf, AREA, &t, item(&app), 0, false);
    let split = row(&buf, 0);
    assert!(
        split.contains(r#"split @ token 2 · "c" ×3 · (end) ×1"#),
        "{split}"
    );
    // "a b" agrees for its two tokens (16 columns), then has nothing.
    for x in MAP_X..MAP_X + 16 {
        assert_eq!(buf[(x, 7)].fg, t.heat(1.0), "x={x}");
    }
    for x in MAP_X + 16..AREA.right() {
        let c = &buf[(x, 7)];
        assert_eq!((c.symbol(), c.bg), (" ", t.heat_empty), "x={x}");
    }
}

#[test]
fn without_colour_the_glyph_ramp_carries_the_meaning() {
    let app = app_with(&[BASE, BASE, BASE, "a Z c d"]);
    // 16 colours cannot hold the ramp either: glyphs there too.
    let ansi = Theme {
        support: ColorSupport::Ansi16,
        ..Theme::dark()
    };
    let mut buf = Buffer::empty(AREA);
    draw_heat(&mut buf, AREA, &ansi, item(&app), 0, false);
    let all: String = (0..AREA.height).map(|y| row(&buf, y)).collect();
    assert!(!all.contains('▀') && all.contains(ansi.heat_glyph(1.0)));
    let t = Theme {
        support: ColorSupport::None,
        ..Theme::dark()
    };
    let mut buf = Buffer::empty(AREA);
    draw_heat(&mut buf, AREA, &t, item(&app), 0, false);
    let all: String = (0..AREA.height).map(|y| row(&buf, y)).collect();
    assert!(
        !all.contains('▀') && !all.contains('▄'),
        "half-blocks without colour"
    );
    // 7 map rows, one call range each: rows 1–6 the modal calls, row 7 the short diverging one.
    let full = t.heat_glyph(1.0);
    let low = t.heat_glyph(0.0);
    assert_ne!(full, low);
    assert!(row(&buf, 1)[..].ends_with(&full.to_string().repeat(64)));
    let last: Vec<char> = row(&buf, 7).chars().skip(MAP_X.into()).collect();
    assert!(last[..8].iter().all(|&c| c == full), "{last:?}");
    assert!(last[8..32].iter().all(|&c| c == low), "{last:?}");
    assert!(
        last[32..].iter().all(|&c| c == super::grid::EMPTY_GLYPH),
        "{last:?}"
    );
    // Glyphs are drawn in the text style, no colour added.
    for x in MAP_X..MAP_X + 32 {
        assert_eq!(buf[(x, 7)].fg, t.text.fg.unwrap_or(Color::Reset));
    }
    // The legend shows the same glyphs.
    let legend = row(&buf, 9);
    assert!(
        legend.contains(&format!("{full}{full} shared with modal")),
        "{legend}"
    );
}

#[test]
fn a_label_too_long_for_the_right_goes_left_of_the_marker() {
    let app = app_with(&[BASE, BASE, "a b c d e f g X"]);
    let mut buf = Buffer::empty(AREA);
    draw_heat(&mut buf, AREA, &theme(), item(&app), 0, false);
    let marker = row(&buf, 0);
    let col = usize::from(MAP_X) + 56;
    assert_eq!(marker.chars().position(|c| c == '▼'), Some(col));
    let left: String = marker.chars().take(col).collect();
    assert!(left.trim_end().ends_with(r#""h" ×2 · "X" ×1"#), "{marker}");
}

#[test]
fn split_label_drops_branches_that_do_not_fit() {
    let app = app_with(&["x a", "x a", "x b", "x c\nd", "x"]);
    let split = item(&app).first_divergence.clone().unwrap();
    let full = split_label(&split, usize::MAX);
    // Branches by count, then the output ending here before any token; spaces trimmed.
    assert_eq!(
        full,
        r#"split @ token 1 · "a" ×2 · (end) ×1 · "b" ×1 · "c" ×1"#
    );
    // A token that is one long blob shows only its start.
    let blob = "y".repeat(100);
    let app = app_with(&["x a", &format!("x {blob}")]);
    let long = split_label(item(&app).first_divergence.as_ref().unwrap(), usize::MAX);
    assert!(
        long.contains(&format!("\"{}…\" ×1", "y".repeat(24))),
        "{long}"
    );
    let short = split_label(&split, 30);
    assert!(short.chars().count() <= 30, "{short}");
    assert!(short.ends_with('…'), "{short}");
}

#[test]
fn matrix_shows_labels_and_percentages_with_heat_colours() {
    let app = app_with(&["a b c d", "a b c d", "a b x d"]);
    let buf = panel(&app, 100, 16);
    let t = &app.theme;
    let lines: Vec<String> = (0..16).map(|y| row(&buf, y)).collect();
    let title = lines.iter().position(|l| l.contains("similarity")).unwrap();
    assert!(lines[title + 1].contains("#0") && lines[title + 1].contains("#1"));
    let first = &lines[title + 2];
    assert!(
        first.contains("#0") && first.contains("100%") && first.contains("75%"),
        "{first}"
    );
    assert!(lines[title + 3].contains("#1"));
    // The 75% cell is coloured as 0.75 on the ramp, the diagonal as 1.0.
    let y = (title + 2) as u16;
    let x75 = (0..100).find(|&x| buf[(x, y)].symbol() == "7").unwrap();
    assert_eq!(buf[(x75, y)].bg, t.heat(0.75));
    let x100 = (0..100).find(|&x| buf[(x, y)].symbol() == "1").unwrap();
    assert_eq!(buf[(x100, y)].bg, t.heat(1.0));
    assert_ne!(t.heat(0.75), t.heat(1.0));
}

#[test]
fn matrix_goes_below_then_hides_as_space_shrinks() {
    let app = app_with(&["a b c d", "a b c d", "a b x d", "q"]);
    let has = |w, h, s: &str| {
        let buf = panel(&app, w, h);
        (0..h).any(|y| row(&buf, y).contains(s))
    };
    // Too narrow beside a 40-column map: below when tall enough, else a note.
    assert!(has(50, 20, "#0  100%"));
    assert!(!has(50, 10, "#0  100%"));
    assert!(has(50, 10, "similarity matrix: widen"));
}

#[test]
fn empty_states_say_what_is_going_on() {
    let mut none = App::new("p".into(), vec!["local".into()], 10);
    let buf = panel(&none, 60, 10);
    assert!(row(&buf, 1).contains("waiting for the first answer…"));
    // An item with only a failed call has no answer yet either.
    let mut a = analyzer();
    a.fold(&CallRecord::failed(
        "local",
        "capital",
        0,
        ErrorClass::Timeout,
        "slow",
    ));
    none.live = Arc::new(Live {
        snapshot: Some(a.snapshot()),
        ..Live::default()
    });
    let buf = panel(&none, 60, 10);
    assert!(row(&buf, 1).contains("waiting for the first answer…"));
    let one = app_with(&["same", "same"]);
    let buf = panel(&one, 60, 10);
    assert!(row(&buf, 1).contains("every call agrees so far"));
    assert!(!(0..10).any(|y| row(&buf, y).contains("similarity")));
}

#[test]
fn any_size_and_any_snapshot_draws_without_panic() {
    let long: String = (0..3000).map(|i| format!("w{i} ")).collect();
    let longer = format!("{long} and more");
    let variants: Vec<String> = (0..40).map(|i| format!("{long} v{i}")).collect();
    let mut outputs: Vec<&str> = vec![&long, &long, &longer, ""];
    outputs.extend(variants.iter().map(String::as_str));
    let apps = [
        App::new("p".into(), vec!["local".into()], 0),
        app_with(&[]),
        app_with(&["one"]),
        app_with(&["", ""]),
        app_with(&outputs),
    ];
    let no_colour = Theme {
        support: ColorSupport::None,
        ..Theme::dark()
    };
    let ansi = Theme {
        support: ColorSupport::Ansi16,
        ..Theme::dark()
    };
    for mut app in apps {
        app.selected = 1000;
        for theme in [Theme::dark(), no_colour.clone(), ansi.clone()] {
            app.theme = theme;
            for (w, h) in [
                (1, 1),
                (2, 2),
                (3, 5),
                (10, 3),
                (20, 8),
                (45, 6),
                (78, 17),
                (200, 60),
            ] {
                panel(&app, w, h);
            }
        }
    }
}

#[test]
fn the_whole_frame_shows_the_tab_at_both_sizes() {
    let mut app = early_split();
    app.tab = super::super::super::keys::Tab::Divergence;
    for (w, h) in [(80u16, 24u16), (200, 60)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal
            .draw(|frame| super::super::render(frame, &app, std::time::Duration::ZERO))
            .unwrap();
        let buf = terminal.backend().buffer();
        let lines: Vec<String> = (0..h).map(|y| row(buf, y)).collect();
        let all = lines.join("\n");
        for part in [
            "split @ token 1",
            "similarity",
            "88%",
            "shared with modal",
            "▀",
        ] {
            assert!(all.contains(part), "{w}x{h}: {part}\n{all}");
        }
    }
}
