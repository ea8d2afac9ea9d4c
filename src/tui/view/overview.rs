//! The overview tab: the consistency panel (every target and item) and the clusters of the
//! item shown; and the reader, one cluster's text in full.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use crate::analysis::{Cluster, ItemSnapshot, Verdict};
use crate::text::inert;

use super::super::state::{App, Reader};

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let [consistency, clusters] = Layout::vertical([
        Constraint::Length(consistency_height(app)),
        Constraint::Min(3),
    ])
    .areas(area);
    render_consistency(frame, app, consistency);
    super::per_target(frame, clusters, app, render_clusters);
}

/// One cluster's whole text, scrollable; only the visible lines are built.
pub fn render_reader(frame: &mut Frame, area: Rect, app: &App, reader: Reader) {
    let Some((target, item)) = app.shown_item() else {
        return;
    };
    let Some(cluster) = item.clusters.iter().find(|c| c.id == reader.cluster) else {
        return;
    };
    let popup = area.inner(ratatui::layout::Margin::new(2, 1));
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .title(format!(
            " #{} · {} calls · {} · {} · ↑/↓ PgUp/PgDn scroll · Esc closes ",
            cluster.id,
            cluster.count,
            inert(target),
            inert(&item.item)
        ))
        .border_style(app.theme.accent);
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let text = inert(&cluster.text);
    let wrapped = wrap(&text, inner.width.max(1) as usize);
    let last_top = wrapped.len().saturating_sub(inner.height as usize);
    let top = reader.scroll.min(last_top);
    let lines: Vec<Line> = wrapped
        .into_iter()
        .skip(top)
        .take(inner.height as usize)
        .map(Line::from)
        .collect();
    frame.render_widget(Paragraph::new(lines).style(app.theme.text), inner);
}

/// Hard-wraps `text` at `width` characters per line, keeping its own line breaks.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let chars: Vec<char> = line.chars().collect();
        if chars.is_empty() {
            out.push(String::new());
        }
        for chunk in chars.chunks(width) {
            out.push(chunk.iter().collect());
        }
    }
    out
}

fn items(app: &App) -> impl Iterator<Item = (&str, &ItemSnapshot)> {
    app.items()
}

fn consistency_height(app: &App) -> u16 {
    // Borders and the column header, then one row per (target, item), at most 8 shown.
    let rows = items(app).count().clamp(1, 8) as u16;
    rows + 3
}

fn pct(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{:.1}%", x * 100.0))
}

fn verdict(v: Option<Verdict>) -> &'static str {
    match v {
        None => "–",
        Some(Verdict::Identical) => "identical",
        Some(Verdict::AnswersAgree) => "ans. agree",
        Some(Verdict::Diverged) => "diverged",
    }
}

fn render_consistency(frame: &mut Frame, app: &App, area: Rect) {
    let served = |target: &str| {
        app.live
            .snapshot
            .as_ref()
            .and_then(|s| s.targets.iter().find(|t| t.target == target))
            .map_or(0, |t| t.served.len())
    };
    // One target: its name is in the title, not a column. Narrow: the call count goes
    // (the progress gauge has it) so the item name keeps some room.
    let many_targets = app
        .live
        .snapshot
        .as_ref()
        .is_some_and(|s| s.targets.len() > 1);
    let wide = area.width >= 90;
    let rows: Vec<Row> = items(app)
        .map(|(target, item)| {
            let share = match (item.modal_share, item.modal_share_ci) {
                (Some(m), Some([lo, hi])) => {
                    format!("{:.1}% [{:.1}–{:.1}]", m * 100.0, lo * 100.0, hi * 100.0)
                }
                (m, _) => pct(m),
            };
            let tar = |t: Option<u8>| t.map_or("–".into(), |t| t.to_string());
            let n_served = served(target);
            let served_cell = if n_served > 1 {
                Cell::from(format!("{n_served} ⚠")).style(app.theme.warning)
            } else {
                Cell::from(n_served.to_string())
            };
            let mut cells = Vec::with_capacity(10);
            if many_targets {
                cells.push(Cell::from(inert(target).into_owned()));
            }
            cells.push(Cell::from(inert(&item.item).into_owned()));
            if wide {
                cells.push(Cell::from(item.calls.to_string()));
            }
            cells.extend([
                Cell::from(item.distinct_outputs.to_string()),
                Cell::from(share),
                Cell::from(pct(item.pairwise_agreement)),
                Cell::from(item.entropy_bits.map_or("–".into(), |e| format!("{e:.2}"))),
                Cell::from(format!("{}/{}", tar(item.tar_raw), tar(item.tar_answer))),
                Cell::from(verdict(item.verdict)),
                served_cell,
            ]);
            Row::new(cells)
        })
        .collect();
    let mut header = Vec::with_capacity(10);
    let mut widths = Vec::with_capacity(10);
    if many_targets {
        header.push("target");
        widths.push(Constraint::Fill(1));
    }
    header.push("item");
    widths.push(Constraint::Fill(2));
    if wide {
        header.push("calls");
        widths.push(Constraint::Length(6));
    }
    header.extend([
        "distinct",
        "modal share",
        "agree",
        "H bits",
        "TARr/a",
        "verdict",
        "served",
    ]);
    widths.extend([
        Constraint::Length(8),
        Constraint::Length(19),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(10),
        Constraint::Length(6),
    ]);
    let header = Row::new(header).style(app.theme.title);
    let title = if many_targets {
        " consistency ".to_string()
    } else {
        format!(" consistency · {} ", inert(&app.targets.join(", ")))
    };
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(app.theme.selected)
        .block(
            Block::bordered()
                .title(title)
                .border_style(app.theme.border),
        );
    // The shown item is highlighted; the table scrolls to keep it visible.
    let row = app.target * app.item_count() + app.item;
    let mut state = TableState::default().with_selected(Some(row));
    frame.render_stateful_widget(table, area, &mut state);
}

