//! Throughput of the built-in local model: tokens per second for a 256-token request; and the
//! cost of decoding a batch of 32 in the batch-invariant order against the batched one (the
//! split that follows the batch's shape), both on one thread.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use reprise::local::batch::order_for;
use reprise::local::{GenRequest, LocalModel, ReductionOrder};

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

    let demo = GenRequest {
        user: "Explain in one paragraph why floating-point addition is not associative.".into(),
        max_tokens: 160,
        ..GenRequest::default()
    };
    let tokens = 32 * model.generate(&demo).tokens.len() as u64;
    let mut group = c.benchmark_group("decode_batch_32");
    group.throughput(Throughput::Elements(tokens));
    for (name, order) in [
        ("batch_invariant", ReductionOrder::Sequential),
        ("batched", order_for(32, 0)),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                // 32 sequences stepped together, one token each per step.
                let mut batch: Vec<_> = (0..32).map(|_| model.stepper(demo.clone())).collect();
                let mut done = Vec::with_capacity(32);
                while !batch.is_empty() {
                    let mut i = 0;
                    while i < batch.len() {
                        if batch[i].step(black_box(order)) {
                            done.push(batch.swap_remove(i).finish());
                        } else {
                            i += 1;
                        }
                    }
                }
                done
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
