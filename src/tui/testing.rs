//! What the dashboard's tests share: frames drawn headless and read back as lines or as text
//! with style letters; a recording backend and scripted keys for driving the real loop; a
//! scripted model whose outputs split from a modal text at known tokens.

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

use super::state::{App, Live};
use super::{drive, Clock, Outcome, TuiError};
use crate::analysis::{AnalysisConfig, Analyzer, DEFAULT_PAIR_BUDGET};
use crate::providers::{Backend as ModelBackend, CallFailure, ChatRequest, Reply};
use crate::record::CallRecord;
use crate::record::ErrorClass;
use crate::session::SessionSpec;

/// One whole frame of `app`, with the header clock at `elapsed`.
pub fn frame(app: &App, width: u16, height: u16, elapsed: Duration) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|f| super::view::render(f, app, elapsed))
        .unwrap();
    terminal.backend().buffer().clone()
}

/// The app watching a campaign whose records so far are `records`, folded in order by the real
/// analyzer; `targets` and `items` in protocol order. Callers adjust the rest (identity, tab…).
pub fn live_app(targets: &[&str], items: &[&str], records: &[CallRecord]) -> App {
    let mut analyzer = Analyzer::new(AnalysisConfig {
        answer: None,
        pair_budget: DEFAULT_PAIR_BUDGET,
        targets: targets.iter().map(|t| t.to_string()).collect(),
        items: items.iter().map(|i| (i.to_string(), None)).collect(),
    });
    for record in records {
        analyzer.fold(record);
    }
    let names = targets.iter().map(|t| t.to_string()).collect();
    let mut app = App::new("capitals".into(), names, records.len() as u64);
    app.live = Arc::new(Live {
        snapshot: Some(analyzer.snapshot()),
        records: records.len() as u64,
        in_flight: 0,
    });
    app
}

/// The symbols of each row.
pub fn lines(buffer: &Buffer) -> Vec<String> {
    let area = buffer.area;
    (0..area.height)
        .map(|y| {
            (0..area.width)
                .map(|x| buffer[(area.x + x, area.y + y)].symbol())
                .collect()
        })
        .collect()
}

/// The first line containing `needle`, with its row.
pub fn find_line<'a>(lines: &'a [String], needle: &str) -> (usize, &'a str) {
    lines
        .iter()
        .enumerate()
        .find(|(_, l)| l.contains(needle))
        .map(|(y, l)| (y, l.as_str()))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{}", lines.join("\n")))
}

/// The first line containing `needle`.
pub fn line_with<'a>(lines: &'a [String], needle: &str) -> &'a str {
    find_line(lines, needle).1
}

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

/// A test backend that keeps the last flushed frame where the test can read it while the
/// loop owns the terminal.
pub struct Recorder {
    inner: TestBackend,
    last: Arc<Mutex<Buffer>>,
    /// Frames flushed so far, and the one that fails (a terminal that goes away).
    frames: usize,
    fail_at: Option<usize>,
}

impl Recorder {
    /// A `width`×`height` terminal, and where its last frame can be read.
    pub fn new(width: u16, height: u16) -> (Recorder, Arc<Mutex<Buffer>>) {
        let last = Arc::new(Mutex::new(Buffer::empty(ratatui::layout::Rect::new(
            0, 0, width, height,
        ))));
        let recorder = Recorder {
            inner: TestBackend::new(width, height),
            last: Arc::clone(&last),
            frames: 0,
            fail_at: None,
        };
        (recorder, last)
    }

    /// A terminal whose `n`th frame fails to flush.
    pub fn failing_at(mut self, n: usize) -> Recorder {
        self.fail_at = Some(n);
        self
    }
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
        self.frames += 1;
        if self.fail_at.is_some_and(|n| self.frames >= n) {
            return Err(io::Error::other("the terminal went away"));
        }
        self.inner.flush()?;
        *self.last.lock().unwrap() = self.inner.buffer().clone();
        Ok(())
    }
}

/// Outputs chosen by call index: most calls give the modal text; others split from it at
/// known tokens; call 7 of every 20 fails. No clock or randomness: frames are reproducible.
#[derive(Default)]
pub struct Scripted {
    /// Calls so far per prompt (concurrency 1 keeps the order fixed).
    pub calls: Mutex<HashMap<String, u32>>,
    /// Time each call takes.
    pub delay: Duration,
}

const MODAL: &str = "The printing press spread across Europe within fifty years, carried by \
                     itinerant printers from Mainz to Venice.";

pub fn scripted_output(user: &str, call: u32) -> Result<String, CallFailure> {
    if call % 20 == 7 {
        return Err(CallFailure::new(ErrorClass::Timeout, "scripted timeout"));
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
    /// Failures stay failures: the views under test show them by class.
    fn retry_policy(&self) -> crate::providers::RetryPolicy {
        crate::providers::RetryPolicy::NONE
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

pub fn key(code: KeyCode) -> io::Result<Event> {
    Ok(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

/// Waits until the last frame shows `needle` (and differs from `previous`: the key took
/// effect), and returns that frame.
pub async fn wait_for(last: &Mutex<Buffer>, needle: &str, previous: Option<&Buffer>) -> Buffer {
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

pub fn key_stream(
    rx: mpsc::UnboundedReceiver<io::Result<Event>>,
) -> impl futures_util::Stream<Item = io::Result<Event>> + Unpin {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (event, rx))
    }))
}

/// The real loop running `spec` on a recording terminal, keys sent by the test.
pub struct Looping {
    pub keys: mpsc::UnboundedSender<io::Result<Event>>,
    pub last: Arc<Mutex<Buffer>>,
    pub run: tokio::task::JoinHandle<Result<Outcome, TuiError>>,
}

impl Looping {
    /// Starts the loop on a `width`×`height` terminal with the header clock fixed at `elapsed`.
    pub fn start(app: App, spec: SessionSpec, width: u16, height: u16, elapsed: Duration) -> Self {
        let (backend, last) = Recorder::new(width, height);
        let (keys, rx) = mpsc::unbounded_channel();
        let run = tokio::spawn(async move {
            let mut terminal = Terminal::new(backend).unwrap();
            drive(
                app,
                Some(spec),
                &mut terminal,
                key_stream(rx),
                Clock::Fixed(elapsed),
            )
            .await
        });
        Looping { keys, last, run }
    }
}
