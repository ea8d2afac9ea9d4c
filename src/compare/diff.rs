//! The conditions diff: two archives' conditions documents, field by field.
//!
//! Targets are matched by name, items by name and each target's requests by item, so a
//! reordered protocol is not a change. A request-body field that changed the same way for
//! every item is reported once, as `targets.T.body.FIELD`; one that changed for some items
//! only, per item, as `targets.T.requests.ITEM.body.FIELD`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// One field that differs. `None` means absent (or null) on that side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Dotted path into the conditions, e.g. `targets.local.body.temperature`.
    pub path: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

/// Every field that differs between two conditions documents, in document order (keys
/// sorted, targets and items in A's order, then B's extra ones).
pub fn conditions_diff(a: &Value, b: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    let keys = union_keys(a, b);
    for key in keys {
        let (x, y) = (&a[key.as_str()], &b[key.as_str()]);
        match key.as_str() {
            "targets" => targets_diff(x, y, &mut out),
            "items" => named_diff("items", "name", x, y, &mut out),
            _ => value_diff(&key, x, y, &mut out),
        }
    }
    out
}

fn targets_diff(a: &Value, b: &Value, out: &mut Vec<Change>) {
    for (name, x, y) in match_by(a, b, "name") {
        let path = format!("targets.{name}");
        let (Some(x), Some(y)) = (x, y) else {
            out.push(presence(path, x.is_some(), y.is_some()));
            continue;
        };
        for key in union_keys(x, y) {
            if key == "requests" {
                requests_diff(&path, &x[key.as_str()], &y[key.as_str()], out);
            } else {
                value_diff(
                    &format!("{path}.{key}"),
                    &x[key.as_str()],
                    &y[key.as_str()],
                    out,
                );
            }
        }
    }
}

/// Request bodies per item, with changes common to every item folded into one.
fn requests_diff(target: &str, a: &Value, b: &Value, out: &mut Vec<Change>) {
    let matched = match_by(a, b, "item");
    let common = matched
        .iter()
        .filter(|(_, x, y)| x.is_some() && y.is_some())
        .count();
    // (sub-path, a, b) → the items where the body changed that way, in order of first sight.
    let mut seen: Vec<(Change, Vec<String>)> = Vec::new();
    let mut presence_changes = Vec::new();
    for (item, x, y) in &matched {
        let (Some(x), Some(y)) = (x, y) else {
            presence_changes.push(presence(
                format!("{target}.requests.{item}"),
                x.is_some(),
                y.is_some(),
            ));
            continue;
        };
        let mut body = Vec::new();
        value_diff("", &x["body"], &y["body"], &mut body);
        for change in body {
            match seen.iter_mut().find(|(c, _)| *c == change) {
                Some((_, items)) => items.push(item.clone()),
                None => seen.push((change, vec![item.clone()])),
            }
        }
    }
    for (change, items) in seen {
        let sub = if change.path.is_empty() {
            String::new()
        } else {
            format!(".{}", change.path)
        };
        if items.len() == common && common > 0 {
            out.push(Change {
                path: format!("{target}.body{sub}"),
                ..change
            });
        } else {
            for item in items {
                out.push(Change {
                    path: format!("{target}.requests.{item}.body{sub}"),
                    a: change.a.clone(),
                    b: change.b.clone(),
                });
            }
        }
    }
    out.extend(presence_changes);
}

/// An array of objects keyed by `key` (items by name), element by element.
fn named_diff(prefix: &str, key: &str, a: &Value, b: &Value, out: &mut Vec<Change>) {
    for (name, x, y) in match_by(a, b, key) {
        let path = format!("{prefix}.{name}");
        match (x, y) {
            (Some(x), Some(y)) => value_diff(&path, x, y, out),
            (x, y) => out.push(presence(path, x.is_some(), y.is_some())),
        }
    }
}

/// Pairs the elements of two arrays by their `key` field: A's order, then B's extra ones.
/// Elements without the key are matched by position (`#0`, `#1`, …).
fn match_by<'v>(
    a: &'v Value,
    b: &'v Value,
    key: &str,
) -> Vec<(String, Option<&'v Value>, Option<&'v Value>)> {
    let label = |i: usize, v: &Value| -> String {
        v[key]
            .as_str()
            .map_or_else(|| format!("#{i}"), str::to_string)
    };
    let xs: &'v [Value] = a.as_array().map_or(&[], Vec::as_slice);
    let ys: &'v [Value] = b.as_array().map_or(&[], Vec::as_slice);
    let by_name: BTreeMap<String, &Value> = ys
        .iter()
        .enumerate()
        .map(|(i, v)| (label(i, v), v))
        .collect();
    let mut out: Vec<(String, Option<&Value>, Option<&Value>)> = xs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let name = label(i, v);
            let other = by_name.get(&name).copied();
            (name, Some(v), other)
        })
        .collect();
    for (i, v) in ys.iter().enumerate() {
        let name = label(i, v);
        if !out.iter().any(|(n, _, _)| *n == name) {
            out.push((name, None, Some(v)));
        }
    }
    out
}

fn presence(path: String, a: bool, b: bool) -> Change {
    let word = |present: bool| present.then(|| "present".to_string());
    Change {
        path,
        a: word(a),
        b: word(b),
    }
}

