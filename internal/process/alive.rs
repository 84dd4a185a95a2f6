//! Whether a process still runs. One rule for the whole crate: a process that exists but has
//! exited (a zombie waiting for its parent to reap it) is **not** alive; a recorded start
//! time that differs from the live process's means the pid was reused (not alive either).

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use super::group::group_alive;
use super::proc_stat;

/// Whether process `pid` exists and has not exited. A process of another user counts as
/// alive (`EPERM`); where /proc is unreadable, existence alone decides.
pub fn pid_alive(pid: i64) -> bool {
    let Some(raw) = positive(pid) else {
        return false;
    };
    match proc_stat::read(raw) {
        Some(stat) => !stat.has_exited(),
        None => exists(raw),
    }
}

/// Start time of `pid` in clock ticks since boot (field 22 of `/proc/<pid>/stat`), if known.
pub fn start_time(pid: i64) -> Option<u64> {
    proc_stat::read(positive(pid)?).map(|s| s.start_time)
}

/// Whether the process a record names (leader `pid`, process group `pgid`, and the leader's
/// start time when it was recorded) still runs:
///
/// - neither pid nor pgid recorded: it cannot be judged and counts as alive;
/// - the leader runs: alive, unless a recorded start time differs (the pid was reused);
/// - the leader is gone or a zombie: alive while a member of its group has not exited (the
///   agent's children), unless a start time was recorded (then the leader's end is the end,
///   and a group id of a reused pid is not trustworthy either).
pub fn recorded_alive(pid: i64, pgid: i64, recorded_start: Option<u64>) -> bool {
    if pid <= 0 && pgid <= 0 {
        return true;
    }
    if let Some(raw) = positive(pid) {
        match proc_stat::read(raw) {
            Some(stat) if !stat.has_exited() => {
                return recorded_start.is_none_or(|t| t == stat.start_time);
            }
            Some(_) => {}
            // No /proc entry: gone, or /proc unreadable (then the start time cannot be checked).
            None if exists(raw) => return true,
            None => {}
        }
    }
    pgid > 0 && recorded_start.is_none() && group_alive(pgid)
}

/// The process a record names: its leader, process group and (when recorded) the leader's
/// start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// Leader pid (0: not recorded).
    pub pid: i64,
    /// Process group id (0: not recorded).
    pub pgid: i64,
    /// The leader's start time in clock ticks since boot, when recorded.
    pub start_time: Option<u64>,
}

impl Recorded {
    /// Whether it still runs ([`recorded_alive`]).
    pub fn alive(&self) -> bool {
        recorded_alive(self.pid, self.pgid, self.start_time)
    }
}

fn positive(pid: i64) -> Option<i32> {
    i32::try_from(pid).ok().filter(|p| *p > 0)
}

fn exists(raw: i32) -> bool {
    matches!(kill(Pid::from_raw(raw), None), Ok(()) | Err(Errno::EPERM))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;
    use std::time::{Duration, Instant};

    /// Waits (generously) until `pid` is a zombie: it exited and nobody reaped it.
    fn wait_zombie(pid: i32) {
        let start = Instant::now();
        while proc_stat::read(pid).is_none_or(|s| s.state != 'Z') {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{pid} never became a zombie"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn own_process_is_alive_and_a_different_start_time_means_reuse() {
        let me = i64::from(std::process::id());
        let start = start_time(me);
        assert!(start.is_some());
        assert!(pid_alive(me));
        assert!(recorded_alive(me, me, start));
        assert!(recorded_alive(me, 0, None));
        assert!(!recorded_alive(me, me, start.map(|t| t + 1)));
        assert!(recorded_alive(0, 0, None), "nothing recorded: cannot judge");
        assert!(!pid_alive(0) && !pid_alive(-5) && !pid_alive(i64::MAX));
    }

    #[test]
    fn a_live_child_is_alive_and_an_unreaped_exited_child_is_not() {
        let mut sleeper = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let live = i64::from(sleeper.id());
        assert!(pid_alive(live));
        assert!(recorded_alive(live, live, start_time(live)));
        assert!(recorded_alive(live, live, None));

        // Exits at once in a group of its own and is not reaped until the end: a zombie,
        // which `kill(pid, 0)` and `kill(-pgid, 0)` still report as existing.
        let mut exited = Command::new("true").process_group(0).spawn().unwrap();
        let zombie = exited.id() as i32;
        wait_zombie(zombie);
        let zombie = i64::from(zombie);
        assert!(exists(zombie as i32), "the kernel still knows the zombie");
        assert!(!pid_alive(zombie));
        assert!(!group_alive(zombie));
        assert!(!recorded_alive(zombie, zombie, None));
        assert!(!recorded_alive(zombie, zombie, Some(1)));
        assert!(!recorded_alive(zombie, 0, None));

        exited.wait().unwrap();
        assert!(!pid_alive(zombie), "reaped: gone");
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        assert!(!pid_alive(live));
        assert!(!recorded_alive(live, live, None));
    }

    #[test]
    fn a_live_group_member_keeps_a_run_without_start_time_alive() {
        // The leader (sh) exits at once; its child sleep stays in the group.
        let mut leader = Command::new("sh")
            .args(["-c", "sleep 30 >/dev/null 2>&1 & echo $!"])
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = i64::from(leader.id());
        let mut out = String::new();
        std::io::Read::read_to_string(leader.stdout.as_mut().unwrap(), &mut out).unwrap();
        let member: i32 = out.trim().parse().unwrap();
        leader.wait().unwrap();
        assert!(!pid_alive(pgid));
        assert!(recorded_alive(pgid, pgid, None), "a member still runs");
        assert!(
            !recorded_alive(pgid, pgid, Some(1)),
            "with a start time the leader's end is the run's end"
        );
        let _ = kill(Pid::from_raw(member), nix::sys::signal::Signal::SIGKILL);
        let start = Instant::now();
        while recorded_alive(pgid, pgid, None) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "member survived SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
