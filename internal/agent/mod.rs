//! Everything known about each kind of agent, one file per type: its command line, resume
//! form and token variable, and how to read its stream (answer, session id, usage, the CLI's
//! own error) — [`claude`], [`codex`], [`gemini`]; the chat-API agents (perplexity, xai) in
//! [`chat_api`]; `command` agents are whatever the config says. [`select`] turns a name into
//! an [`AgentSpec`]; [`stream`] drives the per-type stream parsers; [`failure`] says why a
//! failed run failed, in the agent's own words.
//!
//! Below the runner: it knows the config and the run records, never processes or files of a
//! run.

pub mod chat_api;
pub mod claude;
pub mod codex;
mod error;
pub mod failure;
pub mod gemini;
mod select;
pub mod stream;

pub use error::AgentError;
pub use select::*;
