//! The connection loop: serves the router on any [`axum::serve::Listener`] with limits that
//! keep hostile or broken clients from exhausting the process.
//!
//! - **Header timeout** ([`HEADER_TIMEOUT`]): a request head (request line and headers) must
//!   arrive within 10 s of the connection starting to wait for it; an idle keep-alive
//!   connection is closed after the same time. Half-open connections sending partial headers
//!   are dropped.
//! - **Write stall** ([`WRITE_STALL`]): a connection whose writes make no progress for 60 s (a
//!   client that stopped reading, e.g. a non-reading SSE client) is closed, freeing its buffers.
//! - **Connection cap** ([`max_connections`]): at most that many connections are open; when the
//!   cap is reached the server stops accepting (new connections wait in the kernel's backlog)
//!   and logs one warning per episode, so file descriptors are never exhausted.
//!
//! Graceful shutdown: when `shutdown` resolves, accepting stops, every connection finishes its
//! in-flight request and closes, and the future returns once all are gone.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Semaphore};
use tower_service::Service;

/// Longest wait for a request head (also the keep-alive idle limit).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a write may make no progress before the connection is closed.
pub const WRITE_STALL: Duration = Duration::from_secs(60);
/// Bounds of the connection cap.
const MIN_CONNECTIONS: usize = 64;
const MAX_CONNECTIONS: usize = 4096;

/// The connection cap: a quarter of the open-file limit (each SSE client also holds a file and a
/// watch descriptor), between 64 and 4096. Raises the soft open-file limit to the hard one first.
pub fn max_connections() -> usize {
    let soft = raise_nofile_limit().unwrap_or(1024);
    (soft.saturating_sub(64) / 4).clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

/// Raises `RLIMIT_NOFILE`'s soft limit to its hard limit; returns the soft limit in effect.
fn raise_nofile_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Some(usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX))
}

/// Serves `router` on `listener` with the limits above until `shutdown` resolves, then lets
/// in-flight requests finish.
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    cap: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let cap = cap.max(1);
    let slots = Arc::new(Semaphore::new(cap));
    let (close_tx, close_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    tracing::debug!(cap, "connection cap");
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                tracing::warn!(
                    cap,
                    "connection limit reached ({cap} open): not accepting until one closes"
                );
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (io, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let close = close_rx.clone();
        tokio::spawn(async move {
            serve_one(io, addr, router, close).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = close_tx.send(true);
    // Every connection holds a slot until it is closed.
    let _ = slots.acquire_many(cap as u32).await;
    Ok(())
}

async fn serve_one<I>(io: I, addr: SocketAddr, router: Router, mut close: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(ConnectInfo(addr));
        let mut router = router.clone();
        async move { router.call(request).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(StallGuard::new(io, WRITE_STALL)), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(client = %addr, "connection ended: {err}");
            }
            return;
        }
        _ = close.wait_for(|closing| *closing) => conn.as_mut().graceful_shutdown(),
    }
    if let Err(err) = conn.await {
        tracing::debug!(client = %addr, "connection ended during shutdown: {err}");
    }
}

/// An I/O stream whose writes fail with `TimedOut` after making no progress for `limit`.
struct StallGuard<I> {
    inner: I,
    limit: Duration,
    stalled_since: Option<Pin<Box<tokio::time::Sleep>>>,
    reported: bool,
}

impl<I> StallGuard<I> {
    fn new(inner: I, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled_since: None,
            reported: false,
        }
    }

    /// After an inner `Pending`: errors once the stall outlasts the limit.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let limit = self.limit;
        let timer = self
            .stalled_since
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if timer.as_mut().poll(cx).is_ready() {
            if !std::mem::replace(&mut self.reported, true) {
                tracing::debug!("closing a connection whose writes stalled for {limit:?}");
            }
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            )));
        }
        Poll::Pending
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for StallGuard<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for StallGuard<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.pending(cx),
            ready => {
                self.stalled_since = None;
                ready
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.pending(cx),
            ready => {
                self.stalled_since = None;
                ready
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.pending(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_bounded() {
        let cap = max_connections();
        assert!((MIN_CONNECTIONS..=MAX_CONNECTIONS).contains(&cap), "{cap}");
    }
}
