//! `reprise import` of a 10,000-line JSONL (the budget is 2 s): parse, validate, analyse
//! for the closing summary, write and sync the archive.

use std::io::Write as _;

use criterion::{criterion_group, criterion_main, Criterion};
use reprise::import::{import, ImportFormat, ImportOptions};

const LINES: usize = 10_000;

/// 50 items × 200 outputs of ~300 words each, a few distinct answers per item.
fn write_input(path: &std::path::Path) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let body = "The capital of France is Paris, which lies on the Seine. ".repeat(30);
    for i in 0..LINES {
        let line = serde_json::json!({
            "item": format!("q{}", i % 50),
            "output": format!("{body}Variant {}.", (i * 7) % 5),
            "target": "tool",
            "latency_ms": 800.0 + (i % 97) as f64,
            "model": "some-model-1",
        });
        writeln!(file, "{line}").unwrap();
    }
    file.flush().unwrap();
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("outputs.jsonl");
    write_input(&input);
    let mut n = 0u64;
    let mut group = c.benchmark_group("import");
    group.sample_size(10);
    group.bench_function("jsonl_10k_lines", |b| {
        b.iter(|| {
            n += 1;
            let out = dir.path().join(format!("archive-{n}.jsonl"));
            let options = ImportOptions {
                format: ImportFormat::Jsonl,
                out: Some(out.clone()),
                dir: None,
                name: None,
            };
            let imported = import(&input, &options).unwrap();
            assert_eq!(imported.records, LINES as u64);
            std::fs::remove_file(out).unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
