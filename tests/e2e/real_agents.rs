//! Contract tests against the real Claude Code, Codex and Gemini CLIs (pinned in
//! tests/agents/package.json, installed by scripts/install-agent-clis.sh), each pointed at
//! the mock model server of [`crate::mock_models`] the way a user points it at another
//! endpoint. Without the CLIs the tests fail under `CI=true` and are skipped (one line on
//! stderr) otherwise.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use conductor::storage::{RunInfo, RunStatus};

use crate::mock_models::{MockModels, Reply};
use crate::support::{run, text, wait_until, Sandbox};

/// Where `npm ci` puts the CLIs.
fn cli_bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/agents/node_modules/.bin")
}

/// The CLIs' bin dir, or `None` (test skipped) when they are not installed; under `CI=true`
/// a missing CLI fails the test.
fn installed() -> Option<PathBuf> {
    let dir = cli_bin_dir();
    let missing: Vec<&str> = ["claude", "codex", "gemini"]
        .into_iter()
        .filter(|c| !dir.join(c).exists())
        .collect();
    if missing.is_empty() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "real agent CLIs missing ({}) in {}: run scripts/install-agent-clis.sh",
            missing.join(", "),
            dir.display()
        );
    }
    eprintln!("skipped: real agent CLIs not installed; run scripts/install-agent-clis.sh");
    None
}

/// One CLI, its sandbox (own HOME, CODEX_HOME, TMPDIR) and its mock model server.
struct World {
    agent: &'static str,
    sb: Sandbox,
    bin: PathBuf,
    mock: MockModels,
}

impl World {
    fn new(agent: &'static str, reply: Reply) -> Option<World> {
        let bin = installed()?;
        let sb = Sandbox::new();
        let mock = MockModels::start(reply);
        for dir in ["home/.codex", "home/.gemini", "tmp", "work"] {
            std::fs::create_dir_all(sb.path().join(dir)).unwrap();
        }
        std::fs::write(
            sb.path().join("home/.codex/config.toml"),
            format!(
                "model = \"gpt-5\"\nmodel_provider = \"mock\"\n\n[model_providers.mock]\n\
                 name = \"mock\"\nbase_url = \"{}/v1\"\nwire_api = \"responses\"\n\
                 env_key = \"OPENAI_API_KEY\"\nrequest_max_retries = 0\nstream_max_retries = 0\n",
                mock.base
            ),
        )
        .unwrap();
        std::fs::write(
            sb.path().join("home/.gemini/settings.json"),
            r#"{"security":{"auth":{"selectedType":"gemini-api-key"}},"privacy":{"usageStatisticsEnabled":false},"general":{"disableAutoUpdate":true,"disableUpdateNag":true}}"#,
        )
        .unwrap();
        Some(World {
            agent,
            sb,
            bin,
            mock,
        })
    }

    fn root(&self) -> PathBuf {
        self.sb.path().join("root")
    }

    fn work(&self) -> PathBuf {
        self.sb.path().join("work")
    }

