//! The token-level diff view's state: which call is compared with which, the diff of their
//! distinct outputs (computed once per pair, cached here), the current difference and the scroll.
//!
//! The diff is shown as one stream of tokens: equal ones, then at each difference the base's
//! deleted tokens followed by the compared call's inserted ones. Positions in that stream are
//! "shown positions".

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use similar::{Algorithm, DiffTag};

use crate::analysis::{Cluster, ItemSnapshot, TokenList};

use super::keys::Command;

/// What the selected call is compared against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Base {
    #[default]
    Modal,
    /// A call index of the item shown.
    Call(u32),
}

/// Past this, the diff algorithm settles for a coarser result: two long, wholly different
/// outputs must not freeze the keyboard.
const DIFF_DEADLINE: Duration = Duration::from_millis(50);

/// Diffs kept, most recently shown last: stepping through calls flips between a few pairs.
const CACHED_PAIRS: usize = 8;

/// Rows of context kept above a difference scrolled into view.
pub const CONTEXT_ROWS: i32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Equal,
    /// In the base, not in the compared call.
    Delete,
    /// In the compared call, not in the base.
    Insert,
}

/// A run of tokens with one op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub op: Op,
    /// Token range in the base (Delete) or in the compared call (Equal, Insert).
    pub tokens: Range<usize>,
    /// Shown position of its first token.
    pub at: usize,
    /// The difference it belongs to (None for Equal).
    pub hunk: Option<usize>,
}

impl Segment {
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// One difference: deleted and/or inserted tokens between two equal runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// Indices of its segments (one for a pure insertion or deletion, two for a replacement).
    pub segments: Range<usize>,
    /// Shown position of its first token.
    pub at: usize,
    /// Index of the compared call's token where it starts.
    pub call_token: usize,
}

/// The diff of two distinct outputs, with both token lists (cheap `Arc` clones) so the view
/// needs nothing else to draw it.
#[derive(Debug, Clone)]
pub struct TokenDiff {
    pub base_id: u32,
    pub call_id: u32,
    base_text: Arc<str>,
    call_text: Arc<str>,
    pub base: TokenList,
    pub call: TokenList,
    pub segments: Vec<Segment>,
    pub hunks: Vec<Hunk>,
    /// Tokens in the shown stream.
    pub len: usize,
    /// Shown positions of tokens holding a line break, ascending (line starts in O(log n)).
    pub line_breaks: Vec<usize>,
}

impl TokenDiff {
    /// Diffs `call`'s tokens against `base`'s (Myers, on token strings).
    pub fn compute(base: &Cluster, call: &Cluster) -> TokenDiff {
        let old: Vec<&str> = base.tokens.iter().collect();
        let new: Vec<&str> = call.tokens.iter().collect();
        let ops = if Arc::ptr_eq(&base.text, &call.text) {
            Vec::new()
        } else {
            let deadline = Instant::now() + DIFF_DEADLINE;
            similar::capture_diff_slices_deadline(Algorithm::Myers, &old, &new, Some(deadline))
        };
        let mut segments: Vec<Segment> = Vec::new();
        let mut hunks: Vec<Hunk> = Vec::new();
        let mut at = 0;
        if ops.is_empty() {
            push(&mut segments, &mut at, Op::Equal, 0..new.len(), None);
        }
        for op in &ops {
            let (tag, old_range, new_range) = op.as_tag_tuple();
            if tag == DiffTag::Equal {
                push(&mut segments, &mut at, Op::Equal, new_range, None);
                continue;
            }
            // Adjacent changes (a delete next to an insert) form one hunk.
            if segments.last().is_none_or(|s| s.op == Op::Equal) {
                hunks.push(Hunk {
                    segments: segments.len()..segments.len(),
                    at,
                    call_token: new_range.start,
                });
            }
            let h = hunks.len() - 1;
            push(&mut segments, &mut at, Op::Delete, old_range, Some(h));
            push(&mut segments, &mut at, Op::Insert, new_range, Some(h));
            hunks[h].segments.end = segments.len();
        }
        let mut diff = TokenDiff {
            base_id: base.id,
            call_id: call.id,
            base_text: base.text.clone(),
            call_text: call.text.clone(),
            base: base.tokens.clone(),
            call: call.tokens.clone(),
            segments,
            hunks,
            len: at,
            line_breaks: Vec::new(),
        };
        diff.line_breaks = (0..diff.len)
            .filter(|&p| diff.shown(p).is_some_and(|(_, t)| t.contains('\n')))
            .collect();
        diff
    }

    /// Whether this is the diff of these two outputs (O(1) for the same snapshot lineage:
    /// snapshots share each output's text `Arc`).
    fn is_of(&self, base: &Cluster, call: &Cluster) -> bool {
        // The same text `Arc` is the same distinct output, tokens included: O(1) per snapshot.
        let same = |text: &Arc<str>, tokens: &TokenList, c: &Cluster| {
            Arc::ptr_eq(text, &c.text) || (*text == c.text && *tokens == c.tokens)
        };
        same(&self.base_text, &self.base, base) && same(&self.call_text, &self.call, call)
    }

