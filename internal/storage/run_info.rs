//! `run-info.yaml`: the metadata of one run, in the exact key order of the Go reference
//!, with crash-safe full writes and locked read-modify-write updates.
//!
//! Unknown keys are preserved (written back after the known ones), so a newer writer's
//! fields survive an update by this version.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::yaml::{Mapping, Value};
use chrono::{DateTime, Utc};

use super::atomic::write_atomic;
use super::error::StorageError;
use super::lock::LockFile;
use super::paths::RUN_INFO_LOCK_FILE;
use super::time::{format_rfc3339_nano, parse_rfc3339, zero_time};
use super::usage::{format_usd, CostSource, Usage};
use crate::yaml::scalar as yaml_scalar;

/// How long an update waits for the run-info lock before failing.
pub const UPDATE_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// The life-cycle state of a run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// The agent process is running (`end_time` zero, `exit_code` -1).
    Running,
    /// The agent exited 0.
    Completed,
    /// The agent exited non-zero, timed out, or vanished.
    Failed,
    /// A user stopped the run.
    Stopped,
    /// The status is missing, not recognised, or run-info.yaml does not parse.
    Unknown,
}

impl RunStatus {
    /// The status as written in run-info.yaml.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Stopped => "stopped",
            RunStatus::Unknown => "unknown",
        }
    }

    /// Reads a status; anything unrecognised (including empty) is [`RunStatus::Unknown`].
    pub fn from_text(text: &str) -> RunStatus {
        match text.trim() {
            "running" => RunStatus::Running,
            "completed" => RunStatus::Completed,
            "failed" => RunStatus::Failed,
            "stopped" => RunStatus::Stopped,
            _ => RunStatus::Unknown,
        }
    }

    /// Whether the run has ended (completed, failed or stopped).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Stopped
        )
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The contents of a `run-info.yaml`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunInfo {
    /// Format version (1 for files written by a runner).
    pub version: i64,
    /// The run id.
    pub run_id: String,
    /// The run that spawned this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<String>,
    /// The previous run in the task's restart chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_run_id: Option<String>,
    /// Project id.
    pub project_id: String,
    /// Task id.
    pub task_id: String,
    /// Agent type (claude, codex, …).
    pub agent: String,
    /// `managed` or `external`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_ownership: Option<String>,
    /// Agent process id.
    pub pid: i64,
    /// Agent process group id.
    pub pgid: i64,
    /// When the run started (UTC).
    pub start_time: DateTime<Utc>,
    /// When the run ended; the zero time while running.
    pub end_time: DateTime<Utc>,
    /// Exit code; -1 while running.
    pub exit_code: i64,
    /// Life-cycle state.
    pub status: RunStatus,
    /// Working directory of the agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Absolute path of prompt.md.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_path: Option<String>,
    /// Absolute path of output.md.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_path: Option<String>,
    /// Absolute path of agent-stdout.txt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout_path: Option<String>,
    /// Absolute path of agent-stderr.txt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_path: Option<String>,
    /// The command line the agent was started with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commandline: Option<String>,
    /// Why the run failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_summary: Option<String>,
    /// Output of `<agent> --version` (always written, may be empty).
    pub agent_version: String,
    /// The agent's own session id, for resuming its conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_session_id: Option<String>,
    /// Start time of `pid` (clock ticks since boot, /proc), to detect pid reuse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid_start_time: Option<u64>,
    /// Position of this run in its task's restart chain (0 = first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_index: Option<u64>,
    /// The name the agent was selected by (a config key such as `long`, or a type name);
    /// `agent` holds its type. Resume runs the agent of this name again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    /// Tokens and cost the agent's stream reported (keys `model`, `input_tokens`,
    /// `cached_input_tokens`, `output_tokens`, `cost_usd`, `cost_source`; all optional).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Keys this version does not know, kept in file order and written back unchanged.
    #[serde(skip)]
    pub extra: Vec<(String, Value)>,
}

