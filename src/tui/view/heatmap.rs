//! The divergence tab: calls (grouped by cluster) × token positions, coloured by how many
//! still agree with the modal output; the earliest split marked above; and the token
//! similarity matrix of the most frequent outputs beside or below.
//!
//! Everything is derived from the clusters (count, length, shared prefix), never per call,
//! so 10,000 calls cost no more to draw than 10.

mod grid;
mod matrix;
#[cfg(test)]
mod tests;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Widget};
use ratatui::Frame;

use crate::analysis::{Divergence, ItemSnapshot};
use crate::text::inert;

use super::super::state::App;
use super::super::theme::{ColorSupport, Theme};
use grid::Grid;

/// Narrowest heatmap (gutter included) kept when the matrix is drawn beside it.
const HEAT_MIN_BESIDE: u16 = 40;
/// Columns between the heatmap and the matrix beside it.
const GAP: u16 = 2;
/// Characters of a branch token shown in the split label.
const TOKEN_CHARS: usize = 24;
/// Fewest map rows kept when the matrix goes below.
const MIN_MAP_ROWS: u16 = 4;

/// The divergence heatmap and similarity matrix of one target's shown item.
pub fn render(frame: &mut Frame, area: Rect, app: &App, target: usize) {
    let item = app.item_of(target);
    let title = match item {
        Some((name, item)) => format!(
            " divergence · {} · {} · {} calls · {} distinct ",
            inert(name),
            inert(&item.item),
            item.clusters.iter().map(|c| c.count).sum::<u64>(),
            item.clusters.len()
        ),
        None => " divergence ".to_string(),
    };
    let block = Block::bordered()
        .title(title)
        .border_style(app.theme.border);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let buf = frame.buffer_mut();
    match item {
        Some((_, item)) if !item.clusters.is_empty() => {
            draw(buf, inner, &app.theme, item, app.selected);
        }
        _ => {
            Line::styled("waiting for the first answer…", app.theme.muted).render(inner, buf);
        }
    }
}

/// Where the similarity matrix goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Fewer than two distinct outputs: nothing to compare.
    None,
    Beside(matrix::Fit),
    Below(matrix::Fit),
    /// Two or more outputs but no room: a one-line note says so.
    Hidden,
}

fn place(area: Rect, item: &ItemSnapshot) -> Placement {
    let n = item.similarity.ids.len();
    if n < 2 {
        return Placement::None;
    }
    let digits = matrix::digits(&item.similarity.ids);
    let beside = matrix::fit(n, digits, area.height, |w| {
        w + GAP + HEAT_MIN_BESIDE <= area.width
    });
    if let Some(fit) = beside {
        return Placement::Beside(fit);
    }
    // Below: the map keeps its rows plus the marker and legend lines, and one blank line.
    let rows_left = area.height.saturating_sub(MIN_MAP_ROWS + 3);
    match matrix::fit(n, digits, rows_left, |w| w <= area.width) {
        Some(fit) => Placement::Below(fit),
        None => Placement::Hidden,
    }
}

fn draw(buf: &mut Buffer, area: Rect, theme: &Theme, item: &ItemSnapshot, selected: usize) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let placement = place(area, item);
    let heat = match placement {
        Placement::Beside(fit) => {
            let w = fit.width();
            let side = Rect {
                x: area.right() - w,
                width: w,
                ..area
            };
            matrix::draw(buf, side, theme, item, fit, selected);
            Rect {
                width: area.width - w - GAP,
                ..area
            }
        }
        Placement::Below(fit) => {
            let h = fit.height();
            let bottom = Rect {
                y: area.bottom() - h,
                height: h,
                width: fit.width(),
                ..area
            };
            matrix::draw(buf, bottom, theme, item, fit, selected);
            Rect {
                height: area.height - h - 1,
                ..area
            }
        }
        Placement::None | Placement::Hidden => area,
    };
    draw_heat(
        buf,
        heat,
        theme,
        item,
        selected,
        placement == Placement::Hidden,
    );
}

