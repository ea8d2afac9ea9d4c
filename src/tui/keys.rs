//! The one key table: key handling and the `?` help overlay both read it, so they cannot drift.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key asks the app to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Quit,
    /// Ctrl-C: stop and quit without asking; a second one abandons the calls in flight.
    Interrupt,
    ToggleHelp,
    /// Esc: close the help, the reader or a prompt.
    CloseOverlay,
    SelectUp,
    SelectDown,
    PageUp,
    PageDown,
    /// Enter: launch the chosen protocol (picker), edit a field (editor), read a cluster in
    /// full (live view).
    Activate,
    /// Picker: move between the protocol list and the editor pane.
    FocusNext,
    /// Launch from the picker; relaunch a closed campaign.
    Launch,
    /// Picker: save the edited protocol to the user's protocol directory.
    Save,
    /// Back from a closed campaign to the picker and editor.
    BackToPicker,
    Pause,
    Stop,
    /// Replay: ten seconds of session time on, or back.
    SeekForward,
    SeekBack,
    /// Replay: to the end of the session.
    SeekEnd,
    NextItem,
    PrevItem,
    NextTarget,
    ShowTab(Tab),
    /// Open the diff view on the selected cluster.
    OpenDiff,
    NextDifference,
    PrevDifference,
    /// Diff view: compare against the selected call from now on.
    SetBase,
    /// Diff view: compare against the modal output again.
    BaseModal,
    ConfirmYes,
    ConfirmNo,
    /// Editing a field: a typed character, Backspace, Enter, Esc.
    Input(char),
    Backspace,
    CommitEdit,
    CancelEdit,
    /// Picker: the data directory's saved sessions.
    Browse,
    /// Sessions list: mark or unmark the selected session for compare.
    Mark,
    /// Sessions list: compare the two marked sessions.
    Compare,
    /// A session opened from the list: back to the list.
    BackToSessions,
}

/// The live view's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Divergence,
    Diff,
    Timing,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Overview, Tab::Divergence, Tab::Diff, Tab::Timing];

    pub fn label(self) -> &'static str {
        match self {
            Tab::Overview => "overview",
            Tab::Divergence => "divergence",
            Tab::Diff => "diff",
            Tab::Timing => "timing",
        }
    }
}

/// Where the keyboard is: decides which bindings apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Picker,
    /// Typing into an editor field: characters are text, not commands.
    Edit,
    Live,
    Diff,
    Reader,
    Help,
    Confirm,
    /// The list of saved sessions.
    Sessions,
    /// Reading the comparison of two saved sessions.
    Compared,
}

/// A group of bindings, as the help overlay shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everywhere except while typing and in the quit prompt.
    Global,
    Picker,
    Edit,
    /// The live view, every tab.
    Live,
    Diff,
    Reader,
    Help,
    Confirm,
    Sessions,
    Compared,
}

impl Scope {
    pub fn title(self) -> &'static str {
        match self {
            Scope::Global => "everywhere",
            Scope::Picker => "protocol picker and editor",
            Scope::Edit => "editing a field",
            Scope::Live => "campaign",
            Scope::Diff => "diff view",
            Scope::Reader => "reading an output",
            Scope::Help => "this help",
            Scope::Confirm => "quit prompt",
            Scope::Sessions => "saved sessions",
            Scope::Compared => "comparing two sessions",
        }
    }

    /// Whether bindings of this scope apply in `mode` (more specific scopes are tried first).
    fn applies(self, mode: Mode) -> bool {
        match self {
            Scope::Global => !matches!(mode, Mode::Edit | Mode::Confirm),
            Scope::Picker => mode == Mode::Picker,
            Scope::Edit => mode == Mode::Edit,
            Scope::Live => matches!(mode, Mode::Live | Mode::Diff),
            Scope::Diff => mode == Mode::Diff,
            Scope::Reader => mode == Mode::Reader,
            Scope::Help => mode == Mode::Help,
            Scope::Confirm => mode == Mode::Confirm,
            Scope::Sessions => mode == Mode::Sessions,
            Scope::Compared => mode == Mode::Compared,
        }
    }

    /// Specific scopes shadow general ones: `n` in the diff view is not `n` elsewhere.
    fn rank(self) -> u8 {
        match self {
            Scope::Global => 2,
            Scope::Live => 1,
            _ => 0,
        }
    }
}

pub struct Binding {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
    pub scope: Scope,
    /// How the key is shown in the help overlay.
    pub label: &'static str,
    pub command: Command,
    pub help: &'static str,
}

