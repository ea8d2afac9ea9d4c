//! The timing tab drawn from a real analyzer snapshot into a test backend.

use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;

use super::{columns, ms, render, EIGHTHS};
use crate::record::{CallRecord, ErrorClass};
use crate::tui::keys::Tab;
use crate::tui::state::{App, Phase};
use crate::tui::testing::{line_with, lines, live_app};

/// `(target, latency ms, completed at ms)` per successful call, plus one timeout per target.
fn app_with(targets: &[&str], calls: &[(&str, f64, f64)]) -> App {
    let mut records: Vec<CallRecord> = calls
        .iter()
        .enumerate()
        .map(|(call, &(target, latency, end))| {
            let mut r = CallRecord::ok(target, "capital", call as u32, "Paris", latency);
            r.timing.start_ms = end - latency;
            r
        })
        .collect();
    for t in targets {
        let mut failed = CallRecord::failed(t, "capital", 1_000_000, ErrorClass::Timeout, "slow");
        failed.timing.start_ms = 500.0;
        records.push(failed);
    }
    let mut app = live_app(targets, &["capital"], &records);
    app.planned_calls = calls.len() as u64 + 10;
    app.tab = Tab::Timing;
    app
}

/// 1000 calls on one target: latencies skewed 100..~600 ms, 1..=20 calls completing per second.
fn busy_app() -> App {
    let mut calls = Vec::new();
    let mut t = 0.0;
    for second in 0..50u32 {
        let per = 1 + second % 20;
        for k in 0..per {
            let latency = 100.0 + f64::from((k * 37 + second * 11) % 200) + f64::from(k * k);
            calls.push(("local", latency, t + f64::from(k) * 999.0 / f64::from(per)));
        }
        t += 1000.0;
    }
    app_with(&["local"], &calls)
}

fn draw_tab(app: &App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| render(frame, frame.area(), app))
        .unwrap();
    terminal.backend().buffer().clone()
}

/// The bar height in eighths drawn in column x above row `below`.
fn bar_eighths(buf: &Buffer, x: u16, below: u16) -> u32 {
    (0..below)
        .filter_map(|y| EIGHTHS.iter().position(|g| *g == buf[(x, y)].symbol()))
        .map(|i| i as u32 + 1)
        .sum()
}

#[test]
fn stats_and_markers_show_the_snapshot_percentiles() {
    let app = busy_app();
    let (_, item) = app.shown_item().unwrap();
    let l = item.latency_ms;
    for (w, h) in [(80, 19), (200, 53)] {
        let lines = lines(&draw_tab(&app, w, h));
        let stats = line_with(&lines, "p50 ");
        for (name, v) in [
            ("p50", l.p50),
            ("p90", l.p90),
            ("p99", l.p99),
            ("max", l.max),
        ] {
            assert!(stats.contains(&format!("{name} {} ms", ms(v))), "{stats}");
        }
        assert!(stats.contains("475 calls"), "{stats}");
        line_with(&lines, "latency · local · capital");
        // The markers under the chart, and the axis from min to max.
        let marks = line_with(&lines, "▲p50");
        assert!(marks.contains("▲p99") || marks.contains("▲p90"), "{marks}");
        let axis = line_with(&lines, &format!("{} ms│", ms(l.max)));
        assert!(axis.starts_with("│100"), "{axis}");
    }
}

#[test]
fn bar_heights_are_proportional_to_bucket_counts() {
    let app = busy_app();
    let (_, item) = app.shown_item().unwrap();
    let (w, h) = (100u16, 30u16);
    let buf = draw_tab(&app, w, h);
    // Panel border and stats line above the chart; labels, axis, border and sparkline below.
    let chart_rows = h - 5 - 5;
    let chart_bottom = h - 5 - 3;
    let cols = columns(&item.latency_histogram, w - 2);
    assert_eq!(cols.len(), item.latency_histogram.len());
    let max = item
        .latency_histogram
        .iter()
        .map(|b| b.count)
        .max()
        .unwrap();
    for (c, b) in cols.iter().zip(&item.latency_histogram) {
        let expected = (b.count * u64::from(chart_rows) * 8 + max / 2) / max;
        let expected = if b.count > 0 { expected.max(1) } else { 0 };
        for dx in 0..c.width {
            let drawn = bar_eighths(&buf, 1 + c.x + dx, chart_bottom);
            assert_eq!(u64::from(drawn), expected, "bucket {b:?}");
        }
        assert_eq!(
            buf[(1 + c.x, chart_bottom - 1)].fg,
            app.theme.bar.fg.unwrap()
        );
    }
    // The tallest bar fills the chart.
    assert!(cols
        .iter()
        .any(|c| bar_eighths(&buf, 1 + c.x, chart_bottom) == u32::from(chart_rows) * 8));
}

