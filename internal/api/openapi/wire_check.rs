//! The wire model against the document: every body type the handlers answer with (and the
//! client decodes) is what its schema says — a sample with every optional field filled
//! serializes to exactly the schema's properties, never lacks a required one, and decodes
//! back to itself — and the routes the API-client commands call name that type as their
//! answer. A field renamed on one side, or skipped by serde but still documented, fails here.

use std::collections::BTreeSet;
use std::fmt::Debug;

use chrono::{TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use utoipa::OpenApi;

use super::ApiDoc;
use crate::bus::{Link, Message, Parent};
use crate::storage::{CostSource, RunInfo, RunStatus, Usage, UsageTotals};
use crate::update::record::HistoryEntry;
use crate::update::{StatusView, UpdateMode, UpdateState};
use crate::wire::*;

fn document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).expect("the document serializes")
}

/// The schema `reference` (`#/components/schemas/X`) points at.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            let found = &doc["components"]["schemas"][name];
            assert!(found.is_object(), "{reference} is not in the document");
            found
        }
        None => schema,
    }
}

/// The properties and the required ones of `schema`, through `allOf` (serde's `flatten`).
fn properties(doc: &Value, schema: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let schema = resolve(doc, schema);
    let mut all: BTreeSet<String> = schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let mut required: BTreeSet<String> = schema["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for key in ["allOf", "oneOf"] {
        for part in schema[key].as_array().into_iter().flatten() {
            if part["type"] == "null" {
                continue;
            }
            let (more, more_required) = properties(doc, part);
            all.extend(more);
            if key == "allOf" {
                required.extend(more_required);
            }
        }
    }
    (all, required)
}

/// Checks `sample` (every optional field filled) against the schema `name`.
fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(doc: &Value, name: &str, sample: T) {
    let schema = &doc["components"]["schemas"][name];
    assert!(schema.is_object(), "schema {name} is not in the document");
    let (documented, required) = properties(doc, schema);
    let json = serde_json::to_value(&sample).expect("serializes");
    let sent: BTreeSet<String> = json
        .as_object()
        .unwrap_or_else(|| panic!("{name} is not an object"))
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        sent, documented,
        "{name}: the keys sent differ from the documented properties"
    );
    let missing: Vec<_> = required.difference(&sent).collect();
    assert!(missing.is_empty(), "{name}: required {missing:?} not sent");
    let back: T = serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("{name} does not decode what it encodes: {e}\n{json}"));
    assert_eq!(back, sample, "{name} does not round-trip");
}

fn time() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, 13, 0, 0).unwrap() + chrono::Duration::nanoseconds(123_400)
}

fn usage() -> Usage {
    Usage {
        model: Some("model-x".into()),
        input_tokens: 10,
        cached_input_tokens: 2,
        output_tokens: 5,
        cost_usd: Some(0.25),
        cost_source: Some(CostSource::Reported),
    }
}

fn totals() -> UsageTotals {
    let mut totals = UsageTotals::default();
    totals.add(&usage());
    totals
}

fn run_info() -> RunInfo {
    let mut info = RunInfo::new_running("20261205-1300000000-1-1", "p", "t", "claude", time());
    info.parent_run_id = Some("20261205-1200000000-1-1".into());
    info.previous_run_id = Some("20261205-1100000000-1-1".into());
    info.process_ownership = Some("managed".into());
    info.pid = 42;
    info.pgid = 42;
    info.end_time = time() + chrono::Duration::seconds(5);
    info.exit_code = 0;
    info.status = RunStatus::Completed;
    info.cwd = Some("/work".into());
    info.commandline = Some("claude -p".into());
    info.error_summary = Some("none".into());
    info.agent_version = "1.0".into();
    info.agent_session_id = Some("session".into());
    info.pid_start_time = Some(7);
    info.restart_index = Some(1);
    info.agent_name = Some("long".into());
    info.usage = Some(usage());
    info
}

