//! Headless rendering: a real snapshot (records folded by the analyzer) drawn into a test
//! backend, asserted on the lines of the buffer.

use std::sync::Arc;
use std::time::Duration;

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::keys::KEYS;
use super::state::{App, Phase};
use super::testing::{find_line, frame, line_with, lines, live_app};
use crate::record::{CallRecord, ErrorClass};

fn app_with(outputs: &[&str]) -> App {
    let mut records: Vec<CallRecord> = outputs
        .iter()
        .enumerate()
        .map(|(call, out)| {
            let mut record = CallRecord::ok("local", "capital", call as u32, out, 12.0);
            record.served.insert("model".into(), "m1".into());
            record
                .served
                .insert("response_id".into(), format!("r{call}"));
            record
        })
        .collect();
    records.push(CallRecord::failed(
        "local",
        "capital",
        outputs.len() as u32,
        ErrorClass::Timeout,
        "slow",
    ));
    let mut app = live_app(&["local"], &["capital"], &records);
    app.planned_calls = 20;
    app.identity = Some("sha256:0123456789abcdef0123".into());
    Arc::make_mut(&mut app.live).in_flight = 3;
    app
}

fn draw(app: &App, width: u16, height: u16) -> Vec<String> {
    lines(&frame(app, width, height, Duration::from_secs(75)))
}

const OUTPUTS: &[&str] = &[
    "Paris is the capital.",
    "Paris is the capital.",
    "Paris is the capital.",
    "Paris, of course.",
];

#[test]
fn live_view_shows_snapshot_measures_at_both_sizes() {
    let app = app_with(OUTPUTS);
    for (w, h) in [(100, 30), (80, 24)] {
        let lines = draw(&app, w, h);
        let header = line_with(&lines, "reprise");
        for part in ["capitals", "local", "0123456789ab", "LIVE", "00:01:15"] {
            assert!(header.contains(part), "{w}x{h}: {header}");
        }
        let gauge = line_with(&lines, "calls/s");
        assert!(gauge.contains("5/20 calls"), "{gauge}");
        assert!(gauge.contains("timeout 1"), "{gauge}");
        // 5 calls in 75 s: 15 left at 1/15 calls/s.
        assert!(gauge.contains("eta 00:03:45"), "{gauge}");
        // 3 of 4 successful calls share the modal output: 75%, two distinct, diverged.
        let row = line_with(&lines, "capital ");
        assert!(row.contains("75.0% ["), "{w}x{h}: {row}");
        assert!(row.contains("diverged"), "{row}");
        assert!(row.contains(" 2 "), "{row}");
        // One served identity: the response id does not count as a different server.
        assert!(row.trim_end_matches('│').trim_end().ends_with('1'), "{row}");
        let modal = line_with(&lines, "#0");
        assert!(modal.contains("3  75.0%"), "{modal}");
        assert!(modal.contains("Paris is the capital."), "{modal}");
        let other = line_with(&lines, "#1");
        assert!(other.contains("1  25.0%"), "{other}");
        assert!(other.contains("Paris, of course."), "{other}");
    }
}

#[test]
fn an_estimate_too_long_for_a_duration_is_left_out_not_panicked_on() {
    let mut app = app_with(OUTPUTS);
    app.planned_calls = u64::MAX;
    // 5 calls in ~146 billion years: the rest would take longer than any duration holds.
    let lines = lines(&frame(&app, 100, 30, Duration::from_secs(u64::MAX / 4)));
    let gauge = line_with(&lines, "calls/s");
    assert!(!gauge.contains("eta"), "{gauge}");
    assert!(gauge.contains("5/18446744073709551615 calls"), "{gauge}");
}

const STOP: &str = "target `local`: the first 5 calls all failed (auth): provider `p` refused \
                    the credentials (HTTP 401): bad \x1b[2Jkey; no more calls were sent to it \
                    (breaker = 5 in [campaign])";