/// A target without an answer: still waiting, or — when its breaker stopped it — why, whole
/// and wrapped (the line above the table has room for only its start).
fn no_answer<'a>(app: &App, target: &str) -> Paragraph<'a> {
    let prefix = format!("target `{}`:", inert(target));
    match app.stopped.iter().find(|s| s.starts_with(&prefix)) {
        Some(why) => Paragraph::new(format!("no answer: {}", inert(why)))
            .style(app.theme.error)
            .wrap(Wrap { trim: true }),
        None => Paragraph::new("waiting for the first answer…"),
    }
}

fn render_clusters(frame: &mut Frame, area: Rect, app: &App, target: usize) {
    let item = app.item_of(target);
    let title = match item {
        Some((target, item)) => format!(" clusters · {} · {} ", inert(target), inert(&item.item)),
        None => " clusters ".to_string(),
    };
    let block = Block::bordered()
        .title(title)
        .border_style(app.theme.border);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some((name, item)) = item else {
        frame.render_widget(Paragraph::new("waiting for the first answer…"), inner);
        return;
    };
    let clusters = &item.clusters;
    if clusters.is_empty() {
        frame.render_widget(no_answer(app, name), inner);
        return;
    }
    let rows = inner.height as usize;
    // Keep the selection visible: scroll the window, drawing only what fits.
    let first = app.selected.saturating_sub(rows.saturating_sub(1));
    let max = clusters.first().map_or(1, |c| c.count.max(1));
    let ok = item.ok.max(1);
    const BAR: u16 = 16;
    let lines: Vec<Line> = clusters
        .iter()
        .enumerate()
        .skip(first)
        .take(rows)
        .map(|(index, cluster)| {
            let filled = ((cluster.count as f64 / max as f64) * f64::from(BAR)).round() as usize;
            let bar = format!(
                "{}{}",
                "█".repeat(filled),
                " ".repeat(usize::from(BAR).saturating_sub(filled))
            );
            let preview = preview(cluster, inner.width.into());
            let style = if index == app.selected {
                app.theme.selected
            } else {
                app.theme.text
            };
            // Where this output leaves the modal one, in tokens ("modal" for the modal output).
            let split = cluster
                .first_divergence
                .map_or("modal".to_string(), |t| format!("@{t}"));
            Line::from(vec![
                Span::raw(format!(
                    "#{:<4} {:>6} {:>5.1}% {split:>5} ",
                    cluster.id,
                    cluster.count,
                    cluster.count as f64 * 100.0 / ok as f64
                )),
                Span::styled(bar, app.theme.bar),
                Span::raw(" "),
                Span::raw(inert(&preview).into_owned()),
            ])
            .style(style)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

/// Tokens kept before the split point, so the preview shows where this output turns.
const CONTEXT_TOKENS: usize = 3;

/// The first line of a cluster's text, or for an output that leaves the modal one late,
/// `…` and the text from just before the split; at most `width` characters are built.
fn preview(cluster: &Cluster, width: usize) -> String {
    let from = match cluster.first_divergence {
        Some(split) if split > CONTEXT_TOKENS => split - CONTEXT_TOKENS,
        // Only what can show: a first line may be thousands of characters long.
        _ => {
            let first = cluster.text.lines().next().unwrap_or("");
            return first.chars().take(width).collect();
        }
    };
    let mut out = String::from("…");
    let mut chars = 1;
    // Tokens (the backend's, or word bounds with their spaces) concatenate to the text.
    for token in cluster.tokens.iter().skip(from) {
        out.push_str(token);
        chars += token.chars().count();
        if token.contains('\n') || chars >= width {
            break;
        }
    }
    let first = out.lines().next().unwrap_or("");
    first.chars().take(width).collect()
}
