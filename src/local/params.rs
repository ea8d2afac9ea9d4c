//! The model's parameters, derived deterministically from the embedded corpus: vocabulary,
//! n-gram counts, and embeddings built from per-topic and per-passage hash vectors.
// Vector arithmetic over parallel arrays reads best with one index.
#![allow(clippy::needless_range_loop)]

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::knowledge::Knowledge;
use super::tokenize::{tokenize, word_key};

/// The corpus the model is built from: original prose, one topic per `# name` header,
/// passages separated by blank lines.
pub const CORPUS: &str = include_str!("corpus.txt");

/// Embedding width: the number of dot-product terms in every score.
pub const DIM: usize = 64;
/// Scale of the per-token hash component that separates tokens with identical statistics;
/// small enough that such tokens are near-tied in the last bits of their scores.
const TOKEN_NOISE: f32 = 2.0e-6;
/// How much a passage's own direction differs from its topic's.
const PASSAGE_SPREAD: f32 = 1.2;
/// Dimensions where the hidden state carries large opposite activations (as real models'
/// "massive activations" do): their two products nearly cancel, so every score passes
/// through a large intermediate sum and its last bits depend on the summation order.
pub const OUTLIER_DIMS: [usize; 2] = [0, DIM - 1];
/// An embedding's value in both outlier dimensions is this plus its topic norm, so tokens
/// with equal statistics stay exactly equal there.
const OUTLIER_BASE: f32 = 0.25;
/// Size of the change a simulated silent update makes to every token embedding: small enough
/// that the text stays fluent and on topic, large enough to move some choices.
const UPDATE_SCALE: f32 = 0.2;
/// Bigram successors kept as candidates per step (the most frequent ones).
const MAX_BIGRAM_CANDIDATES: usize = 48;

/// One observed continuation of a context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Succ {
    pub id: u32,
    pub count: u32,
    /// Index of its transition vector: where in the corpus this continuation occurs.
    pub vec: u32,
}

/// Successors, sorted by token id.
pub type Successors = Vec<Succ>;

pub struct WordInfo {
    /// Count-weighted mixture of the directions of the passages the word occurs in.
    pub vec: Vec<f32>,
    /// ln(1 + passages / passages containing the word).
    pub idf: f32,
    /// Token ids spelling this word (with or without a leading space, any case).
    pub tokens: Vec<u32>,
}

pub struct Params {
    /// Token strings by id; ids `0..vocab.len()` are real tokens.
    pub vocab: Vec<String>,
    /// Output embedding of each token, row-major `vocab.len() × DIM`.
    pub embed: Vec<f32>,
    /// Embedding of the end token.
    pub end_embed: [f32; DIM],
    /// Norm of each token's topic component: near 1 for topic words, small for function words.
    pub specificity: Vec<f32>,
    /// Word key (lowercase word) → what the model knows about it, for reading prompts.
    pub words: BTreeMap<String, WordInfo>,
    /// Per context token (including `bos()`): all successors with counts, and their total.
    pub bigram: Vec<(Successors, u32)>,
    /// The most frequent bigram successors per context token, sorted by id.
    pub bigram_top: Vec<Successors>,
    /// (previous-previous, previous) → successors with counts, and their total.
    pub trigram: BTreeMap<(u32, u32), (Successors, u32)>,
    /// Transition vectors, row-major: the passage mixture of each n-gram's occurrences, so a
    /// continuation is favoured when it continues text on the prompt's topic.
    pub transitions: Vec<f32>,
    /// Lookup from token string to id.
    pub index: BTreeMap<String, u32>,
    /// Which words the corpus puts together, for choosing answers.
    pub knowledge: Knowledge,
}

impl Params {
    /// Id of the end token as a candidate.
    pub fn end(&self) -> u32 {
        self.vocab.len() as u32
    }
    /// Id of the start-of-text context (never a candidate).
    pub fn bos(&self) -> u32 {
        self.vocab.len() as u32 + 1
    }
    pub fn transition(&self, vec: u32) -> &[f32] {
        let i = vec as usize * DIM;
        &self.transitions[i..i + DIM]
    }
    pub fn row(&self, id: u32) -> &[f32] {
        let i = id as usize * DIM;
        &self.embed[i..i + DIM]
    }

    pub fn build() -> Params {
        Params::build_update(0)
    }

