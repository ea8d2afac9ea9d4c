//! What the corpus says together: which words occur in the same sentence (and passage), so an
//! answer can be scored by its association with the question's content words.

use std::collections::{BTreeMap, BTreeSet};

use super::tokenize::{tokenize, word_key};

/// Co-occurrence in the same passage but not the same sentence counts this much.
const PASSAGE_WEIGHT: f32 = 0.25;
/// A stem in more than this share of passages carries no topic and is ignored.
const MAX_DF_SHARE: f32 = 0.25;
/// Free-text answers considered per question (the most associated ones).
pub const MAX_CANDIDATES: usize = 6;

/// Words that never carry the question's content.
const STOPWORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "an", "and", "answer", "are", "as", "at", "be", "by",
    "can", "did", "do", "does", "end", "for", "from", "give", "has", "have", "he", "her", "his",
    "how", "i", "in", "is", "it", "its", "line", "many", "me", "much", "of", "on", "one", "or",
    "our", "she", "so", "that", "the", "their", "them", "then", "there", "these", "they", "this",
    "to", "was", "we", "what", "when", "where", "which", "who", "why", "with", "you", "your",
];

/// What an answer is: a number, or a word or name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermKind {
    Number,
    Word,
}

/// A possible answer found in the corpus.
struct Term {
    label: String,
    kind: TermKind,
    stems: Vec<u32>,
    /// Sentences it occurs in, ascending.
    sentences: Vec<u32>,
}

struct Sentence {
    passage: u32,
    /// Stem ids, sorted and distinct.
    stems: Vec<u32>,
    terms: Vec<u32>,
}

pub struct Knowledge {
    stem_ids: BTreeMap<String, u32>,
    /// Passage idf of each stem, 0 for stems too common to mean anything.
    weight: Vec<f32>,
    stem_sentences: Vec<Vec<u32>>,
    sentences: Vec<Sentence>,
    /// Stems of each passage, sorted and distinct.
    passage_stems: Vec<Vec<u32>>,
    terms: Vec<Term>,
}

/// A crude suffix stripper, so "elements" meets "element" and "discovered" meets "discover".
pub fn stem(word: &str) -> String {
    let w = word.trim_end_matches("'s").trim_end_matches("’s");
    let n = w.chars().count();
    if n > 4 && w.ends_with("ies") {
        return format!("{}y", &w[..w.len() - 3]);
    }
    if n > 3 && w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        return w[..w.len() - 1].to_string();
    }
    if n > 5 && w.ends_with("ed") {
        return w[..w.len() - 2].to_string();
    }
    if n > 5 && w.ends_with("ing") {
        return w[..w.len() - 3].to_string();
    }
    w.to_string()
}

fn is_number(w: &str) -> bool {
    !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit())
}

fn capitalized(w: &str) -> bool {
    w.chars().next().is_some_and(char::is_uppercase)
}

