//! Conductor: a filesystem-native server that runs AI coding agents as supervised,
//! restartable runs.
//!
//! Data flows one way: [`config`] → [`storage`] (files, ids, locks) → [`bus`] → [`runner`] →
//! [`api`] → [`cli`]; [`gc`] and [`update`] sit beside the runner (update on storage alone),
//! [`wire`] holds the API's request/response bodies (above storage, bus and update, below the
//! server: it knows no HTTP), which [`api`] answers with and [`client`], the HTTP client of
//! the `server …` commands, decodes; [`cli`] is shared by the `run-agent` and `conductor`
//! binaries. Below them all, leaf utilities use nothing else of the crate: [`process`]
//! (liveness, process groups, /proc, `--version` probes), [`units`], [`limit`], [`version`],
//! [`yaml`]. `layering.rs` checks it.

pub mod agent;
pub mod api;
pub mod bus;
pub mod cli;
pub mod client;
pub mod config;
pub mod gc;
#[cfg(test)]
mod layering;
pub mod limit;
pub mod process;
pub mod runner;
pub mod storage;
pub mod ui;
pub mod units;
pub mod update;
pub mod version;
pub mod wire;
pub mod yaml;