    /// The parameters after `update` simulated silent updates (0: as built): every token
    /// embedding moved by a small update-specific vector, as a retrained checkpoint would be.
    pub fn build_update(update: u32) -> Params {
        let passages = split_passages(CORPUS);
        let mut index: BTreeMap<String, u32> = BTreeMap::new();
        for p in &passages {
            for t in tokenize(p.text) {
                index.entry(t.to_string()).or_insert(0);
            }
        }
        // Ids in sorted string order, so the vocabulary does not depend on corpus order.
        let vocab: Vec<String> = index.keys().cloned().collect();
        for (i, v) in index.values_mut().enumerate() {
            *v = i as u32;
        }
        let n = vocab.len();
        let bos = n as u32 + 1;

        // Passage directions: topic direction plus a passage-specific part.
        let passage_vecs: Vec<[f32; DIM]> = passages
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let t = hash_vec(&format!("topic:{}", p.topic));
                let own = hash_vec(&format!("passage:{i}"));
                let mut v = [0.0f32; DIM];
                for d in 0..DIM {
                    v[d] = t[d] + PASSAGE_SPREAD * own[d];
                }
                normalize(&mut v);
                v
            })
            .collect();

        // Count tokens and words per passage, and n-grams over the whole corpus.
        let mut tok_counts: Vec<BTreeMap<usize, u32>> = vec![BTreeMap::new(); n];
        let mut word_counts: BTreeMap<String, BTreeMap<usize, u32>> = BTreeMap::new();
        let mut bi: Vec<BTreeMap<u32, PerPassage>> = vec![BTreeMap::new(); n + 2];
        let mut tri: BTreeMap<(u32, u32), BTreeMap<u32, PerPassage>> = BTreeMap::new();
        for (pi, p) in passages.iter().enumerate() {
            let (mut a, mut b) = (bos, bos);
            for t in tokenize(p.text) {
                let id = index[t];
                *tok_counts[id as usize].entry(pi).or_insert(0) += 1;
                if let Some(w) = word_key(t) {
                    *word_counts.entry(w).or_default().entry(pi).or_insert(0) += 1;
                }
                *bi[b as usize].entry(id).or_default().entry(pi).or_insert(0) += 1;
                *tri.entry((a, b))
                    .or_default()
                    .entry(id)
                    .or_default()
                    .entry(pi)
                    .or_insert(0) += 1;
                (a, b) = (b, id);
            }
        }

        let mut embed = Vec::with_capacity(n * DIM);
        let mut specificity = Vec::with_capacity(n);
        for (id, tok) in vocab.iter().enumerate() {
            let topic = mixture(&tok_counts[id], &passage_vecs);
            specificity.push(norm(&topic));
            let noise = hash_vec(&format!("token:{tok}"));
            let change = if update == 0 {
                [0.0; DIM]
            } else {
                hash_vec(&format!("update:{update}:token:{tok}"))
            };
            let start = embed.len();
            for d in 0..DIM {
                embed.push(topic[d] + TOKEN_NOISE * noise[d] + UPDATE_SCALE * change[d]);
            }
            set_outliers(&mut embed[start..], OUTLIER_BASE + norm(&topic));
        }
        let mut end_embed = hash_vec("token:<end>");
        for x in &mut end_embed {
            *x *= 0.1;
        }
        set_outliers(&mut end_embed, OUTLIER_BASE);

        let n_passages = passages.len() as f32;
        let mut words: BTreeMap<String, WordInfo> = word_counts
            .into_iter()
            .map(|(w, per)| {
                let idf = libm::logf(1.0 + n_passages / per.len() as f32);
                let vec = mixture(&per, &passage_vecs).to_vec();
                (
                    w,
                    WordInfo {
                        vec,
                        idf,
                        tokens: Vec::new(),
                    },
                )
            })
            .collect();
        for (id, tok) in vocab.iter().enumerate() {
            if let Some(info) = word_key(tok).and_then(|w| words.get_mut(&w)) {
                info.tokens.push(id as u32);
            }
        }

        let mut transitions = Vec::new();
        let bigram: Vec<(Successors, u32)> = bi
            .into_iter()
            .map(|m| successors(m, &passage_vecs, &mut transitions))
            .collect();
        let bigram_top = bigram
            .iter()
            .map(|(s, _)| {
                let mut top = s.clone();
                // Most frequent first, lower id first among equals; then back to id order.
                top.sort_by(|x, y| y.count.cmp(&x.count).then(x.id.cmp(&y.id)));
                top.truncate(MAX_BIGRAM_CANDIDATES);
                top.sort_unstable();
                top
            })
            .collect();
        let trigram = tri
            .into_iter()
            .map(|(k, m)| (k, successors(m, &passage_vecs, &mut transitions)))
            .collect();

        Params {
            vocab,
            embed,
            end_embed,
            specificity,
            words,
            bigram,
            bigram_top,
            trigram,
            transitions,
            index,
            knowledge: Knowledge::build(&passages.iter().map(|p| p.text).collect::<Vec<_>>()),
        }
    }

    /// `sha256:<hex>` over the corpus and every parameter, little-endian, in a fixed order.
    pub fn revision(&self, name: &str) -> String {
        let mut h = Sha256::new();
        h.update(name.as_bytes());
        h.update([0]);
        h.update(CORPUS.as_bytes());
        for c in [TOKEN_NOISE, PASSAGE_SPREAD, MAX_BIGRAM_CANDIDATES as f32] {
            h.update(c.to_le_bytes());
        }
        h.update(super::generate::constants_bytes());
        for x in self
            .embed
            .iter()
            .chain(self.end_embed.iter())
            .chain(self.transitions.iter())
        {
            h.update(x.to_le_bytes());
        }
        for (w, info) in &self.words {
            h.update(w.as_bytes());
            h.update([0]);
            for x in info.vec.iter().chain(std::iter::once(&info.idf)) {
                h.update(x.to_le_bytes());
            }
        }
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }
}

