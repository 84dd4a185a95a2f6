//! The API-client commands (`run-agent server …`, `conductor …`) against a real server with a
//! fake `command` agent: every command with auth off and on, a task submitted and waited end
//! to end, `runs logs --follow` (also across a dropped connection), bus post/read/follow,
//! JSON output, and the error exits (unreachable server, 404, 401).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};

use crate::support::{
    fails_with, free_port, ok_stdout, run, text, words, ChildGuard, Sandbox, Server,
};

use crate::support::FAKE_AGENT;

fn config(api: &str) -> String {
    format!(
        "agents:\n  script:\n    type: command\n    command: [\"{FAKE_AGENT}\"]\ndefaults:\n  agent: script\n  max_restarts: 0\n{api}"
    )
}

fn start(sb: &Sandbox, config_text: &str, env: &[(&str, &str)]) -> Server {
    let config = sb.write("server/config.yaml", config_text);
    crate::support::serve_config_file(sb, &config, env)
}

/// `run-agent server <args>` against `server` (no key unless given).
fn ra(sb: &Sandbox, server: &str, args: &[&str]) -> Output {
    let mut cmd = sb.run_agent();
    cmd.arg("server").args(args).args(["--server", server]);
    run(&mut cmd)
}

fn ok(out: Output) -> String {
    ok_stdout(&out)
}

/// `run-agent server bus post <scope> --type <kind> --body <body>` against `server`, which
/// must succeed; its stdout (the message id).
fn bus_post(sb: &Sandbox, server: &str, scope: &str, kind: &str, body: &str) -> String {
    let mut args = words("bus post");
    args.extend(words(scope));
    args.extend(["--type", kind, "--body", body]);
    ok(ra(sb, server, &args))
}

