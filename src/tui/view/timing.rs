use ratatui::layout::Rect;
use ratatui::Frame;

use crate::tui::state::App;

/// Latency histogram and throughput sparkline.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    super::pending(frame, area, app, "timing");
}
