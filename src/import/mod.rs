//! `reprise import`: outputs gathered by other tools, written as a normal, verifiable session
//! archive whose conditions say it was imported, so every measure and view applies.
//!
//! Each format is parsed and validated in full before anything is written, so bad input
//! leaves nothing behind; a write that fails part-way removes its partial file.

mod jsonl;
mod lm_eval;
mod promptfoo;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::analysis::Analyzer;
use crate::archive::{self, ArchiveWriter, Header, SessionOutcome};
use crate::error::InputError;
use crate::record::{CallRecord, ErrorClass, Usage};
use crate::report;
use crate::session::analysis_config_from_conditions;

/// The shapes `reprise import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    /// One JSON object per line: `item`, `output`, optional `target`, `latency_ms`, `model`.
    Jsonl,
    /// promptfoo's `promptfoo eval -o out.json`.
    Promptfoo,
    /// lm-evaluation-harness `--log_samples` output (`samples_<task>_<time>.jsonl`).
    #[value(name = "lm-eval")]
    LmEval,
}

impl ImportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportFormat::Jsonl => "jsonl",
            ImportFormat::Promptfoo => "promptfoo",
            ImportFormat::LmEval => "lm-eval",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub format: ImportFormat,
    /// Archive path; default: a file named after the identity in `dir`.
    pub out: Option<PathBuf>,
    /// Where a default-named archive goes; default: the platform data directory.
    pub dir: Option<PathBuf>,
    /// The session's protocol name; default: the input file's stem.
    pub name: Option<String>,
}

/// What was imported.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub archive: PathBuf,
    pub identity: String,
    pub records: u64,
    pub targets: Vec<String>,
    pub items: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Input(#[from] InputError),
    #[error("no data directory for sessions on this platform; give --out FILE")]
    NoDataDir,
    #[error("cannot write the archive {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One output as another tool recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedCall {
    pub target: String,
    pub item: String,
    /// The output, or why the tool got none (archived as a failed call of class `other`).
    pub output: Result<String, String>,
    pub latency_ms: Option<f64>,
    /// What the tool says served it (`model`, …): archived as the record's `served`.
    pub served: Vec<(String, String)>,
    pub usage: Option<Usage>,
}

/// What an item was, where the format says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemInfo {
    /// The prompt as sent, where known.
    pub user: Option<String>,
    pub expected: Option<String>,
}

/// A parsed input: the calls in file order, and what is known of each item.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub calls: Vec<ImportedCall>,
    pub items: HashMap<String, ItemInfo>,
}

/// Parses `bytes` (the contents of `file`) in `format`, fully validated.
pub fn parse(format: ImportFormat, bytes: &[u8], file: &Path) -> Result<Parsed, InputError> {
    let parsed = match format {
        ImportFormat::Jsonl => jsonl::parse(bytes, file)?,
        ImportFormat::Promptfoo => promptfoo::parse(bytes, file)?,
        ImportFormat::LmEval => lm_eval::parse(bytes, file)?,
    };
    if parsed.calls.is_empty() {
        return Err(InputError::new(file, "no outputs found; nothing to import"));
    }
    Ok(parsed)
}

