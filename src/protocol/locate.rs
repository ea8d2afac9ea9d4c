//! Where a field sits in the protocol text: dotted field paths (`items[2].user`) to 1-based lines.

use std::ops::Range;
use std::path::Path;

use toml_edit::{ImDocument, Item, Value};

use crate::error::InputError;

/// Protocol text parsed with spans kept, for naming lines in error messages.
pub(crate) struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
    pub doc: ImDocument<&'a str>,
}

impl<'a> Source<'a> {
    /// Parse the text; a syntax error becomes the one-line `invalid TOML` message.
    pub fn parse(path: &'a Path, text: &'a str) -> Result<Self, InputError> {
        match ImDocument::parse(text) {
            Ok(doc) => Ok(Source { path, text, doc }),
            Err(e) => {
                let line = e.span().map(|s| line_of(text, s.start));
                // The parser's message may span lines ("invalid table header\nexpected ...").
                let reason = e
                    .message()
                    .lines()
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join("; ");
                Err(InputError::new(path, format!("invalid TOML: {reason}")).at_line(line))
            }
        }
    }

    /// An error about `field`, at the line where the field (or its nearest written parent) is.
    pub fn error(&self, field: &str, message: impl Into<String>) -> InputError {
        InputError::new(self.path, message)
            .at_line(locate_in(&self.doc, self.text, field))
            .field(field)
    }
}

/// The 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line of `field` (e.g. `params.temperature`, `items[2].user`, `params.stop[1]`) in `text`.
///
/// When the field itself is absent, the line of its nearest present parent (e.g. the `[protocol]`
/// header for a missing `protocol.name`), so "missing" errors still point somewhere useful.
/// `None` when the text does not parse or no part of the path is present.
pub fn locate(text: &str, field: &str) -> Option<usize> {
    let doc = ImDocument::parse(text).ok()?;
    locate_in(&doc, text, field)
}

fn locate_in(doc: &ImDocument<&str>, text: &str, field: &str) -> Option<usize> {
    let mut current: Node<'_> = Node::Item(doc.as_item());
    let mut best: Option<Range<usize>> = None;
    for segment in parse_path(field) {
        let next = match segment {
            Segment::Key(key) => current.key(key),
            Segment::Index(i) => current.index(i).map(|node| (node.span(), node)),
        };
        match next {
            Some((span, node)) => {
                if span.is_some() {
                    best = span;
                }
                current = node;
            }
            None => break,
        }
    }
    best.map(|s| line_of(text, s.start))
}

#[derive(Debug, PartialEq, Eq)]
enum Segment<'f> {
    Key(&'f str),
    Index(usize),
}

/// `items[2].user` → Key(items), Index(2), Key(user). Malformed indices are treated as keys.
fn parse_path(field: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in field.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(close) = stripped.find(']') else {
                out.push(Segment::Key(rest));
                break;
            };
            match stripped[..close].parse::<usize>() {
                Ok(i) => out.push(Segment::Index(i)),
                Err(_) => out.push(Segment::Key(&stripped[..close])),
            }
            rest = &stripped[close + 1..];
        }
    }
    out
}

/// A place in the document: a table entry or an element of an array.
#[derive(Clone, Copy)]
enum Node<'d> {
    Item(&'d Item),
    Value(&'d Value),
    Table(&'d toml_edit::Table),
}

impl<'d> Node<'d> {
    fn span(&self) -> Option<Range<usize>> {
        match self {
            Node::Item(item) => item.span(),
            Node::Value(value) => value.span(),
            Node::Table(table) => table.span(),
        }
    }

    /// The entry `key`, with the span of the key as written (the line a reader looks for).
    fn key(&self, key: &str) -> Option<(Option<Range<usize>>, Node<'d>)> {
        let (k, item) = match self {
            Node::Item(item) => item.as_table_like()?.get_key_value(key)?,
            Node::Value(Value::InlineTable(t)) => t.get_key_value(key)?,
            Node::Value(_) => return None,
            Node::Table(t) => t.get_key_value(key)?,
        };
        Some((k.span().or_else(|| item.span()), Node::Item(item)))
    }

    fn index(&self, i: usize) -> Option<Node<'d>> {
        match self {
            Node::Item(Item::ArrayOfTables(a)) => a.get(i).map(Node::Table),
            Node::Item(Item::Value(Value::Array(a))) | Node::Value(Value::Array(a)) => {
                a.get(i).map(Node::Value)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"[protocol]
name = "x"

[params]
temperature = 0.5
stop = [
  "a",
  "b",
]

[[items]]
name = "one"
user = "first"

[[items]]
name = "two"

user = "second"

[[targets]]
provider = "local"
inline = { deep = 1 }
"#;

    #[test]
    fn nested_keys_find_the_line_of_the_key() {
        assert_eq!(locate(TEXT, "protocol.name"), Some(2));
        assert_eq!(locate(TEXT, "params.temperature"), Some(5));
        assert_eq!(locate(TEXT, "targets[0].inline.deep"), Some(22));
    }

    #[test]
    fn array_of_tables_items_are_found_by_index() {
        assert_eq!(locate(TEXT, "items[0].user"), Some(13));
        assert_eq!(locate(TEXT, "items[1].user"), Some(18));
        // The element itself is its `[[items]]` header.
        assert_eq!(locate(TEXT, "items[1]"), Some(15));
    }

    #[test]
    fn array_elements_are_found_by_index() {
        assert_eq!(locate(TEXT, "params.stop[1]"), Some(8));
    }

    #[test]
    fn a_missing_field_points_at_its_nearest_parent() {
        assert_eq!(locate(TEXT, "protocol.description"), Some(1));
        assert_eq!(locate(TEXT, "items[1].expected"), Some(15));
        assert_eq!(locate(TEXT, "items[7].user"), Some(11));
        assert_eq!(locate(TEXT, "answer.pattern"), None);
    }

    #[test]
    fn inline_arrays_of_tables_are_found_too() {
        let text = "items = [\n  { name = \"a\", user = \"u\" },\n\n  { name = \"b\", user = \"\" },\n]\n[protocol]\nname = \"x\"\n";
        assert_eq!(locate(text, "items[1].user"), Some(4));
        assert_eq!(locate(text, "items[0].name"), Some(2));
        assert_eq!(locate(text, "items[1]"), Some(4));
    }

    #[test]
    fn paths_split_into_keys_and_indices() {
        assert_eq!(
            parse_path("items[2].user"),
            vec![
                Segment::Key("items"),
                Segment::Index(2),
                Segment::Key("user")
            ]
        );
        assert_eq!(
            parse_path("a.b[0][1]"),
            vec![
                Segment::Key("a"),
                Segment::Key("b"),
                Segment::Index(0),
                Segment::Index(1)
            ]
        );
    }

    #[test]
    fn lines_count_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
