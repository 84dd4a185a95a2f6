//! A task's spending limit: `budget: {max_cost_usd, max_tokens}` in its TASK-CONFIG.yaml (set
//! by `--max-cost` / `--max-tokens` or the API, kept by a resume), else the config's
//! `defaults.budget`. The task's total is the sum of the usage of every run in its `runs/`
//! (child runs live there too). A run's supervisor checks it on every usage update and stops
//! the task's running runs when it is passed; the task loop checks it before every run and
//! does not restart past it. The first check that finds it passed writes `BUDGET-EXCEEDED`
//! (the figures) into the task dir, posts them on the task bus and sends the
//! `budget_exceeded` webhook event; a new loop of the task removes the file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::bus::{self, AppendOptions, NewMessage};
use crate::config::Budget;
use crate::storage::ids::{ProjectId, RunId, TaskId};
use crate::storage::paths::{RUNS_DIR, RUN_INFO_FILE, TASK_BUS_FILE, TASK_CONFIG_FILE};
use crate::storage::usage::display_usd;
use crate::storage::{scan, RunInfo, RunStatus, UsageTotals};

use super::error::RunnerError;
use super::stop::{self, StopOptions};
use super::task_config;
use super::webhook::{self, WebhookTarget};

/// Key of the budget in TASK-CONFIG.yaml.
const KEY: &str = "budget";
/// The file a task dir gets when its budget was passed (holds the figures).
pub const EXCEEDED_FILE: &str = "BUDGET-EXCEEDED";

/// A budget that was passed, with the figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Exceeded {
    /// The task's limit.
    pub budget: Budget,
    /// The task's total when it was found passed.
    pub used: UsageTotals,
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(max) = self.budget.max_cost_usd {
            parts.push(format!(
                "cost ${} of max ${}",
                display_usd(self.used.cost_usd),
                display_usd(max)
            ));
        }
        if let Some(max) = self.budget.max_tokens {
            parts.push(format!("tokens {} of max {max}", self.used.total_tokens));
        }
        write!(f, "budget exceeded: {}", parts.join(", "))
    }
}

impl Exceeded {
    /// The figures as JSON (for the webhook and the API).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "max_cost_usd": self.budget.max_cost_usd,
            "max_tokens": self.budget.max_tokens,
            "cost_usd": self.used.cost_usd,
            "total_tokens": self.used.total_tokens,
            "summary": self.to_string(),
        })
    }
}

/// The budget saved in the TASK-CONFIG.yaml of `task_dir` (unset figures when none).
pub fn read(task_dir: &Path) -> Result<Budget, RunnerError> {
    let Some(value) = task_config::read_key(task_dir, KEY)? else {
        return Ok(Budget::default());
    };
    let path = task_dir.join(TASK_CONFIG_FILE);
    let bad = |message: String| RunnerError::invalid(path.display().to_string(), message);
    let budget: Budget = crate::yaml::from_value(value).map_err(|e| {
        bad(format!(
            "`{KEY}` must be a map with max_cost_usd (US dollars) and/or max_tokens: {e}"
        ))
    })?;
    validate(&budget, KEY).map_err(|e| bad(e.to_string()))?;
    Ok(budget)
}

/// Rejects figures that are not positive; errors name `field` (`--max-cost`, `max_cost_usd`…).
pub fn validate(budget: &Budget, field: &str) -> Result<(), RunnerError> {
    if let Some(cost) = budget.max_cost_usd {
        if !cost.is_finite() || cost <= 0.0 {
            return Err(RunnerError::invalid(
                format!("{field} max cost"),
                format!("{cost} is not a positive number of US dollars"),
            ));
        }
    }
    if budget.max_tokens == Some(0) {
        return Err(RunnerError::invalid(
            format!("{field} max tokens"),
            "0 is not a positive number of tokens",
        ));
    }
    Ok(())
}

/// Saves the figures `change` sets into TASK-CONFIG.yaml (figures it leaves unset keep their
/// saved value; other keys of the file are kept).
pub fn write(task_dir: &Path, change: &Budget) -> Result<(), RunnerError> {
    if !change.is_set() {
        return Ok(());
    }
    let saved = read(task_dir).unwrap_or_default();
    let merged = Budget {
        max_cost_usd: change.max_cost_usd.or(saved.max_cost_usd),
        max_tokens: change.max_tokens.or(saved.max_tokens),
    };
    let value = crate::yaml::to_value(merged).map_err(|e| {
        RunnerError::invalid(
            task_dir.join(TASK_CONFIG_FILE).display().to_string(),
            e.to_string(),
        )
    })?;
    task_config::write_key(task_dir, KEY, Some(value))
}

/// The task's budget: its own figures, each falling back to `default` (`defaults.budget`).
pub fn effective(task_dir: &Path, default: &Budget) -> Result<Budget, RunnerError> {
    let own = read(task_dir)?;
    Ok(Budget {
        max_cost_usd: own.max_cost_usd.or(default.max_cost_usd),
        max_tokens: own.max_tokens.or(default.max_tokens),
    })
}

