//! Checks of the runs root: exists, writable, free space, and whether the inotify limits
//! let the server's live index watch every directory under it.

use std::path::Path;

use super::report::{Level, Report};

const MIB: u64 = 1024 * 1024;
/// Below this much free space a run's logs may not fit: fail.
const FAIL_FREE_BYTES: u64 = 100 * MIB;
/// Below this much free space: warn.
const WARN_FREE_BYTES: u64 = 1024 * MIB;

/// Runs every root check.
pub fn check(root: &Path, report: &mut Report) {
    let shown = root.display();
    match std::fs::metadata(root) {
        Ok(meta) if meta.is_dir() => {
            report.add(
                "root",
                "root.exists",
                Level::Pass,
                format!("{shown} is a directory"),
            );
            writable(root, report);
        }
        Ok(_) => {
            report.add_hint(
                "root",
                "root.exists",
                Level::Fail,
                format!("{shown} exists but is not a directory"),
                "point --root, CONDUCTOR_ROOT or storage.runs_dir at a directory",
            );
            return;
        }
        Err(_) => match nearest_existing(root) {
            Some(ancestor) if is_writable_dir(&ancestor) => report.add(
                "root",
                "root.exists",
                Level::Warn,
                format!(
                    "{shown} does not exist yet; it is created on first use (in {})",
                    ancestor.display()
                ),
            ),
            Some(ancestor) => report.add_hint(
                "root",
                "root.exists",
                Level::Fail,
                format!(
                    "{shown} does not exist and {} is not writable",
                    ancestor.display()
                ),
                format!("mkdir -p {shown} as a user who may, and give it to this user"),
            ),
            None => report.add(
                "root",
                "root.exists",
                Level::Fail,
                format!("{shown} does not exist"),
            ),
        },
    }
    free_space(root, report);
    inotify(root, report);
}

fn writable(root: &Path, report: &mut Report) {
    match tempfile::Builder::new()
        .prefix(".doctor-")
        .tempfile_in(root)
    {
        Ok(_) => report.add(
            "root",
            "root.writable",
            Level::Pass,
            "a file could be created and removed",
        ),
        Err(err) => report.add_hint(
            "root",
            "root.writable",
            Level::Fail,
            format!("cannot create a file in {}: {err}", root.display()),
            "fix the owner or mode of the root (the server and run-agent write every run there)",
        ),
    }
}

fn nearest_existing(path: &Path) -> Option<std::path::PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    absolute
        .ancestors()
        .find(|a| a.is_dir())
        .map(Path::to_path_buf)
}

fn is_writable_dir(dir: &Path) -> bool {
    nix::unistd::access(
        dir,
        nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
    )
    .is_ok()
}

fn free_space(root: &Path, report: &mut Report) {
    let Some(dir) = nearest_existing(root) else {
        return;
    };
    let stat = match nix::sys::statvfs::statvfs(&dir) {
        Ok(stat) => stat,
        Err(err) => {
            report.add(
                "root",
                "root.free_space",
                Level::Warn,
                format!("cannot read the free space of {}: {err}", dir.display()),
            );
            return;
        }
    };
    let free = (stat.blocks_available() as u64).saturating_mul(stat.fragment_size() as u64);
    let inodes = stat.files_available() as u64;
    let message = format!(
        "{} MiB free, {inodes} inodes free on {}",
        free / MIB,
        dir.display()
    );
    let hint =
        "free some space: run-agent gc --older-than 7d --dry-run shows what retention would delete";
    if free < FAIL_FREE_BYTES {
        report.add_hint("root", "root.free_space", Level::Fail, message, hint);
    } else if free < WARN_FREE_BYTES || (stat.files() as u64 > 0 && inodes < 10_000) {
        report.add_hint("root", "root.free_space", Level::Warn, message, hint);
    } else {
        report.add("root", "root.free_space", Level::Pass, message);
    }
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The server's run index watches the root, each project, each task and each task's `runs/`
/// (plus the runs that are running): one inotify watch each.
fn inotify(root: &Path, report: &mut Report) {
    let Some(watches) = read_number("/proc/sys/fs/inotify/max_user_watches") else {
        report.add(
            "root",
            "root.inotify",
            Level::Pass,
            "no inotify limits to check on this system",
        );
        return;
    };
    let instances = read_number("/proc/sys/fs/inotify/max_user_instances").unwrap_or(0);
    let dirs = crate::api::index::structure_watch_count(root, &[]) as u64;
    let message = format!(
        "{dirs} directories watched by the server (root, projects, tasks, runs/); fs.inotify.max_user_watches = {watches}, max_user_instances = {instances}"
    );
    let hint = format!(
        "raise the limit (shared by all of this user's programs): sysctl -w fs.inotify.max_user_watches={} and persist it in /etc/sysctl.d/",
        (dirs * 4).max(524_288)
    );
    if dirs >= watches {
        report.add_hint(
            "root",
            "root.inotify",
            Level::Fail,
            format!("{message}: the server's live index cannot watch them all"),
            hint,
        );
    } else if dirs * 2 >= watches || instances < 8 {
        report.add_hint("root", "root.inotify", Level::Warn, message, hint);
    } else {
        report.add("root", "root.inotify", Level::Pass, message);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_the_directories_the_index_watches() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("p/t/runs/r1")).unwrap();
        std::fs::create_dir_all(dir.path().join("p/t/runs/r2")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("p"), dir.path().join("link")).unwrap();
        // root, p, p/t, p/t/runs: not the runs, not the symlink.
        assert_eq!(crate::api::index::structure_watch_count(dir.path(), &[]), 4);
    }
}
