//! The runner: one run of an agent ([`job`]), owned from spawn to final record by a
//! detached supervisor process ([`supervise`]); the Ralph restart loop of a task ([`ralph`], entered through [`ralph::drive`] by the CLI
//! and the server alike) and its dependencies ([`deps`]);
//! stopping a run's whole process group ([`stop`]), also on Ctrl-C
//! ([`interrupt`]).
//!
//! Supporting pieces: the agent's env ([`env`]), prompt.md ([`prompt`]), exit
//! classification ([`classify`]), output.md ([`output`]), bus events ([`events`]), the run
//! webhook ([`webhook`]), the cross-process run limit ([`slots`]),
//! and the reaping of everything an agent started ([`reap`]). Process groups, liveness and
//! `--version` probes come from [`crate::process`]; what is known about each kind of agent
//! (command lines, streams, why a run failed) from [`crate::agent`].

pub mod budget;
pub mod chat_run;
pub mod classify;
pub mod deps;
pub mod duration;
pub mod env;
pub mod error;
pub mod events;
pub mod exe;
pub mod inspect;
pub mod interrupt;
pub mod job;
pub mod loop_lock;
pub mod output;
pub mod prompt;
pub mod ralph;
pub mod reap;
pub mod reserve;
pub mod slots;
pub mod stop;
pub mod supervise;
pub mod supervisor_lock;
pub mod task_config;
pub mod usage;
pub mod webhook;

pub use crate::agent::AgentSpec;
pub use error::RunnerError;
pub use job::{run_job, JobRequest, PreparedRun};
pub use loop_lock::TaskLoopLock;
pub use ralph::{drive, run_task, LoopObserver, LoopRequest, TaskEnd, TaskRequest, Waiting};
pub use stop::{stop_run, StopOptions};
pub use supervise::{supervise, SupervisorPlan};
