//! Processes as the operating system sees them, in one place: whether a recorded process
//! still runs ([`alive`]: one rule, a zombie is not alive, a recorded start time guards
//! against pid reuse), process groups ([`group`]: starting a command in its own session,
//! leading a group, signalling and probing a whole group), a thread's CPU priority
//! ([`priority`]), the one `/proc/<pid>/stat` parser ([`proc_stat`]), reaping children
//! ([`wait`]), and running a binary with a deadline ([`probe`], the `--version` checks).
//!
//! This module depends on nothing else in the crate. Storage says what a record claims
//! (pid, process group, start time); whether that process is still there is asked here.

pub mod alive;
pub mod group;
pub mod priority;
pub mod probe;
pub mod proc_stat;
pub mod wait;

pub use alive::{pid_alive, recorded_alive, start_time, Recorded};
pub use group::{group_alive, lead_own_group, new_session, signal_group};
pub use priority::lower_thread_priority;
pub use probe::{first_line, probe, ProbeError, ProbeOutput};
pub use wait::reap_later;
