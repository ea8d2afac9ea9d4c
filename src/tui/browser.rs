//! The session browser: the data directory's saved sessions, newest first, as `reprise
//! sessions` lists them; open one, or mark two and compare them. The state is pure; the loop
//! reads the directory and the archives (see the `Browse`, `OpenSession` and `Compare` effects).

use std::path::{Path, PathBuf};

use crate::archive::{SessionInfo, SessionList};

use super::keys::Command;

/// At most this many sessions are marked for compare.
pub const MARKS: usize = 2;

/// Lines a page moves in the comparison.
const PAGE: usize = 10;

#[derive(Debug, Clone, Default)]
pub struct BrowserState {
    /// The directory listed; None when the platform has no data directory.
    pub dir: Option<PathBuf>,
    /// Newest first.
    pub sessions: Vec<SessionInfo>,
    /// Archives in the directory that could not be listed.
    pub skipped: usize,
    pub selected: usize,
    /// Marked for compare, in the order marked (A then B).
    pub marked: Vec<PathBuf>,
    /// The last problem or notice, shown in the footer.
    pub message: Option<String>,
    /// The comparison of the two marked sessions, when shown.
    pub compared: Option<Compared>,
}

/// `compare`'s table for two sessions, scrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compared {
    pub text: String,
    /// First line shown.
    pub scroll: usize,
}

/// What a key in the browser asks the loop to do.
#[derive(Debug, PartialEq, Eq)]
pub enum BrowserEffect {
    None,
    /// Back to the picker.
    Leave,
    Open(PathBuf),
    Compare(PathBuf, PathBuf),
}

impl BrowserState {
    /// The directory's listing arrived (or could not be read): newest first; marks that no
    /// longer name a listed session are dropped.
    pub fn load(&mut self, dir: Option<PathBuf>, listing: Result<SessionList, String>) {
        self.dir = dir;
        self.compared = None;
        match listing {
            Ok(list) => {
                self.sessions = list.sessions;
                self.sessions.reverse();
                self.skipped = list.skipped.len();
                self.message = (self.skipped > 0).then(|| {
                    format!(
                        "{} file(s) could not be listed (reprise sessions names them)",
                        self.skipped
                    )
                });
            }
            Err(e) => {
                self.sessions.clear();
                self.skipped = 0;
                self.message = Some(e);
            }
        }
        let listed = |p: &PathBuf| self.sessions.iter().any(|s| &s.path == p);
        let kept: Vec<PathBuf> = self.marked.iter().filter(|p| listed(p)).cloned().collect();
        self.marked = kept;
        self.selected = self.selected.min(self.sessions.len().saturating_sub(1));
    }

    pub fn current(&self) -> Option<&SessionInfo> {
        self.sessions.get(self.selected)
    }

    pub fn is_marked(&self, path: &Path) -> bool {
        self.marked.iter().any(|p| p == path)
    }

    pub fn apply(&mut self, command: Command) -> BrowserEffect {
        if let Some(compared) = self.compared.as_mut() {
            match command {
                Command::SelectUp => compared.scroll = compared.scroll.saturating_sub(1),
                Command::SelectDown => compared.scroll += 1,
                Command::PageUp => compared.scroll = compared.scroll.saturating_sub(PAGE),
                Command::PageDown => compared.scroll += PAGE,
                Command::CloseOverlay => self.compared = None,
                _ => {}
            }
            // Never past the last line: scrolling back up must answer at once.
            if let Some(c) = self.compared.as_mut() {
                c.scroll = c.scroll.min(c.text.lines().count().saturating_sub(1));
            }
            return BrowserEffect::None;
        }
        match command {
            Command::SelectUp => self.selected = self.selected.saturating_sub(1),
            Command::SelectDown => {
                self.selected = (self.selected + 1).min(self.sessions.len().saturating_sub(1));
            }
            Command::Activate => {
                if let Some(s) = self.current() {
                    return BrowserEffect::Open(s.path.clone());
                }
            }
            Command::Mark => self.toggle_mark(),
            Command::Compare => match self.marked.as_slice() {
                [a, b] => return BrowserEffect::Compare(a.clone(), b.clone()),
                _ => {
                    self.message = Some(format!(
                        "mark two sessions with Space to compare them ({} marked)",
                        self.marked.len()
                    ));
                }
            },
            Command::CloseOverlay => return BrowserEffect::Leave,
            _ => {}
        }
        BrowserEffect::None
    }

    fn toggle_mark(&mut self) {
        let Some(path) = self.current().map(|s| s.path.clone()) else {
            return;
        };
        if let Some(at) = self.marked.iter().position(|p| *p == path) {
            self.marked.remove(at);
            self.message = None;
        } else if self.marked.len() < MARKS {
            self.marked.push(path);
            self.message = None;
        } else {
            self.message = Some("two sessions are marked already: unmark one first".into());
        }
    }