    /// `run-agent <args…>` as a user with this CLI installed and pointed at the mock.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.sb.run_agent();
        let home = self.sb.path().join("home");
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.args(args)
            .env("PATH", path)
            .env("HOME", &home)
            .env("CODEX_HOME", home.join(".codex"))
            .env("TMPDIR", self.sb.path().join("tmp"))
            // claude: the mock, no retries, no side traffic; allowed as root in this sandbox.
            .env("ANTHROPIC_BASE_URL", &self.mock.base)
            .env("ANTHROPIC_API_KEY", "mock-key")
            .env("CLAUDE_CODE_MAX_RETRIES", "0")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("DISABLE_AUTOUPDATER", "1")
            .env("IS_SANDBOX", "1")
            // codex: the provider of $CODEX_HOME/config.toml takes this key.
            .env("OPENAI_API_KEY", "mock-key")
            // gemini: the mock and an API key (settings.json selects key auth).
            .env("GOOGLE_GEMINI_BASE_URL", &self.mock.base)
            .env("GEMINI_API_KEY", "mock-key")
            .env_remove("CI");
        cmd
    }

    /// `run-agent job` of this CLI in task `task`, in the fresh folder `work/`.
    fn job(&self, task: &str, prompt: &str) -> std::process::Output {
        let mut cmd = self.cmd(&[
            "job",
            "--project",
            "p",
            "--task",
            task,
            "--agent",
            self.agent,
        ]);
        cmd.args(["--prompt", prompt, "--root"])
            .arg(self.root())
            .arg("--cwd")
            .arg(self.work());
        run(&mut cmd)
    }

    fn runs(&self, task: &str) -> Vec<RunInfo> {
        crate::support::run_infos(&self.root().join("p").join(task).join("runs"))
    }

    fn run_dir(&self, task: &str, info: &RunInfo) -> PathBuf {
        self.root()
            .join("p")
            .join(task)
            .join("runs")
            .join(&info.run_id)
    }

    fn output(&self, task: &str, info: &RunInfo) -> String {
        std::fs::read_to_string(self.run_dir(task, info).join("output.md")).unwrap_or_default()
    }

    /// Fails the test, with the runs' files, unless `out` succeeded.
    fn assert_ok(&self, out: &std::process::Output, task: &str) {
        assert!(
            out.status.success(),
            "{}: {}\n{}",
            self.agent,
            text(out),
            self.explain(task)
        );
    }

    fn explain(&self, task: &str) -> String {
        let mut out = String::new();
        for info in self.runs(task) {
            let dir = self.run_dir(task, &info);
            for f in ["run-info.yaml", "agent-stdout.txt", "agent-stderr.txt"] {
                let body = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
                let tail: String = body
                    .chars()
                    .rev()
                    .take(3000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                out.push_str(&format!("--- {f}\n{tail}\n"));
            }
        }
        out.push_str(&format!(
            "--- mock requests: {:?}\n",
            self.mock
                .requests()
                .iter()
                .map(|r| r.uri.clone())
                .collect::<Vec<_>>()
        ));
        out
    }
}

const AGENTS: [&str; 3] = ["claude", "codex", "gemini"];

fn agents() -> Vec<&'static str> {
    match std::env::var("REAL_AGENTS_ONLY") {
        Ok(only) => AGENTS
            .into_iter()
            .filter(|a| only.split(',').any(|o| o == *a))
            .collect(),
        Err(_) => AGENTS.to_vec(),
    }
}

