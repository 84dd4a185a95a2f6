//! The systemd user units in `scripts/systemd/`: parsed and cross-checked always, verified with
//! `systemd-analyze verify --user` when it is installed, and their commands run for real
//! (the server under `systemd-socket-activate` when available, gc with `--dry-run`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{free_port, http_get, run, run_agent_bin, text, ChildGuard, Sandbox};

const UNITS: [&str; 4] = [
    "conductor.service",
    "conductor.socket",
    "run-agent-gc.service",
    "run-agent-gc.timer",
];

fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/systemd")
}

/// section -> key -> values (a key may repeat), from a unit file's text.
type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn parse_unit(name: &str) -> Unit {
    let path = units_dir().join(name);
    let body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut unit = Unit::new();
    let mut section: Option<String> = None;
    for (n, line) in body.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.to_string());
            unit.entry(name.to_string()).or_default();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{name}:{}: not key=value: {line}", n + 1));
        let section = section
            .as_ref()
            .unwrap_or_else(|| panic!("{name}:{}: key outside a section", n + 1));
        assert!(
            !key.trim().contains(' ') && !line.ends_with('\\'),
            "{name}:{}: unexpected syntax: {line}",
            n + 1
        );
        unit.get_mut(section)
            .unwrap()
            .entry(key.trim().to_string())
            .or_default()
            .push(value.trim().to_string());
    }
    unit
}

fn one<'a>(unit: &'a Unit, section: &str, key: &str) -> &'a str {
    let values = unit
        .get(section)
        .and_then(|s| s.get(key))
        .unwrap_or_else(|| panic!("[{section}] {key} missing"));
    assert_eq!(
        values.len(),
        1,
        "[{section}] {key} given {} times",
        values.len()
    );
    &values[0]
}

