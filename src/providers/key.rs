//! API keys: read once from where the user points (an environment variable or a file), held in
//! a type that never prints, and scrubbed from anything a server echoes back.

use std::fmt;
use std::path::{Path, PathBuf};

/// A secret. `Debug` prints `***`; there is no `Display`, so it cannot slip into a message.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps `key`; surrounding whitespace (a file's trailing newline) is not part of it.
    pub fn new(key: &str) -> Option<ApiKey> {
        let key = key.trim();
        (!key.is_empty()).then(|| ApiKey(key.to_string()))
    }

    /// The key itself, for the one header that carries it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the key replaced by `***` (servers quote bad keys back).
    pub fn scrub(&self, text: &str) -> String {
        text.replace(&self.0, "***")
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The key of provider `provider` from environment variable `var`; the message names both.
pub fn from_env(provider: &str, var: &str) -> Result<ApiKey, String> {
    match std::env::var(var) {
        Ok(value) => ApiKey::new(&value).ok_or_else(|| {
            format!("provider `{provider}` reads its API key from ${var}, which is empty")
        }),
        Err(std::env::VarError::NotPresent) => Err(format!(
            "provider `{provider}` reads its API key from ${var}, which is not set"
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!(
            "provider `{provider}` reads its API key from ${var}, which is not valid UTF-8"
        )),
    }
}

/// The key of provider `provider` from `file` (`~/` is the home directory).
pub fn from_file(provider: &str, file: &Path) -> Result<ApiKey, String> {
    let path = expand_home(file);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read the API key file of provider `{provider}` ({}): {e}",
            path.display()
        )
    })?;
    ApiKey::new(&text).ok_or_else(|| {
        format!(
            "the API key file of provider `{provider}` ({}) is empty",
            path.display()
        )
    })
}

fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), directories::BaseDirs::new()) {
        (Ok(rest), Some(dirs)) => dirs.home_dir().join(rest),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_never_prints() {
        let key = ApiKey::new(" sk-test-SECRET\n").unwrap();
        assert_eq!(format!("{key:?}"), "***");
        assert_eq!(format!("{:?}", Some(&key)), "Some(***)");
        assert_eq!(key.expose(), "sk-test-SECRET");
        assert_eq!(
            key.scrub("Incorrect API key provided: sk-test-SECRET."),
            "Incorrect API key provided: ***."
        );
        assert_eq!(ApiKey::new("  \n"), None);
    }

    #[test]
    fn a_key_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k");
        std::fs::write(&file, "sk-from-file\n").unwrap();
        assert_eq!(from_file("p", &file).unwrap().expose(), "sk-from-file");
        std::fs::write(&file, "\n").unwrap();
        let e = from_file("p", &file).unwrap_err();
        assert!(e.contains("provider `p`") && e.ends_with("is empty"), "{e}");
        let e = from_file("p", &dir.path().join("missing")).unwrap_err();
        assert!(
            e.starts_with("cannot read the API key file of provider `p`"),
            "{e}"
        );
    }

    #[test]
    fn an_unset_variable_is_named() {
        let e = from_env("serve", "REPRISE_TEST_SURELY_UNSET_VAR").unwrap_err();
        assert_eq!(
            e,
            "provider `serve` reads its API key from $REPRISE_TEST_SURELY_UNSET_VAR, which is not set"
        );
    }
}
