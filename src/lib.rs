#![forbid(unsafe_code)]
//! reprise: live consistency experiments on large language models.
//!
//! One pipeline: protocol → backend → runner → archive → analysis → report.
//! The core modules here know nothing of terminals beyond the headless report.

pub mod analysis;
pub mod error;
pub mod archive;
pub mod local;
pub mod protocol;
pub mod record;
