//! The UI state and what each command does to it. Pure: the loop performs the returned effects.

use std::path::PathBuf;
use std::sync::Arc;

use crate::analysis::{ItemSnapshot, Snapshot};

use super::browser::{BrowserEffect, BrowserState};
use super::diff::DiffState;
use super::keys::{Command, Mode, Tab};
use super::picker::{PickerEffect, PickerState};
use super::replay::{PlayCommand, ReplayView, SEEK_STEP};
use super::theme::Theme;
use crate::protocol::Protocol;

/// What the session side sends to the UI, at a bounded rate.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub snapshot: Option<Snapshot>,
    /// Records seen, warm-up included.
    pub records: u64,
    /// Calls launched and not yet recorded.
    pub in_flight: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// Stop asked; calls in flight are finishing.
    Stopping,
    Finished {
        completed: bool,
    },
    Failed(String),
}

/// What the loop must do after a command.
#[derive(Debug)]
pub enum Effect {
    None,
    Stop,
    Abort,
    Exit,
    /// Hold or release new launches; calls in flight go on.
    Pause(bool),
    /// Start a campaign on this protocol (from the picker).
    Launch(Box<Protocol>),
    /// Start the last campaign again, as a new session.
    Relaunch,
    /// Tell the playback of a saved session (pause, seek).
    Play(PlayCommand),
    /// Show the saved sessions (listing the data directory again).
    Browse,
    /// Open this saved session in the dashboard, as `reprise open` does.
    OpenSession(PathBuf),
    /// Compare two saved sessions, as `reprise compare A B` does.
    Compare(PathBuf, PathBuf),
}

/// Which screen is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Picker,
    Live,
    /// The saved sessions (and their comparison).
    Sessions,
}

/// Reading one cluster's text in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reader {
    pub cluster: u32,
    /// First line shown.
    pub scroll: usize,
}

pub struct App {
    pub theme: Theme,
    /// Where campaigns launched from the dashboard keep their archives (default: the
    /// platform data directory).
    pub sessions_dir: Option<PathBuf>,
    pub screen: Screen,
    pub picker: PickerState,
    pub protocol: String,
    pub targets: Vec<String>,
    pub identity: Option<String>,
    pub archive: Option<PathBuf>,
    pub planned_calls: u64,
    pub live: Arc<Live>,
    pub phase: Phase,
    /// Why calls were held back, one sentence each: targets whose breakers tripped while the
    /// campaign runs; the closing record's reason once it closed failed. Shown as an error.
    pub stopped: Vec<String>,
    /// Launching is held (calls in flight go on).
    pub paused: bool,
    pub tab: Tab,
    pub help: bool,
    /// First line of the help shown.
    pub help_scroll: usize,
    pub confirm_quit: bool,
    /// Quit once the session has written its closing record.
    pub quit_when_closed: bool,
    pub reader: Option<Reader>,
    pub diff: DiffState,
    /// Selected cluster, in the list of the item shown.
    pub selected: usize,
    /// Index of the item shown (protocol order).
    pub item: usize,
    /// Index of the target shown where targets do not fit side by side.
    pub target: usize,
    /// A saved session played back (`reprise open`): no campaign runs, nothing can launch.
    pub replay: Option<ReplayView>,
    /// The saved sessions list.
    pub browser: BrowserState,
    /// The replay shown was opened from the sessions list: `b` and Esc go back there.
    pub browsed: bool,
}

impl App {
    pub fn new(protocol: String, targets: Vec<String>, planned_calls: u64) -> Self {
        App {
            theme: Theme::default(),
            sessions_dir: None,
            screen: Screen::Live,
            picker: PickerState::default(),
            protocol,
            targets,
            identity: None,
            archive: None,
            planned_calls,
            live: Arc::default(),
            phase: Phase::Running,
            stopped: Vec::new(),
            paused: false,
            tab: Tab::Overview,
            help: false,
            help_scroll: 0,
            confirm_quit: false,
            quit_when_closed: false,
            reader: None,
            diff: DiffState::default(),
            selected: 0,
            item: 0,
            target: 0,
            replay: None,
            browser: BrowserState::default(),
            browsed: false,
        }
    }

