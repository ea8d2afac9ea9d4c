//! The heatmap's cells, from the clusters alone: calls are laid out cluster by cluster (most
//! frequent first), binned to sub-rows; token positions are binned to columns.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use crate::analysis::Cluster;

use super::super::super::theme::Theme;

/// Glyph-mode cell past the end of the outputs (the ramp's low end may be a blank).
pub const EMPTY_GLYPH: char = '·';

pub struct Grid<'a> {
    clusters: &'a [Cluster],
    /// Calls up to and including each cluster (the layout's cumulative counts).
    ends: Vec<u64>,
    total: u64,
    longest: usize,
    cols: usize,
    sub_rows: usize,
    /// Sub-rows per terminal row: 2 with half-blocks, 1 with glyphs.
    per_row: usize,
    /// Where each sub-row's calls end (exclusive), for finding a cluster's first row.
    row_ends: Vec<u64>,
    /// Per cluster: columns wholly within its agreement with the modal output, and columns
    /// it reaches at all.
    agree_cols: Vec<usize>,
    present_cols: Vec<usize>,
}

/// Slot `i` of `slots` over `n` things: a contiguous range, never empty, stretched when there
/// are fewer things than slots.
fn span(i: usize, n: u64, slots: usize) -> (u64, u64) {
    let slots = slots.max(1) as u128;
    let start = (i as u128 * n as u128 / slots) as u64;
    let end = ((i as u128 + 1) * n as u128 / slots) as u64;
    (start, end.max(start + 1))
}

/// How many of `0..n` satisfy `pred`, which holds on a prefix.
fn count_while(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

impl<'a> Grid<'a> {
    pub fn new(clusters: &'a [Cluster], cols: usize, rows: usize, per_row: usize) -> Self {
        let mut ends = Vec::with_capacity(clusters.len());
        let mut total = 0u64;
        for c in clusters {
            total = total.saturating_add(c.count);
            ends.push(total);
        }
        let longest = clusters.iter().map(|c| c.tokens.len()).max().unwrap_or(0);
        let n = longest as u64;
        // Token bins, computed once: a cluster's columns are then two binary searches.
        let (bin_starts, bin_ends): (Vec<u64>, Vec<u64>) =
            (0..cols).map(|j| span(j, n, cols)).unzip();
        let sub_rows = rows * per_row.max(1);
        let row_ends = (0..sub_rows).map(|r| span(r, total, sub_rows).1).collect();
        let mut agree_cols = Vec::with_capacity(clusters.len());
        let mut present_cols = Vec::with_capacity(clusters.len());
        for c in clusters {
            let len = c.tokens.len() as u64;
            // The modal output (no divergence) agrees with itself along its whole length.
            let agree = c.first_divergence.map_or(len, |d| (d as u64).min(len));
            agree_cols.push(bin_ends.partition_point(|&e| e <= agree));
            present_cols.push(bin_starts.partition_point(|&s| s < len));
        }
        Grid {
            clusters,
            ends,
            total,
            longest,
            cols,
            sub_rows,
            per_row: per_row.max(1),
            row_ends,
            agree_cols,
            present_cols,
        }
    }

    pub fn longest(&self) -> usize {
        self.longest
    }

    pub fn clusters(&self) -> usize {
        self.clusters.len()
    }

    pub fn id(&self, index: usize) -> u32 {
        self.clusters.get(index).map_or(0, |c| c.id)
    }

    /// The column whose token bin holds position `index`.
    pub fn column_of(&self, index: usize) -> usize {
        let n = self.longest as u64;
        count_while(self.cols, |j| span(j, n, self.cols).1 <= index as u64)
            .min(self.cols.saturating_sub(1))
    }

    /// The terminal row where cluster `index` (in count order) starts.
    pub fn first_row(&self, index: usize) -> usize {
        let start = match index {
            0 => 0,
            i => self.ends.get(i - 1).copied().unwrap_or(self.total),
        };
        self.row_ends.partition_point(|&e| e <= start) / self.per_row
    }

    /// Each column's share of sub-row `r`'s calls that still agree with the modal output there;
    /// None where most of them have ended.
    pub fn sub_row(&self, r: usize) -> Vec<Option<f64>> {
        let mut out = vec![None; self.cols];
        if self.total == 0 || r >= self.sub_rows {
            return out;
        }
        let (a, b) = span(r, self.total, self.sub_rows);
        let mut agree = vec![0i64; self.cols + 1];
        let mut present = vec![0i64; self.cols + 1];
        let first = self.ends.partition_point(|&e| e <= a);
        for k in first..self.clusters.len() {
            let start = if k == 0 { 0 } else { self.ends[k - 1] };
            if start >= b {
                break;
            }
            let w = (self.ends[k].min(b) - start.max(a)) as i64;
            agree[0] += w;
            agree[self.agree_cols[k]] -= w;
            present[0] += w;
            present[self.present_cols[k]] -= w;
        }
        let calls = (b - a) as i64;
        let (mut ag, mut pr) = (0i64, 0i64);
        for (j, cell) in out.iter_mut().enumerate() {
            ag += agree[j];
            pr += present[j];
            if pr > 0 && pr * 2 >= calls {
                *cell = Some(ag as f64 / pr as f64);
            }
        }
        out
    }

    /// Half-blocks (fg = upper sub-row, bg = lower) or, in glyph mode, the glyph ramp.
    pub fn draw(&self, buf: &mut Buffer, map: Rect, theme: &Theme, glyphs: bool) {
        let rows = self.sub_rows / self.per_row;
        for y in 0..rows.min(map.height as usize) {
            let by = map.y + y as u16;
            if glyphs {
                let values = self.sub_row(y);
                for (x, v) in values.iter().enumerate().take(map.width as usize) {
                    let Some(cell) = buf.cell_mut((map.x + x as u16, by)) else {
                        continue;
                    };
                    match *v {
                        Some(v) if theme.uses_color() => {
                            cell.set_char(theme.heat_glyph(v))
                                .set_style(theme.text.fg(theme.heat(v)));
                        }
                        Some(v) => {
                            cell.set_char(theme.heat_glyph(v)).set_style(theme.text);
                        }
                        None => {
                            cell.set_char(EMPTY_GLYPH).set_style(theme.muted);
                        }
                    }
                }
            } else {
                let upper = self.sub_row(2 * y);
                let lower = self.sub_row(2 * y + 1);
                for (x, (u, l)) in upper
                    .iter()
                    .zip(&lower)
                    .enumerate()
                    .take(map.width as usize)
                {
                    let Some(cell) = buf.cell_mut((map.x + x as u16, by)) else {
                        continue;
                    };
                    // The empty colour may be the terminal default: it goes in the background.
                    let (ch, fg, bg) = match (*u, *l) {
                        (Some(u), Some(l)) => ('▀', theme.heat(u), theme.heat(l)),
                        (Some(u), None) => ('▀', theme.heat(u), theme.heat_empty),
                        (None, Some(l)) => ('▄', theme.heat(l), theme.heat_empty),
                        (None, None) => (' ', theme.heat_empty, theme.heat_empty),
                    };
                    cell.set_char(ch).set_fg(fg).set_bg(bg);
                }
            }
        }
    }
}
