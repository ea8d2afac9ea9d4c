//! Drawing: a pure function of the app state and the clock passed in. Measures come from the
//! analysis snapshot as they are; nothing is recomputed here.
//!
//! One file per screen or tab: `overview` (consistency and clusters), `heatmap` (divergence),
//! `diff`, `timing`, `picker`; this file draws the frame around them and the overlays.

mod diff;
mod heatmap;
mod overview;
mod picker;
mod sessions;
mod timing;

use std::collections::BTreeMap;
use std::time::Duration;

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Gauge, Paragraph, Wrap};
use ratatui::Frame;

use crate::archive::short_identity;
use crate::record::ErrorClass;
use crate::text::inert;

use super::keys::{in_replay, replay_only, Binding, InReplay, Scope, Tab, KEYS};
use super::replay::ReplayView;
use super::state::{App, Phase, Screen};
use super::theme::Badge;

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

/// Below this width per target, targets are switched (`t`) rather than shown side by side.
const PANE_WIDTH: u16 = 70;

pub fn render(frame: &mut Frame, app: &App, elapsed: Duration) {
    let area = frame.area();
    frame.render_widget(Block::new().style(app.theme.text), area);
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let message = format!(
            "terminal too small: {}×{}, need {MIN_WIDTH}×{MIN_HEIGHT}",
            area.width, area.height
        );
        // The quit prompt must stay answerable even here.
        let hint = if app.confirm_quit {
            "calls in flight: y stops and quits, n keeps running"
        } else {
            "q quits"
        };
        frame.render_widget(
            Paragraph::new(vec![Line::from(message), Line::from(hint)]).wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    if app.screen == Screen::Picker {
        picker::render(frame, area, app);
    } else if app.screen == Screen::Sessions {
        sessions::render(frame, area, app);
    } else {
        let [header, progress, body, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(3),
            Constraint::Min(4),
            Constraint::Length(1),
        ])
        .areas(area);
        render_header(frame, app, elapsed, header);
        render_progress(frame, app, elapsed, progress);
        match app.tab {
            Tab::Overview => overview::render(frame, body, app),
            Tab::Divergence => per_target(frame, body, app, heatmap::render),
            Tab::Diff => diff::render(frame, body, app),
            Tab::Timing => timing::render(frame, body, app),
        }
        render_footer(frame, app, footer);
        if let Some(reader) = app.reader {
            overview::render_reader(frame, area, app, reader);
        }
    }
    if app.help {
        render_help(frame, app, area);
    }
    if app.confirm_quit {
        render_confirm(frame, app, area);
    }
}

/// Draws `panel` for every target side by side when they fit, else for the target shown.
fn per_target(frame: &mut Frame, area: Rect, app: &App, panel: fn(&mut Frame, Rect, &App, usize)) {
    let n = app.targets.len().max(1);
    if n > 1 && area.width / n as u16 >= PANE_WIDTH {
        let panes = Layout::horizontal(vec![Constraint::Fill(1); n]).split(area);
        for (target, pane) in panes.iter().enumerate() {
            panel(frame, *pane, app, target);
        }
    } else {
        panel(frame, area, app, app.target);
    }
}