    /// The index of the segment holding shown position `pos`.
    pub fn segment_at(&self, pos: usize) -> Option<usize> {
        let i = self
            .segments
            .partition_point(|s| s.at <= pos)
            .checked_sub(1)?;
        (pos < self.segments[i].at + self.segments[i].len()).then_some(i)
    }

    /// The token of `segment` at offset `k` into it.
    pub fn token(&self, segment: &Segment, k: usize) -> &str {
        let list = match segment.op {
            Op::Delete => &self.base,
            Op::Equal | Op::Insert => &self.call,
        };
        list.get(segment.tokens.start + k).unwrap_or("")
    }

    /// The segment index and text of the token at shown position `pos`.
    pub fn shown(&self, pos: usize) -> Option<(usize, &str)> {
        let i = self.segment_at(pos)?;
        let s = &self.segments[i];
        Some((i, self.token(s, pos - s.at)))
    }
}

fn push(
    segments: &mut Vec<Segment>,
    at: &mut usize,
    op: Op,
    tokens: Range<usize>,
    hunk: Option<usize>,
) {
    if !tokens.is_empty() {
        let len = tokens.len();
        segments.push(Segment {
            op,
            tokens,
            at: *at,
            hunk,
        });
        *at += len;
    }
}

/// Where the reader is: the top row is `rows + pages × page height` rows from the row holding
/// shown position `anchor` (the view wraps lazily from there; the state never knows the width).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scroll {
    pub anchor: usize,
    pub rows: i32,
    pub pages: i32,
}

/// The compared call and its position in the item's `call_clusters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    pub call: u32,
    pub pos: usize,
}

/// A diff and where the reader left it.
#[derive(Debug)]
struct Viewed {
    diff: TokenDiff,
    current: Option<usize>,
    scroll: Scroll,
}

#[derive(Debug, Default)]
pub struct DiffState {
    pub base: Base,
    /// The item the selection belongs to (another item's call numbers mean other calls).
    item: Option<String>,
    selected: Option<Selected>,
    /// Where the base call was last found in `call_clusters`.
    base_pos: usize,
    /// The base call, when `base` is a call found in the item.
    base_found: Option<Selected>,
    /// Indices of the base and compared clusters in the item's `clusters` (hints, checked).
    cluster_index: (usize, usize),
    /// Diffs of recent pairs with where the reader was in each; the shown one is last.
    cache: Vec<Viewed>,
    /// The current difference (index into the diff's hunks).
    pub current: Option<usize>,
    pub scroll: Scroll,
    computations: u64,
}

impl DiffState {
    /// Applies a key in the diff view to the item shown.
    pub fn apply(&mut self, command: Command, item: Option<&ItemSnapshot>) {
        self.refresh(item);
        let Some(item) = item else {
            return;
        };
        match command {
            Command::SelectUp | Command::SelectDown => {
                let Some(sel) = self.selected else {
                    return;
                };
                let pos = if command == Command::SelectUp {
                    sel.pos.saturating_sub(1)
                } else {
                    (sel.pos + 1).min(item.call_clusters.len().saturating_sub(1))
                };
                if let Some(&(call, _)) = item.call_clusters.get(pos) {
                    self.selected = Some(Selected { call, pos });
                }
            }
            Command::SetBase => {
                if let Some(sel) = self.selected {
                    self.base = Base::Call(sel.call);
                    self.base_pos = sel.pos;
                }
            }
            Command::BaseModal => self.base = Base::Modal,
            Command::NextDifference | Command::PrevDifference => {
                let n = self.diff().map_or(0, |d| d.hunks.len());
                if n == 0 {
                    return;
                }
                // Wraps around, like a search: the header says which one is current.
                let next = match (self.current, command == Command::NextDifference) {
                    (None, true) => 0,
                    (None, false) => n - 1,
                    (Some(c), true) => (c + 1) % n,
                    (Some(c), false) => (c + n - 1) % n,
                };
                self.show_difference(next);
            }
            Command::PageDown => self.scroll.pages = self.scroll.pages.saturating_add(1),
            Command::PageUp => self.scroll.pages = self.scroll.pages.saturating_sub(1),
            _ => {}
        }
        self.refresh(Some(item));
    }

