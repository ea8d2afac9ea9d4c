//! Themes: data with semantic accessors. Views ask for `theme.diff_insert()` or
//! `theme.heat(0.7)`, never for a colour literal.
//!
//! A theme is resolved once at start (flag, config file, `NO_COLOR`, terminal colour depth) and
//! is then a plain value the render functions read.

use ratatui::style::{Color, Modifier, Style};

/// What the terminal can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorSupport {
    /// `NO_COLOR` or a terminal without colour: meaning is carried by glyphs and modifiers.
    None,
    /// The 16 ANSI colours: RGB values are mapped to the nearest of them.
    Ansi16,
    /// 256 colours or true colour.
    Full,
}

/// The header badge for each campaign state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Badge {
    Live,
    Paused,
    Stopping,
    Done,
    Stopped,
    Failed,
    Replay,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub support: ColorSupport,
    pub text: Style,
    pub muted: Style,
    pub accent: Style,
    pub title: Style,
    pub border: Style,
    pub selected: Style,
    pub warning: Style,
    pub error: Style,
    pub gauge: Style,
    pub bar: Style,
    pub badge_live: Style,
    pub badge_paused: Style,
    pub badge_done: Style,
    pub badge_stopped: Style,
    pub badge_failed: Style,
    pub badge_replay: Style,
    pub diff_insert: Style,
    pub diff_delete: Style,
    /// Heatmap ramp from 0 (nobody agrees with the modal output here) to 1 (all agree).
    pub heat: Vec<Color>,
    /// Heatmap cells past the end of an output.
    pub heat_empty: Color,
    /// Glyphs from low to high, used when colour is off.
    pub heat_glyphs: Vec<char>,
}

impl Theme {
    /// The built-in default, used when nothing else is chosen.
    pub fn dark() -> Theme {
        Theme {
            name: "dark".into(),
            support: ColorSupport::Full,
            text: Style::new(),
            muted: Style::new().fg(Color::DarkGray),
            accent: Style::new().fg(Color::Cyan),
            title: Style::new().add_modifier(Modifier::BOLD),
            border: Style::new(),
            selected: Style::new().add_modifier(Modifier::REVERSED),
            warning: Style::new().fg(Color::Yellow),
            error: Style::new().fg(Color::Red),
            gauge: Style::new().fg(Color::Green).bg(Color::DarkGray),
            bar: Style::new().fg(Color::Cyan),
            badge_live: Style::new().fg(Color::Black).bg(Color::Green),
            badge_paused: Style::new().fg(Color::Black).bg(Color::Yellow),
            badge_done: Style::new().fg(Color::Black).bg(Color::Cyan),
            badge_stopped: Style::new().fg(Color::Black).bg(Color::Yellow),
            badge_failed: Style::new().fg(Color::White).bg(Color::Red),
            badge_replay: Style::new().fg(Color::Black).bg(Color::Magenta),
            diff_insert: Style::new().fg(Color::Black).bg(Color::Green),
            diff_delete: Style::new()
                .fg(Color::Black)
                .bg(Color::Red)
                .add_modifier(Modifier::CROSSED_OUT),
            heat: vec![
                Color::Rgb(178, 24, 43),
                Color::Rgb(239, 138, 98),
                Color::Rgb(253, 219, 199),
                Color::Rgb(146, 197, 222),
                Color::Rgb(33, 102, 172),
            ],
            heat_empty: Color::Reset,
            heat_glyphs: vec![' ', '░', '▒', '▓', '█'],
        }
    }

    pub fn uses_color(&self) -> bool {
        self.support != ColorSupport::None
    }

    pub fn badge(&self, badge: Badge) -> Style {
        match badge {
            Badge::Live => self.badge_live,
            Badge::Paused => self.badge_paused,
            Badge::Stopping | Badge::Stopped => self.badge_stopped,
            Badge::Done => self.badge_done,
            Badge::Failed => self.badge_failed,
            Badge::Replay => self.badge_replay,
        }
    }

    pub fn diff_insert(&self) -> Style {
        self.diff_insert
    }

    pub fn diff_delete(&self) -> Style {
        self.diff_delete
    }

    /// The heatmap colour for agreement `x` in 0..=1 (nearest stop of the ramp).
    pub fn heat(&self, x: f64) -> Color {
        pick(&self.heat, x).copied().unwrap_or(Color::Reset)
    }

    /// The heatmap glyph for agreement `x` in 0..=1, for terminals without colour.
    pub fn heat_glyph(&self, x: f64) -> char {
        pick(&self.heat_glyphs, x).copied().unwrap_or(' ')
    }
}

impl Default for Theme {
    fn default() -> Self {
        Theme::dark()
    }
}

/// The theme named on the command line (or the default).
pub fn resolve(name: Option<&str>) -> Result<Theme, String> {
    match name {
        None | Some("dark") => Ok(Theme::dark()),
        Some(other) => Err(format!("--theme `{other}`: no such theme; known: dark")),
    }
}

fn pick<T>(ramp: &[T], x: f64) -> Option<&T> {
    let n = ramp.len();
    if n == 0 {
        return None;
    }
    let x = if x.is_finite() {
        x.clamp(0.0, 1.0)
    } else {
        0.0
    };
    ramp.get(((x * (n - 1) as f64).round() as usize).min(n - 1))
}
