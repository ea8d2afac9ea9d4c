//! The theme file format: TOML read with serde, every mistake reported as one `InputError` line.
//!
//! ```toml
//! name = "mine"
//! base = "dark"                       # optional: start from a built-in theme
//! heat = ["#b2182b", "#2166ac"]       # 2..=16 stops, low agreement to high
//! heat_empty = "reset"
//! heat_glyphs = "░▒▓█"
//! [styles]
//! selected = { fg = "black", bg = "cyan", modifiers = ["bold"] }
//! ```

use std::fmt;
use std::path::Path;

use ratatui::style::{Color, Modifier, Style};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::{ColorSupport, Theme};
use crate::config::from_toml;
use crate::error::InputError;

/// Bounds on the heatmap ramp and its glyph ramp.
pub const MIN_STOPS: usize = 2;
pub const MAX_STOPS: usize = 16;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: String,
    description: Option<String>,
    base: Option<String>,
    heat: Option<Vec<ColorSpec>>,
    heat_empty: Option<ColorSpec>,
    heat_glyphs: Option<String>,
    #[serde(default)]
    styles: Styles,
}

/// Every style a theme can set; an absent entry keeps the base theme's (or the plain) style.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Styles {
    text: Option<StyleSpec>,
    muted: Option<StyleSpec>,
    accent: Option<StyleSpec>,
    title: Option<StyleSpec>,
    border: Option<StyleSpec>,
    selected: Option<StyleSpec>,
    warning: Option<StyleSpec>,
    error: Option<StyleSpec>,
    gauge: Option<StyleSpec>,
    bar: Option<StyleSpec>,
    badge_live: Option<StyleSpec>,
    badge_paused: Option<StyleSpec>,
    badge_done: Option<StyleSpec>,
    badge_stopped: Option<StyleSpec>,
    badge_failed: Option<StyleSpec>,
    badge_replay: Option<StyleSpec>,
    diff_insert: Option<StyleSpec>,
    diff_delete: Option<StyleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StyleSpec {
    fg: Option<ColorSpec>,
    bg: Option<ColorSpec>,
    #[serde(default)]
    modifiers: Vec<ModifierSpec>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ModifierSpec {
    Bold,
    Dim,
    Italic,
    Underlined,
    SlowBlink,
    RapidBlink,
    Reversed,
    Hidden,
    CrossedOut,
}

impl ModifierSpec {
    fn modifier(self) -> Modifier {
        match self {
            ModifierSpec::Bold => Modifier::BOLD,
            ModifierSpec::Dim => Modifier::DIM,
            ModifierSpec::Italic => Modifier::ITALIC,
            ModifierSpec::Underlined => Modifier::UNDERLINED,
            ModifierSpec::SlowBlink => Modifier::SLOW_BLINK,
            ModifierSpec::RapidBlink => Modifier::RAPID_BLINK,
            ModifierSpec::Reversed => Modifier::REVERSED,
            ModifierSpec::Hidden => Modifier::HIDDEN,
            ModifierSpec::CrossedOut => Modifier::CROSSED_OUT,
        }
    }
}

impl StyleSpec {
    fn style(&self) -> Style {
        let mut style = Style::new();
        if let Some(ColorSpec(c)) = self.fg {
            style = style.fg(c);
        }
        if let Some(ColorSpec(c)) = self.bg {
            style = style.bg(c);
        }
        self.modifiers
            .iter()
            .fold(style, |s, m| s.add_modifier(m.modifier()))
    }
}

/// A colour as written: an ANSI name (`red`, `dark gray`), `#rrggbb`, or an index 0–255.
#[derive(Debug, Clone, Copy)]
struct ColorSpec(Color);

const COLOUR_HELP: &str =
    "use an ANSI name such as `red` or `dark gray`, `#rrggbb`, or an index 0-255";

impl<'de> Deserialize<'de> for ColorSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ColorSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a colour: {COLOUR_HELP}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ColorSpec, E> {
                s.parse::<Color>()
                    .map(ColorSpec)
                    .map_err(|_| E::custom(format!("`{s}` is not a colour: {COLOUR_HELP}")))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<ColorSpec, E> {
                u8::try_from(n)
                    .map(|i| ColorSpec(Color::Indexed(i)))
                    .map_err(|_| E::custom(format!("colour index {n} is not in 0-255")))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<ColorSpec, E> {
                u8::try_from(n)
                    .map(|i| ColorSpec(Color::Indexed(i)))
                    .map_err(|_| E::custom(format!("colour index {n} is not in 0-255")))
            }
        }
        d.deserialize_any(V)
    }
}

