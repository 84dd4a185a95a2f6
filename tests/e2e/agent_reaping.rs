//! No process an agent started outlives its run: commands its tools start in sessions of
//! their own (claude's Bash tool, gemini's shell tool, `setsid cmd &`; the fake agent's
//! `FAKE_SETSID_CHILD`) end with the run when the runner ends it — `stop`, the idle timeout,
//! Ctrl-C of a foreground `job`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use conductor::storage::RunStatus;

use crate::support::{alive, run, text, wait_until, ChildGuard, Sandbox};

fn read_pid(file: &Path) -> i32 {
    wait_until("the tool's pid", Duration::from_secs(30), || file.exists());
    std::fs::read_to_string(file)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Kills `pid` if a failing test left it behind.
struct PidGuard(i32);

impl Drop for PidGuard {
    fn drop(&mut self) {
        if alive(self.0) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

struct World {
    sb: Sandbox,
    config: PathBuf,
}

impl World {
    fn new() -> World {
        let sb = Sandbox::new();
        let config = sb.fake_agent_config("fake");
        World { sb, config }
    }

    fn job(&self, task: &str, tool_pid: &Path, fake: &[(&str, &str)]) -> Command {
        let mut cmd = self.sb.run_agent();
        cmd.args(["job", "--project", "p", "--task", task, "--agent", "fake"])
            .args(["--prompt", "work", "--root"])
            .arg(self.sb.root())
            .arg("--config")
            .arg(&self.config)
            .env("FAKE_SETSID_CHILD", tool_pid)
            .envs(fake.iter().copied());
        cmd
    }

    fn status(&self, task: &str) -> RunStatus {
        let runs = self.sb.path().join("root/p").join(task).join("runs");
        crate::support::run_infos(&runs)
            .pop()
            .expect("a run")
            .status
    }
}

#[test]
fn stop_ends_the_tools_commands_too() {
    let w = World::new();
    let pid_file = w.sb.path().join("tool.pid");
    let mut cmd = w.job("t", &pid_file, &[("FAKE_SLEEP", "120")]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let _job = ChildGuard(Some(cmd.spawn().unwrap()));
    let pid = read_pid(&pid_file);
    let _guard = PidGuard(pid);
    assert!(alive(pid));
    let mut stop = w.sb.run_agent();
    stop.args([
        "stop",
        "--project",
        "p",
        "--task",
        "t",
        "--grace",
        "5s",
        "--root",
    ])
    .arg(w.sb.root());
    let out = run(&mut stop);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(w.status("t"), RunStatus::Stopped);
    assert!(!alive(pid), "the tool's command survived stop");
}

#[test]
fn idle_timeout_ends_the_tools_commands() {
    let w = World::new();
    let pid_file = w.sb.path().join("idle.pid");
    let mut cmd = w.job("idle", &pid_file, &[("FAKE_SLEEP", "120")]);
    let out = run(cmd.args(["--timeout", "1s"]));
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(w.status("idle"), RunStatus::Failed);
    let pid = read_pid(&pid_file);
    let _guard = PidGuard(pid);
    assert!(!alive(pid), "the tool's command survived the idle timeout");
}

#[test]
fn ctrl_c_of_a_foreground_job_ends_the_tools_commands() {
    let w = World::new();
    let pid_file = w.sb.path().join("tool.pid");
    let mut cmd = w.job("t", &pid_file, &[("FAKE_SLEEP", "120")]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut job = ChildGuard(Some(cmd.spawn().unwrap()));
    let pid = read_pid(&pid_file);
    let _guard = PidGuard(pid);
    let job_pid = job.0.as_ref().unwrap().id() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(job_pid),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let child = job.0.as_mut().unwrap();
    wait_until("the job to end", Duration::from_secs(60), || {
        child.try_wait().unwrap().is_some()
    });
    assert_eq!(w.status("t"), RunStatus::Stopped);
    assert!(!alive(pid), "the tool's command survived Ctrl-C");
}
