//! Fitting a theme to the terminal: how many colours it shows, and mapping down to that.

use ratatui::style::{Color, Modifier, Style};

use super::{ColorSupport, Theme};

/// What the environment says about colour. `no_color` is `NO_COLOR` set to a non-empty value
/// (no-color.org); `colorterm` and `term` are `COLORTERM` and `TERM`.
pub fn detect(no_color: bool, colorterm: Option<&str>, term: Option<&str>) -> ColorSupport {
    if no_color {
        return ColorSupport::None;
    }
    let term = term.unwrap_or("");
    if term == "dumb" {
        return ColorSupport::None;
    }
    let colorterm = colorterm.unwrap_or("").to_ascii_lowercase();
    if colorterm == "truecolor" || colorterm == "24bit" || term.contains("256color") {
        return ColorSupport::Full;
    }
    // Windows consoles set no TERM and all show true colour.
    if term.is_empty() && cfg!(windows) {
        return ColorSupport::Full;
    }
    ColorSupport::Ansi16
}

/// The theme as the terminal can show it; applied once, when the theme is resolved.
pub fn adapt(mut theme: Theme, support: ColorSupport) -> Theme {
    theme.support = support;
    match support {
        ColorSupport::Full => theme,
        ColorSupport::Ansi16 => {
            for style in theme.styles_mut() {
                *style = map_style(*style, nearest_ansi);
            }
            for c in &mut theme.heat {
                *c = nearest_ansi(*c);
            }
            theme.heat_empty = nearest_ansi(theme.heat_empty);
            theme
        }
        ColorSupport::None => {
            // These are told apart by their background; without colour, reverse video stands in.
            for style in theme.emphasised_mut() {
                if style.bg.is_some_and(|c| c != Color::Reset) {
                    *style = style.add_modifier(Modifier::REVERSED);
                }
            }
            for style in theme.styles_mut() {
                *style = without_colour(*style);
            }
            // Views draw `heat_glyphs` instead; Reset keeps a forgetful view from painting colour.
            for c in &mut theme.heat {
                *c = Color::Reset;
            }
            theme.heat_empty = Color::Reset;
            theme
        }
    }
}

/// The modifiers of `style` with no colour at all.
fn without_colour(style: Style) -> Style {
    Style::new()
        .add_modifier(style.add_modifier)
        .remove_modifier(style.sub_modifier)
}

fn map_style(style: Style, f: fn(Color) -> Color) -> Style {
    let mut out = style;
    out.fg = style.fg.map(f);
    out.bg = style.bg.map(f);
    out
}

/// The 16 ANSI colours with the VGA palette's values, so `#ff0000` is nearest to `Red`
/// (170,0,0), not `LightRed` (255,85,85): the normal colours are the saturated ones.
const ANSI: [(Color, (u8, u8, u8)); 16] = [
    (Color::Black, (0, 0, 0)),
    (Color::Red, (170, 0, 0)),
    (Color::Green, (0, 170, 0)),
    (Color::Yellow, (170, 170, 0)),
    (Color::Blue, (0, 0, 170)),
    (Color::Magenta, (170, 0, 170)),
    (Color::Cyan, (0, 170, 170)),
    (Color::Gray, (170, 170, 170)),
    (Color::DarkGray, (85, 85, 85)),
    (Color::LightRed, (255, 85, 85)),
    (Color::LightGreen, (85, 255, 85)),
    (Color::LightYellow, (255, 255, 85)),
    (Color::LightBlue, (85, 85, 255)),
    (Color::LightMagenta, (255, 85, 255)),
    (Color::LightCyan, (85, 255, 255)),
    (Color::White, (255, 255, 255)),
];

/// The nearest of the 16 ANSI colours; named colours and `Reset` are kept as they are.
pub fn nearest_ansi(c: Color) -> Color {
    let rgb = match c {
        Color::Rgb(r, g, b) => (r, g, b),
        Color::Indexed(i) if i < 16 => return ANSI[usize::from(i)].0,
        Color::Indexed(i) => indexed_rgb(i),
        other => return other,
    };
    ANSI.iter()
        .min_by_key(|(_, p)| distance(rgb, *p))
        .map_or(c, |(named, _)| *named)
}

/// xterm's values for indices 16–255: a 6×6×6 cube, then 24 greys.
fn indexed_rgb(i: u8) -> (u8, u8, u8) {
    if i >= 232 {
        let v = 8 + (i - 232) * 10;
        return (v, v, v);
    }
    let i = i - 16;
    let level = |n: u8| if n == 0 { 0 } else { 55 + n * 40 };
    (level(i / 36), level((i / 6) % 6), level(i % 6))
}

/// Squared distance, weighted the way the eye weighs red, green and blue (the "redmean" formula
/// without the mean term, which is enough to choose among 16 colours).
fn distance(a: (u8, u8, u8), b: (u8, u8, u8)) -> u32 {
    let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).unsigned_abs();
    let (dr, dg, db) = (d(a.0, b.0), d(a.1, b.1), d(a.2, b.2));
    2 * dr * dr + 4 * dg * dg + 3 * db * db
}