struct Passage<'a> {
    topic: &'a str,
    text: &'a str,
}

/// Splits the corpus into passages, each tagged with the topic header above it.
fn split_passages(corpus: &str) -> Vec<Passage<'_>> {
    let mut out = Vec::new();
    let mut topic = "general";
    for block in corpus.split("\n\n") {
        let mut text = block.trim_matches('\n');
        if let Some(rest) = text.strip_prefix("# ") {
            let (head, body) = rest.split_once('\n').unwrap_or((rest, ""));
            topic = head.trim();
            text = body;
        }
        if !text.trim().is_empty() {
            out.push(Passage { topic, text });
        }
    }
    out
}

/// Occurrence counts per passage index.
type PerPassage = BTreeMap<usize, u32>;

/// Successor list and total count; appends each successor's transition vector.
fn successors(
    m: BTreeMap<u32, PerPassage>,
    passage_vecs: &[[f32; DIM]],
    transitions: &mut Vec<f32>,
) -> (Successors, u32) {
    let mut total = 0;
    let mut out = Vec::with_capacity(m.len());
    for (id, per) in m {
        let count: u32 = per.values().sum();
        total += count;
        let vec = (transitions.len() / DIM) as u32;
        let mut v = mixture(&per, passage_vecs);
        // Transitions carry topic only; the outlier dimensions stay the embedding's.
        set_outliers(&mut v, 0.0);
        transitions.extend_from_slice(&v);
        out.push(Succ { id, count, vec });
    }
    (out, total)
}

fn set_outliers(row: &mut [f32], value: f32) {
    for d in OUTLIER_DIMS {
        row[d] = value;
    }
}

/// Count-weighted average of passage directions.
fn mixture(per_passage: &BTreeMap<usize, u32>, passage_vecs: &[[f32; DIM]]) -> [f32; DIM] {
    let total: u32 = per_passage.values().sum();
    let mut v = [0.0f32; DIM];
    if total == 0 {
        return v;
    }
    for (&p, &c) in per_passage {
        let w = c as f32 / total as f32;
        for d in 0..DIM {
            v[d] += w * passage_vecs[p][d];
        }
    }
    v
}

pub fn norm(v: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for x in v {
        s += x * x;
    }
    libm::sqrtf(s)
}

pub fn normalize(v: &mut [f32]) {
    let n = norm(v);
    if n > 0.0 {
        for x in v {
            *x /= n;
        }
    }
}

/// FNV-1a, 64-bit: a stable hash of a string, the same on every machine.
pub fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// splitmix64 step: a portable stream of well-mixed 64-bit values.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A unit vector derived only from `s`.
pub fn hash_vec(s: &str) -> [f32; DIM] {
    let mut state = fnv1a(s);
    let mut v = [0.0f32; DIM];
    for x in &mut v {
        // 24 random bits → [-1, 1), exactly representable in f32.
        let bits = (splitmix64(&mut state) >> 40) as f32;
        *x = bits / 8_388_608.0 - 1.0;
    }
    normalize(&mut v);
    v
}
