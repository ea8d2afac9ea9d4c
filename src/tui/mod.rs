//! The live dashboard. The core knows nothing of it: it runs the same session as `reprise run`
//! and draws the analysis snapshot the session folds.
//!
//! - `keys`: the one key table (handling and the help overlay);
//! - `state`: the UI state and what each command does to it (`picker` and `diff` hold the
//!   state of those screens);
//! - `theme`: colours and glyphs, resolved once;
//! - `view`: drawing, a pure function of the state and the clock.

pub mod browser;
pub mod diff;
pub mod keys;
pub mod picker;
pub mod replay;
pub mod state;
pub mod theme;
pub mod view;

use std::io::{self, Stdout};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{Event, EventStream, KeyEventKind};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use futures_util::{Stream, StreamExt};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use tokio::sync::{mpsc, watch};

use crate::runner::RunControl;
use crate::session::{
    run_session_with_start, SessionError, SessionResult, SessionSpec, SessionStart,
};

use keys::command_for;
use state::{App, Effect, Live, Phase, Screen};

/// Snapshots go to the UI at most this often; the last one is always sent at the end.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(100);
/// At most ~15 frames a second.
const FRAME: Duration = Duration::from_millis(66);

/// Raw mode and the alternate screen, undone on drop — on every exit path.
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    fn enter() -> io::Result<Self> {
        install_panic_hook();
        enable_raw_mode()?;
        if let Err(e) = execute!(io::stdout(), EnterAlternateScreen) {
            restore();
            return Err(e);
        }
        match Terminal::new(CrosstermBackend::new(io::stdout())) {
            Ok(terminal) => Ok(TerminalGuard { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
        let _ = self.terminal.show_cursor();
    }
}

fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
}

/// A panic message printed in raw mode on the alternate screen would be lost: restore first.
/// A backend's panic is left alone: the runner records it as that call's failure and the
/// dashboard goes on.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if crate::runner::in_backend_call() {
            return;
        }
        restore();
        previous(info);
    }));
}

/// How the dashboard ended.
pub enum Outcome {
    /// The last session closed its archive (completed or stopped).
    Closed(Box<SessionResult>),
    /// The last session failed; the message was shown.
    Failed(SessionError),
    /// The user left the picker without launching anything.
    NothingRun,
}

#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error("terminal: {0}")]
    Terminal(#[from] io::Error),
    #[error("the session task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Runs the dashboard until the user quits: `start` is launched at once, else the picker shows.
pub async fn run_live(app: App, start: Option<SessionSpec>) -> Result<Outcome, TuiError> {
    let mut guard = TerminalGuard::enter()?;
    let outcome = drive(
        app,
        start,
        &mut guard.terminal,
        EventStream::new(),
        Clock::Real,
    )
    .await;
    drop(guard);
    outcome
}

/// Where the header clock reads the time: the real one, or a fixed one in tests.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    Real,
    Fixed(Duration),
}

/// A running session as the loop sees it.
struct Running {
    control: RunControl,
    live: watch::Receiver<Arc<Live>>,
    start: mpsc::UnboundedReceiver<SessionStart>,
    task: tokio::task::JoinHandle<Joined>,
    started: Instant,
}

fn launch(spec: SessionSpec) -> Running {
    let control = RunControl::default();
    let (live_tx, live) = watch::channel(Arc::new(Live::default()));
    let (start_tx, start) = mpsc::unbounded_channel();
    let task = {
        let control = control.clone();
        tokio::spawn(async move {
            let mut records = 0u64;
            let mut last_sent: Option<Instant> = None;
            let gauge = control.clone();
            run_session_with_start(
                spec,
                control,
                |start| {
                    let _ = start_tx.send(start.clone());
                },
                |record, analyzer| {
                    // A retried attempt is not a call done; its next attempt will be.
                    if record.is_some_and(|r| !r.retried) {
                        records += 1;
                    }
                    // A lull (None) sends what the throttle held back: the view never rests
                    // on a stale frame while paused or waiting on slow calls.
                    if record.is_none() || last_sent.is_none_or(|t| t.elapsed() >= SNAPSHOT_EVERY) {
                        last_sent = Some(Instant::now());
                        let _ = live_tx.send(Arc::new(Live {
                            snapshot: Some(analyzer.snapshot()),
                            records,
                            in_flight: gauge.in_flight() as u64,
                        }));
                    }
                },
            )
            .await
            .map(|result| (result, records))
        })
    };
    Running {
        control,
        live,
        start,
        task,
        started: Instant::now(),
    }
}

