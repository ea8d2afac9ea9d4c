//! The UI state and what each command does to it. Pure: the loop performs the returned effects.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use crate::analysis::{ItemSnapshot, Snapshot};
use crate::record::CallRecord;

use super::keys::{Command, Mode};

/// What the session side sends to the UI, at a bounded rate.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub snapshot: Option<Snapshot>,
    /// Records seen, warm-up included.
    pub records: u64,
    /// Distinct `served` maps per target, in arrival order of targets.
    pub served: Vec<(String, usize)>,
}

/// Counts distinct served identities per target as records arrive (session side).
#[derive(Default)]
pub struct ServedTally {
    seen: BTreeMap<String, HashSet<Vec<(String, String)>>>,
    order: Vec<String>,
}

impl ServedTally {
    pub fn add(&mut self, record: &CallRecord) {
        if record.served.is_empty() {
            return;
        }
        let key: Vec<(String, String)> = record
            .served
            .iter()
            // A response id differs on every call; it identifies the call, not what served it.
            .filter(|(k, _)| k.as_str() != "response_id")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !self.seen.contains_key(&record.target) {
            self.order.push(record.target.clone());
        }
        self.seen
            .entry(record.target.clone())
            .or_default()
            .insert(key);
    }

    pub fn counts(&self) -> Vec<(String, usize)> {
        self.order
            .iter()
            .map(|t| (t.clone(), self.seen.get(t).map_or(0, HashSet::len)))
            .collect()
    }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    None,
    Stop,
    Abort,
    Exit,
}

pub struct App {
    pub protocol: String,
    pub targets: Vec<String>,
    pub identity: Option<String>,
    pub archive: Option<PathBuf>,
    pub planned_calls: u64,
    pub live: Arc<Live>,
    pub phase: Phase,
    pub help: bool,
    pub confirm_quit: bool,
    /// Quit once the session has written its closing record.
    pub quit_when_closed: bool,
    /// Selected cluster, in the list of the item shown.
    pub selected: usize,
    /// Index of the (target, item) whose clusters are shown, in consistency-panel order.
    pub item: usize,
}

impl App {
    pub fn new(protocol: String, targets: Vec<String>, planned_calls: u64) -> Self {
        App {
            protocol,
            targets,
            identity: None,
            archive: None,
            planned_calls,
            live: Arc::default(),
            phase: Phase::Running,
            help: false,
            confirm_quit: false,
            quit_when_closed: false,
            selected: 0,
            item: 0,
        }
    }

    pub fn mode(&self) -> Mode {
        if self.confirm_quit {
            Mode::Confirm
        } else {
            Mode::Normal
        }
    }

    pub fn in_flight(&self) -> bool {
        matches!(self.phase, Phase::Running | Phase::Stopping)
    }

    /// Every (target, item) in the snapshot, in protocol order.
    pub fn items(&self) -> impl Iterator<Item = (&str, &ItemSnapshot)> {
        self.live
            .snapshot
            .iter()
            .flat_map(|s| s.targets.iter())
            .flat_map(|t| t.items.iter().map(move |i| (t.target.as_str(), i)))
    }

    /// The (target, item) whose clusters are shown.
    pub fn shown_item(&self) -> Option<(&str, &ItemSnapshot)> {
        self.items().nth(self.item)
    }

    pub fn cluster_count(&self) -> usize {
        self.shown_item().map_or(0, |(_, i)| i.clusters.len())
    }

    pub fn apply(&mut self, command: Command) -> Effect {
        match command {
            Command::ToggleHelp => self.help = !self.help,
            Command::CloseOverlay => self.help = false,
            Command::SelectUp => self.selected = self.selected.saturating_sub(1),
            Command::SelectDown => {
                if self.selected + 1 < self.cluster_count() {
                    self.selected += 1;
                }
            }
            Command::NextItem | Command::PrevItem => {
                let n = self.items().count().max(1);
                self.item = if command == Command::NextItem {
                    (self.item + 1) % n
                } else {
                    (self.item + n - 1) % n
                };
                self.selected = 0;
            }
            Command::Stop => {
                if self.phase == Phase::Running {
                    self.phase = Phase::Stopping;
                    return Effect::Stop;
                }
            }
            Command::Quit => {
                if !self.in_flight() {
                    return Effect::Exit;
                }
                self.confirm_quit = true;
            }
            Command::ConfirmNo => self.confirm_quit = false,
            Command::ConfirmYes => return self.stop_and_quit(),
            Command::Interrupt => {
                if self.quit_when_closed && self.in_flight() {
                    return Effect::Abort;
                }
                return self.stop_and_quit();
            }
        }
        Effect::None
    }

    fn stop_and_quit(&mut self) -> Effect {
        self.confirm_quit = false;
        if !self.in_flight() {
            return Effect::Exit;
        }
        self.quit_when_closed = true;
        if self.phase == Phase::Running {
            self.phase = Phase::Stopping;
        }
        Effect::Stop
    }

    /// The session has closed its archive (or failed).
    pub fn session_closed(&mut self, phase: Phase) -> Effect {
        self.phase = phase;
        self.confirm_quit = false;
        if self.quit_when_closed {
            Effect::Exit
        } else {
            Effect::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quit_asks_while_running_and_waits_for_the_close() {
        let mut app = App::new("p".into(), vec!["local".into()], 10);
        assert_eq!(app.apply(Command::Quit), Effect::None);
        assert_eq!(app.mode(), Mode::Confirm);
        assert_eq!(app.apply(Command::ConfirmNo), Effect::None);
        assert_eq!(app.phase, Phase::Running);
        app.apply(Command::Quit);
        assert_eq!(app.apply(Command::ConfirmYes), Effect::Stop);
        assert_eq!(app.phase, Phase::Stopping);
        // The app leaves only once the closing record is written.
        assert_eq!(
            app.session_closed(Phase::Finished { completed: false }),
            Effect::Exit
        );
    }

    #[test]
    fn quit_after_the_campaign_needs_no_confirmation() {
        let mut app = App::new("p".into(), vec![], 10);
        app.session_closed(Phase::Finished { completed: true });
        assert_eq!(app.apply(Command::Quit), Effect::Exit);
    }

    #[test]
    fn second_interrupt_abandons_calls_in_flight() {
        let mut app = App::new("p".into(), vec![], 10);
        assert_eq!(app.apply(Command::Interrupt), Effect::Stop);
        assert_eq!(app.apply(Command::Interrupt), Effect::Abort);
    }
}
