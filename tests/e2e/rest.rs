//! e2e: REST agents (perplexity, xai) — `run-agent job` against a local HTTP server written
//! here (std TcpListener on 127.0.0.1) that answers with SSE chunks or error statuses. Checks
//! the request sent, output.md, agent-stdout.txt, the final status and error summary, and that
//! the recorded pid is the run's supervisor.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use conductor::bus::read_all;
use conductor::storage::{RunInfo, RunStatus};

use crate::support::{free_port, run, text, Sandbox};

/// Serves one connection with `response` (raw HTTP); yields the request (head + body).
fn serve_once(response: String) -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let mut stream = stream;
        let _ = stream.write_all(response.as_bytes());
        let _ = stream.flush();
        drop(stream);
        let _ = tx.send(format!("{head}\r\n{}", String::from_utf8_lossy(&body)));
    });
    (port, rx)
}

fn sse(chunks: &[&str], done: bool) -> String {
    let mut out = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        .to_string();
    for c in chunks {
        out.push_str(&format!(
            "data: {{\"choices\":[{{\"delta\":{{\"content\":{}}}}}]}}\n\n",
            serde_json::to_string(c).unwrap()
        ));
    }
    if done {
        out.push_str("data: [DONE]\n\n");
    }
    out
}

fn status(code: u16, reason: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

struct World {
    sb: Sandbox,
}

impl World {
    fn new(config: &str) -> World {
        let sb = Sandbox::new();
        sb.write("config.yaml", config);
        World { sb }
    }

    fn root(&self) -> PathBuf {
        self.sb.path().join("root")
    }

    /// `run-agent job` with the sandbox config; returns (exit code, output, run dir).
    fn job(&self, task: &str, agent: &str, env: &[(&str, &str)]) -> (Option<i32>, String, PathBuf) {
        self.job_with(task, agent, env, &[])
    }

    /// [`World::job`] with extra flags.
    fn job_with(
        &self,
        task: &str,
        agent: &str,
        env: &[(&str, &str)],
        extra: &[&str],
    ) -> (Option<i32>, String, PathBuf) {
        let mut cmd = self.sb.run_agent();
        cmd.args(["job", "--project", "rest", "--task", task, "--agent", agent])
            .args(["--prompt", "What is 2+2?", "--root"])
            .arg(self.root())
            .args(extra)
            .env_remove("PERPLEXITY_API_KEY")
            .env_remove("XAI_API_KEY")
            .envs(env.iter().copied());
        let out = run(&mut cmd);
        let runs = self.root().join("rest").join(task).join("runs");
        let dir = std::fs::read_dir(&runs)
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| e.unwrap().path())
            .unwrap_or_default();
        (out.status.code(), text(&out), dir)
    }
}

fn info(dir: &Path) -> RunInfo {
    RunInfo::read(&dir.join("run-info.yaml")).unwrap()
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_default()
}

#[test]
fn streams_an_answer_into_the_run_files() {
    let (port, request) = serve_once(sse(&["Two plus two ", "is four."], true));
    let w = World::new(&format!(
        "agents:\n  pplx:\n    type: perplexity\n    base_url: http://127.0.0.1:{port}/\n    model: sonar-test\n    token: sekrit-token\n"
    ));
    let (code, out, dir) = w.job("answer", "pplx", &[]);
    assert_eq!(code, Some(0), "{out}");
    let request = request.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(request.starts_with("POST /chat/completions "), "{request}");
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: bearer sekrit-token"),
        "{request}"
    );
    let body: serde_json::Value =
        serde_json::from_str(request.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["model"], "sonar-test");
    assert_eq!(body["stream"], true);
    assert_eq!(body["messages"][0]["role"], "user");
    assert!(body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("What is 2+2?"));
    assert_eq!(read(&dir, "output.md"), "Two plus two is four.");
    assert!(read(&dir, "agent-stdout.txt").contains("Two plus two is four."));
    let info = info(&dir);
    assert_eq!(info.status, RunStatus::Completed);
    assert_eq!(info.exit_code, 0);
    assert_eq!(info.agent, "perplexity");
    // The run's process is its supervisor, leading its own group.
    assert!(info.pid > 0 && info.pid == info.pgid, "{info:?}");
    assert_ne!(info.pid, i64::from(std::process::id()));
    assert!(info
        .commandline
        .unwrap()
        .contains(&format!("127.0.0.1:{port}/chat/completions")));
}