fn clock(elapsed: Duration) -> String {
    let s = elapsed.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn render_header(frame: &mut Frame, app: &App, elapsed: Duration, area: Rect) {
    let (state, badge) = match &app.phase {
        _ if app.replay.is_some() => ("REPLAY", Badge::Replay),
        // Every target held back by its breaker: only calls in flight are left to finish.
        Phase::Running if !app.stopped.is_empty() && app.stopped.len() >= app.targets.len() => {
            ("STOPPING", Badge::Stopping)
        }
        Phase::Running if app.paused => ("PAUSED", Badge::Paused),
        Phase::Running => ("LIVE", Badge::Live),
        Phase::Stopping => ("STOPPING", Badge::Stopping),
        Phase::Finished { completed: true } => ("DONE", Badge::Done),
        Phase::Finished { completed: false } => ("STOPPED", Badge::Stopped),
        Phase::Failed(_) => ("FAILED", Badge::Failed),
    };
    let identity = app
        .identity
        .as_deref()
        // From an archive when one is opened: data, so made inert like any other text.
        .map_or("…".to_string(), |i| inert(short_identity(i)).into_owned());
    let line = Line::from(vec![
        Span::styled(" reprise ", app.theme.title),
        Span::raw(format!("{} · ", inert(&app.protocol))),
        Span::raw(format!("target {} · ", inert(&app.targets.join(", ")))),
        Span::raw(format!("id {identity} · ")),
        Span::styled(format!(" {state} "), app.theme.badge(badge)),
    ]);
    let line = match &app.replay {
        Some(replay) => replay_status(line, app, replay, elapsed),
        None => {
            let mut line = line;
            line.spans.push(Span::raw(format!(" {}", clock(elapsed))));
            line
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// A replay's header goes on with where playback is, of how long, at what speed, and
/// whether the session was cut short.
fn replay_status<'a>(
    mut line: Line<'a>,
    app: &App,
    replay: &ReplayView,
    elapsed: Duration,
) -> Line<'a> {
    // Said first: the header is cut on the right in a narrow terminal.
    if replay.unfinished {
        line.spans
            .push(Span::styled(" unfinished", app.theme.warning));
    }
    let state = &replay.state;
    let mut status = format!(" {} / {}", clock(elapsed), clock(state.end));
    if let Some(speed) = replay.speed {
        status.push_str(&format!(" · ×{speed}"));
    }
    if elapsed >= state.end {
        status.push_str(" · end");
    } else if state.paused {
        status.push_str(" · paused");
    }
    line.spans.push(Span::raw(status));
    line
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
    for (_, item) in app.items() {
        for (class, n) in &item.errors_by_class {
            *errors.entry(*class).or_default() += n;
        }
    }
    let retried: u64 = app
        .items()
        .map(|(_, item)| item.retries_by_class.values().sum::<u64>())
        .sum();
    let retried = if retried > 0 {
        format!(" · retried {retried}")
    } else {
        String::new()
    };
    let errors = if errors.is_empty() {
        "no errors".to_string()
    } else {
        let parts: Vec<String> = errors
            .iter()
            .map(|(c, n)| format!("{} {n}", c.as_str()))
            .collect();
        format!("errors: {}", parts.join(", "))
    };
    // A failure, or calls held back, is said where the progress is, as an error.
    let (title, alert) = match &app.phase {
        Phase::Failed(message) => (format!(" progress · {} ", inert(message)), false),
        _ if !app.stopped.is_empty() => (
            format!(" stopped · {} ", inert(&app.stopped.join("; "))),
            true,
        ),
        _ => (" progress ".to_string(), false),
    };
    let (title, border) = if alert {
        (Line::styled(title, app.theme.error), app.theme.error)
    } else {
        (Line::from(title), app.theme.border)
    };
    let eta = match app.phase {
        // An estimate too long for a duration is no estimate: none is shown.
        Phase::Running if !app.paused && rate > 0.0 && done < app.planned_calls => {
            Duration::try_from_secs_f64((app.planned_calls - done) as f64 / rate)
                .map_or(String::new(), |left| format!(" · eta {}", clock(left)))
        }
        _ => String::new(),
    };
    let in_flight = if app.in_flight() {
        format!(" · {} in flight", app.live.in_flight)
    } else {
        String::new()
    };
    let label = format!(
        "{done}/{} calls · {rate:.0} calls/s{eta}{in_flight} · {errors}{retried}",
        app.planned_calls
    );
    let gauge = Gauge::default()
        .block(Block::bordered().title(title).border_style(border))
        .gauge_style(app.theme.gauge)
        .ratio((done as f64 / total as f64).clamp(0.0, 1.0))
        .label(label);
    frame.render_widget(gauge, area);
}

/// The tabs, then the archive path as far as it fits.
fn render_footer(frame: &mut Frame, app: &App, area: Rect) {
    let mut spans = vec![Span::raw(" ")];
    for (n, tab) in Tab::ALL.iter().enumerate() {
        let label = format!(" {} {} ", n + 1, tab.label());
        if *tab == app.tab {
            spans.push(Span::styled(label, app.theme.selected));
        } else {
            spans.push(Span::styled(label, app.theme.muted));
        }
    }
    spans.push(Span::styled(" · ? keys", app.theme.muted));
    if let Some(archive) = &app.archive {
        spans.push(Span::styled(
            format!(" · {}", inert(&archive.display().to_string())),
            app.theme.muted,
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

pub(super) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}

/// Every binding of the key table, grouped by where it applies; scrolls when taller than
/// the screen.
fn render_help(frame: &mut Frame, app: &App, area: Rect) {
    let mut lines: Vec<Line> = Vec::new();
    if app.replay.is_some() {
        let inert: Vec<String> = KEYS
            .iter()
            .filter(|b| b.scope == Scope::Live && in_replay(b.command) == InReplay::Inert)
            .map(|b| b.key_label())
            .collect();
        lines.push(Line::from(Span::styled(
            format!(
                " a replay: no calls are sent; {} do nothing here",
                inert.join(", ")
            ),
            app.theme.warning,
        )));
    }
    let scopes = [
        Scope::Global,
        Scope::Live,
        Scope::Diff,
        Scope::Reader,
        Scope::Picker,
        Scope::Edit,
        Scope::Sessions,
        Scope::Compared,
        Scope::Help,
        Scope::Confirm,
    ];
    for scope in scopes {
        lines.push(Line::from(Span::styled(
            format!(" {}", scope.title()),
            app.theme.accent.add_modifier(Modifier::BOLD),
        )));
        let shown = |b: &&Binding| app.replay.is_some() || !replay_only(b.command);
        for b in KEYS.iter().filter(|b| b.scope == scope).filter(shown) {
            let key = Span::styled(format!("  {:<7}", b.key_label()), app.theme.title);
            let help = match app.replay.map(|_| in_replay(b.command)) {
                None | Some(InReplay::Same) => Span::raw(b.help),
                Some(InReplay::Instead(help)) => Span::raw(help),
                Some(InReplay::Inert) => {
                    Span::styled(format!("{} (not in a replay)", b.help), app.theme.muted)
                }
            };
            lines.push(Line::from(vec![key, help]));
        }
    }
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = centered(area, 72, height);
    let inner_height = height.saturating_sub(2) as usize;
    let last_top = lines.len().saturating_sub(inner_height);
    let top = app.help_scroll.min(last_top);
    let title = if last_top > 0 {
        format!(
            " keys {}–{} of {} · ↑/↓ scroll · any other key closes ",
            top + 1,
            (top + inner_height).min(lines.len()),
            lines.len()
        )
    } else {
        " keys · any key closes ".to_string()
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines.split_off(top)).block(
            Block::bordered()
                .title(title)
                .border_style(app.theme.border),
        ),
        popup,
    );
}

fn render_confirm(frame: &mut Frame, app: &App, area: Rect) {
    let keys: Vec<String> = KEYS
        .iter()
        .filter(|b| b.scope == Scope::Confirm)
        .map(|b| b.key_label())
        .collect();
    let popup = centered(area, 52, 4);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(" Calls are in flight. Stop the campaign and quit?"),
            Line::from(format!(" {}", keys.join(" / "))),
        ])
        .style(app.theme.text)
        .block(
            Block::bordered()
                .title(" quit ")
                .border_style(app.theme.warning),
        ),
        popup,
    );
}
