//! Running a binary once with a deadline and collecting what it printed: the `--version`
//! checks of `validate`, of a self-update candidate and of a run's agent CLI.
//!
//! The binary runs in a process group of its own with stdin closed; stdout and stderr are
//! read while it runs (so a chatty binary never blocks on a full pipe). On the deadline the
//! whole group is killed (a wrapper script's children too) and reaped.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::group::signal_group;

/// At most this much of each stream is kept (a version line is short).
const KEEP_BYTES: u64 = 64 * 1024;
const POLL: Duration = Duration::from_millis(20);
/// How long to wait for the output pipes to close once the binary exited.
const DRAIN: Duration = Duration::from_secs(2);

/// What a probed binary printed, and how it ended.
#[derive(Debug, Clone)]
pub struct ProbeOutput {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output (lossy UTF-8).
    pub stdout: String,
    /// Its standard error (lossy UTF-8).
    pub stderr: String,
}

impl ProbeOutput {
    /// The first non-empty line of stdout, else of stderr (trimmed).
    pub fn first_line(&self) -> Option<&str> {
        first_line(&self.stdout).or_else(|| first_line(&self.stderr))
    }
}

/// The first non-empty line of `text`, trimmed.
pub fn first_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| !l.is_empty())
}

/// Why a probe gave no output.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The binary could not be started.
    #[error("cannot start {}: {source}", program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Waiting for it failed.
    #[error("cannot wait for {}: {source}", program.display())]
    Wait {
        /// The program.
        program: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It did not exit before the deadline (it was killed).
    #[error("{} did not finish within {timeout:?}", program.display())]
    Timeout {
        /// The program.
        program: PathBuf,
        /// The deadline it missed.
        timeout: Duration,
    },
}

/// Runs `cmd` (program, arguments and environment as the caller set them) with stdin closed,
/// waits up to `timeout`, and returns what it printed. See the module doc.
pub fn probe(mut cmd: Command, timeout: Duration) -> Result<ProbeOutput, ProbeError> {
    let program = PathBuf::from(cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|source| ProbeError::Spawn {
            program: program.clone(),
            source,
        })?;
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() >= timeout => {
                kill(&mut child);
                return Err(ProbeError::Timeout { program, timeout });
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(source) => {
                kill(&mut child);
                return Err(ProbeError::Wait { program, source });
            }
        }
    };
    // Children it left behind may hold the pipes open; they get a moment, then the group
    // is killed so the readers finish.
    let take = |rx: &Receiver<Vec<u8>>| {
        rx.recv_timeout(DRAIN).or_else(|_| {
            let _ = signal_group(i64::from(child.id()), Signal::SIGKILL);
            rx.recv_timeout(DRAIN)
        })
    };
    let text = |bytes: Result<Vec<u8>, _>| {
        String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned()
    };
    Ok(ProbeOutput {
        status,
        stdout: text(take(&stdout)),
        stderr: text(take(&stderr)),
    })
}

/// Kills the child's group (and the child, should the group be gone) and reaps the child.
fn kill(child: &mut Child) {
    let _ = signal_group(i64::from(child.id()), Signal::SIGKILL);
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads a pipe to its end on a thread of its own; the bytes (at most [`KEEP_BYTES`], the
/// rest is read and dropped) arrive on the returned channel.
fn collect(pipe: Option<impl Read + Send + 'static>) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    match pipe {
        None => {
            let _ = tx.send(Vec::new());
        }
        Some(pipe) => {
            std::thread::spawn(move || {
                let mut pipe = pipe;
                let mut kept = Vec::new();
                let _ = (&mut pipe).take(KEEP_BYTES).read_to_end(&mut kept);
                let _ = std::io::copy(&mut pipe, &mut std::io::sink());
                let _ = tx.send(kept);
            });
        }
    }
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn collects_both_streams_and_the_status() {
        let out = probe(
            sh("echo; echo ' tool 1.2 '; echo warn >&2; exit 3"),
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.first_line(), Some("tool 1.2"));
        assert_eq!(out.stderr, "warn\n");
        let out = probe(sh("echo only-stderr >&2"), Duration::from_secs(60)).unwrap();
        assert!(out.status.success());
        assert_eq!(out.first_line(), Some("only-stderr"));
    }

    #[test]
    fn a_large_output_does_not_block_the_binary() {
        let out = probe(
            sh("head -c 1000000 /dev/zero | tr '\\0' x; echo"),
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout.len() as u64, KEEP_BYTES);
    }

    #[test]
    fn a_hanging_binary_is_killed_with_its_children_at_the_deadline() {
        let marker = tempfile::tempdir().unwrap();
        let pidfile = marker.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let err = probe(sh(&script), Duration::from_secs(3)).unwrap_err();
        assert!(matches!(err, ProbeError::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("did not finish"), "{err}");
        let grandchild: i64 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let start = Instant::now();
        while super::super::pid_alive(grandchild) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the grandchild survived"
            );
            std::thread::sleep(POLL);
        }
    }

    #[test]
    fn a_missing_binary_is_a_spawn_error() {
        let err = probe(Command::new("/nonexistent/tool"), Duration::from_secs(5)).unwrap_err();
        assert!(matches!(err, ProbeError::Spawn { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/tool"), "{err}");
    }
}
