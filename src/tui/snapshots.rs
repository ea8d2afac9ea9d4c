//! Snapshot tests of whole frames at 100×30 and 80×24, colours included: the text grid, then a
//! grid of style letters with a legend (so a heatmap cell or a deleted token that changes colour
//! changes the snapshot).
//!
//! Finished-campaign frames come from the real app loop (`drive`) on a scripted backend —
//! deterministic outputs with splits at known tokens — with a fixed clock and scripted keys.
//! Review changes with `cargo insta review` or by reading the `.snap.new` files.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::{Backend, ClearType, TestBackend, WindowSize};
use ratatui::buffer::{Buffer, Cell};
use ratatui::layout::{Position, Size};
use ratatui::style::{Color, Modifier, Style};
use ratatui::Terminal;
use tokio::sync::mpsc;

use super::keys::Command;
use super::state::{App, Live, Phase, ServedTally};
use super::{drive, Clock, Outcome};
use crate::analysis::{AnalysisConfig, Analyzer, DEFAULT_PAIR_BUDGET};
use crate::protocol::Protocol;
use crate::providers::{Backend as ModelBackend, CallFailure, ChatRequest, Reply};
use crate::record::{CallRecord, ErrorClass};
use crate::session::SessionSpec;

const SIZES: [(u16, u16); 2] = [(100, 30), (80, 24)];

/// The frame as text, then its styles as letters with a legend.
pub fn frame_text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut legend: Vec<Style> = Vec::new();
    let mut letters: HashMap<Style, char> = HashMap::new();
    let mut text = String::new();
    let mut styles = String::new();
    for y in 0..area.height {
        for x in 0..area.width {
            let cell = &buffer[(x, y)];
            text.push_str(cell.symbol());
            let style = cell_style(cell);
            let letter = if style == Style::new().fg(Color::Reset).bg(Color::Reset) {
                '.'
            } else {
                *letters.entry(style).or_insert_with(|| {
                    legend.push(style);
                    letter_for(legend.len() - 1)
                })
            };
            styles.push(letter);
        }
        text.push('\n');
        styles.push('\n');
    }
    let mut out = text;
    out.push_str("--- styles ('.' is the terminal default)\n");
    out.push_str(&styles);
    for (i, style) in legend.iter().enumerate() {
        out.push_str(&format!("{} = {}\n", letter_for(i), describe(*style)));
    }
    out
}

fn cell_style(cell: &Cell) -> Style {
    Style::new()
        .fg(cell.fg)
        .bg(cell.bg)
        .add_modifier(cell.modifier)
}

fn letter_for(i: usize) -> char {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    LETTERS.get(i).map_or('#', |b| *b as char)
}

fn describe(style: Style) -> String {
    let mut parts = Vec::new();
    if let Some(fg) = style.fg.filter(|c| *c != Color::Reset) {
        parts.push(format!("fg {fg}"));
    }
    if let Some(bg) = style.bg.filter(|c| *c != Color::Reset) {
        parts.push(format!("bg {bg}"));
    }
    if style.add_modifier != Modifier::empty() {
        parts.push(format!("{:?}", style.add_modifier));
    }
    if parts.is_empty() {
        "default".into()
    } else {
        parts.join(" ")
    }
}

fn draw(app: &App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| super::view::render(frame, app, Duration::from_secs(75)))
        .unwrap();
    terminal.backend().buffer().clone()
}

fn snapshot(name: &str, buffer: &Buffer) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(name, frame_text(buffer)));
}

/// A test backend that keeps the last flushed frame where the test can read it while the
/// loop owns the terminal.
pub(super) struct Recorder {
    pub(super) inner: TestBackend,
    pub(super) last: Arc<Mutex<Buffer>>,
}

impl Backend for Recorder {
    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> io::Result<()> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> io::Result<()> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> io::Result<Position> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        self.inner.set_cursor_position(position)
    }
    fn clear(&mut self) -> io::Result<()> {
        self.inner.clear()
    }
    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        self.inner.clear_region(clear_type)
    }
    fn size(&self) -> io::Result<Size> {
        self.inner.size()
    }
    fn window_size(&mut self) -> io::Result<WindowSize> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()?;
        *self.last.lock().unwrap() = self.inner.buffer().clone();
        Ok(())
    }
}