/// Why [`RunInfo::read_regular`] has no record.
#[derive(Debug, thiserror::Error)]
pub enum RecordReadError {
    /// There is no file at the path (or its directory is gone).
    #[error("{} is missing", super::paths::RUN_INFO_FILE)]
    Missing,
    /// Something other than a regular file is at the path.
    #[error("{} is not a regular file", super::paths::RUN_INFO_FILE)]
    NotRegular,
    /// It could not be read or parsed.
    #[error(transparent)]
    Storage(StorageError),
}

impl RunInfo {
    /// The process this record names (pid, process group, start time); whether it still
    /// runs is [`crate::process::Recorded::alive`].
    pub fn recorded_process(&self) -> crate::process::Recorded {
        crate::process::Recorded {
            pid: self.pid,
            pgid: self.pgid,
            start_time: self.pid_start_time,
        }
    }

    /// A new `running` record: version 1, zero end time, exit code -1.
    pub fn new_running(
        run_id: &str,
        project_id: &str,
        task_id: &str,
        agent: &str,
        start_time: DateTime<Utc>,
    ) -> Self {
        RunInfo {
            version: 1,
            run_id: run_id.to_string(),
            parent_run_id: None,
            previous_run_id: None,
            project_id: project_id.to_string(),
            task_id: task_id.to_string(),
            agent: agent.to_string(),
            process_ownership: None,
            pid: 0,
            pgid: 0,
            start_time,
            end_time: zero_time(),
            exit_code: -1,
            status: RunStatus::Running,
            cwd: None,
            prompt_path: None,
            output_path: None,
            stdout_path: None,
            stderr_path: None,
            commandline: None,
            error_summary: None,
            agent_version: String::new(),
            agent_session_id: None,
            pid_start_time: None,
            restart_index: None,
            agent_name: None,
            usage: None,
            extra: Vec::new(),
        }
    }

    /// The name the run's agent was selected by: `agent_name`, else (records written before
    /// it existed) the agent type.
    pub fn agent_name_or_type(&self) -> &str {
        nonempty(&self.agent_name).unwrap_or(&self.agent)
    }

    /// The usage record, created empty when there is none yet.
    pub fn usage_mut(&mut self) -> &mut Usage {
        self.usage.get_or_insert_with(Usage::default)
    }

    /// The end time, or `None` while it is the zero time.
    pub fn end_time_opt(&self) -> Option<DateTime<Utc>> {
        (!super::time::is_zero(&self.end_time)).then_some(self.end_time)
    }

    /// The start time, or `None` when it is the zero time.
    pub fn start_time_opt(&self) -> Option<DateTime<Utc>> {
        (!super::time::is_zero(&self.start_time)).then_some(self.start_time)
    }

    /// Serialises in the reference's key order, Go yaml.v3 style.
    pub fn to_yaml(&self) -> String {
        let mut out = String::with_capacity(1024);
        let mut line = |key: &str, value: String| {
            out.push_str(key);
            out.push_str(": ");
            out.push_str(&value);
            out.push('\n');
        };
        let s = |v: &str| yaml_scalar::string(v).into_owned();
        line("version", self.version.to_string());
        line("run_id", s(&self.run_id));
        if let Some(v) = nonempty(&self.parent_run_id) {
            line("parent_run_id", s(v));
        }
        if let Some(v) = nonempty(&self.previous_run_id) {
            line("previous_run_id", s(v));
        }
        line("project_id", s(&self.project_id));
        line("task_id", s(&self.task_id));
        line("agent", s(&self.agent));
        if let Some(v) = nonempty(&self.process_ownership) {
            line("process_ownership", s(v));
        }
        line("pid", self.pid.to_string());
        line("pgid", self.pgid.to_string());
        line("start_time", format_rfc3339_nano(&self.start_time));
        line("end_time", format_rfc3339_nano(&self.end_time));
        line("exit_code", self.exit_code.to_string());
        line("status", self.status.as_str().to_string());
        for (key, value) in [
            ("cwd", &self.cwd),
            ("prompt_path", &self.prompt_path),
            ("output_path", &self.output_path),
            ("stdout_path", &self.stdout_path),
            ("stderr_path", &self.stderr_path),
            ("commandline", &self.commandline),
            ("error_summary", &self.error_summary),
        ] {
            if let Some(v) = nonempty(value) {
                line(key, s(v));
            }
        }
        line("agent_version", s(&self.agent_version));
        if let Some(v) = nonempty(&self.agent_session_id) {
            line("agent_session_id", s(v));
        }
        if let Some(v) = self.pid_start_time {
            line("pid_start_time", v.to_string());
        }
        if let Some(v) = self.restart_index {
            line("restart_index", v.to_string());
        }
        if let Some(v) = nonempty(&self.agent_name) {
            line("agent_name", s(v));
        }
        if let Some(usage) = &self.usage {
            if let Some(v) = nonempty(&usage.model) {
                line("model", s(v));
            }
            line("input_tokens", usage.input_tokens.to_string());
            line("cached_input_tokens", usage.cached_input_tokens.to_string());
            line("output_tokens", usage.output_tokens.to_string());
            if let Some(cost) = usage.cost_usd {
                line("cost_usd", format_usd(cost));
            }
            if let Some(source) = usage.cost_source {
                line("cost_source", source.as_str().to_string());
            }
        }
        for (key, value) in &self.extra {
            let mut map = Mapping::new();
            map.insert(Value::String(key.clone()), value.clone());
            // Serialising a one-entry mapping of a parsed value cannot fail.
            if let Ok(text) = crate::yaml::to_string(&map) {
                out.push_str(&text);
            }
        }
        out
    }

