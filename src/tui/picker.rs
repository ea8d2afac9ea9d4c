//! The protocol picker and editor: sample protocols (embedded) and the user's own, one of them
//! loaded into an editor pane; launching hands a validated protocol to the loop.
//!
//! Skeleton: the list and the editor are being built (issue 3).

use crate::protocol::Protocol;

use super::keys::{Command, Mode};

/// What the picker asks the loop to do.
#[derive(Debug)]
pub enum PickerEffect {
    None,
    Launch(Box<Protocol>),
}

#[derive(Debug, Default)]
pub struct PickerState {
    /// A protocol the loop launches at once (given on the command line).
    pub error: Option<String>,
}

impl PickerState {
    /// The sample protocols and the user's own.
    pub fn discover() -> Self {
        PickerState::default()
    }

    pub fn mode(&self) -> Mode {
        Mode::Picker
    }

    pub fn apply(&mut self, _command: Command) -> PickerEffect {
        PickerEffect::None
    }
}