/// The value after `flag` in a command line's words.
fn flag<'a>(words: &'a [&'a str], flag: &str) -> &'a str {
    let i = words
        .iter()
        .position(|w| *w == flag)
        .unwrap_or_else(|| panic!("{flag} missing in {words:?}"));
    words[i + 1]
}

#[test]
fn units_parse_and_agree_with_each_other() {
    let service = parse_unit("conductor.service");
    assert_eq!(one(&service, "Service", "KillMode"), "process");
    assert_eq!(one(&service, "Install", "WantedBy"), "default.target");
    let exec = one(&service, "Service", "ExecStart");
    let words: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(
        words[0], "%h/.local/bin/run-agent",
        "matches install.sh's default prefix"
    );
    assert_eq!(words[1], "serve");

    let socket = parse_unit("conductor.socket");
    assert_eq!(one(&socket, "Socket", "Accept"), "no");
    let listen = one(&socket, "Socket", "ListenStream");
    assert_eq!(
        listen,
        format!("{}:{}", flag(&words, "--host"), flag(&words, "--port")),
        "the socket and the service's --host/--port must agree"
    );
    assert_eq!(one(&socket, "Install", "WantedBy"), "sockets.target");

    let gc = parse_unit("run-agent-gc.service");
    assert_eq!(one(&gc, "Service", "Type"), "oneshot");
    let gc_exec = one(&gc, "Service", "ExecStart");
    let gc_words: Vec<&str> = gc_exec.split_whitespace().collect();
    assert_eq!(&gc_words[..2], ["%h/.local/bin/run-agent", "gc"]);
    assert_eq!(
        flag(&gc_words, "--root"),
        "%h/run-agent",
        "the server's default root"
    );
    assert!(!gc.contains_key("Install"), "started by the timer only");

    let timer = parse_unit("run-agent-gc.timer");
    assert_eq!(one(&timer, "Timer", "Unit"), "run-agent-gc.service");
    assert!(!one(&timer, "Timer", "OnCalendar").is_empty());
    assert_eq!(one(&timer, "Install", "WantedBy"), "timers.target");
}

/// A sandbox HOME whose `~/.local/bin` holds the built binaries, so `%h/.local/bin/run-agent`
/// in the units names them.
fn home_with_binaries() -> Sandbox {
    let sb = Sandbox::new();
    let bin = sb.path().join(".local/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(run_agent_bin(), bin.join("run-agent")).unwrap();
    std::os::unix::fs::symlink(crate::support::conductor_bin(), bin.join("conductor")).unwrap();
    sb
}

#[test]
fn systemd_analyze_verify_accepts_the_units() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: systemd-analyze is not installed (the units are still parsed above)");
        return;
    }
    let sb = home_with_binaries();
    let runtime = sb.path().join("xdg-runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    let mut cmd = sb.command(Path::new("systemd-analyze"));
    cmd.env("XDG_RUNTIME_DIR", &runtime)
        .args(["verify", "--user", "--man=no"])
        .args(UNITS.iter().map(|u| units_dir().join(u)));
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", text(&out));
    // It really checks: a broken timer is refused.
    let broken = sb.write(
        "run-agent-gc.timer",
        &std::fs::read_to_string(units_dir().join("run-agent-gc.timer"))
            .unwrap()
            .replace("OnCalendar=*-*-* 03:17:00", "OnCalendar=not-a-time"),
    );
    std::fs::copy(
        units_dir().join("run-agent-gc.service"),
        sb.path().join("run-agent-gc.service"),
    )
    .unwrap();
    let mut cmd = sb.command(Path::new("systemd-analyze"));
    cmd.env("XDG_RUNTIME_DIR", &runtime)
        .args(["verify", "--user", "--man=no"])
        .arg(&broken);
    let out = run(&mut cmd);
    assert!(!out.status.success(), "{}", text(&out));
}

/// The unit's ExecStart words with `%h` expanded to `home`.
fn exec_start(unit: &str, home: &Path) -> Vec<String> {
    let parsed = parse_unit(unit);
    one(&parsed, "Service", "ExecStart")
        .split_whitespace()
        .map(|w| w.replace("%h", &home.display().to_string()))
        .collect()
}

#[test]
fn gc_unit_command_runs() {
    let sb = home_with_binaries();
    std::fs::create_dir_all(sb.path().join("run-agent/demo")).unwrap();
    let words = exec_start("run-agent-gc.service", sb.path());
    let mut cmd = sb.command(Path::new(&words[0]));
    cmd.args(&words[1..]).arg("--dry-run");
    let out = run(&mut cmd);
    assert!(out.status.success(), "{words:?}: {}", text(&out));
}

#[test]
fn service_command_adopts_the_socket_of_socket_activation() {
    if Command::new("systemd-socket-activate")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: systemd-socket-activate is not installed");
        return;
    }
    let sb = home_with_binaries();
    let port = free_port();
    // The service's own command line, with the port of the socket unit swapped for a free one.
    let words: Vec<String> = exec_start("conductor.service", sb.path())
        .into_iter()
        .map(|w| if w == "14355" { port.to_string() } else { w })
        .collect();
    let log = std::fs::File::create(sb.path().join("server.log")).unwrap();
    let mut cmd = sb.command(Path::new("systemd-socket-activate"));
    cmd.arg("-l")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-E")
        .arg(format!("HOME={}", sb.path().display()))
        .args(&words)
        .stdout(Stdio::null())
        .stderr(log);
    let _guard = ChildGuard(Some(cmd.spawn().expect("spawn systemd-socket-activate")));
    // systemd-socket-activate binds at once and starts the server on the first connection.
    // The server was told the same explicit port: had it tried to bind, it would have failed
    // with "address in use"; answering proves it adopted fd 3.
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        match http_get(&format!("http://127.0.0.1:{port}/healthz")) {
            Ok((200, body)) => break body,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            other => panic!(
                "no answer through the activated socket: {other:?}\n{}",
                std::fs::read_to_string(sb.path().join("server.log")).unwrap_or_default()
            ),
        }
    };
    assert!(body.contains("ok"), "{body}");
    let log = std::fs::read_to_string(sb.path().join("server.log")).unwrap_or_default();
    assert!(!log.contains("cannot listen"), "{log}");
}
