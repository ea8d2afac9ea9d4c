//! Session archives: JSON Lines, hash-chained, flushed per record.
//! (API skeleton; implementation lands with the archive work.)

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::record::CallRecord;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub arch: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format_version: u32,
    pub tool: Tool,
    pub platform: Platform,
    /// RFC 3339, UTC.
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_path: Option<String>,
    /// Everything the user controls; `identity` is computed over it.
    pub conditions: serde_json::Value,
    /// `sha256:<hex>` over the RFC 8785 canonical JSON of `conditions`.
    pub identity: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionOutcome {
    Completed,
    Cancelled,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Close {
    pub ended_at: String,
    pub outcome: SessionOutcome,
    pub planned_calls: u64,
    /// Call records in the archive.
    pub records: u64,
    pub ok: u64,
    pub errors: u64,
    pub cancelled: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<serde_json::Value>,
}

pub fn identity_of(_conditions: &serde_json::Value) -> String {
    unimplemented!()
}

pub fn short_identity(identity: &str) -> &str {
    let hex = identity.strip_prefix("sha256:").unwrap_or(identity);
    &hex[..hex.len().min(12)]
}

pub fn default_dir() -> Option<PathBuf> {
    unimplemented!()
}

pub fn session_file_name(
    _started: std::time::SystemTime,
    _protocol_name: &str,
    _identity: &str,
) -> String {
    unimplemented!()
}

pub struct ArchiveWriter {}

impl ArchiveWriter {
    pub fn create(_path: &Path, _header: &Header) -> std::io::Result<Self> {
        unimplemented!()
    }
    pub fn append(&mut self, _record: &CallRecord) -> std::io::Result<()> {
        unimplemented!()
    }
    pub fn close(self, _close: &Close) -> std::io::Result<()> {
        unimplemented!()
    }
    pub fn path(&self) -> &Path {
        unimplemented!()
    }
}

pub struct Archive {
    pub header: Header,
    pub calls: Vec<CallRecord>,
    pub close: Option<Close>,
    /// A partial last line was ignored (as after a crash).
    pub truncated_tail: bool,
}

pub fn read(_path: &Path) -> Result<Archive, InputError> {
    unimplemented!()
}
