//! Themes: data with semantic accessors. Views ask for `theme.diff_insert()` or
//! `theme.heat(0.7)`, never for a colour literal.
//!
//! A theme is resolved once at start (flag, config file, `NO_COLOR`, terminal colour depth) and
//! is then a plain value the render functions read.
//!
//! Built-in themes are the TOML files in `themes/`, embedded in the binary; a user's own themes
//! are `config_dir()/themes/NAME.toml` in the same format (see `file`).

mod colour;
mod file;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ratatui::style::{Color, Style};

use crate::config::Config;
use crate::error::InputError;

pub use colour::{detect, nearest_ansi};
pub use file::{MAX_STOPS, MIN_STOPS};

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
    /// One line for theme lists; may be empty.
    pub description: String,
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
    /// The built-in default, used when nothing else is chosen: `themes/dark.toml`.
    pub fn dark() -> Theme {
        static DARK: OnceLock<Theme> = OnceLock::new();
        DARK.get_or_init(|| {
            // The embedded file is checked by the tests; the plain theme is a safe stand-in.
            built_in("dark")
                .and_then(Result::ok)
                .unwrap_or_else(|| file::plain("dark"))
        })
        .clone()
    }

    /// A built-in theme by name, as written (full colour).
    pub fn built_in(name: &str) -> Option<Theme> {
        built_in(name).and_then(Result::ok)
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

    /// Every style, for adapting the whole theme at once.
    fn styles_mut(&mut self) -> [&mut Style; 18] {
        [
            &mut self.text,
            &mut self.muted,
            &mut self.accent,
            &mut self.title,
            &mut self.border,
            &mut self.selected,
            &mut self.warning,
            &mut self.error,
            &mut self.gauge,
            &mut self.bar,
            &mut self.badge_live,
            &mut self.badge_paused,
            &mut self.badge_done,
            &mut self.badge_stopped,
            &mut self.badge_failed,
            &mut self.badge_replay,
            &mut self.diff_insert,
            &mut self.diff_delete,
        ]
    }

    /// The styles whose meaning is their background (selection, badges, diff marks).
    fn emphasised_mut(&mut self) -> [&mut Style; 9] {
        [
            &mut self.selected,
            &mut self.badge_live,
            &mut self.badge_paused,
            &mut self.badge_done,
            &mut self.badge_stopped,
            &mut self.badge_failed,
            &mut self.badge_replay,
            &mut self.diff_insert,
            &mut self.diff_delete,
        ]
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

/// The built-in themes, embedded from `themes/` (a test checks every file there is listed).
const BUILT_IN: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    (
        "colour-blind",
        include_str!("../../themes/colour-blind.toml"),
    ),
];

/// The built-in theme names, default first.
pub const BUILT_IN_NAMES: &[&str] = &["dark", "light", "high-contrast", "colour-blind"];

/// Parse one embedded theme; `None` when there is no built-in theme of that name.
fn built_in(name: &str) -> Option<Result<Theme, InputError>> {
    let (_, text) = BUILT_IN.iter().find(|(n, _)| *n == name)?;
    let path = PathBuf::from(format!("themes/{name}.toml"));
    // Built-in themes may only build on built-in themes without a base, so this cannot loop.
    let base = |b: &str| {
        (b != name)
            .then(|| built_in(b).and_then(Result::ok))
            .flatten()
    };
    Some(file::parse(&path, text, name, &base))
}

/// What the process environment says about themes; tests build one by hand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThemeEnv {
    /// `NO_COLOR` is set to a non-empty value.
    pub no_color: bool,
    pub colorterm: Option<String>,
    pub term: Option<String>,
    /// Where `config.toml` and `themes/` live; `None` when there is no such directory.
    pub config_dir: Option<PathBuf>,
}

impl ThemeEnv {
    pub fn from_process() -> ThemeEnv {
        let var = |k: &str| std::env::var(k).ok();
        ThemeEnv {
            no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            colorterm: var("COLORTERM"),
            term: var("TERM"),
            config_dir: crate::config::config_dir(),
        }
    }

    pub fn support(&self) -> ColorSupport {
        detect(
            self.no_color,
            self.colorterm.as_deref(),
            self.term.as_deref(),
        )
    }

    fn themes_dir(&self) -> Option<PathBuf> {
        self.config_dir.as_ref().map(|d| d.join("themes"))
    }
}

/// Why no theme could be chosen. One line either way; exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThemeError {
    /// `--theme NAME` names no theme.
    #[error("--theme `{name}`: no such theme; {known}")]
    UnknownFlag { name: String, known: String },
    /// A config or theme file is wrong (including a config naming no theme).
    #[error("{0}")]
    Input(#[from] InputError),
}

/// The theme to use: `--theme` beats `theme = "..."` in the config file beats `dark`; then fitted
/// to the terminal's colours (`NO_COLOR`, `TERM`, `COLORTERM`).
pub fn resolve(flag: Option<&str>, env: &ThemeEnv) -> Result<Theme, ThemeError> {
    let config = match &env.config_dir {
        Some(dir) => Config::load(dir)?,
        None => Config::default(),
    };
    let theme = match (flag, &config.theme) {
        (Some(name), _) => find(name, env)?.ok_or_else(|| ThemeError::UnknownFlag {
            name: name.to_string(),
            known: known(env),
        })?,
        (None, Some(name)) => find(name, env)?.ok_or_else(|| {
            config_error(
                env,
                "theme",
                format!("no such theme `{name}`; {}", known(env)),
            )
        })?,
        // A user's own `dark.toml` replaces the default too.
        (None, None) => find("dark", env)?.unwrap_or_else(Theme::dark),
    };
    Ok(colour::adapt(theme, env.support()))
}

/// A user theme `NAME.toml` in the config directory, else the built-in one; `None` if neither.
/// A user theme with a built-in theme's name replaces it, so a user can restyle `dark` itself.
fn find(name: &str, env: &ThemeEnv) -> Result<Option<Theme>, InputError> {
    // Names become file names: nothing that could climb out of the themes directory.
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Ok(None);
    }
    if let Some(dir) = env.themes_dir() {
        let path = dir.join(format!("{name}.toml"));
        match std::fs::read_to_string(&path) {
            Ok(text) => return load_user(&path, &text, name).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(InputError::new(&path, format!("cannot read theme: {e}"))),
        }
    }
    built_in(name).transpose()
}

/// Parse a user theme file; `base` names a built-in theme.
pub fn load_user(path: &Path, text: &str, name: &str) -> Result<Theme, InputError> {
    file::parse(path, text, name, &Theme::built_in)
}

/// The user's theme names: the `.toml` files in `config_dir()/themes`, sorted.
pub fn user_names(env: &ThemeEnv) -> Vec<String> {
    let Some(dir) = env.themes_dir() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// "built in: dark, light, …; yours: …" for unknown-theme messages.
fn known(env: &ThemeEnv) -> String {
    let yours = user_names(env);
    let yours = match (yours.is_empty(), env.themes_dir()) {
        (false, _) => yours.join(", "),
        (true, Some(dir)) => format!("none in {}", dir.display()),
        (true, None) => "none".to_string(),
    };
    format!("built in: {}; yours: {yours}", BUILT_IN_NAMES.join(", "))
}

fn config_error(env: &ThemeEnv, field: &str, message: String) -> InputError {
    let path = env
        .config_dir
        .as_ref()
        .map(|d| d.join(crate::config::CONFIG_FILE))
        .unwrap_or_else(|| PathBuf::from(crate::config::CONFIG_FILE));
    let line = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| crate::protocol::locate::locate(&text, field));
    InputError::new(&path, message).at_line(line).field(field)
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
