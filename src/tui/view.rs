//! Drawing: a pure function of the app state and the clock passed in. Measures come from the
//! analysis snapshot as they are; nothing is recomputed here.

use std::collections::BTreeMap;
use std::time::Duration;

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Gauge, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use crate::analysis::{Cluster, ItemSnapshot, Verdict};
use crate::archive::short_identity;
use crate::record::ErrorClass;
use crate::text::inert;

use super::keys::{Mode, KEYS};
use super::state::{App, Phase};

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

pub fn render(frame: &mut Frame, app: &App, elapsed: Duration) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let message = format!(
            "terminal too small: {}×{}, need {MIN_WIDTH}×{MIN_HEIGHT}",
            area.width, area.height
        );
        frame.render_widget(
            Paragraph::new(vec![Line::from(message), Line::from("q quits")])
                .wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    let [header, progress, consistency, clusters, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Length(consistency_height(app)),
        Constraint::Min(4),
        Constraint::Length(1),
    ])
    .areas(area);
    render_header(frame, app, elapsed, header);
    render_progress(frame, app, elapsed, progress);
    render_consistency(frame, app, consistency);
    render_clusters(frame, app, clusters);
    render_footer(frame, app, footer);
    if app.help {
        render_help(frame, area);
    }
    if app.confirm_quit {
        render_confirm(frame, area);
    }
}

fn items(app: &App) -> impl Iterator<Item = (&str, &ItemSnapshot)> {
    app.items()
}

fn consistency_height(app: &App) -> u16 {
    // Borders and the column header, then one row per (target, item), at most 8 shown.
    let rows = items(app).count().clamp(1, 8) as u16;
    rows + 3
}

