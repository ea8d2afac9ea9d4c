//! Playback must end where the live run ended, however it got there: at once, at a pace, or
//! after seeking back and forth; and the dashboard on it says REPLAY.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::KeyCode;
use ratatui::Terminal;
use tokio::sync::mpsc;

use super::*;
use crate::protocol::Protocol;
use crate::report::summary_json;
use crate::runner::RunControl;
use crate::session::{run_session, SessionResult, SessionSpec};
use crate::tui::keys::Command;
use crate::tui::state::Effect;
use crate::tui::testing::{frame_text, key, key_stream, wait_for, Recorder, Scripted};
use crate::tui::{drive_open, Clock, Outcome};

/// Two targets, two items, a failure every 20 calls, calls a few ms apart: a session whose
/// snapshot has clusters, errors and a throughput curve to get wrong.
async fn recorded(dir: &Path, delay_ms: u64) -> (PathBuf, SessionResult) {
    let protocol = Protocol::parse(
        Path::new("scripted.toml"),
        "[protocol]\nname = \"replayed\"\ndescription = \"d\"\n\n\
         [campaign]\nrepeats = 30\nwarmup = 1\nconcurrency = 2\n\n\
         [[items]]\nname = \"first\"\nuser = \"first question\"\n\n\
         [[items]]\nname = \"second\"\nuser = \"second question\"\n\n\
         [[targets]]\nname = \"a\"\nprovider = \"local\"\n\n\
         [[targets]]\nname = \"b\"\nprovider = \"local\"\n",
    )
    .unwrap();
    let out = dir.join("s.jsonl");
    let backend = |_| -> Arc<dyn crate::providers::Backend> {
        Arc::new(Scripted {
            delay: Duration::from_millis(delay_ms),
            ..Scripted::default()
        })
    };
    let spec = SessionSpec {
        backends: vec![backend(0), backend(1)],
        protocol,
        out: Some(out.clone()),
        dir: None,
    };
    let result = run_session(spec, RunControl::default(), |_, _| {})
        .await
        .unwrap();
    (out, result)
}

fn final_live(result: &SessionResult) -> Live {
    // As the live loop holds it once the session closed (see `drive`).
    let archive = crate::archive::read(&result.archive).unwrap();
    Live {
        snapshot: Some(result.snapshot.clone()),
        records: archive.calls.iter().filter(|c| !c.retried).count() as u64,
        in_flight: 0,
    }
}

fn same(a: &Live, b: &Live) {
    assert_eq!(a.snapshot, b.snapshot);
    assert_eq!(a.records, b.records);
    assert_eq!(a.in_flight, b.in_flight);
}

