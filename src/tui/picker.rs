//! The protocol picker and editor: sample protocols (embedded) and the user's own, one of them
//! loaded into an editor pane; launching hands a validated protocol to the loop.
//!
//! Every edit goes through the TOML text (`edit`), then `Protocol::parse`: what launches is
//! exactly what `reprise run` would read from the same text, and a bad value gets the
//! validator's message naming the field.

mod edit;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Providers;
use crate::protocol::samples::{sample_path, DEFAULT_DEMO, SAMPLES};
use crate::protocol::Protocol;

use super::keys::{Command, Mode};

pub use edit::{Field, PromptSlot};

/// What the picker asks the loop to do.
#[derive(Debug)]
pub enum PickerEffect {
    None,
    Launch(Box<Protocol>),
}

/// Where a protocol in the list comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Embedded in the binary; never written to.
    Sample,
    /// A file in the user's protocol directory.
    User,
}

/// One protocol in the list, with its edits.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The protocol's name, or the file stem when the file does not parse.
    pub name: String,
    pub description: String,
    pub origin: Origin,
    /// The file (for a sample, its path in the source tree): messages and saving.
    pub path: PathBuf,
    /// The text as listed (or last saved).
    pub original: String,
    /// The text as edited.
    pub text: String,
    /// `text` validated, or the one-line error (file:line: field …).
    pub parsed: Result<Protocol, String>,
    /// Where the prompt is written in `text` (cached: drawing does no parsing).
    pub prompt_slot: Option<PromptSlot>,
    /// Index into `target_choices()`.
    pub target: usize,
    /// Provider names from the user's config, valid in `provider = …` besides the built-ins.
    configured: Arc<[String]>,
}

impl Entry {
    fn new(
        name: String,
        origin: Origin,
        path: PathBuf,
        text: String,
        configured: Arc<[String]>,
    ) -> Entry {
        let mut entry = Entry {
            name,
            description: String::new(),
            origin,
            path,
            original: text.clone(),
            text,
            parsed: Err(String::new()),
            prompt_slot: None,
            target: 0,
            configured,
        };
        entry.reparse();
        if let Ok(p) = &entry.parsed {
            entry.name = p.meta.name.clone();
            entry.description = p.meta.description.clone().unwrap_or_default();
        }
        entry
    }

    fn reparse(&mut self) {
        self.parsed = Protocol::parse_with_providers(&self.path, &self.text, &self.configured)
            .map_err(|e| e.to_string());
        self.prompt_slot = edit::prompt_slot(&self.text);
    }

    pub fn edited(&self) -> bool {
        self.text != self.original
    }

    /// The targets the editor cycles through: None is the protocol's own list (offered only
    /// when it has several), then each of its targets, then the built-in `local`.
    pub fn target_choices(&self) -> Vec<Option<String>> {
        let Ok(p) = &self.parsed else {
            return vec![None];
        };
        let mut choices = Vec::with_capacity(p.targets.len() + 2);
        if p.targets.len() > 1 {
            choices.push(None);
        }
        choices.extend(p.targets.iter().map(|t| Some(t.name.clone())));
        if !p.targets.iter().any(|t| t.name == "local") {
            choices.push(Some("local".into()));
        }
        choices
    }

    /// The chosen target, in words.
    pub fn target_label(&self) -> String {
        match self.target_choices().get(self.target) {
            Some(Some(name)) => name.clone(),
            _ => match &self.parsed {
                Ok(p) => format!(
                    "all: {}",
                    p.targets
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Err(_) => String::new(),
            },
        }
    }

    /// The current value of `field` as the user would type it ("" for absent).
    pub fn value(&self, field: Field) -> String {
        let Ok(p) = &self.parsed else {
            return String::new();
        };
        match field {
            Field::Prompt => match self.prompt_slot {
                Some(PromptSlot::User | PromptSlot::OnlyItem) => {
                    p.items.first().map(|i| i.user.clone()).unwrap_or_default()
                }
                _ => String::new(),
            },
            Field::Temperature => p
                .params
                .temperature
                .map_or(String::new(), |t| t.to_string()),
            Field::Seed => p.params.seed.map_or(String::new(), |s| s.to_string()),
            Field::Repeats => p.campaign.repeats.to_string(),
            Field::Concurrency => p.campaign.concurrency.to_string(),
            Field::Target => self.target_label(),
        }
    }

    /// The protocol as edited, on the chosen target.
    fn protocol(&self) -> Result<Protocol, String> {
        let mut protocol = self.parsed.clone()?;
        if let Some(Some(name)) = self.target_choices().get(self.target) {
            crate::cli::select_targets(&mut protocol, std::slice::from_ref(name))
                .map_err(|e| e.to_string())?;
        }
        Ok(protocol)
    }
}

/// Which pane the arrows move in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Focus {
    #[default]
    List,
    Editor,
}

