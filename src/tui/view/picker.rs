//! The picker screen: the protocol list and the editor pane, side by side when wide, stacked
//! at 80 columns; a hint line with the launch key; the last error or notice.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use crate::protocol::samples::DEFAULT_DEMO;
use crate::text::inert;
use crate::tui::keys::{Command, Scope, KEYS};
use crate::tui::picker::{Entry, Field, Focus, Origin, PickerState, PromptSlot};
use crate::tui::state::App;

/// Side by side from this width; stacked below it.
const WIDE: u16 = 100;

/// The protocol list and the editor pane.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let picker = &app.picker;
    let message = picker.error.is_some() || picker.notice.is_some();
    let [title, body, message_area, hint] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(6),
        Constraint::Length(if message { 2 } else { 0 }),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" reprise ", app.theme.title),
            Span::raw("choose a protocol, adjust it, launch"),
        ])),
        title,
    );
    let (list, editor) = if area.width >= WIDE {
        let [list, editor] =
            Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)])
                .areas(body);
        (list, editor)
    } else {
        // Stacked: the list gets what its entries need, up to half the body.
        let rows = (picker.entries.len() as u16 + 2).clamp(4, body.height / 2);
        let [list, editor] =
            Layout::vertical([Constraint::Length(rows), Constraint::Min(4)]).areas(body);
        (list, editor)
    };
    render_list(frame, list, app);
    render_editor(frame, editor, app);
    if let Some(error) = &picker.error {
        frame.render_widget(
            Paragraph::new(inert(error).into_owned())
                .style(app.theme.error)
                .wrap(Wrap { trim: true }),
            message_area,
        );
    } else if let Some(notice) = &picker.notice {
        frame.render_widget(
            Paragraph::new(inert(notice).into_owned())
                .style(app.theme.accent)
                .wrap(Wrap { trim: true }),
            message_area,
        );
    }
    frame.render_widget(
        Paragraph::new(hint_line(picker)).style(app.theme.muted),
        hint,
    );
}

fn pane<'a>(app: &App, title: String, focused: bool) -> Block<'a> {
    Block::bordered().title(title).border_style(if focused {
        app.theme.accent
    } else {
        app.theme.border
    })
}

fn render_list(frame: &mut Frame, area: Rect, app: &App) {
    let picker = &app.picker;
    let block = pane(app, " protocols ".into(), picker.focus == Focus::List);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let height = inner.height as usize;
    if height == 0 {
        return;
    }
    // Only the visible window, scrolled so the selection shows.
    let top = picker.selected.saturating_sub(height - 1);
    let lines: Vec<Line> = picker
        .entries
        .iter()
        .enumerate()
        .skip(top)
        .take(height)
        .map(|(i, entry)| list_line(app, entry, i == picker.selected, inner.width))
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn list_line<'a>(app: &App, entry: &'a Entry, selected: bool, width: u16) -> Line<'a> {
    let theme = &app.theme;
    let (tag, tag_style) = match (&entry.parsed, entry.origin) {
        (Err(_), _) => ("✗ error", theme.error),
        (Ok(_), Origin::Sample) if entry.name == DEFAULT_DEMO => ("demo", theme.accent),
        (Ok(_), Origin::Sample) => ("sample", theme.muted),
        (Ok(_), Origin::User) => ("yours", theme.accent),
    };
    let edited = if entry.edited() { "*" } else { " " };
    let name = format!("{edited}{} ", inert(&entry.name));
    let used = name.chars().count() + tag.chars().count() + 3;
    let room = (width as usize).saturating_sub(used);
    let mut spans = vec![
        Span::styled(name, theme.title),
        Span::styled(tag, tag_style),
    ];
    if room > 4 && !entry.description.is_empty() {
        spans.push(Span::styled(
            format!(" · {}", clip(&inert(&entry.description), room)),
            theme.muted,
        ));
    }
    let line = Line::from(spans);
    if selected {
        // The selection wins over the parts' own styles so it reads as one bar.
        Line::from(
            line.spans
                .into_iter()
                .map(|s| Span::styled(s.content, theme.selected))
                .collect::<Vec<_>>(),
        )
        .style(theme.selected)
    } else {
        line
    }
}

