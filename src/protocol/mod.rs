//! Protocols: one experiment described in TOML (see DESIGN.md "Protocols").
//!
//! `ProtocolFile` mirrors the TOML exactly (unknown fields are errors); `Protocol` is the
//! validated, resolved form the rest of reprise uses.
//!
//! Loading runs in three steps, each failing with one `InputError` line naming file, line and
//! field: `schema` checks sections, fields, types and ranges on the span-keeping document;
//! serde then builds `ProtocolFile`; `validate` applies rules across fields (answer regex,
//! prompt vs items, unique names, known providers) and resolves items and targets.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::InputError;

pub(crate) mod locate;
pub mod samples;
mod schema;
mod validate;

pub use locate::locate;
pub use schema::NORMALIZE_VALUES;
pub use validate::KNOWN_PROVIDER_KINDS;

use locate::Source;

/// The TOML document as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolFile {
    pub protocol: Meta,
    #[serde(default)]
    pub prompt: PromptSpec,
    #[serde(default)]
    pub params: Params,
    #[serde(default)]
    pub campaign: Campaign,
    pub answer: Option<AnswerSpec>,
    #[serde(default)]
    pub items: Vec<ItemSpec>,
    #[serde(default)]
    pub targets: Vec<TargetSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptSpec {
    pub system: Option<String>,
    /// The single prompt, when the protocol has no `[[items]]`.
    pub user: Option<String>,
}

/// Sampling parameters, sent to every target that supports them. Absent means "not sent".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    /// Measured calls per item and target (warm-up calls come on top).
    #[serde(default = "default_repeats")]
    pub repeats: u32,
    /// Calls in flight at once, over the whole campaign.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Calls per item and target made first and discarded from every measure.
    #[serde(default)]
    pub warmup: u32,
    /// When a target's first this-many calls all fail alike with a failure no retry mends
    /// (refused credentials, a refused parameter, …), no more calls are sent to it; 0 never
    /// stops. Left out of the conditions at its default, so earlier identities still hold.
    #[serde(
        default = "default_breaker",
        skip_serializing_if = "is_default_breaker"
    )]
    pub breaker: u32,
}

fn default_repeats() -> u32 {
    20
}
fn default_concurrency() -> u32 {
    4
}
/// The default `campaign.breaker`.
pub const DEFAULT_BREAKER: u32 = 5;
fn default_breaker() -> u32 {
    DEFAULT_BREAKER
}
fn is_default_breaker(breaker: &u32) -> bool {
    *breaker == DEFAULT_BREAKER
}

impl Default for Campaign {
    fn default() -> Self {
        Campaign {
            repeats: default_repeats(),
            concurrency: default_concurrency(),
            warmup: 0,
            breaker: DEFAULT_BREAKER,
        }
    }
}

/// Answer extraction: a regex with exactly one capture group, then optional normalisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerSpec {
    pub pattern: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub normalize: Vec<Normalize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// Strip leading and trailing whitespace.
    Trim,
    /// Lower-case (Unicode).
    Lowercase,
    /// Runs of whitespace become one space.
    CollapseWhitespace,
    /// Drop trailing `.`, `!`, `?`, `,`, `;`, `:`.
    StripPunctuation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemSpec {
    pub name: String,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// Defaults to the provider name (or `provider/model` when a model is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `local` (built in) or a provider kind / configured provider name.
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The built-in model only: how requests that run at the same time are decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<DecodeMode>,
    /// The built-in model only: serve this many calls, then switch to an updated revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_after: Option<u64>,
    /// Parameters of `[params]` this target does not send.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub omit: Vec<String>,
}

/// How the built-in model decodes requests in flight at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecodeMode {
    /// One fixed reduction order: an output never depends on what else is running.
    #[default]
    BatchInvariant,
    /// Decoded together, with a reduction split that follows the batch's shape.
    Batched,
}

