use std::fs;

use ratatui::style::Modifier;

use super::*;

fn env_in(dir: &Path) -> ThemeEnv {
    ThemeEnv {
        no_color: false,
        colorterm: Some("truecolor".into()),
        term: Some("xterm-256color".into()),
        config_dir: Some(dir.to_path_buf()),
    }
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, text).unwrap();
}

#[test]
fn every_built_in_theme_parses_with_its_own_heat_ramp() {
    let mut ramps = Vec::new();
    for name in BUILT_IN_NAMES {
        let theme = match built_in(name) {
            Some(Ok(t)) => t,
            Some(Err(e)) => panic!("{e}"),
            None => panic!("{name} is not embedded"),
        };
        assert_eq!(theme.name, *name);
        assert!(!theme.description.is_empty(), "{name} has no description");
        assert!(
            (MIN_STOPS..=MAX_STOPS).contains(&theme.heat.len()),
            "{name}"
        );
        assert!(
            !ramps.contains(&theme.heat),
            "{name} repeats another theme's ramp"
        );
        ramps.push(theme.heat);
    }
}

#[test]
fn every_file_in_themes_is_embedded_as_is() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("themes");
    let mut on_disk: Vec<String> = Vec::new();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        let embedded = BUILT_IN.iter().find(|(n, _)| *n == stem);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(embedded.map(|(_, t)| *t), Some(text.as_str()), "{stem}");
        on_disk.push(stem);
    }
    on_disk.sort();
    let mut listed: Vec<String> = BUILT_IN_NAMES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    assert_eq!(BUILT_IN.len(), BUILT_IN_NAMES.len());
}

#[test]
fn dark_is_the_default_and_keeps_the_skeleton_colours() {
    let dark = Theme::default();
    assert_eq!(dark.name, "dark");
    assert_eq!(dark.diff_insert().bg, Some(Color::Green));
    assert_eq!(dark.diff_delete().bg, Some(Color::Red));
    assert!(dark.selected.add_modifier.contains(Modifier::REVERSED));
    assert_eq!(dark.heat(0.0), Color::Rgb(178, 24, 43));
    assert_eq!(dark.heat(1.0), Color::Rgb(33, 102, 172));
}

#[test]
fn light_sets_its_own_text_colours_and_colour_blind_avoids_red_green_diff() {
    let light = Theme::built_in("light").unwrap();
    assert!(light.text.fg.is_some() && light.text.bg.is_some());
    let cb = Theme::built_in("colour-blind").unwrap();
    // Inherited from its base, dark.
    assert_eq!(cb.accent, Theme::dark().accent);
    for style in [cb.diff_insert, cb.diff_delete] {
        assert!(!matches!(style.bg, Some(Color::Red | Color::Green)));
    }
    let hc = Theme::built_in("high-contrast").unwrap();
    assert!(hc.selected.add_modifier.contains(Modifier::BOLD));
}

#[test]
fn the_flag_beats_the_config_which_beats_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_in(dir.path());
    assert_eq!(resolve(None, &env).unwrap().name, "dark");
    write(dir.path(), "config.toml", "theme = \"light\"\n");
    assert_eq!(resolve(None, &env).unwrap().name, "light");
    assert_eq!(
        resolve(Some("high-contrast"), &env).unwrap().name,
        "high-contrast"
    );
}

#[test]
fn a_user_theme_loads_and_overrides_a_built_in_one() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_in(dir.path());
    write(
        dir.path(),
        "themes/mine.toml",
        "name = \"mine\"\nbase = \"light\"\n[styles]\naccent = { fg = \"#123456\" }\n",
    );
    let mine = resolve(Some("mine"), &env).unwrap();
    assert_eq!(mine.accent.fg, Some(Color::Rgb(0x12, 0x34, 0x56)));
    assert_eq!(mine.text, Theme::built_in("light").unwrap().text);

    write(
        dir.path(),
        "themes/dark.toml",
        "name = \"dark\"\nbase = \"dark\"\nheat = [\"black\", \"white\"]\n",
    );
    assert_eq!(
        resolve(None, &env).unwrap().heat,
        vec![Color::Black, Color::White]
    );
    assert_eq!(user_names(&env), vec!["dark", "mine"]);
}

#[test]
fn an_unknown_name_lists_built_in_and_user_themes() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_in(dir.path());
    write(
        dir.path(),
        "themes/mine.toml",
        "name = \"mine\"\nbase = \"dark\"\n",
    );
    let e = resolve(Some("nope"), &env).unwrap_err();
    assert_eq!(
        e.to_string(),
        "--theme `nope`: no such theme; built in: dark, light, high-contrast, colour-blind; yours: mine"
    );
    // Names are file names: no climbing out of the themes directory.
    assert!(matches!(
        resolve(Some("../config"), &env),
        Err(ThemeError::UnknownFlag { .. })
    ));

    write(dir.path(), "config.toml", "\ntheme = \"nope\"\n");
    let e = resolve(None, &env).unwrap_err().to_string();
    let config = dir.path().join("config.toml");
    assert_eq!(
        e,
        format!(
            "{}:2: field `theme`: no such theme `nope`; built in: dark, light, high-contrast, colour-blind; yours: mine",
            config.display()
        )
    );
}

