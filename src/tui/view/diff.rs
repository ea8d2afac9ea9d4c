use ratatui::layout::Rect;
use ratatui::Frame;

use crate::tui::state::App;

/// The token-level diff of the selected call against its base.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    super::pending(frame, area, app, "diff");
}
