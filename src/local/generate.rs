//! Token-by-token decoding: every candidate's score is a sum of f32 terms (n-gram log
//! probability, prompt boost, repetition penalty, and the DIM products of a hidden state with
//! the candidate's embedding), reduced by `reduce` in the requested order.
// Vector arithmetic over parallel arrays reads best with one index.
#![allow(clippy::needless_range_loop)]

use std::collections::HashSet;

use super::answer::{self, Candidate, Kind};
use super::knowledge::TermKind;
use super::params::{hash_vec, normalize, Params, DIM, OUTLIER_DIMS};
use super::reduce::{reduce, ReductionOrder};
use super::sample::{log_softmax_at, top_log_softmax, Sampler, CONFIDENCE};
use super::tokenize::{tokenize, word_key};
use super::{FinishReason, GenRequest, Generation};

const PROMPT_SCALE: f32 = 3.5;
const SYSTEM_WEIGHT: f32 = 0.3;
const UNKNOWN_WORD_WEIGHT: f32 = 0.6;
const CONTEXT_SCALE: f32 = 0.4;
/// Extra prompt weight at the first token, shrinking by EARLY_DECAY per token: the opening
/// follows from the question, so runs share their first words before they vary.
const EARLY_PROMPT: f32 = 6.0;
const EARLY_DECAY: f32 = 0.7;
const CONTEXT_DECAY: f32 = 0.8;
const PROMPT_BOOST: f32 = 1.2;
const TRIGRAM_WEIGHT: f32 = 0.9;
/// Weight of the n-gram log probability: keeps text fluent against the topic pull.
const NGRAM_WEIGHT: f32 = 1.5;
const REPEAT_TRIGRAM_PENALTY: f32 = 5.0;
const REPEAT_TOKEN_PENALTY: f32 = 0.6;
const REPEAT_COUNT_CAP: u16 = 4;
/// No end token before this many tokens.
const MIN_TOKENS: usize = 50;
/// The end token's score rises by END_SLOPE per token from END_BASE at END_START.
const END_START: usize = 60;
const END_BASE: f32 = -2.5;
const END_SLOPE: f32 = 0.06;
/// Weight of the transition vector added to the candidate's embedding.
const TRANSITION_WEIGHT: f32 = 1.0;
const ANSWER_RELEVANCE: f32 = 3.0;
/// Weight of an answer's association with the question in the corpus (best candidate = 1).
const ANSWER_KNOWLEDGE: f32 = 6.0;
/// Weight of the hidden state against an answer label's own direction: a per-label prior.
const ANSWER_LABEL: f32 = 0.5;
/// Hidden-state magnitude in the outlier dimensions (+ in the first, nearly − in the second):
/// the net effect is a small bias toward topical words, the gross terms are large.
const OUTLIER_ACTIVATION: f32 = 16.0;
const OUTLIER_RESIDUAL: f32 = 1.0 / 64.0;
/// Terms before the DIM dot-product terms: n-gram, prompt boost, repetition penalty.
const FIXED_TERMS: usize = 3;
/// Number of terms summed for each candidate's score.
pub const TERMS: usize = FIXED_TERMS + DIM;

