//! The symlink corpus: a project, a task, a run directory, run files and bus files inside the
//! runs root that are symlinks to a tree outside it. Every CLI command and API route that
//! reaches them must refuse clearly (non-zero exit / 4xx naming the link) and leave the
//! outside tree exactly as it was (hashed before and after).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use conductor::storage::{RunInfo, RunStatus};

use crate::support::{run, text, words, Sandbox, Server, FAKE_AGENT};

/// A run id of the outside tree (reached through the symlinked run dir).
const OUTSIDE_RUN: &str = "20260101-1200000000-1-1";
/// A real run of the real task whose files are symlinks.
const LINKED_FILES_RUN: &str = "20260101-1200000001-1-1";

/// The corpus: `root` with its links, `outside` the tree they point to.
struct Corpus {
    sb: Sandbox,
    root: PathBuf,
    outside: PathBuf,
    config: PathBuf,
}

fn record(path: &Path, run: &str, project: &str, task: &str, status: RunStatus) {
    let mut info = RunInfo::new_running(run, project, task, "claude", chrono::Utc::now());
    info.status = status;
    // A dead pid: a reconciling reader would rewrite a `running` record to `failed`.
    info.pid = 2_147_000_000;
    info.pgid = 2_147_000_000;
    if status != RunStatus::Running {
        info.end_time = chrono::Utc::now();
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    info.write(path).unwrap();
}

fn bus_text(project: &str, task: Option<&str>) -> String {
    let task_line = task.map(|t| format!("task_id: {t}\n")).unwrap_or_default();
    format!("---\nmsg_id: MSG-20260101-120000-000000001-PID1-0001\nts: 2026-01-01T12:00:00Z\ntype: INFO\nproject_id: {project}\n{task_line}---\noutside secret\n")
}

impl Corpus {
    fn new() -> Self {
        let sb = Sandbox::new();
        let root = sb.path().join("root");
        let outside = sb.path().join("outside");
        // The outside tree: a whole project with a task, a run, buses and a secret file.
        let proj = outside.join("proj");
        let task = proj.join("mydocs");
        std::fs::create_dir_all(task.join("runs")).unwrap();
        std::fs::write(task.join("TASK.md"), "outside task\n").unwrap();
        std::fs::write(
            task.join("TASK-MESSAGE-BUS.md"),
            bus_text("proj", Some("mydocs")),
        )
        .unwrap();
        std::fs::write(proj.join("PROJECT-MESSAGE-BUS.md"), bus_text("proj", None)).unwrap();
        std::fs::write(
            proj.join("PROJECT-ROOT.txt"),
            format!("{}\n", outside.display()),
        )
        .unwrap();
        let run_dir = task.join("runs").join(OUTSIDE_RUN);
        record(
            &run_dir.join("run-info.yaml"),
            OUTSIDE_RUN,
            "good",
            "real",
            RunStatus::Running,
        );
        std::fs::write(run_dir.join("agent-stdout.txt"), "outside stdout\n").unwrap();
        std::fs::write(run_dir.join("output.md"), "outside output\n").unwrap();
        std::fs::write(outside.join("secret.txt"), "secret\n").unwrap();

        // The root: real projects and tasks with links in every place.
        let link = |target: &Path, at: &Path| {
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, at).unwrap();
        };
        link(&proj, &root.join("evil"));
        link(&task, &root.join("good/linked"));
        let real = root.join("good/real");
        std::fs::create_dir_all(real.join("runs")).unwrap();
        std::fs::write(real.join("TASK.md"), "real task\n").unwrap();
        link(&run_dir, &real.join("runs").join(OUTSIDE_RUN));
        let files_run = real.join("runs").join(LINKED_FILES_RUN);
        record(
            &files_run.join("run-info.yaml"),
            LINKED_FILES_RUN,
            "good",
            "real",
            RunStatus::Completed,
        );
        for name in [
            "agent-stdout.txt",
            "agent-stderr.txt",
            "output.md",
            "prompt.md",
        ] {
            link(&outside.join("secret.txt"), &files_run.join(name));
        }
        link(
            &task.join("TASK-MESSAGE-BUS.md"),
            &real.join("TASK-MESSAGE-BUS.md"),
        );
        link(
            &proj.join("PROJECT-MESSAGE-BUS.md"),
            &root.join("good/PROJECT-MESSAGE-BUS.md"),
        );
        let config = sb.write(
            "config.yaml",
            &format!(
                "agents:\n  script:\n    type: command\n    command: [\"{FAKE_AGENT}\"]\ndefaults:\n  agent: script\n  max_restarts: 0\n"
            ),
        );
        Corpus {
            sb,
            root,
            outside,
            config,
        }
    }

    fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = self.sb.run_agent();
        cmd.args(args)
            .arg("--root")
            .arg(&self.root)
            .arg("--config")
            .arg(&self.config)
            .env("FAKE_DONE_AFTER", "1");
        cmd
    }

    /// Every path of the outside tree with its kind and content.
    fn outside_state(&self) -> BTreeMap<PathBuf, String> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
            let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
            entries.sort_by_key(|e| e.path());
            for entry in entries {
                let path = entry.path();
                let meta = std::fs::symlink_metadata(&path).unwrap();
                if meta.is_dir() {
                    out.insert(path.clone(), "dir".to_string());
                    walk(&path, out);
                } else {
                    let bytes = std::fs::read(&path).unwrap();
                    out.insert(path, format!("{:x}", md5_like(&bytes)));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.outside, &mut out);
        out
    }
}

