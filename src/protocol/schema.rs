//! The shape of a protocol file: sections, fields, their types and allowed values.
//!
//! Checked on the span-keeping document before serde sees it, so every message can name the
//! field path and line, and say what is allowed. Cross-field rules live in `validate`.

use toml_edit::{Item, TableLike, Value};

use super::locate::Source;
use crate::error::InputError;

/// What a field may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Text {
        non_empty: bool,
    },
    /// An integer or float; `min_exclusive` makes the lower bound open.
    Number {
        min: f64,
        max: f64,
        min_exclusive: bool,
    },
    Integer {
        min: i64,
        max: i64,
    },
    TextList {
        max_len: Option<usize>,
        non_empty: bool,
        allowed: Option<&'static [&'static str]>,
    },
    /// One string of a fixed set.
    Choice {
        allowed: &'static [&'static str],
    },
}

impl Kind {
    fn expected(&self) -> &'static str {
        match self {
            Kind::Text { non_empty: true } => "a non-empty string",
            Kind::Text { non_empty: false } => "a string",
            Kind::Number { .. } => "a number",
            Kind::Integer { .. } => "an integer",
            Kind::TextList { .. } => "an array of strings",
            Kind::Choice { .. } => "a string",
        }
    }
}

#[derive(Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `[name]`, once.
    Table,
    /// `[[name]]`, any number of times.
    Tables,
}

#[derive(Debug)]
pub(crate) struct Section {
    pub name: &'static str,
    pub shape: Shape,
    pub required: bool,
    pub fields: &'static [Field],
}

const fn text(name: &'static str, required: bool) -> Field {
    Field {
        name,
        kind: Kind::Text { non_empty: true },
        required,
    }
}

const fn int(name: &'static str, min: i64, max: i64) -> Field {
    Field {
        name,
        kind: Kind::Integer { min, max },
        required: false,
    }
}

/// Values accepted in `answer.normalize` (the snake_case names of `Normalize`).
pub const NORMALIZE_VALUES: &[&str] = &[
    "trim",
    "lowercase",
    "collapse_whitespace",
    "strip_punctuation",
];

/// The whole schema, in the order sections are usually written.
pub(crate) const SECTIONS: &[Section] = &[
    Section {
        name: "protocol",
        shape: Shape::Table,
        required: true,
        fields: &[text("name", true), text("description", false)],
    },
    Section {
        name: "prompt",
        shape: Shape::Table,
        required: false,
        fields: &[text("system", false), text("user", false)],
    },
    Section {
        name: "params",
        shape: Shape::Table,
        required: false,
        fields: &[
            Field {
                name: "temperature",
                kind: Kind::Number {
                    min: 0.0,
                    max: 2.0,
                    min_exclusive: false,
                },
                required: false,
            },
            Field {
                name: "top_p",
                kind: Kind::Number {
                    min: 0.0,
                    max: 1.0,
                    min_exclusive: true,
                },
                required: false,
            },
            int("top_k", 0, u32::MAX as i64),
            int("max_tokens", 1, 32_768),
            // TOML integers are i64, so this is every seed a file can express.
            int("seed", 0, i64::MAX),
            Field {
                name: "stop",
                kind: Kind::TextList {
                    max_len: Some(4),
                    non_empty: true,
                    allowed: None,
                },
                required: false,
            },
        ],
    },
    Section {
        name: "campaign",
        shape: Shape::Table,
        required: false,
        fields: &[
            int("repeats", 1, 1_000_000),
            int("concurrency", 1, 1024),
            int("warmup", 0, 10_000),
            int("breaker", 0, 1_000_000),
        ],
    },
    Section {
        name: "answer",
        shape: Shape::Table,
        required: false,
        fields: &[
            text("pattern", true),
            Field {
                name: "normalize",
                kind: Kind::TextList {
                    max_len: None,
                    non_empty: true,
                    allowed: Some(NORMALIZE_VALUES),
                },
                required: false,
            },
        ],
    },
    Section {
        name: "items",
        shape: Shape::Tables,
        required: false,
        fields: &[
            text("name", true),
            text("user", true),
            Field {
                name: "expected",
                kind: Kind::Text { non_empty: false },
                required: false,
            },
        ],
    },
    Section {
        name: "targets",
        shape: Shape::Tables,
        required: false,
        fields: &[
            text("provider", true),
            text("name", false),
            text("model", false),
            // The built-in model only.
            Field {
                name: "mode",
                kind: Kind::Choice {
                    allowed: &["batch-invariant", "batched"],
                },
                required: false,
            },
            // The built-in model only: a simulated silent update after this many calls.
            int("drift_after", 0, i64::MAX),
            // Parameters of [params] this target does not send (a provider that refuses them).
            Field {
                name: "omit",
                kind: Kind::TextList {
                    max_len: None,
                    non_empty: false,
                    allowed: Some(crate::protocol::PARAM_NAMES),
                },
                required: false,
            },
        ],
    },
];