#[test]
fn a_breaker_stop_is_said_as_an_error_and_the_campaign_shown_stopping_then_stopped() {
    let mut app = app_with(OUTPUTS);
    app.stopped = vec![STOP.to_string()];
    let shown = |app: &App| {
        let buffer = frame(app, 100, 30, Duration::from_secs(75));
        let lines = lines(&buffer);
        let (y, line) = find_line(&lines, "stopped · target `local`: the first 5 calls all");
        let x = line.chars().position(|c| c == 's').unwrap();
        assert_eq!(
            buffer[(x as u16, y as u16)].fg,
            app.theme.error.fg.unwrap(),
            "in the error style"
        );
        assert!(!lines.iter().any(|l| l.contains('\x1b')), "made inert");
        line_with(&lines, "reprise").to_string()
    };
    // Its only target is sent no more calls: the calls in flight are all that is left.
    assert!(shown(&app).contains("STOPPING"));
    app.session_closed(Phase::Finished { completed: false });
    assert!(shown(&app).contains("STOPPED"));
    // With another target still running, the campaign is live; the stop is still said.
    let mut two = live_app(&["local", "other"], &["capital"], &[]);
    two.stopped = vec![STOP.to_string()];
    assert!(shown(&two).contains("LIVE"));
}

#[test]
fn a_target_its_breaker_stopped_says_why_in_full_where_its_answers_would_be() {
    let failed = crate::record::CallRecord::failed(
        "local",
        "capital",
        0,
        crate::record::ErrorClass::Auth,
        "401",
    );
    let mut app = live_app(&["local"], &["capital"], &[failed]);
    app.stopped = vec![STOP.to_string()];
    let shown = |app: &App| lines(&frame(app, 80, 24, Duration::from_secs(5)));
    let stopped = shown(&app);
    // The whole sentence, wrapped: even at 80 columns its end is on screen.
    line_with(
        &stopped,
        "no answer: target `local`: the first 5 calls all failed",
    );
    line_with(&stopped, "(breaker = 5 in [campaign])");
    assert!(!stopped.iter().any(|l| l.contains('\x1b')), "made inert");
    app.stopped.clear();
    line_with(&shown(&app), "waiting for the first answer…");
}

/// Refuses every call: the credentials are wrong.
struct Refusing;

#[async_trait::async_trait]
impl crate::providers::Backend for Refusing {
    fn request_body(&self, _: &crate::providers::ChatRequest) -> serde_json::Value {
        serde_json::json!({})
    }
    fn endpoint(&self) -> String {
        "test".into()
    }
    async fn call(
        &self,
        _: &crate::providers::ChatRequest,
    ) -> Result<crate::providers::Reply, crate::providers::CallFailure> {
        Err(crate::providers::CallFailure::new(
            ErrorClass::Auth,
            "provider `p` refused the credentials (HTTP 401)",
        ))
    }
}

#[tokio::test]
async fn a_session_its_breaker_stopped_shows_why_when_closed_and_when_opened_again() {
    let dir = tempfile::tempdir().unwrap();
    let protocol = crate::protocol::Protocol::parse(
        std::path::Path::new("p.toml"),
        "[protocol]\nname = \"p\"\n[prompt]\nuser = \"Hi\"\n[campaign]\nrepeats = 50\nconcurrency = 2\n",
    )
    .unwrap();
    let spec = crate::session::SessionSpec {
        protocol,
        backends: vec![Arc::new(Refusing)],
        out: Some(dir.path().join("s.jsonl")),
        dir: None,
    };
    let result = crate::session::run_session(spec, crate::runner::RunControl::default(), |_, _| {})
        .await
        .unwrap();
    let why = "target `local`: the first 5 calls all failed (auth): provider `p` refused the \
               credentials (HTTP 401); no more calls were sent to it (breaker = 5 in [campaign])";
    assert_eq!(super::failed_reason(&result).as_deref(), Some(why));
    let opened = super::replay::open(&result.archive).unwrap().app(None);
    assert_eq!(opened.stopped, [why]);
}

#[test]
fn finished_campaign_is_marked_done() {
    let mut app = app_with(OUTPUTS);
    app.session_closed(Phase::Finished { completed: true });
    let lines = draw(&app, 100, 30);
    assert!(line_with(&lines, "reprise").contains("DONE"));
    assert!(!lines.iter().any(|l| l.contains("LIVE")));
}