    /// Parses run-info.yaml text. Missing keys take the reference's zero values; unknown
    /// keys are kept in [`RunInfo::extra`]. Errors name the key and the expected type.
    pub fn parse(text: &str) -> Result<RunInfo, String> {
        match super::run_info_fast::decode(text) {
            Some(info) => Ok(info),
            None => Self::parse_with_yaml(text),
        }
    }

    /// [`RunInfo::parse`] through the YAML parser (the fast decoder's fallback and its oracle).
    pub(crate) fn parse_with_yaml(text: &str) -> Result<RunInfo, String> {
        let doc: Value = crate::yaml::from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
        Self::from_document(doc)
    }

    /// The record a parsed document (YAML, or the JSON of the API) holds; the rules of
    /// [`RunInfo::parse`].
    fn from_document(doc: Value) -> Result<RunInfo, String> {
        let map = match doc {
            Value::Mapping(map) => map,
            Value::Null => Mapping::new(),
            other => {
                return Err(format!(
                    "expected a mapping of keys, found {}",
                    kind_of(&other)
                ))
            }
        };
        let mut info = RunInfo::new_running("", "", "", "", zero_time());
        info.version = 0;
        info.exit_code = 0;
        info.status = RunStatus::Unknown;
        for (key, value) in map {
            let Value::String(key) = key else {
                return Err(format!("key {key:?} is not a string"));
            };
            let field = Field {
                key: &key,
                value: &value,
            };
            match key.as_str() {
                "version" => info.version = field.int()?,
                "run_id" => info.run_id = field.string()?.trim().to_string(),
                "parent_run_id" => info.parent_run_id = field.opt_string()?,
                "previous_run_id" => info.previous_run_id = field.opt_string()?,
                "project_id" => info.project_id = field.string()?.trim().to_string(),
                "task_id" => info.task_id = field.string()?.trim().to_string(),
                "agent" => info.agent = field.string()?,
                "process_ownership" => info.process_ownership = field.opt_string()?,
                "pid" => info.pid = field.int()?,
                "pgid" => info.pgid = field.int()?,
                "start_time" => info.start_time = field.time()?,
                "end_time" => info.end_time = field.time()?,
                "exit_code" => info.exit_code = field.int()?,
                "status" => info.status = RunStatus::from_text(&field.string()?),
                "cwd" => info.cwd = field.opt_string()?,
                "prompt_path" => info.prompt_path = field.opt_string()?,
                "output_path" => info.output_path = field.opt_string()?,
                "stdout_path" => info.stdout_path = field.opt_string()?,
                "stderr_path" => info.stderr_path = field.opt_string()?,
                "commandline" => info.commandline = field.opt_string()?,
                "error_summary" => info.error_summary = field.opt_string()?,
                "agent_version" => info.agent_version = field.string()?,
                "agent_session_id" => info.agent_session_id = field.opt_string()?,
                "pid_start_time" => info.pid_start_time = Some(field.uint()?),
                "restart_index" => info.restart_index = Some(field.uint()?),
                "agent_name" => info.agent_name = field.opt_string()?,
                "model" => info.usage_mut().model = field.opt_string()?,
                "input_tokens" => info.usage_mut().input_tokens = field.uint()?,
                "cached_input_tokens" => info.usage_mut().cached_input_tokens = field.uint()?,
                "output_tokens" => info.usage_mut().output_tokens = field.uint()?,
                "cost_usd" => info.usage_mut().cost_usd = Some(field.float()?),
                "cost_source" => {
                    info.usage_mut().cost_source = CostSource::from_text(&field.string()?)
                }
                _ => info.extra.push((key.clone(), value.clone())),
            }
        }
        Ok(info)
    }

