//! Errors in what the user gave us: one sentence naming the file, line and field. Exit code 2.

use std::fmt;
use std::path::{Path, PathBuf};

/// Bad input: a protocol, config, theme or archive the user pointed us at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub file: PathBuf,
    /// 1-based line, where known.
    pub line: Option<usize>,
    /// Dotted path of the offending field, e.g. `params.temperature` or `items[2].user`.
    pub field: Option<String>,
    /// What is wrong and, where useful, what is allowed. No trailing full stop.
    pub message: String,
}

impl InputError {
    pub fn new(file: &Path, message: impl Into<String>) -> Self {
        InputError {
            file: file.to_path_buf(),
            line: None,
            field: None,
            message: message.into(),
        }
    }

    pub fn at_line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        // Keep it one line whatever the underlying parser said.
        let message = self.message.split_whitespace().collect::<Vec<_>>().join(" ");
        write!(f, "{message}")
    }
}

impl std::error::Error for InputError {}