/// Runs the dashboard on a saved session (`reprise open`) until the user quits; `app` comes
/// from [`replay::Opened::app`], `playback` from [`replay::Opened::play`].
pub async fn run_open(app: App, playback: replay::Playback) -> Result<Outcome, TuiError> {
    let mut guard = TerminalGuard::enter()?;
    let outcome = drive_open(
        app,
        playback,
        &mut guard.terminal,
        EventStream::new(),
        Clock::Real,
    )
    .await;
    drop(guard);
    outcome
}

/// The app loop on any backend and input stream (a test backend and scripted keys in tests).
pub async fn drive<B: ratatui::backend::Backend>(
    app: App,
    start: Option<SessionSpec>,
    terminal: &mut Terminal<B>,
    events: impl Stream<Item = io::Result<Event>> + Unpin,
    clock: Clock,
) -> Result<Outcome, TuiError> {
    drive_from(
        app,
        Source::Campaign(start.map(Box::new)),
        terminal,
        events,
        clock,
    )
    .await
}

/// The app loop on a saved session played back; ends with [`Outcome::NothingRun`].
pub async fn drive_open<B: ratatui::backend::Backend>(
    app: App,
    playback: replay::Playback,
    terminal: &mut Terminal<B>,
    events: impl Stream<Item = io::Result<Event>> + Unpin,
    clock: Clock,
) -> Result<Outcome, TuiError> {
    drive_from(app, Source::Replay(playback), terminal, events, clock).await
}

/// What feeds the dashboard: sessions run here, or a saved one played back.
enum Source {
    Campaign(Option<Box<SessionSpec>>),
    Replay(replay::Playback),
}