fn run() -> RunSummary {
    RunSummary {
        run_id: "20261205-1300000000-1-1".into(),
        project_id: "p".into(),
        task_id: "t".into(),
        status: RunStatus::Completed,
        info: Some(run_info()),
        error: Some("run-info.yaml: broken".into()),
        usage: Some(usage()),
    }
}

fn summary() -> TaskSummary {
    TaskSummary {
        project_id: "p".into(),
        task_id: "t".into(),
        status: "running".into(),
        done: false,
        run_count: 1,
        latest_run: Some("20261205-1300000000-1-1".into()),
        last_activity: Some("2026-12-05T13:00:00Z".into()),
        blocked_by: vec!["a".into()],
        usage: totals(),
        budget_exceeded: Some("cost 2 > 1".into()),
    }
}

fn message() -> Message {
    let mut meta = std::collections::BTreeMap::new();
    meta.insert("k".to_string(), "v".to_string());
    Message {
        msg_id: "MSG-1".into(),
        ts: time(),
        msg_type: "FACT".into(),
        project_id: "p".into(),
        task_id: "t".into(),
        run_id: "r".into(),
        issue_id: "MSG-1".into(),
        parents: vec![Parent {
            msg_id: "MSG-0".into(),
            kind: "child_of".into(),
            meta: meta.clone(),
        }],
        links: vec![Link {
            url: "https://example.org".into(),
            label: "x".into(),
            kind: "doc".into(),
        }],
        meta,
        body: "hello".into(),
    }
}