    /// A comparison was made (or could not be).
    pub fn show_comparison(&mut self, result: Result<String, String>) {
        match result {
            Ok(text) => {
                self.compared = Some(Compared { text, scroll: 0 });
                self.message = None;
            }
            Err(e) => self.message = Some(e),
        }
    }
}

/// `compare` on two archives, as `reprise compare A B` prints it; a file that cannot be read
/// is one sentence.
pub fn compare_archives(a: &Path, b: &Path) -> Result<String, String> {
    let read = |path: &Path| crate::session::analyse_archive(path).map_err(|e| e.to_string());
    let (left, right) = (read(a)?, read(b)?);
    let verified = |path: &Path| crate::archive::verify(path).map(|_| ());
    let comparison = crate::compare::compare((&left.0, &left.1), (&right.0, &right.1))
        .with_integrity(verified(a), verified(b));
    Ok(crate::compare::table(&comparison, a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, started_at: &str) -> SessionInfo {
        SessionInfo {
            path: PathBuf::from(name),
            started_at: started_at.into(),
            protocol_name: Some("p".into()),
            identity: "abc".into(),
            records: 3,
            outcome: None,
            ended_at: None,
            summary: None,
        }
    }

    fn browser() -> BrowserState {
        let mut b = BrowserState::default();
        let list = SessionList {
            sessions: vec![
                info("old.jsonl", "2026-01-01T00:00:00Z"),
                info("mid.jsonl", "2026-01-02T00:00:00Z"),
                info("new.jsonl", "2026-01-03T00:00:00Z"),
            ],
            skipped: Vec::new(),
        };
        b.load(Some(PathBuf::from("d")), Ok(list));
        b
    }

    #[test]
    fn newest_first_and_selection_stays_in_the_list() {
        let mut b = browser();
        assert_eq!(b.current().unwrap().path, PathBuf::from("new.jsonl"));
        b.apply(Command::SelectUp);
        assert_eq!(b.selected, 0);
        for _ in 0..5 {
            b.apply(Command::SelectDown);
        }
        assert_eq!(b.current().unwrap().path, PathBuf::from("old.jsonl"));
        assert_eq!(
            b.apply(Command::Activate),
            BrowserEffect::Open(PathBuf::from("old.jsonl"))
        );
    }

    #[test]
    fn two_marks_compare_a_third_is_refused_and_space_unmarks() {
        let mut b = browser();
        assert_eq!(b.apply(Command::Compare), BrowserEffect::None);
        assert!(b.message.as_deref().unwrap().contains("0 marked"));
        b.apply(Command::Mark);
        b.apply(Command::SelectDown);
        b.apply(Command::Mark);
        b.apply(Command::SelectDown);
        b.apply(Command::Mark);
        assert!(b.message.as_deref().unwrap().contains("unmark one first"));
        assert!(!b.is_marked(Path::new("old.jsonl")));
        assert_eq!(
            b.apply(Command::Compare),
            BrowserEffect::Compare("new.jsonl".into(), "mid.jsonl".into())
        );
        b.apply(Command::SelectUp);
        b.apply(Command::Mark);
        assert_eq!(b.marked, vec![PathBuf::from("new.jsonl")]);
    }

    #[test]
    fn the_comparison_scrolls_within_its_text_and_esc_goes_back_to_the_list() {
        let mut b = browser();
        b.show_comparison(Ok("a\nb\nc\n".into()));
        b.apply(Command::PageDown);
        assert_eq!(b.compared.as_ref().unwrap().scroll, 2);
        b.apply(Command::SelectUp);
        assert_eq!(b.compared.as_ref().unwrap().scroll, 1);
        // Esc closes the comparison, not the browser; a second Esc leaves.
        assert_eq!(b.apply(Command::CloseOverlay), BrowserEffect::None);
        assert!(b.compared.is_none());
        assert_eq!(b.apply(Command::CloseOverlay), BrowserEffect::Leave);
    }

    #[test]
    fn a_reload_drops_marks_of_sessions_gone_and_says_what_was_skipped() {
        let mut b = browser();
        b.apply(Command::Mark);
        let list = SessionList {
            sessions: vec![info("mid.jsonl", "2026-01-02T00:00:00Z")],
            skipped: vec![crate::error::InputError::new(Path::new("x.jsonl"), "bad")],
        };
        b.load(Some(PathBuf::from("d")), Ok(list));
        assert!(b.marked.is_empty());
        assert_eq!(b.selected, 0);
        assert!(b.message.as_deref().unwrap().contains("1 file(s)"));
        b.load(None, Err("no data directory".into()));
        assert!(b.sessions.is_empty());
        assert_eq!(b.apply(Command::Activate), BrowserEffect::None);
    }
}