async fn drive_from<B: ratatui::backend::Backend>(
    mut app: App,
    source: Source,
    terminal: &mut Terminal<B>,
    mut events: impl Stream<Item = io::Result<Event>> + Unpin,
    clock: Clock,
) -> Result<Outcome, TuiError> {
    // What a relaunch runs again: the same protocol on the same backends.
    let mut last: Option<Relaunch> = None;
    let mut running: Option<Running> = None;
    let mut replaying: Option<replay::Playback> = None;
    // Reading, verifying and analysing two archives takes a while on large ones: off the loop.
    let mut comparing: Option<tokio::task::JoinHandle<Result<String, String>>> = None;
    match source {
        Source::Campaign(Some(spec)) => {
            start_campaign(&mut app, &mut running, &mut last, Ok(*spec));
        }
        Source::Campaign(None) => {}
        Source::Replay(playback) => replaying = Some(show_replay(&mut app, playback)),
    }
    let mut campaign_started = Instant::now();
    let mut frozen_elapsed = Duration::ZERO;

    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    let mut shown_second = 0;
    let mut outcome = Outcome::NothingRun;
    let mut input_open = true;
    let mut terminal_error = None;
    loop {
        if let Some(r) = &running {
            campaign_started = r.started;
        }
        // The clock stops when the campaign closes; a replay's is the session time shown.
        let replay_state = app.replay.map(|r| r.state);
        let elapsed = match (clock, replay_state) {
            (Clock::Fixed(d), _) => d,
            (Clock::Real, Some(state)) => state.position_at(Instant::now()),
            (Clock::Real, None) if running.is_some() => campaign_started.elapsed(),
            (Clock::Real, None) => frozen_elapsed,
        };
        let ticking =
            running.is_some() || replay_state.is_some_and(|state| state.moving_at(Instant::now()));
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME) {
            if let Err(e) = terminal.draw(|frame| view::render(frame, &app, elapsed)) {
                // The screen is gone: close the archive (calls in flight are recorded as
                // cancelled) before reporting, so nothing recorded is lost.
                if let Some(r) = &running {
                    r.control.stop.cancel();
                    r.control.abort.cancel();
                }
                terminal_error = Some(e);
                break;
            }
            last_draw = Some(Instant::now());
            shown_second = elapsed.as_secs();
            dirty = false;
        }
        let effect = tokio::select! {
            biased;
            event = events.next(), if input_open => match event {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => {
                    // Keys redraw at once.
                    last_draw = None;
                    dirty = true;
                    let effect =
                        command_for(&key, app.mode()).map_or(Effect::None, |c| app.apply(c));
                    // The item or target shown may have changed.
                    app.refresh();
                    effect
                }
                Some(Ok(Event::Resize(..))) => {
                    last_draw = None;
                    dirty = true;
                    Effect::None
                }
                Some(Ok(_)) => Effect::None,
                // Input is gone: nothing could quit later, so stop now and leave once the
                // archive is closed (returning here would lose its closing record).
                Some(Err(_)) | None => {
                    input_open = false;
                    if running.is_some() {
                        app.apply(keys::Command::Interrupt)
                    } else {
                        Effect::Exit
                    }
                }
            },
            event = session_event(&mut running) => match event {
                SessionEvent::Start(start) => {
                    app.identity = Some(start.identity);
                    app.archive = Some(start.archive);
                    app.planned_calls = start.planned_calls;
                    dirty = true;
                    Effect::None
                }
                SessionEvent::Live(live) => {
                    // An Arc: the UI takes the snapshot without copying its clusters.
                    app.live = live;
                    if let Some(r) = &running {
                        app.stopped = r.control.breaker_stops();
                    }
                    app.refresh();
                    dirty = true;
                    Effect::None
                }
                SessionEvent::Closed(joined) => {
                    frozen_elapsed = campaign_started.elapsed();
                    running = None;
                    dirty = true;
                    match (*joined)? {
                        Ok((result, records)) => {
                            app.live = Arc::new(Live {
                                snapshot: Some(result.snapshot.clone()),
                                records,
                                in_flight: 0,
                            });
                            app.refresh();
                            let completed = !result.interrupted();
                            if let Some(reason) = failed_reason(&result) {
                                app.stopped = vec![reason];
                            }
                            outcome = Outcome::Closed(Box::new(result));
                            app.session_closed(Phase::Finished { completed })
                        }
                        Err(e) => {
                            let effect = app.session_closed(Phase::Failed(e.to_string()));
                            outcome = Outcome::Failed(e);
                            effect
                        }
                    }
                }
            },
            event = replay_event(&mut replaying) => {
                match event {
                    ReplayEvent::Live(live) => {
                        app.live = live;
                        app.refresh();
                    }
                    ReplayEvent::State(state) => {
                        if let Some(view) = app.replay.as_mut() {
                            view.state = state;
                        }
                    }
                }
                dirty = true;
                Effect::None
            },
            joined = compared(&mut comparing) => {
                comparing = None;
                let result = joined
                    .unwrap_or_else(|e| Err(format!("the comparison failed: {e}")));
                app.browser.show_comparison(result);
                dirty = true;
                Effect::None
            },
            // Ticks advance the clock and flush a frame held back by the rate limit; with
            // neither to do (a closed campaign on screen), the loop sleeps until a key.
            _ = tick.tick(), if ticking || dirty => {
                // The header clock shows seconds: redraw when it would change.
                if ticking && elapsed.as_secs() != shown_second {
                    dirty = true;
                }
                Effect::None
            }
        };
        let control = running.as_ref().map(|r| &r.control);
        match effect {
            Effect::None => {}
            Effect::Stop => {
                if let Some(c) = control {
                    c.stop.cancel();
                }
            }
            Effect::Abort => {
                if let Some(c) = control {
                    c.stop.cancel();
                    c.abort.cancel();
                }
            }
            Effect::Pause(paused) => {
                if let Some(c) = control {
                    c.set_paused(paused);
                }
            }
            Effect::Play(command) => {
                if let Some(playback) = &replaying {
                    playback.send(command);
                }
            }
            Effect::Launch(protocol) => {
                dirty = true;
                let spec = SessionSpec::with_providers(*protocol, None, &app.picker.providers);
                start_campaign(&mut app, &mut running, &mut last, spec);
            }
            Effect::Relaunch => {
                dirty = true;
                if let Some(again) = &last {
                    let spec = SessionSpec {
                        protocol: again.protocol.clone(),
                        backends: again.backends.clone(),
                        out: None,
                        dir: None,
                    };
                    start_campaign(&mut app, &mut running, &mut last, Ok(spec));
                }
            }
            Effect::Browse => {
                // Leaving a replay ends its playback (dropping it stops the task).
                replaying = None;
                let dir = app
                    .sessions_dir
                    .clone()
                    .or_else(crate::archive::default_dir);
                let listing = match &dir {
                    Some(d) => crate::archive::list_sessions(d)
                        .map_err(|e| format!("{}: cannot list sessions: {e}", d.display())),
                    None => Err("no data directory for sessions on this platform".into()),
                };
                app.show_sessions(dir, listing);
            }
            Effect::OpenSession(path) => {
                if running.is_none() {
                    match replay::open(&path) {
                        Ok(opened) => {
                            app.open_browsed(opened.app(None));
                            replaying = Some(show_replay(&mut app, opened.play(None)));
                        }
                        Err(e) => app.browser.message = Some(e.to_string()),
                    }
                }
            }
            Effect::Compare(a, b) => {
                if comparing.is_none() {
                    app.browser.message = Some("comparing…".into());
                    comparing = Some(tokio::task::spawn_blocking(move || {
                        browser::compare_archives(&a, &b)
                    }));
                }
            }
            Effect::Exit => break,
        }
    }
    // Exit is only reachable with no session open; this keeps every archive closed anyway.
    if let Some(r) = running {
        r.control.stop.cancel();
        match r.task.await? {
            Ok((result, _)) => outcome = Outcome::Closed(Box::new(result)),
            Err(e) => outcome = Outcome::Failed(e),
        }
    }
    match terminal_error {
        Some(e) => Err(TuiError::Terminal(e)),
        None => Ok(outcome),
    }
}

