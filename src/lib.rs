#![forbid(unsafe_code)]
//! reprise: live consistency experiments on large language models.
//!
//! One pipeline: protocol → backend → runner → archive → analysis → report.
//! - `protocol`: what to run (TOML), validated;
//! - `providers`: backends, one module per wire format (`local` is the built-in model in `local`);
//! - `runner`: the calls, under a concurrency limit, as call records (`record`);
//! - `session`: one owner of the records: archive first, then analysis;
//! - `archive`: hash-chained JSON Lines files, `verify`, session listing;
//! - `analysis`: every measure, folded one record at a time into a snapshot;
//! - `report`: the headless table and JSON summary; `compare`: two sessions side by side;
//!   `export`/`import`: archives to CSV, Markdown, JSON and other tools' outputs to archives;
//!   `cli`: the commands;
//! - `tui`: the live dashboard (the only module that imports ratatui/crossterm, with `cli`).
//!
//! Nothing here but `cli`, `report` and `tui` writes to a terminal.

/// This build of reprise, as served identities name it (`reprise-0.1.0`).
pub const BUILD: &str = concat!("reprise-", env!("CARGO_PKG_VERSION"));

pub mod analysis;
pub mod archive;
pub mod cli;
pub mod compare;
pub mod conditions;
pub mod config;
pub mod error;
pub mod export;
pub mod import;
pub mod local;
pub mod protocol;
pub mod providers;
pub mod record;
pub mod report;
pub mod runner;
pub mod serve;
pub mod session;
pub mod text;
pub mod tui;
