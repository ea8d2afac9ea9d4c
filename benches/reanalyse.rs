//! Re-analysing a saved session: read a 10,000-call archive from disk and fold every record.
//! Target: ≤ 0.5 s with ~1,000-token outputs.

use std::time::SystemTime;

use criterion::{criterion_group, criterion_main, Criterion};
use reprise::archive::{ArchiveWriter, Header};
use reprise::record::CallRecord;
use serde_json::json;

/// ~1,000-token text (words and punctuation), varied at `variant` so outputs split mid-text.
fn text(variant: usize) -> String {
    let words = [
        "the", "model", "answer", "again", "river", "stone", "light", "market",
    ];
    let mut s = String::new();
    for i in 0..500 {
        if i == 250 + variant * 7 {
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

fn write_archive(dir: &std::path::Path, distinct: usize) -> std::path::PathBuf {
    let path = dir.join(format!("bench-{distinct}.jsonl"));
    let conditions = json!({
        "targets": [{"name": "local"}],
        "items": [{"name": "prompt"}],
    });
    let header = Header::new(conditions, None, SystemTime::now());
    let mut w = ArchiveWriter::create(&path, &header).unwrap();
    let texts: Vec<String> = (0..distinct.min(10_000)).map(text).collect();
    for call in 0..10_000u32 {
        let t = if distinct >= 10_000 {
            format!("{} {call}", texts[0])
        } else {
            texts[call as usize % distinct].clone()
        };
        w.append(&CallRecord::ok("local", "prompt", call, &t, 12.0))
            .unwrap();
    }
    path
}

/// A realistic local-model session: one greedy biography, with tokens and logprobs, 10,000 times.
fn write_local_archive(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("bench-local.jsonl");
    let header = Header::new(json!({}), None, SystemTime::now());
    let mut w = ArchiveWriter::create(&path, &header).unwrap();
    let g = reprise::local::LocalModel::builtin().generate(&reprise::local::GenRequest {
        user: "Tell me about Richard Feynman.".into(),
        ..Default::default()
    });
    for call in 0..10_000u32 {
        let mut r = CallRecord::ok("local", "prompt", call, &g.text, 3.0);
        r.tokens = Some(g.tokens.clone());
        r.logprobs = Some(g.logprobs.clone());
        w.append(&r).unwrap();
    }
    path
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("reanalyse_10k_calls");
    g.sample_size(10);
    for distinct in [5usize, 10_000] {
        let path = write_archive(dir.path(), distinct);
        g.bench_function(format!("{distinct}_distinct"), |b| {
            b.iter(|| reprise::session::analyse_archive(&path).unwrap())
        });
    }
    let path = write_local_archive(dir.path());
    g.bench_function("local_model_with_tokens_and_logprobs", |b| {
        b.iter(|| reprise::session::analyse_archive(&path).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
