//! The `openai` client's per-call CPU cost without a network: a 1,000-token streamed reply
//! (one SSE event per token, with logprobs, as OpenAI sends it) decoded from 1 KiB reads and
//! reassembled; and the same reply as one JSON body.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use reprise::providers::http::sse::SseDecoder;
use reprise::providers::http::Assemble;
use reprise::providers::openai::wire::Assembly;
use serde_json::json;

const TOKENS: usize = 1_000;
const WORDS: [&str; 8] = [
    " the", " capital", " of", " France", " is", " Paris", ",", " which",
];

fn transcript() -> Vec<u8> {
    let mut out = String::new();
    for t in 0..TOKENS {
        let word = WORDS[(t * 7) % WORDS.len()];
        let chunk = json!({"id": "chatcmpl-b", "object": "chat.completion.chunk", "created": 1,
            "model": "m-2026", "system_fingerprint": "fp_b",
            "choices": [{"index": 0, "delta": {"content": word},
                "logprobs": {"content": [{"token": word, "logprob": -0.173, "bytes": null, "top_logprobs": []}]},
                "finish_reason": if t + 1 == TOKENS { json!("stop") } else { json!(null) }}],
            "usage": null});
        out.push_str(&format!("data: {chunk}\n\n"));
    }
    out.push_str("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1000}}\n\ndata: [DONE]\n\n");
    out.into_bytes()
}

fn whole() -> Vec<u8> {
    let words: Vec<&str> = (0..TOKENS).map(|t| WORDS[(t * 7) % WORDS.len()]).collect();
    let content: Vec<_> = words
        .iter()
        .map(|w| json!({"token": w, "logprob": -0.173, "bytes": null, "top_logprobs": []}))
        .collect();
    json!({"id": "chatcmpl-b", "model": "m-2026", "system_fingerprint": "fp_b",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": words.concat()},
            "logprobs": {"content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1000}})
    .to_string()
    .into_bytes()
}

fn bench(c: &mut Criterion) {
    let stream = transcript();
    let mut g = c.benchmark_group("openai_reply_1000_tokens");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("streamed_sse_1KiB_reads", |b| {
        b.iter(|| {
            let mut decoder = SseDecoder::new();
            let mut a = Assembly::new("bench", true);
            for read in stream.chunks(1024) {
                for data in decoder.push(read).unwrap() {
                    a.event(&data, &|| Duration::ZERO).unwrap();
                }
            }
            let reply = a.end_of_stream(None).unwrap();
            assert_eq!(reply.tokens.map(|t| t.len()), Some(TOKENS));
        })
    });
    let body = whole();
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("whole_json", |b| {
        b.iter(|| {
            let reply = Assembly::new("bench", true).whole(&body).unwrap();
            assert_eq!(reply.tokens.map(|t| t.len()), Some(TOKENS));
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
