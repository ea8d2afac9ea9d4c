//! The sessions screen: the data directory's saved sessions in the columns of `reprise
//! sessions`, newest first, marks for compare; or the comparison of two, scrolled.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use crate::archive::{short_identity, SessionInfo};
use crate::text::inert;
use crate::tui::browser::{BrowserState, Compared};
use crate::tui::keys::{Command, Scope, KEYS};
use crate::tui::state::App;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let browser = &app.browser;
    let [title, body, message, hint] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(u16::from(browser.message.is_some())),
        Constraint::Length(1),
    ])
    .areas(area);
    let dir = browser.dir.as_ref().map_or_else(String::new, |d| {
        inert(&d.display().to_string()).into_owned()
    });
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" reprise ", app.theme.title),
            Span::raw(format!("saved sessions in {dir}")),
        ])),
        title,
    );
    match &browser.compared {
        Some(compared) => render_compared(frame, body, app, compared),
        None => render_list(frame, body, app, browser),
    }
    if let Some(m) = &browser.message {
        frame.render_widget(
            Paragraph::new(inert(m).into_owned())
                .style(app.theme.error)
                .wrap(Wrap { trim: true }),
            message,
        );
    }
    frame.render_widget(
        Paragraph::new(hint_line(browser)).style(app.theme.muted),
        hint,
    );
}

/// One session's cells: time, protocol, short identity, calls, outcome, consistency, file.
fn cells(s: &SessionInfo) -> [String; 7] {
    [
        s.started_at
            .chars()
            .take(19)
            .collect::<String>()
            .replace('T', " "),
        s.protocol_name.as_deref().unwrap_or("?").to_string(),
        short_identity(&s.identity).to_string(),
        s.records.to_string(),
        s.outcome.map_or("unfinished", |o| o.as_str()).to_string(),
        s.summary
            .as_ref()
            .map(crate::report::consistency)
            .unwrap_or_else(|| "—".into()),
        s.path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
    ]
    // Everything here comes from files.
    .map(|c| inert(&c).into_owned())
}

fn render_list(frame: &mut Frame, area: Rect, app: &App, browser: &BrowserState) {
    let block = Block::bordered()
        .title(format!(
            " sessions · {} marked for compare ",
            browser.marked.len()
        ))
        .border_style(app.theme.accent);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if browser.sessions.is_empty() {
        frame.render_widget(
            Paragraph::new(" no sessions here yet: a campaign launched from the picker adds one")
                .style(app.theme.muted),
            inner,
        );
        return;
    }
    let header = [
        "started (UTC)",
        "protocol",
        "identity",
        "calls",
        "outcome",
        "consistency",
        "file",
    ];
    let rows: Vec<[String; 7]> = browser.sessions.iter().map(cells).collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let join = |row: &[String]| {
        row.iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut lines = vec![Line::styled(
        format!("    {}", join(&header)),
        app.theme.title,
    )];
    let height = (inner.height as usize).saturating_sub(1).max(1);
    // Only the visible window, scrolled so the selection shows.
    let top = browser.selected.saturating_sub(height - 1);
    for (i, (row, session)) in rows.iter().zip(&browser.sessions).enumerate() {
        if i < top || i >= top + height {
            continue;
        }
        let mark = if browser.is_marked(&session.path) {
            "[x] "
        } else {
            "[ ] "
        };
        let text = format!("{mark}{}", join(row));
        lines.push(if i == browser.selected {
            Line::styled(text, app.theme.selected)
        } else {
            Line::raw(text)
        });
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn render_compared(frame: &mut Frame, area: Rect, app: &App, compared: &Compared) {
    let lines: Vec<Line> = compared
        .text
        .lines()
        .skip(compared.scroll)
        .map(|l| Line::raw(inert(l).into_owned()))
        .collect();
    let total = compared.text.lines().count();
    let block = Block::bordered()
        .title(format!(
            " compare · line {} of {total} ",
            (compared.scroll + 1).min(total)
        ))
        .border_style(app.theme.accent);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The key of `command` in `scope`, from the key table (so the hint cannot drift from it).
fn key(scope: Scope, command: Command) -> String {
    KEYS.iter()
        .find(|b| b.scope == scope && b.command == command)
        .map_or_else(String::new, |b| b.key_label())
}

fn hint_line(browser: &BrowserState) -> String {
    use Scope::{Compared, Global, Sessions};
    let help = key(Global, Command::ToggleHelp);
    let quit = key(Global, Command::Quit);
    if browser.compared.is_some() {
        format!(
            " ↑/↓ {}/{} scroll · {} back to the list · {help} keys · {quit} quit",
            key(Compared, Command::PageUp),
            key(Compared, Command::PageDown),
            key(Compared, Command::CloseOverlay),
        )
    } else {
        format!(
            " {} open · {} mark · {} compare the two marked · {} picker · {help} keys · {quit} quit",
            key(Sessions, Command::Activate),
            key(Sessions, Command::Mark),
            key(Sessions, Command::Compare),
            key(Sessions, Command::CloseOverlay),
        )
    }
}
