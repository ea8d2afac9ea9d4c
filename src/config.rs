//! Where the user's own files live: `config.toml`, `themes/`, `protocols/`.

use std::path::PathBuf;

/// Environment variable that moves the configuration directory (tests use it).
pub const CONFIG_DIR_ENV: &str = "REPRISE_CONFIG_DIR";

/// `$REPRISE_CONFIG_DIR` if set, else the platform configuration directory.
pub fn config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV) {
        return Some(PathBuf::from(dir));
    }
    let dirs = directories::ProjectDirs::from("", "", "reprise")?;
    Some(dirs.config_dir().to_path_buf())
}