/// The sum of the usage of every run of the task in `task_dir`.
pub fn task_usage(task_dir: &Path) -> UsageTotals {
    let runs_dir = task_dir.join(RUNS_DIR);
    let mut totals = UsageTotals::default();
    for name in scan::run_names(&runs_dir) {
        if let Ok(info) = RunInfo::read(&runs_dir.join(name).join(RUN_INFO_FILE)) {
            if let Some(usage) = &info.usage {
                totals.add(usage);
            }
        }
    }
    totals
}

/// Whether `used` passes `budget` (strictly more than a limit).
pub fn check(budget: &Budget, used: &UsageTotals) -> Option<Exceeded> {
    let over_cost = budget.max_cost_usd.is_some_and(|max| used.cost_usd > max);
    let over_tokens = budget.max_tokens.is_some_and(|max| used.total_tokens > max);
    (over_cost || over_tokens).then(|| Exceeded {
        budget: *budget,
        used: used.clone(),
    })
}

/// The task in `task_dir` against its budget (`None` when unset or not passed).
pub fn check_task(task_dir: &Path, default: &Budget) -> Result<Option<Exceeded>, RunnerError> {
    let budget = effective(task_dir, default)?;
    if !budget.is_set() {
        return Ok(None);
    }
    Ok(check(&budget, &task_usage(task_dir)))
}

/// Records `exceeded` in the task dir; `true` for the first caller (who then reports it),
/// `false` when it was recorded already.
pub fn mark(task_dir: &Path, exceeded: &Exceeded) -> bool {
    use std::io::Write;
    let path = task_dir.join(EXCEEDED_FILE);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(mut file) => {
            let _ = writeln!(file, "{exceeded}");
            true
        }
        Err(_) => false,
    }
}

/// What `BUDGET-EXCEEDED` of the task says, if the budget was found passed.
pub fn marked(task_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(task_dir.join(EXCEEDED_FILE)).ok()?;
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

/// Forgets an earlier excess (a new loop of the task checks again).
pub fn unmark(task_dir: &Path) {
    let _ = std::fs::remove_file(task_dir.join(EXCEEDED_FILE));
}

/// The runs of the task in `task_dir` whose record says `running`.
fn running_runs(task_dir: &Path) -> Vec<PathBuf> {
    let runs_dir = task_dir.join(RUNS_DIR);
    scan::run_names(&runs_dir)
        .into_iter()
        .map(|name| runs_dir.join(name))
        .filter(|dir| {
            RunInfo::read(&dir.join(RUN_INFO_FILE)).is_ok_and(|i| i.status == RunStatus::Running)
        })
        .collect()
}

/// Marks the run in `run_dir` (and its task) as stopped and sends its agent's group SIGTERM,
/// without waiting: the run's own supervisor records the end.
fn request_stop(task_dir: &Path, run_dir: &Path) {
    let marked = stop::request(run_dir).and_then(|()| stop::request(task_dir));
    if let Err(err) = marked {
        tracing::warn!("cannot mark {} as stopped: {err}", run_dir.display());
    }
    let pgid = RunInfo::read(&run_dir.join(RUN_INFO_FILE)).map_or(0, |i| i.pgid);
    if pgid > 1 {
        if let Err(err) = crate::process::signal_group(pgid, nix::sys::signal::Signal::SIGTERM) {
            tracing::debug!("cannot signal process group {pgid}: {err}");
        }
    }
}

/// Reports a budget found passed: once per excess (see [`mark`]), an `ERROR` with the
/// figures on the task bus (from `run`, when given) and the `budget_exceeded` webhook event.
pub fn report(
    task_dir: &Path,
    exceeded: &Exceeded,
    run: Option<&RunInfo>,
    webhook: Option<&WebhookTarget>,
) {
    if !mark(task_dir, exceeded) {
        return;
    }
    let task_bus = task_dir.join(TASK_BUS_FILE);
    let ids = task_dir
        .file_name()
        .zip(task_dir.parent().and_then(Path::file_name))
        .and_then(|(t, p)| {
            Some((
                ProjectId::parse(&p.to_string_lossy()).ok()?,
                TaskId::parse(&t.to_string_lossy()).ok()?,
            ))
        });
    if let Some((project, task)) = ids {
        let mut msg = NewMessage::new("ERROR", project)
            .task(task)
            .body(format!("{exceeded}; stopping the task"));
        msg.run_id = run.and_then(|r| RunId::parse(&r.run_id).ok());
        if let Err(err) = bus::append(&task_bus, &msg, &AppendOptions::default()) {
            tracing::warn!("cannot post the budget excess: {err}");
        }
    }
    if let (Some(target), Some(info)) = (webhook, run) {
        if let Err(err) =
            webhook::deliver_budget_exceeded(target, info, exceeded.to_json(), &task_bus)
        {
            tracing::warn!("{err}");
        }
    }
}

/// The budget check of one run's supervisor: on every usage update (and once more with the
/// final record) the task's total is compared with its budget; the first time it is passed
/// while the run is live, every running run of the task gets the normal graceful stop.
#[derive(Debug)]
pub struct Guard<'a> {
    task_dir: PathBuf,
    info_path: PathBuf,
    default: Budget,
    webhook: Option<&'a WebhookTarget>,
    tripped: Mutex<Option<String>>,
}

