use ratatui::layout::Rect;
use ratatui::Frame;

use crate::tui::state::App;

/// The protocol list and the editor pane.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    super::pending(frame, area, app, "protocols");
}
