//! e2e: bus — `run-agent bus post|read|discover` driven as a user (and an agent) would, a bus
//! written by the Go reference, and the reliability guarantees: 10 concurrent writer processes,
//! a writer SIGKILLed mid-append, and a lock held past the timeout.
//!
//! Writer processes are this test binary re-executed on one test (`bus::writer_child`), which
//! does nothing unless `CONDUCTOR_TEST_BUS_WRITER` is set.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use conductor::bus::{read_all, AppendOptions, BusWriter, Message, NewMessage};
use conductor::storage::lock::LockFile;
use conductor::storage::ProjectId;

use crate::support::{run, text, words, ChildGuard, Sandbox};

const WRITER_ENV: &str = "CONDUCTOR_TEST_BUS_WRITER";

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn post(sb: &Sandbox, args: &[&str]) -> String {
    let root = sb.path().join("root");
    let out = run(sb
        .run_agent()
        .args(["bus", "post", "--root"])
        .arg(&root)
        .args(args));
    let id = ok(&out).trim().to_string();
    assert!(id.starts_with("MSG-"), "{}", text(&out));
    id
}

/// [`post`] of `--body <body>` with the flags of `flags` (a command line's words).
fn post_body(sb: &Sandbox, flags: &str, body: &str) -> String {
    let mut args = words(flags);
    args.extend(["--body", body]);
    post(sb, &args)
}

fn read_json(sb: &Sandbox, args: &[&str]) -> Vec<serde_json::Value> {
    let root = sb.path().join("root");
    let out = run(sb
        .run_agent()
        .args(["bus", "read", "--json", "--root"])
        .arg(&root)
        .args(args));
    ok(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn bodies(msgs: &[serde_json::Value]) -> Vec<&str> {
    msgs.iter().map(|m| m["body"].as_str().unwrap()).collect()
}

#[test]
fn post_then_read_round_trips_bodies_exactly() {
    let sb = Sandbox::new();
    let tricky = "line one\n---\n\\---\n\nlast line\n";
    let a = post_body(&sb, "--project demo --task task-1 --type FACT", tricky);
    let b = post_body(
        &sb,
        &format!("--project demo --task task-1 --type QUESTION --parent {a} --run run-7"),
        "why?",
    );
    post_body(&sb, "--project demo --type DECISION", "project level");

    let bus = sb.path().join("root/demo/task-1/TASK-MESSAGE-BUS.md");
    let raw = std::fs::read_to_string(&bus).unwrap();
    assert!(raw.starts_with("---\nmsg_id: MSG-"), "{raw}");
    assert!(
        raw.contains("\n\\---\n\\\\---\n"),
        "body lines escaped on disk: {raw}"
    );

    let msgs = read_json(
        &sb,
        &["--project", "demo", "--task", "task-1", "--tail", "0"],
    );
    assert_eq!(bodies(&msgs), [tricky, "why?"]);
    assert_eq!(msgs[0]["msg_id"], a.as_str());
    assert_eq!(msgs[0]["type"], "FACT");
    assert_eq!(msgs[0]["project_id"], "demo");
    assert_eq!(msgs[0]["task_id"], "task-1");
    assert_eq!(msgs[0]["run_id"], "");
    assert_eq!(msgs[1]["msg_id"], b.as_str());
    assert_eq!(msgs[1]["parents"][0]["msg_id"], a.as_str());
    assert_eq!(msgs[1]["run_id"], "run-7");

    let project = read_json(&sb, &["--project", "demo"]);
    assert_eq!(bodies(&project), ["project level"]);
    assert_eq!(project[0]["task_id"], "");

    // Text form: one `[ts] (TYPE) body` entry per message.
    let out = run(sb
        .run_agent()
        .args(words(
            "bus read --project demo --task task-1 --type QUESTION --root",
        ))
        .arg(sb.path().join("root")));
    let printed = ok(&out);
    assert!(
        printed.starts_with('[') && printed.contains("] (QUESTION) why?\n"),
        "{printed}"
    );
}

#[test]
fn agent_env_selects_ids_and_bus() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let env_post = |body: &str, extra: &[(&str, &str)]| {
        let mut cmd = sb.run_agent();
        cmd.args([
            "bus", "post", "--type", "PROGRESS", "--body", body, "--root",
        ])
        .arg(&root)
        .env("JRUN_PROJECT_ID", "proj")
        .env("JRUN_TASK_ID", "task-20260101-000000-abc")
        .env("JRUN_ID", "20260101-0000000000-1-1");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        ok(&run(&mut cmd)).trim().to_string()
    };
    env_post("from env", &[]);
    let task_bus = root.join("proj/task-20260101-000000-abc/TASK-MESSAGE-BUS.md");
    let msgs = read_all(&task_bus).unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].run_id, "20260101-0000000000-1-1");

    // JRUN_MESSAGE_BUS wins when no --project/--task is given.
    let own = sb.path().join("elsewhere/MY-BUS.md");
    std::fs::create_dir_all(own.parent().unwrap()).unwrap();
    env_post(
        "to explicit bus",
        &[("JRUN_MESSAGE_BUS", own.to_str().unwrap())],
    );
    let msgs = read_all(&own).unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        (msgs[0].project_id.as_str(), msgs[0].body.as_str()),
        ("proj", "to explicit bus")
    );
    assert_eq!(read_all(&task_bus).unwrap().len(), 1);

    // read honours it too, and explicit flags win over it.
    let out = run(sb
        .run_agent()
        .args(["bus", "read", "--json"])
        .env("JRUN_MESSAGE_BUS", &own));
    assert!(ok(&out).contains("to explicit bus"));
    let out = run(sb
        .run_agent()
        .args(words(
            "bus read --json --project proj --task task-20260101-000000-abc --root",
        ))
        .arg(&root)
        .env("JRUN_MESSAGE_BUS", &own));
    let printed = ok(&out);
    assert!(
        printed.contains("from env") && !printed.contains("explicit"),
        "{printed}"
    );

    // With no project anywhere the command says what to pass.
    let out = run(sb.run_agent().args(["bus", "post", "--body", "x"]));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--project"),
        "{}",
        text(&out)
    );
}