fn each_agent(test: impl Fn(&'static str) + Sync) {
    std::thread::scope(|s| {
        let handles: Vec<_> = agents()
            .into_iter()
            .map(|agent| {
                let test = &test;
                (agent, s.spawn(move || test(agent)))
            })
            .collect();
        let failed: Vec<String> = handles
            .into_iter()
            .filter_map(|(agent, h)| h.join().err().map(|_| agent.to_string()))
            .collect();
        assert!(failed.is_empty(), "failed for: {failed:?}");
    });
}

#[test]
fn job_records_the_models_answer_and_the_session() {
    each_agent(|agent| {
        let Some(w) = World::new(agent, Reply::Text("MOCK: hello from the mock".into())) else {
            return;
        };
        let out = w.job("t", "say hello");
        let runs = w.runs("t");
        w.assert_ok(&out, "t");
        let info = &runs[0];
        assert_eq!(info.status, RunStatus::Completed);
        assert_eq!(
            w.output("t", info),
            "MOCK: hello from the mock\n",
            "{agent}: {}",
            w.explain("t")
        );
        assert!(
            info.agent_session_id.is_some(),
            "{agent}: {}",
            w.explain("t")
        );
        assert!(!info.agent_version.is_empty());
    });
}

/// Pids of live processes whose environment has `JRUN_ID=<run_id>`: the run's agent and
/// everything it started (tools inherit the environment).
fn processes_of_run(run_id: &str) -> Vec<i32> {
    let needle = format!("JRUN_ID={run_id}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| {
                    s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(true);
            !zombie
                && std::fs::read(format!("/proc/{pid}/environ"))
                    .map(|env| env.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
                    .unwrap_or(false)
        })
        .collect()
}

/// The shell command the model asks the CLI's tool to run to finish the task.
const TOUCH_DONE: &str = r#"touch "$JRUN_TASK_FOLDER/DONE""#;

/// Whether every model turn from `from` on carries `marker` (an earlier turn's text).
fn turns_carry(w: &World, from: usize, marker: &str) -> bool {
    let turns = w.mock.turns();
    turns.len() > from
        && turns[from..]
            .iter()
            .all(|t| t.body.to_string().contains(marker))
}

#[test]
fn task_finishes_through_the_clis_tool_and_resume_continues_the_conversation() {
    each_agent(|agent| {
        let Some(w) = World::new(agent, Reply::Shell(TOUCH_DONE.into())) else {
            return;
        };
        let mut cmd = w.cmd(&["task", "--project", "p", "--task", "t", "--agent", agent]);
        cmd.args([
            "--prompt",
            "FIRST-MARKER: finish the task",
            "--max-restarts",
            "2",
        ])
        .args(["--restart-delay", "10ms", "--root"])
        .arg(w.root())
        .arg("--cwd")
        .arg(w.work());
        let out = run(&mut cmd);
        w.assert_ok(&out, "t");
        assert!(w.root().join("p/t/DONE").exists());
        let first = w.runs("t");
        assert_eq!(first.len(), 1, "{agent}: done in the first run");
        assert_eq!(
            w.output("t", &first[0]),
            "Done.\n",
            "{agent}: {}",
            w.explain("t")
        );
        let session = first[0].agent_session_id.clone().expect("session recorded");

        // CLI resume: the same conversation (the first prompt is in every new turn).
        let before = w.mock.turns().len();
        let mut cmd = w.cmd(&["resume", "--project", "p", "--task", "t", "--reset-done"]);
        cmd.args(["--max-restarts", "0", "--root"]).arg(w.root());
        let out = run(&mut cmd);
        w.assert_ok(&out, "t");
        let runs = w.runs("t");
        assert_eq!(runs.len(), 2);
        assert!(
            runs[1]
                .commandline
                .as_deref()
                .unwrap_or("")
                .contains(&session),
            "{agent}: {:?}",
            runs[1].commandline
        );
        assert_eq!(
            runs[1].cwd, first[0].cwd,
            "{agent}: resumed in the same folder"
        );
        assert!(
            turns_carry(&w, before, "FIRST-MARKER"),
            "{agent}: resumed turns lack the first turn: {}",
            w.explain("t")
        );

        // API: resume the same task, and start a new one waiting for its result.
        let mut cmd = w.cmd(&["serve", "--host", "127.0.0.1", "--root"]);
        cmd.arg(w.root());
        let server = crate::support::Server::start(cmd, w.sb.path());
        let before = w.mock.turns().len();
        let (code, body) = server.post_json(
            "/api/v1/projects/p/tasks/t/resume",
            serde_json::json!({"reset_done": true, "max_restarts": 0}),
        );
        assert_eq!(code, 202, "{agent}: {body}");
        wait_until("the API resume to finish", Duration::from_secs(90), || {
            let runs = w.runs("t");
            runs.len() == 3 && runs[2].status != RunStatus::Running
        });
        let runs = w.runs("t");
        assert_eq!(
            runs[2].status,
            RunStatus::Completed,
            "{agent}: {}",
            w.explain("t")
        );
        assert!(
            turns_carry(&w, before, "FIRST-MARKER"),
            "{agent}: API-resumed turns lack the first turn"
        );

        w.mock.set(Reply::Text("MOCK: api answer".into()));
        let (code, body) = server.post_json(
            "/api/v1/tasks",
            serde_json::json!({"project_id": "p", "task_id": "api", "agent": agent,
                               "prompt": "answer", "max_restarts": 0, "wait_seconds": 90}),
        );
        assert_eq!(code, 200, "{agent}: {body}");
        assert_eq!(body["output"], "MOCK: api answer\n", "{agent}: {body}");
        drop(server);
    });
}

#[test]
fn stop_leaves_no_process_while_the_model_stalls_or_the_tool_runs() {
    each_agent(|agent| {
        let Some(w) = World::new(agent, Reply::Stall(Duration::from_secs(120))) else {
            return;
        };
        let long_tool = r#"echo $$ > "$JRUN_TASK_FOLDER/tool.pid"; exec sleep 300"#;
        for (task, reply) in [
            ("stall", None),
            ("tool", Some(Reply::Shell(long_tool.into()))),
        ] {
            if let Some(reply) = reply {
                w.mock.set(reply);
            }
            let mut job = w.cmd(&["job", "--project", "p", "--task", task, "--agent", agent]);
            job.args(["--prompt", "work", "--root"])
                .arg(w.root())
                .arg("--cwd")
                .arg(w.work())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            let _job = crate::support::ChildGuard(Some(job.spawn().unwrap()));
            let turns = w.mock.turns().len();
            let tool_pid = w.root().join("p").join(task).join("tool.pid");
            wait_until("the model turn", Duration::from_secs(60), || {
                w.mock.turns().len() > turns && (task == "stall" || tool_pid.exists())
            });
            let run_id = w.runs(task)[0].run_id.clone();
            assert!(!processes_of_run(&run_id).is_empty());
            let mut stop = w.cmd(&["stop", "--project", "p", "--task", task, "--grace", "5s"]);
            stop.arg("--root").arg(w.root());
            let out = run(&mut stop);
            assert!(out.status.success(), "{agent} {task}: {}", text(&out));
            assert_eq!(w.runs(task)[0].status, RunStatus::Stopped);
            // The supervisor (which has the run's env too) exits just after the record.
            let start = Instant::now();
            let mut left = processes_of_run(&run_id);
            while !left.is_empty() && start.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(100));
                left = processes_of_run(&run_id);
            }
            for pid in &left {
                eprintln!(
                    "left: {pid} {:?}",
                    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default()
                );
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            assert!(
                left.is_empty(),
                "{agent} {task}: processes left after stop: {left:?}"
            );
        }
    });
}