/// The marker line, the map with its gutter, the axis and the legend, as height allows.
fn draw_heat(
    buf: &mut Buffer,
    area: Rect,
    theme: &Theme,
    item: &ItemSnapshot,
    selected: usize,
    note_hidden: bool,
) {
    let h = area.height;
    let has_marker = h >= 2;
    let has_legend = h >= 3;
    let has_axis = h >= 6;
    let has_note = note_hidden && h >= 7;
    let map_rows = h - [has_marker, has_legend, has_axis, has_note]
        .iter()
        .filter(|&&x| x)
        .count() as u16;
    let digits = matrix::digits_of(item.clusters.len().saturating_sub(1) as u64);
    // "▶#12 ": selection mark, id, one blank.
    let gutter = (digits + 3) as u16;
    let gutter = if area.width >= gutter + 8 { gutter } else { 0 };
    let map = Rect {
        x: area.x + gutter,
        y: area.y + u16::from(has_marker),
        width: area.width - gutter,
        height: map_rows,
    };
    let glyphs = glyph_mode(theme);
    let per_row = if glyphs { 1 } else { 2 };
    let grid = Grid::new(&item.clusters, map.width.into(), map_rows.into(), per_row);
    grid.draw(buf, map, theme, glyphs);
    if gutter > 0 {
        draw_gutter(buf, area, map, &grid, theme, selected);
    }
    let mut y = map.bottom();
    if has_marker {
        let line_area = Rect {
            y: area.y,
            height: 1,
            ..area
        };
        match &item.first_divergence {
            Some(d) if item.clusters.len() > 1 => {
                let col = grid.column_of(d.index);
                draw_marker(buf, line_area, map.x - area.x + col as u16, d, theme);
            }
            _ => Line::styled("every call agrees so far", theme.muted).render(line_area, buf),
        }
    }
    if has_axis {
        let axis = Rect {
            y,
            height: 1,
            ..map
        };
        let end = format!("{} tokens", grid.longest());
        Line::styled("0", theme.muted).render(axis, buf);
        Line::styled(end, theme.muted)
            .right_aligned()
            .render(axis, buf);
        y += 1;
    }
    if has_legend {
        let legend = Rect {
            y,
            height: 1,
            ..area
        };
        legend_line(theme, glyphs).render(legend, buf);
        y += 1;
    }
    if has_note {
        let note = Rect {
            y,
            height: 1,
            ..area
        };
        Line::styled(
            "similarity matrix: widen the terminal to see it",
            theme.muted,
        )
        .render(note, buf);
    }
}

/// Colour cannot carry the meaning: the glyph ramp does, one sub-row per cell.
fn glyph_mode(theme: &Theme) -> bool {
    theme.support != ColorSupport::Full
}

/// Cluster ids where each cluster's rows start (the first to reach a row wins), and the
/// selected cluster marked wherever it starts.
fn draw_gutter(
    buf: &mut Buffer,
    area: Rect,
    map: Rect,
    grid: &Grid,
    theme: &Theme,
    selected: usize,
) {
    let rows = map.height as usize;
    let mut labels: Vec<Option<usize>> = vec![None; rows];
    for index in 0..grid.clusters() {
        let row = grid.first_row(index);
        if row >= rows {
            break;
        }
        labels[row].get_or_insert(index);
    }
    let selected = selected.min(grid.clusters().saturating_sub(1));
    if let Some(slot) = labels.get_mut(grid.first_row(selected)) {
        *slot = Some(selected);
    }
    let width = usize::from(map.x - area.x).saturating_sub(1);
    for (row, label) in labels.iter().enumerate() {
        let Some(index) = *label else { continue };
        let (text, style) = if index == selected {
            (format!("▶#{}", grid.id(index)), theme.selected)
        } else {
            (format!(" #{}", grid.id(index)), theme.muted)
        };
        buf.set_stringn(area.x, map.y + row as u16, text, width, style);
    }
}

