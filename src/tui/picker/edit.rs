//! Editing one field of a protocol's TOML text with `toml_edit`, so the user's comments and
//! layout survive. Only the text changes here; the caller validates the result with
//! `Protocol::parse`, whose message names the field.

use toml_edit::{DocumentMut, Item, Table, TableLike, Value};

/// The fields of the editor pane, in the order ↑/↓ walks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Field {
    #[default]
    Prompt,
    Temperature,
    Seed,
    Repeats,
    Concurrency,
    Target,
}

impl Field {
    pub const ALL: [Field; 6] = [
        Field::Prompt,
        Field::Temperature,
        Field::Seed,
        Field::Repeats,
        Field::Concurrency,
        Field::Target,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Field::Prompt => "prompt",
            Field::Temperature => "temperature",
            Field::Seed => "seed",
            Field::Repeats => "repeats",
            Field::Concurrency => "concurrency",
            Field::Target => "target",
        }
    }

    /// `(section, key)` in the TOML document; None for the prompt (see `PromptSlot`) and the
    /// target (a choice made in the picker, not written to the file).
    fn key(self) -> Option<(&'static str, &'static str)> {
        match self {
            Field::Temperature => Some(("params", "temperature")),
            Field::Seed => Some(("params", "seed")),
            Field::Repeats => Some(("campaign", "repeats")),
            Field::Concurrency => Some(("campaign", "concurrency")),
            Field::Prompt | Field::Target => None,
        }
    }

    pub fn next(self) -> Field {
        let i = Field::ALL.iter().position(|f| *f == self).unwrap_or(0);
        Field::ALL[(i + 1).min(Field::ALL.len() - 1)]
    }

    pub fn prev(self) -> Field {
        let i = Field::ALL.iter().position(|f| *f == self).unwrap_or(0);
        Field::ALL[i.saturating_sub(1)]
    }
}

/// Where a protocol's prompt text is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptSlot {
    /// `prompt.user`: one prompt.
    User,
    /// `items[0].user`: a battery of one item, edited as the prompt.
    OnlyItem,
    /// Several `[[items]]`, each with its own prompt: not edited here.
    Items(usize),
}

/// Where the prompt of `text` lives; None when the text is not TOML.
pub fn prompt_slot(text: &str) -> Option<PromptSlot> {
    let doc: DocumentMut = text.parse().ok()?;
    if doc
        .get("prompt")
        .and_then(Item::as_table_like)
        .is_some_and(|t| t.contains_key("user"))
    {
        return Some(PromptSlot::User);
    }
    Some(match item_count(&doc) {
        1 => PromptSlot::OnlyItem,
        n => PromptSlot::Items(n),
    })
}

fn item_count(doc: &DocumentMut) -> usize {
    match doc.get("items") {
        Some(Item::ArrayOfTables(tables)) => tables.len(),
        Some(Item::Value(Value::Array(values))) => values.len(),
        _ => 0,
    }
}

/// `text` with `field` set to what the user typed; an empty entry removes the key (not sent,
/// or the default). Err is a reason in words, for text that is not a TOML document at all.
pub fn set_field(text: &str, field: Field, typed: &str) -> Result<String, String> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| e.message().to_string())?;
    match field {
        Field::Target => return Ok(text.to_string()),
        Field::Prompt => set_prompt(&mut doc, typed)?,
        _ => {
            let Some((section, key)) = field.key() else {
                return Ok(text.to_string());
            };
            let typed = typed.trim();
            let table = section_mut(&mut doc, section)?;
            if typed.is_empty() {
                table.remove(key);
            } else {
                put(table, key, number_value(field, typed));
            }
        }
    }
    Ok(doc.to_string())
}

/// What was typed, as TOML would read it; anything that is not a TOML value stays a string so
/// the validator can say "expected a number, got a string" about the right field.
fn number_value(field: Field, typed: &str) -> Value {
    match typed.parse::<Value>() {
        // A whole temperature is still a temperature: write `1.0`, as the samples do.
        Ok(Value::Integer(i)) if field == Field::Temperature => Value::from(*i.value() as f64),
        Ok(value) => value,
        Err(_) => Value::from(typed),
    }
}

fn section_mut<'d>(doc: &'d mut DocumentMut, name: &str) -> Result<&'d mut dyn TableLike, String> {
    doc.entry(name)
        .or_insert(Item::Table(Table::new()))
        .as_table_like_mut()
        .ok_or_else(|| format!("`{name}` is not a table"))
}