#[test]
fn errors_fail_the_run_with_a_summary() {
    let cases = [
        (
            status(401, "Unauthorized", "{\"error\":\"bad key\"}"),
            "xai: HTTP 401 Unauthorized: {\"error\":\"bad key\"}",
        ),
        (
            status(429, "Too Many Requests", "slow down"),
            "xai: HTTP 429 Too Many Requests: slow down",
        ),
        (
            status(503, "Service Unavailable", "down"),
            "xai: HTTP 503 Service Unavailable: down",
        ),
        (sse(&["half an ans"], false), "xai: broken stream"),
    ];
    for (i, (response, want)) in cases.into_iter().enumerate() {
        let (port, _request) = serve_once(response);
        let w = World::new(&format!(
            "agents:\n  grok:\n    type: xai\n    base_url: http://127.0.0.1:{port}\n"
        ));
        let (code, out, dir) = w.job(&format!("e{i}"), "grok", &[("XAI_API_KEY", "k")]);
        assert_eq!(code, Some(1), "{out}");
        let info = info(&dir);
        assert_eq!(info.status, RunStatus::Failed, "{want}");
        assert_eq!(info.exit_code, 1);
        let summary = info.error_summary.unwrap();
        assert!(summary.starts_with(want), "{summary} vs {want}");
        assert!(read(&dir, "agent-stderr.txt").contains(&summary));
    }
    // Nobody listening.
    let port = free_port();
    let w = World::new(&format!(
        "agents:\n  grok:\n    type: xai\n    base_url: http://127.0.0.1:{port}\n"
    ));
    let (code, out, dir) = w.job("refused", "grok", &[("XAI_API_KEY", "k")]);
    assert_eq!(code, Some(1), "{out}");
    let summary = info(&dir).error_summary.unwrap();
    assert!(
        summary.starts_with(&format!(
            "xai: request to http://127.0.0.1:{port}/chat/completions failed"
        )),
        "{summary}"
    );
    // No token anywhere: refused before any run starts.
    let w = World::new("agents:\n  grok:\n    type: xai\n    base_url: http://127.0.0.1:9\n");
    let (code, out, _) = w.job("tokenless", "grok", &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("needs an API token") && out.contains("XAI_API_KEY"),
        "{out}"
    );
}

#[test]
fn stop_ends_a_streaming_run_as_stopped() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf);
        let head = sse(&["thinking"], false);
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.flush();
        // Keep the stream open until the test is done.
        let _ = release_rx.recv_timeout(Duration::from_secs(30));
    });
    let w = World::new(&format!(
        "agents:\n  pplx:\n    type: perplexity\n    base_url: http://127.0.0.1:{port}\n    token: t\n"
    ));
    let mut cmd = w.sb.run_agent();
    cmd.args([
        "job",
        "--project",
        "rest",
        "--task",
        "slow",
        "--agent",
        "pplx",
    ])
    .args(["--prompt", "think", "--root"])
    .arg(w.root())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let mut job = crate::support::ChildGuard(Some(cmd.spawn().unwrap()));
    let runs = w.root().join("rest/slow/runs");
    let start = std::time::Instant::now();
    let dir = loop {
        // The run directory (runs/ also holds the run's live marker file).
        let found = std::fs::read_dir(&runs)
            .ok()
            .and_then(|mut d| d.find_map(|e| e.ok().map(|e| e.path()).filter(|p| p.is_dir())))
            .filter(|d| read(d, "agent-stdout.txt").contains("thinking"));
        if let Some(dir) = found {
            break dir;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the run never streamed"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = run(w
        .sb
        .run_agent()
        .args(["stop", "--project", "rest", "--task", "slow", "--root"])
        .arg(w.root()));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("status: stopped"), "{}", text(&out));
    let status = job.0.take().unwrap().wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let info = info(&dir);
    assert_eq!(info.status, RunStatus::Stopped);
    assert_eq!(info.error_summary.as_deref(), Some("stopped by user"));
    assert!(read(&dir, "output.md").contains("thinking"));
    let _ = release_tx.send(());
    server.join().unwrap();
}