    /// Brings the cached diff up to date with a new snapshot of the item shown: O(1) while the
    /// compared pair of outputs is the same.
    pub fn refresh(&mut self, item: Option<&ItemSnapshot>) {
        let Some(item) = item else {
            return;
        };
        if self.item.as_deref() != Some(item.item.as_str()) {
            self.item = Some(item.item.clone());
            self.selected = None;
            self.base = Base::Modal;
        }
        let Some(modal) = item.clusters.first() else {
            self.selected = None;
            return;
        };
        let selected = self
            .selected
            .and_then(|s| locate(item, s))
            .or_else(|| default_call(item, modal.id));
        self.selected = selected;
        let Some(sel) = selected else {
            return;
        };
        self.base_found = match self.base {
            Base::Modal => None,
            Base::Call(call) => locate(
                item,
                Selected {
                    call,
                    pos: self.base_pos,
                },
            ),
        };
        let base_id = match self.base_found {
            Some(b) => {
                self.base_pos = b.pos;
                item.call_clusters[b.pos].1
            }
            None => modal.id,
        };
        let call_id = item.call_clusters[sel.pos].1;
        let (Some(bi), Some(ci)) = (
            cluster_index(item, base_id, self.cluster_index.0),
            cluster_index(item, call_id, self.cluster_index.1),
        ) else {
            return;
        };
        self.cluster_index = (bi, ci);
        let (base, call) = (&item.clusters[bi], &item.clusters[ci]);
        if self.cache.last().is_some_and(|v| v.diff.is_of(base, call)) {
            return;
        }
        if let Some(shown) = self.cache.last_mut() {
            shown.current = self.current;
            shown.scroll = self.scroll;
        }
        if let Some(i) = self.cache.iter().position(|v| v.diff.is_of(base, call)) {
            let viewed = self.cache.remove(i);
            self.current = viewed.current;
            self.scroll = viewed.scroll;
            self.cache.push(viewed);
            return;
        }
        self.computations += 1;
        if self.cache.len() >= CACHED_PAIRS {
            self.cache.remove(0);
        }
        self.cache.push(Viewed {
            diff: TokenDiff::compute(base, call),
            current: None,
            scroll: Scroll::default(),
        });
        self.current = None;
        self.scroll = Scroll::default();
        self.show_difference(0);
    }

    /// Opening the view on a call identical to the modal output shows nothing; the first call
    /// that differs is the better start (the modal output changes while a campaign runs).
    pub fn open(&mut self, item: Option<&ItemSnapshot>) {
        self.refresh(item);
        let (Some(item), Some(sel), Base::Modal) = (item, self.selected, self.base) else {
            return;
        };
        let modal = item.clusters.first().map(|c| c.id);
        if item.call_clusters.get(sel.pos).map(|&(_, c)| c) == modal {
            self.selected = modal.and_then(|m| default_call(item, m));
            self.refresh(Some(item));
        }
    }

    /// Shows the first call of cluster `id` (the `d` key from the clusters list).
    pub fn focus_cluster(&mut self, item: &ItemSnapshot, id: u32) {
        self.refresh(Some(item));
        if let Some(pos) = item.call_clusters.iter().position(|&(_, c)| c == id) {
            self.selected = Some(Selected {
                call: item.call_clusters[pos].0,
                pos,
            });
        }
        self.refresh(Some(item));
    }

    fn show_difference(&mut self, index: usize) {
        let Some(at) = self.diff().and_then(|d| d.hunks.get(index)).map(|h| h.at) else {
            return;
        };
        self.current = Some(index);
        self.scroll = Scroll {
            anchor: at,
            rows: -CONTEXT_ROWS,
            pages: 0,
        };
    }

    /// The compared call, once the item has a successful call.
    pub fn selected(&self) -> Option<Selected> {
        self.selected
    }

    /// The base call, when the base is a call present in the item (else the modal output).
    pub fn base_call(&self) -> Option<Selected> {
        self.base_found
    }

    /// The item the state was last brought up to date with.
    pub fn item(&self) -> Option<&str> {
        self.item.as_deref()
    }

    /// The diff of the pair shown.
    pub fn diff(&self) -> Option<&TokenDiff> {
        self.cache.last().map(|v| &v.diff)
    }

    /// Indices of the base and compared clusters in the item's `clusters` at the last refresh.
    pub fn cluster_indices(&self) -> (usize, usize) {
        self.cluster_index
    }

    /// How many diffs were computed (the cache is per pair of outputs).
    pub fn computations(&self) -> u64 {
        self.computations
    }
}

/// `sel` in `item`: at its known position (O(1)) or searched for by call index.
fn locate(item: &ItemSnapshot, sel: Selected) -> Option<Selected> {
    if item.call_clusters.get(sel.pos).map(|&(c, _)| c) == Some(sel.call) {
        return Some(sel);
    }
    let pos = item
        .call_clusters
        .iter()
        .position(|&(c, _)| c == sel.call)?;
    Some(Selected {
        call: sel.call,
        pos,
    })
}

/// The first call that differs from the modal output, else the first call.
fn default_call(item: &ItemSnapshot, modal: u32) -> Option<Selected> {
    let pos = item
        .call_clusters
        .iter()
        .position(|&(_, c)| c != modal)
        .or_else(|| (!item.call_clusters.is_empty()).then_some(0))?;
    Some(Selected {
        call: item.call_clusters[pos].0,
        pos,
    })
}

/// Where cluster `id` is in `item.clusters` (they re-order as counts change).
pub fn cluster_index(item: &ItemSnapshot, id: u32, hint: usize) -> Option<usize> {
    if item.clusters.get(hint).is_some_and(|c| c.id == id) {
        return Some(hint);
    }
    item.clusters.iter().position(|c| c.id == id)
}

#[cfg(test)]
mod tests;