/// Check the document against `SECTIONS`; the first problem in reading order is returned.
pub(crate) fn check(src: &Source<'_>) -> Result<(), InputError> {
    let root = src.doc.as_table();
    for (key, item) in root.iter() {
        let Some(section) = SECTIONS.iter().find(|s| s.name == key) else {
            let what = if item.is_table_like() || item.is_array_of_tables() {
                "unknown section"
            } else {
                "unknown field"
            };
            return Err(src.error(key, format!("{what}; expected one of {}", section_names())));
        };
        check_section(src, section, item)?;
    }
    for section in SECTIONS.iter().filter(|s| s.required) {
        if !root.contains_key(section.name) {
            let first = section.fields.iter().find(|f| f.required);
            return Err(match first {
                Some(f) => src.error(
                    &format!("{}.{}", section.name, f.name),
                    format!(
                        "missing; add a [{}] section with {} = {}",
                        section.name,
                        f.name,
                        example(f.kind)
                    ),
                ),
                None => src.error(section.name, "missing section"),
            });
        }
    }
    Ok(())
}

fn section_names() -> String {
    SECTIONS
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn example(kind: Kind) -> &'static str {
    match kind {
        Kind::Text { .. } | Kind::Choice { .. } => "\"...\"",
        Kind::Number { .. } | Kind::Integer { .. } => "1",
        Kind::TextList { .. } => "[\"...\"]",
    }
}

fn check_section(src: &Source<'_>, section: &Section, item: &Item) -> Result<(), InputError> {
    let name = section.name;
    match section.shape {
        Shape::Table => match item.as_table_like() {
            Some(table) => check_table(src, name, section.fields, table),
            None => Err(src.error(
                name,
                format!("expected a table ([{name}]), got {}", item_type(item)),
            )),
        },
        Shape::Tables => {
            let wrong = || {
                src.error(
                    name,
                    format!(
                        "expected an array of tables ([[{name}]]), got {}",
                        item_type(item)
                    ),
                )
            };
            match item {
                Item::ArrayOfTables(tables) => {
                    for (i, table) in tables.iter().enumerate() {
                        check_table(src, &format!("{name}[{i}]"), section.fields, table)?;
                    }
                    Ok(())
                }
                Item::Value(Value::Array(values)) => {
                    for (i, value) in values.iter().enumerate() {
                        match value.as_inline_table() {
                            Some(table) => {
                                check_table(src, &format!("{name}[{i}]"), section.fields, table)?
                            }
                            None => return Err(wrong()),
                        }
                    }
                    Ok(())
                }
                _ => Err(wrong()),
            }
        }
    }
}

fn check_table(
    src: &Source<'_>,
    prefix: &str,
    fields: &[Field],
    table: &dyn TableLike,
) -> Result<(), InputError> {
    for (key, item) in table.iter() {
        let path = format!("{prefix}.{key}");
        let Some(field) = fields.iter().find(|f| f.name == key) else {
            let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
            return Err(src.error(
                &path,
                format!("unknown field; expected one of {}", names.join(", ")),
            ));
        };
        match item.as_value() {
            Some(value) => check_value(src, &path, field.kind, value)?,
            None => {
                return Err(src.error(
                    &path,
                    format!(
                        "expected {}, got {}",
                        field.kind.expected(),
                        item_type(item)
                    ),
                ))
            }
        }
    }
    for field in fields.iter().filter(|f| f.required) {
        if !table.contains_key(field.name) {
            return Err(src.error(
                &format!("{prefix}.{}", field.name),
                format!("missing; expected {}", field.kind.expected()),
            ));
        }
    }
    Ok(())
}