impl Knowledge {
    pub fn build(passages: &[&str]) -> Knowledge {
        let mut k = Knowledge {
            stem_ids: BTreeMap::new(),
            weight: Vec::new(),
            stem_sentences: Vec::new(),
            sentences: Vec::new(),
            passage_stems: Vec::new(),
            terms: Vec::new(),
        };
        // Words written in lower case somewhere: a capitalized one of those at a sentence
        // start is the same word.
        let mut lower: BTreeSet<String> = BTreeSet::new();
        for p in passages {
            for t in tokenize(p) {
                let w = t.trim_start_matches(' ');
                if word_key(t).is_some() && !capitalized(w) {
                    lower.insert(w.to_string());
                }
            }
        }
        let mut term_ids: BTreeMap<String, u32> = BTreeMap::new();
        let mut df: Vec<u32> = Vec::new();
        for (pi, p) in passages.iter().enumerate() {
            let mut in_passage: BTreeSet<u32> = BTreeSet::new();
            for words in sentences_of(p) {
                let si = k.sentences.len() as u32;
                let mut stems: BTreeSet<u32> = BTreeSet::new();
                for w in &words {
                    let id = k.stem_id(&stem(&w.to_lowercase()));
                    stems.insert(id);
                }
                let mut terms = BTreeSet::new();
                for (key, label, kind) in terms_of(&words, &lower) {
                    let n = term_ids.len() as u32;
                    let id = *term_ids.entry(key.clone()).or_insert(n);
                    if id == n {
                        let stems = key.split(' ').map(|w| k.stem_id(&stem(w))).collect();
                        k.terms.push(Term {
                            label,
                            kind,
                            stems,
                            sentences: Vec::new(),
                        });
                    }
                    terms.insert(id);
                }
                for &s in &stems {
                    k.stem_sentences[s as usize].push(si);
                }
                for &t in &terms {
                    k.terms[t as usize].sentences.push(si);
                }
                in_passage.extend(stems.iter().copied());
                k.sentences.push(Sentence {
                    passage: pi as u32,
                    stems: stems.into_iter().collect(),
                    terms: terms.into_iter().collect(),
                });
            }
            df.resize(k.stem_ids.len(), 0);
            for &s in &in_passage {
                df[s as usize] += 1;
            }
            k.passage_stems.push(in_passage.into_iter().collect());
        }
        df.resize(k.stem_ids.len(), 0);
        let n = passages.len().max(1) as f32;
        k.weight = vec![0.0; k.stem_ids.len()];
        for (w, &id) in &k.stem_ids {
            let d = df[id as usize] as f32;
            if d > 0.0 && d <= MAX_DF_SHARE * n && !STOPWORDS.contains(&w.as_str()) {
                k.weight[id as usize] = libm::logf(1.0 + n / d);
            }
        }
        k
    }

    fn stem_id(&mut self, s: &str) -> u32 {
        let n = self.stem_ids.len() as u32;
        let id = *self.stem_ids.entry(s.to_string()).or_insert(n);
        if id == n {
            self.stem_sentences.push(Vec::new());
        }
        id
    }

    /// The question's content stems with their weights, sorted by stem id.
    pub fn question(&self, text: &str) -> Vec<(u32, f32)> {
        let mut q: BTreeMap<u32, f32> = BTreeMap::new();
        for t in tokenize(text) {
            let Some(w) = word_key(t) else { continue };
            if let Some(&id) = self.stem_ids.get(&stem(&w)) {
                if self.weight[id as usize] > 0.0 {
                    q.insert(id, self.weight[id as usize]);
                }
            }
        }
        q.into_iter().collect()
    }

    /// Stem ids of a text's content words, sorted.
    pub fn stems(&self, text: &str) -> Vec<u32> {
        self.question(text).into_iter().map(|(id, _)| id).collect()
    }

    /// How strongly the sentences (ascending) go with the question: per question stem, its
    /// weight times 1 + ln(sentences shared), or a small share if only a passage is shared.
    fn assoc_over(&self, sentences: &[u32], q: &[(u32, f32)]) -> f32 {
        let mut score = 0.0f32;
        for &(qs, w) in q {
            let mut shared = 0u32;
            let mut passage = false;
            let mut last_passage = u32::MAX;
            for &si in sentences {
                let s = &self.sentences[si as usize];
                if s.stems.binary_search(&qs).is_ok() {
                    shared += 1;
                }
                if s.passage != last_passage {
                    last_passage = s.passage;
                    passage |= self.passage_stems[s.passage as usize]
                        .binary_search(&qs)
                        .is_ok();
                }
            }
            if shared > 0 {
                score += w * (1.0 + libm::logf(shared as f32));
            } else if passage {
                score += w * PASSAGE_WEIGHT;
            }
        }
        score
    }

    /// Association of a free text (an option) with the question, through the sentences that
    /// hold any of its content words.
    pub fn text_assoc(&self, text: &str, q: &[(u32, f32)]) -> f32 {
        let mut sentences: BTreeSet<u32> = BTreeSet::new();
        // A word of the question itself says nothing about the answer.
        for s in self.stems(text) {
            if q.iter().any(|&(qs, _)| qs == s) {
                continue;
            }
            sentences.extend(self.stem_sentences[s as usize].iter().copied());
        }
        let sentences: Vec<u32> = sentences.into_iter().collect();
        self.assoc_over(&sentences, q)
    }

