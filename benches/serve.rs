//! `reprise serve` on loopback, in process: requests per second and tokens per second for
//! batches of 64 chat completions sent 16 at a time over keep-alive connections, JSON and SSE,
//! in both decoding modes. The client is reprise's own HTTP stack (reqwest), so its cost is in
//! the figure too; `benches/serve-load.lua` gives an external load (wrk) for the same server.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures_util::stream::{self, StreamExt};
use reprise::protocol::DecodeMode;
use reprise::serve::{ServeConfig, Server};
use serde_json::{json, Value};

const REQUESTS: usize = 64;
const CONCURRENCY: usize = 16;

fn body(stream: bool) -> Value {
    json!({
        "model": "reprise-local-1",
        "messages": [{"role": "user", "content": "Explain in one paragraph why floating-point addition is not associative."}],
        "temperature": 0,
        "max_tokens": 64,
        "stream": stream,
    })
}

async fn batch(client: &reqwest::Client, url: &str, body: &Value) -> usize {
    stream::iter(0..REQUESTS)
        .map(|_| async {
            let r = client.post(url).json(body).send().await.unwrap();
            assert!(r.status().is_success());
            r.bytes().await.unwrap().len()
        })
        .buffer_unordered(CONCURRENCY)
        .fold(0, |n, len| async move { n + len })
        .await
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("serve_64_requests_16_at_a_time");
    group.throughput(Throughput::Elements(REQUESTS as u64));
    group.measurement_time(Duration::from_secs(8));
    for mode in [DecodeMode::BatchInvariant, DecodeMode::Batched] {
        let (addr, stop) = rt.block_on(async {
            let server = Server::bind(
                "127.0.0.1:0".parse().unwrap(),
                ServeConfig {
                    mode,
                    ..ServeConfig::default()
                },
            )
            .await
            .unwrap();
            let addr = server.local_addr().unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(server.run(async {
                let _ = stopped.await;
            }));
            (addr, stop)
        });
        let url = format!("http://{addr}/v1/chat/completions");
        let client = reqwest::Client::new();
        for stream in [false, true] {
            let name = format!("{}_{}", mode.as_str(), if stream { "sse" } else { "json" });
            let body = body(stream);
            group.bench_function(name, |b| {
                b.iter(|| rt.block_on(batch(&client, &url, &body)));
            });
        }
        let _ = stop.send(());
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
