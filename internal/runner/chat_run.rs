//! A REST agent's run inside its supervisor: the supervisor itself is the run's process
//! (pid and pgid recorded are its own; it leads its own process group), the chat request streams on
//! a worker thread into agent-stdout.txt, and a SIGTERM/SIGINT (from `run-agent stop`)
//! ends the run as `stopped` at once, without waiting for the HTTP stream. With an idle
//! timeout, a request that receives nothing for that long is abandoned and the run ends as
//! `timed out`, like a CLI run whose output stopped growing.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

use crate::storage::atomic::write_atomic;
use crate::storage::paths::{OUTPUT_FILE, PROMPT_FILE, STDERR_FILE, STDOUT_FILE};
use crate::storage::{RunStatus, Usage};

use super::classify::{classify, Outcome};
use super::error::RunnerError;
use super::stop;
use super::supervise::SupervisorPlan;
use crate::agent::chat_api::{self, ChatRequest};
use crate::agent::token_var;

/// What ended the wait.
enum Event {
    /// The request finished: the answer or the error summary.
    Done(Result<String, String>),
    /// A stop signal arrived.
    Signal,
    /// Nothing arrived for the idle timeout.
    Idle(Duration),
}

/// How a REST run ended.
#[derive(Debug)]
pub struct Ended {
    /// The final status, exit code and summary.
    pub outcome: Outcome,
    /// Whether the idle timeout abandoned the request.
    pub timed_out: bool,
    /// What the answer's chunks reported of tokens and cost (unpriced).
    pub usage: Option<Usage>,
}

impl From<Outcome> for Ended {
    fn from(outcome: Outcome) -> Ended {
        Ended {
            outcome,
            timed_out: false,
            usage: None,
        }
    }
}

