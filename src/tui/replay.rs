//! A saved session on the dashboard: its records folded through the same `Analyzer` the live
//! session uses, published as `Live` snapshots on the same kind of `watch` channel, so the
//! views cannot tell an archive from a campaign. With a speed, records arrive at their
//! recorded pace (when each was written: `start_ms + latency_ms`) times that speed; without,
//! the final state shows at once. Seeking back re-folds from the start (the analysis only
//! moves forward).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::analysis::{AnalysisConfig, Analyzer};
use crate::archive::{self, Archive, SessionOutcome};
use crate::error::InputError;
use crate::record::CallRecord;
use crate::session::analysis_config_from_conditions;

use super::state::{App, Live, Phase};

/// How far `←`/`→` move, in session time.
pub const SEEK_STEP: Duration = Duration::from_secs(10);

/// Playback publishes at most this often while records stream in (as the live session does).
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Speeds outside this range are refused on the command line.
pub const SPEEDS: std::ops::RangeInclusive<f64> = 0.01..=100_000.0;

/// A saved session, read and checked, before the terminal is touched.
#[derive(Debug, Clone)]
pub struct Opened {
    pub path: PathBuf,
    pub archive: Archive,
}

/// Reads the archive at `path`; a bad one is one sentence naming the file.
pub fn open(path: &Path) -> Result<Opened, InputError> {
    let archive = archive::read(path)?;
    Ok(Opened {
        path: path.to_path_buf(),
        archive,
    })
}

impl Opened {
    /// The session was killed before its closing record.
    pub fn unfinished(&self) -> bool {
        self.archive.close.is_none()
    }

    /// Planned calls: from the closing record, else from the recorded campaign.
    pub fn planned_calls(&self) -> u64 {
        if let Some(close) = &self.archive.close {
            return close.planned_calls;
        }
        let c = &self.archive.header.conditions;
        let count = |key: &str| c[key].as_array().map_or(0, |a| a.len() as u64);
        let per = |key: &str| c["campaign"][key].as_u64().unwrap_or(0);
        count("targets") * count("items") * (per("warmup") + per("repeats"))
    }

    /// The dashboard for this session: the live view, every field as a campaign would set it.
    pub fn app(&self, speed: Option<f64>) -> App {
        let header = &self.archive.header;
        let config = analysis_config_from_conditions(&header.conditions);
        let name = header
            .protocol_name()
            .map(str::to_string)
            .or_else(|| {
                self.path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
            })
            .unwrap_or_default();
        let mut app = App::new(name, config.targets, self.planned_calls());
        app.identity = Some(header.identity.clone());
        app.archive = Some(self.path.clone());
        let completed = self
            .archive
            .close
            .as_ref()
            .is_some_and(|c| c.outcome == SessionOutcome::Completed);
        // Nothing is in flight in a replay: quitting needs no confirmation, stop does nothing.
        app.phase = Phase::Finished { completed };
        // A session that closed failed says why, as it did live.
        app.stopped = self
            .archive
            .close
            .iter()
            .filter(|c| c.outcome == SessionOutcome::Failed)
            .filter_map(|c| c.reason.clone())
            .collect();
        let end = written_at(&self.archive.calls).last().copied();
        app.replay = Some(ReplayView {
            unfinished: self.unfinished(),
            speed,
            state: PlayState::initial(speed, end.unwrap_or(Duration::ZERO)),
        });
        app
    }

    /// Starts playback (on the current tokio runtime): at the start with a speed, else at the end.
    pub fn play(self, speed: Option<f64>) -> Playback {
        Playback::start(Player::from_archive(self.archive), speed)
    }
}

/// What the header shows of a replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayView {
    pub unfinished: bool,
    /// `--replay SPEED`; None: opened at the end.
    pub speed: Option<f64>,
    pub state: PlayState,
}

/// Where playback is: session time `position` at the instant `at`, moving at `speed` unless
/// paused; the UI reads the clock from it without a message per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayState {
    pub position: Duration,
    pub at: Instant,
    pub speed: f64,
    pub paused: bool,
    /// When the last record was written.
    pub end: Duration,
}

impl PlayState {
    fn initial(speed: Option<f64>, end: Duration) -> PlayState {
        match speed {
            Some(speed) => PlayState {
                position: Duration::ZERO,
                at: Instant::now(),
                speed,
                paused: false,
                end,
            },
            // Opened without --replay: the end, held; a seek back shows the state there and
            // `p` plays on at the recorded pace.
            None => PlayState {
                position: end,
                at: Instant::now(),
                speed: 1.0,
                paused: true,
                end,
            },
        }
    }

    /// Session time at `now`, never past the end.
    pub fn position_at(&self, now: Instant) -> Duration {
        if self.paused {
            return self.position.min(self.end);
        }
        let ran = now.saturating_duration_since(self.at).as_secs_f64() * self.speed;
        let ran = Duration::try_from_secs_f64(ran).unwrap_or(Duration::MAX);
        self.position.saturating_add(ran).min(self.end)
    }

    /// Still playing towards the end.
    pub fn moving_at(&self, now: Instant) -> bool {
        !self.paused && self.position_at(now) < self.end
    }

    fn apply(&mut self, command: PlayCommand) {
        match command {
            PlayCommand::TogglePause => self.paused = !self.paused,
            PlayCommand::Seek { forward: true, by } => {
                self.position = self.position.saturating_add(by).min(self.end);
            }
            PlayCommand::Seek { forward: false, by } => {
                self.position = self.position.saturating_sub(by);
            }
            PlayCommand::End => self.position = self.end,
        }
    }