fn clock(elapsed: Duration) -> String {
    let s = elapsed.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn render_header(frame: &mut Frame, app: &App, elapsed: Duration, area: Rect) {
    let (state, style) = match &app.phase {
        Phase::Running => ("LIVE", Style::new().fg(Color::Black).bg(Color::Green)),
        Phase::Stopping => ("STOPPING", Style::new().fg(Color::Black).bg(Color::Yellow)),
        Phase::Finished { completed: true } => {
            ("DONE", Style::new().fg(Color::Black).bg(Color::Cyan))
        }
        Phase::Finished { completed: false } => {
            ("STOPPED", Style::new().fg(Color::Black).bg(Color::Yellow))
        }
        Phase::Failed(_) => ("FAILED", Style::new().fg(Color::White).bg(Color::Red)),
    };
    let identity = app
        .identity
        .as_deref()
        .map_or("…".to_string(), |i| short_identity(i).to_string());
    let line = Line::from(vec![
        Span::styled(" reprise ", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!("{} · ", inert(&app.protocol))),
        Span::raw(format!("target {} · ", inert(&app.targets.join(", ")))),
        Span::raw(format!("id {identity} · ")),
        Span::styled(format!(" {state} "), style),
        Span::raw(format!(" {}", clock(elapsed))),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

fn render_progress(frame: &mut Frame, app: &App, elapsed: Duration, area: Rect) {
    let done = app.live.records;
    let total = app.planned_calls.max(1);
    let rate = if elapsed.as_secs_f64() > 0.0 {
        done as f64 / elapsed.as_secs_f64()
    } else {
        0.0
    };
    let mut errors: BTreeMap<ErrorClass, u64> = BTreeMap::new();
    for (_, item) in items(app) {
        for (class, n) in &item.errors_by_class {
            *errors.entry(*class).or_default() += n;
        }
    }
    let errors = if errors.is_empty() {
        "no errors".to_string()
    } else {
        let parts: Vec<String> = errors
            .iter()
            .map(|(c, n)| format!("{} {n}", c.as_str()))
            .collect();
        format!("errors: {}", parts.join(", "))
    };
    let title = match &app.phase {
        Phase::Failed(message) => format!(" progress · {} ", inert(message)),
        _ => " progress ".to_string(),
    };
    let eta = match app.phase {
        Phase::Running if rate > 0.0 && done < app.planned_calls => {
            let left = Duration::from_secs_f64((app.planned_calls - done) as f64 / rate);
            format!(" · eta {}", clock(left))
        }
        _ => String::new(),
    };
    let label = format!(
        "{done}/{} calls · {rate:.0} calls/s{eta} · {errors}",
        app.planned_calls
    );
    let gauge = Gauge::default()
        .block(Block::bordered().title(title))
        .gauge_style(Style::new().fg(Color::Green).bg(Color::DarkGray))
        .ratio((done as f64 / total as f64).clamp(0.0, 1.0))
        .label(label);
    frame.render_widget(gauge, area);
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
            .served
            .iter()
            .find(|(t, _)| t == target)
            .map_or(0, |(_, n)| *n)
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
                Cell::from(format!("{n_served} ⚠")).style(Style::new().fg(Color::Yellow))
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
    let header = Row::new(header).style(Style::new().add_modifier(Modifier::BOLD));
    let title = if many_targets {
        " consistency ".to_string()
    } else {
        format!(" consistency · {} ", inert(&app.targets.join(", ")))
    };
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .block(Block::bordered().title(title));
    // The shown item is highlighted; the table scrolls to keep it visible.
    let mut state = TableState::default().with_selected(Some(app.item));
    frame.render_stateful_widget(table, area, &mut state);
}

fn render_clusters(frame: &mut Frame, app: &App, area: Rect) {
    let item = app.shown_item();
    let title = match item {
        Some((target, item)) => format!(" clusters · {} · {} ", inert(target), inert(&item.item)),
        None => " clusters ".to_string(),
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some((_, item)) = item else {
        frame.render_widget(Paragraph::new("waiting for the first answer…"), inner);
        return;
    };
    let clusters = &item.clusters;
    if clusters.is_empty() {
        frame.render_widget(Paragraph::new("waiting for the first answer…"), inner);
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
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                Style::new()
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
                Span::styled(bar, Style::new().fg(Color::Cyan)),
                Span::raw(" "),
                Span::raw(inert(&preview).into_owned()),
            ])
            .style(style)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn render_footer(frame: &mut Frame, app: &App, area: Rect) {
    let mut hint = String::from(" q quit · s stop · ↑/↓ select · Tab item · ? help");
    if let Some(archive) = &app.archive {
        hint.push_str(&format!(
            " · archive {}",
            inert(&archive.display().to_string())
        ));
    }
    frame.render_widget(
        Paragraph::new(hint).style(Style::new().fg(Color::DarkGray)),
        area,
    );
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}

fn render_help(frame: &mut Frame, area: Rect) {
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|b| {
            Line::from(vec![
                Span::styled(
                    format!(" {:<7}", b.label),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(b.help),
            ])
        })
        .collect();
    let popup = centered(area, 70, KEYS.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" keys ")),
        popup,
    );
}

fn render_confirm(frame: &mut Frame, area: Rect) {
    let keys: Vec<String> = KEYS
        .iter()
        .filter(|b| b.mode == Mode::Confirm)
        .map(|b| b.label.to_string())
        .collect();
    let popup = centered(area, 52, 4);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(" Calls are in flight. Stop the campaign and quit?"),
            Line::from(format!(" {}", keys.join(" / "))),
        ])
        .block(Block::bordered().title(" quit ")),
        popup,
    );
}

/// Tokens kept before the split point, so the preview shows where this output turns.
const CONTEXT_TOKENS: usize = 3;

/// The first line of a cluster's text, or for an output that leaves the modal one late,
/// `…` and the text from just before the split; at most `width` characters are built.
fn preview(cluster: &Cluster, width: usize) -> String {
    let from = match cluster.first_divergence {
        Some(split) if split > CONTEXT_TOKENS => split - CONTEXT_TOKENS,
        _ => return cluster.text.lines().next().unwrap_or("").to_string(),
    };
    let mut out = String::from("…");
    // Tokens (the backend's, or word bounds with their spaces) concatenate to the text.
    for token in cluster.tokens.iter().skip(from) {
        out.push_str(token);
        if out.contains('\n') || out.chars().count() >= width {
            break;
        }
    }
    out.lines().next().unwrap_or("").to_string()
}
