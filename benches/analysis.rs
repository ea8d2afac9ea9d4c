//! Fold and snapshot costs at N = 10,000 calls of ~1,000-token outputs.
//!
//! `cargo bench --bench analysis`. Groups:
//! - `pair`: one distinct-output comparison (char NED + token distance), for related outputs
//!   (a few words changed) and unrelated ones; this is the unit the pair budget buys.
//! - `fold_5_distinct`: 10,000 calls over 5 distinct outputs, then one more repeat / one new
//!   distinct output.
//! - `fold_all_distinct`: 10,000 distinct outputs (default budget), then one more new output.
//! - `snapshot`: snapshot() on both states.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use reprise::analysis::{
    ned, token_distance, word_tokens, AnalysisConfig, Analyzer, Interner, DEFAULT_PAIR_BUDGET,
};
use reprise::record::CallRecord;

const N: u32 = 10_000;
const WORDS: usize = 900;

/// A small deterministic generator (no dependency on rand's stream stability).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn vocabulary() -> Vec<String> {
    let syll = [
        "ka", "lo", "mi", "ne", "ru", "ta", "vi", "so", "pe", "du", "ich", "an",
    ];
    let mut rng = Lcg(7);
    (0..400)
        .map(|_| {
            let n = 1 + rng.next() % 3;
            (0..n)
                .map(|_| syll[rng.next() as usize % syll.len()])
                .collect()
        })
        .collect()
}

/// ~1,000 tokens: 900 words with sentence punctuation. Variant `v` changes a few words at
/// positions seeded by `v`; `unrelated` draws every word from the seed instead.
fn text(vocab: &[String], v: u64, unrelated: bool) -> String {
    let mut base = Lcg(42);
    let mut var = Lcg(1000 + v);
    let changes: Vec<usize> = (0..4).map(|_| var.next() as usize % WORDS).collect();
    let mut out = String::with_capacity(WORDS * 7);
    for w in 0..WORDS {
        let b = base.next() as usize;
        let word = if unrelated || changes.contains(&w) {
            &vocab[var.next() as usize % vocab.len()]
        } else {
            &vocab[b % vocab.len()]
        };
        if w > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if b % 11 == 0 {
            out.push_str(if b % 3 == 0 { "," } else { "." });
        }
    }
    out
}

fn config() -> AnalysisConfig {
    AnalysisConfig {
        answer: None,
        pair_budget: DEFAULT_PAIR_BUDGET,
        targets: vec!["t".into()],
        items: vec![("q".into(), None)],
    }
}

fn record(call: u32, text: &str) -> CallRecord {
    CallRecord::ok("t", "q", call, text, 800.0 + (call % 97) as f64)
}

fn filled(texts: &[String]) -> Analyzer {
    let mut a = Analyzer::new(config());
    for call in 0..N {
        a.fold(&record(call, &texts[call as usize % texts.len()]));
    }
    a
}

fn pair(c: &mut Criterion) {
    let vocab = vocabulary();
    let (a, b) = (text(&vocab, 1, false), text(&vocab, 2, false));
    let u = text(&vocab, 3, true);
    let mut interner = Interner::default();
    let mut ids = |t: &str| -> Vec<u32> {
        word_tokens(t)
            .into_iter()
            .map(|x| interner.intern(x))
            .collect()
    };
    let (ia, ib, iu) = (ids(&a), ids(&b), ids(&u));
    eprintln!(
        "synthetic output: {} chars, {} tokens",
        a.chars().count(),
        ia.len()
    );
    let mut g = c.benchmark_group("pair");
    g.bench_function("related", |bn| {
        bn.iter(|| (ned(black_box(&a), &b), token_distance(black_box(&ia), &ib)))
    });
    g.bench_function("related_chars", |bn| bn.iter(|| ned(black_box(&a), &b)));
    g.bench_function("related_tokens", |bn| {
        bn.iter(|| token_distance(black_box(&ia), &ib))
    });
    g.bench_function("unrelated", |bn| {
        bn.iter(|| (ned(black_box(&a), &u), token_distance(black_box(&ia), &iu)))
    });
    g.finish();
}