/// `▼` over the split column and the branches beside it: to the right when they fit or
/// when there is more room there, else ending just left of the marker.
fn draw_marker(buf: &mut Buffer, line: Rect, col: u16, split: &Divergence, theme: &Theme) {
    let col = col.min(line.width.saturating_sub(1));
    let right_room = usize::from(line.width - col).saturating_sub(2);
    let left_room = usize::from(col).saturating_sub(1);
    let full = split_label(split, usize::MAX);
    let on_right = width(&full) <= right_room || right_room >= left_room;
    let room = if on_right { right_room } else { left_room };
    let label = split_label(split, room);
    buf.set_stringn(line.x + col, line.y, "▼", 1, theme.accent);
    if on_right {
        buf.set_stringn(line.x + col + 2, line.y, &label, room, theme.text);
    } else {
        let x = line.x + col.saturating_sub(width(&label) as u16 + 1);
        buf.set_stringn(x, line.y, &label, room, theme.text);
    }
}

/// `split @ token 37 · "Paris" ×812 · "Lyon" ×188 · (end) ×3`, with as many branches as fit in
/// `room` characters (`…` when some are left off).
pub(super) fn split_label(split: &Divergence, room: usize) -> String {
    let mut label = format!("split @ token {}", split.index);
    for (n, branch) in split.branches.iter().enumerate() {
        let token = match &branch.token {
            Some(t) => {
                let trimmed = t.trim();
                // A whitespace-only token (a line break) is shown as such, made visible.
                let shown = if trimmed.is_empty() {
                    t.as_str()
                } else {
                    trimmed
                };
                // A token may be a whole unbroken blob: only its start is worth showing.
                let mut cut: String = shown.chars().take(TOKEN_CHARS).collect();
                if shown.chars().nth(TOKEN_CHARS).is_some() {
                    cut.push('…');
                }
                format!("{:?}", inert(&cut))
            }
            None => "(end)".to_string(),
        };
        let part = format!(" · {token} ×{}", branch.count);
        let more = n + 1 < split.branches.len();
        let reserve = if more { 2 } else { 0 };
        if width(&label) + width(&part) + reserve > room {
            label.push_str(" …");
            break;
        }
        label.push_str(&part);
    }
    truncate(&label, room)
}

/// Display width in terminal cells (wide characters count two).
fn width(s: &str) -> usize {
    Span::raw(s).width()
}

/// `s` cut to `room` cells, `…` marking the cut.
fn truncate(s: &str, room: usize) -> String {
    if width(s) <= room {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = width(c.encode_utf8(&mut [0; 4]));
        if used + w + 1 > room {
            break;
        }
        used += w;
        out.push(c);
    }
    if room > 0 {
        out.push('…');
    }
    out
}

/// Shared with the modal output / diverged (the ramp) / past the end.
fn legend_line(theme: &Theme, glyphs: bool) -> Line<'static> {
    let swatch = |x: f64| {
        if glyphs {
            let style = if theme.uses_color() {
                theme.text.fg(theme.heat(x))
            } else {
                theme.text
            };
            Span::styled(theme.heat_glyph(x).to_string(), style)
        } else {
            Span::styled("█", theme.text.fg(theme.heat(x)))
        }
    };
    let mut spans = vec![
        swatch(1.0),
        swatch(1.0),
        Span::styled(" shared with modal  ", theme.muted),
    ];
    for x in [0.75, 0.5, 0.25, 0.0] {
        spans.push(swatch(x));
    }
    spans.push(Span::styled(" diverged  ", theme.muted));
    if glyphs {
        spans.push(Span::styled(grid::EMPTY_GLYPH.to_string(), theme.muted));
        spans.push(Span::styled(" past the end", theme.muted));
    } else if theme.heat_empty == Color::Reset {
        spans.push(Span::styled("blank: past the end", theme.muted));
    } else {
        spans.push(Span::styled("  ", theme.text.bg(theme.heat_empty)));
        spans.push(Span::styled(" past the end", theme.muted));
    }
    Line::from(spans)
}