const fn key(
    scope: Scope,
    code: KeyCode,
    label: &'static str,
    command: Command,
    help: &'static str,
) -> Binding {
    Binding {
        code,
        modifiers: KeyModifiers::NONE,
        scope,
        label,
        command,
        help,
    }
}

const fn ch(scope: Scope, c: char, command: Command, help: &'static str) -> Binding {
    Binding {
        code: KeyCode::Char(c),
        modifiers: KeyModifiers::NONE,
        scope,
        // The label of a character key is the character; see `Binding::key_label`.
        label: "",
        command,
        help,
    }
}

impl Binding {
    pub fn key_label(&self) -> String {
        match (self.label, self.code) {
            ("", KeyCode::Char(c)) => c.to_string(),
            (label, _) => label.to_string(),
        }
    }
}

use Scope::{Compared, Confirm, Diff, Edit, Global, Help, Live, Picker, Reader, Sessions};

pub const KEYS: &[Binding] = &[
    ch(
        Global,
        'q',
        Command::Quit,
        "quit (asks first while calls are in flight)",
    ),
    Binding {
        code: KeyCode::Char('c'),
        modifiers: KeyModifiers::CONTROL,
        scope: Global,
        label: "Ctrl-C",
        command: Command::Interrupt,
        help: "stop and quit at once; again: abandon calls in flight",
    },
    ch(Global, '?', Command::ToggleHelp, "show or hide this help"),
    key(
        Global,
        KeyCode::Esc,
        "Esc",
        Command::CloseOverlay,
        "close the help or the reader",
    ),
    key(
        Picker,
        KeyCode::Up,
        "↑",
        Command::SelectUp,
        "previous protocol, or previous field",
    ),
    key(
        Picker,
        KeyCode::Down,
        "↓",
        Command::SelectDown,
        "next protocol, or next field",
    ),
    key(
        Picker,
        KeyCode::Tab,
        "Tab",
        Command::FocusNext,
        "move between the list and the editor",
    ),
    key(
        Picker,
        KeyCode::Enter,
        "Enter",
        Command::Activate,
        "launch (list) or edit the field (editor)",
    ),
    ch(
        Picker,
        'r',
        Command::Launch,
        "launch the protocol as edited",
    ),
    ch(
        Picker,
        'w',
        Command::Save,
        "save the edited protocol to your protocol directory",
    ),
    ch(
        Picker,
        'o',
        Command::Browse,
        "open a saved session (the data directory's sessions)",
    ),
    key(
        Edit,
        KeyCode::Enter,
        "Enter",
        Command::CommitEdit,
        "keep the new value",
    ),
    key(
        Edit,
        KeyCode::Esc,
        "Esc",
        Command::CancelEdit,
        "keep the old value",
    ),
    key(
        Edit,
        KeyCode::Backspace,
        "Bksp",
        Command::Backspace,
        "delete the last character",
    ),
    ch(
        Live,
        '1',
        Command::ShowTab(Tab::Overview),
        "overview: consistency and clusters",
    ),
    ch(
        Live,
        '2',
        Command::ShowTab(Tab::Divergence),
        "divergence heatmap and similarity matrix",
    ),
    ch(Live, '3', Command::ShowTab(Tab::Diff), "token-level diff"),
    ch(
        Live,
        '4',
        Command::ShowTab(Tab::Timing),
        "latency histogram and throughput",
    ),
    key(
        Live,
        KeyCode::Up,
        "↑",
        Command::SelectUp,
        "select the previous cluster",
    ),
    key(
        Live,
        KeyCode::Down,
        "↓",
        Command::SelectDown,
        "select the next cluster",
    ),
    key(
        Live,
        KeyCode::Enter,
        "Enter",
        Command::Activate,
        "read the selected output in full",
    ),
    ch(
        Live,
        'd',
        Command::OpenDiff,
        "diff the selected output against the modal one",
    ),
    key(Live, KeyCode::Tab, "Tab", Command::NextItem, "next item"),
    key(
        Live,
        KeyCode::BackTab,
        "S-Tab",
        Command::PrevItem,
        "previous item",
    ),
    ch(Live, 't', Command::NextTarget, "next target"),
    ch(Live, 'p', Command::Pause, "pause or resume launching calls"),
    ch(
        Live,
        's',
        Command::Stop,
        "stop: no new calls; calls in flight finish",
    ),
    key(
        Live,
        KeyCode::Right,
        "→",
        Command::SeekForward,
        "replay: 10 s of session time on",
    ),
    key(
        Live,
        KeyCode::Left,
        "←",
        Command::SeekBack,
        "replay: 10 s back (re-folds from the start)",
    ),
    ch(Live, ']', Command::SeekForward, "replay: 10 s on, as →"),
    ch(Live, '[', Command::SeekBack, "replay: 10 s back, as ←"),
    key(
        Live,
        KeyCode::End,
        "End",
        Command::SeekEnd,
        "replay: jump to the end",
    ),
    ch(
        Live,
        'r',
        Command::Launch,
        "relaunch the finished campaign (a new session)",
    ),
    ch(
        Live,
        'e',
        Command::BackToPicker,
        "back to the protocol picker and editor",
    ),
    ch(
        Live,
        'b',
        Command::BackToSessions,
        "replay opened from the sessions list: back to it (as Esc)",
    ),
    key(
        Diff,
        KeyCode::Up,
        "↑",
        Command::SelectUp,
        "compare the previous call",
    ),
    key(
        Diff,
        KeyCode::Down,
        "↓",
        Command::SelectDown,
        "compare the next call",
    ),
    ch(Diff, 'n', Command::NextDifference, "next difference"),
    ch(Diff, 'N', Command::PrevDifference, "previous difference"),
    ch(
        Diff,
        'b',
        Command::SetBase,
        "compare against the selected call",
    ),
    ch(
        Diff,
        'm',
        Command::BaseModal,
        "compare against the modal output",
    ),
    key(Diff, KeyCode::PageUp, "PgUp", Command::PageUp, "scroll up"),
    key(
        Diff,
        KeyCode::PageDown,
        "PgDn",
        Command::PageDown,
        "scroll down",
    ),
    key(
        Reader,
        KeyCode::Up,
        "↑",
        Command::SelectUp,
        "scroll up a line",
    ),
    key(
        Reader,
        KeyCode::Down,
        "↓",
        Command::SelectDown,
        "scroll down a line",
    ),
    key(
        Reader,
        KeyCode::PageUp,
        "PgUp",
        Command::PageUp,
        "scroll up a page",
    ),
    key(
        Reader,
        KeyCode::PageDown,
        "PgDn",
        Command::PageDown,
        "scroll down a page",
    ),
    key(
        Help,
        KeyCode::Up,
        "↑",
        Command::SelectUp,
        "scroll the help up",
    ),
    key(
        Help,
        KeyCode::Down,
        "↓",
        Command::SelectDown,
        "scroll the help down",
    ),
    key(
        Sessions,
        KeyCode::Up,
        "↑",
        Command::SelectUp,
        "select the newer session",
    ),
    key(
        Sessions,
        KeyCode::Down,
        "↓",
        Command::SelectDown,
        "select the older session",
    ),
    key(
        Sessions,
        KeyCode::Enter,
        "Enter",
        Command::Activate,
        "open the selected session in the dashboard",
    ),
    key(
        Sessions,
        KeyCode::Char(' '),
        "Space",
        Command::Mark,
        "mark or unmark the session for compare (two at most)",
    ),
    ch(
        Sessions,
        'c',
        Command::Compare,
        "compare the two marked sessions",
    ),
    key(
        Sessions,
        KeyCode::Esc,
        "Esc",
        Command::CloseOverlay,
        "leave the list for the protocol picker",
    ),
    key(
        Compared,
        KeyCode::Up,
        "↑",
        Command::SelectUp,
        "scroll the comparison up a line",
    ),
    key(
        Compared,
        KeyCode::Down,
        "↓",
        Command::SelectDown,
        "scroll the comparison down a line",
    ),
    key(
        Compared,
        KeyCode::PageUp,
        "PgUp",
        Command::PageUp,
        "scroll the comparison up a page",
    ),
    key(
        Compared,
        KeyCode::PageDown,
        "PgDn",
        Command::PageDown,
        "scroll the comparison down a page",
    ),
    key(
        Compared,
        KeyCode::Esc,
        "Esc",
        Command::CloseOverlay,
        "back to the sessions list",
    ),
    ch(
        Confirm,
        'y',
        Command::ConfirmYes,
        "stop the campaign and quit",
    ),
    ch(Confirm, 'n', Command::ConfirmNo, "keep running"),
    key(
        Confirm,
        KeyCode::Esc,
        "Esc",
        Command::ConfirmNo,
        "keep running, as n does",
    ),
];