#[test]
fn body_from_file_and_stdin() {
    let sb = Sandbox::new();
    let file = sb.write("body.txt", "from a file\n---\n");
    post(
        &sb,
        &["--project", "p", "--body-file", file.to_str().unwrap()],
    );

    let mut child = sb
        .run_agent()
        .args(["bus", "post", "--project", "p", "--type", "FACT", "--root"])
        .arg(sb.path().join("root"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    ok(&out);
    let msgs = read_json(&sb, &["--project", "p"]);
    assert_eq!(bodies(&msgs), ["from a file\n---\n", "from stdin"]);
    assert_eq!(msgs[0]["type"], "INFO");
}

#[test]
fn read_since_tail_type_and_errors() {
    let sb = Sandbox::new();
    let ids: Vec<String> = (0..30)
        .map(|i| {
            let ty = if i % 2 == 0 { "FACT" } else { "INFO" };
            post(
                &sb,
                &["--project", "p", "--type", ty, "--body", &format!("m{i}")],
            )
        })
        .collect();
    assert_eq!(
        read_json(&sb, &["--project", "p"]).len(),
        20,
        "default tail is 20"
    );
    assert_eq!(read_json(&sb, &["--project", "p", "--tail", "0"]).len(), 30);
    assert_eq!(
        bodies(&read_json(&sb, &["--project", "p", "--tail", "2"])),
        ["m28", "m29"]
    );
    assert_eq!(
        bodies(&read_json(&sb, &["--project", "p", "--since", &ids[26]])),
        ["m27", "m28", "m29"]
    );
    assert_eq!(
        bodies(&read_json(
            &sb,
            &["--project", "p", "--type", "INFO", "--tail", "2"]
        )),
        ["m27", "m29"]
    );

    let out = run(sb
        .run_agent()
        .args(words(
            "bus read --project p --since MSG-does-not-exist --root",
        ))
        .arg(sb.path().join("root")));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MSG-does-not-exist") && err.contains("PROJECT-MESSAGE-BUS.md"),
        "{err}"
    );

    // Ids are validated before any path is built.
    let out = run(sb
        .run_agent()
        .args(words("bus post --project ../escape --body x --root"))
        .arg(sb.path().join("root")));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--project"),
        "{}",
        text(&out)
    );
    assert!(!sb.path().join("escape").exists());
}

