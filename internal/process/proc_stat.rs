//! The one parser of `/proc/<pid>/stat` (Linux, proc(5)). The command name (field 2) is
//! written in parentheses and may itself hold spaces and parentheses, so it runs from the
//! first `(` to the *last* `)`; the numeric fields resume after that.

use std::path::Path;

/// The fields of a stat line this crate uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Process id (field 1).
    pub pid: i32,
    /// Command name, without the parentheses (field 2).
    pub comm: String,
    /// State letter (field 3): `R`, `S`, `D`, `Z` (zombie), `X` (dead), …
    pub state: char,
    /// Parent process id (field 4).
    pub ppid: i32,
    /// Process group id (field 5).
    pub pgrp: i32,
    /// Start time in clock ticks since boot (field 22).
    pub start_time: u64,
}

impl Stat {
    /// Whether the process has exited: a zombie waiting to be reaped, or already dead.
    pub fn has_exited(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses one stat line; `None` when it is not one.
pub fn parse(line: &str) -> Option<Stat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = line[..open].trim().parse().ok()?;
    let comm = line[open + 1..close].to_string();
    let mut rest = line[close + 1..].split_whitespace();
    let mut state_field = rest.next()?.chars();
    let state = state_field.next()?;
    if state_field.next().is_some() {
        return None;
    }
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    // Fields 6..=21 lie between the process group and the start time.
    let start_time = rest.nth(16)?.parse().ok()?;
    Some(Stat {
        pid,
        comm,
        state,
        ppid,
        pgrp,
        start_time,
    })
}

/// Reads and parses `/proc/<pid>/stat`; `None` when the process is gone (or /proc is not
/// readable).
pub fn read(pid: i32) -> Option<Stat> {
    if pid <= 0 {
        return None;
    }
    parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The pids listed in /proc; `None` when /proc cannot be read.
pub fn pids() -> Option<Vec<i32>> {
    let entries = std::fs::read_dir(Path::new("/proc")).ok()?;
    Some(
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| *pid > 0)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(comm: &str, state: char) -> String {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime cutime cstime priority nice threads itrealvalue starttime vsize …
        format!("4242 ({comm}) {state} 17 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1024 10 rest")
    }

    #[test]
    fn parses_the_fields_after_the_last_parenthesis() {
        let stat = parse(&line("sleep", 'S')).unwrap();
        assert_eq!(
            stat,
            Stat {
                pid: 4242,
                comm: "sleep".into(),
                state: 'S',
                ppid: 17,
                pgrp: 4240,
                start_time: 987654,
            }
        );
        assert!(!stat.has_exited());
    }

    #[test]
    fn command_names_with_spaces_and_parentheses() {
        for comm in [
            "a) (b",
            "x ) Z 1 2 (",
            ") (",
            "((",
            "))",
            "tmux: server",
            "",
        ] {
            let stat = parse(&line(comm, 'Z')).unwrap_or_else(|| panic!("{comm:?}"));
            assert_eq!(stat.comm, comm);
            assert_eq!(stat.state, 'Z');
            assert_eq!((stat.ppid, stat.pgrp, stat.start_time), (17, 4240, 987654));
            assert!(stat.has_exited());
        }
    }

    #[test]
    fn rejects_lines_that_are_not_stat_lines() {
        for bad in [
            "",
            "4242",
            "4242 (x",
            "x (a) S 1 2",
            "4242 (a) S 1",
            "4242 (a) SS 1 2 3",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_its_own_process() {
        let me = std::process::id() as i32;
        let stat = read(me).unwrap();
        assert_eq!(stat.pid, me);
        assert!(!stat.has_exited());
        assert!(pids().unwrap().contains(&me));
        assert_eq!(read(0), None);
    }
}