#[test]
fn a_401_fails_the_run_with_the_models_message() {
    each_agent(|agent| {
        let Some(w) = World::new(
            agent,
            Reply::Fail(401, "MOCK-401: invalid key for the mock".into()),
        ) else {
            return;
        };
        let out = w.job("t", "hello");
        assert!(!out.status.success(), "{agent}: {}", text(&out));
        let info = &w.runs("t")[0];
        assert_eq!(info.status, RunStatus::Failed);
        let summary = info.error_summary.clone().unwrap_or_default();
        assert!(
            summary.contains("MOCK-401"),
            "{agent}: {summary}\n{}",
            w.explain("t")
        );
        let output = w.output("t", info);
        assert!(
            !output.contains("{\"type\""),
            "{agent}: raw stream in output.md: {output}"
        );
    });
}

/// The usage each CLI reports lands in run-info: claude's own cost (`reported`), and codex's
/// and gemini's token counts as the mock model server reported them (11 in, 7 out per model
/// request; the CLIs' own side requests count too, so the totals are whole multiples).
#[test]
fn usage_the_mock_reported_lands_in_run_info() {
    use crate::mock_models::{USAGE_IN, USAGE_OUT};
    use conductor::storage::CostSource;
    each_agent(|agent| {
        let Some(w) = World::new(agent, Reply::Text("MOCK: counted".into())) else {
            return;
        };
        let out = w.job("u", "say hello");
        w.assert_ok(&out, "u");
        let info = &w.runs("u")[0];
        let usage = info
            .usage
            .clone()
            .unwrap_or_else(|| panic!("{agent}: no usage: {}", w.explain("u")));
        let requests = w.mock.requests().len() as u64;
        eprintln!("{agent}: {usage:?} after {requests} requests");
        assert!(usage.output_tokens > 0, "{agent}: {usage:?}");
        match agent {
            "claude" => {
                assert_eq!(usage.cost_source, Some(CostSource::Reported), "{usage:?}");
                assert!(usage.cost_usd.is_some(), "{usage:?}");
            }
            _ => {
                let turns = usage.output_tokens / USAGE_OUT;
                assert!(turns >= 1 && turns <= requests, "{agent}: {usage:?}");
                assert_eq!(
                    (usage.input_tokens, usage.output_tokens),
                    (turns * USAGE_IN, turns * USAGE_OUT),
                    "{agent}: {usage:?}"
                );
            }
        }
    });
}