impl<'a> Guard<'a> {
    /// The guard of the run in `run_dir` (`<task>/runs/<run>`); `default` is
    /// `defaults.budget` of the run's config.
    pub fn new(run_dir: &Path, default: Budget, webhook: Option<&'a WebhookTarget>) -> Self {
        let task_dir = run_dir
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Guard {
            task_dir,
            info_path: run_dir.join(RUN_INFO_FILE),
            default,
            webhook,
            tripped: Mutex::new(None),
        }
    }

    /// Checks the task's total; when it passed the budget, every running run of the task
    /// gets the graceful stop. `live`: this run's supervisor goes on (so it can see the stops
    /// through, with SIGKILL after the grace period); otherwise the stops are requested and
    /// SIGTERM sent before this returns (the process is about to exit).
    pub fn check(&self, live: bool) {
        if self.tripped().is_some() {
            return;
        }
        let exceeded = match check_task(&self.task_dir, &self.default) {
            Ok(Some(exceeded)) => exceeded,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!("cannot check the task's budget: {err}");
                return;
            }
        };
        *self.tripped.lock().unwrap_or_else(PoisonError::into_inner) = Some(exceeded.to_string());
        tracing::warn!(task = %self.task_dir.display(), "{exceeded}");
        let info = RunInfo::read(&self.info_path).ok();
        report(&self.task_dir, &exceeded, info.as_ref(), self.webhook);
        for run_dir in running_runs(&self.task_dir) {
            if live {
                let spawned = std::thread::Builder::new()
                    .name("budget-stop".into())
                    .spawn(move || {
                        let opts = StopOptions {
                            grace: stop::DEFAULT_GRACE,
                            force: false,
                        };
                        if let Err(err) = stop::stop_run(&run_dir, opts) {
                            tracing::debug!("budget stop of {}: {err}", run_dir.display());
                        }
                    });
                if let Err(err) = spawned {
                    tracing::warn!("cannot start a thread to stop a run: {err}");
                }
            } else {
                request_stop(&self.task_dir, &run_dir);
            }
        }
    }

    /// The excess this guard found (its summary), if any.
    pub fn tripped(&self) -> Option<String> {
        self.tripped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_figures_merge_and_other_keys_stay() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(TASK_CONFIG_FILE),
            "depends_on: [a]\nowner: me\n",
        )
        .unwrap();
        assert_eq!(read(dir.path()).unwrap(), Budget::default());
        write(
            dir.path(),
            &Budget {
                max_cost_usd: Some(1.5),
                max_tokens: None,
            },
        )
        .unwrap();
        write(
            dir.path(),
            &Budget {
                max_cost_usd: None,
                max_tokens: Some(1000),
            },
        )
        .unwrap();
        let saved = read(dir.path()).unwrap();
        assert_eq!(saved.max_cost_usd, Some(1.5));
        assert_eq!(saved.max_tokens, Some(1000));
        let text = std::fs::read_to_string(dir.path().join(TASK_CONFIG_FILE)).unwrap();
        assert!(
            text.contains("owner: me") && text.contains("depends_on"),
            "{text}"
        );
        let default = Budget {
            max_cost_usd: Some(9.0),
            max_tokens: Some(5),
        };
        assert_eq!(effective(dir.path(), &default).unwrap(), saved);
        std::fs::write(dir.path().join(TASK_CONFIG_FILE), "budget: 3\n").unwrap();
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("budget"), "{err}");
    }

    #[test]
    fn passing_a_limit_is_exceeding_it() {
        let budget = Budget {
            max_cost_usd: Some(0.01),
            max_tokens: Some(100),
        };
        let mut used = UsageTotals {
            cost_usd: 0.01,
            total_tokens: 100,
            ..UsageTotals::default()
        };
        assert_eq!(check(&budget, &used), None);
        used.cost_usd = 0.0123;
        let exceeded = check(&budget, &used).unwrap();
        assert_eq!(
            exceeded.to_string(),
            "budget exceeded: cost $0.0123 of max $0.01, tokens 100 of max 100"
        );
        assert_eq!(check(&Budget::default(), &used), None);
        let dir = tempfile::tempdir().unwrap();
        assert!(mark(dir.path(), &exceeded));
        assert!(!mark(dir.path(), &exceeded));
        assert!(marked(dir.path()).unwrap().starts_with("budget exceeded"));
        unmark(dir.path());
        assert_eq!(marked(dir.path()), None);
    }
}
