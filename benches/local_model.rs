//! Throughput of the built-in local model: tokens per second for a 256-token request.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use reprise::local::{GenRequest, LocalModel};

fn request(temperature: f32, seed: Option<u64>) -> GenRequest {
    GenRequest {
        user: "Tell me about Richard Feynman.".to_string(),
        temperature,
        seed,
        max_tokens: 256,
        ..GenRequest::default()
    }
}

fn bench(c: &mut Criterion) {
    // Building happens once per process; report it rather than benchmark a cached value.
    let start = std::time::Instant::now();
    let model = LocalModel::builtin();
    eprintln!("local model built in {:?}", start.elapsed());
    let mut group = c.benchmark_group("local_generate");
    for (name, req) in [
        ("greedy", request(0.0, None)),
        ("t0.8_seeded", request(0.8, Some(7))),
    ] {
        // The model may end before max_tokens; throughput counts the tokens it produced.
        let tokens = model.generate(&req).tokens.len() as u64;
        group.throughput(Throughput::Elements(tokens));
        group.bench_function(name, |b| b.iter(|| model.generate(black_box(&req))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