#[test]
fn discover_lists_buses_with_counts() {
    let sb = Sandbox::new();
    post_body(&sb, "--project p", "1");
    post(&sb, &["--project", "p", "--task", "t", "--body", "1"]);
    post(&sb, &["--project", "p", "--task", "t", "--body", "2"]);
    let out = run(sb
        .run_agent()
        .args(["bus", "discover", "--root"])
        .arg(sb.path().join("root")));
    let printed = ok(&out);
    let rows: Vec<Vec<&str>> = printed
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{printed}");
    assert_eq!(rows[0][0], "1");
    assert!(
        rows[0][2].ends_with("p/PROJECT-MESSAGE-BUS.md"),
        "{printed}"
    );
    assert_eq!(rows[1][0], "2");
    assert!(rows[1][2].ends_with("p/t/TASK-MESSAGE-BUS.md"), "{printed}");
    let size = std::fs::metadata(sb.path().join("root/p/t/TASK-MESSAGE-BUS.md"))
        .unwrap()
        .len();
    assert_eq!(rows[1][1], size.to_string());
}

#[test]
fn go_written_bus_reads_and_appends() {
    let sb = Sandbox::new();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bus/go-task-bus.md");
    let bus = sb
        .path()
        .join("root/demo/task-20260223-191700-hello/TASK-MESSAGE-BUS.md");
    std::fs::create_dir_all(bus.parent().unwrap()).unwrap();
    std::fs::copy(&fixture, &bus).unwrap();
    let before = std::fs::read(&bus).unwrap();

    let args = ["--project", "demo", "--task", "task-20260223-191700-hello"];
    let msgs = read_json(&sb, &[&args[..], &["--tail", "0"]].concat());
    let ids: Vec<&str> = msgs.iter().map(|m| m["msg_id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "LEGACY-LINE-000000001",
            "LEGACY-LINE-000000002",
            "MSG-20260223-191710-184887000-PID67946-0001",
            "MSG-20260223-191712-000000000-PID67950-0001",
            "MSG-20260223-191713-500000000-PID67950-0002",
        ]
    );
    assert_eq!(msgs[0]["type"], "FACT");
    assert_eq!(msgs[1]["type"], "INFO");
    assert_eq!(msgs[1]["body"], "plain legacy text");
    assert!(msgs[2]["body"]
        .as_str()
        .unwrap()
        .starts_with("run started\nrun_dir: /home/u/"));
    assert!(msgs[2]["body"].as_str().unwrap().ends_with("/prompt.md"));
    assert_eq!(msgs[3]["body"], "a fact whose body ended with a newline");
    assert_eq!(
        msgs[3]["parents"][0]["msg_id"],
        "MSG-20260223-191710-184887000-PID67946-0001"
    );
    assert_eq!(msgs[4]["ts"], "2026-02-23T19:17:13.5Z");
    assert_eq!(
        msgs[4]["issue_id"],
        "MSG-20260223-191713-500000000-PID67950-0002"
    );
    assert_eq!(msgs[4]["parents"][0]["kind"], "child_of");
    assert_eq!(msgs[4]["parents"][0]["meta"]["reason"], "follow-up");
    assert_eq!(msgs[4]["links"][0]["label"], "PR: 1");
    assert_eq!(msgs[4]["meta"]["priority"], "1");
    assert_eq!(msgs[4]["body"], "flaky test in storage\nsecond line");

    let id = post(
        &sb,
        &[&args[..], &["--type", "FACT", "--body", "appended"]].concat(),
    );
    let after = std::fs::read(&bus).unwrap();
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "existing bytes untouched"
    );
    assert!(after[before.len()..].starts_with(b"\n---\nmsg_id: MSG-"));
    let msgs = read_json(&sb, &[&args[..], &["--tail", "2"]].concat());
    assert_eq!(msgs[0]["body"], "flaky test in storage\nsecond line");
    assert_eq!(
        (msgs[1]["msg_id"].as_str(), msgs[1]["body"].as_str()),
        (Some(id.as_str()), Some("appended"))
    );
}