/// A content fingerprint (FNV-1a 64; collisions do not matter at this size).
fn md5_like(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn every_cli_command_refuses_symlinked_paths_and_leaves_the_outside_alone() {
    let corpus = Corpus::new();
    let before = corpus.outside_state();
    // Command lines; the run-id constants are put in by name.
    let refused: Vec<String> = [
        "task delete --project evil --task mydocs",
        "task delete --project good --task linked",
        "job --project evil --task new-task --agent script --prompt x",
        "job --project good --task linked --agent script --prompt x",
        "task --project evil --task mydocs --agent script",
        "task --project evil --task fresh --agent script --prompt x",
        "task resume --project evil --task mydocs",
        "task resume --project good --task linked",
        "stop --project evil --task mydocs",
        "stop --project good --task linked",
        "stop --project good --task real --run OUTSIDE_RUN",
        "status --project evil --task mydocs",
        "status --project good --task linked",
        "output --project evil --task mydocs",
        "output --project good --task real --run OUTSIDE_RUN",
        "output --project good --task real --run LINKED_FILES_RUN",
        "output --project good --task real --run LINKED_FILES_RUN --stdout",
        "output --run LINKED_FILES_RUN --stderr",
        "watch --project evil --task mydocs",
        "watch --project evil",
        "bus post --project evil --type INFO --body x",
        "bus post --project evil --task mydocs --type INFO --body x",
        "bus post --project good --task real --type INFO --body x",
        "bus post --project good --type INFO --body x",
        "bus read --project evil",
        "bus read --project good --task linked",
        "bus read --project good --task real",
        "bus read --project good",
    ]
    .iter()
    .map(|line| {
        line.replace("OUTSIDE_RUN", OUTSIDE_RUN)
            .replace("LINKED_FILES_RUN", LINKED_FILES_RUN)
    })
    .collect();
    for line in &refused {
        let args = words(line);
        let out = run(&mut corpus.cli(&args));
        assert!(!out.status.success(), "{args:?} must fail:\n{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("symbolic link") || stderr.contains("symlink"),
            "{args:?} must name the link:\n{}",
            text(&out)
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("secret"),
            "{args:?} printed outside content:\n{}",
            text(&out)
        );
        assert_eq!(
            corpus.outside_state(),
            before,
            "{args:?} changed the outside tree"
        );
    }
    // Listing commands succeed and show nothing of the outside tree.
    for args in [
        &["list"][..],
        &["list", "--project", "good"],
        &["bus", "discover"],
        &[
            "gc",
            "--delete-done-tasks",
            "--rotate-bus",
            "--older-than",
            "0s",
        ],
    ] {
        let out = run(&mut corpus.cli(args));
        let all = text(&out);
        assert!(!all.contains("outside secret"), "{args:?}:\n{all}");
        assert!(
            !all.contains("mydocs"),
            "{args:?} listed the linked task:\n{all}"
        );
        assert_eq!(
            corpus.outside_state(),
            before,
            "{args:?} changed the outside tree"
        );
    }
    // The links themselves are still there, and so is everything they point to.
    assert!(corpus.root.join("evil").is_symlink());
    assert!(corpus.root.join("good/linked").is_symlink());
    assert!(corpus.outside.join("proj/mydocs/TASK.md").is_file());
}

fn request(
    server: &Server,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, String) {
    let agent = crate::support::http_agent(Some(Duration::from_secs(30)));
    let url = format!("{}{path}", server.base);
    let resp = match (method, body) {
        ("GET", _) => agent.get(&url).call(),
        ("DELETE", _) => agent.delete(&url).call(),
        (_, Some(body)) => agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string()),
        (_, None) => agent.post(&url).send_empty(),
    };
    let mut resp = resp.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (status, text)
}