    /// [`RunInfo::read`] of a record that must be a regular file, with one open, one fstat
    /// and one read (listings read thousands of them): a symlink, FIFO or directory at
    /// `path` is [`RecordReadError::NotRegular`] (never followed, never blocked on).
    pub fn read_regular(path: &Path) -> Result<RunInfo, RecordReadError> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENOENT | libc::ENOTDIR) => RecordReadError::Missing,
                Some(libc::ELOOP) => RecordReadError::NotRegular,
                _ => RecordReadError::Storage(StorageError::io("read", path, e)),
            })?;
        let meta = file
            .metadata()
            .map_err(|e| RecordReadError::Storage(StorageError::io("read", path, e)))?;
        if !meta.is_file() {
            return Err(RecordReadError::NotRegular);
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
        (&file)
            .take(meta.len())
            .read_to_end(&mut bytes)
            .map_err(|e| RecordReadError::Storage(StorageError::io("read", path, e)))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            let invalid = std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            );
            RecordReadError::Storage(StorageError::io("read", path, invalid))
        })?;
        let mut info = RunInfo::parse(&text).map_err(|message| {
            RecordReadError::Storage(StorageError::Parse {
                path: path.to_path_buf(),
                message,
            })
        })?;
        info.hydrate_from_path(path);
        Ok(info)
    }

    /// Reads `path`, filling an empty run/project/task id from the directory layout
    /// `<root>/<project>/<task>/runs/<run>/run-info.yaml`.
    pub fn read(path: &Path) -> Result<RunInfo, StorageError> {
        let text = std::fs::read_to_string(path).map_err(|e| StorageError::io("read", path, e))?;
        let mut info = RunInfo::parse(&text).map_err(|message| StorageError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        info.hydrate_from_path(path);
        Ok(info)
    }

    fn hydrate_from_path(&mut self, path: &Path) {
        let names: Vec<String> = path
            .ancestors()
            .skip(1)
            .take(4)
            .map(|p| {
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect();
        // names = [run, "runs", task, project]
        if self.run_id.is_empty() {
            if let Some(run) = names.first() {
                self.run_id = run.clone();
            }
        }
        if names.get(1).map(String::as_str) == Some("runs") {
            if self.task_id.is_empty() {
                self.task_id = names.get(2).cloned().unwrap_or_default();
            }
            if self.project_id.is_empty() {
                self.project_id = names.get(3).cloned().unwrap_or_default();
            }
        }
    }

    /// Atomically writes this record to `path` (temp + fsync + rename + dir fsync) under
    /// the run-info lock, so it never interleaves with an update.
    pub fn write(&self, path: &Path) -> Result<(), StorageError> {
        let _lock = LockFile::acquire(&lock_path(path), UPDATE_LOCK_TIMEOUT)?;
        write_atomic(path, self.to_yaml().as_bytes())
            .map_err(|e| StorageError::io("write", path, e))
    }

    /// Locked read-modify-write: reads `path`, applies `change`, writes it back atomically.
    /// Waits at most `timeout` for the lock. `change` may return an error to abort.
    pub fn update<E>(
        path: &Path,
        timeout: Duration,
        change: impl FnOnce(&mut RunInfo) -> Result<(), E>,
    ) -> Result<Result<RunInfo, E>, StorageError> {
        let _lock = LockFile::acquire(&lock_path(path), timeout)?;
        let mut info = RunInfo::read(path)?;
        if let Err(err) = change(&mut info) {
            return Ok(Err(err));
        }
        write_atomic(path, info.to_yaml().as_bytes())
            .map_err(|e| StorageError::io("write", path, e))?;
        Ok(Ok(info))
    }
}

/// The API's JSON form (what `Serialize` writes) read back with the rules of
/// [`RunInfo::parse`], so clients decode `info` of a run into the same type.
impl<'de> serde::Deserialize<'de> for RunInfo {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let doc = Value::deserialize(deserializer)?;
        RunInfo::from_document(doc).map_err(serde::de::Error::custom)
    }
}

fn lock_path(run_info_path: &Path) -> std::path::PathBuf {
    run_info_path.with_file_name(RUN_INFO_LOCK_FILE)
}

fn nonempty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// One key/value of the document, with typed accessors whose errors name the key.
struct Field<'a> {
    key: &'a str,
    value: &'a Value,
}