    /// The corpus terms of the given kind most associated with the question, best first, as
    /// (label, association); terms that repeat a question word are not answers.
    pub fn candidates(&self, q: &[(u32, f32)], kind: TermKind) -> Vec<(String, f32)> {
        let mut seen: BTreeSet<u32> = BTreeSet::new();
        for &(qs, _) in q {
            for &si in &self.stem_sentences[qs as usize] {
                seen.extend(self.sentences[si as usize].terms.iter().copied());
            }
        }
        let mut out: Vec<(String, f32)> = seen
            .into_iter()
            .map(|t| &self.terms[t as usize])
            .filter(|t| t.kind == kind)
            .filter(|t| !t.stems.iter().any(|s| q.iter().any(|&(qs, _)| qs == *s)))
            .map(|t| (t.label.clone(), self.assoc_over(&t.sentences, q)))
            .filter(|&(_, a)| a > 0.0)
            .collect();
        // Highest first; equal scores in term order, which is fixed by the corpus.
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out.truncate(MAX_CANDIDATES);
        out
    }
}

/// The words of each sentence (ended by . ? ! or a line break), in order.
fn sentences_of(text: &str) -> Vec<Vec<&str>> {
    let mut out = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    for t in tokenize(text) {
        let w = t.trim_start_matches(' ');
        if word_key(t).is_some() {
            cur.push(w);
        } else if (matches!(w, "." | "?" | "!") || w.contains('\n')) && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Possible answers in one sentence: numbers, runs of capitalized words (names), and single
/// lower-case words, as (key, label, kind).
fn terms_of(words: &[&str], lower: &BTreeSet<String>) -> Vec<(String, String, TermKind)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        if is_number(w) {
            out.push((w.to_string(), w.to_string(), TermKind::Number));
            i += 1;
        } else if capitalized(w) {
            let mut j = i;
            while j < words.len() && capitalized(words[j]) {
                j += 1;
            }
            let mut run: Vec<&str> = words[i..j].to_vec();
            // A sentence's first word is capitalized by position, not by being a name.
            if i == 0 && lower.contains(&run[0].to_lowercase()) {
                let first = run[0].to_lowercase();
                if run.len() == 1 || STOPWORDS.contains(&first.as_str()) {
                    if run.len() == 1 && !STOPWORDS.contains(&first.as_str()) {
                        out.push((first.clone(), first, TermKind::Word));
                    }
                    run.remove(0);
                }
            }
            if !run.is_empty() {
                let label = run.join(" ");
                out.push((label.to_lowercase(), label, TermKind::Word));
            }
            i = j;
        } else {
            if !STOPWORDS.contains(&w) && w.chars().count() > 2 {
                out.push((w.to_string(), w.to_string(), TermKind::Word));
            }
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &[&str] = &[
        "The capital of Australia is Canberra. Sydney is a city in Australia. Canberra is the capital city of Australia.",
        "Rice is cooked in water.",
        "Bread rises. Yeast makes gas.",
        "Light bends in water.",
    ];

    #[test]
    fn stems_meet_across_inflections() {
        assert_eq!(stem("elements"), "element");
        assert_eq!(stem("discovered"), "discover");
        assert_eq!(stem("primes"), "prime");
        assert_eq!(stem("class"), "class");
    }

    #[test]
    fn the_most_associated_term_comes_first() {
        let k = Knowledge::build(TEXT);
        let q = k.question("What is the capital of Australia?");
        let c = k.candidates(&q, TermKind::Word);
        assert_eq!(c.first().map(|c| c.0.as_str()), Some("Canberra"), "{c:?}");
        assert!(c.iter().any(|c| c.0 == "Sydney"));
        assert!(k.text_assoc("Canberra", &q) > k.text_assoc("Sydney", &q));
        assert_eq!(k.text_assoc("yeast", &q), 0.0);
    }
}
