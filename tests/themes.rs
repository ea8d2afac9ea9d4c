//! Themes through the real binary: a bad choice fails with one line and exit code 2, before the
//! dashboard looks for a terminal.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_reprise");

/// Runs reprise with private data and config directories.
fn reprise(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("REPRISE_DATA_DIR", dir.join("data"))
        .env("REPRISE_CONFIG_DIR", dir.join("config"))
        .env_remove("NO_COLOR")
        .output()
        .expect("the reprise binary runs")
}

fn stderr_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn an_unknown_theme_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = reprise(dir.path(), &["tui", "--theme", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    let lines = stderr_lines(&o);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(
            "error: --theme `nope`: no such theme; built in: dark, light, high-contrast, colour-blind; yours: none in "
        ),
        "{}",
        lines[0]
    );
}

#[test]
fn a_broken_user_theme_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let themes = dir.path().join("config/themes");
    std::fs::create_dir_all(&themes).unwrap();
    let file = themes.join("mine.toml");
    std::fs::write(
        &file,
        "name = \"mine\"\nbase = \"dark\"\nheat = [\"#12345\", \"red\"]\n",
    )
    .unwrap();
    let o = reprise(dir.path(), &["tui", "--theme", "mine"]);
    assert_eq!(o.status.code(), Some(2));
    let lines = stderr_lines(&o);
    assert_eq!(
        lines,
        vec![format!(
            "error: {}:3: field `heat[0]`: `#12345` is not a colour: use an ANSI name such as `red` or `dark gray`, `#rrggbb`, or an index 0-255",
            file.display()
        )]
    );
}

#[test]
fn a_config_with_an_unknown_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.toml"), "them = \"light\"\n").unwrap();
    let o = reprise(dir.path(), &["tui"]);
    assert_eq!(o.status.code(), Some(2));
    let lines = stderr_lines(&o);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].ends_with(
            "config.toml:1: field `them`: unknown field `them`, expected `theme` or `providers`"
        ),
        "{}",
        lines[0]
    );
}