fn json(out: Output) -> serde_json::Value {
    let stdout = ok(out);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn every_client_command_without_auth() {
    let sb = Sandbox::new();
    let server = start(
        &sb,
        &config(""),
        &[
            ("FAKE_DONE_AFTER", "1"),
            ("FAKE_WRITE_OUTPUT", "the answer"),
            ("FAKE_STDOUT", "hello from agent\nsecond line"),
        ],
    );
    let url = server.base.as_str();

    let status = ok(ra(&sb, url, &["status"]));
    assert!(
        status.contains("version:") && status.contains("auth:         false"),
        "{status}"
    );
    let mut cmd = sb.conductor();
    cmd.args(["status", "--json", "--server", url]);
    assert!(json(run(&mut cmd))["root"]
        .as_str()
        .unwrap()
        .ends_with("root"));

    // Submit and wait: outcome and output, exit 0 because the task is done.
    let out = ok(ra(
        &sb,
        url,
        &words("task submit --project demo --task t1 --prompt answer --wait 60"),
    ));
    assert!(out.contains("task demo/t1 ended: done"), "{out}");
    assert!(out.contains("the answer"), "{out}");

    // A task that ends without DONE: the outcome is printed and the exit is non-zero.
    let prompt_file = sb.write("prompt.md", "try once");
    let out = ra(
        &sb,
        url,
        &[
            "task",
            "submit",
            "--project",
            "demo",
            "--task",
            "t2",
            "--prompt-file",
            prompt_file.to_str().unwrap(),
            "--env",
            "FAKE_DONE_AFTER=99",
            "--wait",
            "60",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("task demo/t2 ended:") && !stdout.contains("ended: done"),
        "{stdout}"
    );

    // Tasks: table, JSON of one project, JSON of all projects, show.
    let list = ok(ra(&sb, url, &["task", "list"]));
    assert!(
        list.contains("PROJECT") && list.contains("t1") && list.contains("done"),
        "{list}"
    );
    let mut cmd = sb.conductor();
    cmd.args([
        "task",
        "list",
        "--project",
        "demo",
        "--json",
        "--server",
        url,
    ]);
    let tasks = json(run(&mut cmd));
    assert_eq!(tasks["tasks"].as_array().unwrap().len(), 2, "{tasks}");
    let all = json(ra(&sb, url, &["task", "list", "--json"]));
    assert_eq!(all["tasks"][0]["project_id"], "demo");
    let show = ok(ra(&sb, url, &words("task show --project demo --task t1")));
    assert!(
        show.contains("status:  done") && show.contains("TASK.md"),
        "{show}"
    );

    // Runs: list, show, logs.
    let runs = json(ra(
        &sb,
        url,
        &words("runs list --project demo --task t1 --json"),
    ));
    let run_id = runs["runs"][0]["run_id"].as_str().unwrap().to_string();
    let table = ok(ra(&sb, url, &words("runs list --status completed")));
    assert!(table.contains(&run_id), "{table}");
    // Agent (name or type) and start-time filters; a `+` offset travels encoded.
    let since = ["--since", "2000-01-01T01:00:00+01:00"];
    for agent in ["script", "command"] {
        let found = ok(ra(
            &sb,
            url,
            &[&["runs", "list", "--agent", agent][..], &since].concat(),
        ));
        assert!(found.contains(&run_id), "{agent}: {found}");
    }
    let none = ok(ra(&sb, url, &words("runs list --agent claude")));
    assert!(!none.contains(&run_id), "{none}");
    let later = ok(ra(
        &sb,
        url,
        &words("runs list --since 2999-01-01T00:00:00Z"),
    ));
    assert!(!later.contains(&run_id), "{later}");
    let bad = ra(&sb, url, &words("runs list --until tomorrow"));
    assert!(!bad.status.success());
    assert!(
        text(&bad).contains("invalid until \"tomorrow\""),
        "{}",
        text(&bad)
    );
    let shown = ok(ra(&sb, url, &["runs", "show", &run_id]));
    assert!(
        shown.contains("completed") && shown.contains("agent:     command"),
        "{shown}"
    );
    assert_eq!(
        json(ra(&sb, url, &["runs", "show", &run_id, "--json"]))["run_id"],
        run_id.as_str()
    );
    let logs = ok(ra(&sb, url, &["runs", "logs", &run_id]));
    assert_eq!(logs, "hello from agent\nsecond line\n");
    let followed = ok(ra(&sb, url, &["runs", "logs", &run_id, "--follow"]));
    assert_eq!(followed, "hello from agent\nsecond line\n");

    // Bus: post, read (human and JSON), and follow.
    let msg_id = bus_post(&sb, url, "--project demo --task t1", "FACT", "tests pass");
    assert!(!msg_id.trim().is_empty());
    let read = ok(ra(&sb, url, &words("bus read --project demo --task t1")));
    assert!(
        read.contains("FACT") && read.contains("tests pass"),
        "{read}"
    );
    let messages = json(ra(
        &sb,
        url,
        &words("bus read --project demo --task t1 --json"),
    ));
    assert!(messages["messages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["msg_id"] == msg_id.trim() && m["body"] == "tests pass"));
    bus_post(&sb, url, "--project demo", "NOTE", "project wide");
    let follower = follow_bus(&sb, url, "later message");
    bus_post(&sb, url, "--project demo", "NOTE", "later message");
    let seen = follower.join().unwrap();
    assert!(seen.iter().any(|l| l.contains("project wide")), "{seen:?}");

    // Submit without waiting; resume the task whose loop gave up.
    let started = ok(ra(
        &sb,
        url,
        &words("task submit --project demo --task t3 --prompt x"),
    ));
    assert!(started.contains("task demo/t3 started"), "{started}");
    let resumed = ok(ra(&sb, url, &words("task resume --project demo --task t2")));
    assert!(resumed.contains("task demo/t2 resumed"), "{resumed}");
    let out = ra(&sb, url, &["runs", "show", "20200101-0000000000-1-1"]);
    fails_with(&out, "server returned 404: ");

    // Stop, resume (409: done without --reset-done), delete, then 404.
    let stopped = ok(ra(&sb, url, &words("task stop --project demo --task t1")));
    assert!(stopped.contains("no running run"), "{stopped}");
    let out = ra(&sb, url, &words("task resume --project demo --task t1"));
    fails_with(&out, "server returned 409: task demo/t1 is done");
    ok(ra(&sb, url, &words("task delete --project demo --task t1")));
    let out = ra(&sb, url, &words("task show --project demo --task t1"));
    fails_with(&out, "server returned 404: ");
    // Ids are escaped into one path segment: a traversal is refused, not routed elsewhere.
    let out = ra(
        &sb,
        url,
        &words("task show --project demo --task ../../etc"),
    );
    fails_with(&out, "server returned 4");
    server.terminate();
}

/// `bus read --project demo --type NOTE --follow` in the background; returns its lines once one contains
/// `until` (the child is killed then).
fn follow_bus(sb: &Sandbox, url: &str, until: &str) -> std::thread::JoinHandle<Vec<String>> {
    let mut cmd = sb.run_agent();
    cmd.args([
        "server",
        "bus",
        "read",
        "--project",
        "demo",
        "--follow",
        "--type",
        "NOTE",
        "--server",
        url,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = ChildGuard(Some(child));
    let until = until.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _guard = guard;
        let mut lines = Vec::new();
        let mut first = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(tx) = first.take() {
                let _ = tx.send(());
            }
            let done = line.contains(&until);
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    });
    // The follower printed the existing messages, so it is connected before we post.
    rx.recv().unwrap();
    handle
}

#[test]
fn auth_with_flag_env_and_config() {
    let sb = Sandbox::new();
    let port = free_port();
    let server = start(
        &sb,
        &config(&format!(
            "api:\n  host: 0.0.0.0\n  port: {port}\n  auth_enabled: true\n  api_key: s3cret\n"
        )),
        &[("FAKE_DONE_AFTER", "1"), ("FAKE_STDOUT", "authed")],
    );
    let url = server.base.as_str();
    // Without a key (no config in the cwd): 401 with the server's message.
    let out = ra(&sb, url, &["status"]);
    fails_with(&out, "server returned 401: this route needs the API key");
    let out = ra(&sb, url, &words("task list --api-key wrong"));
    fails_with(&out, "server returned 401");
    // --api-key.
    let out = ok(ra(
        &sb,
        url,
        &words("task submit --project p --task t --prompt x --wait 60 --api-key s3cret"),
    ));
    assert!(out.contains("ended: done"), "{out}");
    // CONDUCTOR_API_KEY.
    let with_env = |args: &[&str]| {
        let mut cmd = sb.run_agent();
        cmd.arg("server")
            .args(args)
            .args(["--server", url])
            .env("CONDUCTOR_API_KEY", "s3cret");
        run(&mut cmd)
    };
    let list = ok(with_env(&words("task list --project p")));
    assert!(list.contains("done"), "{list}");
    let runs = json(with_env(&["runs", "list", "--json"]));
    let run_id = runs["runs"][0]["run_id"].as_str().unwrap().to_string();
    assert_eq!(ok(with_env(&["runs", "logs", &run_id])), "authed\n");
    assert_eq!(
        ok(with_env(&["runs", "logs", &run_id, "--follow"])),
        "authed\n"
    );
    ok(with_env(&["runs", "show", &run_id]));
    ok(with_env(&words("task show --project p --task t")));
    ok(with_env(&words(
        "bus post --project p --type FACT --body keyed",
    )));
    assert!(ok(with_env(&words("bus read --project p"))).contains("keyed"));
    ok(with_env(&words("task stop --project p --task t")));
    ok(with_env(&words("task delete --project p --task t")));
    let mut cmd = sb.conductor();
    cmd.args(["status", "--server", url])
        .env("CONDUCTOR_API_KEY", "wrong");
    fails_with(&run(&mut cmd), "server returned 401");

    // The config in the working directory gives both the address (0.0.0.0 → 127.0.0.1 and
    // its port) and the key, when the server really listens on that port.
    if server.port() == port {
        let mut cmd = sb.run_agent();
        cmd.args(["server", "status", "--json"])
            .current_dir(sb.path().join("server"));
        assert_eq!(json(run(&mut cmd))["auth_enabled"], true);
    }
    server.terminate();
}

#[test]
fn unreachable_server_and_bad_arguments_exit_1() {
    let sb = Sandbox::new();
    let url = format!("http://127.0.0.1:{}", free_port());
    for args in [
        &["status"][..],
        &["task", "list"][..],
        &words("runs logs x --follow")[..],
        &words("bus read --project p --follow")[..],
    ] {
        let out = ra(&sb, &url, args);
        fails_with(&out, &format!("cannot reach the server at {url}"));
    }
    // CONDUCTOR_URL is used when --server is absent.
    let mut cmd = sb.conductor();
    cmd.args(["task", "list"]).env("CONDUCTOR_URL", &url);
    fails_with(&run(&mut cmd), &format!("cannot reach the server at {url}"));
}

/// A proxy that cuts the first connection right after the first `event` event and passes
/// the later ones through; it records each request's head.
struct DroppingProxy {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

fn dropping_proxy(upstream: &str, event: &'static str) -> DroppingProxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_string();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    std::thread::spawn(move || {
        for (n, client) in listener.incoming().enumerate() {
            let Ok(mut client) = client else { return };
            let Ok(mut server) = TcpStream::connect(&upstream) else {
                return;
            };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && client.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&head).into_owned());
            let _ = server.write_all(&head);
            // When the client goes away, so does the upstream connection (the server's
            // graceful shutdown waits for open streams).
            if let (Ok(mut from), Ok(mut to)) = (client.try_clone(), server.try_clone()) {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
            std::thread::spawn(move || {
                let mut received = Vec::new();
                let mut forwarded = 0;
                let mut buf = [0u8; 4096];
                while let Ok(read) = server.read(&mut buf) {
                    if read == 0 {
                        break;
                    }
                    received.extend_from_slice(&buf[..read]);
                    let cut = if n == 0 {
                        cut_after_first(&received, event)
                    } else {
                        None
                    };
                    let upto = cut.unwrap_or(received.len());
                    if client.write_all(&received[forwarded..upto]).is_err() {
                        break;
                    }
                    forwarded = upto;
                    if cut.is_some() {
                        break;
                    }
                }
                let _ = client.shutdown(std::net::Shutdown::Both);
                let _ = server.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    DroppingProxy { url, requests }
}

/// The end of the first complete `event` (and its chunk's CRLF), if received yet.
fn cut_after_first(received: &[u8], event: &str) -> Option<usize> {
    let text = String::from_utf8_lossy(received);
    let start = text.find(&format!("event: {event}\n"))?;
    let end = start + text[start..].find("\n\n")? + 2;
    Some(if text[end..].starts_with("\r\n") {
        end + 2
    } else {
        end
    })
}

#[test]
fn runs_logs_follow_resumes_after_a_dropped_connection() {
    let sb = Sandbox::new();
    let server = start(
        &sb,
        &config(""),
        &[
            ("FAKE_DONE_AFTER", "1"),
            ("FAKE_STDOUT", "one\ntwo\nthree"),
            ("FAKE_STDERR", "warn"),
        ],
    );
    let url = server.base.as_str();
    let out = ok(ra(
        &sb,
        url,
        &words("task submit --project demo --task t --prompt x --wait 60"),
    ));
    assert!(out.contains("ended: done"), "{out}");
    let runs = json(ra(&sb, url, &["runs", "list", "--json"]));
    let run_id = runs["runs"][0]["run_id"].as_str().unwrap().to_string();
    let proxy = dropping_proxy(url, "stdout");
    let followed = ok(ra(&sb, &proxy.url, &["runs", "logs", &run_id, "--follow"]));
    assert_eq!(followed, "one\ntwo\nthree\n", "no line lost or repeated");
    let requests = proxy.requests.lock().unwrap().clone();
    assert!(requests.len() >= 2, "{requests:?}");
    assert!(
        requests[1].to_ascii_lowercase().contains("last-event-id: "),
        "{}",
        requests[1]
    );
    let stderr = ok(ra(&sb, url, &["runs", "logs", &run_id, "--stderr"]));
    assert_eq!(stderr, "warn\n");
    let stderr = ok(ra(
        &sb,
        url,
        &["runs", "logs", &run_id, "--stderr", "--follow"],
    ));
    assert_eq!(stderr, "warn\n");

    // A live run: lines arrive while it runs, and the command ends with the run.
    let started = json(ra(
        &sb,
        url,
        &words("task submit --project demo --task live --prompt x --env FAKE_SLEEP=1 --json"),
    ));
    let live = started["run_id"]
        .as_str()
        .expect("first run id")
        .to_string();
    let followed = ok(ra(&sb, url, &["runs", "logs", &live, "--follow"]));
    assert_eq!(followed, "one\ntwo\nthree\n");

    // The bus follower resumes after the last msg_id: every message once, in order.
    for body in ["m1", "m2"] {
        bus_post(&sb, url, "--project demo", "NOTE", body);
    }
    let proxy = dropping_proxy(url, "message");
    let follower = follow_bus(&sb, &proxy.url, "m3");
    bus_post(&sb, url, "--project demo", "NOTE", "m3");
    let lines = follower.join().unwrap();
    let bodies: Vec<&str> = lines.iter().filter_map(|l| l.rsplit("  ").next()).collect();
    assert_eq!(bodies, ["m1", "m2", "m3"], "{lines:?}");
    let requests = proxy.requests.lock().unwrap().clone();
    assert!(
        requests.len() >= 2
            && requests[1]
                .to_ascii_lowercase()
                .contains("last-event-id: msg-"),
        "{requests:?}"
    );
    server.terminate();
}

#[test]
fn config_flag_locates_the_server_and_its_key() {
    let sb = Sandbox::new();
    let server = start(
        &sb,
        &config(&format!(
            "api:\n  port: {}\n  auth_enabled: true\n  api_key: s3cret\n",
            free_port()
        )),
        &[],
    );
    // Only this file (not in the cwd, not discoverable) knows the port and the key.
    let client_config = sb.write(
        "elsewhere/client.yaml",
        &format!(
            "api:\n  host: 0.0.0.0\n  port: {}\n  api_key: s3cret\n",
            server.port()
        ),
    );
    let file = client_config.to_str().unwrap();
    let status = |cmd: &mut std::process::Command| json(run(cmd.arg("--json")));
    // conductor --config F <client cmd>, and the subcommand's own --config.
    let top = status(sb.conductor().args(["--config", file, "status"]));
    assert_eq!(top["auth_enabled"], true, "{top}");
    status(sb.conductor().args(["status", "--config", file]));
    // run-agent server <cmd> --config F, for every kind of client command.
    status(sb.run_agent().args(["server", "status", "--config", file]));
    ok(run(sb
        .run_agent()
        .args(["server", "task", "list", "--config", file])));
    ok(run(sb
        .run_agent()
        .args(["server", "update", "status", "--config", file])));
    // The subcommand's --config wins over the top-level one.
    status(
        sb.conductor()
            .args(["--config", "missing-top.yaml", "status", "--config", file]),
    );
    // Flag and env still beat the file.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let out = run(sb
        .run_agent()
        .args(["server", "status", "--config", file])
        .env("CONDUCTOR_URL", &dead));
    fails_with(&out, &format!("cannot reach the server at {dead}"));
    let out = run(sb
        .conductor()
        .args(["--config", file, "status", "--api-key", "wrong"]));
    fails_with(&out, "server returned 401");
    // An explicit config that is missing or broken is an error naming it.
    let out = run(sb.conductor().args(["--config", "nope.yaml", "status"]));
    fails_with(&out, "nope.yaml");
    let out = run(sb
        .run_agent()
        .args(["server", "task", "list", "--config", "nope.yaml"]));
    fails_with(&out, "nope.yaml");
    // `update status --offline` reads the same --config (for the runs root).
    let offline = |config: &str| {
        run(sb.run_agent().args([
            "server",
            "update",
            "status",
            "--offline",
            "--json",
            "--config",
            config,
        ]))
    };
    assert_eq!(json(offline(file))["state"], "idle");
    fails_with(&offline("nope.yaml"), "nope.yaml");
    let broken = sb.write("broken.yaml", "api: [\n");
    let out = run(sb
        .run_agent()
        .args(["server", "status", "--config", broken.to_str().unwrap()]));
    fails_with(&out, "broken.yaml");
    server.terminate();
}