/// Waits until playback publishes a state satisfying `done`, and returns it.
async fn until(playback: &mut Playback, done: impl Fn(&Live) -> bool) -> Arc<Live> {
    let wait = async {
        loop {
            let live = Arc::clone(&playback.live.borrow_and_update());
            if done(&live) {
                return live;
            }
            playback.live.changed().await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("playback got there")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_an_archive_yields_exactly_the_snapshot_the_live_run_ended_with() {
    let dir = tempfile::tempdir().unwrap();
    let (path, result) = recorded(dir.path(), 0).await;
    let opened = open(&path).unwrap();
    assert!(!opened.unfinished());
    assert_eq!(opened.planned_calls(), 2 * 2 * 31);
    let app = opened.app(None);
    assert_eq!(app.identity.as_deref(), Some(result.identity.as_str()));
    assert_eq!(app.targets, ["a", "b"]);
    let playback = opened.play(None);
    let live = Arc::clone(&playback.live.borrow());
    same(&live, &final_live(&result));
    // The summary JSON too, as `reprise run --json` printed it.
    let snapshot = live.snapshot.as_ref().unwrap();
    assert_eq!(
        summary_json(snapshot, &path, &result.identity),
        summary_json(&result.snapshot, &path, &result.identity)
    );
    // The snapshot has something to get wrong: failures, splits, both targets.
    let item = &snapshot.targets[1].items[0];
    assert!(!item.errors_by_class.is_empty() && item.distinct_outputs > 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_replay_grows_as_it_did_live_and_a_fast_one_ends_at_the_same_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    // About 30 calls per target and item at 4 ms, two at a time: some 250 ms of session.
    let (path, result) = recorded(dir.path(), 4).await;
    let end = final_live(&result);
    let player = Player::new(&open(&path).unwrap().archive);
    assert!(
        player.end() > Duration::from_millis(100),
        "{:?}",
        player.end()
    );

    // At a quarter of the recorded pace (about a second) the view sees the campaign
    // part-way, more and more of it.
    let mut playback = Playback::start(Player::new(&open(&path).unwrap().archive), Some(0.25));
    assert_eq!(playback.live.borrow().records, 0, "starts at the start");
    let partway = until(&mut playback, |l| l.records > 0).await;
    assert!(partway.records < end.records, "{}", partway.records);
    let later = until(&mut playback, |l| l.records > partway.records).await;
    assert!(later.records <= end.records);
    // `p`: playback holds where it is until `p` again.
    playback.send(PlayCommand::TogglePause);
    tokio::time::timeout(Duration::from_secs(5), playback.state.changed())
        .await
        .unwrap()
        .unwrap();
    assert!(playback.state.borrow().paused);
    let held = playback.live.borrow().records;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(playback.live.borrow().records, held, "nothing while paused");
    playback.send(PlayCommand::TogglePause);
    let last = until(&mut playback, |l| l.records == end.records).await;
    same(&last, &end);

    let mut fast = Playback::start(player, Some(1000.0));
    let last = until(&mut fast, |l| l.records == end.records).await;
    same(&last, &end);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeking_back_refolds_from_the_start_and_forward_again_ends_at_the_same_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (path, result) = recorded(dir.path(), 2).await;
    let end = final_live(&result);
    let archive = open(&path).unwrap().archive;
    let total = Player::new(&archive).end();
    let half = total / 2;

    // Opened without --replay: the end at once, held.
    let mut playback = Playback::start(Player::new(&archive), None);
    same(&playback.live.borrow(), &end);
    assert!(playback.state.borrow().paused);

    playback.send(PlayCommand::Seek {
        forward: false,
        by: total - half,
    });
    let back = until(&mut playback, |l| l.records < end.records).await;
    // Exactly the state a fresh fold up to that point gives: nothing of the later records.
    let mut fresh = Player::new(&archive);
    fresh.seek(half);
    same(&back, &fresh.live());
    assert!(back.records > 0, "half-way has calls");
    // Paused there: nothing moves on its own.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(playback.live.borrow().records, back.records);

    playback.send(PlayCommand::Seek {
        forward: true,
        by: total,
    });
    let forward = until(&mut playback, |l| l.records == end.records).await;
    same(&forward, &end);

    // Back to the start, then End.
    playback.send(PlayCommand::Seek {
        forward: false,
        by: total * 2,
    });
    until(&mut playback, |l| l.records == 0).await;
    playback.send(PlayCommand::End);
    let again = until(&mut playback, |l| l.records == end.records).await;
    same(&again, &end);
}

#[test]
fn a_player_folds_exactly_the_records_written_by_a_position() {
    let records: Vec<crate::record::CallRecord> = [(0.0, 5.0), (2.0, 1.0), (10.0, 5.0)]
        .iter()
        .enumerate()
        .map(|(call, (start, latency))| {
            serde_json::from_value(serde_json::json!({
                "target": "local", "item": "prompt", "call": call, "attempt": 1,
                "timing": {"start_ms": start, "latency_ms": latency}, "status": "ok",
                "output": "x",
            }))
            .unwrap()
        })
        .collect();
    let header = crate::archive::Header::new(
        serde_json::json!({"targets": [{"name": "local"}], "items": [{"name": "prompt"}]}),
        None,
        std::time::SystemTime::now(),
    );
    let archive = crate::archive::Archive {
        header,
        calls: records,
        close: None,
        truncated_tail: false,
    };
    let mut player = Player::new(&archive);
    assert_eq!(player.end(), Duration::from_millis(15));
    // The second record was written (3 ms) before the first (5 ms) but folded after it, as
    // the live session did: it shows once the first has.
    player.seek(Duration::from_millis(3));
    assert_eq!(player.folded(), 0);
    player.seek(Duration::from_millis(5));
    assert_eq!(player.folded(), 2);
    player.seek(Duration::from_millis(1));
    assert_eq!(player.folded(), 0);
    player.seek(Duration::MAX);
    assert_eq!(player.folded(), 3);
}

#[test]
fn a_replay_maps_campaign_keys_to_playback_or_nothing() {
    let mut app = App::new("p".into(), vec![], 0);
    app.replay = Some(ReplayView {
        unfinished: false,
        speed: Some(1.0),
        state: PlayState::initial(Some(1.0), Duration::from_secs(60)),
    });
    app.phase = Phase::Finished { completed: true };
    assert!(matches!(
        app.apply(Command::Pause),
        Effect::Play(PlayCommand::TogglePause)
    ));
    assert!(matches!(
        app.apply(Command::SeekBack),
        Effect::Play(PlayCommand::Seek { forward: false, by }) if by == SEEK_STEP
    ));
    assert!(matches!(
        app.apply(Command::SeekEnd),
        Effect::Play(PlayCommand::End)
    ));
    for inert in [Command::Stop, Command::Launch, Command::BackToPicker] {
        assert!(matches!(app.apply(inert), Effect::None));
    }
    assert_eq!(app.screen, crate::tui::state::Screen::Live, "no picker");
    // Nothing is in flight: quit needs no confirmation.
    assert!(matches!(app.apply(Command::Quit), Effect::Exit));

    // And a live campaign has nothing to seek.
    let mut live = App::new("p".into(), vec![], 10);
    assert!(matches!(live.apply(Command::SeekForward), Effect::None));
}

#[test]
fn the_clock_runs_at_the_speed_and_stops_at_the_end_or_when_paused() {
    let end = Duration::from_secs(100);
    let mut state = PlayState::initial(Some(10.0), end);
    let t0 = state.at;
    assert_eq!(
        state.position_at(t0 + Duration::from_secs(2)),
        Duration::from_secs(20)
    );
    assert_eq!(state.position_at(t0 + Duration::from_secs(60)), end);
    assert!(!state.moving_at(t0 + Duration::from_secs(60)));
    state.paused = true;
    assert_eq!(
        state.position_at(t0 + Duration::from_secs(2)),
        Duration::ZERO
    );
    assert!(!state.moving_at(t0));
}

/// The real loop on an opened archive; the last frame and the key sender.
struct OnScreen {
    keys: mpsc::UnboundedSender<std::io::Result<crossterm::event::Event>>,
    last: Arc<std::sync::Mutex<ratatui::buffer::Buffer>>,
    run: tokio::task::JoinHandle<Result<Outcome, crate::tui::TuiError>>,
}

fn on_screen(path: &Path, speed: Option<f64>) -> OnScreen {
    let opened = open(path).unwrap();
    let app = opened.app(speed);
    let playback = opened.play(speed);
    let (backend, last) = Recorder::new(100, 30);
    let (keys, rx) = mpsc::unbounded_channel();
    let run = tokio::spawn(async move {
        let mut terminal = Terminal::new(backend).unwrap();
        drive_open(app, playback, &mut terminal, key_stream(rx), Clock::Real).await
    });
    OnScreen { keys, last, run }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opened_archive_shows_replay_its_identity_and_every_call_and_q_quits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (path, result) = recorded(dir.path(), 0).await;
    let s = on_screen(&path, None);
    let frame = wait_for(&s.last, "REPLAY", None).await;
    let text = frame_text(&frame);
    let short = crate::archive::short_identity(&result.identity);
    assert!(text.contains(&format!("id {short}")), "{text}");
    assert!(text.contains("124/124 calls"), "{text}");
    assert!(text.contains("s.jsonl"), "the archive path: {text}");
    assert!(!text.contains("unfinished"), "{text}");
    // Stop, relaunch, picker: nothing happens; the help says why.
    for c in ['s', 'r', 'e'] {
        s.keys.send(key(KeyCode::Char(c))).unwrap();
    }
    s.keys.send(key(KeyCode::Char('?'))).unwrap();
    let help = wait_for(&s.last, "no calls are sent", Some(&frame)).await;
    let help = frame_text(&help);
    assert!(help.contains("(not in a replay)"), "{help}");
    assert!(help.contains("pause or resume the playback"), "{help}");
    assert!(help.contains("jump to the end"), "{help}");
    s.keys.send(key(KeyCode::Esc)).unwrap();
    // Every tab draws from the replayed snapshot.
    s.keys.send(key(KeyCode::Char('2'))).unwrap();
    wait_for(&s.last, "token similarity", None).await;
    s.keys.send(key(KeyCode::Char('q'))).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), s.run)
        .await
        .expect("q quits without asking")
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Outcome::NothingRun));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_archive_opens_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = recorded(dir.path(), 0).await;
    // Killed: no closing record, and half a line cut.
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines[..lines.len() - 11].join("\n") + "\n" + &lines[lines.len() - 11][..20];
    std::fs::write(&path, kept).unwrap();
    let opened = open(&path).unwrap();
    assert!(opened.unfinished());
    assert_eq!(opened.planned_calls(), 124, "from the recorded campaign");
    let s = on_screen(&path, Some(1000.0));
    let frame = wait_for(&s.last, "unfinished", None).await;
    assert!(frame_text(&frame).contains("REPLAY"));
    wait_for(&s.last, "114/124 calls", None).await;
    s.keys.send(key(KeyCode::Char('q'))).unwrap();
    s.run.await.unwrap().unwrap();
}
