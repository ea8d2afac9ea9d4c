use ratatui::layout::Rect;
use ratatui::Frame;

use crate::tui::state::App;

/// The divergence heatmap and similarity matrix of one target's shown item.
pub fn render(frame: &mut Frame, area: Rect, app: &App, _target: usize) {
    super::pending(frame, area, app, "divergence");
}