/// The decoding constants, for the model revision.
pub fn constants_bytes() -> Vec<u8> {
    let c = [
        PROMPT_SCALE,
        SYSTEM_WEIGHT,
        UNKNOWN_WORD_WEIGHT,
        CONTEXT_SCALE,
        CONTEXT_DECAY,
        EARLY_PROMPT,
        EARLY_DECAY,
        PROMPT_BOOST,
        TRIGRAM_WEIGHT,
        NGRAM_WEIGHT,
        REPEAT_TRIGRAM_PENALTY,
        REPEAT_TOKEN_PENALTY,
        f32::from(REPEAT_COUNT_CAP),
        MIN_TOKENS as f32,
        END_START as f32,
        END_BASE,
        END_SLOPE,
        TRANSITION_WEIGHT,
        ANSWER_RELEVANCE,
        ANSWER_KNOWLEDGE,
        ANSWER_LABEL,
        CONFIDENCE,
        OUTLIER_ACTIVATION,
        OUTLIER_RESIDUAL,
    ];
    c.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A text as a direction: known words by their topic embedding weighted by idf, unknown words
/// by a hash vector, so any prompt steers somewhere.
fn text_vector(p: &Params, text: &str) -> [f32; DIM] {
    let mut v = [0.0f32; DIM];
    for tok in tokenize(text) {
        let Some(w) = word_key(tok) else { continue };
        match p.words.get(&w) {
            Some(info) => {
                for d in 0..DIM {
                    v[d] += info.idf * info.vec[d];
                }
            }
            None => {
                let h = hash_vec(&format!("word:{w}"));
                for d in 0..DIM {
                    v[d] += UNKNOWN_WORD_WEIGHT * h[d];
                }
            }
        }
    }
    normalize(&mut v);
    v
}

fn set_outlier_activations(h: &mut [f32; DIM]) {
    h[OUTLIER_DIMS[0]] = OUTLIER_ACTIVATION;
    h[OUTLIER_DIMS[1]] = -OUTLIER_ACTIVATION * (1.0 - OUTLIER_RESIDUAL);
}

/// Per-request prompt state: the prompt direction and a score boost per token id.
struct Prompt {
    q: [f32; DIM],
    boost: Vec<f32>,
}

fn read_prompt(p: &Params, req: &GenRequest) -> Prompt {
    let mut q = text_vector(p, &req.user);
    if let Some(system) = &req.system {
        let s = text_vector(p, system);
        for d in 0..DIM {
            q[d] += SYSTEM_WEIGHT * s[d];
        }
        normalize(&mut q);
    }
    let max_idf = p.words.values().fold(0.0f32, |m, w| m.max(w.idf));
    let mut boost = vec![0.0f32; p.vocab.len() + 1];
    for tok in tokenize(&req.user) {
        let Some(info) = word_key(tok).and_then(|w| p.words.get(&w)) else {
            continue;
        };
        // Rare words steer more than "the".
        for &id in &info.tokens {
            boost[id as usize] = PROMPT_BOOST * info.idf / max_idf;
        }
    }
    Prompt { q, boost }
}

/// Everything that changes from one decoding step to the next.
struct Decoder<'a> {
    p: &'a Params,
    prompt: Prompt,
    order: ReductionOrder,
    h: [f32; DIM],
    /// Current weight of the prompt direction in `h`.
    prompt_weight: f32,
    ctx: [f32; DIM],
    doc: [f32; DIM],
    counts: Vec<u16>,
    seen: HashSet<u64>,
    prev2: u32,
    prev1: u32,
    /// Scratch: the candidates, then their scores.
    cands: Vec<Cand>,
    scores: Vec<f32>,
}

/// A candidate next token: its id, n-gram term and transition vector (`NO_TRANSITION` for
/// the end token).
#[derive(Clone, Copy)]
struct Cand {
    id: u32,
    ngram: f32,
    vec: u32,
}

const NO_TRANSITION: u32 = u32::MAX;

fn trigram_key(a: u32, b: u32, c: u32) -> u64 {
    (u64::from(a) << 42) | (u64::from(b) << 21) | u64::from(c)
}

impl<'a> Decoder<'a> {
    fn new(p: &'a Params, prompt: Prompt, order: ReductionOrder) -> Self {
        let mut h = [0.0f32; DIM];
        let prompt_weight = PROMPT_SCALE + EARLY_PROMPT;
        for d in 0..DIM {
            h[d] = prompt_weight * prompt.q[d];
        }
        set_outlier_activations(&mut h);
        Decoder {
            p,
            prompt,
            order,
            h,
            prompt_weight,
            ctx: [0.0; DIM],
            doc: [0.0; DIM],
            counts: vec![0; p.vocab.len()],
            seen: HashSet::new(),
            prev2: p.bos(),
            prev1: p.bos(),
            cands: Vec::new(),
            scores: Vec::new(),
        }
    }