    /// The app on the picker, before any campaign.
    pub fn picker(picker: PickerState) -> Self {
        let mut app = App::new(String::new(), Vec::new(), 0);
        app.picker = picker;
        app.screen = Screen::Picker;
        app.phase = Phase::Finished { completed: false };
        app
    }

    /// A new campaign starts: the live view, reset.
    pub fn launched(&mut self, protocol: String, targets: Vec<String>, planned_calls: u64) {
        let theme = std::mem::take(&mut self.theme);
        let picker = std::mem::take(&mut self.picker);
        let sessions_dir = self.sessions_dir.take();
        let browser = std::mem::take(&mut self.browser);
        *self = App::new(protocol, targets, planned_calls);
        self.theme = theme;
        self.picker = picker;
        self.sessions_dir = sessions_dir;
        self.browser = browser;
    }

    /// A saved session opened from the list: `opened` (from [`super::replay::Opened::app`])
    /// with this app's theme, picker, sessions directory and list.
    pub fn open_browsed(&mut self, opened: App) {
        let theme = std::mem::take(&mut self.theme);
        let picker = std::mem::take(&mut self.picker);
        let sessions_dir = self.sessions_dir.take();
        let browser = std::mem::take(&mut self.browser);
        *self = opened;
        self.theme = theme;
        self.picker = picker;
        self.sessions_dir = sessions_dir;
        self.browser = browser;
        self.browsed = true;
    }

    /// The sessions list, with a fresh listing of `dir` (or why there is none).
    pub fn show_sessions(
        &mut self,
        dir: Option<PathBuf>,
        listing: Result<crate::archive::SessionList, String>,
    ) {
        self.screen = Screen::Sessions;
        self.replay = None;
        self.browsed = false;
        self.reader = None;
        self.browser.load(dir, listing);
    }

    pub fn mode(&self) -> Mode {
        if self.confirm_quit {
            Mode::Confirm
        } else if self.help {
            Mode::Help
        } else if self.screen == Screen::Picker {
            self.picker.mode()
        } else if self.screen == Screen::Sessions {
            if self.browser.compared.is_some() {
                Mode::Compared
            } else {
                Mode::Sessions
            }
        } else if self.reader.is_some() {
            Mode::Reader
        } else if self.tab == Tab::Diff {
            Mode::Diff
        } else {
            Mode::Live
        }
    }

    pub fn in_flight(&self) -> bool {
        self.screen == Screen::Live && matches!(self.phase, Phase::Running | Phase::Stopping)
    }

    /// Every (target, item) in the snapshot, in protocol order.
    pub fn items(&self) -> impl Iterator<Item = (&str, &ItemSnapshot)> {
        self.live
            .snapshot
            .iter()
            .flat_map(|s| s.targets.iter())
            .flat_map(|t| t.items.iter().map(move |i| (t.target.as_str(), i)))
    }

    /// Items per target (the same for every target).
    pub fn item_count(&self) -> usize {
        self.live
            .snapshot
            .as_ref()
            .and_then(|s| s.targets.first())
            .map_or(0, |t| t.items.len())
    }

    /// The item shown, for the target shown.
    pub fn shown_item(&self) -> Option<(&str, &ItemSnapshot)> {
        self.item_of(self.target)
    }

    /// The item shown, for target number `target`.
    pub fn item_of(&self, target: usize) -> Option<(&str, &ItemSnapshot)> {
        let t = self.live.snapshot.as_ref()?.targets.get(target)?;
        Some((t.target.as_str(), t.items.get(self.item)?))
    }

    /// A new snapshot arrived (or the item shown changed): views that cache derived data
    /// (the diff) bring it up to date here, never while drawing.
    pub fn refresh(&mut self) {
        let live = Arc::clone(&self.live);
        self.diff.refresh(item_in(&live, self.target, self.item));
    }

    pub fn cluster_count(&self) -> usize {
        self.shown_item().map_or(0, |(_, i)| i.clusters.len())
    }