#[test]
fn every_api_route_refuses_symlinked_paths_with_a_4xx() {
    let corpus = Corpus::new();
    let before = corpus.outside_state();
    let mut cmd = corpus.sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--root"])
        .arg(&corpus.root)
        .arg("--config")
        .arg(&corpus.config)
        .env("FAKE_DONE_AFTER", "1");
    let server = Server::start(cmd, corpus.sb.path());
    let task_body = |project: &str, task: &str| {
        Some(serde_json::json!({"project_id": project, "task_id": task, "prompt": "x"}))
    };
    let bus_body = Some(serde_json::json!({"type": "INFO", "body": "x"}));
    let project_body = Some(serde_json::json!({
        "project_id": "evil",
        "project_root": corpus.sb.path().display().to_string(),
    }));
    let routes: Vec<(&str, String, Option<serde_json::Value>)> = vec![
        ("POST", "/api/v1/tasks".into(), task_body("evil", "mydocs")),
        (
            "POST",
            "/api/v1/tasks".into(),
            task_body("evil", "brand-new"),
        ),
        ("POST", "/api/v1/tasks".into(), task_body("good", "linked")),
        ("POST", "/api/v1/projects".into(), project_body),
        ("GET", "/api/v1/projects/evil/tasks".into(), None),
        ("GET", "/api/v1/projects/evil/tasks/mydocs".into(), None),
        ("GET", "/api/v1/projects/good/tasks/linked".into(), None),
        (
            "POST",
            "/api/v1/projects/evil/tasks/mydocs/stop".into(),
            None,
        ),
        (
            "POST",
            "/api/v1/projects/good/tasks/linked/stop".into(),
            None,
        ),
        (
            "POST",
            "/api/v1/projects/evil/tasks/mydocs/resume".into(),
            None,
        ),
        (
            "POST",
            "/api/v1/projects/good/tasks/linked/resume".into(),
            None,
        ),
        ("DELETE", "/api/v1/projects/evil/tasks/mydocs".into(), None),
        ("DELETE", "/api/v1/projects/good/tasks/linked".into(), None),
        ("GET", "/api/v1/projects/evil/bus".into(), None),
        ("POST", "/api/v1/projects/evil/bus".into(), bus_body.clone()),
        ("GET", "/api/v1/projects/evil/bus/stream".into(), None),
        ("GET", "/api/v1/projects/good/bus".into(), None),
        ("POST", "/api/v1/projects/good/bus".into(), bus_body.clone()),
        ("GET", "/api/v1/projects/good/bus/stream".into(), None),
        ("GET", "/api/v1/projects/evil/tasks/mydocs/bus".into(), None),
        ("GET", "/api/v1/projects/good/tasks/linked/bus".into(), None),
        ("GET", "/api/v1/projects/good/tasks/real/bus".into(), None),
        (
            "POST",
            "/api/v1/projects/good/tasks/real/bus".into(),
            bus_body.clone(),
        ),
        (
            "GET",
            "/api/v1/projects/good/tasks/real/bus/stream".into(),
            None,
        ),
        ("GET", "/api/v1/messages?project_id=evil".into(), None),
        (
            "GET",
            "/api/v1/messages?project_id=good&task_id=real".into(),
            None,
        ),
        (
            "POST",
            "/api/v1/messages".into(),
            Some(serde_json::json!({"project_id": "evil", "type": "INFO", "body": "x"})),
        ),
        (
            "GET",
            "/api/v1/messages/stream?project_id=evil".into(),
            None,
        ),
        ("GET", "/api/v1/tasks?project_id=evil".into(), None),
        ("GET", "/api/v1/tasks/mydocs?project_id=evil".into(), None),
        (
            "DELETE",
            "/api/v1/tasks/mydocs?project_id=evil".into(),
            None,
        ),
        ("GET", format!("/api/v1/runs/{OUTSIDE_RUN}"), None),
        ("POST", format!("/api/v1/runs/{OUTSIDE_RUN}/stop"), None),
        ("GET", format!("/api/v1/runs/{OUTSIDE_RUN}/stream"), None),
        (
            "GET",
            format!("/api/v1/runs/{OUTSIDE_RUN}/files/stdout"),
            None,
        ),
        (
            "GET",
            format!("/api/v1/runs/{LINKED_FILES_RUN}/files/stdout"),
            None,
        ),
        (
            "GET",
            format!("/api/v1/runs/{LINKED_FILES_RUN}/files/output"),
            None,
        ),
        (
            "GET",
            format!("/api/v1/runs/{LINKED_FILES_RUN}/files/stderr"),
            None,
        ),
        (
            "GET",
            format!("/api/v1/runs/{LINKED_FILES_RUN}/stream"),
            None,
        ),
    ];
    for (method, path, body) in routes {
        let (status, text) = request(&server, method, &path, body);
        assert!(
            (400..500).contains(&status),
            "{method} {path}: expected a 4xx, got {status}: {text}"
        );
        assert!(!text.contains("outside secret"), "{method} {path}: {text}");
        assert_eq!(
            corpus.outside_state(),
            before,
            "{method} {path} changed the outside tree"
        );
    }
    // Refusals name the link (403 path_refused), not a generic 404, where the path exists.
    for path in [
        "/api/v1/projects/evil/tasks/mydocs",
        "/api/v1/projects/good/tasks/real/bus",
        "/api/v1/projects/good/bus",
    ] {
        let (status, text) = request(&server, "GET", path, None);
        assert_eq!(status, 403, "{path}: {text}");
        assert!(
            text.contains("path_refused")
                && (text.contains("symbolic link") || text.contains("symlink")),
            "{path}: {text}"
        );
    }
    let (status, text) = request(
        &server,
        "GET",
        &format!("/api/v1/runs/{LINKED_FILES_RUN}/stream"),
        None,
    );
    assert_eq!(status, 403, "the run stream refuses linked logs: {text}");
    let (status, text) = request(
        &server,
        "GET",
        &format!("/api/v1/runs/{LINKED_FILES_RUN}/files/stdout"),
        None,
    );
    assert_eq!(status, 403, "the file route refuses linked logs: {text}");
    // Still serving, and the listing shows nothing of the outside tree.
    let (status, text) = request(&server, "GET", "/api/v1/runs", None);
    assert_eq!(status, 200, "{text}");
    assert!(!text.contains(OUTSIDE_RUN), "{text}");
    assert!(!server.log().contains("panicked"), "{}", server.log());
    assert_eq!(corpus.outside_state(), before);
}
