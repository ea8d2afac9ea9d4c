//! Drawing cost: one full 200×60 frame of each view with 10,000 calls in the snapshot
//! (1,000 distinct outputs of ~300 tokens, splitting from the modal one at varied tokens).
//!
//! `cargo bench --bench dashboard`. The target is ≤ 4 ms per frame; the loop draws at most
//! ~15 frames a second, so that is ≤ 6% of one core while a campaign runs. Idle cost with a
//! finished campaign on screen is measured separately (`cargo bench --bench idle`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use reprise::analysis::{AnalysisConfig, Analyzer, DEFAULT_PAIR_BUDGET};
use reprise::record::CallRecord;
use reprise::tui::keys::{Command, Tab};
use reprise::tui::state::{App, Live, Phase};
use reprise::tui::view::render;

const CALLS: u32 = 10_000;
const DISTINCT: u32 = 1_000;
const WORDS: usize = 300;

/// Output `v`: the modal text with its words from a seeded position on replaced.
fn output(v: u32) -> String {
    let split = if v == 0 {
        WORDS
    } else {
        (v as usize * 37) % WORDS
    };
    (0..WORDS)
        .map(|w| {
            if w < split {
                format!("word{}", w % 97)
            } else {
                format!("alt{}x{}", v, w % 13)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn app() -> App {
    let mut analyzer = Analyzer::new(AnalysisConfig {
        answer: None,
        pair_budget: DEFAULT_PAIR_BUDGET,
        targets: vec!["local".into()],
        items: vec![("essay".into(), None)],
    });
    let outputs: Vec<String> = (0..DISTINCT).map(output).collect();
    for call in 0..CALLS {
        // Half the calls give the modal output; the rest spread over the variants.
        let v = if call % 2 == 0 { 0 } else { call % DISTINCT };
        let mut record = CallRecord::ok(
            "local",
            "essay",
            call,
            &outputs[v as usize],
            20.0 + f64::from(call % 200),
        );
        record.timing.start_ms = f64::from(call) * 3.0;
        analyzer.fold(&record);
    }
    let mut app = App::new("bench".into(), vec!["local".into()], u64::from(CALLS));
    app.identity = Some("sha256:0123456789abcdef".into());
    app.live = Arc::new(Live {
        snapshot: Some(analyzer.snapshot()),
        records: u64::from(CALLS),
        in_flight: 0,
    });
    app.session_closed(Phase::Finished { completed: true });
    app.refresh();
    app
}

fn frames(c: &mut Criterion) {
    let mut app = app();
    let mut group = c.benchmark_group("frame_200x60_10k_calls");
    group.measurement_time(Duration::from_secs(4));
    for tab in Tab::ALL {
        app.apply(Command::ShowTab(tab));
        app.refresh();
        let mut terminal = Terminal::new(TestBackend::new(200, 60)).expect("test terminal");
        group.bench_function(tab.label(), |b| {
            b.iter(|| {
                // A fresh buffer each time: the whole frame is drawn, not a diff.
                terminal.clear().expect("clear");
                terminal
                    .draw(|frame| render(frame, black_box(&app), Duration::from_secs(75)))
                    .expect("draw");
            })
        });
    }
    // The same frames encoded as terminal escape sequences (crossterm, to a sink): what the
    // real terminal costs on top of the drawing.
    for tab in [Tab::Overview, Tab::Divergence] {
        app.apply(Command::ShowTab(tab));
        app.refresh();
        let backend = ratatui::backend::CrosstermBackend::new(std::io::sink());
        let mut terminal = Terminal::with_options(
            backend,
            ratatui::TerminalOptions {
                viewport: ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, 200, 60)),
            },
        )
        .expect("sink terminal");
        group.bench_function(format!("{}_to_terminal", tab.label()), |b| {
            b.iter(|| {
                terminal.clear().expect("clear");
                terminal
                    .draw(|frame| render(frame, black_box(&app), Duration::from_secs(75)))
                    .expect("draw");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
