//! Ctrl-C for foreground `run-agent job`/`task`: SIGINT or SIGTERM stops the run this
//! process is waiting for the same way `run-agent stop` does (SIGTERM to its group, grace,
//! SIGKILL), and marks the task stopped so its loop does not restart. A second signal
//! SIGKILLs the group at once. The caller then sees the run end as `stopped`. SIGHUP (the
//! terminal went away) is left alone: it ends the caller, and the run goes on under its
//! supervisor.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use nix::sys::signal::{SigSet, Signal};

use super::error::RunnerError;
use super::stop::{self, stop_run, StopOptions, DEFAULT_GRACE};

/// The run a foreground command currently waits for, and the signals received so far.
#[derive(Debug, Clone, Default)]
pub struct Foreground {
    state: Arc<Mutex<State>>,
    stops: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>,
}

#[derive(Debug, Default)]
struct State {
    current: Option<PathBuf>,
    signals: u32,
}

impl Foreground {
    /// Records the run dir that a signal should stop. A signal that came before the run
    /// started stops it now.
    pub fn set_current(&self, run_dir: PathBuf) {
        let signals = match self.state.lock() {
            Ok(mut state) => {
                state.current = Some(run_dir.clone());
                state.signals
            }
            Err(_) => return,
        };
        if signals > 0 {
            self.stop(run_dir, signals > 1);
        }
    }

    /// Handles one signal: stops the current run (forcefully from the second signal on).
    /// With no run yet, the stop waits for [`Foreground::set_current`]; a second signal then
    /// ends the process.
    fn on_signal(&self) {
        let (current, signals) = match self.state.lock() {
            Ok(mut state) => {
                state.signals += 1;
                (state.current.clone(), state.signals)
            }
            Err(_) => return,
        };
        match current {
            Some(run_dir) => self.stop(run_dir, signals > 1),
            None if signals > 1 => std::process::exit(130),
            None => {}
        }
    }

    fn stop(&self, run_dir: PathBuf, force: bool) {
        let opts = StopOptions {
            grace: DEFAULT_GRACE,
            force,
        };
        let stop = std::thread::spawn(move || {
            if let Err(err) = stop_run(&run_dir, opts) {
                tracing::warn!("stop: {err}");
            }
        });
        if let Ok(mut stops) = self.stops.lock() {
            stops.push(stop);
        }
    }

    /// Waits for stops started by a signal to finish (the run's record can be final before
    /// the last member of its process group is gone).
    pub fn finish(&self) {
        let stops = match self.stops.lock() {
            Ok(mut stops) => std::mem::take(&mut *stops),
            Err(_) => return,
        };
        for stop in stops {
            let _ = stop.join();
        }
    }
}

/// Blocks SIGINT/SIGTERM in this thread (and every thread started later) and starts
/// the thread that handles them. Call before starting any other thread. `task_dir`, when
/// given, gets the task's stop marker so a Ralph loop ends.
pub fn install(task_dir: Option<PathBuf>) -> Result<Foreground, RunnerError> {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        set.add(signal);
    }
    set.thread_block()
        .map_err(|e| RunnerError::invalid("signal mask", e.to_string()))?;
    let foreground = Foreground::default();
    let handle = foreground.clone();
    std::thread::Builder::new()
        .name("interrupt".into())
        .spawn(move || {
            while let Ok(signal) = set.wait() {
                eprintln!("{signal}: stopping the run (again to kill it at once)");
                if let Some(task_dir) = &task_dir {
                    if let Err(err) = stop::request(task_dir) {
                        tracing::warn!("cannot mark the task stopped: {err}");
                    }
                }
                handle.on_signal();
            }
        })
        .map_err(|e| RunnerError::io("start the signal thread for", "run-agent", e))?;
    Ok(foreground)
}