#[derive(Debug, Default)]
pub struct PickerState {
    /// The default demo first, then the other samples, then the user's protocols.
    pub entries: Vec<Entry>,
    pub selected: usize,
    pub focus: Focus,
    /// The editor field the arrows are on.
    pub field: Field,
    /// What has been typed into `field`, while editing.
    pub editing: Option<String>,
    /// Why the last action did nothing (a validator message, a refused launch).
    pub error: Option<String>,
    /// What the last action did (a saved file).
    pub notice: Option<String>,
    /// `config_dir()/protocols`: listed, and where `w` saves.
    pub user_dir: Option<PathBuf>,
    /// The user's configured providers: protocols may name them, launches call them.
    pub providers: Providers,
}

impl PickerState {
    /// The sample protocols and the user's own (from `config_dir()/protocols`), with the
    /// providers of the user's config.
    pub fn discover(providers: Providers) -> Self {
        PickerState::discover_with(
            crate::config::config_dir().map(|d| d.join("protocols")),
            providers,
        )
    }

    /// The samples and the protocols in `user_dir`, with the built-in providers only.
    pub fn discover_in(user_dir: Option<PathBuf>) -> Self {
        PickerState::discover_with(user_dir, Providers::default())
    }

    /// The samples and the protocols in `user_dir`, which may name `providers`.
    pub fn discover_with(user_dir: Option<PathBuf>, providers: Providers) -> Self {
        let configured: Arc<[String]> = providers.names().into();
        let mut samples: Vec<Entry> = SAMPLES
            .iter()
            .map(|(stem, text)| {
                Entry::new(
                    stem.to_string(),
                    Origin::Sample,
                    sample_path(stem),
                    text.to_string(),
                    configured.clone(),
                )
            })
            .collect();
        // Stable: the other samples keep their file-name order.
        samples.sort_by_key(|e| e.name != DEFAULT_DEMO);
        let mut entries = samples;
        if let Some(dir) = &user_dir {
            entries.extend(user_entries(dir, &configured));
        }
        PickerState {
            entries,
            user_dir,
            providers,
            ..PickerState::default()
        }
    }

    /// Lists `path` (a protocol given on the command line) if it is not listed yet, and
    /// selects it, so going back to the editor from its campaign shows it.
    pub fn select_file(&mut self, path: &Path) {
        let same = |p: &Path| match (p.canonicalize(), path.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => p == path,
        };
        if let Some(i) = self.entries.iter().position(|e| same(&e.path)) {
            self.selected = i;
            return;
        }
        let configured: Arc<[String]> = self.providers.names().into();
        let Some(entry) = user_entry(path.to_path_buf(), configured) else {
            return;
        };
        self.entries.push(entry);
        self.selected = self.entries.len() - 1;
    }

    pub fn mode(&self) -> Mode {
        if self.editing.is_some() {
            Mode::Edit
        } else {
            Mode::Picker
        }
    }

    pub fn current(&self) -> Option<&Entry> {
        self.entries.get(self.selected)
    }

    pub fn apply(&mut self, command: Command) -> PickerEffect {
        if self.editing.is_some() {
            self.apply_edit(command);
            return PickerEffect::None;
        }
        match command {
            Command::SelectUp | Command::SelectDown => {
                let up = command == Command::SelectUp;
                self.clear_messages();
                match self.focus {
                    Focus::List if up => self.selected = self.selected.saturating_sub(1),
                    Focus::List => {
                        self.selected =
                            (self.selected + 1).min(self.entries.len().saturating_sub(1))
                    }
                    Focus::Editor if up => self.field = self.field.prev(),
                    Focus::Editor => self.field = self.field.next(),
                }
                self.show_broken();
            }
            Command::FocusNext => {
                self.focus = match self.focus {
                    Focus::List => Focus::Editor,
                    Focus::Editor => Focus::List,
                };
            }
            Command::CloseOverlay => {
                self.clear_messages();
                self.focus = Focus::List;
            }
            Command::Activate if self.focus == Focus::List => return self.launch(),
            Command::Activate => self.start_edit(),
            Command::Launch => return self.launch(),
            Command::Save => self.save(),
            _ => {}
        }
        PickerEffect::None
    }

    fn clear_messages(&mut self) {
        self.error = None;
        self.notice = None;
    }

    /// A broken file says why as soon as it is selected.
    fn show_broken(&mut self) {
        if let Some(Err(e)) = self.current().map(|e| &e.parsed) {
            self.error = Some(e.clone());
        }
    }

    fn launch(&mut self) -> PickerEffect {
        self.clear_messages();
        match self.current().map(Entry::protocol) {
            Some(Ok(protocol)) => PickerEffect::Launch(Box::new(protocol)),
            Some(Err(e)) => {
                self.error = Some(e);
                PickerEffect::None
            }
            None => PickerEffect::None,
        }
    }

    fn start_edit(&mut self) {
        self.clear_messages();
        let field = self.field;
        let Some(entry) = self.entries.get_mut(self.selected) else {
            return;
        };
        if let Err(e) = &entry.parsed {
            self.error = Some(format!("fix the file first: {e}"));
            return;
        }
        match (field, entry.prompt_slot) {
            (Field::Target, _) => {
                let n = entry.target_choices().len().max(1);
                entry.target = (entry.target + 1) % n;
            }
            (Field::Prompt, Some(PromptSlot::Items(n))) => {
                self.error = Some(format!(
                    "this protocol has {n} items, each with its own prompt: edit them in the file (w saves a copy)"
                ));
            }
            _ => self.editing = Some(entry.value(field)),
        }
    }