#[test]
fn idle_timeout_abandons_a_stalled_stream() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Dropping the sender (at the end of the test, or when it panics) ends the server thread.
    let (release_tx, release_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf);
        let _ = stream.write_all(sse(&["first chunk"], false).as_bytes());
        let _ = stream.flush();
        // Stall: the connection stays open and silent (for at most a minute, so that a run
        // that ignores the timeout fails the test instead of hanging it).
        let _ = release_rx.recv_timeout(Duration::from_secs(60));
    });
    let w = World::new(&format!(
        "agents:\n  pplx:\n    type: perplexity\n    base_url: http://127.0.0.1:{port}\n    token: t\n"
    ));
    let (code, out, dir) = w.job_with("stalled", "pplx", &[], &["--timeout", "1s"]);
    drop(release_tx);
    assert_eq!(code, Some(1), "{out}");
    let info = info(&dir);
    assert_eq!(info.status, RunStatus::Failed);
    assert_eq!(info.error_summary.as_deref(), Some("timed out"));
    assert_eq!(read(&dir, "agent-stdout.txt"), "first chunk");
    assert_eq!(read(&dir, "output.md"), "first chunk");
    assert!(
        read(&dir, "agent-stderr.txt").contains("perplexity: nothing received for 1s"),
        "{}",
        read(&dir, "agent-stderr.txt")
    );
    let bus = read_all(&w.root().join("rest/stalled/TASK-MESSAGE-BUS.md")).unwrap();
    let types: Vec<&str> = bus.iter().map(|m| m.msg_type.as_str()).collect();
    assert_eq!(types, ["RUN_START", "RUN_CRASH", "WARN"]);
    assert!(bus[1].body.contains("error: timed out"), "{}", bus[1].body);
    assert_eq!(bus[2].body, "agent job timed out after 1s of idle output");
}

