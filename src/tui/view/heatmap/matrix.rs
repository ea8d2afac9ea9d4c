//! The token similarity matrix of the most frequent distinct outputs: `#id` rows and columns,
//! each cell coloured by similarity, with the percentage when the cell is wide enough.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use crate::analysis::ItemSnapshot;

use super::super::super::theme::Theme;

/// Cell widths tried, widest first: 4+ shows `75%`, 3 shows `75`, 2 only the colour.
const CELL_WIDTHS: [u16; 4] = [5, 4, 3, 2];

/// How the matrix fits: `shown` clusters (the first of the snapshot's), cells `cell` wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    pub shown: usize,
    pub cell: u16,
    /// Row label column: `#id` and a blank.
    pub label: u16,
    /// Clusters in the snapshot's matrix.
    pub of: usize,
}

impl Fit {
    pub fn width(&self) -> u16 {
        self.label + self.shown as u16 * self.cell
    }

    /// Title, column labels, one line per cluster.
    pub fn height(&self) -> u16 {
        self.shown as u16 + 2
    }
}

pub fn digits_of(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

pub fn digits(ids: &[u32]) -> usize {
    ids.iter().map(|&i| digits_of(i.into())).max().unwrap_or(1)
}

/// The largest matrix (most clusters, then widest cells) within `height` lines whose width
/// passes `width_ok`; None below two clusters.
pub fn fit(n: usize, digits: usize, height: u16, width_ok: impl Fn(u16) -> bool) -> Option<Fit> {
    let most = n.min(usize::from(height.saturating_sub(2)));
    let label = digits as u16 + 2;
    for shown in (2..=most).rev() {
        for cell in CELL_WIDTHS {
            let fit = Fit {
                shown,
                cell,
                label,
                of: n,
            };
            if width_ok(fit.width()) {
                return Some(fit);
            }
        }
    }
    None
}

pub fn draw(
    buf: &mut Buffer,
    area: Rect,
    theme: &Theme,
    item: &ItemSnapshot,
    fit: Fit,
    selected: usize,
) {
    let sim = &item.similarity;
    let n = sim.ids.len();
    if fit.height() > area.height || fit.width() > area.width || fit.shown > n {
        return;
    }
    // The longest title that fits the matrix width.
    let top = format!(" · top {}", fit.shown);
    let top = if fit.shown < fit.of { top.as_str() } else { "" };
    let title = [
        format!("token similarity{top}"),
        format!("similarity{top}"),
        "similarity".to_string(),
    ]
    .into_iter()
    .find(|t| t.chars().count() <= usize::from(area.width))
    .unwrap_or_else(|| "sim.".to_string());
    buf.set_stringn(area.x, area.y, title, area.width.into(), theme.title);
    let selected_id = item.clusters.get(selected).map(|c| c.id);
    let cell = usize::from(fit.cell);
    for (j, id) in sim.ids.iter().take(fit.shown).enumerate() {
        let x = area.x + fit.label + j as u16 * fit.cell;
        // A label needs a blank before it, or neighbours run together ("#063#1"); columns
        // are in row order, so an unlabelled column is still readable from the rows.
        let long = format!("#{id}");
        let short = id.to_string();
        let text = if long.len() < cell {
            long
        } else if short.len() < cell {
            short
        } else {
            String::new()
        };
        buf.set_stringn(x, area.y + 1, format!("{text:>cell$}"), cell, theme.muted);
    }
    for (i, id) in sim.ids.iter().take(fit.shown).enumerate() {
        let y = area.y + 2 + i as u16;
        let style = if Some(*id) == selected_id {
            theme.selected
        } else {
            theme.muted
        };
        buf.set_stringn(
            area.x,
            y,
            format!("#{id}"),
            usize::from(fit.label - 1),
            style,
        );
        for j in 0..fit.shown {
            let v = sim.values.get(i * n + j).copied().unwrap_or(0.0);
            let x = area.x + fit.label + j as u16 * fit.cell;
            let pct = (v.clamp(0.0, 1.0) * 100.0).round() as u32;
            let text = match cell {
                4.. => format!("{:>cell$}", format!("{pct}%")),
                3 => format!("{pct:>3}"),
                _ if theme.uses_color() => " ".repeat(cell),
                _ => theme.heat_glyph(v).to_string().repeat(cell),
            };
            let style = if theme.uses_color() {
                theme.text.bg(theme.heat(v))
            } else {
                theme.text
            };
            buf.set_stringn(x, y, text, cell, style);
        }
    }
}