/// Why a session closed failed (its breakers' sentences, or lost calls), from its closing
/// record; None for a session that completed or that the user stopped.
fn failed_reason(result: &SessionResult) -> Option<String> {
    let close = &result.close;
    (close.outcome == crate::archive::SessionOutcome::Failed)
        .then(|| close.reason.clone())
        .flatten()
}

/// The app shows `playback`'s current state at once; the loop then follows it.
fn show_replay(app: &mut App, playback: replay::Playback) -> replay::Playback {
    app.live = Arc::clone(&playback.live.borrow());
    if let Some(view) = app.replay.as_mut() {
        view.state = *playback.state.borrow();
    }
    app.refresh();
    playback
}

fn planned_calls(protocol: &crate::protocol::Protocol) -> u64 {
    (protocol.targets.len() * protocol.items.len()) as u64
        * u64::from(protocol.campaign.warmup + protocol.campaign.repeats)
}

struct Relaunch {
    protocol: crate::protocol::Protocol,
    backends: Vec<Arc<dyn crate::providers::Backend>>,
}

/// Starts a session (archive in the app's sessions directory unless the spec names a file),
/// or shows on the picker why it cannot start.
fn start_campaign(
    app: &mut App,
    running: &mut Option<Running>,
    last: &mut Option<Relaunch>,
    spec: Result<SessionSpec, crate::error::InputError>,
) {
    if running.is_some() {
        return;
    }
    match spec {
        Ok(mut spec) => {
            let protocol = &spec.protocol;
            app.launched(
                protocol.meta.name.clone(),
                protocol.targets.iter().map(|t| t.name.clone()).collect(),
                planned_calls(protocol),
            );
            if spec.dir.is_none() {
                spec.dir = app.sessions_dir.clone();
            }
            *last = Some(Relaunch {
                protocol: spec.protocol.clone(),
                backends: spec.backends.clone(),
            });
            *running = Some(launch(spec));
        }
        Err(e) => {
            app.screen = Screen::Picker;
            app.picker.error = Some(e.to_string());
        }
    }
}

type Joined = Result<(SessionResult, u64), SessionError>;

enum SessionEvent {
    Start(SessionStart),
    Live(Arc<Live>),
    /// Boxed: a closing record is large, and the other events are sent often.
    Closed(Box<Result<Joined, tokio::task::JoinError>>),
}

/// The next thing the running session has to say; never resolves with no session.
async fn session_event(running: &mut Option<Running>) -> SessionEvent {
    let Some(r) = running else {
        return std::future::pending().await;
    };
    tokio::select! {
        biased;
        Some(start) = r.start.recv() => SessionEvent::Start(start),
        Ok(()) = r.live.changed() => SessionEvent::Live(Arc::clone(&r.live.borrow_and_update())),
        joined = &mut r.task => SessionEvent::Closed(Box::new(joined)),
    }
}

/// The comparison under way, once done; never resolves without one.
async fn compared(
    comparing: &mut Option<tokio::task::JoinHandle<Result<String, String>>>,
) -> Result<Result<String, String>, tokio::task::JoinError> {
    match comparing {
        Some(task) => task.await,
        None => std::future::pending().await,
    }
}

enum ReplayEvent {
    Live(Arc<Live>),
    State(replay::PlayState),
}

/// The next thing playback has to say; never resolves without one.
async fn replay_event(replaying: &mut Option<replay::Playback>) -> ReplayEvent {
    let Some(p) = replaying else {
        return std::future::pending().await;
    };
    tokio::select! {
        biased;
        Ok(()) = p.state.changed() => ReplayEvent::State(*p.state.borrow_and_update()),
        Ok(()) = p.live.changed() => ReplayEvent::Live(Arc::clone(&p.live.borrow_and_update())),
        else => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod snapshots;
#[cfg(test)]
mod testing;

#[cfg(test)]
mod browse_tests;
#[cfg(test)]
mod inert_tests;
#[cfg(test)]
mod loop_tests;
