//! The bad-input corpus through the real binary: every broken protocol, config, theme and
//! archive in tests/fixtures/bad-* gets exactly one line naming the file (and line and field
//! where there is one), the documented exit code, and never a panic. Archives: `verify` exits 1
//! with the first bad record (its expected line in `NAME.expected`); every other command that
//! reads an archive exits 2 with one line, or works on what it can read.
//!
//! `REPRISE_UPDATE_GOLDEN=1 cargo test --test bad_input` rewrites the `.expected` files of
//! archives and configs; review the diff before committing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_reprise");

fn reprise(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("REPRISE_DATA_DIR", dir.join("data"))
        .env("REPRISE_CONFIG_DIR", dir.join("config"))
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("GEMINI_API_KEY")
        .env_remove("NO_COLOR")
        .output()
        .expect("the reprise binary runs")
}

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| Path::new(dir).join(e.file_name()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

/// The one line a failing command printed (on stderr), checked for panics and escapes.
fn one_line(o: &Output, what: &Path) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("panicked"), "{}: {stderr}", what.display());
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}: {stderr}", what.display());
    assert!(
        !lines[0].chars().any(|c| c.is_control()),
        "{}: a control character in {:?}",
        what.display(),
        lines[0]
    );
    lines[0].to_string()
}

fn check_expected(path: &Path, got: &str) {
    let expected = path.with_extension("expected");
    if std::env::var_os("REPRISE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected, format!("{got}\n")).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&expected)
        .unwrap_or_else(|e| panic!("{}: {e}", expected.display()));
    assert_eq!(got, want.trim_end(), "{}", path.display());
}

#[test]
fn every_bad_protocol_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = files("tests/fixtures/bad-protocols", "toml");
    assert!(corpus.len() >= 25, "{} protocols", corpus.len());
    for path in corpus {
        let o = reprise(dir.path(), &["run", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{}", path.display());
        let line = one_line(&o, &path);
        // The library's message (pinned by tests/protocols.rs), as the binary prints it.
        let want = std::fs::read_to_string(path.with_extension("expected")).unwrap();
        assert_eq!(
            line,
            format!("error: {}", want.trim_end()),
            "{}",
            path.display()
        );
    }
}

#[test]
fn every_bad_config_is_one_line_and_exit_2() {
    let corpus = files("tests/fixtures/bad-config", "toml");
    assert!(corpus.len() >= 10, "{} configs", corpus.len());
    for path in corpus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::copy(&path, config.join("config.toml")).unwrap();
        // Every command reads the config first: the check, a run, the dashboard.
        for args in [
            &["providers"][..],
            &["run", "sample-protocols/arithmetic.toml"],
            &["tui"],
        ] {
            let o = reprise(dir.path(), args);
            assert_eq!(o.status.code(), Some(2), "{} {args:?}", path.display());
            let line = one_line(&o, &path).replace(&config.display().to_string(), "CONFIG");
            check_expected(&path, &line);
        }
    }
}

#[test]
fn every_bad_theme_is_one_line_and_exit_2() {
    let corpus = files("tests/fixtures/bad-themes", "toml");
    assert!(corpus.len() >= 10, "{} themes", corpus.len());
    for path in corpus {
        let dir = tempfile::tempdir().unwrap();
        let themes = dir.path().join("config").join("themes");
        std::fs::create_dir_all(&themes).unwrap();
        let name = path.file_stem().unwrap().to_str().unwrap();
        std::fs::copy(&path, themes.join(format!("{name}.toml"))).unwrap();
        let o = reprise(dir.path(), &["tui", "--theme", name]);
        assert_eq!(o.status.code(), Some(2), "{}", path.display());
        let line = one_line(&o, &path);
        // The same sentence tests/themes.rs pins for the fixture, from where the user keeps it.
        let want = std::fs::read_to_string(path.with_extension("expected")).unwrap();
        let after_path = want.trim_end().split_once(".toml").unwrap().1;
        assert!(line.ends_with(after_path), "{}: {line}", path.display());
        assert!(line.contains(&format!("{name}.toml")), "{line}");
    }
}

fn archive_corpus() -> Vec<PathBuf> {
    let corpus = files("tests/fixtures/bad-archives", "jsonl");
    assert!(corpus.len() >= 20, "{} archives", corpus.len());
    corpus
}

#[test]
fn verify_names_the_first_bad_record_of_every_bad_archive() {
    let dir = tempfile::tempdir().unwrap();
    for path in archive_corpus() {
        let o = reprise(dir.path(), &["verify", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{}", path.display());
        let line = one_line(&o, &path);
        check_expected(&path, &line);
    }
}

#[test]
fn commands_reading_a_bad_archive_refuse_it_in_one_line_or_read_what_holds() {
    let dir = tempfile::tempdir().unwrap();
    for path in archive_corpus() {
        let p = path.to_str().unwrap();
        // Only an unfinished archive that verifies may be resumed.
        let o = reprise(dir.path(), &["run", "--resume", p]);
        assert_eq!(o.status.code(), Some(2), "{p}");
        one_line(&o, &path);
        // Compare and export read what parses (verify is the integrity check) or refuse in
        // one line; an unfinished archive exports with a one-line note.
        for args in [&["compare", p, p][..], &["export", p, "--format", "md"]] {
            let o = reprise(dir.path(), args);
            match o.status.code() {
                Some(0) => assert!(o.stderr.iter().filter(|&&b| b == b'\n').count() <= 1, "{p}"),
                Some(2) => {
                    let line = one_line(&o, &path);
                    assert!(line.starts_with(&format!("error: {p}")), "{line}");
                }
                other => panic!("{p} {args:?}: exit {other:?}"),
            }
        }
    }
}

#[test]
fn a_huge_line_is_refused_not_swallowed() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string("tests/fixtures/bad-archives/base.jsonl.src").unwrap();
    let header = base.lines().next().unwrap();
    let path = dir.path().join("huge.jsonl");
    let huge = "x".repeat(20 * 1024 * 1024);
    std::fs::write(
        &path,
        format!("{header}\n{{\"kind\":\"call\",\"seq\":1,\"output\":\"{huge}\"}}\n"),
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let o = reprise(dir.path(), &["verify", p]);
    assert_eq!(o.status.code(), Some(1));
    let line = one_line(&o, &path);
    assert!(line.contains("record 1 (line 2)"), "{line}");
    assert!(
        line.len() < 400,
        "the line is not echoed: {} bytes",
        line.len()
    );
    let o = reprise(dir.path(), &["run", "--resume", p]);
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line(&o, &path).len() < 400);
}
