//! Where the user's own files live: `config.toml`, `themes/`, `protocols/`; and `config.toml`
//! itself.

use std::collections::BTreeMap;
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
    /// `[providers.NAME]`: the providers protocols can name.
    #[serde(default)]
    pub providers: Providers,
}

/// The configured providers, by the name protocols use (`provider = "serve"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Providers {
    pub named: BTreeMap<String, ProviderConfig>,
    /// The file they were read from, for messages (empty when there is none).
    #[serde(skip)]
    pub file: PathBuf,
}

impl Providers {
    /// The configured names, for `Protocol::load_with_providers`.
    pub fn names(&self) -> Vec<String> {
        self.named.keys().cloned().collect()
    }

    pub fn get(&self, name: &str) -> Option<&ProviderConfig> {
        self.named.get(name)
    }
}

/// Wire formats a configured provider can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// `/chat/completions`: OpenAI and every compatible server.
    Openai,
    /// `/messages`: Anthropic's Messages API.
    Anthropic,
    /// Ollama's native `/api/chat` (NDJSON); base_url is the server root.
    Ollama,
    /// Google's Gemini API (`generateContent`); base_url up to `/v1beta`.
    Gemini,
}

/// One `[providers.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// Up to and including the version segment, e.g. `http://127.0.0.1:8080/v1` (for `ollama`:
    /// the server root, `http://127.0.0.1:11434`). Recorded in
    /// the conditions, so it may not carry credentials or a query.
    pub base_url: String,
    /// Default model; a target's `model` overrides it.
    pub model: Option<String>,
    /// Name of the environment variable holding the API key (never the key itself).
    pub api_key_env: Option<String>,
    /// A file holding the API key: `~/` is the home directory, a relative path is relative
    /// to config.toml's directory.
    pub api_key_file: Option<PathBuf>,
    /// Extra request headers. Names and values are recorded in the session's conditions, so
    /// never put a secret here: keys go in `api_key_env` or `api_key_file`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Stream replies (server-sent events); default true.
    #[serde(default = "yes")]
    pub stream: bool,
    /// Ask for per-token log-probabilities; default true (some servers refuse them), except
    /// for `gemini`, where most models refuse them: there only when written.
    pub logprobs: Option<bool>,
    pub connect_timeout_ms: Option<u64>,
    pub first_byte_timeout_ms: Option<u64>,
    pub total_timeout_ms: Option<u64>,
    /// Attempts after the first for rate limits, server errors, connection failures and
    /// timeouts before any reply (default 2; 0 turns retries off).
    pub max_retries: Option<u32>,
    /// Calls in flight at once to this provider, whatever a protocol's concurrency says.
    pub concurrency: Option<u32>,
    /// Attempts started per minute, evenly spaced (the provider's rate limit, or under it).
    pub requests_per_minute: Option<u32>,
    /// `openai` kind: the field that carries a protocol's `max_tokens` — `max_tokens`, or
    /// `max_completion_tokens` (OpenAI's reasoning models refuse the deprecated `max_tokens`).
    /// Default: `max_completion_tokens` for api.openai.com, `max_tokens` for other servers.
    pub max_tokens_field: Option<TokenLimitField>,
    /// `anthropic` kind: the `anthropic-version` header (default 2023-06-01).
    pub anthropic_version: Option<String>,
    /// Check the endpoint, key and model before a campaign (default true); false skips it,
    /// for compatible servers whose model lookup says nothing useful.
    #[serde(default = "yes")]
    pub preflight: bool,
}

/// The request field that limits the reply's length on the `openai` kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenLimitField {
    /// Deprecated by OpenAI, still the one most compatible servers read.
    MaxTokens,
    /// What OpenAI's own API wants (and requires for o-series models).
    MaxCompletionTokens,
}

impl TokenLimitField {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenLimitField::MaxTokens => "max_tokens",
            TokenLimitField::MaxCompletionTokens => "max_completion_tokens",
        }
    }
}

fn yes() -> bool {
    true
}

/// Headers that would put a credential into the recorded conditions.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "api-key",
    "x-api-key",
    "x-goog-api-key",
];

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

    /// The user's configuration (`config_dir()`), empty where there is none.
    pub fn load_user() -> Result<Config, InputError> {
        match config_dir() {
            Some(dir) => Config::load(&dir),
            None => Ok(Config::default()),
        }
    }

    /// Parse config text; `path` is used in messages only.
    pub fn parse(path: &Path, text: &str) -> Result<Config, InputError> {
        let mut config: Config = from_toml(path, text)?;
        config.providers.file = path.to_path_buf();
        for (name, provider) in &mut config.providers.named {
            check_provider(path, text, name, provider)?;
            // A relative key file is next to config.toml, wherever reprise is started from.
            if let (Some(file), Some(dir)) = (&mut provider.api_key_file, path.parent()) {
                if file.is_relative() && !file.starts_with("~") {
                    *file = dir.join(&*file);
                }
            }
        }
        Ok(config)
    }
}

