//! Archive throughput: appending records as calls finish, and reading/verifying a
//! 10,000-call session (the replay budget is 0.5 s for read plus analysis).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use reprise::archive::{self, ArchiveWriter, Header, SessionOutcome};
use reprise::record::CallRecord;

const CALLS: usize = 10_000;
const TOKENS: usize = 1_000;

/// A ~1,000-token answer (≈ 5.5 KB), varied per call so nothing is trivially repeated.
fn record(i: usize, with_tokens: bool) -> CallRecord {
    const WORDS: [&str; 8] = [
        " the", " capital", " of", " France", " is", " Paris", ",", " which",
    ];
    let tokens: Vec<String> = (0..TOKENS)
        .map(|t| WORDS[(t * 7 + i) % WORDS.len()].to_string())
        .collect();
    let mut r = CallRecord::ok(
        "local",
        &format!("q{}", i % 50),
        (i / 50) as u32,
        &tokens.concat(),
        812.5,
    );
    r.served.insert("model".into(), "reprise-local".into());
    r.finish_reason = Some("stop".into());
    if with_tokens {
        r.logprobs = Some((0..TOKENS).map(|t| -((t % 13) as f32) * 0.173).collect());
        r.tokens = Some(tokens);
    }
    r
}

fn header() -> Header {
    Header::new(
        serde_json::json!({"protocol": {"name": "bench"}, "repeats": 200}),
        None,
        SystemTime::UNIX_EPOCH,
    )
}

fn write_session(path: &Path, with_tokens: bool) {
    let mut writer = ArchiveWriter::create(path, &header()).expect("create");
    for i in 0..CALLS {
        writer.append(&record(i, with_tokens)).expect("append");
    }
    let close = writer.close_record(SessionOutcome::Completed, CALLS as u64, None);
    writer.close(&close).expect("close");
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");

    let mut group = c.benchmark_group("archive_10k");
    group.sample_size(10);
    for (name, with_tokens) in [("output_only", false), ("tokens_logprobs", true)] {
        let path = dir.path().join(format!("{name}.jsonl"));
        write_session(&path, with_tokens);
        let size = std::fs::metadata(&path).expect("metadata").len();
        eprintln!("{name}: {CALLS} calls, {:.1} MB", size as f64 / 1e6);
        group.bench_function(format!("read/{name}"), |b| {
            b.iter(|| archive::read(&path).expect("read").calls.len())
        });
        group.bench_function(format!("verify/{name}"), |b| {
            b.iter(|| archive::verify(&path).expect("verify").close.records)
        });
    }
    group.finish();

    // Per-record append, rotating files so the benchmark does not fill the disk.
    let records: Vec<CallRecord> = (0..100).map(|i| record(i, false)).collect();
    c.bench_function("append/one_record_5.5KB", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let mut done = 0;
            let mut file = 0;
            while done < iters {
                let path = dir.path().join(format!("append-{file}.jsonl"));
                let mut writer = ArchiveWriter::create(&path, &header()).expect("create");
                let batch = (iters - done).min(5_000);
                let start = Instant::now();
                for i in 0..batch {
                    writer
                        .append(&records[i as usize % records.len()])
                        .expect("append");
                }
                elapsed += start.elapsed();
                drop(writer);
                std::fs::remove_file(&path).expect("remove");
                done += batch;
                file += 1;
            }
            elapsed
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
