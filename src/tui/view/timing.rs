//! The timing tab: the latency histogram of the item shown (per target) with its percentiles,
//! and the session's throughput as a sparkline. Everything drawn is read off the snapshot.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Sparkline};
use ratatui::Frame;

use crate::analysis::{ItemSnapshot, LatencyBucket};
use crate::text::inert;
use crate::tui::state::{App, Phase};

/// Eighth blocks, from one eighth to full.
const EIGHTHS: [&str; 8] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];
/// Drawn through the empty cells above the bars at a percentile.
const MARKER: &str = "┊";

/// Latency histogram and throughput sparkline.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    // The sparkline gets 3 rows when there is room, 1 when short, none when tiny.
    let spark = match area.height {
        h if h >= 14 => 5,
        h if h >= 9 => 3,
        _ => 0,
    };
    let [latency, throughput] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(spark)]).areas(area);
    super::per_target(frame, latency, app, render_latency);
    if spark > 0 {
        render_throughput(frame, throughput, app);
    }
}

/// The latency panel for target number `target`.
fn render_latency(frame: &mut Frame, area: Rect, app: &App, target: usize) {
    let theme = &app.theme;
    let shown = app.item_of(target);
    let title = match shown {
        Some((t, item)) => format!(" latency · {} · {} ", inert(t), inert(&item.item)),
        None => " latency ".to_string(),
    };
    let block = Block::bordered()
        .title(Span::styled(title, theme.title))
        .border_style(theme.border);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let item = match shown {
        Some((_, item)) if !item.latency_histogram.is_empty() => item,
        _ => {
            let text = if shown.is_some() {
                "no successful calls yet"
            } else {
                "no calls yet"
            };
            frame.render_widget(Paragraph::new(text).style(theme.muted), inner);
            return;
        }
    };
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let [stats, rest] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    frame.render_widget(Paragraph::new(stats_line(app, item)), stats);
    // Chart rows, then (room permitting) the percentile labels and the axis.
    let (chart_rows, labels, axis) = match rest.height {
        0 => return,
        1 => (1, false, false),
        2 => (1, false, true),
        h => (h - 2, true, true),
    };
    let chart = Rect {
        height: chart_rows,
        ..rest
    };
    let columns = columns(&item.latency_histogram, chart.width);
    let buf = frame.buffer_mut();
    draw_bars(buf, chart, &columns, theme.bar);
    let marks = percentile_marks(item, &columns);
    for &(_, x) in &marks {
        for y in chart.top()..chart.bottom() {
            let cell = &mut buf[(chart.x + x, y)];
            if cell.symbol() == " " {
                cell.set_symbol(MARKER).set_style(theme.accent);
            }
        }
    }
    let mut y = chart.bottom();
    if labels {
        draw_marks(
            buf,
            Rect {
                y,
                height: 1,
                ..rest
            },
            &marks,
            theme.accent,
        );
        y += 1;
    }
    if axis {
        draw_axis(
            buf,
            Rect {
                y,
                height: 1,
                ..rest
            },
            &columns,
            theme.muted,
        );
    }
}

fn stats_line<'a>(app: &App, item: &ItemSnapshot) -> Line<'a> {
    let theme = &app.theme;
    let l = item.latency_ms;
    let mut spans = Vec::new();
    for (name, v) in [("p50", l.p50), ("p90", l.p90), ("p99", l.p99)] {
        spans.push(Span::styled(format!("{name} "), theme.accent));
        spans.push(Span::styled(format!("{} ms  ", ms(v)), theme.text));
    }
    spans.push(Span::styled("max ", theme.muted));
    spans.push(Span::styled(format!("{} ms", ms(l.max)), theme.text));
    let n: u64 = item.latency_histogram.iter().map(|b| b.count).sum();
    spans.push(Span::styled(format!(" · {n} calls"), theme.muted));
    if let Some(tps) = item.tokens_per_s {
        spans.push(Span::styled(format!(" · {tps:.1} tok/s"), theme.muted));
    }
    Line::from(spans)
}

/// One column group of the chart: adjacent buckets merged when the chart is narrower than
/// the histogram, drawn over `x..x + width` (a gap column after it when wide enough).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Column {
    from_ms: f64,
    upto_ms: f64,
    count: u64,
    x: u16,
    width: u16,
}

fn columns(buckets: &[LatencyBucket], width: u16) -> Vec<Column> {
    if buckets.is_empty() || width == 0 {
        return Vec::new();
    }
    let per = buckets.len().div_ceil(width as usize);
    let groups: Vec<&[LatencyBucket]> = buckets.chunks(per).collect();
    let n = groups.len();
    groups
        .iter()
        .enumerate()
        .map(|(k, g)| {
            let x0 = (k * width as usize / n) as u16;
            let x1 = ((k + 1) * width as usize / n) as u16;
            let span = x1 - x0;
            // A gap between bars once they are 3 columns wide keeps them apart without colour.
            let bar = if span >= 3 { span - 1 } else { span };
            Column {
                from_ms: g[0].from_ms,
                upto_ms: g[g.len() - 1].upto_ms,
                count: g.iter().map(|b| b.count).sum(),
                x: x0,
                width: bar.max(1),
            }
        })
        .collect()
}