fn five_distinct(c: &mut Criterion) {
    // With 5 outputs, K(K-1)/2 = 10 pairs: always exact.
    let vocab = vocabulary();
    let texts: Vec<String> = (0..5).map(|v| text(&vocab, v, false)).collect();
    let base = filled(&texts);
    let fresh = text(&vocab, 99, false);
    let mut g = c.benchmark_group("fold_5_distinct");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    let mut repeat = base.clone();
    let mut call = N;
    g.bench_function("repeat", |bn| {
        bn.iter(|| {
            call += 1;
            repeat.fold(black_box(&record(call, &texts[1])));
        })
    });
    // Each timed fold runs on a fresh copy, so it always meets exactly 5 earlier outputs.
    g.bench_function("new_output", |bn| {
        bn.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let rec = record(N + 1, &fresh);
            for _ in 0..iters {
                let mut a = base.clone();
                let t = Instant::now();
                a.fold(black_box(&rec));
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
    c.bench_function("snapshot/5_distinct", |bn| {
        bn.iter(|| black_box(base.snapshot()))
    });
}

fn all_distinct(c: &mut Criterion) {
    let vocab = vocabulary();
    // Built on first use so that filtering to other benchmarks skips the long fill.
    let state: RefCell<Option<Analyzer>> = RefCell::new(None);
    let with_state = |f: &mut dyn FnMut(&mut Analyzer)| {
        let mut slot = state.borrow_mut();
        let a = slot.get_or_insert_with(|| {
            let texts: Vec<String> = (0..N).map(|v| text(&vocab, v as u64, false)).collect();
            let start = Instant::now();
            let mut a = Analyzer::new(config());
            for (call, t) in texts.iter().enumerate() {
                a.fold(&record(call as u32, t));
            }
            eprintln!(
                "filled 10,000 distinct outputs in {:.1} s",
                start.elapsed().as_secs_f64()
            );
            a
        });
        f(a)
    };
    // Before the fold benchmarks, which add many calls.
    c.bench_function("snapshot/all_distinct", |bn| {
        bn.iter_custom(|iters| {
            let mut el = Duration::ZERO;
            with_state(&mut |a| {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(a.snapshot());
                }
                el = t.elapsed();
            });
            el
        })
    });
    let mut g = c.benchmark_group("fold_all_distinct");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    let mut next = N as u64;
    g.bench_function("new_output", |bn| {
        bn.iter_custom(|iters| {
            let texts: Vec<String> = (0..iters).map(|i| text(&vocab, next + i, false)).collect();
            let mut el = Duration::ZERO;
            with_state(&mut |a| {
                let t = Instant::now();
                for (i, tx) in texts.iter().enumerate() {
                    a.fold(black_box(&record(next as u32 + i as u32, tx)));
                }
                el = t.elapsed();
            });
            next += iters;
            el
        })
    });
    let mut unrelated = 0u64;
    g.bench_function("new_unrelated_output", |bn| {
        bn.iter_custom(|iters| {
            let texts: Vec<String> = (0..iters)
                .map(|i| text(&vocab, 900_000 + unrelated + i, true))
                .collect();
            let mut el = Duration::ZERO;
            with_state(&mut |a| {
                let t = Instant::now();
                for (i, tx) in texts.iter().enumerate() {
                    a.fold(black_box(&record(
                        40_000_000 + (unrelated + i as u64) as u32,
                        tx,
                    )));
                }
                el = t.elapsed();
            });
            unrelated += iters;
            el
        })
    });
    let again = text(&vocab, 17, false);
    let mut call = 50_000_000u32;
    g.bench_function("repeat", |bn| {
        bn.iter_custom(|iters| {
            let mut el = Duration::ZERO;
            with_state(&mut |a| {
                let t = Instant::now();
                for _ in 0..iters {
                    call += 1;
                    a.fold(black_box(&record(call, &again)));
                }
                el = t.elapsed();
            });
            el
        })
    });
    g.finish();
    if state.borrow().is_some() {
        with_state(&mut |a| {
            let s = a.snapshot();
            let i = &s.targets[0].items[0];
            eprintln!(
                "all distinct: K = {}, ned_mean = {:?}, token_similarity_mean = {:?}",
                i.distinct_outputs, i.ned_mean, i.token_similarity_mean
            );
        });
    }
}

criterion_group!(benches, pair, five_distinct, all_distinct);
criterion_main!(benches);
