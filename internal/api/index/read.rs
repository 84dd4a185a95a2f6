//! Reading run directories into compact index records: the whole tree (in parallel, skipping
//! files whose identity is unchanged) or one run directory.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::store::{FileId, Run};
use crate::storage::ids::{validate_id, IdKind};
use crate::storage::paths::{RUNS_DIR, RUN_INFO_FILE};
use crate::storage::scan::{list_projects, list_tasks, run_names};
use crate::storage::RunInfo;

/// A run directory found by a scan; `run` is `None` when its run-info.yaml is unchanged.
#[derive(Debug)]
pub(super) struct Found {
    pub runs_dir: Arc<Path>,
    pub run_id: String,
    pub run: Option<Run>,
}

/// Whether `name` is a valid run id (the only directories indexed as runs).
pub(super) fn is_run_id(name: &str) -> bool {
    validate_id(IdKind::Run, name).is_ok()
}

/// The project and task a run is listed under: from the path `<project>/<task>/runs/<run>`,
/// or for a flat extra-root run from its record (`None` when the record names none).
pub(super) fn place(runs_dir: &Path, run: &Run) -> Option<(String, String)> {
    if let Some((p, t)) = &run.named {
        return Some((p.to_string(), t.to_string()));
    }
    let task_dir = runs_dir.parent()?;
    let name = |p: &Path| p.file_name()?.to_str().map(str::to_string);
    Some((name(task_dir.parent()?)?, name(task_dir)?))
}

/// Every run of the root (both layouts) and of the flat extra roots. `known` gives the file
/// identity already indexed for a run; such runs are only `stat`ed, and re-read when it
/// changed. Task directories are read by several threads.
pub(super) fn scan(
    root: &Path,
    extra: &[PathBuf],
    known: impl Fn(&Path, &str) -> Option<FileId> + Sync,
) -> Vec<Found> {
    let mut runs_dirs: Vec<(Arc<Path>, bool)> = Vec::new();
    for project in list_projects(root) {
        for task in list_tasks(&project) {
            runs_dirs.push((Arc::from(task.dir.join(RUNS_DIR)), false));
        }
    }
    for e in extra {
        runs_dirs.push((Arc::from(e.join(RUNS_DIR)), true));
    }
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                // A scan in the background must not slow the server's start or its answers
                // on a machine with few cores.
                crate::process::lower_thread_priority(10);
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((runs_dir, flat)) = runs_dirs.get(i) else {
                        break;
                    };
                    for run_id in run_names(runs_dir) {
                        let dir = runs_dir.join(&run_id);
                        let run = match known(runs_dir, &run_id) {
                            Some(id) if file_id(&dir) == Some(id) => None,
                            _ => read_run(&dir, *flat),
                        };
                        mine.push(Found {
                            runs_dir: runs_dir.clone(),
                            run_id,
                            run,
                        });
                    }
                }
                out.lock().unwrap_or_else(|p| p.into_inner()).extend(mine);
            });
        }
    });
    out.into_inner().unwrap_or_else(|p| p.into_inner())
}

fn file_id(dir: &Path) -> Option<FileId> {
    std::fs::symlink_metadata(dir.join(RUN_INFO_FILE))
        .ok()
        .filter(|m| m.is_file())
        .map(|m| FileId::of(&m))
}

/// Reads one run directory: `None` only for a flat run whose record names no project and
/// task (it cannot be placed). A missing or broken run-info.yaml gives an `unknown` run.
pub(super) fn read_run(dir: &Path, flat: bool) -> Option<Run> {
    let mut run = Run::unknown();
    let path = dir.join(RUN_INFO_FILE);
    let Ok(mut file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
    else {
        return (!flat).then_some(run);
    };
    let Ok(meta) = file.metadata() else {
        return (!flat).then_some(run);
    };
    if !meta.is_file() {
        return (!flat).then_some(run);
    }
    run.file = Some(FileId::of(&meta));
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    if (&mut file)
        .take(meta.len())
        .read_to_end(&mut bytes)
        .is_err()
    {
        return (!flat).then_some(run);
    }
    let info = String::from_utf8(bytes)
        .ok()
        .and_then(|text| RunInfo::parse(&text).ok());
    if let Some(info) = info {
        fill(&mut run, &info);
        if flat {
            let (p, t) = (info.project_id.trim(), info.task_id.trim());
            if validate_id(IdKind::Project, p).is_err() || validate_id(IdKind::Task, t).is_err() {
                return None;
            }
            run.named = Some((Arc::from(p), Arc::from(t)));
        }
    } else if flat {
        return None;
    }
    Some(run)
}

fn fill(run: &mut Run, info: &RunInfo) {
    let ns = |t: &chrono::DateTime<chrono::Utc>| t.timestamp_nanos_opt().unwrap_or(0).max(0);
    run.status = info.status;
    run.start_ns = info.start_time_opt().map_or(0, |t| ns(&t));
    run.end_ns = info.end_time_opt().map_or(0, |t| ns(&t));
    run.pid = i32::try_from(info.pid).unwrap_or(0);
    run.pgid = i32::try_from(info.pgid).unwrap_or(0);
    run.pid_start_time = info.pid_start_time;
    run.agent_name = info.agent_name.as_deref().map(Arc::from);
    run.agent = (!info.agent.is_empty()).then(|| Arc::from(info.agent.as_str()));
    run.usage = info.usage.clone().map(Box::new);
}
