//! The real app loop driven by scripted keys on a recording backend: pause and resume, stop,
//! relaunch, the reader. Calls take a few milliseconds (a scripted backend) so a campaign is
//! still running when the keys arrive.

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::KeyCode;
use ratatui::buffer::Buffer;
use ratatui::Terminal;

use super::state::App;
use super::testing::{frame_text, key, wait_for, Looping, Recorder, Scripted};
use super::{drive, Clock, Outcome};
use crate::protocol::Protocol;
use crate::session::SessionSpec;

/// The calls counted in the progress gauge of `frame` ("123/4000 calls").
fn calls_done(frame: &Buffer) -> u64 {
    let text = frame_text(frame);
    let at = text.find("/4000 calls").expect("a progress label");
    let digits: String = text[..at]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.chars().rev().collect::<String>().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_resume_goes_on_stop_closes_and_relaunch_starts_a_new_session() {
    let dir = tempfile::tempdir().unwrap();
    let protocol = Protocol::parse(
        std::path::Path::new("scripted.toml"),
        "[protocol]\nname = \"paced\"\ndescription = \"d\"\n\n[prompt]\nuser = \"Hello\"\n\n\
         [campaign]\nrepeats = 4000\nconcurrency = 2\n",
    )
    .unwrap();
    let spec = SessionSpec {
        backends: vec![Arc::new(Scripted {
            delay: Duration::from_millis(3),
            ..Scripted::default()
        })],
        protocol,
        out: None,
        dir: None,
    };
    let mut app = App::new(String::new(), Vec::new(), 0);
    app.sessions_dir = Some(dir.path().to_path_buf());
    let looping = Looping::start(app, spec, 100, 30, Duration::from_secs(5));
    let (tx, last, run) = (looping.keys, looping.last, looping.run);
    wait_for(&last, "LIVE", None).await;
    tx.send(key(KeyCode::Char('p'))).unwrap();
    let paused = wait_for(&last, "PAUSED", None).await;
    // Once the calls in flight are in, the view says so though no record follows: the
    // session reports the lull and the throttled snapshot is sent.
    wait_for(&last, "· 0 in flight", None).await;
    // The in-flight gauge drops as calls end, a moment before their records are counted
    // (the throttled snapshot follows within QUIET); then the count holds while paused.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let held = calls_done(&last.lock().unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        calls_done(&last.lock().unwrap()),
        held,
        "no calls while paused"
    );
    assert!(held < 4000);
    assert!(frame_text(&paused).contains("in flight"));
    tx.send(key(KeyCode::Char('p'))).unwrap();
    wait_for(&last, "LIVE", None).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(calls_done(&last.lock().unwrap()) > held, "resumed");
    tx.send(key(KeyCode::Char('s'))).unwrap();
    wait_for(&last, "STOPPED", None).await;
    // Relaunched within the same second as the first launch, as here, the new archive gets
    // its own name rather than failing on the first one's.
    tx.send(key(KeyCode::Char('r'))).unwrap();
    wait_for(&last, "LIVE", None).await;
    tx.send(key(KeyCode::Char('q'))).unwrap();
    wait_for(&last, "Stop the campaign and quit?", None).await;
    tx.send(key(KeyCode::Char('y'))).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the loop ends")
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Outcome::Closed(_)));
    // Two sessions, each archive closed and sound.
    let archives: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(archives.len(), 2, "{archives:?}");
    for a in &archives {
        crate::archive::verify(a).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enter_reads_a_cluster_in_full_and_esc_closes_it() {
    let protocol = Protocol::parse(
        std::path::Path::new("scripted.toml"),
        "[protocol]\nname = \"reader\"\ndescription = \"d\"\n\n[prompt]\nuser = \"Hello\"\n\n\
         [campaign]\nrepeats = 20\nconcurrency = 1\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = SessionSpec {
        backends: vec![Arc::new(Scripted::default())],
        protocol,
        out: Some(dir.path().join("s.jsonl")),
        dir: None,
    };
    let looping = Looping::start(
        App::new(String::new(), Vec::new(), 0),
        spec,
        80,
        24,
        Duration::from_secs(5),
    );
    let (tx, last, run) = (looping.keys, looping.last, looping.run);
    let done = wait_for(&last, "DONE", None).await;
    tx.send(key(KeyCode::Enter)).unwrap();
    let reader = wait_for(&last, "Esc closes", Some(&done)).await;
    // The whole modal text, wrapped: its last words are on screen though the list cut them.
    let text = frame_text(&reader);
    assert!(text.contains("Mainz to Venice."), "{text}");
    tx.send(key(KeyCode::Esc)).unwrap();
    let closed = wait_for(&last, "DONE", Some(&reader)).await;
    assert!(!frame_text(&closed).contains("Esc closes"));
    tx.send(key(KeyCode::Char('q'))).unwrap();
    run.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_failure_mid_campaign_still_closes_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.jsonl");
    let protocol = Protocol::parse(
        std::path::Path::new("scripted.toml"),
        "[protocol]\nname = \"broken-screen\"\ndescription = \"d\"\n\n[prompt]\nuser = \"Hi\"\n\n\
         [campaign]\nrepeats = 100000\nconcurrency = 2\n",
    )
    .unwrap();
    let spec = SessionSpec {
        backends: vec![Arc::new(Scripted {
            delay: Duration::from_millis(5),
            ..Scripted::default()
        })],
        protocol,
        out: Some(out.clone()),
        dir: None,
    };
    let (backend, _) = Recorder::new(100, 30);
    let mut terminal = Terminal::new(backend.failing_at(5)).unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        drive(
            App::new(String::new(), Vec::new(), 0),
            Some(spec),
            &mut terminal,
            futures_util::stream::pending(),
            Clock::Real,
        ),
    )
    .await
    .expect("the loop ends when the terminal fails");
    assert!(matches!(result, Err(super::TuiError::Terminal(_))));
    // The session was stopped and its closing record written.
    let report = crate::archive::verify(&out).unwrap();
    assert!(report.close.records > 0);
}