    fn apply_edit(&mut self, command: Command) {
        let Some(buffer) = self.editing.as_mut() else {
            return;
        };
        match command {
            Command::Input(c) => buffer.push(c),
            Command::Backspace => {
                buffer.pop();
            }
            Command::CancelEdit => self.editing = None,
            Command::CommitEdit => {
                let typed = self.editing.take().unwrap_or_default();
                self.commit(&typed);
            }
            _ => {}
        }
    }

    /// Writes `typed` into the field; an invalid value leaves the text as it was and says why.
    fn commit(&mut self, typed: &str) {
        let field = self.field;
        let Some(entry) = self.entries.get_mut(self.selected) else {
            return;
        };
        let edited = edit::set_field(&entry.text, field, typed)
            .map_err(|e| format!("{}: {e}", entry.path.display()))
            .and_then(|text| {
                match Protocol::parse_with_providers(&entry.path, &text, &entry.configured) {
                    Ok(_) => Ok(text),
                    Err(e) => Err(e.to_string()),
                }
            });
        match edited {
            Ok(text) => {
                entry.text = text;
                entry.reparse();
                self.error = None;
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Writes the edited text to the user's protocol directory: a sample becomes a new file
    /// under a free name; a user file is rewritten only if nobody changed it since it was read.
    fn save(&mut self) {
        self.clear_messages();
        let Some(dir) = self.user_dir.clone() else {
            self.error =
                Some("no configuration directory to save to; set REPRISE_CONFIG_DIR".into());
            return;
        };
        let Some(entry) = self.entries.get(self.selected) else {
            return;
        };
        if let Err(e) = &entry.parsed {
            self.error = Some(format!("not saved: {e}"));
            return;
        }
        match entry.origin {
            Origin::User => match rewrite(&entry.path, &entry.original, &entry.text) {
                Ok(()) => {
                    let entry = &mut self.entries[self.selected];
                    entry.original = entry.text.clone();
                    self.notice = Some(format!("saved {}", entry.path.display()));
                }
                Err(e) => self.error = Some(e),
            },
            Origin::Sample => match save_new(&dir, &entry.name, &entry.text) {
                Ok(path) => {
                    let text = entry.text.clone();
                    let target = entry.target;
                    // The edits now live in the new file; the sample goes back to itself.
                    let sample = &mut self.entries[self.selected];
                    sample.text = sample.original.clone();
                    sample.reparse();
                    let stem = file_stem(&path);
                    let configured = sample.configured.clone();
                    let mut saved = Entry::new(stem, Origin::User, path.clone(), text, configured);
                    saved.target = target;
                    self.entries.push(saved);
                    self.selected = self.entries.len() - 1;
                    self.notice = Some(format!("saved as {}", path.display()));
                }
                Err(e) => self.error = Some(e),
            },
        }
    }
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `*.toml` in `dir`, by file name; unreadable or invalid files are listed with their error.
fn user_entries(dir: &Path, configured: &Arc<[String]>) -> Vec<Entry> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| user_entry(p, configured.clone()))
        .collect()
}

/// A protocol file of the user's, listed even when it cannot be read (with why).
fn user_entry(path: PathBuf, configured: Arc<[String]>) -> Option<Entry> {
    let stem = file_stem(&path);
    Some(match std::fs::read_to_string(&path) {
        Ok(text) => Entry::new(stem, Origin::User, path, text, configured),
        Err(e) => {
            let mut entry = Entry::new(stem, Origin::User, path.clone(), String::new(), configured);
            entry.parsed = Err(format!("{}: cannot read: {e}", path.display()));
            entry
        }
    })
}

/// A file name from a protocol name: letters, digits, `-` and `_` only.
fn safe_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if stem.trim_matches('-').is_empty() {
        "protocol".into()
    } else {
        stem
    }
}

/// Creates `dir/<name>.toml`, or `<name>-2.toml`, … : never over an existing file.
fn save_new(dir: &Path, name: &str, text: &str) -> Result<PathBuf, String> {
    use std::io::Write;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let stem = safe_stem(name);
    for n in 1..1000 {
        let path = if n == 1 {
            dir.join(format!("{stem}.toml"))
        } else {
            dir.join(format!("{stem}-{n}.toml"))
        };
        // create_new: a file that appeared meanwhile is skipped, not overwritten.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                return file
                    .write_all(text.as_bytes())
                    .map(|()| path.clone())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot write {}: {e}", path.display())),
        }
    }
    Err(format!("no free file name for {stem} in {}", dir.display()))
}

/// Rewrites the user's own file, unless it changed on disk since it was read.
fn rewrite(path: &Path, original: &str, text: &str) -> Result<(), String> {
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    if on_disk != original {
        return Err(format!(
            "not saved: {} changed on disk since it was listed",
            path.display()
        ));
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests;