/// Runs the REST request of `plan` (argv = `[base_url, model]`; the token is the provider
/// variable of the supervisor's env). Records the supervisor as the run's process, calls
/// `started` once it is recorded, and returns how the run ended; output.md (on success) and
/// the stdout/stderr files are written.
pub fn run(
    plan: &SupervisorPlan,
    info_path: &Path,
    started: impl FnOnce(),
) -> Result<Ended, RunnerError> {
    let name = plan.agent_type.as_str();
    let (base_url, model) = match plan.argv.as_slice() {
        [base_url, model, ..] => (base_url.clone(), model.clone()),
        _ => {
            return Err(RunnerError::invalid(
                "agent command",
                format!("a {name} run needs [base_url, model]"),
            ))
        }
    };
    let pid = i64::from(std::process::id());
    let pgid = i64::from(nix::unistd::getpgrp().as_raw());
    let commandline = format!("POST {} (model {model})", chat_api::endpoint(&base_url));
    super::supervise::record_started(info_path, plan, pid, pgid, &commandline, "")?;
    let mut stdout = plan.open_output(STDOUT_FILE)?;
    let mut stderr = plan.open_output(STDERR_FILE)?;
    started();

    let prompt_path = plan.run_dir.join(PROMPT_FILE);
    let prompt = std::fs::read_to_string(&prompt_path)
        .map_err(|e| RunnerError::io("read", &prompt_path, e))?;
    let token_name = token_var(plan.agent_type).unwrap_or("API key");
    let token = std::env::var(token_name)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());

    // Signals are taken by a waiting thread (blocked here, inherited by both threads).
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals
        .thread_block()
        .map_err(|e| RunnerError::invalid("signal mask", e.to_string()))?;
    let (tx, rx) = mpsc::channel::<Event>();
    let signal_tx = tx.clone();
    std::thread::Builder::new()
        .name("rest-signals".into())
        .spawn(move || {
            if signals.wait().is_ok() {
                let _ = signal_tx.send(Event::Signal);
            }
        })
        .map_err(|e| RunnerError::io("start the signal thread for", "run", e))?;
    let agent_type = plan.agent_type;
    // Taken away when the request is abandoned: nothing arriving later is appended.
    let delta_out =
        Arc::new(Mutex::new(Some(stdout.try_clone().map_err(|e| {
            RunnerError::io("open", plan.run_dir.join(STDOUT_FILE), e)
        })?)));
    let request_out = Arc::clone(&delta_out);
    let received = Arc::new(AtomicU64::new(0));
    let request_received = Arc::clone(&received);
    let usage = Arc::new(Mutex::new(None::<Usage>));
    let request_usage = Arc::clone(&usage);
    std::thread::Builder::new()
        .name("rest-request".into())
        .spawn(move || {
            let result = match token {
                None => Err(format!(
                    "{}: no API token: set {token_name}, or the agent's token / token_file in the config (or CONDUCTOR_AGENT_<NAME>_TOKEN)",
                    agent_type.as_str()
                )),
                Some(token) => chat_api::stream_chat(
                    &ChatRequest {
                        agent_type,
                        base_url: &base_url,
                        model: &model,
                        token: &token,
                        prompt: &prompt,
                        received: Some(&request_received),
                        usage: Some(&request_usage),
                    },
                    |delta| {
                        let mut out = request_out.lock().unwrap_or_else(PoisonError::into_inner);
                        if let Some(Err(err)) =
                            out.as_mut().map(|f| f.write_all(delta.as_bytes()))
                        {
                            tracing::warn!("cannot append to {STDOUT_FILE}: {err}");
                        }
                    },
                ),
            };
            let _ = tx.send(Event::Done(result));
        })
        .map_err(|e| RunnerError::io("start the request thread for", "run", e))?;

    let event = wait(&rx, &received, plan.idle_timeout);
    let usage = || usage.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let with_usage = |outcome: Outcome| Ended {
        usage: usage(),
        ..outcome.into()
    };
    let summary = match event {
        Event::Signal if stop::requested(&plan.run_dir) => {
            return Ok(with_usage(classify(-1, false, true)))
        }
        Event::Signal => format!("{name}: terminated by a signal"),
        Event::Idle(limit) => {
            delta_out
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            tracing::warn!("{name}: nothing received for {limit:?}; abandoning the request");
            let _ = writeln!(
                stderr,
                "{name}: nothing received for {limit:?}; request abandoned"
            );
            return Ok(Ended {
                timed_out: true,
                ..with_usage(classify(1, true, false))
            });
        }
        Event::Done(Ok(answer)) => {
            let _ = stdout.write_all(b"\n");
            let output_path = plan.run_dir.join(OUTPUT_FILE);
            write_atomic(&output_path, answer.as_bytes())
                .map_err(|e| RunnerError::io("write", &output_path, e))?;
            return Ok(with_usage(Outcome {
                status: RunStatus::Completed,
                exit_code: 0,
                error_summary: None,
            }));
        }
        Event::Done(Err(summary)) => summary,
    };
    // A failure: the summary also goes to agent-stderr.txt.
    let _ = writeln!(stderr, "{summary}");
    Ok(with_usage(Outcome {
        status: RunStatus::Failed,
        exit_code: 1,
        error_summary: Some(summary),
    }))
}

/// Waits for the request or a signal; with an idle timeout, gives up when `received` did not
/// change for that long.
fn wait(rx: &mpsc::Receiver<Event>, received: &AtomicU64, idle: Option<Duration>) -> Event {
    let Some(limit) = idle else {
        return rx.recv().unwrap_or(Event::Signal);
    };
    let tick = (limit / 4).clamp(Duration::from_millis(50), Duration::from_millis(250));
    let mut seen = received.load(Ordering::Relaxed);
    let mut last_growth = Instant::now();
    loop {
        match rx.recv_timeout(tick) {
            Ok(event) => return event,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Event::Signal,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let now = received.load(Ordering::Relaxed);
        if now != seen {
            seen = now;
            last_growth = Instant::now();
        } else if last_growth.elapsed() >= limit {
            return Event::Idle(limit);
        }
    }
}