fn set_prompt(doc: &mut DocumentMut, typed: &str) -> Result<(), String> {
    let in_prompt = doc
        .get("prompt")
        .and_then(Item::as_table_like)
        .is_some_and(|t| t.contains_key("user"));
    let table: &mut dyn TableLike = if in_prompt {
        section_mut(doc, "prompt")?
    } else {
        match doc.get_mut("items") {
            Some(Item::ArrayOfTables(tables)) if tables.len() == 1 => tables
                .get_mut(0)
                .map(|t| t as &mut dyn TableLike)
                .ok_or("no item")?,
            Some(Item::Value(Value::Array(values))) if values.len() == 1 => values
                .get_mut(0)
                .and_then(Value::as_inline_table_mut)
                .map(|t| t as &mut dyn TableLike)
                .ok_or("the item is not a table")?,
            None => section_mut(doc, "prompt")?,
            Some(_) => return Err("several items: each has its own prompt".into()),
        }
    };
    let multiline = typed.contains('\n')
        || table
            .get("user")
            .and_then(Item::as_value)
            .and_then(|v| match v {
                Value::String(s) => s.as_repr(),
                _ => None,
            })
            .and_then(|r| r.as_raw().as_str())
            .is_some_and(|raw| raw.starts_with("\"\"\"") || raw.starts_with("'''"));
    let value = if multiline {
        multiline_string(typed).unwrap_or_else(|| Value::from(typed))
    } else {
        Value::from(typed)
    };
    put(table, "user", value);
    Ok(())
}

/// `"""…"""` with the text escaped: long prompts stay readable in the file.
fn multiline_string(s: &str) -> Option<Value> {
    let mut out = String::from("\"\"\"\n");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push_str("\"\"\"");
    out.parse().ok()
}

/// Replaces the value under `key`, keeping the spacing and trailing comment around the old one.
fn put(table: &mut dyn TableLike, key: &str, mut value: Value) {
    match table.get_mut(key) {
        Some(Item::Value(old)) => {
            *value.decor_mut() = old.decor().clone();
            *old = value;
        }
        _ => {
            table.insert(key, Item::Value(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# why this protocol\n[protocol]\nname = \"t\"\n\n[prompt]\n# the question\nuser = \"Hi\"\n\n[params]\ntemperature = 0.6  # warm\n\n[campaign]\nrepeats = 10\n";

    #[test]
    fn edits_keep_comments_and_layout() {
        let out = set_field(TEXT, Field::Temperature, "0.3").unwrap();
        assert_eq!(out, TEXT.replace("0.6  # warm", "0.3  # warm"));
        let out = set_field(&out, Field::Repeats, "7").unwrap();
        assert!(out.contains("repeats = 7\n"), "{out}");
        assert!(out.starts_with("# why this protocol\n"), "{out}");
        assert!(out.contains("# the question\nuser = \"Hi\""), "{out}");
    }

    #[test]
    fn a_missing_key_or_section_is_added_and_an_empty_entry_removes_it() {
        let out = set_field(TEXT, Field::Seed, "42").unwrap();
        assert!(out.contains("seed = 42"), "{out}");
        let out = set_field(&out, Field::Seed, " ").unwrap();
        assert!(!out.contains("seed"), "{out}");
        let out = set_field(TEXT, Field::Concurrency, "3").unwrap();
        assert!(out.contains("concurrency = 3"), "{out}");
    }

    #[test]
    fn a_word_where_a_number_goes_stays_a_string_for_the_validator() {
        let out = set_field(TEXT, Field::Temperature, "hot").unwrap();
        assert!(out.contains("temperature = \"hot\""), "{out}");
        let out = set_field(TEXT, Field::Temperature, "1").unwrap();
        assert!(out.contains("temperature = 1.0"), "{out}");
    }

    #[test]
    fn prompts_keep_their_quoting_and_any_character_survives() {
        let typed = "Say \"hi\" \\ then\nstop";
        let out = set_field(TEXT, Field::Prompt, typed).unwrap();
        let parsed: toml::Value = toml::from_str(&out).unwrap();
        assert_eq!(parsed["prompt"]["user"].as_str(), Some(typed));
        assert!(out.contains("# the question\nuser = \"\"\"\n"), "{out}");
    }

    #[test]
    fn a_single_item_is_the_prompt_and_several_are_not_edited() {
        let one =
            "[protocol]\nname = \"t\"\n\n[[items]]\nname = \"a\"\nuser = \"\"\"\nQ?\n\"\"\"\n";
        assert_eq!(prompt_slot(one), Some(PromptSlot::OnlyItem));
        let out = set_field(one, Field::Prompt, "New").unwrap();
        let parsed: toml::Value = toml::from_str(&out).unwrap();
        assert_eq!(parsed["items"][0]["user"].as_str(), Some("New"));
        let two = format!("{one}\n[[items]]\nname = \"b\"\nuser = \"R?\"\n");
        assert_eq!(prompt_slot(&two), Some(PromptSlot::Items(2)));
        assert!(set_field(&two, Field::Prompt, "x").is_err());
    }
}