    /// Successors of the last two tokens (trigram) merged with the most frequent successors of
    /// the last token (bigram), in id order, each with its interpolated log probability.
    fn collect_candidates(&mut self) {
        let p = self.p;
        self.cands.clear();
        let mut prev1 = self.prev1;
        if p.bigram[prev1 as usize].0.is_empty() {
            // A token seen only at a passage's end: continue as after a full stop.
            prev1 = p.index.get(".").copied().unwrap_or(p.bos());
        }
        let (bi_all, bi_total) = &p.bigram[prev1 as usize];
        let bi_top = &p.bigram_top[prev1 as usize];
        let tri = p.trigram.get(&(self.prev2, prev1));
        let empty = Vec::new();
        let (tri_succ, tri_total) = tri.map_or((&empty, 0), |(s, t)| (s, *t));
        let (w3, w2) = if tri_total > 0 {
            (TRIGRAM_WEIGHT, 1.0 - TRIGRAM_WEIGHT)
        } else {
            (0.0, 1.0)
        };
        let (mut i, mut j) = (0, 0);
        while i < tri_succ.len() || j < bi_top.len() {
            let a = tri_succ.get(i).map_or(u32::MAX, |x| x.id);
            let b = bi_top.get(j).map_or(u32::MAX, |x| x.id);
            let id = a.min(b);
            let c3 = if a == id { tri_succ[i].count } else { 0 };
            let c2 = if b == id {
                bi_top[j].count
            } else {
                bi_all
                    .binary_search_by_key(&id, |x| x.id)
                    .map_or(0, |k| bi_all[k].count)
            };
            // The most specific context this continuation was seen in.
            let vec = if a == id {
                tri_succ[i].vec
            } else {
                bi_top[j].vec
            };
            if a == id {
                i += 1;
            }
            if b == id {
                j += 1;
            }
            let mut prob = w2 * c2 as f32 / (*bi_total).max(1) as f32;
            if tri_total > 0 {
                prob += w3 * c3 as f32 / tri_total as f32;
            }
            self.cands.push(Cand {
                id,
                ngram: NGRAM_WEIGHT * libm::logf(prob),
                vec,
            });
        }
    }

    /// Scores every candidate (and the end token when allowed) into `self.scores`.
    fn score(&mut self, step: usize) {
        let p = self.p;
        self.scores.clear();
        let mut terms = [0.0f32; TERMS];
        for &Cand { id, ngram, vec } in &self.cands {
            let i = id as usize;
            let repeated = self.seen.contains(&trigram_key(self.prev2, self.prev1, id));
            // Squared specificity: repeating "the" is normal, repeating "yeast" five times is not.
            let spec = p.specificity[i];
            let uses = f32::from(self.counts[i].min(REPEAT_COUNT_CAP));
            let mut penalty = REPEAT_TOKEN_PENALTY * uses * spec * spec;
            if repeated {
                penalty += REPEAT_TRIGRAM_PENALTY;
            }
            terms[0] = ngram;
            terms[1] = self.prompt.boost[i];
            terms[2] = -penalty;
            let row = p.row(id);
            let tv = p.transition(vec);
            for d in 0..DIM {
                terms[FIXED_TERMS + d] = self.h[d] * (row[d] + TRANSITION_WEIGHT * tv[d]);
            }
            self.scores.push(reduce(&terms, self.order));
        }
        let at_sentence_end = matches!(
            p.vocab.get(self.prev1 as usize).map(String::as_str),
            Some("." | "!" | "?")
        );
        if step >= MIN_TOKENS && at_sentence_end {
            terms[0] = END_BASE + END_SLOPE * (step as f32 - END_START as f32);
            terms[1] = 0.0;
            terms[2] = 0.0;
            for d in 0..DIM {
                terms[FIXED_TERMS + d] = self.h[d] * p.end_embed[d];
            }
            self.cands.push(Cand {
                id: p.end(),
                ngram: 0.0,
                vec: NO_TRANSITION,
            });
            self.scores.push(reduce(&terms, self.order));
        }
    }

    fn advance(&mut self, id: u32) {
        let row = self.p.row(id);
        self.prompt_weight = PROMPT_SCALE + EARLY_DECAY * (self.prompt_weight - PROMPT_SCALE);
        for d in 0..DIM {
            self.ctx[d] = CONTEXT_DECAY * self.ctx[d] + row[d];
            self.h[d] = self.prompt_weight * self.prompt.q[d] + CONTEXT_SCALE * self.ctx[d];
            self.doc[d] += row[d];
        }
        set_outlier_activations(&mut self.h);
        self.counts[id as usize] = self.counts[id as usize].saturating_add(1);
        self.seen.insert(trigram_key(self.prev2, self.prev1, id));
        (self.prev2, self.prev1) = (self.prev1, id);
    }