impl DecodeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeMode::BatchInvariant => "batch-invariant",
            DecodeMode::Batched => "batched",
        }
    }

    fn is_invariant(&self) -> bool {
        *self == DecodeMode::BatchInvariant
    }
}

/// A validated protocol, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Protocol {
    /// Where it was read from (for messages and the archive header).
    pub path: PathBuf,
    pub meta: Meta,
    pub system: Option<String>,
    pub params: Params,
    pub campaign: Campaign,
    pub answer: Option<AnswerSpec>,
    /// At least one; names unique.
    pub items: Vec<Item>,
    /// At least one; names unique.
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub name: String,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub name: String,
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Left out of the conditions when it is the default, so earlier identities still hold.
    #[serde(default, skip_serializing_if = "DecodeMode::is_invariant")]
    pub mode: DecodeMode,
    /// A simulated silent update after this many calls (built-in model only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_after: Option<u64>,
    /// Parameters of `[params]` this target does not send (names from [`PARAM_NAMES`]);
    /// what it does send is in the conditions' request bodies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub omit: Vec<String>,
}

/// The sampling parameters a protocol can set, as `[params]` names them.
pub const PARAM_NAMES: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "seed",
    "stop",
];

impl Params {
    /// These parameters with those named in `omit` left out (unknown names change nothing).
    pub fn without(&self, omit: &[String]) -> Params {
        let mut p = self.clone();
        for name in omit {
            match name.as_str() {
                "temperature" => p.temperature = None,
                "top_p" => p.top_p = None,
                "top_k" => p.top_k = None,
                "max_tokens" => p.max_tokens = None,
                "seed" => p.seed = None,
                "stop" => p.stop.clear(),
                _ => {}
            }
        }
        p
    }
}

impl Target {
    /// The built-in local model.
    pub fn local() -> Self {
        Target {
            name: "local".into(),
            provider: "local".into(),
            model: None,
            mode: DecodeMode::BatchInvariant,
            drift_after: None,
            omit: Vec::new(),
        }
    }
}

impl Protocol {
    /// Read, parse and validate a protocol file.
    pub fn load(path: &Path) -> Result<Protocol, InputError> {
        Protocol::load_with_providers(path, &[])
    }

    /// As `load`, also accepting the provider names the user configured.
    pub fn load_with_providers(path: &Path, configured: &[String]) -> Result<Protocol, InputError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| InputError::new(path, format!("cannot read protocol: {e}")))?;
        Protocol::parse_with_providers(path, &text, configured)
    }

    /// Parse and validate protocol text; `path` is used in messages only.
    pub fn parse(path: &Path, text: &str) -> Result<Protocol, InputError> {
        Protocol::parse_with_providers(path, text, &[])
    }

    /// As `parse`, also accepting `configured` provider names besides `KNOWN_PROVIDER_KINDS`.
    pub fn parse_with_providers(
        path: &Path,
        text: &str,
        configured: &[String],
    ) -> Result<Protocol, InputError> {
        let src = Source::parse(path, text)?;
        schema::check(&src)?;
        let file: ProtocolFile = toml::from_str(text).map_err(|e| {
            // The schema check should have caught this; keep serde's words and its line.
            let line = e.span().map(|s| locate::line_of(text, s.start));
            InputError::new(path, e.message().to_string()).at_line(line)
        })?;
        if let Some(answer) = &file.answer {
            validate::answer_regex(&src, &answer.pattern)?;
        }
        let items = validate::items(&src, &file)?;
        let targets = validate::targets(&src, &file, configured)?;
        Ok(Protocol {
            path: path.to_path_buf(),
            meta: file.protocol,
            system: file.prompt.system,
            params: file.params,
            campaign: file.campaign,
            answer: file.answer,
            items,
            targets,
        })
    }
}

impl AnswerSpec {
    /// The compiled pattern; validated protocols always compile, with exactly one group.
    pub fn regex(&self) -> Result<regex::Regex, regex::Error> {
        regex::Regex::new(&self.pattern)
    }
}