/// Bar heights in eighths of a row, proportional to counts; a non-empty bar shows at least
/// one eighth.
fn heights(columns: &[Column], rows: u16) -> Vec<u32> {
    let max = columns.iter().map(|c| c.count).max().unwrap_or(0).max(1);
    let full = u64::from(rows) * 8;
    columns
        .iter()
        .map(|c| {
            let h = (c.count * full + max / 2) / max;
            (if c.count > 0 { h.max(1) } else { 0 }) as u32
        })
        .collect()
}

fn draw_bars(buf: &mut Buffer, chart: Rect, columns: &[Column], style: Style) {
    for (c, h) in columns.iter().zip(heights(columns, chart.height)) {
        for row in 0..chart.height {
            // Eighths of this row (counted from the bottom) that the bar fills.
            let fill = h.saturating_sub(u32::from(row) * 8).min(8);
            if fill == 0 {
                break;
            }
            let y = chart.bottom() - 1 - row;
            for dx in 0..c.width {
                let x = chart.x + c.x + dx;
                if x < chart.right() {
                    buf[(x, y)]
                        .set_symbol(EIGHTHS[fill as usize - 1])
                        .set_style(style);
                }
            }
        }
    }
}

/// Where each percentile falls: its name and its column within the chart.
fn percentile_marks(item: &ItemSnapshot, columns: &[Column]) -> Vec<(&'static str, u16)> {
    let l = item.latency_ms;
    [("p50", l.p50), ("p90", l.p90), ("p99", l.p99)]
        .into_iter()
        .filter_map(|(name, v)| {
            let c = columns
                .iter()
                .find(|c| v <= c.upto_ms * 1.001)
                .or(columns.last())?;
            let span = c.upto_ms - c.from_ms;
            let f = if span > 0.0 {
                ((v - c.from_ms) / span).clamp(0.0, 1.0)
            } else {
                1.0
            };
            let dx = (f * f64::from(c.width.saturating_sub(1))).round() as u16;
            Some((name, c.x + dx))
        })
        .collect()
}

/// `▲p50` under its column; a label that would overlap the previous one is left out (the
/// values are in the stats line).
fn draw_marks(buf: &mut Buffer, row: Rect, marks: &[(&str, u16)], style: Style) {
    let mut free_from = 0u16;
    for &(name, x) in marks {
        let label = format!("▲{name}");
        let len = label.chars().count() as u16;
        let start = x.min(row.width.saturating_sub(len));
        if start < free_from || start + len > row.width {
            continue;
        }
        buf.set_string(row.x + start, row.y, &label, style);
        free_from = start + len + 1;
    }
}

/// Bucket bounds in ms under the bars: the lowest at the left, the highest (with its unit) at
/// the right, and as many in between as fit with a space apart.
fn draw_axis(buf: &mut Buffer, row: Rect, columns: &[Column], style: Style) {
    let (Some(first), Some(last)) = (columns.first(), columns.last()) else {
        return;
    };
    let right = format!("{} ms", ms(last.upto_ms));
    let right_len = right.chars().count() as u16;
    let right_x = row.width.saturating_sub(right_len);
    let mut free_from = 0u16;
    let mut put = |buf: &mut Buffer, x: u16, text: &str, limit: u16| {
        let len = text.chars().count() as u16;
        if x >= free_from && x + len < limit {
            buf.set_string(row.x + x, row.y, text, style);
            free_from = x + len + 2;
        }
    };
    put(buf, 0, &ms(first.from_ms), right_x);
    for c in &columns[1..] {
        put(buf, c.x, &ms(c.from_ms), right_x);
    }
    if right_len <= row.width {
        buf.set_string(row.x + right_x, row.y, &right, style);
    }
}

/// Milliseconds with three significant figures or so; seconds past 10 s.
fn ms(v: f64) -> String {
    match v {
        v if v >= 10_000.0 => format!("{:.1}s", v / 1000.0),
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v => format!("{v:.2}"),
    }
}

/// Calls completed per second over the last seconds that fit, with now and peak.
fn render_throughput(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let data: &[u32] = app
        .live
        .snapshot
        .as_ref()
        .map_or(&[], |s| s.throughput.as_slice());
    let width = area.width.saturating_sub(2) as usize;
    let visible = &data[data.len().saturating_sub(width)..];
    let title = if data.is_empty() {
        " throughput ".to_string()
    } else {
        // While calls run, the latest second is still filling: "now" is the one before.
        let now = match (&app.phase, data.len()) {
            (Phase::Running, n) if n >= 2 => data[n - 2],
            (_, n) => data[n - 1],
        };
        let peak = data.iter().copied().max().unwrap_or(0);
        let full = format!(
            " throughput · now {now} calls/s · peak {peak} calls/s · last {} s ",
            visible.len()
        );
        if full.chars().count() <= width {
            full
        } else {
            format!(" now {now}/s · peak {peak}/s · {} s ", visible.len())
        }
    };
    let block = Block::bordered()
        .title(Span::styled(title, theme.title))
        .border_style(theme.border);
    if data.is_empty() {
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(
            Paragraph::new("no calls completed yet").style(theme.muted),
            inner,
        );
        return;
    }
    let values: Vec<u64> = visible.iter().map(|&v| u64::from(v)).collect();
    frame.render_widget(
        Sparkline::default()
            .block(block)
            .data(&values)
            .style(theme.bar),
        area,
    );
}

#[cfg(test)]
#[path = "timing_tests.rs"]
mod tests;
