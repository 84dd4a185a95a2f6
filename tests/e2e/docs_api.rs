//! e2e: docs/api.md's `curl` examples are used as written against a local server with an API
//! key: `BASE` and `AUTH` as the document defines them, `RUN` the run its own task-start
//! example made. Each command must get a 2xx answer (curl `-f`); the streaming ones (`curl -N`)
//! must be answered and are cut after two seconds.

use std::process::Command;

use crate::support::{free_port, run, text, Sandbox, FAKE_AGENT};

/// The `sh` blocks of docs/api.md that run `curl`, each as one command line (continuation
/// lines joined).
fn curl_examples() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md"))
        .expect("read docs/api.md");
    let mut commands = Vec::new();
    let mut in_sh = false;
    let mut current = String::new();
    for line in doc.lines() {
        if line.starts_with("```") {
            in_sh = !in_sh && line.trim() == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        current.push_str(line.trim_end_matches('\\'));
        if line.ends_with('\\') {
            continue;
        }
        let command = std::mem::take(&mut current);
        if command.trim_start().starts_with("curl ") {
            commands.push(command);
        }
    }
    commands
}

#[test]
fn the_documented_curl_examples_work_against_a_server_with_a_key() {
    let examples = curl_examples();
    assert!(examples.len() >= 8, "curl examples found: {examples:#?}");
    let sb = Sandbox::new();
    let port = free_port();
    let config = sb.write(
        "config.yaml",
        &format!(
            "agents:\n  fake:\n    type: command\n    command: [\"{FAKE_AGENT}\"]\n\
             defaults:\n  agent: fake\napi:\n  port: {port}\n  auth_enabled: true\n  api_key: s3cret\n"
        ),
    );
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--root"])
        .arg(sb.path().join("root"))
        .arg("--config")
        .arg(&config)
        .env("FAKE_DONE_AFTER", "1")
        .env("FAKE_STDOUT", "hello from the fake agent");
    let server = crate::support::Server::start(cmd, sb.path());
    let base = server.base.clone();

    let mut run_id = String::new();
    for example in examples {
        let streaming = example.contains("curl -N");
        // -f: an HTTP error fails the command; a stream is cut after 2 s (curl exit 28).
        let command = example
            .replace("curl -s ", "curl -sSf --max-time 30 ")
            .replace("curl -N ", "curl -sSf -N --max-time 2 ");
        let out = run(Command::new("/bin/sh")
            .args(["-c", &command])
            .env("BASE", &base)
            .env("AUTH", "Authorization: Bearer s3cret")
            .env("RUN", &run_id));
        let code = out.status.code();
        let answered = code == Some(0) || (streaming && code == Some(28));
        assert!(answered, "{example}\nexit {code:?}\n{}", text(&out));
        let body = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(!body.trim().is_empty(), "{example}: empty answer");
        if example.contains("/api/v1/tasks") {
            let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON answer");
            run_id = answer["run_id"]
                .as_str()
                .unwrap_or_else(|| panic!("the task start names its run: {answer}"))
                .to_string();
        }
        if example.contains("/files/stdout") {
            assert!(body.contains("hello from the fake agent"), "{body}");
        }
    }
    assert!(!run_id.is_empty(), "the task-start example ran");
}
