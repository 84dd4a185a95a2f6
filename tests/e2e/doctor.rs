//! `run-agent doctor`: the pass/warn/fail list, `--json`, and exit 1 on any failure.

use std::net::TcpListener;

use serde_json::Value;

use crate::support::{free_port, run, text, Sandbox, Server};

/// Runs doctor `--json` with `args` (plus the extra env) and returns (exit code, document).
fn doctor(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let mut cmd = sb.run_agent_with_fake_clis();
    cmd.arg("doctor").arg("--json").args(args);
    for key in [
        "IS_SANDBOX",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "OPENAI_API_KEY",
    ] {
        cmd.env_remove(key);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(&mut cmd);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)));
    (out.status.code().unwrap_or(-1), doc)
}

/// The check called `name`, as (level, message, hint).
fn check<'a>(doc: &'a Value, name: &str) -> (&'a str, &'a str, &'a str) {
    let c = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {doc:#}"));
    (
        c["level"].as_str().unwrap(),
        c["message"].as_str().unwrap(),
        c["hint"].as_str().unwrap_or(""),
    )
}

fn config_with_port(sb: &Sandbox, port: u16, agents: &str) -> String {
    sb.write(
        "config.yaml",
        &format!("api:\n  host: 127.0.0.1\n  port: {port}\nagents:\n{agents}"),
    )
    .display()
    .to_string()
}

#[test]
fn a_working_setup_passes_and_says_where_values_come_from() {
    let sb = Sandbox::new();
    let root = sb.path().join("runs");
    std::fs::create_dir_all(&root).unwrap();
    let config = config_with_port(
        &sb,
        free_port(),
        "  echo: {type: command, command: [\"sh\", \"-c\", \"echo hi\"]}\n",
    );
    let (code, doc) = doctor(
        &sb,
        &["--config", &config, "--root", root.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["summary"]["fail"], 0);
    assert!(check(&doc, "config").1.contains("config.yaml"));
    assert_eq!(
        check(&doc, "config.root").1,
        format!("{} (flag)", root.display())
    );
    assert!(check(&doc, "config.api.port").1.ends_with("(file)"));
    assert_eq!(check(&doc, "root.writable").0, "pass");
    assert_ne!(check(&doc, "root.free_space").0, "fail");
    assert!(check(&doc, "root.inotify").1.contains("max_user_watches"));
    let (level, message, _) = check(&doc, "agents.echo");
    assert_eq!(level, "pass");
    assert!(message.contains("/sh"), "{message}");
    assert_eq!(check(&doc, "port").0, "pass");
    assert_eq!(check(&doc, "server.reachable").0, "warn");

    // The text form lists the same with a summary line.
    let out = run(sb
        .run_agent()
        .args(["doctor", "--config", &config, "--root"])
        .arg(&root));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout.contains("PASS  root.writable"), "{stdout}");
    assert!(
        stdout.lines().last().unwrap().ends_with("0 failed"),
        "{stdout}"
    );
}

#[test]
fn broken_pieces_fail_with_a_hint_and_exit_1() {
    let sb = Sandbox::new();
    let root_file = sb.write("not-a-dir", "x");
    let config = config_with_port(
        &sb,
        free_port(),
        "  ghost: {type: command, command: [\"no-such-program-xyz\"]}\n",
    );
    let (code, doc) = doctor(
        &sb,
        &["--config", &config, "--root", root_file.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(doc["ok"], false);
    let (level, message, hint) = check(&doc, "root.exists");
    assert_eq!(level, "fail");
    assert!(message.contains("not a directory"), "{message}");
    assert!(!hint.is_empty());
    let (level, message, _) = check(&doc, "agents.ghost");
    assert_eq!(level, "fail");
    assert!(
        message.contains("no-such-program-xyz not found on PATH"),
        "{message}"
    );

    // A config that does not parse is a failure naming the file.
    let bad = sb.write("bad.yaml", "api: [not, a, map]\n");
    let (code, doc) = doctor(&sb, &["--config", bad.to_str().unwrap()], &[]);
    assert_eq!(code, 1, "{doc:#}");
    let (level, message, _) = check(&doc, "config");
    assert_eq!(level, "fail");
    assert!(message.contains("bad.yaml"), "{message}");
}

#[test]
fn unattended_pitfalls_of_claude_and_gemini_are_reported() {
    let sb = Sandbox::new();
    sb.install_fake_clis(&["claude", "gemini"]);
    sb.write(
        ".gemini/settings.json",
        r#"{"security": {"folderTrust": {"enabled": true}}}"#,
    );
    let config = config_with_port(&sb, free_port(), "  claude: {}\n  gemini: {}\n");
    let root = sb.path().join("runs");
    let args = [
        "--config",
        config.as_str(),
        "--root",
        root.to_str().unwrap(),
    ];
    let (code, doc) = doctor(&sb, &args, &[]);
    let (level, message, _) = check(&doc, "agents.claude");
    assert_eq!(level, "pass", "{message}");
    assert!(message.contains("version"), "{message}");
    // No key and no login file in the sandbox HOME.
    assert_eq!(check(&doc, "agents.claude.login").0, "warn");
    // Runs get GEMINI_CLI_TRUST_WORKSPACE=true, so folder trust alone is no problem...
    let (level, message, _) = check(&doc, "agents.gemini.folder_trust");
    assert_eq!(level, "pass", "{message}");
    assert!(message.contains("folder trust is enabled"), "{message}");
    // ...but an environment that sets it otherwise is.
    let (_, doc_false) = doctor(&sb, &args, &[("GEMINI_CLI_TRUST_WORKSPACE", "false")]);
    let (level, message, hint) = check(&doc_false, "agents.gemini.folder_trust");
    assert_eq!(level, "warn");
    assert!(
        message.contains("GEMINI_CLI_TRUST_WORKSPACE=false"),
        "{message}"
    );
    assert!(hint.contains("trustedFolders.json"), "{hint}");

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert_eq!(code, 1, "{doc:#}");
        let (level, message, _) = check(&doc, "agents.claude.root");
        assert_eq!(level, "fail");
        assert!(message.contains("IS_SANDBOX=1"), "{message}");
        let (code, doc) = doctor(
            &sb,
            &args,
            &[("IS_SANDBOX", "1"), ("ANTHROPIC_API_KEY", "k")],
        );
        assert_eq!(check(&doc, "agents.claude.root").0, "pass");
        assert_eq!(check(&doc, "agents.claude.login").0, "pass");
        assert_eq!(code, 0, "{doc:#}");
    } else {
        assert_eq!(code, 0, "{doc:#}");
    }
}

#[test]
fn port_held_by_our_server_passes_and_a_wrong_key_fails() {
    let sb = Sandbox::new();
    let root = sb.path().join("runs");
    let mut cmd = sb.run_agent();
    cmd.args([
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--api-key",
        "right-key",
        "--root",
    ])
    .arg(&root);
    let server = Server::start(cmd, sb.path());
    let config = config_with_port(
        &sb,
        server.port(),
        "  echo: {type: command, command: [sh]}\n",
    );
    let root_arg = root.display().to_string();
    let args = ["--config", config.as_str(), "--root", root_arg.as_str()];

    let (code, doc) = doctor(&sb, &args, &[("CONDUCTOR_API_KEY", "right-key")]);
    assert_eq!(code, 0, "{doc:#}");
    let (level, message, _) = check(&doc, "port");
    assert_eq!(level, "pass");
    assert!(
        message.contains("held by a running Conductor server"),
        "{message}"
    );
    assert_eq!(check(&doc, "server.reachable").0, "pass");
    assert!(check(&doc, "server.auth").1.contains("accepted"));
    assert_eq!(check(&doc, "server.root").0, "pass", "{doc:#}");

    let (code, doc) = doctor(&sb, &args, &[("CONDUCTOR_API_KEY", "wrong-key")]);
    assert_eq!(code, 1, "{doc:#}");
    let (level, message, hint) = check(&doc, "server.auth");
    assert_eq!(level, "fail");
    assert!(message.contains("rejected"), "{message}");
    assert!(hint.contains("CONDUCTOR_API_KEY"));

    let (code, doc) = doctor(&sb, &args, &[]);
    assert_eq!(code, 1, "{doc:#}");
    assert!(check(&doc, "server.auth").1.contains("none is set"));
}

#[test]
fn port_held_by_another_program_fails_when_explicit() {
    let sb = Sandbox::new();
    let foreign = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = foreign.local_addr().unwrap().port().to_string();
    let root = sb.path().join("runs");
    let args = ["--root", root.to_str().unwrap()];
    let env = [
        ("CONDUCTOR_HOST", "127.0.0.1"),
        ("CONDUCTOR_PORT", port.as_str()),
    ];
    // The foreign listener never answers HTTP; doctor's probe times out on its own.
    let (code, doc) = doctor(&sb, &args, &env);
    assert_eq!(code, 1, "{doc:#}");
    let (level, message, hint) = check(&doc, "port");
    assert_eq!(level, "fail");
    assert!(message.contains("in use by another program"), "{message}");
    assert!(hint.contains(&port));
    drop(foreign);
}
