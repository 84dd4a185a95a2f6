//! An axum listener that can stop accepting without closing the socket: connections that
//! arrive afterwards wait in the kernel backlog for the next image.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Wraps a tokio listener; once `stop` is signalled, `accept` never returns again.
#[derive(Debug)]
pub struct StoppableListener {
    inner: TcpListener,
    stop: watch::Receiver<bool>,
}

impl StoppableListener {
    /// Accepts on `inner` until `stop` becomes true.
    pub fn new(inner: TcpListener, stop: watch::Receiver<bool>) -> Self {
        Self { inner, stop }
    }
}

impl axum::serve::Listener for StoppableListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if *self.stop.borrow() {
                return std::future::pending().await;
            }
            tokio::select! {
                biased;
                changed = self.stop.changed() => {
                    if changed.is_err() {
                        // The sender is gone: nobody can stop us any more.
                        return loop {
                            match self.inner.accept().await {
                                Ok(pair) => break pair,
                                Err(e) => accept_error(e).await,
                            }
                        };
                    }
                }
                result = self.inner.accept() => match result {
                    Ok(pair) => return pair,
                    Err(e) => accept_error(e).await,
                },
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Transient accept errors (EMFILE, ECONNABORTED…) are logged and retried after a pause.
async fn accept_error(err: std::io::Error) {
    tracing::warn!("accept failed: {err}");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}