/// Rules serde cannot express: reserved names, a usable base URL, one key source, and no
/// credential in what the conditions record.
fn check_provider(
    path: &Path,
    text: &str,
    name: &str,
    p: &ProviderConfig,
) -> Result<(), InputError> {
    let error = |field: &str, message: String| {
        let field = format!("providers.{name}{field}");
        InputError::new(path, message)
            .at_line(locate::locate(text, &field))
            .field(field)
    };
    if crate::protocol::KNOWN_PROVIDER_KINDS.contains(&name) {
        return Err(error(
            "",
            format!("`{name}` is a built-in provider; give this provider another name"),
        ));
    }
    match reqwest::Url::parse(&p.base_url) {
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            return Err(error(
                ".base_url",
                format!("expected an http:// or https:// URL, got `{}`", p.base_url),
            ))
        }
        Ok(url) if !url.username().is_empty() || url.password().is_some() => {
            return Err(error(
                ".base_url",
                "must not carry credentials (it is recorded in every session); use api_key_env"
                    .into(),
            ))
        }
        Ok(url) if url.query().is_some() || url.fragment().is_some() => {
            return Err(error(
                ".base_url",
                "must not carry a query or fragment (it is recorded in every session)".into(),
            ))
        }
        Ok(_) => {}
        Err(e) => return Err(error(".base_url", format!("not a URL: {e}"))),
    }
    if p.api_key_env.is_some() && p.api_key_file.is_some() {
        return Err(error(
            ".api_key_file",
            "give api_key_env or api_key_file, not both".into(),
        ));
    }
    for (header, value) in &p.headers {
        if SECRET_HEADERS.contains(&header.to_ascii_lowercase().as_str()) {
            return Err(error(
                ".headers",
                format!("header `{header}` would record a credential in every session; put the key in api_key_env or api_key_file"),
            ));
        }
        if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err()
            || reqwest::header::HeaderValue::from_str(value).is_err()
        {
            return Err(error(
                ".headers",
                format!("`{header}` is not a valid HTTP header name and value"),
            ));
        }
    }
    for (field, value) in [
        (".connect_timeout_ms", p.connect_timeout_ms),
        (".first_byte_timeout_ms", p.first_byte_timeout_ms),
        (".total_timeout_ms", p.total_timeout_ms),
    ] {
        if value == Some(0) {
            return Err(error(field, "must be at least 1".into()));
        }
    }
    if p.concurrency == Some(0) {
        return Err(error(".concurrency", "must be at least 1".into()));
    }
    if p.max_tokens_field.is_some() && p.kind != ProviderKind::Openai {
        return Err(error(
            ".max_tokens_field",
            "applies to kind = \"openai\" only".into(),
        ));
    }
    match &p.anthropic_version {
        Some(_) if p.kind != ProviderKind::Anthropic => {
            return Err(error(
                ".anthropic_version",
                "applies to kind = \"anthropic\" only".into(),
            ))
        }
        Some(v) if reqwest::header::HeaderValue::from_str(v).is_err() || v.trim().is_empty() => {
            return Err(error(
                ".anthropic_version",
                "expected a version such as \"2023-06-01\"".into(),
            ))
        }
        _ => {}
    }
    if p.anthropic_version.is_some()
        && p.headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("anthropic-version"))
    {
        return Err(error(
            ".anthropic_version",
            "is also given in headers; keep one".into(),
        ));
    }
    if p.requests_per_minute == Some(0) {
        return Err(error(".requests_per_minute", "must be at least 1".into()));
    }
    Ok(())
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
            "c.toml:2: field `colour`: unknown field `colour`, expected `theme` or `providers`"
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

    const SERVE: &str =
        "[providers.serve]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:8080/v1\"\n";

    #[test]
    fn a_provider_table_is_read_with_its_defaults() {
        let text = format!("{SERVE}model = \"reprise-local-1\"\napi_key_env = \"SERVE_KEY\"\nheaders = {{ \"X-Team\" = \"lab\" }}\nfirst_byte_timeout_ms = 500\n");
        let c = Config::parse(Path::new("c.toml"), &text).unwrap();
        assert_eq!(c.providers.names(), ["serve"]);
        assert_eq!(c.providers.file, Path::new("c.toml"));
        let p = c.providers.get("serve").unwrap();
        assert_eq!(p.kind, ProviderKind::Openai);
        assert_eq!(p.model.as_deref(), Some("reprise-local-1"));
        assert_eq!(p.api_key_env.as_deref(), Some("SERVE_KEY"));
        assert_eq!(p.headers["X-Team"], "lab");
        assert!(p.stream && p.logprobs.is_none());
        assert_eq!(
            (p.first_byte_timeout_ms, p.total_timeout_ms),
            (Some(500), None)
        );
    }

    fn error(text: &str) -> String {
        Config::parse(Path::new("c.toml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn provider_mistakes_are_named_with_their_line() {
        assert_eq!(
            error(&format!("{SERVE}timeout = 3\n")),
            "c.toml:4: field `providers.serve.timeout`: unknown field `timeout`, expected one of `kind`, `base_url`, `model`, `api_key_env`, `api_key_file`, `headers`, `stream`, `logprobs`, `connect_timeout_ms`, `first_byte_timeout_ms`, `total_timeout_ms`, `max_retries`, `concurrency`, `requests_per_minute`, `max_tokens_field`, `anthropic_version`, `preflight`"
        );
        assert_eq!(
            error("[providers.x]\nkind = \"grpc\"\nbase_url = \"http://h\"\n"),
            "c.toml:2: field `providers.x.kind`: unknown variant `grpc`, expected one of `openai`, `anthropic`, `ollama`, `gemini`"
        );
        assert_eq!(
            error("[providers.x]\nkind = \"openai\"\nbase_url = \"http://me:pw@h/v1\"\n"),
            "c.toml:3: field `providers.x.base_url`: must not carry credentials (it is recorded in every session); use api_key_env"
        );
        assert_eq!(
            error("[providers.x]\nkind = \"openai\"\nbase_url = \"ftp://h\"\n"),
            "c.toml:3: field `providers.x.base_url`: expected an http:// or https:// URL, got `ftp://h`"
        );
        assert_eq!(
            error(&format!("{SERVE}api_key_env = \"K\"\napi_key_file = \"k\"\n")),
            "c.toml:5: field `providers.serve.api_key_file`: give api_key_env or api_key_file, not both"
        );
        assert_eq!(
            error(&format!("{SERVE}headers = {{ Authorization = \"Bearer sk\" }}\n")),
            "c.toml:4: field `providers.serve.headers`: header `Authorization` would record a credential in every session; put the key in api_key_env or api_key_file"
        );
        assert_eq!(
            error("[providers.openai]\nkind = \"openai\"\nbase_url = \"http://h\"\n"),
            "c.toml:1: field `providers.openai`: `openai` is a built-in provider; give this provider another name"
        );
        assert_eq!(
            error(&format!("{SERVE}total_timeout_ms = 0\n")),
            "c.toml:4: field `providers.serve.total_timeout_ms`: must be at least 1"
        );
        assert_eq!(
            error(&format!("{SERVE}max_tokens_field = \"max_new_tokens\"\n")),
            "c.toml:4: field `providers.serve.max_tokens_field`: unknown variant `max_new_tokens`, expected `max_tokens` or `max_completion_tokens`"
        );
        assert_eq!(
            error("[providers.c]\nkind = \"anthropic\"\nbase_url = \"http://h\"\nmax_tokens_field = \"max_tokens\"\n"),
            "c.toml:4: field `providers.c.max_tokens_field`: applies to kind = \"openai\" only"
        );
        assert_eq!(
            error(&format!("{SERVE}anthropic_version = \"2023-06-01\"\n")),
            "c.toml:4: field `providers.serve.anthropic_version`: applies to kind = \"anthropic\" only"
        );
        assert_eq!(
            error("[providers.c]\nkind = \"anthropic\"\nbase_url = \"http://h\"\nanthropic_version = \"2023-06-01\"\nheaders = { anthropic-version = \"2024-01-01\" }\n"),
            "c.toml:4: field `providers.c.anthropic_version`: is also given in headers; keep one"
        );
    }

    #[test]
    fn the_token_limit_field_version_and_preflight_are_read() {
        let config = Config::parse(
            Path::new("c.toml"),
            &format!("{SERVE}max_tokens_field = \"max_completion_tokens\"\npreflight = false\n"),
        )
        .unwrap();
        let p = &config.providers.named["serve"];
        assert_eq!(
            p.max_tokens_field,
            Some(TokenLimitField::MaxCompletionTokens)
        );
        assert!(!p.preflight);
        assert!(config.providers.named["serve"].anthropic_version.is_none());
    }
}
