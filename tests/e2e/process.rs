//! e2e: whether a run's process still runs is judged by one rule everywhere — `run-agent
//! list`, `run-agent status` and the HTTP API. A zombie (exited, not yet reaped by its
//! parent) is not alive, also when it is all that is left of the run's process group; a live
//! member of the group keeps a run without a recorded start time running.
//!
//! The records are written the way a runner that records no start time writes them (the Go
//! reference does not): then the process group decides once the leader is gone. Each surface
//! reads its own task first, since the first reader writes the reconciliation back.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use conductor::storage::{RunInfo, RunStatus};

use crate::support::{run, serve_root, text, wait_until, ChildGuard, Sandbox};

const RUN: &str = "20260101-0000000000-1-1";

/// A child that exits at once, in a process group of its own, and is not reaped while the
/// guard lives: a zombie whose group holds nothing but that zombie.
fn zombie_leader() -> ChildGuard {
    let child = Command::new("true")
        .process_group(0)
        .spawn()
        .expect("spawn true");
    let pid = child.id() as i32;
    wait_until(
        "the child to become a zombie",
        Duration::from_secs(60),
        || conductor::process::proc_stat::read(pid).is_some_and(|s| s.state == 'Z'),
    );
    ChildGuard(Some(child))
}

/// A group whose leader (`sh`) has exited and been reaped while its child `sleep` runs on;
/// returns the group id and the guard of the member.
fn group_without_leader() -> (i64, Member) {
    let mut leader = Command::new("sh")
        .args(["-c", "sleep 120 >/dev/null 2>&1 & echo $!"])
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn sh");
    let pgid = i64::from(leader.id());
    let mut out = String::new();
    std::io::Read::read_to_string(leader.stdout.as_mut().expect("stdout"), &mut out)
        .expect("read the member pid");
    leader.wait().expect("reap the leader");
    let member: i32 = out.trim().parse().expect("member pid");
    (pgid, Member(member))
}

/// Kills a process that is not our child (the orphaned group member) when dropped.
struct Member(i32);

impl Drop for Member {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn write_running(root: &Path, task: &str, pid: i64, pgid: i64) -> PathBuf {
    let dir = root.join("p").join(task).join("runs").join(RUN);
    std::fs::create_dir_all(&dir).expect("create run dir");
    let mut info = RunInfo::new_running(RUN, "p", task, "claude", chrono::Utc::now());
    info.pid = pid;
    info.pgid = pgid;
    info.pid_start_time = None;
    info.write(&dir.join("run-info.yaml"))
        .expect("write run-info");
    dir.join("run-info.yaml")
}

fn cli_json(sb: &Sandbox, root: &Path, args: &[&str]) -> serde_json::Value {
    let out = run(sb.run_agent().args(args).arg("--root").arg(root));
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out)))
}

fn assert_vanished(record: &Path) {
    let info = RunInfo::read(record).expect("read run-info");
    assert_eq!(info.status, RunStatus::Failed, "{}", record.display());
    assert_eq!(info.error_summary.as_deref(), Some("process vanished"));
}

#[test]
fn a_run_whose_process_group_holds_only_a_zombie_is_not_running_anywhere() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let zombie = zombie_leader();
    let z = i64::from(zombie.0.as_ref().expect("zombie").id());
    let by_list = write_running(&root, "by-list", z, z);
    let by_status = write_running(&root, "by-status", z, z);
    let by_api = write_running(&root, "by-api", z, z);

    let list = cli_json(&sb, &root, &["list", "--json", "--project", "p"]);
    let task = list["projects"][0]["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["task_id"] == "by-list")
        .unwrap_or_else(|| panic!("by-list not listed: {list:#}"));
    assert_eq!(task["status"], "failed", "{task:#}");
    assert_eq!(
        task["runs"][0]["error_summary"], "process vanished",
        "{task:#}"
    );
    assert_vanished(&by_list);

    let status = cli_json(
        &sb,
        &root,
        &["status", "--json", "--project", "p", "--task", "by-status"],
    );
    assert_eq!(status["latest_status"], "failed", "{status:#}");
    assert_eq!(status["pid_alive"], false, "{status:#}");
    assert_vanished(&by_status);

    let server = serve_root(&sb, None);
    let (code, view) = server.get_json("/api/v1/projects/p/tasks/by-api");
    assert_eq!(code, 200, "{view:#}");
    assert_eq!(view["status"], "failed", "{view:#}");
    let (code, run) = server.get_json(&format!("/api/v1/runs/{RUN}"));
    assert_eq!(code, 200, "{run:#}");
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_vanished(&by_api);
    let (_, counts) = server.get_json("/api/v1/status");
    assert_eq!(counts["active_runs"], 0, "{counts:#}");
    drop(server);
    drop(zombie);
}