#[test]
fn every_wire_type_matches_its_schema_and_round_trips() {
    let doc = document();
    check(&doc, "Health", Health::ok());
    check(
        &doc,
        "VersionBody",
        VersionBody {
            version: "1".into(),
            commit: "abc".into(),
        },
    );
    check(
        &doc,
        "StatusBody",
        StatusBody {
            version: "1".into(),
            commit: "abc".into(),
            pid: 1,
            root: "/r".into(),
            uptime_seconds: 2,
            started_at: "2026-12-05T13:00:00Z".into(),
            config: "defaults".into(),
            config_error: Some("bad".into()),
            task_start_enabled: true,
            auth_enabled: false,
            executable: Some("/bin/run-agent".into()),
            executable_sha256: Some("00".into()),
            executable_sha256_state: "ready".into(),
            warnings: vec!["w".into()],
            active_runs: 1,
            runs: [("running".to_string(), 1)].into_iter().collect(),
            update: UpdateSummary {
                state: "idle".into(),
                mode: Some("drain".into()),
                started_at: Some("2026-12-05T13:00:00Z".into()),
                last_error: Some("e".into()),
            },
            index: IndexSummary {
                state: "ready".into(),
                runs: 1,
                build_ms: Some(3),
            },
        },
    );
    check(
        &doc,
        "StatusView",
        StatusView {
            state: UpdateState::Failed,
            mode: Some(UpdateMode::Handoff),
            candidate: Some("/c".into()),
            sha256: Some("00".into()),
            active_root_runs: 1,
            started_at: Some("2026-12-05T13:00:00Z".into()),
            last_error: Some("e".into()),
            to_version: Some("2".into()),
            history: vec![HistoryEntry {
                time: "2026-12-05T13:00:00Z".into(),
                from_version: "1".into(),
                from_sha256: Some("00".into()),
                to_version: Some("2".into()),
                to_sha256: "11".into(),
                mode: UpdateMode::Drain,
                result: "failed".into(),
                error: Some("e".into()),
                candidate: "/c".into(),
            }],
        },
    );
    check(
        &doc,
        "StartBody",
        StartBody {
            binary_path: "/c".into(),
            sha256: Some("00".into()),
            mode: Some(UpdateMode::Drain),
        },
    );
    check(
        &doc,
        "BusMessages",
        BusMessages {
            messages: vec![message()],
        },
    );
    check(
        &doc,
        "PostBody",
        PostBody {
            msg_type: "FACT".into(),
            body: "b".into(),
            run_id: Some("r".into()),
            parents: vec!["MSG-0".into()],
        },
    );
    check(
        &doc,
        "CompatPost",
        CompatPost {
            project_id: "p".into(),
            task_id: Some("t".into()),
            run_id: Some("r".into()),
            msg_type: "FACT".into(),
            body: "b".into(),
        },
    );
    check(
        &doc,
        "MessagePosted",
        MessagePosted {
            msg_id: "MSG-1".into(),
        },
    );
    check(
        &doc,
        "StartTaskBody",
        StartTaskBody {
            project_id: "p".into(),
            task_id: Some("t".into()),
            prompt: "do it".into(),
            agent: Some("claude".into()),
            env: [("K".to_string(), "V".to_string())].into_iter().collect(),
            wait_seconds: Some(5),
            max_restarts: Some(1),
            depends_on: Some(vec!["a".into()]),
            max_cost_usd: Some(1.5),
            max_tokens: Some(1000),
        },
    );
    check(
        &doc,
        "TaskStarted",
        TaskStarted {
            project_id: "p".into(),
            task_id: "t".into(),
            run_id: Some("r".into()),
            status: Some("waiting for a task slot".into()),
            ended: Some(TaskOutcome {
                outcome: "done".into(),
                error: Some("e".into()),
                output: Some("out".into()),
            }),
            status_url: "/api/v1/projects/p/tasks/t".into(),
        },
    );
    check(
        &doc,
        "ResumeBody",
        ResumeBody {
            reset_done: true,
            agent: Some("claude".into()),
            max_restarts: Some(1),
            cwd: Some("/work".into()),
            max_cost_usd: Some(2.0),
            max_tokens: Some(10),
        },
    );
    check(
        &doc,
        "TaskResumed",
        TaskResumed {
            project_id: "p".into(),
            task_id: "t".into(),
            status_url: "/api/v1/projects/p/tasks/t".into(),
        },
    );
    check(
        &doc,
        "StopBody",
        StopBody {
            grace_seconds: Some(3),
        },
    );
    check(
        &doc,
        "TaskStopped",
        TaskStopped {
            project_id: "p".into(),
            task_id: "t".into(),
            stopped_runs: vec!["r".into()],
            errors: vec!["e".into()],
        },
    );
    check(
        &doc,
        "TaskDeleted",
        TaskDeleted {
            project_id: "p".into(),
            task_id: "t".into(),
            deleted: true,
        },
    );
    check(
        &doc,
        "TaskList",
        TaskList {
            project_id: Some("p".into()),
            tasks: vec![summary()],
        },
    );
    check(&doc, "TaskSummary", summary());
    check(
        &doc,
        "TaskView",
        TaskView {
            project_id: "p".into(),
            task_id: "t".into(),
            status: "done".into(),
            done: true,
            task_md: Some("# T".into()),
            depends_on: vec!["a".into()],
            blocked_by: vec![],
            deps_error: Some("bad TASK-CONFIG.yaml".into()),
            run_count: 1,
            usage: totals(),
            runs: vec![run()],
            next_cursor: Some("r".into()),
            budget_exceeded: Some("cost 2 > 1".into()),
        },
    );
    check(
        &doc,
        "CreateProjectBody",
        CreateProjectBody {
            project_id: "p".into(),
            project_root: "/work".into(),
        },
    );
    check(
        &doc,
        "ProjectCreated",
        ProjectCreated {
            project_id: "p".into(),
            project_root: "/work".into(),
        },
    );
    check(
        &doc,
        "ProjectList",
        ProjectList {
            projects: vec![ProjectSummary {
                project_id: "p".into(),
                task_count: 1,
                usage: totals(),
            }],
        },
    );
    check(&doc, "RunSummary", run());
    check(
        &doc,
        "RunsPage",
        RunsPage {
            runs: vec![run()],
            next_cursor: Some("r".into()),
        },
    );
    check(
        &doc,
        "RunDetail",
        RunDetail {
            run: run(),
            files: RunFiles {
                stdout: Some(1),
                stderr: Some(2),
                output: Some(3),
                prompt: Some(4),
            },
            previous_run: Some("a".into()),
            next_run: Some("b".into()),
        },
    );
    check(
        &doc,
        "ErrorBody",
        ErrorBody {
            error: ErrorDetail {
                code: "not_found".into(),
                message: "no such task".into(),
            },
        },
    );
    check(
        &doc,
        "AgentList",
        AgentList {
            agents: vec![AgentEntry {
                name: "long".into(),
                agent_type: "claude".into(),
            }],
            default: Some("long".into()),
            configured: true,
        },
    );
    check(
        &doc,
        "LoginBody",
        LoginBody {
            api_key: "k".into(),
        },
    );
    check(&doc, "Done", Done::ok());
    check(
        &doc,
        "TopicChange",
        TopicChange {
            add: vec!["runs".into()],
            remove: vec!["bus:p".into()],
        },
    );
    check(
        &doc,
        "StreamTopics",
        StreamTopics {
            stream: "0123".into(),
            topics: vec!["runs".into()],
        },
    );
    check(
        &doc,
        "RunChange",
        RunChange {
            run_id: "r".into(),
            project_id: "p".into(),
            task_id: "t".into(),
            status: RunStatus::Running,
        },
    );
    check(
        &doc,
        "RunStatusEvent",
        RunStatusEvent {
            status: RunStatus::Failed,
            exit_code: Some(1),
            error_summary: Some("e".into()),
            pos: Some("1:2".into()),
        },
    );
    check(
        &doc,
        "LogLines",
        LogLines {
            stream: "stdout".into(),
            lines: vec!["a".into()],
            pos: "1:0".into(),
        },
    );
    check(
        &doc,
        "RunEnded",
        RunEnded {
            status: RunStatus::Completed,
            pos: "1:0".into(),
        },
    );
    check(
        &doc,
        "BusBatch",
        BusBatch {
            messages: vec![message()],
        },
    );
    check(&doc, "Resync", Resync { reason: "r".into() });
    check(
        &doc,
        "TopicError",
        TopicError {
            message: "m".into(),
        },
    );
    check(
        &doc,
        "StreamHello",
        StreamHello {
            stream: "0123".into(),
        },
    );
    check(
        &doc,
        "RunStopped",
        RunStopped {
            run_id: "r".into(),
            status: RunStatus::Stopped,
        },
    );
}

