//! The serve loop with hand-over: serves the API like [`super::serve`], and when the
//! self-update manager has staged a new binary, stops accepting (the socket stays open, new
//! connections wait in the backlog), lets in-flight requests finish, and execs the new
//! image on the same socket.

use std::ffi::OsString;
use std::future::Future;
use std::os::fd::AsRawFd;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::AppState;
use crate::process::wait::reap_within;
use crate::update::handoff::exec_with_listener;
use crate::update::listener::StoppableListener;
use crate::update::manager::{Handoff, ServeContext};
use crate::update::PENDING_ENV;

/// After accepting stops, how long freshly accepted connections get to send their request
/// before idle connections are closed.
const ACCEPT_SETTLE: Duration = Duration::from_millis(250);
/// How long in-flight requests may take before the exec cuts them off.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// How this process was started, as far as the hand-over cares.
#[derive(Debug, Clone)]
pub struct StartInfo {
    /// The process argv (re-used for the exec).
    pub argv: Vec<OsString>,
    /// Arguments selecting this binary's watchdog command.
    pub watchdog_args: Vec<String>,
    /// The [`PENDING_ENV`] marker, when this process is the new image of an update.
    pub pending_marker: Option<OsString>,
}

/// Serves until `shutdown` resolves (then returns after in-flight requests finish), or
/// until a self-update hands over (then this process execs and the call never returns,
/// unless every exec failed).
pub async fn serve(
    listener: std::net::TcpListener,
    state: AppState,
    start: StartInfo,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // A second descriptor of the socket keeps it open (and its backlog) when axum drops its own.
    let keeper = listener.try_clone()?;
    state.update.attach(ServeContext {
        argv: start.argv.clone(),
        listener_fd: keeper.as_raw_fd(),
        watchdog_args: start.watchdog_args.clone(),
        active_loops: {
            let weak = std::sync::Arc::downgrade(&state);
            std::sync::Arc::new(move || weak.upgrade().map_or(0, |s| s.task_loops.active()))
        },
    });
    let tokio_listener = tokio::net::TcpListener::from_std(listener)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (close_tx, close_rx) = oneshot::channel::<()>();
    let app = super::router(state.clone());
    let server = super::conn::serve(
        StoppableListener::new(tokio_listener, stop_rx),
        app,
        super::conn::max_connections(),
        async move {
            let _ = close_rx.await;
        },
    );
    let mut server = std::pin::pin!(server);
    let summaries = super::AuditSummaries::start(&state);

    let manager = std::sync::Arc::clone(&state.update);
    let marker = start.pending_marker.clone();
    tokio::task::spawn_blocking(move || {
        if let Some(watchdog) = manager.on_start(marker) {
            reap_within(watchdog, Duration::from_secs(30));
        }
    });

    let mut plans = state.update.subscribe();
    let plan = tokio::select! {
        result = &mut server => return result,
        () = shutdown => None,
        plan = next_plan(&mut plans) => plan,
    };
    // Event streams end now: graceful shutdown would otherwise wait for every open browser tab.
    state.shutdown.begin();
    let Some(plan) = plan else {
        let manager = std::sync::Arc::clone(&state.update);
        let _ = tokio::task::spawn_blocking(move || manager.begin_shutdown()).await;
        let _ = close_tx.send(());
        return server.await;
    };
    let _ = stop_tx.send(true);
    tokio::time::sleep(ACCEPT_SETTLE).await;
    let _ = close_tx.send(());
    if tokio::time::timeout(DRAIN_DEADLINE, &mut server)
        .await
        .is_err()
    {
        tracing::warn!("requests still running after {DRAIN_DEADLINE:?}; handing over anyway");
    }
    drop(summaries);
    handover(&plan, &start.argv, &keeper, &state);
    Err(std::io::Error::other(
        "self-update: neither the new nor the restored binary could be executed",
    ))
}

async fn next_plan(plans: &mut watch::Receiver<Option<Handoff>>) -> Option<Handoff> {
    loop {
        if let Some(plan) = plans.borrow_and_update().clone() {
            return Some(plan);
        }
        if plans.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Execs the new image; if that fails, restores the backup and execs it instead.
fn handover(plan: &Handoff, argv: &[OsString], keeper: &std::net::TcpListener, state: &AppState) {
    tracing::info!(exe = %plan.exe.display(), "self-update: exec of the new image");
    let marker = OsString::from(state.update.state_file().as_os_str());
    let err = exec_with_listener(&plan.exe, argv, keeper, &[(PENDING_ENV, marker)]);
    state.update.exec_failed(plan, &err);
    let err = exec_with_listener(&plan.exe, argv, keeper, &[]);
    tracing::error!("self-update: cannot exec the restored binary either: {err}");
}