#[test]
fn help_overlay_lists_every_key_of_the_table() {
    for (w, h) in [(100, 30), (80, 24)] {
        let mut app = app_with(OUTPUTS);
        app.apply(super::keys::Command::ToggleHelp);
        // Scroll through the whole help, collecting every screen.
        let mut lines = Vec::new();
        for _ in 0..KEYS.len() {
            lines.extend(draw(&app, w, h));
            app.apply(super::keys::Command::SelectDown);
        }
        // Seeking is for replays only (see the replay tests); a campaign's help leaves it out.
        for binding in KEYS.iter().filter(|b| !super::keys::replay_only(b.command)) {
            let line = line_with(&lines, binding.help);
            assert!(
                line.contains(&format!(" {} ", binding.key_label())),
                "{w}x{h}: {line}"
            );
        }
    }
}

#[test]
fn quit_prompt_is_drawn_while_calls_are_in_flight() {
    let mut app = app_with(OUTPUTS);
    app.apply(super::keys::Command::Quit);
    let lines = draw(&app, 80, 24);
    line_with(&lines, "Stop the campaign and quit?");
    line_with(&lines, "y / n");
}

#[test]
fn too_small_terminal_says_so() {
    let app = app_with(OUTPUTS);
    let lines = draw(&app, 40, 10);
    line_with(&lines, "terminal too small");
    assert!(!lines.iter().any(|l| l.contains("calls/s")));
}

#[test]
fn model_escape_sequences_render_inert() {
    let hostile = "\x1b[2J\x1b]0;pwned\x07\u{9b}31mred\x1b[0m";
    let app = app_with(&[hostile, hostile, "plain"]);
    let lines = draw(&app, 100, 30);
    let line = line_with(&lines, "pwned");
    assert!(line.contains("␛[2J␛]0;pwned␇"), "{line}");
    for l in &lines {
        assert!(!l.chars().any(char::is_control), "{l:?}");
    }
}

#[test]
fn selection_moves_within_the_clusters() {
    let mut app = app_with(OUTPUTS);
    app.apply(super::keys::Command::SelectDown);
    app.apply(super::keys::Command::SelectDown);
    // Two clusters: the selection stops at the last one.
    assert_eq!(app.selected, 1);
    app.apply(super::keys::Command::SelectUp);
    assert_eq!(app.selected, 0);
}

#[test]
fn tab_shows_the_clusters_of_the_next_item() {
    let mut app = live_app(
        &["local"],
        &["first", "second"],
        &[
            CallRecord::ok("local", "first", 0, "alpha", 1.0),
            CallRecord::ok("local", "second", 0, "beta", 1.0),
        ],
    );
    let lines = draw(&app, 80, 24);
    assert!(line_with(&lines, "#0").contains("alpha"));
    app.apply(super::keys::Command::NextItem);
    let lines = draw(&app, 80, 24);
    line_with(&lines, "clusters · local · second");
    assert!(line_with(&lines, "#0").contains("beta"));
    // Wraps around past the last item.
    app.apply(super::keys::Command::NextItem);
    assert_eq!(app.item, 0);
}