#[test]
fn follow_prints_messages_as_they_arrive() {
    let sb = Sandbox::new();
    post_body(&sb, "--project p", "before");
    let child = sb
        .run_agent()
        .args(words(
            "bus read --project p --follow --json --tail 1 --root",
        ))
        .arg(sb.path().join("root"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = ChildGuard(Some(child));
    let stdout = guard.0.as_mut().unwrap().stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("a followed message");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        v["body"].as_str().unwrap().to_string()
    };
    assert_eq!(next(), "before");
    post_body(&sb, "--project p", "after 1");
    assert_eq!(next(), "after 1");
    // Rotation (as gc does it): the follower moves to the new file.
    let bus = sb.path().join("root/p/PROJECT-MESSAGE-BUS.md");
    std::fs::rename(&bus, bus.with_extension("md.20260101-000000.archived")).unwrap();
    post_body(&sb, "--project p", "after rotation");
    assert_eq!(next(), "after rotation");
}

// ---------------------------------------------------------------------------------------------
// Reliability: separate writer processes
// ---------------------------------------------------------------------------------------------

/// Child mode: `CONDUCTOR_TEST_BUS_WRITER=<path>,<writer id>,<count>[,<body bytes>]` appends
/// `count` messages with bodies `w<id> seq <i>` (padded to `body bytes`). Without the variable
/// (a normal test run) it does nothing.
#[test]
fn writer_child() {
    let Ok(spec) = std::env::var(WRITER_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split(',').collect();
    let path = PathBuf::from(parts[0]);
    let writer: usize = parts[1].parse().unwrap();
    let count: usize = parts[2].parse().unwrap();
    let pad: usize = parts.get(3).map_or(0, |p| p.parse().unwrap());
    let project = ProjectId::parse("p").unwrap();
    let mut bus = BusWriter::new(&path, AppendOptions::default());
    for seq in 0..count {
        let msg = NewMessage::new("FACT", project.clone()).body(child_body(writer, seq, pad));
        bus.append(&msg).unwrap();
    }
}

fn child_body(writer: usize, seq: usize, pad: usize) -> String {
    let mut body = format!("w{writer} seq {seq}");
    if pad > 0 {
        body.push('\n');
        body.push_str(&"x".repeat(pad));
        body.push_str(&format!("\nend w{writer} seq {seq}"));
    }
    body
}

fn spawn_writer(path: &Path, writer: usize, count: usize, pad: usize) -> ChildGuard {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(words(
            "--exact bus::writer_child --nocapture --test-threads=1",
        ))
        .env(
            WRITER_ENV,
            format!("{},{writer},{count},{pad}", path.display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    ChildGuard(Some(child))
}

fn wait_ok(mut guard: ChildGuard) {
    let child = guard.0.take().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "writer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `(writer, seq)` from a body written by [`child_body`].
fn parse_body(body: &str) -> (usize, usize) {
    let first = body.lines().next().unwrap_or_default();
    let (w, seq) = first
        .strip_prefix('w')
        .and_then(|r| r.split_once(" seq "))
        .unwrap_or_else(|| panic!("unexpected body {first:?}"));
    (w.parse().unwrap(), seq.parse().unwrap())
}

#[test]
fn ten_processes_append_ten_thousand_messages() {
    let sb = Sandbox::new();
    let bus = sb.path().join("TASK-MESSAGE-BUS.md");
    let writers: Vec<ChildGuard> = (0..10).map(|w| spawn_writer(&bus, w, 1000, 0)).collect();
    for w in writers {
        wait_ok(w);
    }
    let msgs = read_all(&bus).unwrap();
    assert_eq!(msgs.len(), 10_000);
    let ids: HashSet<&str> = msgs.iter().map(|m| m.msg_id.as_str()).collect();
    assert_eq!(ids.len(), 10_000, "msg ids are unique");
    let mut next: HashMap<usize, usize> = HashMap::new();
    for m in &msgs {
        assert_eq!(m.msg_type, "FACT");
        let (w, seq) = parse_body(&m.body);
        let expected = next.entry(w).or_insert(0);
        assert_eq!(seq, *expected, "writer {w} out of order");
        *expected += 1;
    }
    assert!(next.values().all(|&n| n == 1000), "{next:?}");
    // Every record is framed exactly: separator, delimiter, header, delimiter, body, newline.
    let raw = std::fs::read_to_string(&bus).unwrap();
    assert_eq!(raw.matches("\n---\nmsg_id: ").count(), 9_999);
}

#[test]
fn writer_killed_mid_append_leaves_a_parseable_bus() {
    let sb = Sandbox::new();
    let bus = sb.path().join("TASK-MESSAGE-BUS.md");
    // Large bodies make a kill inside a write likely (writes are interrupted between pages).
    let pad = 512 * 1024;
    let mut child = spawn_writer(&bus, 0, 1_000_000, pad);
    let start = Instant::now();
    while std::fs::metadata(&bus).map_or(0, |m| m.len()) < 8 * pad as u64 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "writer made no progress"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut proc = child.0.take().unwrap();
    proc.kill().unwrap(); // SIGKILL
    proc.wait().unwrap();

    let msgs = read_all(&bus).unwrap();
    assert!(msgs.len() >= 7, "{} messages", msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        // In order, none lost: record i is writer 0's i-th message.
        let full = child_body(0, i, pad);
        if i + 1 < msgs.len() {
            assert_eq!(m.body, full, "complete record {i} intact");
        } else {
            assert!(
                full.starts_with(&m.body),
                "last record is complete or a prefix"
            );
        }
    }
    // The bus stays usable: a new append after the torn tail reads back.
    let out = run(sb
        .run_agent()
        .args(["bus", "post", "--type", "INFO", "--body", "after the crash"])
        .env("JRUN_MESSAGE_BUS", &bus)
        .env("JRUN_PROJECT_ID", "p"));
    let id = ok(&out).trim().to_string();
    let after = read_all(&bus).unwrap();
    let last: &Message = after.last().unwrap();
    assert_eq!(
        (last.msg_id.as_str(), last.body.as_str()),
        (id.as_str(), "after the crash")
    );
    let complete = msgs.len() - 1;
    assert_eq!(
        after[..complete],
        msgs[..complete],
        "earlier records unchanged"
    );
}

#[test]
fn lock_held_past_the_timeout_fails_clearly_without_writing() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    post_body(&sb, "--project p", "first");
    let bus = root.join("p/PROJECT-MESSAGE-BUS.md");
    let before = std::fs::read(&bus).unwrap();
    let holder = LockFile::acquire(&bus, Duration::from_secs(5)).unwrap();
    let out = run(sb
        .run_agent()
        .args(words("bus post --project p --body blocked --root"))
        .arg(&root)
        .env("CONDUCTOR_BUS_LOCK_TIMEOUT_MS", "50"));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(out.stdout.is_empty(), "no msg_id printed: {}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PROJECT-MESSAGE-BUS.md")
            && err.contains("3 attempts")
            && err.contains("lock"),
        "{err}"
    );
    assert_eq!(std::fs::read(&bus).unwrap(), before, "nothing written");
    drop(holder);
    post_body(&sb, "--project p", "after release");
    assert_eq!(read_all(&bus).unwrap().len(), 2);
}

/// Runs `shell_command` under a pseudo-terminal (`script` from util-linux) and returns what
/// the terminal received.
fn on_a_terminal(sb: &Sandbox, shell_command: &str) -> Vec<u8> {
    let out = run(sb
        .command(Path::new("script"))
        .args(["-qec", shell_command, "/dev/null"]));
    assert!(out.status.success(), "{}", text(&out));
    out.stdout
}

#[test]
fn read_escapes_control_characters_on_a_terminal_and_pipes_them_raw() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let body = "title \x1b]0;pwned\x07 clear \u{9b}2J cr\rend\ttab";
    post_body(&sb, "--project p", body);

    // Through a pipe: the bytes as they are, in text and in JSON.
    let piped = ok(&run(sb
        .run_agent()
        .args(["bus", "read", "--project", "p", "--root"])
        .arg(&root)));
    assert!(piped.contains(body), "{piped:?}");
    assert_eq!(bodies(&read_json(&sb, &["--project", "p"])), [body]);

    // On a terminal: escaped, nothing a terminal would act on.
    let bin = crate::support::run_agent_bin();
    let read = format!(
        "{} bus read --project p --root {}",
        bin.display(),
        root.display()
    );
    let shown = String::from_utf8(on_a_terminal(&sb, &read)).unwrap();
    assert!(
        shown.contains("title \\x1b]0;pwned\\x07 clear \\u{9b}2J cr\\x0dend\ttab"),
        "{shown:?}"
    );
    assert!(
        !shown
            .chars()
            .any(|c| c.is_control() && !"\r\n\t".contains(c)),
        "{shown:?}"
    );
    // JSON on a terminal: the same value, every control written as a JSON escape.
    let shown = String::from_utf8(on_a_terminal(&sb, &format!("{read} --json"))).unwrap();
    assert!(
        !shown
            .chars()
            .any(|c| c.is_control() && !"\r\n\t".contains(c)),
        "{shown:?}"
    );
    let value: serde_json::Value = serde_json::from_str(shown.trim()).unwrap();
    assert_eq!(value["body"], body);
}
