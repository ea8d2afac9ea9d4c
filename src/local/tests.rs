//! Behaviour of the built-in model that the rest of reprise relies on.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use super::params::{hash_vec, DIM};
use super::*;

const FEYNMAN: &str = "Tell me about Richard Feynman.";
const BREAD: &str = "Explain how bread rises.";
const CODE: &str = "Write a Python function that reverses a string";
const CHOICE: &str = "Which element did Marie Curie discover?\nA) helium\nB) radium\nC) iron\nD) neon\nAnswer with a letter.";

fn ask(user: &str) -> GenRequest {
    GenRequest {
        user: user.to_string(),
        ..GenRequest::default()
    }
}

fn sampled(user: &str, temperature: f32, seed: Option<u64>) -> GenRequest {
    GenRequest {
        temperature,
        seed,
        ..ask(user)
    }
}

fn model() -> &'static LocalModel {
    LocalModel::builtin()
}

#[test]
fn identity_is_named_and_hashed() {
    let m = model();
    assert_eq!(m.name(), "reprise-local-1");
    let hex = m.revision().strip_prefix("sha256:").unwrap_or("");
    assert_eq!(hex.len(), 64);
    assert!(hex
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert!(m.vocab_size() > 500);
}

#[test]
fn greedy_is_repeatable() {
    let a = model().generate(&ask(FEYNMAN));
    let b = model().generate(&ask(FEYNMAN));
    assert_eq!(a, b);
}

#[test]
fn a_seed_makes_sampling_repeatable() {
    let a = model().generate(&sampled(BREAD, 1.0, Some(42)));
    let b = model().generate(&sampled(BREAD, 1.0, Some(42)));
    assert_eq!(a, b);
}

#[test]
fn without_a_seed_sampling_varies() {
    let texts: BTreeSet<String> = (0..20)
        .map(|_| model().generate(&sampled(BREAD, 1.0, None)).text)
        .collect();
    assert!(texts.len() > 1, "20 unseeded runs gave one text");
}

#[test]
fn different_seeds_usually_differ() {
    let texts: BTreeSet<String> = (0..8u64)
        .map(|s| model().generate(&sampled(FEYNMAN, 1.0, Some(s))).text)
        .collect();
    assert!(texts.len() >= 6, "only {} distinct texts", texts.len());
}

#[test]
fn the_prompt_steers_the_text() {
    let outs: Vec<Generation> = [FEYNMAN, BREAD, CODE]
        .iter()
        .map(|q| model().generate(&ask(q)))
        .collect();
    for (i, a) in outs.iter().enumerate() {
        for b in &outs[i + 1..] {
            assert_ne!(a.tokens[..10], b.tokens[..10]);
            let n = a.tokens.len().min(b.tokens.len());
            let same = (0..n).filter(|&k| a.tokens[k] == b.tokens[k]).count();
            assert!(same * 2 < n, "{same} of {n} positions equal");
        }
    }
    // On topic: each text uses the words its prompt is about.
    assert!(outs[0].text.contains("physicist"));
    assert!(outs[1].text.contains("dough"));
    assert!(outs[2].text.contains("string"));
}

#[test]
fn typical_lengths_are_between_50_and_300_tokens() {
    let prompts = [
        FEYNMAN,
        BREAD,
        CODE,
        "",
        "Describe the river Nile and the desert around it.",
        "zxq unknown wörds only",
    ];
    for q in prompts {
        for (t, seed) in [(0.0, None), (0.8, Some(3)), (1.0, Some(11))] {
            let g = model().generate(&sampled(q, t, seed));
            let n = g.tokens.len();
            assert!((50..=256).contains(&n), "{q:?} at T={t}: {n} tokens");
        }
    }
}

#[test]
fn max_tokens_cuts_with_finish_length() {
    for max in [0, 1, 7, 20] {
        let g = model().generate(&GenRequest {
            max_tokens: max,
            ..ask(FEYNMAN)
        });
        assert_eq!(g.tokens.len(), max as usize);
        assert_eq!(g.finish_reason, FinishReason::Length);
    }
}

#[test]
fn stop_sequence_ends_the_text_before_it() {
    let full = model().generate(&ask(FEYNMAN));
    // A stop sequence starting inside a token: " physi" cuts " physicist" to nothing.
    let stop = " physi".to_string();
    let g = model().generate(&GenRequest {
        stop: vec!["never appears".into(), stop.clone()],
        ..ask(FEYNMAN)
    });
    let cut = full.text.find(&stop).unwrap_or(full.text.len());
    assert_eq!(g.text, full.text[..cut]);
    assert_eq!(g.finish_reason, FinishReason::Stop);
    assert_eq!(g.text, g.tokens.concat());
    assert_eq!(g.tokens.len(), g.logprobs.len());
}

#[test]
fn tokens_logprobs_and_text_agree() {
    let reqs = [
        ask(CODE),
        sampled(BREAD, 0.7, Some(5)),
        GenRequest {
            top_p: 0.9,
            top_k: 5,
            ..sampled(CHOICE, 1.3, Some(8))
        },
    ];
    for r in &reqs {
        let g = model().generate(r);
        assert_eq!(g.text, g.tokens.concat());
        assert_eq!(g.logprobs.len(), g.tokens.len());
        assert!(g.logprobs.iter().all(|l| l.is_finite() && *l <= 0.0));
        assert!(g.prompt_tokens > 0);
    }
}

#[test]
fn golden_greedy_output() {
    // Pins the model: any change to corpus, weights or decoding shows up here, and the same
    // bytes must come out on every machine.
    let g = model().generate(&ask(FEYNMAN));
    let head: String = g.tokens[..13].concat();
    assert_eq!(
        head,
        "Richard Feynman was an American physicist who was born in New York in"
    );
    let digest: String = Sha256::digest(g.text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(digest, GOLDEN_SHA256, "text: {}", g.text);
}

const GOLDEN_SHA256: &str = "61ce78341ae413a724f0457a0137335dca3cc692296f8ea9fe2f8492ddc96588";

#[test]
fn multiple_choice_ends_with_a_stable_answer_line() {
    let g = model().generate(&ask(CHOICE));
    assert!(g.text.ends_with("\nAnswer: B"), "{}", g.text);
    assert_eq!(g.finish_reason, FinishReason::Stop);
    // At a low temperature the prose varies but the answer holds.
    let runs: Vec<Generation> = (0..10u64)
        .map(|s| model().generate(&sampled(CHOICE, 0.5, Some(s))))
        .collect();
    let texts: BTreeSet<&str> = runs.iter().map(|g| g.text.as_str()).collect();
    assert!(texts.len() > 1);
    for g in &runs {
        assert!(g.text.ends_with("\nAnswer: B"), "{}", g.text);
    }
    // With room for little more than the answer, the line is still there.
    let short = model().generate(&GenRequest {
        max_tokens: 6,
        ..ask(CHOICE)
    });
    assert_eq!(short.tokens.len(), 6);
    assert!(short.text.ends_with("\nAnswer: B"));
}

#[test]
fn arithmetic_answer_uses_the_computed_value() {
    let g = model().generate(&ask("What is 12 + 30? Give the final answer."));
    assert!(g.text.ends_with("\nAnswer: 42"), "{}", g.text);
    let plain = model().generate(&ask(BREAD));
    assert!(!plain.text.contains("Answer:"));
}

/// Terms shaped like the model's: an n-gram log probability, a prompt boost and a penalty of
/// a few units, then DIM products of a hidden state with an embedding.
fn realistic_terms(seed: u32) -> Vec<f32> {
    let h = hash_vec(&format!("h{seed}"));
    let e = hash_vec(&format!("e{seed}"));
    let mut t = vec![-2.2 * 1.5, 0.8, -0.6];
    t.extend((0..DIM).map(|d| 3.5 * h[d] * e[d] * 8.0));
    t
}

#[test]
fn split_k_changes_the_last_bits_of_a_score() {
    let differing = (0..50u32)
        .filter(|&s| {
            let t = realistic_terms(s);
            let seq = reduce(&t, ReductionOrder::Sequential);
            let split = reduce(&t, ReductionOrder::SplitK(4));
            // Differ, but only in the last bits.
            assert!((seq - split).abs() <= 1e-5 * seq.abs().max(1.0));
            seq.to_bits() != split.to_bits()
        })
        .count();
    assert!(differing > 5, "only {differing} of 50 term vectors differ");
}

#[test]
fn generate_uses_the_sequential_order_and_split_k_can_flip_tokens() {
    let prompts = [FEYNMAN, BREAD, CODE, CHOICE, "Describe the river Nile."];
    let mut flipped = 0;
    for q in prompts {
        let r = ask(q);
        let seq = model().generate_with_order(&r, ReductionOrder::Sequential);
        assert_eq!(model().generate(&r), seq);
        for k in [2, 3, 4, 8] {
            let split = model().generate_with_order(&r, ReductionOrder::SplitK(k));
            if split.text != seq.text {
                flipped += 1;
                // Divergence after a shared prefix, not from the first token.
                assert_eq!(split.tokens[0], seq.tokens[0]);
            }
        }
    }
    assert!(flipped > 0, "no reduction order changed any greedy output");
}

#[test]
fn answers_come_from_what_the_corpus_says() {
    let cases = [
        ("What is the capital of Australia? End with a line 'Answer: <city>'.", "Canberra"),
        ("Which chemical element has the symbol Fe? End with a line 'Answer: <element>'.", "iron"),
        ("Who wrote the novel 'Pride and Prejudice'? End with a line 'Answer: <name>'.", "Jane Austen"),
        ("How many prime numbers are there below 20? End with a line 'Answer: <number>'.", "8"),
        ("Which of these is a mammal?\nA) Shark  B) Dolphin  C) Trout  D) Octopus\nEnd with a line 'Answer: <letter>'.", "B"),
        ("What is 17 * 4 + 12? End with a line 'Answer: <number>'.", "80"),
    ];
    for (q, want) in cases {
        let g = model().generate(&ask(q));
        assert!(
            g.text.ends_with(&format!("\nAnswer: {want}")),
            "{q}: {}",
            g.text
        );
        // Mostly the same answer at a moderate temperature.
        let right = (0..10u64)
            .filter(|&s| {
                let g = model().generate(&sampled(q, 0.7, Some(s)));
                g.text.ends_with(&format!("\nAnswer: {want}"))
            })
            .count();
        assert!(right >= 8, "{q}: {right} of 10");
    }
}

#[test]
fn sampled_texts_share_an_opening_then_vary() {
    let q = "Which planet in our solar system has the shortest year?\nA) Venus\nB) Mercury\nC) Mars\nD) Earth\nEnd with a line 'Answer: <letter>'.";
    let runs: Vec<Generation> = (0..10u64)
        .map(|s| model().generate(&sampled(q, 0.8, Some(s))))
        .collect();
    let texts: BTreeSet<&str> = runs.iter().map(|g| g.text.as_str()).collect();
    assert!(texts.len() >= 8, "{} distinct", texts.len());
    let same_first = runs
        .iter()
        .filter(|g| g.tokens[0] == runs[0].tokens[0])
        .count();
    assert!(same_first >= 8, "first token shared by {same_first} of 10");
    // On topic: the prose is about the planets.
    assert!(runs.iter().all(|g| g.text.contains("planet")));
}

#[test]
fn top_logprobs_list_the_alternatives_best_first() {
    let plain = model().generate(&ask(CHOICE));
    let g = model().generate(&GenRequest {
        top_logprobs: 3,
        ..ask(CHOICE)
    });
    // Asking for alternatives changes nothing else.
    assert_eq!((&g.text, &g.logprobs), (&plain.text, &plain.logprobs));
    assert!(plain.top_logprobs.is_empty());
    assert_eq!(g.top_logprobs.len(), g.tokens.len());
    for (i, top) in g.top_logprobs.iter().enumerate() {
        assert!(!top.is_empty() && top.len() <= 3, "token {i}: {top:?}");
        assert!(
            top.windows(2).all(|w| w[0].1 >= w[1].1),
            "token {i}: {top:?}"
        );
        // Greedy: the emitted token is the best alternative, with the same log probability.
        assert_eq!(top[0], (g.tokens[i].clone(), g.logprobs[i]), "token {i}");
    }
    // Prose steps offer real alternatives; the answer label lists the other options.
    assert!(g.top_logprobs.iter().filter(|t| t.len() == 3).count() > g.tokens.len() / 2);
    let label = g.top_logprobs.last().unwrap();
    assert!(label.iter().all(|(t, _)| t.starts_with(' ')), "{label:?}");
    assert!(label.len() > 1, "{label:?}");
}

#[test]
fn a_silent_update_changes_the_revision_and_some_texts() {
    let updated = LocalModel::updated();
    assert_eq!(updated.name(), model().name());
    assert_ne!(updated.revision(), model().revision());
    let prompts = [
        FEYNMAN,
        CHOICE,
        "Explain in one paragraph why floating-point addition is not associative.",
    ];
    let changed = prompts
        .iter()
        .filter(|p| updated.generate(&ask(p)).text != model().generate(&ask(p)).text)
        .count();
    assert!(
        changed >= 2,
        "only {changed} of {} texts changed",
        prompts.len()
    );
    // Still the same model of English: the update keeps the text fluent and on topic.
    let text = updated.generate(&ask(FEYNMAN)).text;
    assert!(text.contains("Feynman"), "{text}");
}

#[test]
fn drift_serves_the_update_after_n_requests() {
    let drift = Drift::new(Some(3));
    let revisions: Vec<&str> = (0..5).map(|_| drift.next().revision()).collect();
    assert_eq!(revisions[..3], [model().revision(); 3]);
    assert_eq!(revisions[3..], [LocalModel::updated().revision(); 2]);
    let never = Drift::new(None);
    assert!((0..5).all(|_| never.next().revision() == model().revision()));
}