impl Field<'_> {
    fn wrong(&self, expected: &str) -> String {
        format!(
            "key `{}`: expected {expected}, found {}",
            self.key,
            kind_of(self.value)
        )
    }

    fn int(&self) -> Result<i64, String> {
        match self.value {
            Value::Number(n) => n.as_i64().ok_or_else(|| self.wrong("an integer")),
            Value::Null => Ok(0),
            _ => Err(self.wrong("an integer")),
        }
    }

    fn uint(&self) -> Result<u64, String> {
        match self.value {
            Value::Number(n) => n
                .as_u64()
                .ok_or_else(|| self.wrong("a non-negative integer")),
            _ => Err(self.wrong("a non-negative integer")),
        }
    }

    fn float(&self) -> Result<f64, String> {
        match self.value {
            Value::Number(n) => n
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .ok_or_else(|| self.wrong("a non-negative number")),
            _ => Err(self.wrong("a non-negative number")),
        }
    }

    fn string(&self) -> Result<String, String> {
        match self.value {
            Value::String(s) => Ok(s.clone()),
            Value::Null => Ok(String::new()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(self.wrong("a string")),
        }
    }

    fn opt_string(&self) -> Result<Option<String>, String> {
        let s = self.string()?;
        Ok((!s.is_empty()).then_some(s))
    }

    fn time(&self) -> Result<DateTime<Utc>, String> {
        let text = self.string()?;
        if text.is_empty() {
            return Ok(zero_time());
        }
        parse_rfc3339(&text).map_err(|e| {
            format!(
                "key `{}`: {text:?} is not an RFC3339 time ({e}); expected e.g. 2026-02-23T20:48:58Z",
                self.key
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GO_FIXTURE: &str = include_str!("../../tests/fixtures/run-info/go-completed.yaml");
    const GO_RUNNING: &str = include_str!("../../tests/fixtures/run-info/go-running.yaml");

    #[test]
    fn read_regular_reads_what_read_reads_and_refuses_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("p/t/runs/r1");
        std::fs::create_dir_all(&run).unwrap();
        let path = run.join("run-info.yaml");
        std::fs::write(&path, GO_FIXTURE).unwrap();
        let fast = RunInfo::read_regular(&path).unwrap();
        assert_eq!(
            format!("{fast:?}"),
            format!("{:?}", RunInfo::read(&path).unwrap())
        );

        let missing = run.join("nope.yaml");
        assert!(matches!(
            RunInfo::read_regular(&missing),
            Err(RecordReadError::Missing)
        ));
        let link = run.join("link.yaml");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(matches!(
            RunInfo::read_regular(&link),
            Err(RecordReadError::NotRegular)
        ));
        let fifo = run.join("fifo.yaml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(matches!(
            RunInfo::read_regular(&fifo),
            Err(RecordReadError::NotRegular)
        ));
        assert!(matches!(
            RunInfo::read_regular(&run),
            Err(RecordReadError::NotRegular)
        ));
        std::fs::write(&missing, "status: [").unwrap();
        assert!(matches!(
            RunInfo::read_regular(&missing),
            Err(RecordReadError::Storage(StorageError::Parse { .. }))
        ));
    }

    #[test]
    fn go_fixture_round_trips_byte_for_byte() {
        for fixture in [GO_FIXTURE, GO_RUNNING] {
            let info = RunInfo::parse(fixture).unwrap();
            assert_eq!(info.to_yaml(), fixture);
        }
    }

    #[test]
    fn the_api_json_form_decodes_back() {
        for fixture in [GO_FIXTURE, GO_RUNNING] {
            let mut info = RunInfo::parse(fixture).unwrap();
            info.extra.clear(); // not sent
            info.usage_mut().input_tokens = 7;
            let json = serde_json::to_string(&info).unwrap();
            let back: RunInfo = serde_json::from_str(&json).unwrap();
            assert_eq!(back, info, "{json}");
        }
        let err = serde_json::from_str::<RunInfo>(r#"{"pid": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("`pid`"), "{err}");
    }

    #[test]
    fn go_fixture_fields() {
        let info = RunInfo::parse(GO_FIXTURE).unwrap();
        assert_eq!(info.version, 1);
        assert_eq!(info.run_id, "20260223-2048580000-66788-1");
        assert_eq!(
            info.parent_run_id.as_deref(),
            Some("20260223-2047120000-66700-1")
        );
        assert_eq!(info.status, RunStatus::Completed);
        assert_eq!(info.exit_code, 0);
        assert_eq!(info.agent_version, "");
        let running = RunInfo::parse(GO_RUNNING).unwrap();
        assert_eq!(running.status, RunStatus::Running);
        assert!(running.end_time_opt().is_none());
        assert_eq!(running.exit_code, -1);
    }

    #[test]
    fn unknown_keys_are_preserved_and_status_unknown_is_not_fatal() {
        let text = format!("{GO_RUNNING}future_key: {{a: 1}}\nanother: x\n");
        let mut info = RunInfo::parse(&text).unwrap();
        info.status = RunStatus::Failed;
        let again = RunInfo::parse(&info.to_yaml()).unwrap();
        assert_eq!(again.extra, info.extra);
        assert_eq!(again.extra.len(), 2);
        let odd = RunInfo::parse("status: exploded\n").unwrap();
        assert_eq!(odd.status, RunStatus::Unknown);
    }

    #[test]
    fn wrong_types_name_the_key() {
        let err = RunInfo::parse("pid: [1]\n").unwrap_err();
        assert!(err.contains("`pid`"), "{err}");
        let err = RunInfo::parse("start_time: yesterday\n").unwrap_err();
        assert!(err.contains("start_time"), "{err}");
        assert!(RunInfo::parse("- a\n").is_err());
        assert!(RunInfo::parse("a: [\n").is_err());
    }

    #[test]
    fn hydrates_ids_from_path() {
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("proj/task-1/runs/r1");
        std::fs::create_dir_all(&run_dir).unwrap();
        let path = run_dir.join("run-info.yaml");
        std::fs::write(&path, "status: running\n").unwrap();
        let info = RunInfo::read(&path).unwrap();
        assert_eq!(
            (
                info.run_id.as_str(),
                info.task_id.as_str(),
                info.project_id.as_str()
            ),
            ("r1", "task-1", "proj")
        );
    }

    #[test]
    fn update_is_read_modify_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run-info.yaml");
        let info = RunInfo::new_running("r", "p", "t", "claude", Utc::now());
        info.write(&path).unwrap();
        let updated = RunInfo::update(&path, UPDATE_LOCK_TIMEOUT, |i| {
            i.status = RunStatus::Completed;
            i.exit_code = 0;
            Ok::<(), ()>(())
        })
        .unwrap()
        .unwrap();
        assert_eq!(RunInfo::read(&path).unwrap(), updated);
        let aborted = RunInfo::update(&path, UPDATE_LOCK_TIMEOUT, |_| Err("no")).unwrap();
        assert_eq!(aborted, Err("no"));
    }
}
