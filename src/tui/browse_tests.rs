//! The session browser in the real loop: from the picker, `o` lists the saved sessions; Enter
//! opens one as `reprise open` does; `b` comes back; two marked compare; a broken archive is a
//! footer line, not a crash.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crossterm::event::KeyCode;
use ratatui::Terminal;
use tokio::sync::mpsc;

use super::picker::PickerState;
use super::state::App;
use super::testing::{frame_text, key, key_stream, wait_for, Recorder};
use super::{drive, Clock, Outcome};
use crate::protocol::Protocol;
use crate::runner::RunControl;
use crate::session::{run_session, SessionSpec};

/// A short session on the local model at `temperature`, archived at `out`.
async fn local_session(out: PathBuf, temperature: f64) -> String {
    let text = format!(
        "[protocol]\nname = \"browsed\"\ndescription = \"d\"\n\n[prompt]\nuser = \"Say hello\"\n\n\
         [params]\ntemperature = {temperature}\nmax_tokens = 8\n\n\
         [campaign]\nrepeats = 6\nconcurrency = 2\n\n\
         [[targets]]\nname = \"m\"\nprovider = \"local\"\n"
    );
    let protocol = Protocol::parse(Path::new("browsed.toml"), &text).unwrap();
    let spec = SessionSpec::new(protocol, Some(out)).unwrap();
    let result = run_session(spec, RunControl::default(), |_, _| {})
        .await
        .unwrap();
    result.identity
}

/// Moves the selection from wherever it is to row `row` of the list.
fn select(keys: &mpsc::UnboundedSender<std::io::Result<crossterm::event::Event>>, row: usize) {
    for _ in 0..5 {
        keys.send(key(KeyCode::Up)).unwrap();
    }
    for _ in 0..row {
        keys.send(key(KeyCode::Down)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_opens_a_saved_session_goes_back_and_compares_two() {
    let dir = tempfile::tempdir().unwrap();
    let identity_a = local_session(dir.path().join("a.jsonl"), 0.0).await;
    local_session(dir.path().join("b.jsonl"), 0.9).await;
    // Lists (header and close are sound) but cannot be opened: a record in the middle is cut.
    let text = std::fs::read_to_string(dir.path().join("a.jsonl")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[2] = "{\"not\": \"a record".into();
    std::fs::write(dir.path().join("broken.jsonl"), lines.join("\n") + "\n").unwrap();
    // Newest first, as the screen lists them.
    let mut order: Vec<PathBuf> = crate::archive::list_sessions(dir.path())
        .unwrap()
        .sessions
        .into_iter()
        .map(|s| s.path)
        .collect();
    order.reverse();
    let row = |name: &str| order.iter().position(|p| p.ends_with(name)).unwrap();

    let mut app = App::picker(PickerState::default());
    app.sessions_dir = Some(dir.path().to_path_buf());
    let (backend, last) = Recorder::new(140, 30);
    let (keys, rx) = mpsc::unbounded_channel();
    let run = tokio::spawn(async move {
        let mut terminal = Terminal::new(backend).unwrap();
        drive(app, None, &mut terminal, key_stream(rx), Clock::Real).await
    });

    keys.send(key(KeyCode::Char('o'))).unwrap();
    let list = frame_text(&wait_for(&last, "saved sessions in", None).await);
    for name in ["a.jsonl", "b.jsonl", "broken.jsonl", "browsed", "completed"] {
        assert!(list.contains(name), "{name}: {list}");
    }

    // A session that cannot be read: one line below the list, and the list stays.
    select(&keys, row("broken.jsonl"));
    keys.send(key(KeyCode::Enter)).unwrap();
    let failed = frame_text(&wait_for(&last, "broken.jsonl:3:", None).await);
    assert!(failed.contains("saved sessions in"), "{failed}");
    assert!(!failed.contains("REPLAY"), "{failed}");

    // Enter opens the session as `reprise open` does; b comes back to the list.
    select(&keys, row("a.jsonl"));
    keys.send(key(KeyCode::Enter)).unwrap();
    let opened = frame_text(&wait_for(&last, "REPLAY", None).await);
    let short = crate::archive::short_identity(&identity_a);
    assert!(opened.contains(&format!("id {short}")), "{opened}");
    assert!(opened.contains("6/6 calls"), "{opened}");
    keys.send(key(KeyCode::Char('b'))).unwrap();
    wait_for(&last, "saved sessions in", None).await;

    // Mark both, compare: compare's table, with its verdict; Esc back to the list.
    select(&keys, row("a.jsonl"));
    keys.send(key(KeyCode::Char(' '))).unwrap();
    select(&keys, row("b.jsonl"));
    keys.send(key(KeyCode::Char(' '))).unwrap();
    let marked = frame_text(&wait_for(&last, "2 marked", None).await);
    assert_eq!(marked.matches("[x]").count(), 2, "{marked}");
    keys.send(key(KeyCode::Char('c'))).unwrap();
    let compared = frame_text(&wait_for(&last, "verdict:", None).await);
    assert!(
        compared.contains("temperature"),
        "the condition changed: {compared}"
    );
    keys.send(key(KeyCode::Esc)).unwrap();
    wait_for(&last, "2 marked", None).await;
    // Esc from the list: the picker.
    keys.send(key(KeyCode::Esc)).unwrap();
    wait_for(&last, "choose a protocol", None).await;
    keys.send(key(KeyCode::Char('q'))).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("q quits")
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Outcome::NothingRun));
}
