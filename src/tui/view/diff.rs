//! The token-level diff of the selected call against its base: a header, the call list (when
//! wide) and the diff text. The text is word-wrapped lazily: only the logical line holding the
//! scroll anchor and the rows on screen are laid out, so a long output costs what fits.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::analysis::ItemSnapshot;
use crate::text::inert;
use crate::tui::diff::{cluster_index, DiffState, Op, Scroll, Segment, Selected, TokenDiff};
use crate::tui::state::App;
use crate::tui::theme::Theme;

/// From this width the call list is shown beside the text.
const LIST_MIN_WIDTH: u16 = 100;
const LIST_WIDTH: u16 = 18;

/// The token-level diff of the selected call against its base.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let state = &app.diff;
    let item = app
        .shown_item()
        .map(|(_, item)| item)
        .filter(|item| state.item() == Some(item.item.as_str()));
    let (Some(item), Some(sel), Some(diff)) = (item, state.selected(), state.diff()) else {
        let message = match app.shown_item() {
            Some((_, item)) if item.calls > 0 && item.call_clusters.is_empty() => {
                format!(" no successful call yet ({} failed)", item.errors)
            }
            _ => " waiting for the first answer…".to_string(),
        };
        frame.render_widget(Paragraph::new(message).style(app.theme.muted), head);
        frame.render_widget(
            Block::bordered()
                .title(" diff ")
                .border_style(app.theme.border),
            body,
        );
        return;
    };
    let (mut pair, differences) = header(item, state, sel, diff);
    if app.targets.len() > 1 {
        let target = app.targets.get(app.target).map_or("", String::as_str);
        pair = format!("{} · {pair}", inert(target));
    }
    let full = format!(" {pair} · {differences}");
    // Narrow: the pair stays in the header, the differences move to the text's title.
    let fits = full.width() <= usize::from(head.width);
    let head_text = if fits { full } else { format!(" {pair}") };
    frame.render_widget(Paragraph::new(head_text).style(app.theme.title), head);
    let title = if fits {
        legend(&app.theme)
    } else {
        Line::from(format!(" {differences} "))
    };
    let text_area = if body.width >= LIST_MIN_WIDTH {
        let [list, text] =
            Layout::horizontal([Constraint::Length(LIST_WIDTH), Constraint::Min(1)]).areas(body);
        render_calls(frame, list, app, item, sel, diff);
        text
    } else {
        body
    };
    let block = Block::bordered()
        .title(title)
        .border_style(app.theme.border);
    let inner = block.inner(text_area);
    frame.render_widget(block, text_area);
    let wrap = Wrap {
        diff,
        width: usize::from(inner.width).max(1),
        color: app.theme.uses_color(),
        theme: &app.theme,
        current: state.current,
    };
    let lines = if diff.len == 0 {
        vec![Line::styled("(empty output)", app.theme.muted)]
    } else {
        window(&wrap, state.scroll, usize::from(inner.height))
    };
    frame.render_widget(Paragraph::new(lines), inner);
}

/// "call 17 (#3, 12 calls) vs modal (#0, 812 calls)" and "4 differences · first at token 37 ·
/// difference 2/4" (or "identical to the base").
fn header(
    item: &ItemSnapshot,
    state: &DiffState,
    sel: Selected,
    diff: &TokenDiff,
) -> (String, String) {
    let (base_hint, call_hint) = state.cluster_indices();
    let count = |id: u32, hint: usize| {
        let n = cluster_index(item, id, hint).map_or(0, |i| item.clusters[i].count);
        if n == 1 {
            "1 call".to_string()
        } else {
            format!("{n} calls")
        }
    };
    let call = format!(
        "call {} (#{}, {})",
        sel.call,
        diff.call_id,
        count(diff.call_id, call_hint)
    );
    let base_count = count(diff.base_id, base_hint);
    let base = match state.base_call() {
        Some(b) => format!("call {} (#{}, {base_count})", b.call, diff.base_id),
        None => format!("modal (#{}, {base_count})", diff.base_id),
    };
    let n = diff.hunks.len();
    let differences = match diff.hunks.first() {
        None => "identical to the base".to_string(),
        Some(first) => format!(
            "{n} difference{} · first at token {} · difference {}/{n}",
            if n == 1 { "" } else { "s" },
            first.call_token,
            state
                .current
                .map_or("–".to_string(), |c| (c + 1).to_string()),
        ),
    };
    (format!("{call} vs {base}"), differences)
}

/// The text pane's title: what the colours (or markers) mean and the keys.
fn legend(theme: &Theme) -> Line<'static> {
    let (insert, delete) = if theme.uses_color() {
        ("inserted", "deleted")
    } else {
        ("[+inserted+]", "[-deleted-]")
    };
    Line::from(vec![
        Span::raw(" "),
        Span::styled(insert, theme.diff_insert()),
        Span::raw(" "),
        Span::styled(delete, theme.diff_delete()),
        Span::styled(" · n/N difference · PgUp/PgDn ", theme.muted),
    ])
}

