//! Rules that span fields: the answer regex, prompt vs items, unique names, known providers.

use std::collections::HashMap;

use regex::Regex;

use super::locate::Source;
use super::{Item, ProtocolFile, Target};
use crate::error::InputError;

/// Provider kinds built into reprise. Configured provider names (from the user's config) are
/// accepted in addition, passed to `Protocol::parse_with_providers`.
pub const KNOWN_PROVIDER_KINDS: &[&str] = &["local", "openai", "anthropic", "ollama", "gemini"];

/// The answer pattern compiled, with exactly one capture group.
pub(crate) fn answer_regex(src: &Source<'_>, pattern: &str) -> Result<Regex, InputError> {
    let field = "answer.pattern";
    let re = Regex::new(pattern)
        .map_err(|e| src.error(field, format!("invalid regex: {}", regex_reason(&e))))?;
    let groups = re.captures_len() - 1;
    if groups != 1 {
        return Err(src.error(
            field,
            format!(
                "must have exactly one capture group (the answer), found {groups}; \
                 write other groups as (?:...)"
            ),
        ));
    }
    Ok(re)
}

/// The regex crate's message is a multi-line diagram; its last `error:` line is the reason.
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or(text.as_str())
        .trim()
        .to_string()
}

/// The items to run: `[[items]]`, or `prompt.user` as a single item named `prompt`.
pub(crate) fn items(src: &Source<'_>, file: &ProtocolFile) -> Result<Vec<Item>, InputError> {
    match (&file.prompt.user, file.items.is_empty()) {
        (Some(_), false) => Err(src.error(
            "prompt.user",
            "give either prompt.user (one prompt) or [[items]] (a battery), not both; \
             remove prompt.user or move it into an [[items]] entry",
        )),
        (None, true) => Err(src.error(
            "prompt.user",
            "no prompt; give prompt.user or at least one [[items]] with name and user",
        )),
        (Some(user), true) => Ok(vec![Item {
            name: "prompt".into(),
            user: user.clone(),
            expected: None,
        }]),
        (None, false) => {
            let mut seen: HashMap<&str, usize> = HashMap::new();
            for (i, item) in file.items.iter().enumerate() {
                if let Some(first) = seen.insert(item.name.as_str(), i) {
                    return Err(src.error(
                        &format!("items[{i}].name"),
                        format!(
                            "duplicate item name `{}` (also items[{first}]); item names must be unique",
                            item.name
                        ),
                    ));
                }
            }
            Ok(file
                .items
                .iter()
                .map(|i| Item {
                    name: i.name.clone(),
                    user: i.user.clone(),
                    expected: i.expected.clone(),
                })
                .collect())
        }
    }
}

/// The targets to call, each with a resolved unique name; none given means the built-in `local`.
pub(crate) fn targets(
    src: &Source<'_>,
    file: &ProtocolFile,
    configured: &[String],
) -> Result<Vec<Target>, InputError> {
    if file.targets.is_empty() {
        return Ok(vec![Target::local()]);
    }
    let mut out: Vec<Target> = Vec::with_capacity(file.targets.len());
    for (i, t) in file.targets.iter().enumerate() {
        let known = KNOWN_PROVIDER_KINDS.contains(&t.provider.as_str())
            || configured.iter().any(|c| c == &t.provider);
        if !known {
            let mut allowed: Vec<&str> = KNOWN_PROVIDER_KINDS.to_vec();
            allowed.extend(configured.iter().map(String::as_str));
            return Err(src.error(
                &format!("targets[{i}].provider"),
                format!(
                    "unknown provider `{}`; expected one of {}",
                    t.provider,
                    allowed.join(", ")
                ),
            ));
        }
        let name = t.name.clone().unwrap_or_else(|| match &t.model {
            Some(m) => format!("{}/{}", t.provider, m),
            None => t.provider.clone(),
        });
        if let Some(first) = out.iter().position(|o| o.name == name) {
            // Point at the name if written, else at the provider the default name came from.
            let field = if t.name.is_some() {
                format!("targets[{i}].name")
            } else {
                format!("targets[{i}].provider")
            };
            return Err(src.error(
                &field,
                format!(
                    "duplicate target name `{name}` (also targets[{first}]); give each target a distinct name"
                ),
            ));
        }
        if t.mode.is_some() && t.provider != "local" {
            return Err(src.error(
                &format!("targets[{i}].mode"),
                format!(
                    "only the built-in `local` model has a decoding mode; `{}` decodes as its server does",
                    t.provider
                ),
            ));
        }
        if t.drift_after.is_some() && t.provider != "local" {
            return Err(src.error(
                &format!("targets[{i}].drift_after"),
                format!(
                    "only the built-in `local` model can simulate an update; `{}` changes when its provider changes it",
                    t.provider
                ),
            ));
        }
        out.push(Target {
            name,
            provider: t.provider.clone(),
            model: t.model.clone(),
            mode: t.mode.unwrap_or_default(),
            drift_after: t.drift_after,
            omit: t.omit.clone(),
        });
    }
    Ok(out)
}