    /// The state after playing until `now`, re-anchored there.
    fn at_now(&self, now: Instant) -> PlayState {
        PlayState {
            position: self.position_at(now),
            at: now,
            ..*self
        }
    }
}

/// What the dashboard asks of playback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PlayCommand {
    /// Pause, or play on from where it is.
    TogglePause,
    /// Move by this much session time, forward or back, within the session.
    Seek {
        forward: bool,
        by: Duration,
    },
    End,
}

/// The records and the analysis folded so far: a prefix of the archive, in archive order
/// (the order the live session folded them), so the end state is the live run's last one.
pub struct Player {
    config: AnalysisConfig,
    records: Vec<CallRecord>,
    /// When each record was written, never earlier than the one before it.
    due: Vec<Duration>,
    analyzer: Analyzer,
    folded: usize,
    /// Records folded that count as calls done (a retried attempt does not).
    counted: u64,
}

/// When each record was written, relative to the session start, never earlier than the one
/// before it (records are folded in archive order, as live).
fn written_at(calls: &[CallRecord]) -> Vec<Duration> {
    let mut latest = Duration::ZERO;
    calls
        .iter()
        .map(|r| {
            let ms = r.timing.start_ms + r.timing.latency_ms;
            let at = Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::ZERO);
            latest = latest.max(at);
            latest
        })
        .collect()
}

impl Player {
    /// A player at the start of `archive` (its records copied; see [`Player::from_archive`]).
    pub fn new(archive: &Archive) -> Player {
        Player::from_archive(archive.clone())
    }

    /// A player at the start of `archive`, taking its records.
    pub fn from_archive(archive: Archive) -> Player {
        let config = analysis_config_from_conditions(&archive.header.conditions);
        Player {
            analyzer: Analyzer::new(config.clone()),
            config,
            due: written_at(&archive.calls),
            records: archive.calls,
            folded: 0,
            counted: 0,
        }
    }

    /// When the last record was written.
    pub fn end(&self) -> Duration {
        self.due.last().copied().unwrap_or(Duration::ZERO)
    }

    /// Records folded so far.
    pub fn folded(&self) -> usize {
        self.folded
    }

    /// Folds exactly the records written by `position`; back means from the start again.
    pub fn seek(&mut self, position: Duration) {
        let wanted = self.due.partition_point(|d| *d <= position);
        if wanted < self.folded {
            self.analyzer = Analyzer::new(self.config.clone());
            self.folded = 0;
            self.counted = 0;
        }
        for record in &self.records[self.folded..wanted] {
            self.analyzer.fold(record);
            self.counted += u64::from(!record.retried);
        }
        self.folded = wanted;
    }

    /// When the next record is due, if any is left.
    fn next_due(&self) -> Option<Duration> {
        self.due.get(self.folded).copied()
    }

    /// What the view gets, as the live session sends it.
    pub fn live(&self) -> Live {
        Live {
            snapshot: Some(self.analyzer.snapshot()),
            records: self.counted,
            in_flight: 0,
        }
    }
}

/// A playback task as the dashboard loop holds it. Dropping it ends the task.
pub struct Playback {
    pub commands: mpsc::UnboundedSender<PlayCommand>,
    pub live: watch::Receiver<Arc<Live>>,
    pub state: watch::Receiver<PlayState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Playback {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Playback {
    /// Spawns the task owning `player`: at the start playing at `speed`, or at the end.
    pub fn start(mut player: Player, speed: Option<f64>) -> Playback {
        let state = PlayState::initial(speed, player.end());
        player.seek(state.position);
        let (live_tx, live) = watch::channel(Arc::new(player.live()));
        let (state_tx, state_rx) = watch::channel(state);
        let (commands, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(play(player, state, rx, live_tx, state_tx));
        Playback {
            commands,
            live,
            state: state_rx,
            task,
        }
    }

    pub fn send(&self, command: PlayCommand) {
        let _ = self.commands.send(command);
    }
}

async fn play(
    mut player: Player,
    mut state: PlayState,
    mut commands: mpsc::UnboundedReceiver<PlayCommand>,
    live: watch::Sender<Arc<Live>>,
    states: watch::Sender<PlayState>,
) {
    let mut published = player.folded();
    let mut last_publish = Instant::now();
    loop {
        let now = Instant::now();
        player.seek(state.position_at(now));
        if player.folded() != published {
            published = player.folded();
            last_publish = now;
            let _ = live.send(Arc::new(player.live()));
        }
        // Asleep until the next record is due (batched to the publishing rate), or a command.
        let wake = match player.next_due() {
            Some(due) if !state.paused => {
                let ahead = due.saturating_sub(state.position_at(now)).as_secs_f64() / state.speed;
                let ahead = Duration::try_from_secs_f64(ahead).unwrap_or(Duration::MAX);
                let due_at = now.checked_add(ahead);
                let throttle = last_publish + PUBLISH_EVERY;
                due_at.map(|t| t.max(throttle))
            }
            _ => None,
        };
        let command = match wake {
            Some(at) => tokio::select! {
                command = commands.recv() => command,
                _ = tokio::time::sleep_until(at.into()) => continue,
            },
            None => commands.recv().await,
        };
        let Some(command) = command else {
            return; // the dashboard is gone
        };
        let now = Instant::now();
        state = state.at_now(now);
        state.apply(command);
        // A held key queues many seeks: one fold for all of them.
        while let Ok(command) = commands.try_recv() {
            state.apply(command);
        }
        // A seek shows at once, whatever the throttle.
        player.seek(state.position);
        published = player.folded();
        last_publish = now;
        let _ = live.send(Arc::new(player.live()));
        let _ = states.send(state);
    }
}

#[cfg(test)]
#[path = "replay_tests.rs"]
mod tests;