/// The answer type each route the API-client commands (`run-agent server …`, `doctor`) call
/// is documented with: the type the handler returns and the client decodes.
const CLIENT_ROUTES: &[(&str, &str, &str, &str)] = &[
    ("/healthz", "get", "200", "Health"),
    ("/api/v1/version", "get", "200", "VersionBody"),
    ("/api/v1/status", "get", "200", "StatusBody"),
    ("/api/v1/admin/self-update", "get", "200", "StatusView"),
    ("/api/v1/admin/self-update", "post", "202", "StatusView"),
    ("/api/v1/tasks", "get", "200", "TaskList"),
    ("/api/v1/tasks", "post", "201", "TaskStarted"),
    ("/api/v1/tasks", "post", "200", "TaskStarted"),
    ("/api/v1/tasks", "post", "202", "TaskStarted"),
    ("/api/v1/projects/{project}/tasks", "get", "200", "TaskList"),
    (
        "/api/v1/projects/{project}/tasks/{task}",
        "get",
        "200",
        "TaskView",
    ),
    (
        "/api/v1/projects/{project}/tasks/{task}",
        "delete",
        "200",
        "TaskDeleted",
    ),
    (
        "/api/v1/projects/{project}/tasks/{task}/stop",
        "post",
        "200",
        "TaskStopped",
    ),
    (
        "/api/v1/projects/{project}/tasks/{task}/resume",
        "post",
        "202",
        "TaskResumed",
    ),
    ("/api/v1/runs", "get", "200", "RunsPage"),
    ("/api/v1/runs/{run}", "get", "200", "RunDetail"),
    ("/api/v1/runs/{run}/stop", "post", "200", "RunStopped"),
    (
        "/api/v1/projects/{project}/bus",
        "get",
        "200",
        "BusMessages",
    ),
    (
        "/api/v1/projects/{project}/bus",
        "post",
        "201",
        "MessagePosted",
    ),
    (
        "/api/v1/projects/{project}/tasks/{task}/bus",
        "get",
        "200",
        "BusMessages",
    ),
    (
        "/api/v1/projects/{project}/tasks/{task}/bus",
        "post",
        "201",
        "MessagePosted",
    ),
];

