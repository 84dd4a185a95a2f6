//! Everything an agent started ends with its run. Agents' tools start commands in
//! sessions (process groups) of their own — claude's Bash tool, gemini's shell tool, a
//! `setsid cmd &` — which signalling the agent's group does not reach, and which would be
//! reparented to PID 1 when the agent dies. The supervisor therefore makes itself the *child
//! subreaper* of its subtree (`PR_SET_CHILD_SUBREAPER`, Linux): orphans of the agent become
//! its children instead of PID 1's. When the runner ended the agent (`stop`, Ctrl-C, the idle
//! timeout), it kills every remaining descendant once the agent is gone: SIGTERM, a short
//! grace, SIGKILL. An agent that exits by itself may leave work running on purpose (a child
//! run started in the background, which the task loop waits for), so nothing is killed then.
//!
//! Other runs' supervisors (a child run the agent started with `run-agent job`) and their
//! subtrees are left alone: each run owns itself. cgroups are not used.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::job::SUPERVISE_COMMAND;
use crate::process::proc_stat;
use crate::process::wait::reap_exited_children;

/// Time between SIGTERM and SIGKILL of the leftovers.
pub const LEFTOVER_GRACE: Duration = Duration::from_secs(2);
/// SIGKILL sweeps (a process may fork while the previous sweep runs).
const KILL_SWEEPS: usize = 5;
const POLL: Duration = Duration::from_millis(50);

/// Makes this process the reaper of its orphaned descendants.
pub fn become_subreaper() -> Result<(), Errno> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// Ends every descendant of this process except other runs' supervisors (and theirs):
/// SIGTERM, up to `grace` for them to exit, then SIGKILL. Reaps the zombies left to this
/// process. Returns how many processes were signalled.
pub fn end_descendants(grace: Duration) -> usize {
    let me = std::process::id() as i32;
    let first = descendants(me);
    if first.is_empty() {
        reap_exited_children();
        return 0;
    }
    tracing::info!(
        count = first.len(),
        "ending processes the agent left behind"
    );
    for pid in &first {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGTERM);
    }
    let start = Instant::now();
    while start.elapsed() < grace {
        reap_exited_children();
        if descendants(me).is_empty() {
            return first.len();
        }
        std::thread::sleep(POLL);
    }
    for _ in 0..KILL_SWEEPS {
        let left = descendants(me);
        if left.is_empty() {
            break;
        }
        for pid in left {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(POLL);
        reap_exited_children();
    }
    reap_exited_children();
    first.len()
}

/// Live (not zombie) descendants of `root`, skipping other runs' supervisor subtrees.
fn descendants(root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    let Some(pids) = proc_stat::pids() else {
        return Vec::new();
    };
    for stat in pids.into_iter().filter_map(proc_stat::read) {
        if !stat.has_exited() {
            children.entry(stat.ppid).or_default().push(stat.pid);
        }
    }
    let mut out = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            if is_run_supervisor(child) {
                continue;
            }
            out.push(child);
            queue.push(child);
        }
    }
    out
}

/// Whether `pid` is a run supervisor (`run-agent supervise --run-dir …`).
fn is_run_supervisor(pid: i32) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let mut args = cmdline.split(|b| *b == 0);
    args.nth(1) == Some(SUPERVISE_COMMAND.as_bytes())
        && args.next() == Some(b"--run-dir".as_slice())
}