/// What a binding does when a saved session is played back (`reprise open`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InReplay {
    Same,
    /// Does this instead.
    Instead(&'static str),
    /// Means nothing there (no campaign runs): the key does nothing.
    Inert,
}

/// Keys that mean something only in a replay; the help of a live campaign leaves them out.
pub fn replay_only(command: Command) -> bool {
    matches!(
        command,
        Command::SeekForward | Command::SeekBack | Command::SeekEnd | Command::BackToSessions
    )
}

pub fn in_replay(command: Command) -> InReplay {
    match command {
        Command::Pause => InReplay::Instead("pause or resume the playback"),
        Command::Quit => InReplay::Instead("quit"),
        Command::Interrupt => InReplay::Instead("quit"),
        Command::Stop | Command::Launch | Command::BackToPicker => InReplay::Inert,
        _ => InReplay::Same,
    }
}

/// The command `event` means in `mode`. Ctrl-C works in every mode.
pub fn command_for(event: &KeyEvent, mode: Mode) -> Option<Command> {
    let ctrl_c =
        event.code == KeyCode::Char('c') && event.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl_c {
        return Some(Command::Interrupt);
    }
    let found = KEYS
        .iter()
        .filter(|b| b.scope.applies(mode))
        .filter(|b| b.code == event.code && modifiers_match(b.modifiers, event.modifiers))
        .min_by_key(|b| b.scope.rank());
    if let Some(b) = found {
        return Some(b.command);
    }
    match (mode, event.code) {
        (Mode::Edit, KeyCode::Char(c)) if !event.modifiers.contains(KeyModifiers::CONTROL) => {
            Some(Command::Input(c))
        }
        // Any unbound key closes the help, as a newcomer would expect.
        (Mode::Help, _) => Some(Command::CloseOverlay),
        _ => None,
    }
}