#[test]
fn no_color_strips_colours_but_keeps_modifiers() {
    let dir = tempfile::tempdir().unwrap();
    let env = ThemeEnv {
        no_color: true,
        ..env_in(dir.path())
    };
    let t = resolve(Some("light"), &env).unwrap();
    assert_eq!(t.support, ColorSupport::None);
    assert!(!t.uses_color());
    for style in [
        t.text,
        t.selected,
        t.diff_insert,
        t.diff_delete,
        t.badge_live,
        t.error,
    ] {
        assert_eq!((style.fg, style.bg), (None, None), "{style:?}");
    }
    assert!(t.selected.add_modifier.contains(Modifier::BOLD));
    assert!(t.error.add_modifier.contains(Modifier::BOLD));
    assert!(t.diff_delete.add_modifier.contains(Modifier::CROSSED_OUT));
    // Meaning carried by a background survives as reverse video.
    assert!(t.selected.add_modifier.contains(Modifier::REVERSED));
    assert!(t.diff_insert.add_modifier.contains(Modifier::REVERSED));
    assert!(!t.text.add_modifier.contains(Modifier::REVERSED));
    assert!(t.heat.iter().all(|c| *c == Color::Reset));
    // Even "nobody agrees" is a visible mark; blank would read as "no output here".
    assert_eq!(t.heat_glyph(0.0), '░');
    assert_eq!(t.heat_glyph(1.0), '█');
}

#[test]
fn colour_support_follows_the_environment() {
    let d = |no: bool, ct: Option<&str>, term: Option<&str>| detect(no, ct, term);
    assert_eq!(
        d(true, Some("truecolor"), Some("xterm-256color")),
        ColorSupport::None
    );
    assert_eq!(d(false, None, Some("dumb")), ColorSupport::None);
    assert_eq!(d(false, Some("24bit"), Some("xterm")), ColorSupport::Full);
    assert_eq!(
        d(false, Some("truecolor"), Some("screen")),
        ColorSupport::Full
    );
    assert_eq!(d(false, None, Some("xterm-256color")), ColorSupport::Full);
    assert_eq!(d(false, None, Some("xterm")), ColorSupport::Ansi16);
    assert_eq!(d(false, None, Some("linux")), ColorSupport::Ansi16);
    assert_eq!(d(false, None, Some("screen")), ColorSupport::Ansi16);
}

#[test]
fn ansi16_maps_to_the_nearest_named_colour() {
    assert_eq!(nearest_ansi(Color::Rgb(255, 0, 0)), Color::Red);
    assert_eq!(nearest_ansi(Color::Rgb(0, 255, 0)), Color::Green);
    assert_eq!(nearest_ansi(Color::Rgb(0, 0, 255)), Color::Blue);
    assert_eq!(nearest_ansi(Color::Rgb(255, 255, 255)), Color::White);
    assert_eq!(nearest_ansi(Color::Rgb(0x1c, 0x1c, 0x1c)), Color::Black);
    assert_eq!(nearest_ansi(Color::Rgb(255, 100, 100)), Color::LightRed);
    assert_eq!(nearest_ansi(Color::Indexed(1)), Color::Red);
    assert_eq!(nearest_ansi(Color::Indexed(231)), Color::White);
    assert_eq!(nearest_ansi(Color::Indexed(232)), Color::Black);
    assert_eq!(nearest_ansi(Color::Cyan), Color::Cyan);
    assert_eq!(nearest_ansi(Color::Reset), Color::Reset);
}

#[test]
fn a_16_colour_terminal_gets_the_whole_theme_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let env = ThemeEnv {
        colorterm: None,
        term: Some("xterm".into()),
        ..env_in(dir.path())
    };
    let t = resolve(Some("light"), &env).unwrap();
    assert_eq!(t.support, ColorSupport::Ansi16);
    assert!(t.uses_color());
    let named = |c: Option<Color>| !matches!(c, Some(Color::Rgb(..) | Color::Indexed(_)));
    for style in [
        t.text,
        t.muted,
        t.selected,
        t.gauge,
        t.diff_insert,
        t.badge_failed,
    ] {
        assert!(named(style.fg) && named(style.bg), "{style:?}");
    }
    assert!(t.heat.iter().all(|c| named(Some(*c))));
    assert_eq!(t.error.fg, Some(Color::Red));
}

#[test]
fn bad_theme_fixtures_give_their_expected_message() {
    let dir = Path::new("tests/fixtures/bad-themes");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let name = path.file_stem().unwrap().to_str().unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let expected = fs::read_to_string(path.with_extension("expected")).unwrap();
        let got = load_user(&path, &text, name).map(|_| ()).unwrap_err();
        if got.to_string() != expected.trim_end() {
            wrong.push(format!(
                "{}\n  got:      {got}\n  expected: {}",
                path.display(),
                expected.trim_end()
            ));
        }
        checked += 1;
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(checked >= 5, "only {checked} fixtures");
}

/// Every cell of a 100×30 live frame drawn with `theme`.
fn frame_cells(theme: Theme) -> Vec<ratatui::buffer::Cell> {
    use ratatui::{backend::TestBackend, Terminal};
    let mut app = crate::tui::state::App::new("p".into(), vec!["local".into()], 10);
    app.theme = theme;
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    terminal
        .draw(|f| crate::tui::view::render(f, &app, std::time::Duration::from_secs(5)))
        .unwrap();
    terminal.backend().buffer().content().to_vec()
}

#[test]
fn a_no_color_frame_has_no_colour_anywhere() {
    let env = ThemeEnv {
        no_color: true,
        ..ThemeEnv::default()
    };
    for name in BUILT_IN_NAMES {
        let cells = frame_cells(resolve(Some(name), &env).unwrap());
        assert!(
            cells
                .iter()
                .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
            "{name}"
        );
    }
}

#[test]
fn the_light_theme_paints_its_own_background_everywhere() {
    let light = Theme::built_in("light").unwrap();
    let cells = frame_cells(light);
    // On a dark terminal an unpainted cell would show through as a dark hole.
    assert!(cells.iter().all(|c| c.bg != Color::Reset));
    assert!(cells.iter().all(|c| c.fg != Color::Reset));
}
