//! The live dashboard. The core knows nothing of it: it runs the same session as `reprise run`
//! and draws the analysis snapshot the session folds.
//!
//! - `keys`: the one key table (handling and the help overlay);
//! - `state`: the UI state and what each command does to it;
//! - `view`: drawing, a pure function of the state and the clock.

pub mod keys;
pub mod state;
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
use crate::session::{run_session_with_start, SessionError, SessionResult, SessionSpec};

use keys::command_for;
use state::{App, Effect, Live, Phase, ServedTally};

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
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}

/// How the dashboard ended.
pub enum Outcome {
    /// The session closed its archive (completed or stopped).
    Closed(Box<SessionResult>),
    /// The session failed; the message was shown.
    Failed(SessionError),
}

#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error("terminal: {0}")]
    Terminal(#[from] io::Error),
    #[error("the session task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Runs the campaign in `spec` under the live dashboard until the user quits.
pub async fn run_live(spec: SessionSpec) -> Result<Outcome, TuiError> {
    let mut guard = TerminalGuard::enter()?;
    let outcome = drive(spec, &mut guard.terminal, EventStream::new()).await;
    drop(guard);
    outcome
}

/// The app loop on any backend and input stream (a test backend and scripted keys in tests).
pub async fn drive<B: ratatui::backend::Backend>(
    spec: SessionSpec,
    terminal: &mut Terminal<B>,
    mut events: impl Stream<Item = io::Result<Event>> + Unpin,
) -> Result<Outcome, TuiError> {
    let protocol = spec.protocol.meta.name.clone();
    let targets = spec
        .protocol
        .targets
        .iter()
        .map(|t| t.name.clone())
        .collect();
    let campaign = spec.protocol.campaign;
    let planned = (spec.protocol.targets.len() * spec.protocol.items.len()) as u64
        * u64::from(campaign.warmup + campaign.repeats);
    let mut app = App::new(protocol, targets, planned);

    let control = RunControl::default();
    let (live_tx, mut live_rx) = watch::channel(Arc::new(Live::default()));
    let (start_tx, mut start_rx) = mpsc::unbounded_channel();
    let session = {
        let control = control.clone();
        tokio::spawn(async move {
            let mut records = 0u64;
            let mut served = ServedTally::default();
            let mut last_sent: Option<Instant> = None;
            run_session_with_start(
                spec,
                control,
                |start| {
                    let _ = start_tx.send(start.clone());
                },
                |record, analyzer| {
                    records += 1;
                    served.add(record);
                    if last_sent.is_none_or(|t| t.elapsed() >= SNAPSHOT_EVERY) {
                        last_sent = Some(Instant::now());
                        let _ = live_tx.send(Arc::new(Live {
                            snapshot: Some(analyzer.snapshot()),
                            records,
                            served: served.counts(),
                        }));
                    }
                },
            )
            .await
            .map(|result| (result, records, served.counts()))
        })
    };
    let mut session = session;
    let mut session_open = true;

    let started = Instant::now();
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    let mut shown_second = 0;
    let mut outcome = None;
    let mut input_open = true;
    loop {
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME) {
            let elapsed = started.elapsed();
            terminal.draw(|frame| view::render(frame, &app, elapsed))?;
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
                    command_for(&key, app.mode()).map_or(Effect::None, |c| app.apply(c))
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
                    app.apply(keys::Command::Interrupt)
                }
            },
            Some(start) = start_rx.recv() => {
                app.identity = Some(start.identity);
                app.archive = Some(start.archive);
                app.planned_calls = start.planned_calls;
                dirty = true;
                Effect::None
            }
            Ok(()) = live_rx.changed() => {
                // An Arc: the UI takes the snapshot without copying its clusters.
                app.live = Arc::clone(&live_rx.borrow_and_update());
                dirty = true;
                Effect::None
            }
            joined = &mut session, if session_open => {
                session_open = false;
                dirty = true;
                match joined? {
                    Ok((result, records, served)) => {
                        app.live = Arc::new(Live {
                            snapshot: Some(result.snapshot.clone()),
                            records,
                            served,
                        });
                        let completed = !result.interrupted();
                        outcome = Some(Outcome::Closed(Box::new(result)));
                        app.session_closed(Phase::Finished { completed })
                    }
                    Err(e) => {
                        let effect = app.session_closed(Phase::Failed(e.to_string()));
                        outcome = Some(Outcome::Failed(e));
                        effect
                    }
                }
            }
            // Ticks advance the clock and flush a frame held back by the rate limit; with
            // neither to do (a closed campaign on screen), the loop sleeps until a key.
            _ = tick.tick(), if app.in_flight() || dirty => {
                // The header clock shows seconds: redraw when it would change.
                if app.in_flight() && started.elapsed().as_secs() != shown_second {
                    dirty = true;
                }
                Effect::None
            }
        };
        match effect {
            Effect::None => {}
            Effect::Stop => control.stop.cancel(),
            Effect::Abort => {
                control.stop.cancel();
                control.abort.cancel();
            }
            Effect::Exit => break,
        }
    }
    match outcome {
        Some(outcome) => Ok(outcome),
        // Exit is only reachable with the session closed; this keeps the type total.
        None => {
            control.stop.cancel();
            match session.await? {
                Ok((result, _, _)) => Ok(Outcome::Closed(Box::new(result))),
                Err(e) => Ok(Outcome::Failed(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests;
