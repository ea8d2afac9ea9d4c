//! Snapshot tests of whole frames at 100×30 and 80×24, colours included: the text grid, then a
//! grid of style letters with a legend (so a heatmap cell or a deleted token that changes colour
//! changes the snapshot).
//!
//! Finished-campaign frames come from the real app loop (`drive`) on a scripted backend —
//! deterministic outputs with splits at known tokens — with a fixed clock and scripted keys.
//! Review changes with `cargo insta review` or by reading the `.snap.new` files.

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::KeyCode;
use ratatui::buffer::Buffer;

use super::keys::Command;
use super::state::{App, Phase};
use super::testing::{
    frame, frame_text, key, live_app, scripted_output, wait_for, Looping, Scripted,
};
use super::Outcome;
use crate::protocol::Protocol;
use crate::record::CallRecord;
use crate::session::SessionSpec;

const SIZES: [(u16, u16); 2] = [(100, 30), (80, 24)];

fn draw(app: &App, width: u16, height: u16) -> Buffer {
    frame(app, width, height, Duration::from_secs(75))
}

fn snapshot(name: &str, buffer: &Buffer) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(name, frame_text(buffer)));
}

/// Runs a scripted two-item campaign to its end in the real loop, then takes a frame after
/// each step of `keys` (a key, and the text that shows it took effect).
async fn finished_campaign_frames(
    width: u16,
    height: u16,
    keys: &[(KeyCode, &str)],
) -> Vec<Buffer> {
    let name = format!("snapshot-{width}x{height}");
    let text = format!(
        "[protocol]\nname = \"{name}\"\ndescription = \"scripted\"\n\n\
         [params]\ntemperature = 0.0\n\n[campaign]\nrepeats = 40\nconcurrency = 1\n\n\
         [[items]]\nname = \"first\"\nuser = \"Tell me about the first printing press.\"\n\n\
         [[items]]\nname = \"second\"\nuser = \"Tell me about the second printing press.\"\n"
    );
    let protocol = Protocol::parse(std::path::Path::new("scripted.toml"), &text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let out = std::path::PathBuf::from(format!("target/{name}.jsonl"));
    let _ = std::fs::remove_file(&out);
    let spec = SessionSpec {
        backends: vec![Arc::new(Scripted::default())],
        protocol,
        out: Some(out),
        dir: None,
    };
    let looping = Looping::start(
        App::new(String::new(), Vec::new(), 0),
        spec,
        width,
        height,
        Duration::from_secs(75),
    );
    let (tx, last, run) = (looping.keys, looping.last, looping.run);
    let mut previous = wait_for(&last, "DONE", None).await;
    let mut frames = Vec::new();
    for (code, needle) in keys {
        tx.send(key(*code)).unwrap();
        previous = wait_for(&last, needle, Some(&previous)).await;
        frames.push(previous.clone());
    }
    tx.send(key(KeyCode::Char('q'))).unwrap();
    let outcome = run.await.unwrap().unwrap();
    assert!(matches!(outcome, Outcome::Closed(_)));
    frames
}

/// A live campaign mid-way, built from synthetic records (stable counts and latencies).
fn mid_campaign() -> App {
    let mut records = Vec::new();
    for call in 0..30u32 {
        for item in ["first", "second"] {
            let user = format!("Tell me about the {item} printing press.");
            records.push(match scripted_output(&user, call) {
                Ok(text) => {
                    let mut r = CallRecord::ok("local", item, call, &text, 40.0 + f64::from(call));
                    r.served.insert("model".into(), "scripted-1".into());
                    r
                }
                Err(e) => CallRecord::failed("local", item, call, e.class, &e.message),
            });
        }
    }
    let mut app = live_app(&["local"], &["first", "second"], &records);
    app.protocol = "snapshot".into();
    app.planned_calls = 200;
    app.identity = Some("sha256:5eed5eed5eed5eed5eed5eed".into());
    app.archive = Some("sessions/20261122-120000-snapshot-5eed5eed5eed.jsonl".into());
    Arc::make_mut(&mut app.live).in_flight = 4;
    app.refresh();
    app
}

#[test]
fn mid_campaign_overview() {
    let app = mid_campaign();
    for (w, h) in SIZES {
        snapshot(&format!("mid-campaign-{w}x{h}"), &draw(&app, w, h));
    }
}

#[test]
fn help_overlay() {
    let mut app = mid_campaign();
    app.apply(Command::ToggleHelp);
    for (w, h) in SIZES {
        snapshot(&format!("help-{w}x{h}"), &draw(&app, w, h));
    }
}

#[test]
fn timing_tab() {
    let mut app = mid_campaign();
    app.apply(Command::ShowTab(super::keys::Tab::Timing));
    for (w, h) in SIZES {
        snapshot(&format!("timing-{w}x{h}"), &draw(&app, w, h));
    }
}

#[test]
fn picker() {
    let app = App::picker(super::picker::PickerState::discover_in(None));
    for (w, h) in SIZES {
        snapshot(&format!("picker-{w}x{h}"), &draw(&app, w, h));
    }
}

/// Without colour the heatmap and the diff keep their meaning in glyphs and markers.
#[test]
fn no_color_divergence_and_diff() {
    let mut app = mid_campaign();
    let env = super::theme::ThemeEnv {
        no_color: true,
        term: Some("xterm-256color".into()),
        ..Default::default()
    };
    app.theme = super::theme::resolve(None, &env).unwrap();
    app.apply(Command::ShowTab(super::keys::Tab::Divergence));
    snapshot("no-color-divergence-100x30", &draw(&app, 100, 30));
    app.apply(Command::ShowTab(super::keys::Tab::Diff));
    app.refresh();
    snapshot("no-color-diff-100x30", &draw(&app, 100, 30));
}

#[test]
fn too_small() {
    let app = mid_campaign();
    snapshot("too-small-59x20", &draw(&app, 59, 20));
}

#[test]
fn finished_campaign_marks_done() {
    let mut app = mid_campaign();
    app.session_closed(Phase::Finished { completed: true });
    for (w, h) in SIZES {
        snapshot(&format!("finished-{w}x{h}"), &draw(&app, w, h));
    }
}

/// The real loop, a scripted campaign run to its end, then each tab in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_campaign_in_the_real_loop() {
    for (w, h) in SIZES {
        let frames = finished_campaign_frames(
            w,
            h,
            &[
                (KeyCode::Down, "DONE"),
                (KeyCode::Char('2'), "┌ divergence ·"),
                (KeyCode::Char('d'), " vs modal"),
            ],
        )
        .await;
        // Timing is drawn from synthetic records (below): real latencies vary run to run.
        let names = ["finished-overview", "finished-divergence", "finished-diff"];
        for (name, frame) in names.iter().zip(&frames) {
            snapshot(&format!("{name}-{w}x{h}"), frame);
        }
    }
}