    pub fn apply(&mut self, command: Command) -> Effect {
        if self.help && !self.confirm_quit {
            match command {
                Command::SelectUp => self.help_scroll = self.help_scroll.saturating_sub(1),
                Command::SelectDown => self.help_scroll += 1,
                Command::Interrupt | Command::Quit => {
                    self.help = false;
                    return self.apply(command);
                }
                _ => self.help = false,
            }
            return Effect::None;
        }
        if self.screen == Screen::Picker {
            return self.apply_picker(command);
        }
        if self.screen == Screen::Sessions {
            return self.apply_sessions(command);
        }
        match command {
            Command::ToggleHelp => {
                self.help = true;
                self.help_scroll = 0;
            }
            // Nothing to close: Esc leaves a replay opened from the list.
            Command::CloseOverlay if self.browsed && self.reader.is_none() => {
                return Effect::Browse;
            }
            Command::CloseOverlay => {
                self.help = false;
                self.reader = None;
            }
            Command::SelectUp | Command::SelectDown | Command::PageUp | Command::PageDown
                if self.reader.is_some() =>
            {
                self.scroll_reader(command)
            }
            _ if self.tab == Tab::Diff => {
                if let Some(effect) = self.apply_campaign(command) {
                    return effect;
                }
                // An Arc clone: the diff state borrows the item while the app is mutated.
                let live = Arc::clone(&self.live);
                let item = item_in(&live, self.target, self.item);
                self.diff.apply(command, item);
            }
            _ => {
                if let Some(effect) = self.apply_campaign(command) {
                    return effect;
                }
                match command {
                    Command::SelectUp => self.selected = self.selected.saturating_sub(1),
                    Command::SelectDown if self.selected + 1 < self.cluster_count() => {
                        self.selected += 1;
                    }
                    Command::Activate => {
                        if let Some((_, item)) = self.shown_item() {
                            if let Some(c) = item.clusters.get(self.selected) {
                                self.reader = Some(Reader {
                                    cluster: c.id,
                                    scroll: 0,
                                });
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Effect::None
    }

    /// Keys that mean the same on every tab; None when `command` is not one of them.
    fn apply_campaign(&mut self, command: Command) -> Option<Effect> {
        if let Some(effect) = self.apply_replay(command) {
            return Some(effect);
        }
        let effect = match command {
            Command::ShowTab(tab) => {
                if tab == Tab::Diff && self.tab != Tab::Diff {
                    let live = Arc::clone(&self.live);
                    self.diff.open(item_in(&live, self.target, self.item));
                }
                self.tab = tab;
                Effect::None
            }
            Command::OpenDiff => {
                let shown = self.shown_item().and_then(|(_, item)| {
                    item.clusters
                        .get(self.selected)
                        .map(|c| (item.clone(), c.id))
                });
                if let Some((item, id)) = shown {
                    self.diff.focus_cluster(&item, id);
                }
                self.tab = Tab::Diff;
                Effect::None
            }
            Command::NextItem | Command::PrevItem => {
                let n = self.item_count().max(1);
                self.item = if command == Command::NextItem {
                    (self.item + 1) % n
                } else {
                    (self.item + n - 1) % n
                };
                self.selected = 0;
                Effect::None
            }
            Command::NextTarget => {
                let n = self.targets.len().max(1);
                self.target = (self.target + 1) % n;
                self.selected = 0;
                Effect::None
            }
            Command::Pause => {
                if self.phase != Phase::Running {
                    return Some(Effect::None);
                }
                self.paused = !self.paused;
                Effect::Pause(self.paused)
            }
            Command::Stop => {
                if self.phase == Phase::Running {
                    self.phase = Phase::Stopping;
                    self.paused = false;
                    return Some(Effect::Stop);
                }
                Effect::None
            }
            Command::Launch => {
                if self.in_flight() {
                    return Some(Effect::None);
                }
                Effect::Relaunch
            }
            Command::BackToPicker => {
                if !self.in_flight() {
                    self.screen = Screen::Picker;
                }
                Effect::None
            }
            Command::Quit => {
                if !self.in_flight() {
                    return Some(Effect::Exit);
                }
                self.confirm_quit = true;
                Effect::None
            }
            Command::ConfirmNo => {
                self.confirm_quit = false;
                Effect::None
            }
            Command::ConfirmYes => self.stop_and_quit(),
            Command::Interrupt => {
                if self.quit_when_closed && self.in_flight() {
                    return Some(Effect::Abort);
                }
                self.stop_and_quit()
            }
            _ => return None,
        };
        Some(effect)
    }

    /// Playback keys, and the campaign keys that mean nothing in a replay (stop, relaunch,
    /// the picker); None when `command` means the same as live.
    fn apply_replay(&mut self, command: Command) -> Option<Effect> {
        if self.replay.is_none() {
            // Seeking has nothing to move in a live campaign.
            return super::keys::replay_only(command).then_some(Effect::None);
        }
        let play = match command {
            Command::Pause => PlayCommand::TogglePause,
            Command::SeekForward => PlayCommand::Seek {
                forward: true,
                by: SEEK_STEP,
            },
            Command::SeekBack => PlayCommand::Seek {
                forward: false,
                by: SEEK_STEP,
            },
            Command::SeekEnd => PlayCommand::End,
            Command::Stop | Command::Launch | Command::BackToPicker => return Some(Effect::None),
            Command::BackToSessions if self.browsed => return Some(Effect::Browse),
            Command::BackToSessions => return Some(Effect::None),
            _ => return None,
        };
        Some(Effect::Play(play))
    }

    fn apply_picker(&mut self, command: Command) -> Effect {
        match command {
            Command::ToggleHelp => {
                self.help = true;
                self.help_scroll = 0;
            }
            Command::Quit | Command::Interrupt => return Effect::Exit,
            Command::Browse if self.picker.mode() == Mode::Picker => return Effect::Browse,
            _ => {
                if let PickerEffect::Launch(protocol) = self.picker.apply(command) {
                    return Effect::Launch(protocol);
                }
            }
        }
        Effect::None
    }

    fn apply_sessions(&mut self, command: Command) -> Effect {
        match command {
            Command::ToggleHelp => {
                self.help = true;
                self.help_scroll = 0;
            }
            Command::Quit | Command::Interrupt => return Effect::Exit,
            _ => match self.browser.apply(command) {
                BrowserEffect::None => {}
                BrowserEffect::Leave => self.screen = Screen::Picker,
                BrowserEffect::Open(path) => return Effect::OpenSession(path),
                BrowserEffect::Compare(a, b) => return Effect::Compare(a, b),
            },
        }
        Effect::None
    }

    fn scroll_reader(&mut self, command: Command) {
        let Some(reader) = self.reader.as_mut() else {
            return;
        };
        reader.scroll = match command {
            Command::SelectUp => reader.scroll.saturating_sub(1),
            Command::SelectDown => reader.scroll + 1,
            Command::PageUp => reader.scroll.saturating_sub(10),
            _ => reader.scroll + 10,
        };
    }

    fn stop_and_quit(&mut self) -> Effect {
        self.confirm_quit = false;
        if !self.in_flight() {
            return Effect::Exit;
        }
        self.quit_when_closed = true;
        self.paused = false;
        if self.phase == Phase::Running {
            self.phase = Phase::Stopping;
        }
        Effect::Stop
    }

    /// The session has closed its archive (or failed).
    pub fn session_closed(&mut self, phase: Phase) -> Effect {
        self.phase = phase;
        self.paused = false;
        self.confirm_quit = false;
        if self.quit_when_closed {
            Effect::Exit
        } else {
            Effect::None
        }
    }
}

fn item_in(live: &Live, target: usize, item: usize) -> Option<&ItemSnapshot> {
    live.snapshot.as_ref()?.targets.get(target)?.items.get(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn quit_asks_while_running_and_waits_for_the_close() {
        let mut app = App::new("p".into(), vec!["local".into()], 10);
        assert!(matches!(app.apply(Command::Quit), Effect::None));
        assert_eq!(app.mode(), Mode::Confirm);
        assert!(matches!(app.apply(Command::ConfirmNo), Effect::None));
        assert_eq!(app.phase, Phase::Running);
        app.apply(Command::Quit);
        assert!(matches!(app.apply(Command::ConfirmYes), Effect::Stop));
        assert_eq!(app.phase, Phase::Stopping);
        // The app leaves only once the closing record is written.
        assert!(matches!(
            app.session_closed(Phase::Finished { completed: false }),
            Effect::Exit
        ));
    }

    #[test]
    fn quit_after_the_campaign_needs_no_confirmation() {
        let mut app = App::new("p".into(), vec![], 10);
        app.session_closed(Phase::Finished { completed: true });
        assert!(matches!(app.apply(Command::Quit), Effect::Exit));
    }

    #[test]
    fn second_interrupt_abandons_calls_in_flight() {
        let mut app = App::new("p".into(), vec![], 10);
        assert!(matches!(app.apply(Command::Interrupt), Effect::Stop));
        assert!(matches!(app.apply(Command::Interrupt), Effect::Abort));
    }

    #[test]
    fn pause_toggles_only_while_running() {
        let mut app = App::new("p".into(), vec![], 10);
        assert!(matches!(app.apply(Command::Pause), Effect::Pause(true)));
        assert!(matches!(app.apply(Command::Pause), Effect::Pause(false)));
        app.apply(Command::Pause);
        // Stopping releases the hold so calls in flight can finish and the archive close.
        assert!(matches!(app.apply(Command::Stop), Effect::Stop));
        assert!(!app.paused);
        assert!(matches!(app.apply(Command::Pause), Effect::None));
    }

    #[test]
    fn relaunch_waits_for_the_campaign_to_close() {
        let mut app = App::new("p".into(), vec![], 10);
        assert!(matches!(app.apply(Command::Launch), Effect::None));
        app.session_closed(Phase::Finished { completed: true });
        assert!(matches!(app.apply(Command::Launch), Effect::Relaunch));
    }
    fn listed(names: &[&str]) -> crate::archive::SessionList {
        let info = |name: &&str| crate::archive::SessionInfo {
            path: PathBuf::from(name),
            started_at: format!("2026-01-0{}T00:00:00Z", name.len() % 9 + 1),
            protocol_name: None,
            identity: "id".into(),
            records: 1,
            outcome: None,
            ended_at: None,
            summary: None,
        };
        crate::archive::SessionList {
            sessions: names.iter().map(info).collect(),
            skipped: Vec::new(),
        }
    }

    #[test]
    fn the_browser_opens_compares_and_esc_walks_back_to_the_picker() {
        let mut app = App::picker(PickerState::default());
        assert!(matches!(app.apply(Command::Browse), Effect::Browse));
        app.show_sessions(None, Ok(listed(&["a", "bb"])));
        assert_eq!(app.mode(), Mode::Sessions);
        // Newest first: "bb" started later.
        assert!(
            matches!(app.apply(Command::Activate), Effect::OpenSession(p) if p == Path::new("bb"))
        );
        app.apply(Command::Mark);
        app.apply(Command::SelectDown);
        app.apply(Command::Mark);
        assert!(matches!(
            app.apply(Command::Compare),
            Effect::Compare(a, b) if a == Path::new("bb") && b == Path::new("a")
        ));
        app.browser.show_comparison(Ok("verdict: same".into()));
        assert_eq!(app.mode(), Mode::Compared);
        app.apply(Command::CloseOverlay);
        assert_eq!(app.mode(), Mode::Sessions);
        app.apply(Command::CloseOverlay);
        assert_eq!(app.screen, Screen::Picker);
        assert!(matches!(app.apply(Command::Quit), Effect::Exit));
    }

    #[test]
    fn b_and_esc_leave_a_replay_for_the_list_only_when_opened_from_it() {
        let replay = ReplayView {
            unfinished: false,
            speed: None,
            state: super::super::replay::PlayState {
                position: std::time::Duration::ZERO,
                at: std::time::Instant::now(),
                speed: 1.0,
                paused: true,
                end: std::time::Duration::ZERO,
            },
        };
        let mut opened = App::new("p".into(), vec![], 1);
        opened.phase = Phase::Finished { completed: true };
        opened.replay = Some(replay);
        // `reprise open`: nothing to go back to.
        assert!(matches!(
            opened.apply(Command::BackToSessions),
            Effect::None
        ));
        assert!(matches!(opened.apply(Command::CloseOverlay), Effect::None));
        let mut app = App::picker(PickerState::default());
        app.sessions_dir = Some(PathBuf::from("dir"));
        app.open_browsed(opened);
        assert_eq!(app.sessions_dir, Some(PathBuf::from("dir")));
        assert!(matches!(app.apply(Command::BackToSessions), Effect::Browse));
        assert!(matches!(app.apply(Command::CloseOverlay), Effect::Browse));
        // A live campaign has no list to go back to.
        let mut live = App::new("p".into(), vec![], 1);
        assert!(matches!(live.apply(Command::BackToSessions), Effect::None));
    }
}