    /// Scores of the answer candidates: prior bonus, what the corpus says goes with the
    /// question, how well the option matches what was written (and asked), and the hidden
    /// state against the label's direction.
    fn answer_scores(&self, cands: &[Candidate], knowledge: &[f32]) -> Vec<f32> {
        let mut topic = self.doc;
        // The outlier dimensions carry no topic.
        for d in OUTLIER_DIMS {
            topic[d] = 0.0;
        }
        normalize(&mut topic);
        for d in 0..DIM {
            topic[d] += self.prompt.q[d];
        }
        let mut terms = [0.0f32; 3 + DIM];
        cands
            .iter()
            .zip(knowledge)
            .map(|(c, &k)| {
                // A bare value is judged by its own spelling, like any corpus answer.
                let text = if c.text.is_empty() { &c.label } else { &c.text };
                let opt = text_vector(self.p, text);
                let mut rel = 0.0f32;
                {
                    for d in 0..DIM {
                        rel += topic[d] * opt[d];
                    }
                }
                terms[0] = c.bonus;
                terms[1] = ANSWER_KNOWLEDGE * k;
                terms[2] = ANSWER_RELEVANCE * rel;
                let mut label = hash_vec(&format!("answer:{}", c.label));
                for d in OUTLIER_DIMS {
                    label[d] = 0.0;
                }
                for d in 0..DIM {
                    terms[3 + d] = ANSWER_LABEL * self.h[d] * label[d];
                }
                reduce(&terms, self.order)
            })
            .collect()
    }
}

/// The answer candidates for a prompt that asks for an answer, each with its association
/// with the question (0..=1, the best one 1): the prompt's own candidates, then for numbers
/// and free text the corpus terms most associated with the question.
fn answer_candidates(p: &Params, user: &str) -> Option<(Vec<Candidate>, Vec<f32>)> {
    let asked = answer::detect(user)?;
    let k = &p.knowledge;
    let q = k.question(&asked.question);
    let mut cands = asked.candidates;
    let mut assoc: Vec<f32> = cands
        .iter()
        .map(|c| {
            let text = if c.text.is_empty() { &c.label } else { &c.text };
            k.text_assoc(text, &q)
        })
        .collect();
    let kind = match asked.kind {
        Kind::Choice => None,
        Kind::Number => Some(TermKind::Number),
        Kind::Free => Some(TermKind::Word),
    };
    if let Some(kind) = kind {
        for (label, a) in k.candidates(&q, kind) {
            if !cands.iter().any(|c| c.label.eq_ignore_ascii_case(&label)) {
                cands.push(Candidate {
                    text: label.clone(),
                    label,
                    bonus: 0.0,
                });
                assoc.push(a);
            }
        }
    }
    if cands.is_empty() {
        return None;
    }
    let max = assoc.iter().fold(0.0f32, |m, &a| m.max(a));
    if max > 0.0 {
        for a in &mut assoc {
            *a /= max;
        }
    }
    Some((cands, assoc))
}

/// Generates one completion with the given score reduction order.
pub fn generate(p: &Params, req: &GenRequest, order: ReductionOrder) -> Generation {
    let mut stepper = Stepper::new(p, req.clone());
    while !stepper.step(order) {}
    stepper.finish()
}

/// One generation, one token at a time, so a batched decoder can choose each step's
/// reduction order from the batch it runs in.
pub struct Stepper<'a> {
    p: &'a Params,
    req: GenRequest,
    prompt_tokens: u32,
    answers: Option<(Vec<Candidate>, Vec<f32>)>,
    prose_budget: usize,
    sampler: Sampler,
    dec: Decoder<'a>,
    tokens: Vec<String>,
    logprobs: Vec<f32>,
    /// Filled only when the request asks for top logprobs.
    top: Vec<Vec<(String, f32)>>,
    finish: FinishReason,
    step: usize,
    done: bool,
}

impl<'a> Stepper<'a> {
    pub fn new(p: &'a Params, req: GenRequest) -> Self {
        let prompt_tokens = (tokenize(&req.user).len()
            + req.system.as_deref().map_or(0, |s| tokenize(s).len()))
            as u32;
        let max_tokens = req.max_tokens as usize;
        let answers = answer_candidates(p, &req.user);
        let prose_budget = if answers.is_some() {
            max_tokens.saturating_sub(4)
        } else {
            max_tokens
        };
        let sampler = Sampler::new(&req);
        let dec = Decoder::new(p, read_prompt(p, &req), ReductionOrder::Sequential);
        Stepper {
            p,
            req,
            prompt_tokens,
            answers,
            prose_budget,
            sampler,
            dec,
            tokens: Vec::new(),
            logprobs: Vec::new(),
            top: Vec::new(),
            finish: FinishReason::Length,
            step: 0,
            done: false,
        }
    }

