//! `reprise open` on a 10,000-call archive of ~1,000-token outputs: what a key costs.
//! - `open_at_end`: read, fold every record, one snapshot (what opening shows at once);
//! - `seek_back_half`: `←` from the end to half-way, which re-folds 5,000 records from the
//!   start, then the snapshot the view gets.
//!
//! `cargo bench --bench replay`.

use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use reprise::archive::{ArchiveWriter, Header};
use reprise::record::CallRecord;
use reprise::tui::replay::{open, Player};
use serde_json::json;

/// ~1,000 tokens (words and punctuation), varied at `variant` so outputs split mid-text.
fn text(variant: usize) -> String {
    let words = [
        "the", "model", "answer", "again", "river", "stone", "light", "market",
    ];
    let mut s = String::new();
    for i in 0..500 {
        if i == 250 + variant % 200 {
            s.push_str(" variant");
            s.push_str(&variant.to_string());
        }
        s.push(' ');
        s.push_str(words[(i * 7 + i / 3) % words.len()]);
        if i % 12 == 11 {
            s.push('.');
        }
    }
    s
}

/// 10,000 calls, one every 10 ms of session time, over `distinct` outputs.
fn write_archive(dir: &std::path::Path, distinct: usize) -> std::path::PathBuf {
    let path = dir.join(format!("replay-{distinct}.jsonl"));
    let conditions = json!({"targets": [{"name": "local"}], "items": [{"name": "prompt"}]});
    let header = Header::new(conditions, None, SystemTime::now());
    let mut w = ArchiveWriter::create(&path, &header).unwrap();
    let texts: Vec<String> = (0..distinct).map(text).collect();
    for call in 0..10_000u32 {
        let mut r = CallRecord::ok(
            "local",
            "prompt",
            call,
            &texts[call as usize % distinct],
            12.0,
        );
        r.timing.start_ms = f64::from(call) * 10.0;
        w.append(&r).unwrap();
    }
    path
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("replay_10k_calls");
    g.sample_size(10);
    for distinct in [5usize, 1_000] {
        let path = write_archive(dir.path(), distinct);
        g.bench_function(format!("open_at_end_{distinct}_distinct"), |b| {
            b.iter(|| {
                let opened = open(&path).unwrap();
                let mut player = Player::new(&opened.archive);
                player.seek(player.end());
                player.live()
            })
        });
        let opened = open(&path).unwrap();
        let mut at_end = Player::new(&opened.archive);
        at_end.seek(at_end.end());
        let half = at_end.end() / 2;
        g.bench_function(format!("seek_back_half_{distinct}_distinct"), |b| {
            b.iter_batched(
                || {
                    let mut p = Player::new(&opened.archive);
                    p.seek(Duration::MAX);
                    p
                },
                |mut p| {
                    p.seek(half);
                    p.live()
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