/// Outputs chosen by call index: most calls give the modal text; others split from it at
/// known tokens; call 7 of every 20 fails. No clock or randomness: frames are reproducible.
#[derive(Default)]
pub(super) struct Scripted {
    /// Calls so far per prompt (concurrency 1 keeps the order fixed).
    pub(super) calls: Mutex<HashMap<String, u32>>,
    /// Time each call takes.
    pub(super) delay: Duration,
}

const MODAL: &str = "The printing press spread across Europe within fifty years, carried by \
                     itinerant printers from Mainz to Venice.";

fn scripted_output(user: &str, call: u32) -> Result<String, CallFailure> {
    if call % 20 == 7 {
        return Err(CallFailure {
            class: ErrorClass::Timeout,
            message: "scripted timeout".into(),
        });
    }
    let text = match call % 10 {
        3 | 8 => MODAL.replace("fifty years", "a few decades"),
        5 => MODAL.replace("Venice", "Paris"),
        9 if user.contains("second") => "A different answer altogether.".to_string(),
        _ => MODAL.to_string(),
    };
    Ok(text)
}

#[async_trait::async_trait]
impl ModelBackend for Scripted {
    fn request_body(&self, request: &ChatRequest) -> serde_json::Value {
        serde_json::json!({ "scripted": request.user })
    }
    fn endpoint(&self) -> String {
        "in-process (scripted for tests)".into()
    }
    async fn call(&self, request: &ChatRequest) -> Result<Reply, CallFailure> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let call = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(request.user.clone()).or_default();
            *n += 1;
            *n - 1
        };
        scripted_output(&request.user, call).map(|text| Reply {
            text,
            finish_reason: Some("stop".into()),
            served: [("model".to_string(), "scripted-1".to_string())].into(),
            ..Default::default()
        })
    }
}

pub(super) fn key(code: KeyCode) -> io::Result<Event> {
    Ok(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
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
    let last = Arc::new(Mutex::new(Buffer::empty(ratatui::layout::Rect::new(
        0, 0, width, height,
    ))));
    let backend = Recorder {
        inner: TestBackend::new(width, height),
        last: Arc::clone(&last),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let events = key_stream(rx);
    let run = tokio::spawn(async move {
        let mut terminal = Terminal::new(backend).unwrap();
        drive(
            App::new(String::new(), Vec::new(), 0),
            Some(spec),
            &mut terminal,
            events,
            Clock::Fixed(Duration::from_secs(75)),
        )
        .await
    });
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

/// Waits until the last frame shows `needle` (and differs from `previous`: the key took
/// effect), and returns that frame.
pub(super) async fn wait_for(
    last: &Mutex<Buffer>,
    needle: &str,
    previous: Option<&Buffer>,
) -> Buffer {
    for _ in 0..3000 {
        let frame = last.lock().unwrap().clone();
        if frame_text(&frame).contains(needle) && previous != Some(&frame) {
            return frame;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "no frame showed {needle:?}; last:\n{}",
        frame_text(&last.lock().unwrap())
    );
}

pub(super) fn key_stream(
    rx: mpsc::UnboundedReceiver<io::Result<Event>>,
) -> impl futures_util::Stream<Item = io::Result<Event>> + Unpin {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (event, rx))
    }))
}

/// A live campaign mid-way, built from synthetic records (stable counts and latencies).
fn mid_campaign() -> App {
    let mut analyzer = Analyzer::new(AnalysisConfig {
        answer: None,
        pair_budget: DEFAULT_PAIR_BUDGET,
        targets: vec!["local".into()],
        items: vec![("first".into(), None), ("second".into(), None)],
    });
    let mut served = ServedTally::default();
    let mut records = 0;
    for call in 0..30u32 {
        for item in ["first", "second"] {
            let user = format!("Tell me about the {item} printing press.");
            let record = match scripted_output(&user, call) {
                Ok(text) => {
                    let mut r = CallRecord::ok("local", item, call, &text, 40.0 + f64::from(call));
                    r.served.insert("model".into(), "scripted-1".into());
                    r
                }
                Err(e) => CallRecord::failed("local", item, call, e.class, &e.message),
            };
            analyzer.fold(&record);
            served.add(&record);
            records += 1;
        }
    }
    let mut app = App::new("snapshot".into(), vec!["local".into()], 200);
    app.identity = Some("sha256:5eed5eed5eed5eed5eed5eed".into());
    app.archive = Some("sessions/20261122-120000-snapshot-5eed5eed5eed.jsonl".into());
    app.live = Arc::new(Live {
        snapshot: Some(analyzer.snapshot()),
        records,
        served: served.counts(),
        in_flight: 4,
    });
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