#[test]
fn a_live_member_of_the_group_keeps_a_run_running_until_it_ends() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let (pgid, member) = group_without_leader();
    let record = write_running(&root, "t", pgid, pgid);

    let status = cli_json(
        &sb,
        &root,
        &["status", "--json", "--project", "p", "--task", "t"],
    );
    assert_eq!(status["latest_status"], "running", "{status:#}");
    assert_eq!(status["pid_alive"], true, "{status:#}");
    assert_eq!(
        RunInfo::read(&record).expect("read").status,
        RunStatus::Running
    );

    drop(member);
    wait_until(
        "the run to be judged ended",
        Duration::from_secs(60),
        || {
            let status = cli_json(
                &sb,
                &root,
                &["status", "--json", "--project", "p", "--task", "t"],
            );
            status["latest_status"] == "failed"
        },
    );
    assert_vanished(&record);
}

/// Fields 5, 6, 7 and 19 of `/proc/<pid>/stat` (process group, session, controlling terminal,
/// nice), read after the `)` that ends the command name.
fn group_and_session(pid: u32) -> [i64; 4] {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let rest = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
    let fields: Vec<i64> = rest
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    [fields[1], fields[2], fields[3], fields[15]]
}

#[test]
fn a_server_started_supervisor_leads_its_own_group_in_the_servers_session() {
    // The server spawns supervisors without forking its own address space; the supervisor
    // then detaches itself: its own process group, no terminal, the server's session (one
    // scheduling autogroup with the server, not one per run), and nice 19 once the agent runs.
    // The agent leads a session of its own. The agent writes down its parent (the supervisor) and itself, and
    // waits for GO at most 30 s, so a failed assertion leaves nothing running for long.
    let sb = Sandbox::new();
    let script = sb.write(
        "ids-agent.sh",
        "#!/bin/sh\necho \"$PPID $$\" > \"$JRUN_TASK_FOLDER/ids\"\n\
         w=0; while [ ! -e \"$JRUN_TASK_FOLDER/GO\" ] && [ $w -lt 600 ]; do sleep 0.05; w=$((w+1)); done\n\
         touch \"$JRUN_TASK_FOLDER/DONE\"\n",
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = format!(
        "agents:\n  ids:\n    type: command\n    command: [\"{}\"]\ndefaults:\n  agent: ids\n",
        script.display()
    );
    let server = serve_root(&sb, Some(&config));
    let (code, body) = server.post_json(
        "/api/v1/tasks",
        serde_json::json!({"project_id": "p", "task_id": "sessions", "prompt": "ids"}),
    );
    assert_eq!(code, 201, "{body}");
    let task = sb.path().join("root/p/sessions");
    // Lets the agent end when the test ends, also when an assertion below fails.
    struct Release(std::path::PathBuf);
    impl Drop for Release {
        fn drop(&mut self) {
            let _ = std::fs::write(&self.0, "");
        }
    }
    let release = Release(task.join("GO"));
    let ids = task.join("ids");
    wait_until("the agent wrote its ids", Duration::from_secs(30), || {
        std::fs::read_to_string(&ids).is_ok_and(|t| t.ends_with('\n'))
    });
    let text = std::fs::read_to_string(&ids).unwrap();
    let pids: Vec<u32> = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let (supervisor, agent) = (pids[0], pids[1]);
    let server_pid = server.child.0.as_ref().expect("server running").id();
    let [_, server_session, _, server_nice] = group_and_session(server_pid);
    let [sup_group, sup_session, sup_tty, _] = group_and_session(supervisor);
    assert_eq!(
        sup_group,
        i64::from(supervisor),
        "the supervisor leads its group"
    );
    assert_eq!(sup_session, server_session, "in the server's session");
    assert_eq!(sup_tty, 0, "without a controlling terminal");
    wait_until("the supervisor steps down", Duration::from_secs(30), || {
        group_and_session(supervisor)[3] == 19
    });
    let [agent_group, agent_session, _, agent_nice] = group_and_session(agent);
    assert_eq!(
        agent_group,
        i64::from(agent),
        "the agent leads its own group"
    );
    assert_eq!(agent_session, i64::from(agent), "and its own session");
    assert_eq!(agent_nice, server_nice, "at the server's priority");
    drop(release);
    wait_until("the task is done", Duration::from_secs(30), || {
        task.join("DONE").exists()
    });
}