/// The calls in arrival order around the selected one: `b` marks the base call, `=` a call
/// whose output is the base's.
fn render_calls(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    item: &ItemSnapshot,
    sel: Selected,
    diff: &TokenDiff,
) {
    let n = item.call_clusters.len();
    let block = Block::bordered()
        .title(format!(" calls {n} "))
        .border_style(app.theme.border);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = usize::from(inner.height);
    let first = sel.pos.saturating_sub(rows / 2).min(n.saturating_sub(rows));
    let base_pos = app.diff.base_call().map(|b| b.pos);
    let lines: Vec<Line> = item
        .call_clusters
        .iter()
        .enumerate()
        .skip(first)
        .take(rows)
        .map(|(pos, &(call, cluster))| {
            let mark = if Some(pos) == base_pos {
                'b'
            } else if cluster == diff.base_id {
                '='
            } else {
                ' '
            };
            let style = if pos == sel.pos {
                app.theme.selected
            } else if mark == ' ' {
                app.theme.text
            } else {
                app.theme.muted
            };
            Line::styled(format!("{mark}{call:>7} #{cluster:<6}"), style)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

/// A place in the shown stream: byte `byte` of the token at shown position `token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    token: usize,
    byte: usize,
}

const ORIGIN: Pos = Pos { token: 0, byte: 0 };

/// Where a row begins; `soft` when it continues a wrapped line (leading spaces of equal text
/// are then not drawn).
#[derive(Debug, Clone, Copy)]
struct Start {
    pos: Pos,
    soft: bool,
}

struct Wrap<'a> {
    diff: &'a TokenDiff,
    width: usize,
    color: bool,
    theme: &'a Theme,
    current: Option<usize>,
}

impl<'a> Wrap<'a> {
    fn style(&self, segment: &Segment) -> Style {
        let style = match segment.op {
            Op::Equal => self.theme.text,
            Op::Insert => self.theme.diff_insert(),
            Op::Delete => self.theme.diff_delete(),
        };
        if segment.hunk.is_some() && segment.hunk == self.current {
            style.add_modifier(Modifier::UNDERLINED | Modifier::BOLD)
        } else {
            style
        }
    }

    /// Lays out the row beginning at `start`, into `out` when given; returns where the next
    /// row begins (at the stream's end: its length), or None when `start` is past the end.
    fn row(&self, start: Start, mut out: Option<&mut Vec<Span<'a>>>) -> Option<Start> {
        let d = self.diff;
        let mut seg_index = d.segment_at(start.pos.token)?;
        let mut pos = start.pos;
        let mut col = 0;
        loop {
            if pos.token >= d.len {
                return Some(Start { pos, soft: false });
            }
            while d.segments[seg_index].at + d.segments[seg_index].len() <= pos.token {
                seg_index += 1;
            }
            let seg = &d.segments[seg_index];
            let text = d.token(seg, pos.token - seg.at);
            let rest = text.get(pos.byte..).unwrap_or("");
            let changed = seg.op != Op::Equal;
            let newline = rest.find('\n');
            let piece = match newline {
                Some(i) => rest[..i].strip_suffix('\r').unwrap_or(&rest[..i]),
                None => rest,
            };
            let lead = if col == 0 && start.soft && !changed {
                piece.len() - piece.trim_start_matches(' ').len()
            } else {
                0
            };
            let body = &piece[lead..];
            let (open, close) = match (self.color, seg.op) {
                (false, Op::Insert) => ("[+", "+]"),
                (false, Op::Delete) => ("[-", "-]"),
                _ => ("", ""),
            };
            let open = if pos.byte == 0 && pos.token == seg.at {
                open
            } else {
                ""
            };
            let ends_token = newline.is_none_or(|i| i + 1 == rest.len());
            let close = if ends_token && pos.token + 1 == seg.at + seg.len() {
                close
            } else {
                ""
            };
            // A changed line break stays visible.
            let mark = if changed && newline.is_some() {
                "↵"
            } else {
                ""
            };
            let shown = inert(body);
            let w = open.width() + shown.width() + mark.width() + close.width();
            if col > 0 && col + w > self.width {
                return Some(Start { pos, soft: true });
            }
            let style = self.style(seg);
            if col + w > self.width && !body.is_empty() {
                // Wider than a row: broken by characters.
                let room = self.width.saturating_sub(open.width());
                let (mut used, mut bytes) = (0, 0);
                for c in body.chars() {
                    let cw = if c.is_control() {
                        1
                    } else {
                        c.width().unwrap_or(0)
                    };
                    if used + cw > room && bytes > 0 {
                        break;
                    }
                    used += cw;
                    bytes += c.len_utf8();
                }
                if let Some(out) = out.as_mut() {
                    out.push(Span::styled(open, style));
                    out.push(Span::styled(inert(&body[..bytes]), style));
                }
                let byte = pos.byte + lead + bytes;
                return Some(Start {
                    pos: Pos {
                        token: pos.token,
                        byte,
                    },
                    soft: true,
                });
            }
            if let Some(out) = out.as_mut() {
                if !open.is_empty() {
                    out.push(Span::styled(open, style));
                }
                out.push(Span::styled(shown, style));
                for part in [mark, close] {
                    if !part.is_empty() {
                        out.push(Span::styled(part, style));
                    }
                }
            }
            col += w;
            match newline {
                Some(i) => {
                    let byte = pos.byte + i + 1;
                    let pos = if byte >= text.len() {
                        Pos {
                            token: pos.token + 1,
                            byte: 0,
                        }
                    } else {
                        Pos {
                            token: pos.token,
                            byte,
                        }
                    };
                    return Some(Start { pos, soft: false });
                }
                None => {
                    pos = Pos {
                        token: pos.token + 1,
                        byte: 0,
                    }
                }
            }
        }
    }

    /// The next row start after `start`, None at the end of the stream.
    fn next(&self, start: Start) -> Option<Start> {
        self.row(start, None)
            .filter(|s| s.pos.token < self.diff.len)
    }
}

/// The text of the shown token at `token`.
fn text_at(d: &TokenDiff, token: usize) -> &str {
    d.shown(token).map_or("", |(_, t)| t)
}

/// The position after `token`'s byte `i` (a line break).
fn after(d: &TokenDiff, token: usize, i: usize) -> Pos {
    if i + 1 >= text_at(d, token).len() {
        Pos {
            token: token + 1,
            byte: 0,
        }
    } else {
        Pos { token, byte: i + 1 }
    }
}

/// The start of the logical line holding `p`: just after the last line break before it.
fn line_start(d: &TokenDiff, p: Pos) -> Pos {
    let here = text_at(d, p.token)
        .get(..p.byte)
        .and_then(|s| s.rfind('\n'));
    if let Some(i) = here {
        return after(d, p.token, i);
    }
    let k = d.line_breaks.partition_point(|&t| t < p.token);
    let Some(&t) = k.checked_sub(1).and_then(|k| d.line_breaks.get(k)) else {
        return ORIGIN;
    };
    text_at(d, t).rfind('\n').map_or(ORIGIN, |i| after(d, t, i))
}

/// Prepends the rows of the logical line before `starts[0]`; returns how many (0 at the top).
fn grow_back(wrap: &Wrap, starts: &mut Vec<Start>) -> usize {
    let first = starts[0].pos;
    if first == ORIGIN {
        return 0;
    }
    // The line break that ends the previous line sits just before `first`.
    let brk = if first.byte > 0 {
        Pos {
            token: first.token,
            byte: first.byte - 1,
        }
    } else {
        let t = first.token - 1;
        Pos {
            token: t,
            byte: text_at(wrap.diff, t).rfind('\n').unwrap_or(0),
        }
    };
    let mut rows = vec![Start {
        pos: line_start(wrap.diff, brk),
        soft: false,
    }];
    while let Some(next) = rows.last().and_then(|&s| wrap.next(s)) {
        if next.pos >= first {
            break;
        }
        rows.push(next);
    }
    let added = rows.len();
    starts.splice(0..0, rows);
    added
}

/// The rows on screen for `scroll`, `height` of them at most.
fn window<'a>(wrap: &Wrap<'a>, scroll: Scroll, height: usize) -> Vec<Line<'a>> {
    let d = wrap.diff;
    if d.len == 0 || height == 0 {
        return Vec::new();
    }
    let anchor = Pos {
        token: scroll.anchor.min(d.len - 1),
        byte: 0,
    };
    let mut starts = vec![Start {
        pos: line_start(d, anchor),
        soft: false,
    }];
    let mut next = wrap.next(starts[0]);
    while let Some(n) = next.filter(|n| n.pos <= anchor) {
        starts.push(n);
        next = wrap.next(n);
    }
    let offset = i64::from(scroll.rows) + i64::from(scroll.pages) * height as i64;
    let mut top = (starts.len() - 1) as i64 + offset;
    while top < 0 {
        let added = grow_back(wrap, &mut starts);
        if added == 0 {
            top = 0;
        }
        top += added as i64;
    }
    while (starts.len() as i64) < top + height as i64 {
        let Some(n) = next else {
            break;
        };
        starts.push(n);
        next = wrap.next(n);
    }
    // Past the end: the last rows fill the window.
    if (starts.len() as i64) < top + height as i64 {
        let mut want = starts.len() as i64 - height as i64;
        while want < 0 {
            let added = grow_back(wrap, &mut starts);
            if added == 0 {
                break;
            }
            want += added as i64;
        }
        top = want.max(0);
    }
    let top = top as usize;
    starts
        .iter()
        .skip(top)
        .take(height)
        .map(|&start| {
            let mut spans = Vec::new();
            wrap.row(start, Some(&mut spans));
            Line::from(spans)
        })
        .collect()
}

#[cfg(test)]
mod tests;