/// Imports `file`: parses it whole, then writes the archive.
pub fn import(file: &Path, options: &ImportOptions) -> Result<Imported, ImportError> {
    let bytes = std::fs::read(file)
        .map_err(|e| InputError::new(file, format!("cannot read the file: {e}")))?;
    let parsed = parse(options.format, &bytes, file)?;
    let name = options.name.clone().unwrap_or_else(|| {
        file.file_stem()
            .map_or("imported".into(), |s| s.to_string_lossy().into_owned())
    });
    let file_name = file.file_name().map_or_else(
        || file.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let sha = format!("{:x}", Sha256::digest(&bytes));
    let (conditions, records) = session_of(&parsed, options.format, &file_name, &sha, &name);
    let started = SystemTime::now();
    let header = Header::new(conditions, None, started);
    let identity = header.identity.clone();

    let created = match &options.out {
        Some(path) => ArchiveWriter::create(path, &header).map_err(|e| (path.clone(), e)),
        None => {
            let dir = options
                .dir
                .clone()
                .or_else(archive::default_dir)
                .ok_or(ImportError::NoDataDir)?;
            ArchiveWriter::create_in(&dir, &header, started, &name).map_err(|e| (dir, e))
        }
    };
    let mut writer = created.map_err(|(path, source)| ImportError::Write { path, source })?;
    let path = writer.path().to_path_buf();
    // The closing summary, as a native session has it, for `reprise sessions`.
    let mut analyzer = Analyzer::new(analysis_config_from_conditions(&header.conditions));
    for record in &records {
        analyzer.fold(record);
    }
    let summary = report::summary_json(&analyzer.snapshot(), &path, &identity);
    let written = (|| {
        for record in &records {
            writer.append(record)?;
        }
        let close = writer.close_record(
            SessionOutcome::Completed,
            records.len() as u64,
            Some(summary),
        );
        writer.close(&close)
    })();
    if let Err(source) = written {
        // Nothing half-imported is left to be mistaken for a session.
        let _ = std::fs::remove_file(&path);
        return Err(ImportError::Write { path, source });
    }
    let (targets, items) = names(&parsed);
    Ok(Imported {
        archive: path,
        identity,
        records: records.len() as u64,
        targets,
        items,
    })
}

/// Targets and items in order of first appearance.
fn names(parsed: &Parsed) -> (Vec<String>, Vec<String>) {
    let mut targets: Vec<String> = Vec::new();
    let mut items: Vec<String> = Vec::new();
    let mut seen_t = std::collections::HashSet::new();
    let mut seen_i = std::collections::HashSet::new();
    for c in &parsed.calls {
        if seen_t.insert(c.target.as_str()) {
            targets.push(c.target.clone());
        }
        if seen_i.insert(c.item.as_str()) {
            items.push(c.item.clone());
        }
    }
    (targets, items)
}

/// The conditions and call records of an imported session. Call indices count per
/// (target, item) in file order. The tools give no send times, so calls are placed one
/// after another: each starts when the one before it (in the file) ended.
pub fn session_of(
    parsed: &Parsed,
    format: ImportFormat,
    file_name: &str,
    sha256: &str,
    name: &str,
) -> (Value, Vec<CallRecord>) {
    let (targets, items) = names(parsed);
    let mut next_call: HashMap<(&str, &str), u32> = HashMap::new();
    let mut models: HashMap<&str, Option<&str>> = HashMap::new();
    let mut clock = 0.0_f64;
    let mut records = Vec::with_capacity(parsed.calls.len());
    for c in &parsed.calls {
        let n = next_call.entry((&c.target, &c.item)).or_insert(0);
        let call = *n;
        *n += 1;
        let latency = c.latency_ms.unwrap_or(0.0);
        let mut r = match &c.output {
            Ok(text) => CallRecord::ok(&c.target, &c.item, call, text, latency),
            Err(message) => {
                let mut r =
                    CallRecord::failed(&c.target, &c.item, call, ErrorClass::Other, message);
                r.timing.latency_ms = latency;
                r
            }
        };
        r.timing.start_ms = clock;
        clock += latency;
        r.usage = c.usage;
        r.served = c.served.iter().cloned().collect();
        // A target's model is named in the conditions only when all its calls agree on it.
        let model = c
            .served
            .iter()
            .find(|(k, _)| k == "model")
            .map(|(_, v)| v.as_str());
        let entry = models.entry(&c.target).or_insert(model);
        if *entry != model {
            *entry = None;
        }
        records.push(r);
    }
    let targets: Vec<Value> = targets
        .iter()
        .map(|t| {
            json!({
                "name": t,
                "provider": "imported",
                "model": models.get(t.as_str()).copied().flatten(),
                "endpoint": null,
                "requests": [],
            })
        })
        .collect();
    let items: Vec<Value> = items
        .iter()
        .map(|i| {
            let info = parsed.items.get(i).cloned().unwrap_or_default();
            let mut v = json!({"name": i});
            if let Some(user) = info.user {
                v["user"] = json!(user);
            }
            if let Some(expected) = info.expected {
                v["expected"] = json!(expected);
            }
            v
        })
        .collect();
    let conditions = json!({
        "tool": {"name": "reprise", "version": env!("CARGO_PKG_VERSION")},
        "protocol": {
            "name": name,
            "description": format!("outputs imported from {file_name} ({} format)", format.as_str()),
        },
        "imported": {"format": format.as_str(), "file": file_name, "sha256": sha256},
        "answer": null,
        "items": items,
        "targets": targets,
    });
    (conditions, records)
}

/// A field's error at a line of `file`.
pub(crate) fn field_error(file: &Path, line: usize, field: &str, message: &str) -> InputError {
    InputError::new(file, message)
        .at_line(Some(line))
        .field(field)
}

/// A latency in milliseconds: a finite, non-negative number.
pub(crate) fn latency(
    v: &Value,
    file: &Path,
    line: usize,
    field: &str,
) -> Result<Option<f64>, InputError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
            _ => Err(field_error(
                file,
                line,
                field,
                "expected a non-negative number of milliseconds",
            )),
        },
        _ => Err(field_error(
            file,
            line,
            field,
            "expected a number of milliseconds",
        )),
    }
}

/// Lines of a JSON Lines file: (1-based number, text), blank lines skipped, a UTF-8 byte
/// order mark and `\r` line ends tolerated.
pub(crate) fn json_lines<'a>(
    bytes: &'a [u8],
    file: &'a Path,
) -> impl Iterator<Item = Result<(usize, &'a str), InputError>> + 'a {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter_map(move |(i, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                return None;
            }
            Some(
                std::str::from_utf8(line).map(|s| (i + 1, s)).map_err(|_| {
                    InputError::new(file, "not valid UTF-8 text").at_line(Some(i + 1))
                }),
            )
        })
}

/// A JSON object from one line.
pub(crate) fn object_of(
    text: &str,
    file: &Path,
    line: usize,
) -> Result<serde_json::Map<String, Value>, InputError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(InputError::new(file, "expected a JSON object").at_line(Some(line))),
        Err(e) => Err(InputError::new(file, format!("not valid JSON: {e}")).at_line(Some(line))),
    }
}

#[cfg(test)]
mod tests;