fn check_value(src: &Source<'_>, path: &str, kind: Kind, value: &Value) -> Result<(), InputError> {
    let wrong_type = || {
        src.error(
            path,
            format!("expected {}, got {}", kind.expected(), value_type(value)),
        )
    };
    match kind {
        Kind::Text { non_empty } => {
            let s = value.as_str().ok_or_else(wrong_type)?;
            if non_empty && s.trim().is_empty() {
                return Err(src.error(path, "must not be empty"));
            }
        }
        Kind::Choice { allowed } => {
            let s = value.as_str().ok_or_else(wrong_type)?;
            if !allowed.contains(&s) {
                return Err(src.error(
                    path,
                    format!(
                        "unknown value `{s}`; expected one of {}",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Kind::Number {
            min,
            max,
            min_exclusive,
        } => {
            let x = match value {
                Value::Float(f) => *f.value(),
                Value::Integer(i) => *i.value() as f64,
                _ => return Err(wrong_type()),
            };
            let above_min = if min_exclusive { x > min } else { x >= min };
            if !(above_min && x <= max) {
                let lower = if min_exclusive {
                    format!("greater than {min} and at most {max}")
                } else {
                    format!("between {min} and {max}")
                };
                return Err(src.error(path, format!("must be {lower}, got {x}")));
            }
        }
        Kind::Integer { min, max } => {
            let n = value.as_integer().ok_or_else(wrong_type)?;
            if n < min || n > max {
                // Bounds that are just the type's limit read as noise; name only the one that matters.
                let allowed = if max >= u32::MAX as i64 {
                    if n < min {
                        format!("at least {min}")
                    } else {
                        format!("at most {max}")
                    }
                } else {
                    format!("between {min} and {max}")
                };
                return Err(src.error(path, format!("must be {allowed}, got {n}")));
            }
        }
        Kind::TextList {
            max_len,
            non_empty,
            allowed,
        } => {
            let array = value.as_array().ok_or_else(wrong_type)?;
            if let Some(max) = max_len {
                if array.len() > max {
                    return Err(src.error(
                        path,
                        format!("at most {max} values allowed, got {}", array.len()),
                    ));
                }
            }
            for (i, element) in array.iter().enumerate() {
                let element_path = format!("{path}[{i}]");
                let Some(s) = element.as_str() else {
                    return Err(src.error(
                        &element_path,
                        format!("expected a string, got {}", value_type(element)),
                    ));
                };
                if let Some(allowed) = allowed {
                    if !allowed.contains(&s) {
                        return Err(src.error(
                            &element_path,
                            format!(
                                "unknown value `{s}`; expected one of {}",
                                allowed.join(", ")
                            ),
                        ));
                    }
                } else if non_empty && s.is_empty() {
                    return Err(src.error(&element_path, "must not be empty"));
                }
            }
        }
    }
    Ok(())
}

fn item_type(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(v) => value_type(v),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
    }
}

fn value_type(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Normalize, ProtocolFile};

    fn sample_value(kind: Kind) -> String {
        match kind {
            Kind::Text { .. } => "\"x\"".into(),
            Kind::Number { max, .. } => format!("{max:?}"),
            Kind::Integer { min, .. } => format!("{}", min.max(1)),
            Kind::TextList { allowed, .. } => {
                format!("[\"{}\"]", allowed.and_then(|a| a.first()).unwrap_or(&"x"))
            }
            Kind::Choice { allowed } => format!("\"{}\"", allowed[0]),
        }
    }

    /// The schema and the serde structs must agree, or a protocol passing the check could
    /// still fail to deserialise with a message that names no field.
    #[test]
    fn every_schema_field_deserialises() {
        let mut text = String::new();
        for section in SECTIONS {
            let header = match section.shape {
                Shape::Table => format!("[{}]\n", section.name),
                Shape::Tables => format!("[[{}]]\n", section.name),
            };
            text.push_str(&header);
            for field in section.fields {
                text.push_str(&format!("{} = {}\n", field.name, sample_value(field.kind)));
            }
        }
        let parsed: Result<ProtocolFile, _> = toml::from_str(&text);
        assert!(parsed.is_ok(), "{text}\n{parsed:?}");
    }

    #[test]
    fn normalize_values_are_the_enum_names() {
        for name in NORMALIZE_VALUES {
            let parsed: Result<Normalize, _> =
                serde_json::from_value(serde_json::Value::String(name.to_string()));
            assert!(parsed.is_ok(), "{name}");
        }
    }
}