/// The style everything starts from when a theme has no `base`: the terminal's own colours.
pub(super) fn plain(name: &str) -> Theme {
    let s = Style::new();
    Theme {
        name: name.into(),
        description: String::new(),
        support: ColorSupport::Full,
        text: s,
        muted: s,
        accent: s,
        title: s.add_modifier(Modifier::BOLD),
        border: s,
        selected: s.add_modifier(Modifier::REVERSED),
        warning: s,
        error: s,
        gauge: s,
        bar: s,
        badge_live: s.add_modifier(Modifier::REVERSED),
        badge_paused: s.add_modifier(Modifier::REVERSED),
        badge_done: s.add_modifier(Modifier::REVERSED),
        badge_stopped: s.add_modifier(Modifier::REVERSED),
        badge_failed: s.add_modifier(Modifier::REVERSED),
        badge_replay: s.add_modifier(Modifier::REVERSED),
        diff_insert: s.add_modifier(Modifier::REVERSED),
        diff_delete: s.add_modifier(Modifier::REVERSED | Modifier::CROSSED_OUT),
        heat: Vec::new(),
        heat_empty: Color::Reset,
        heat_glyphs: DEFAULT_GLYPHS.chars().collect(),
    }
}

/// Lowest first; even "nobody agrees" is a visible mark (blank would read as "no output").
const DEFAULT_GLYPHS: &str = "░▒▓█";

/// Parse theme text. `expected_name` is the name it is looked up by (the file stem); `base`
/// gives the built-in theme a `base = "..."` names, or `None` when there is no such theme.
pub(super) fn parse(
    path: &Path,
    text: &str,
    expected_name: &str,
    base: &dyn Fn(&str) -> Option<Theme>,
) -> Result<Theme, InputError> {
    let file: ThemeFile = from_toml(path, text)?;
    let at = |field: &str, message: String| {
        InputError::new(path, message)
            .at_line(crate::protocol::locate::locate(text, field))
            .field(field)
    };
    if file.name != expected_name {
        return Err(at(
            "name",
            format!(
                "is `{}` but the theme is looked up as `{expected_name}`; make them the same",
                file.name
            ),
        ));
    }
    let mut theme = match &file.base {
        None => plain(&file.name),
        Some(b) => base(b).ok_or_else(|| {
            at(
                "base",
                format!(
                    "no built-in theme `{b}`; built in: {}",
                    super::BUILT_IN_NAMES.join(", ")
                ),
            )
        })?,
    };
    theme.name = file.name;
    theme.description = file.description.unwrap_or_default();
    match file.heat {
        Some(stops) if !(MIN_STOPS..=MAX_STOPS).contains(&stops.len()) => {
            return Err(at(
                "heat",
                format!(
                    "has {} stop(s); a ramp needs {MIN_STOPS} to {MAX_STOPS} colours",
                    stops.len()
                ),
            ))
        }
        Some(stops) => theme.heat = stops.into_iter().map(|ColorSpec(c)| c).collect(),
        None if theme.heat.is_empty() => {
            return Err(at(
                "heat",
                format!("is required unless the theme has a `base`: {MIN_STOPS} to {MAX_STOPS} colours, low agreement to high"),
            ))
        }
        None => {}
    }
    if let Some(ColorSpec(c)) = file.heat_empty {
        theme.heat_empty = c;
    }
    if let Some(glyphs) = file.heat_glyphs {
        let glyphs: Vec<char> = glyphs.chars().collect();
        if !(MIN_STOPS..=MAX_STOPS).contains(&glyphs.len()) || glyphs.iter().any(|c| c.is_control())
        {
            return Err(at(
                "heat_glyphs",
                format!("needs {MIN_STOPS} to {MAX_STOPS} printable characters, low to high, e.g. \"{DEFAULT_GLYPHS}\""),
            ));
        }
        theme.heat_glyphs = glyphs;
    }
    apply_styles(&mut theme, &file.styles);
    Ok(theme)
}

/// Each entry written replaces the base theme's entry whole (no merging of fg/bg/modifiers), so
/// what the file says is exactly what is drawn.
fn apply_styles(theme: &mut Theme, s: &Styles) {
    let pairs: [(&mut Style, &Option<StyleSpec>); 18] = [
        (&mut theme.text, &s.text),
        (&mut theme.muted, &s.muted),
        (&mut theme.accent, &s.accent),
        (&mut theme.title, &s.title),
        (&mut theme.border, &s.border),
        (&mut theme.selected, &s.selected),
        (&mut theme.warning, &s.warning),
        (&mut theme.error, &s.error),
        (&mut theme.gauge, &s.gauge),
        (&mut theme.bar, &s.bar),
        (&mut theme.badge_live, &s.badge_live),
        (&mut theme.badge_paused, &s.badge_paused),
        (&mut theme.badge_done, &s.badge_done),
        (&mut theme.badge_stopped, &s.badge_stopped),
        (&mut theme.badge_failed, &s.badge_failed),
        (&mut theme.badge_replay, &s.badge_replay),
        (&mut theme.diff_insert, &s.diff_insert),
        (&mut theme.diff_delete, &s.diff_delete),
    ];
    for (slot, spec) in pairs {
        if let Some(spec) = spec {
            *slot = spec.style();
        }
    }
}