#[test]
fn throughput_sparkline_shows_now_and_peak() {
    let mut app = busy_app();
    let lines_running = lines(&draw_tab(&app, 80, 19));
    // 50 seconds, second s completing 1 + s % 20 calls (and the timeout at 0.5 s in second 0).
    let title = line_with(&lines_running, "throughput");
    // Running: the last second may still fill, so "now" is second 48.
    assert!(title.contains("now 9 calls/s"), "{title}");
    assert!(title.contains("peak 20 calls/s"), "{title}");
    assert!(title.contains("last 50 s"), "{title}");
    let spark_row = lines_running.len() - 2;
    assert!(
        EIGHTHS.iter().any(|g| lines_running[spark_row].contains(g)),
        "{}",
        lines_running.join("\n")
    );
    app.session_closed(Phase::Finished { completed: true });
    let lines_done = lines(&draw_tab(&app, 80, 19));
    assert!(line_with(&lines_done, "throughput").contains("now 10 calls/s"));
    // Narrow: only the latest seconds that fit, under a shorter title.
    let narrow = lines(&draw_tab(&app, 40, 19));
    let title = line_with(&narrow, "peak 20/s");
    assert!(title.contains("now 10/s"), "{title}");
    assert!(title.contains("· 38 s"), "{title}");
}

#[test]
fn empty_states_before_any_call() {
    let mut app = App::new("p".into(), vec!["local".into()], 10);
    app.tab = Tab::Timing;
    let lines_none = lines(&draw_tab(&app, 78, 17));
    line_with(&lines_none, "no calls yet");
    line_with(&lines_none, "no calls completed yet");
    // Only a failure: a throughput second, but no latency sample.
    let app = app_with(&["local"], &[]);
    let lines_failed = lines(&draw_tab(&app, 78, 17));
    line_with(&lines_failed, "no successful calls yet");
    line_with(&lines_failed, "peak 1 calls/s");
}

#[test]
fn several_targets_side_by_side_when_wide() {
    let calls: Vec<(&str, f64, f64)> = (0..40)
        .map(|i| {
            let t = if i % 2 == 0 { "fast" } else { "slow" };
            let latency = if t == "fast" {
                10.0 + i as f64
            } else {
                900.0 + i as f64
            };
            (t, latency, 1000.0 + 100.0 * i as f64)
        })
        .collect();
    let app = app_with(&["fast", "slow"], &calls);
    let wide = lines(&draw_tab(&app, 200, 40));
    let titles = line_with(&wide, "latency · fast");
    assert!(titles.contains("latency · slow"), "{titles}");
    // Narrow: the target chosen with `t` only.
    let narrow = lines(&draw_tab(&app, 100, 40));
    line_with(&narrow, "latency · fast");
    assert!(!narrow.iter().any(|l| l.contains("latency · slow")));
}

#[test]
fn no_panic_at_any_size() {
    let apps = [
        busy_app(),
        app_with(&["a", "b"], &[("a", 5.0, 10.0), ("b", 5000.0, 6000.0)]),
        app_with(&["local"], &[]),
        App::new("p".into(), Vec::new(), 0),
    ];
    for app in &apps {
        for w in (1..=90).step_by(7).chain([2, 3, 4, 5]) {
            for h in (1..=40).step_by(3).chain([2, 3, 4]) {
                draw_tab(app, w, h);
            }
        }
    }
}

#[test]
fn full_frame_at_80x24_shows_the_timing_tab() {
    let app = busy_app();
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal
        .draw(|frame| crate::tui::view::render(frame, &app, Duration::from_secs(50)))
        .unwrap();
    let lines = lines(terminal.backend().buffer());
    line_with(&lines, "p50 ");
    line_with(&lines, "▲p50");
    line_with(&lines, "peak 20 calls/s");
}

/// Release-mode figure: `cargo test --release --lib timing_draw_time -- --ignored --nocapture`.
#[test]
#[ignore]
fn timing_draw_time_200x60_10k_calls() {
    let calls: Vec<(&str, f64, f64)> = (0..10_000u32)
        .map(|i| {
            let t = if i % 2 == 0 { "a" } else { "b" };
            let latency = 50.0 + f64::from(i * 7919 % 3000) + f64::from(i % 13).powi(3);
            (t, latency, f64::from(i) * 60.0)
        })
        .collect();
    let app = app_with(&["a", "b"], &calls);
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    let rounds = 2000;
    // The panel alone, into the frame's buffer: no diffing or flushing to the backend.
    let mut frame = terminal.get_frame();
    let area = frame.area();
    let start = Instant::now();
    for _ in 0..rounds {
        render(&mut frame, area, &app);
    }
    let per = start.elapsed() / rounds;
    let start = Instant::now();
    for _ in 0..rounds {
        terminal
            .draw(|frame| crate::tui::view::render(frame, &app, Duration::from_secs(600)))
            .unwrap();
    }
    let full = start.elapsed() / rounds;
    println!("timing tab 200x60, 10k calls: {per:?} per render; full frame with terminal {full:?}");
}