/// The real loop on a test backend: a long campaign, `q` then `y` scripted, then no more input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quit_confirmed_stops_the_campaign_and_closes_the_archive() {
    use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
    use futures_util::stream::{self, StreamExt};

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("session.jsonl");
    let mut protocol = crate::protocol::Protocol::load(std::path::Path::new(
        "sample-protocols/multiple-choice.toml",
    ))
    .unwrap();
    protocol.campaign.repeats = 1_000_000;
    let backends = protocol
        .targets
        .iter()
        .map(|t| crate::providers::backend_for(&protocol, t))
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let spec = crate::session::SessionSpec {
        protocol,
        backends,
        out: Some(out.clone()),
        dir: None,
    };
    let app = App::new(String::new(), Vec::new(), 0);
    let key = |c| {
        Ok(Event::Key(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::NONE,
        )))
    };
    // After the keys, input stays open (pending) so only the confirmed quit can end the loop.
    let keys = stream::iter(vec![key('?'), key('x'), key('q'), key('y')]).chain(stream::pending());
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        super::drive(
            app,
            Some(spec),
            &mut terminal,
            keys,
            super::Clock::Fixed(Duration::from_secs(75)),
        ),
    )
    .await
    .expect("the loop ends once the stopped session closes")
    .unwrap();
    let super::Outcome::Closed(result) = outcome else {
        panic!("the session failed");
    };
    assert!(result.interrupted());
    assert!(result.close.records < result.close.planned_calls);
    // The archive has its closing record and a sound chain.
    crate::archive::verify(&out).unwrap();
    let lines: Vec<String> = (0..30)
        .map(|y| {
            (0..100)
                .map(|x| terminal.backend().buffer()[(x, y)].symbol().to_string())
                .collect()
        })
        .collect();
    assert!(line_with(&lines, "reprise").contains("multiple-choice"));
}

#[test]
fn a_late_split_is_previewed_from_where_it_turns() {
    let same = "one two three four five six seven";
    let app = app_with(&[
        &format!("{same} eight nine"),
        &format!("{same} eight nine"),
        &format!("{same} ELEVEN twelve"),
    ]);
    let lines = draw(&app, 100, 30);
    let late = line_with(&lines, "#1");
    // The modal output is shown from its start; the other from just before its split.
    assert!(line_with(&lines, "#0").contains("one two three"));
    assert!(late.contains("…"), "{late}");
    assert!(late.contains("ELEVEN twelve"), "{late}");
    assert!(!late.contains("one two"), "{late}");
}

#[test]
fn two_targets_side_by_side_when_wide_and_switched_when_narrow() {
    let mut records = Vec::new();
    for call in 0..4 {
        records.push(CallRecord::ok("alpha", "q", call, "from alpha", 1.0));
        records.push(CallRecord::ok("beta", "q", call, "from beta", 1.0));
    }
    let mut app = live_app(&["alpha", "beta"], &["q"], &records);
    let wide = draw(&app, 160, 40);
    let both = line_with(&wide, "clusters · alpha");
    assert!(both.contains("clusters · beta"), "{both}");
    // The consistency panel names the target of each row.
    line_with(&wide, "alpha ");
    line_with(&wide, "beta ");
    let narrow = draw(&app, 100, 30);
    line_with(&narrow, "clusters · alpha");
    assert!(!narrow.iter().any(|l| l.contains("clusters · beta")));
    app.apply(super::keys::Command::NextTarget);
    let narrow = draw(&app, 100, 30);
    line_with(&narrow, "clusters · beta");
    assert!(line_with(&narrow, "#0").contains("from beta"));
}

#[test]
fn model_escape_sequences_are_inert_in_every_view() {
    use super::keys::{Command, Tab};
    let hostile = "\x1b[2J\x1b]0;pwned\x07 then \u{9b}31mred\x1b[0m and \x1b]8;;http://x\x1b\\link";
    let mut app = app_with(&[hostile, hostile, "plain words here"]);
    app.refresh();
    let mut screens = Vec::new();
    for tab in Tab::ALL {
        app.apply(Command::ShowTab(tab));
        app.refresh();
        screens.push((tab.label(), draw(&app, 100, 30)));
    }
    app.apply(Command::ShowTab(Tab::Overview));
    app.apply(Command::Activate);
    screens.push(("reader", draw(&app, 100, 30)));
    for (view, lines) in &screens {
        for l in lines {
            assert!(!l.chars().any(char::is_control), "{view}: {l:?}");
        }
    }
    // The sequences are shown as visible pictures where the text is shown.
    for view in ["overview", "diff", "reader"] {
        let (_, lines) = screens.iter().find(|(v, _)| *v == view).unwrap();
        assert!(
            lines.iter().any(|l| l.contains("␛]0;pwned␇")),
            "{view}:\n{}",
            lines.join("\n")
        );
    }
}
