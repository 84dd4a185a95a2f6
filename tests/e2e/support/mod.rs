//! Shared test helpers, by kind: [`fixtures`] (binaries, sandbox, servers, process guards),
//! [`factories`] (run files and records), [`asserts`] (running commands, reading what they
//! left, bounded waits) and [`http`] (requests and event streams). Everything is re-exported
//! here, so tests name `crate::support::X`.

pub mod asserts;
pub mod factories;
pub mod fixtures;
pub mod http;

pub use asserts::*;
pub use factories::*;
pub use fixtures::*;
pub use http::*;