/// `s` cut to `width` characters, with an ellipsis when cut.
fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn render_editor(frame: &mut Frame, area: Rect, app: &App) {
    let picker = &app.picker;
    let focused = picker.focus == Focus::Editor;
    let Some(entry) = picker.current() else {
        frame.render_widget(
            Paragraph::new("no protocols").block(pane(app, " editor ".into(), focused)),
            area,
        );
        return;
    };
    let origin = match entry.origin {
        Origin::Sample => "sample",
        Origin::User => "yours",
    };
    let edited = if entry.edited() { " · edited" } else { "" };
    let block = pane(
        app,
        format!(" {} · {origin}{edited} ", inert(&entry.name)),
        focused,
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if let Err(e) = &entry.parsed {
        frame.render_widget(
            Paragraph::new(vec![
                Line::styled("This file does not load:", app.theme.error),
                Line::styled(inert(e).into_owned(), app.theme.error),
            ])
            .wrap(Wrap { trim: true }),
            inner,
        );
        return;
    }
    let rows = Field::ALL.len() as u16;
    let [fields, rest] =
        Layout::vertical([Constraint::Length(rows + 1), Constraint::Min(0)]).areas(inner);
    let lines: Vec<Line> = Field::ALL
        .iter()
        .map(|f| field_line(app, entry, *f, fields.width))
        .collect();
    frame.render_widget(Paragraph::new(lines), fields);
    render_details(frame, rest, app, entry);
}

fn field_line<'a>(app: &App, entry: &Entry, field: Field, width: u16) -> Line<'a> {
    let picker = &app.picker;
    let theme = &app.theme;
    let on = picker.focus == Focus::Editor && picker.field == field;
    let label = format!(" {:<12}", field.label());
    let room = (width as usize).saturating_sub(label.chars().count() + 2);
    let (value, style) = match (&picker.editing, on) {
        (Some(typed), true) => {
            // The end of what is typed, where the next character goes.
            let shown = inert(typed);
            let n = shown.chars().count();
            let tail: String = shown
                .chars()
                .skip(n.saturating_sub(room.saturating_sub(1)))
                .collect();
            (format!("{tail}▏"), theme.accent)
        }
        _ => field_value(app, entry, field, room),
    };
    let value_style = if on && picker.editing.is_none() {
        theme.selected
    } else {
        style
    };
    Line::from(vec![
        Span::styled(label, if on { theme.title } else { theme.text }),
        Span::styled(value, value_style),
    ])
}

/// The value shown for `field`, and how it is styled (muted when absent).
fn field_value(app: &App, entry: &Entry, field: Field, room: usize) -> (String, Style) {
    let value = entry.value(field);
    let muted = app.theme.muted;
    match field {
        Field::Prompt => match entry.prompt_slot {
            Some(PromptSlot::Items(n)) => {
                let names = match &entry.parsed {
                    Ok(p) => p
                        .items
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    Err(_) => String::new(),
                };
                (
                    clip(&inert(&format!("{n} items vary: {names}")), room),
                    muted,
                )
            }
            // One line: the line breaks of a long prompt show as ↵.
            _ => (
                clip(&inert(&value.trim().replace('\n', " ↵ ")), room),
                app.theme.text,
            ),
        },
        Field::Temperature if value.is_empty() => ("not sent (model default)".into(), muted),
        Field::Seed if value.is_empty() => ("none".into(), muted),
        Field::Target => {
            let n = entry.target_choices().len();
            let more = if n > 1 {
                format!("  ({n} choices, Enter: next)")
            } else {
                String::new()
            };
            (
                clip(&inert(&format!("{value}{more}")), room),
                app.theme.text,
            )
        }
        _ => (clip(&value, room), app.theme.text),
    }
}

/// Below the fields: the full prompt (or the first item's, for a battery) and the description.
fn render_details(frame: &mut Frame, area: Rect, app: &App, entry: &Entry) {
    if area.height == 0 {
        return;
    }
    let Ok(protocol) = &entry.parsed else {
        return;
    };
    let theme = &app.theme;
    let mut lines: Vec<Line> = Vec::new();
    if let Some(system) = &protocol.system {
        lines.push(Line::from(vec![
            Span::styled(" system  ", theme.muted),
            Span::raw(inert(system).into_owned()),
        ]));
    }
    let first = protocol.items.first();
    let heading = match entry.prompt_slot {
        Some(PromptSlot::Items(n)) => format!(
            " item 1 of {n} ({}); the others vary:",
            first.map_or("", |i| i.name.as_str())
        ),
        _ => " prompt:".into(),
    };
    lines.push(Line::styled(heading, theme.muted));
    // Bounded: a long prompt costs no more than the lines that fit.
    let budget = area.height as usize;
    for text_line in first.map_or("", |i| i.user.as_str()).lines().take(budget) {
        lines.push(Line::from(format!("  {}", inert(text_line))));
    }
    if !entry.description.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::styled(
            format!(" {}", inert(&entry.description)),
            theme.muted,
        ));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

/// The key of `command` in `scope`, from the key table (so the hint cannot drift from it).
fn key(scope: Scope, command: Command) -> String {
    KEYS.iter()
        .find(|b| b.scope == scope && b.command == command)
        .map_or_else(String::new, |b| b.key_label())
}

fn hint_line(picker: &PickerState) -> String {
    use Scope::{Edit, Global, Picker};
    let enter = key(Picker, Command::Activate);
    let tab = key(Picker, Command::FocusNext);
    let save = key(Picker, Command::Save);
    let help = key(Global, Command::ToggleHelp);
    let quit = key(Global, Command::Quit);
    if picker.editing.is_some() {
        format!(
            " typing · {} keep · {} cancel",
            key(Edit, Command::CommitEdit),
            key(Edit, Command::CancelEdit)
        )
    } else if picker.focus == Focus::List {
        format!(
            " {enter} launch · {tab} edit the fields · {save} save · {} sessions · {help} keys · {quit} quit",
            key(Picker, Command::Browse)
        )
    } else {
        format!(
            " ↑/↓ field · {enter} edit · {} launch · {save} save · {tab} list · {help} keys · {quit} quit",
            key(Picker, Command::Launch)
        )
    }
}
