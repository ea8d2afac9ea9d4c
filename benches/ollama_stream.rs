//! The `ollama` client's per-call CPU cost without a network: a 1,000-token NDJSON reply (one
//! line per token, as Ollama streams it) split from 1 KiB reads and reassembled.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use reprise::providers::http::ndjson::LineDecoder;
use reprise::providers::http::Assemble;
use reprise::providers::ollama::wire::Assembly;
use serde_json::json;

const TOKENS: usize = 1_000;
const WORDS: [&str; 8] = [
    " the", " capital", " of", " France", " is", " Paris", ",", " which",
];

fn transcript() -> Vec<u8> {
    let mut out = String::new();
    for t in 0..TOKENS {
        let line = json!({"model": "llama3.2", "created_at": "2026-01-05T12:00:00.123456789Z",
            "message": {"role": "assistant", "content": WORDS[(t * 7) % WORDS.len()]},
            "done": false});
        out.push_str(&format!("{line}\n"));
    }
    let done = json!({"model": "llama3.2", "created_at": "2026-01-05T12:00:01Z",
        "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop",
        "total_duration": 512345678u64, "prompt_eval_count": 9, "eval_count": TOKENS});
    out.push_str(&format!("{done}\n"));
    out.into_bytes()
}

fn bench(c: &mut Criterion) {
    let stream = transcript();
    let mut g = c.benchmark_group("ollama_reply_1000_tokens");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("streamed_ndjson_1KiB_reads", |b| {
        b.iter(|| {
            let mut decoder = LineDecoder::new();
            let mut a = Assembly::new("bench", false);
            for read in stream.chunks(1024) {
                for line in decoder.push(read).unwrap() {
                    a.event(&line, &|| Duration::ZERO).unwrap();
                }
            }
            let reply = a.end_of_stream(None).unwrap();
            assert_eq!(
                reply.usage.map(|u| u.completion_tokens),
                Some(TOKENS as u64)
            );
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
