//! The diff tab at 200×60: a full frame with 10,000 calls in the item and a ~5,000-token
//! output whose difference is near its end, plus the cost of diffing a new pair and of the
//! per-snapshot refresh when the pair is unchanged.
//!
//! `cargo bench --bench diff_view`. Groups: `draw` (`frame_without_diff`: the rest of the frame;
//! `lines`: text broken in lines of 12 words;
//! `paragraph`: one 5,000-token line, the lazy wrap's worst case), `refresh` (`unchanged`,
//! `new_pair`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use reprise::analysis::{AnalysisConfig, Analyzer, DEFAULT_PAIR_BUDGET};
use reprise::record::CallRecord;
use reprise::tui::diff::DiffState;
use reprise::tui::keys::{Command, Tab};
use reprise::tui::state::{App, Live};
use reprise::tui::view::render;

const CALLS: u32 = 10_000;
const WORDS: usize = 5_000;

/// `WORDS` words, a line break every `line` words (0: none), then `last`.
fn text(line: usize, last: &str) -> String {
    let mut s = String::new();
    for i in 0..WORDS {
        if i > 0 {
            s.push(if line > 0 && i % line == 0 { '\n' } else { ' ' });
        }
        s.push_str(&format!("word{i}"));
    }
    s.push(' ');
    s.push_str(last);
    s
}

/// 10,000 calls: every tenth ends differently from the rest; the diff tab shows one of them.
fn app(line: usize) -> App {
    let (base, other) = (text(line, "end."), text(line, "finish."));
    let mut analyzer = Analyzer::new(AnalysisConfig {
        answer: None,
        pair_budget: DEFAULT_PAIR_BUDGET,
        targets: vec!["local".into()],
        items: vec![("long".into(), None)],
    });
    for call in 0..CALLS {
        let out = if call % 10 == 3 { &other } else { &base };
        analyzer.fold(&CallRecord::ok("local", "long", call, out, 100.0));
    }
    let mut app = App::new("bench".into(), vec!["local".into()], u64::from(CALLS));
    app.live = Arc::new(Live {
        snapshot: Some(analyzer.snapshot()),
        records: u64::from(CALLS),
        ..Live::default()
    });
    app.apply(Command::ShowTab(Tab::Diff));
    app.refresh();
    app
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("draw");
    group.measurement_time(Duration::from_secs(5));
    // The same frame with nothing to diff: what the rest of the frame costs.
    let mut empty = App::new("bench".into(), vec!["local".into()], u64::from(CALLS));
    empty.apply(Command::ShowTab(Tab::Diff));
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    group.bench_function("frame_without_diff", |b| {
        b.iter(|| {
            terminal
                .draw(|frame| render(frame, black_box(&empty), Duration::from_secs(9)))
                .unwrap();
        })
    });
    for (name, line) in [("lines", 12), ("paragraph", 0)] {
        let app = app(line);
        let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                terminal
                    .draw(|frame| render(frame, black_box(&app), Duration::from_secs(9)))
                    .unwrap();
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("refresh");
    let mut app = app(12);
    group.bench_function("unchanged", |b| b.iter(|| app.refresh()));
    group.bench_function("new_pair", |b| {
        b.iter(|| {
            app.diff = DiffState::default();
            app.refresh();
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
