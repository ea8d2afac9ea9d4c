//! The one key table: key handling and the `?` help overlay both read it, so they cannot drift.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key asks the app to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Quit,
    Stop,
    ToggleHelp,
    CloseOverlay,
    SelectUp,
    SelectDown,
    NextItem,
    PrevItem,
    /// Ctrl-C: stop and quit without asking; a second one abandons the calls in flight.
    Interrupt,
    ConfirmYes,
    ConfirmNo,
}

/// Where a binding applies: the main view, or the quit confirmation prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Confirm,
}

pub struct Binding {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
    pub mode: Mode,
    /// How the key is shown in the help overlay.
    pub label: &'static str,
    pub command: Command,
    pub help: &'static str,
}

const fn key(
    code: KeyCode,
    mode: Mode,
    label: &'static str,
    command: Command,
    help: &'static str,
) -> Binding {
    Binding {
        code,
        modifiers: KeyModifiers::NONE,
        mode,
        label,
        command,
        help,
    }
}

pub const KEYS: &[Binding] = &[
    key(
        KeyCode::Char('q'),
        Mode::Normal,
        "q",
        Command::Quit,
        "quit (asks first while calls are in flight)",
    ),
    key(
        KeyCode::Char('s'),
        Mode::Normal,
        "s",
        Command::Stop,
        "stop the campaign: no new calls; calls in flight finish",
    ),
    key(
        KeyCode::Char('?'),
        Mode::Normal,
        "?",
        Command::ToggleHelp,
        "show or hide this help",
    ),
    key(
        KeyCode::Up,
        Mode::Normal,
        "↑",
        Command::SelectUp,
        "select the previous cluster",
    ),
    key(
        KeyCode::Down,
        Mode::Normal,
        "↓",
        Command::SelectDown,
        "select the next cluster",
    ),
    key(
        KeyCode::Tab,
        Mode::Normal,
        "Tab",
        Command::NextItem,
        "show the clusters of the next item",
    ),
    key(
        KeyCode::BackTab,
        Mode::Normal,
        "S-Tab",
        Command::PrevItem,
        "show the clusters of the previous item",
    ),
    key(
        KeyCode::Esc,
        Mode::Normal,
        "Esc",
        Command::CloseOverlay,
        "close the help",
    ),
    Binding {
        code: KeyCode::Char('c'),
        modifiers: KeyModifiers::CONTROL,
        mode: Mode::Normal,
        label: "Ctrl-C",
        command: Command::Interrupt,
        help: "stop and quit at once; again: abandon calls in flight",
    },
    key(
        KeyCode::Char('y'),
        Mode::Confirm,
        "y",
        Command::ConfirmYes,
        "in the quit prompt: stop the campaign and quit",
    ),
    key(
        KeyCode::Char('n'),
        Mode::Confirm,
        "n",
        Command::ConfirmNo,
        "in the quit prompt: keep running",
    ),
];

/// The command `event` means in `mode`. Ctrl-C works in every mode; Esc also answers "no".
pub fn command_for(event: &KeyEvent, mode: Mode) -> Option<Command> {
    let found = KEYS.iter().find(|b| {
        b.code == event.code
            && event.modifiers.contains(b.modifiers)
            && (b.mode == mode || b.command == Command::Interrupt)
    });
    match found {
        Some(b) => Some(b.command),
        None if mode == Mode::Confirm && event.code == KeyCode::Esc => Some(Command::ConfirmNo),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn keys_map_by_mode() {
        assert_eq!(
            command_for(&press(KeyCode::Char('q')), Mode::Normal),
            Some(Command::Quit)
        );
        // `y` means nothing outside the prompt, and `q` nothing inside it.
        assert_eq!(command_for(&press(KeyCode::Char('y')), Mode::Normal), None);
        assert_eq!(command_for(&press(KeyCode::Char('q')), Mode::Confirm), None);
        assert_eq!(
            command_for(&press(KeyCode::Esc), Mode::Confirm),
            Some(Command::ConfirmNo)
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(
            command_for(&ctrl_c, Mode::Confirm),
            Some(Command::Interrupt)
        );
        // A plain `c` is not Ctrl-C.
        assert_eq!(command_for(&press(KeyCode::Char('c')), Mode::Normal), None);
    }

    #[test]
    fn every_binding_is_reachable() {
        for b in KEYS {
            let event = KeyEvent::new(b.code, b.modifiers);
            assert_eq!(command_for(&event, b.mode), Some(b.command), "{}", b.label);
        }
    }
}
