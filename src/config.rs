//! Where the user's own files live: `config.toml`, `themes/`, `protocols/`; and `config.toml`
//! itself.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::InputError;
use crate::protocol::locate;

/// Environment variable that moves the configuration directory (tests use it).
pub const CONFIG_DIR_ENV: &str = "REPRISE_CONFIG_DIR";

/// The settings file inside the configuration directory.
pub const CONFIG_FILE: &str = "config.toml";

/// `$REPRISE_CONFIG_DIR` if set, else the platform configuration directory.
pub fn config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV) {
        return Some(PathBuf::from(dir));
    }
    let dirs = directories::ProjectDirs::from("", "", "reprise")?;
    Some(dirs.config_dir().to_path_buf())
}

/// `config.toml`. Unknown keys are errors, so a typo is never silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The dashboard theme when `--theme` is not given.
    pub theme: Option<String>,
}

impl Config {
    /// `dir/config.toml`; a missing file is the empty configuration.
    pub fn load(dir: &Path) -> Result<Config, InputError> {
        let path = dir.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Config::parse(&path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(InputError::new(&path, format!("cannot read config: {e}"))),
        }
    }

    /// Parse config text; `path` is used in messages only.
    pub fn parse(path: &Path, text: &str) -> Result<Config, InputError> {
        from_toml(path, text)
    }
}

/// Deserialize a user's TOML file into `T`, every error one `InputError` line naming the line
/// and the field (`styles.text.fg`), the way protocol errors read.
pub(crate) fn from_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, InputError> {
    // Syntax first, for the same `invalid TOML: …` message protocols give.
    locate::Source::parse(path, text)?;
    serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let line = inner
            .span()
            .map(|s| locate::line_of(text, s.start))
            .or_else(|| locate::locate(text, &field));
        let error = InputError::new(path, inner.message().to_string()).at_line(line);
        // serde_path_to_error writes the root as ".".
        if field == "." || field.is_empty() {
            error
        } else {
            error.field(field)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_the_empty_config() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Config::load(dir.path()), Ok(Config::default()));
    }

    #[test]
    fn the_theme_is_read() {
        let c = Config::parse(Path::new("c.toml"), "theme = \"light\"\n").unwrap();
        assert_eq!(c.theme.as_deref(), Some("light"));
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let e = Config::parse(Path::new("c.toml"), "theme = \"light\"\ncolour = 3\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml:2: field `colour`: unknown field `colour`, expected `theme`"
        );
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let e = Config::parse(Path::new("c.toml"), "theme = 3\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml:1: field `theme`: invalid type: integer `3`, expected a string"
        );
    }

    #[test]
    fn a_syntax_error_is_one_line() {
        let e = Config::parse(Path::new("c.toml"), "theme = \n").unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("c.toml:1: invalid TOML: "), "{text}");
        assert!(!text.contains('\n'));
    }
}