/// Shift is part of the character (`N`, `?`), so it is ignored unless the binding asks for it.
fn modifiers_match(binding: KeyModifiers, event: KeyModifiers) -> bool {
    binding == event.difference(KeyModifiers::SHIFT) || binding == event
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
            command_for(&press(KeyCode::Char('q')), Mode::Live),
            Some(Command::Quit)
        );
        // `y` means nothing outside the prompt, and `q` nothing inside it.
        assert_eq!(command_for(&press(KeyCode::Char('y')), Mode::Live), None);
        assert_eq!(command_for(&press(KeyCode::Char('q')), Mode::Confirm), None);
        assert_eq!(
            command_for(&press(KeyCode::Esc), Mode::Confirm),
            Some(Command::ConfirmNo)
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        for mode in [Mode::Confirm, Mode::Edit, Mode::Live, Mode::Picker] {
            assert_eq!(command_for(&ctrl_c, mode), Some(Command::Interrupt));
        }
        // A plain `c` is not Ctrl-C.
        assert_eq!(command_for(&press(KeyCode::Char('c')), Mode::Live), None);
    }

    #[test]
    fn typing_in_a_field_is_text_not_commands() {
        assert_eq!(
            command_for(&press(KeyCode::Char('q')), Mode::Edit),
            Some(Command::Input('q'))
        );
        assert_eq!(
            command_for(&press(KeyCode::Enter), Mode::Edit),
            Some(Command::CommitEdit)
        );
    }

    #[test]
    fn diff_keys_apply_in_the_diff_view_only() {
        let shift_n = KeyEvent::new(KeyCode::Char('N'), KeyModifiers::SHIFT);
        assert_eq!(
            command_for(&shift_n, Mode::Diff),
            Some(Command::PrevDifference)
        );
        assert_eq!(command_for(&press(KeyCode::Char('n')), Mode::Live), None);
        // Campaign keys still work from the diff view.
        assert_eq!(
            command_for(&press(KeyCode::Char('p')), Mode::Diff),
            Some(Command::Pause)
        );
    }

    #[test]
    fn every_binding_is_reachable() {
        for b in KEYS {
            let event = KeyEvent::new(b.code, b.modifiers);
            let mode = match b.scope {
                Global | Live => Mode::Live,
                Picker => Mode::Picker,
                Edit => Mode::Edit,
                Diff => Mode::Diff,
                Reader => Mode::Reader,
                Help => Mode::Help,
                Confirm => Mode::Confirm,
                Sessions => Mode::Sessions,
                Compared => Mode::Compared,
            };
            assert_eq!(
                command_for(&event, mode),
                Some(b.command),
                "{}",
                b.key_label()
            );
        }
    }
}
