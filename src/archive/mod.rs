//! Session archives: one JSON Lines file per session, hash-chained, flushed per record.
//!
//! Line 1 is the header, then one line per call attempt, then the closing record. Each line is a
//! compact JSON object starting with `kind`, `seq` and (after the header) `prev`, and ending with
//! `"hash":"sha256:<hex>"` computed over the exact bytes of the line without that field, so any
//! byte change, dropped or reordered record is caught by [`verify`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

mod identity;
mod line;
mod reader;
mod resume;
mod sessions;
mod verify;
mod writer;

pub use identity::{identity_of, session_file_name, short_identity};
pub use reader::read;

/// [`read`] on bytes already in memory (`path` names them in errors).
pub fn read_bytes(
    bytes: &[u8],
    path: &std::path::Path,
) -> Result<Archive, crate::error::InputError> {
    reader::read_bytes(bytes, path)
}

/// [`verify`] on bytes already in memory (`path` names them in errors).
pub fn verify_bytes(bytes: &[u8], path: &std::path::Path) -> Result<VerifyReport, VerifyError> {
    verify::verify_bytes(bytes, path)
}
pub use resume::{reopen, Reopened};
pub use sessions::{list_sessions, session_info, SessionInfo, SessionList};
pub use verify::{verify, VerifyError, VerifyReport};
pub use writer::ArchiveWriter;

use crate::record::CallRecord;

pub const FORMAT_VERSION: u32 = 1;

/// Environment variable that moves the data directory (sessions go in `$REPRISE_DATA_DIR/sessions`).
pub const DATA_DIR_ENV: &str = "REPRISE_DATA_DIR";

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
    /// What each target's server said about itself as the session started (model digest,
    /// server version, build), by target name; targets with nothing to say are left out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub servers: BTreeMap<String, BTreeMap<String, String>>,
}

impl Header {
    /// A header for a session of this build of reprise on this machine, started at `started`.
    pub fn new(
        conditions: serde_json::Value,
        protocol_path: Option<String>,
        started: SystemTime,
    ) -> Self {
        let identity = identity_of(&conditions);
        Header {
            format_version: FORMAT_VERSION,
            tool: Tool {
                name: "reprise".to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
            },
            platform: Platform {
                os: std::env::consts::OS.to_string(),
                arch: std::env::consts::ARCH.to_string(),
            },
            started_at: humantime::format_rfc3339_millis(started).to_string(),
            protocol_path,
            conditions,
            servers: BTreeMap::new(),
            identity,
        }
    }

    /// `conditions.protocol.name`, where the conditions carry one.
    pub fn protocol_name(&self) -> Option<&str> {
        protocol_name_of(&self.conditions)
    }
}

pub(crate) fn protocol_name_of(conditions: &serde_json::Value) -> Option<&str> {
    conditions.get("protocol")?.get("name")?.as_str()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionOutcome {
    Completed,
    Cancelled,
    Failed,
}

impl SessionOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionOutcome::Completed => "completed",
            SessionOutcome::Cancelled => "cancelled",
            SessionOutcome::Failed => "failed",
        }
    }
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
    /// Planned calls with no outcome in the archive (never sent, or lost); left out when
    /// every planned call has one, as in archives written before it was recorded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub without_outcome: u64,
    /// Planned calls never sent (a breaker tripped, or the campaign was stopped).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_sent: u64,
    /// Why the session did not complete, in one sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<serde_json::Value>,
    /// What each target's server said about itself as the session ended (compare with the
    /// header's `servers`: a change means the server was updated during the session).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub servers: BTreeMap<String, BTreeMap<String, String>>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Where sessions are kept: `$REPRISE_DATA_DIR/sessions` if set, else the platform data dir.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("sessions"));
    }
    let dirs = directories::ProjectDirs::from("", "", "reprise")?;
    Some(dirs.data_dir().join("sessions"))
}

/// A whole session as read back from its file.
#[derive(Debug, Clone, PartialEq)]
pub struct Archive {
    pub header: Header,
    pub calls: Vec<CallRecord>,
    pub close: Option<Close>,
    /// A partial last line was ignored (as after a crash).
    pub truncated_tail: bool,
}

#[cfg(test)]
mod tests;
