//! Conductor: a filesystem-native server that runs AI coding agents as supervised,
//! restartable runs.
//!
//! Data flows one way: [`config`] → [`storage`] (files, ids, locks) → [`bus`] → [`api`] → [`ui`];
//! [`cli`] sits at the edge and is shared by the `run-agent` and `conductor` binaries.

pub mod api;
pub mod bus;
pub mod cli;
pub mod client;
pub mod config;
pub mod gc;
pub mod limit;
pub mod runner;
pub mod storage;
pub mod ui;
pub mod units;
pub mod update;
pub mod version;
pub mod yaml;