/// The `usage` of the final chunk is the run's usage: perplexity's own cost is `reported`;
/// xai (asked for it with `stream_options.include_usage`) gets a cost from the config's
/// `pricing`.
#[test]
fn the_final_chunks_usage_lands_in_run_info() {
    use conductor::storage::CostSource;
    let with_usage = |model: &str, usage: &str| {
        let mut body = sse(&["Four."], false);
        body.push_str(&format!(
            "data: {{\"model\":\"{model}\",\"choices\":[{{\"delta\":{{}},\"finish_reason\":\"stop\"}}],\"usage\":{usage}}}\n\ndata: [DONE]\n\n"
        ));
        body
    };
    let (pplx_port, _) = serve_once(with_usage(
        "sonar-test",
        r#"{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"cost":{"input_tokens_cost":0.0001,"output_tokens_cost":0.0002,"request_cost":0.005,"total_cost":0.0053}}"#,
    ));
    let (xai_port, xai_request) = serve_once(with_usage(
        "grok-test",
        r#"{"prompt_tokens":1000,"completion_tokens":100,"total_tokens":1300,"prompt_tokens_details":{"cached_tokens":400},"completion_tokens_details":{"reasoning_tokens":200}}"#,
    ));
    let w = World::new(&format!(
        "agents:\n  pplx:\n    type: perplexity\n    base_url: http://127.0.0.1:{pplx_port}/\n    model: sonar-test\n    token: t\n  \
         grok:\n    type: xai\n    base_url: http://127.0.0.1:{xai_port}/\n    model: grok-test\n    token: t\n\
         pricing:\n  grok-test: {{input_per_mtok: 2, output_per_mtok: 10, cached_input_per_mtok: 0.5}}\n"
    ));
    let config = w.sb.path().join("config.yaml");
    let config = config.to_str().unwrap();
    let (code, out, dir) = w.job_with("pplx", "pplx", &[], &["--config", config]);
    assert_eq!(code, Some(0), "{out}");
    let usage = info(&dir).usage.expect("perplexity usage");
    assert_eq!((usage.input_tokens, usage.output_tokens), (12, 3));
    assert_eq!(usage.cost_usd, Some(0.0053));
    assert_eq!(usage.cost_source, Some(CostSource::Reported));

    let (code, out, dir) = w.job_with("grok", "grok", &[], &["--config", config]);
    assert_eq!(code, Some(0), "{out}");
    let request = xai_request.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(request.contains("\"include_usage\":true"), "{request}");
    let usage = info(&dir).usage.expect("xai usage");
    // Reasoning tokens outside completion_tokens are output too (total - prompt).
    assert_eq!(
        (
            usage.input_tokens,
            usage.cached_input_tokens,
            usage.output_tokens
        ),
        (1000, 400, 300)
    );
    assert_eq!(usage.model.as_deref(), Some("grok-test"));
    assert_eq!(usage.cost_source, Some(CostSource::Estimated));
    // 600 × 2 + 400 × 0.5 + 300 × 10, per million.
    let cost = usage.cost_usd.unwrap();
    assert!((cost - 0.0044).abs() < 1e-9, "{cost}");
}

/// The first `yaml` block after `heading` in docs/config.md.
fn docs_config_yaml(heading: &str) -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/config.md"))
        .unwrap();
    let after = &doc[doc
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"))..];
    let body = &after[after.find("```yaml\n").unwrap() + "```yaml\n".len()..];
    body[..body.find("```").unwrap()].to_string()
}

/// An HTTP server that answers every request with 200 and an empty body (webhook receiver).
fn accept_all() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 2 {
                line.clear();
            }
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    port
}

/// docs/config.md's YAML example is used as written — only the hosts point at local servers —
/// and its `pplx` (REST) and `script` (command) agents answer: the documented `base_url`
/// reaches the chat endpoint, the documented command runs with the prompt on stdin.
#[test]
fn the_documented_config_example_runs_its_agents() {
    let (port, request) = serve_once(sse(&["four"], true));
    let hooks = accept_all();
    let example = docs_config_yaml("## Example (YAML)")
        .replace(
            "https://api.perplexity.ai",
            &format!("http://127.0.0.1:{port}"),
        )
        .replace(
            "https://hooks.example.com",
            &format!("http://127.0.0.1:{hooks}"),
        );
    let w = World::new(&example);
    w.sb.write(".codex-key", "codex-token\n");
    let script = w.sb.path().join("my-agent.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"script saw $1: $(cat)\"\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = w.sb.path().join("config.yaml");

    let (code, out, dir) = w.job_with("pplx", "pplx", &[], &["--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let request = request.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        request.starts_with("POST /chat/completions HTTP/1.1"),
        "{request}"
    );
    assert!(request.contains("sonar-pro"), "{request}");
    assert_eq!(read(&dir, "output.md").trim(), "four");

    let (code, out, dir) = w.job_with(
        "script",
        "script",
        &[],
        &["--config", config.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{out}");
    let stdout = read(&dir, "agent-stdout.txt");
    assert!(
        stdout.starts_with("script saw --flag: ") && stdout.contains("What is 2+2?"),
        "{stdout}"
    );
}