/// Recursive field-by-field diff; objects by key, arrays by index, scalars by value.
fn value_diff(path: &str, a: &Value, b: &Value, out: &mut Vec<Change>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (a, b) {
        // A section on one side only (an answer pattern added) is compared field by field.
        (Value::Object(_), Value::Object(_) | Value::Null) | (Value::Null, Value::Object(_)) => {
            for key in union_keys(a, b) {
                value_diff(&join(&key), &a[key.as_str()], &b[key.as_str()], out);
            }
        }
        (Value::Array(_), Value::Array(_) | Value::Null) | (Value::Null, Value::Array(_)) => {
            let empty = Vec::new();
            let xs = a.as_array().unwrap_or(&empty);
            let ys = b.as_array().unwrap_or(&empty);
            for i in 0..xs.len().max(ys.len()) {
                let x = xs.get(i).unwrap_or(&Value::Null);
                let y = ys.get(i).unwrap_or(&Value::Null);
                value_diff(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ if same_scalar(a, b) => {}
        _ => out.push(Change {
            path: path.to_string(),
            a: render(a),
            b: render(b),
        }),
    }
}

/// Numbers compare by value (1 and 1.0 hash alike in the canonical identity); null is absent.
fn same_scalar(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn render(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_f64() => n.as_f64().map(crate::text::parameter_float),
        other => Some(other.to_string()),
    }
}

fn union_keys(a: &Value, b: &Value) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for v in [a, b] {
        if let Some(map) = v.as_object() {
            keys.extend(map.keys().cloned());
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conditions(temperature: f64, user: &str, concurrency: u32) -> Value {
        json!({
            "tool": {"name": "reprise", "version": "0.1.0"},
            "protocol": {"name": "p", "description": "d"},
            "campaign": {"repeats": 100, "concurrency": concurrency, "warmup": 0},
            "answer": null,
            "items": [{"name": "q1", "user": user}, {"name": "q2", "user": "two"}],
            "targets": [{
                "name": "gpt", "provider": "openai", "model": "m", "endpoint": "https://x/v1",
                "requests": [
                    {"item": "q1", "body": {"temperature": temperature, "messages": [{"role": "user", "content": user}]}},
                    {"item": "q2", "body": {"temperature": temperature, "messages": [{"role": "user", "content": "two"}]}},
                ],
            }],
        })
    }

    #[test]
    fn identical_conditions_have_no_changes() {
        let c = conditions(0.0, "one", 8);
        assert!(conditions_diff(&c, &c.clone()).is_empty());
        // 0 and 0.0 are one value, as in the canonical identity.
        let mut int = c.clone();
        int["targets"][0]["requests"][0]["body"]["temperature"] = json!(0);
        int["targets"][0]["requests"][1]["body"]["temperature"] = json!(0);
        assert!(conditions_diff(&c, &int).is_empty());
        assert_eq!(
            crate::archive::identity_of(&c),
            crate::archive::identity_of(&int)
        );
    }

    #[test]
    fn a_temperature_change_on_every_item_is_named_once() {
        let changes = conditions_diff(&conditions(0.0, "one", 8), &conditions(0.7, "one", 8));
        assert_eq!(
            changes,
            vec![Change {
                path: "targets.gpt.body.temperature".into(),
                a: Some("0.0".into()),
                b: Some("0.7".into()),
            }]
        );
    }

    #[test]
    fn f32_parameters_show_as_written() {
        let changes = conditions_diff(
            &conditions(f64::from(0.7f32), "one", 8),
            &conditions(1.0, "one", 8),
        );
        assert_eq!(changes[0].a.as_deref(), Some("0.7"));
        assert_eq!(changes[0].b.as_deref(), Some("1.0"));
        assert_eq!(crate::text::parameter_float(0.1), "0.1");
        assert_eq!(
            crate::text::parameter_float(1.0 / 3.0),
            (1.0f64 / 3.0).to_string()
        );
    }

    #[test]
    fn prompt_text_and_design_changes_are_named_per_field() {
        let changes = conditions_diff(&conditions(0.0, "one", 8), &conditions(0.0, "uno", 16));
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "campaign.concurrency",
                "items.q1.user",
                "targets.gpt.requests.q1.body.messages[0].content",
            ]
        );
        assert_eq!(changes[1].a.as_deref(), Some("one"));
        assert_eq!(changes[1].b.as_deref(), Some("uno"));
    }

    #[test]
    fn targets_and_items_on_one_side_only_are_said() {
        let a = conditions(0.0, "one", 8);
        let mut b = a.clone();
        b["targets"][0]["name"] = json!("claude");
        b["items"].as_array_mut().unwrap().pop();
        b["tool"]["version"] = json!("0.2.0");
        let changes = conditions_diff(&a, &b);
        let find = |p: &str| changes.iter().find(|c| c.path == p).cloned();
        assert_eq!(find("items.q2").unwrap().b, None);
        let gpt = find("targets.gpt").unwrap();
        assert_eq!(
            (gpt.a.as_deref(), gpt.b.as_deref()),
            (Some("present"), None)
        );
        let claude = find("targets.claude").unwrap();
        assert_eq!(claude.a, None);
        assert_eq!(find("tool.version").unwrap().b.as_deref(), Some("0.2.0"));
        assert_eq!(changes.len(), 4, "{changes:?}");
    }

    #[test]
    fn headers_and_answer_pattern_are_compared() {
        let a = conditions(0.0, "one", 8);
        let mut b = a.clone();
        b["targets"][0]["headers"] = json!({"x-org": "acme"});
        b["answer"] = json!({"pattern": "Answer: (.*)"});
        let paths: Vec<String> = conditions_diff(&a, &b)
            .into_iter()
            .map(|c| c.path)
            .collect();
        assert_eq!(paths, ["answer.pattern", "targets.gpt.headers.x-org"]);
    }
}