    /// Tokens of the prompt (what a serving engine pre-fills when the request joins a batch).
    pub fn prompt_tokens(&self) -> u32 {
        self.prompt_tokens
    }

    /// Tokens in this sequence's context so far: its prompt and what it has generated.
    pub fn context_tokens(&self) -> usize {
        self.prompt_tokens as usize + self.tokens.len()
    }

    /// Decodes one prose token with `order`; true once the prose is over.
    pub fn step(&mut self, order: ReductionOrder) -> bool {
        if self.done || self.step >= self.prose_budget {
            self.done = true;
            return true;
        }
        let p = self.p;
        self.dec.order = order;
        self.dec.collect_candidates();
        self.dec.score(self.step);
        let k = self.sampler.choose(&self.dec.scores);
        let id = self.dec.cands[k].id;
        if id == p.end() {
            self.finish = FinishReason::Stop;
            self.done = true;
            return true;
        }
        self.tokens.push(p.vocab[id as usize].clone());
        self.logprobs.push(log_softmax_at(&self.dec.scores, k));
        if self.req.top_logprobs > 0 {
            // One more than asked, so the list stays full when the end token is among them.
            let n = self.req.top_logprobs as usize + 1;
            let cands = &self.dec.cands;
            let top = top_log_softmax(&self.dec.scores, n)
                .into_iter()
                .filter(|&(i, _)| cands[i].id != p.end())
                .take(self.req.top_logprobs as usize)
                .map(|(i, lp)| (p.vocab[cands[i].id as usize].clone(), lp))
                .collect();
            self.top.push(top);
        }
        self.dec.advance(id);
        self.step += 1;
        self.done = self.step >= self.prose_budget;
        self.done
    }

    /// The answer line (when the prompt asks for one), stop sequences, and the result.
    pub fn finish(mut self) -> Generation {
        let max_tokens = self.req.max_tokens as usize;
        if let Some((cands, knowledge)) = self.answers.take() {
            let scores = self.dec.answer_scores(&cands, &knowledge);
            let k = self.sampler.choose(&scores);
            const LABEL_AT: usize = 3;
            let line = [
                ("\n".to_string(), 0.0),
                ("Answer".to_string(), 0.0),
                (":".to_string(), 0.0),
                (format!(" {}", cands[k].label), log_softmax_at(&scores, k)),
            ];
            let room = max_tokens.saturating_sub(self.tokens.len());
            if room < line.len() {
                self.finish = FinishReason::Length;
            }
            let asked = self.req.top_logprobs as usize;
            for (n, (t, lp)) in line.into_iter().take(room).enumerate() {
                if asked > 0 {
                    // The fixed words of the line have no alternative; the label has the
                    // other candidates.
                    let top = if n < LABEL_AT {
                        vec![(t.clone(), 0.0)]
                    } else {
                        top_log_softmax(&scores, asked)
                            .into_iter()
                            .map(|(i, lp)| (format!(" {}", cands[i].label), lp))
                            .collect()
                    };
                    self.top.push(top);
                }
                self.tokens.push(t);
                self.logprobs.push(lp);
            }
        }
        let finish =
            apply_stop(&mut self.tokens, &mut self.logprobs, &self.req.stop).unwrap_or(self.finish);
        self.top.truncate(self.tokens.len());
        Generation {
            text: self.tokens.concat(),
            tokens: self.tokens,
            logprobs: self.logprobs,
            finish_reason: finish,
            prompt_tokens: self.prompt_tokens,
            top_logprobs: self.top,
        }
    }
}

/// Cuts the output before the earliest stop sequence; the token it starts in is shortened so
/// the text stays the concatenation of the tokens. Returns `Stop` when something matched.
fn apply_stop(
    tokens: &mut Vec<String>,
    logprobs: &mut Vec<f32>,
    stop: &[String],
) -> Option<FinishReason> {
    let text = tokens.concat();
    let cut = stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()?;
    let mut start = 0;
    let mut keep = 0;
    for t in tokens.iter_mut() {
        if start + t.len() <= cut {
            start += t.len();
            keep += 1;
            continue;
        }
        if cut > start {
            t.truncate(cut - start);
            keep += 1;
        }
        break;
    }
    tokens.truncate(keep);
    logprobs.truncate(keep);
    Some(FinishReason::Stop)
}