#[test]
fn client_routes_document_their_wire_types() {
    let doc = document();
    for (path, method, status, name) in CLIENT_ROUTES {
        let schema = &doc["paths"][path][method]["responses"][status]["content"]
            ["application/json"]["schema"]["$ref"];
        assert_eq!(
            schema.as_str(),
            Some(format!("#/components/schemas/{name}").as_str()),
            "{method} {path} {status} should answer {name}"
        );
    }
}

#[test]
fn wire_time_is_the_serde_form_of_a_time() {
    for t in [
        time(),
        crate::storage::time::zero_time(),
        Utc.timestamp_opt(0, 0).unwrap(),
    ] {
        assert_eq!(
            serde_json::to_value(t).unwrap(),
            Value::String(wire_time(&t)),
            "{t:?}"
        );
    }
}

/// The four answers of `POST /api/v1/tasks` keep the shapes clients know: `run_id` always
/// present (null while waiting), the outcome fields only when the task ended, `error` and
/// `output` then present even when null.
#[test]
fn task_started_answers_keep_their_shapes() {
    let base = TaskStarted {
        project_id: "p".into(),
        task_id: "t".into(),
        run_id: None,
        status: None,
        ended: None,
        status_url: "/u".into(),
    };
    let keys = |answer: &TaskStarted| -> Vec<String> {
        let mut keys: Vec<String> = serde_json::to_value(answer)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(
        keys(&base),
        ["project_id", "run_id", "status_url", "task_id"]
    );
    let waiting = TaskStarted {
        status: Some("waiting".into()),
        ..base.clone()
    };
    assert_eq!(
        keys(&waiting),
        ["project_id", "run_id", "status", "status_url", "task_id"]
    );
    let ended = TaskStarted {
        run_id: Some("r".into()),
        ended: Some(TaskOutcome {
            outcome: "failed".into(),
            error: None,
            output: None,
        }),
        ..base.clone()
    };
    let json = serde_json::to_value(&ended).unwrap();
    assert_eq!(json["error"], Value::Null);
    assert_eq!(
        keys(&ended),
        [
            "error",
            "outcome",
            "output",
            "project_id",
            "run_id",
            "status_url",
            "task_id"
        ]
    );
    let back: TaskStarted = serde_json::from_value(serde_json::to_value(&base).unwrap()).unwrap();
    assert_eq!(back, base, "no outcome decodes as none");
    assert_eq!(serde_json::from_value::<TaskStarted>(json).unwrap(), ended);
}

/// Events of the event stream carry their topic beside their own fields.
#[test]
fn topic_events_are_flat() {
    let event = OnTopic {
        topic: "run:r".to_string(),
        data: Resync {
            reason: "why".into(),
        },
    };
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json, serde_json::json!({"topic": "run:r", "reason": "why"}));
    assert_eq!(
        serde_json::from_value::<OnTopic<Resync>>(json).unwrap(),
        event
    );
}
