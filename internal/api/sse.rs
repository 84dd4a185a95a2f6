//! One bounded Server-Sent-Events pipe for every stream of the server.
//!
//! A producer (an async task following a file or a broadcast) hands events to an
//! [`SseSender`]; the client's response body is the matching [`SseStream`]. What sits between
//! the two is capped at [`CLIENT_BUFFER_BYTES`] per client, counted in bytes, not events:
//!
//! - A file-backed producer awaits [`SseSender::send`]: it waits
//!   while the client's buffer is full, so a backlog is read from the file only as fast as the
//!   client drains it and is never held whole. A client that drains nothing for
//!   [`STALL_LIMIT`] is sent a `resync` event and the stream ends, so the client reconnects with
//!   `Last-Event-ID` and resumes where it stopped.
//! - A push producer (a broadcast of index changes) calls [`SseSender::try_send`]: a client over
//!   the cap is sent `resync` and the stream ends at once.
//!
//! The open-stream gauge (`conductor_sse_clients`) is held by the response body, so it drops
//! the moment the client disconnects, and the producer notices the disconnect through
//! [`SseSender::is_closed`] / a failed send.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::metrics::SseGuard;

/// Bytes of events buffered per client between the producer and the socket.
pub const CLIENT_BUFFER_BYTES: usize = 256 * 1024;
/// How long a file-backed producer waits for a full client buffer to drain before the client is
/// sent `resync` and closed.
pub const STALL_LIMIT: Duration = Duration::from_secs(10);
/// Heartbeat interval of SSE streams (a comment line, so proxies keep the connection open).
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// Fixed per-event overhead counted against the buffer (field names, newlines).
const EVENT_OVERHEAD: usize = 32;
/// Most bytes of queued events written to the socket as one body frame.
const MAX_FRAME_BYTES: usize = 64 * 1024;
/// The heartbeat: an SSE comment line.
const HEARTBEAT_TEXT: &[u8] = b": heartbeat\n\n";

/// One event to send: `event:` kind, optional `id:` and `data:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    kind: String,
    id: Option<String>,
    data: String,
}

impl SseEvent {
    /// An event of `kind` carrying `data`.
    pub fn new(kind: impl Into<String>, data: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            id: None,
            data: data.into(),
        }
    }

    /// Sets the event id (what the client sends back as `Last-Event-ID`).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Bytes this event counts against a client's buffer.
    fn cost(&self) -> usize {
        self.kind.len() + self.id.as_ref().map_or(0, String::len) + self.data.len() + EVENT_OVERHEAD
    }

    /// Appends the event in the `text/event-stream` format: `event:`, `id:`, the data split
    /// into one `data:` field per line (a `\r` or `\n` starts a new field; empty data has no
    /// field), and the blank line that ends the event. Kinds are constants and ids are run
    /// positions or message ids; a line break in either would end the field early, so it is
    /// dropped from them.
    fn encode(&self, out: &mut Vec<u8>) {
        let field = |out: &mut Vec<u8>, name: &[u8], value: &str| {
            out.extend_from_slice(name);
            out.extend(value.bytes().filter(|b| !matches!(b, b'\r' | b'\n')));
            out.push(b'\n');
        };
        field(out, b"event: ", &self.kind);
        if let Some(id) = &self.id {
            field(out, b"id: ", id);
        }
        if !self.data.is_empty() {
            out.extend_from_slice(b"data: ");
            for &byte in self.data.as_bytes() {
                out.push(byte);
                if matches!(byte, b'\r' | b'\n') {
                    out.extend_from_slice(b"data: ");
                }
            }
            out.push(b'\n');
        }
        out.push(b'\n');
    }
}

/// Why a send did not go through; either way the producer should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The client disconnected.
    #[error("the SSE client disconnected")]
    Closed,
    /// The client fell behind its buffer cap; it was sent `resync` and the stream ended.
    #[error("the SSE client fell behind and was told to resync")]
    Overflow,
}

struct Queued {
    event: SseEvent,
    /// Returns the event's bytes to the client's budget when the body hands it to the socket.
    _permit: Option<OwnedSemaphorePermit>,
}

/// The producer side of one client's bounded stream. Cheap to move into a thread or task.
pub struct SseSender {
    tx: mpsc::UnboundedSender<Queued>,
    budget: Arc<Semaphore>,
    cap: usize,
    stall: Duration,
    ended: AtomicBool,
}

/// The response-body side: yields queued events, holds the open-stream gauge.
pub struct SseStream {
    rx: mpsc::UnboundedReceiver<Queued>,
    heartbeat: Pin<Box<tokio::time::Sleep>>,
    _guard: Option<SseGuard>,
    _extra: Option<Box<dyn Send + Sync>>,
}

/// A bounded pipe with the default cap and stall limit; `guard` (from `Metrics::sse_guard`) is released when the client goes away.
pub fn channel(guard: Option<SseGuard>) -> (SseSender, SseStream) {
    channel_with(guard, CLIENT_BUFFER_BYTES, STALL_LIMIT)
}

/// [`channel`] with an explicit cap and stall limit (tests).
pub fn channel_with(
    guard: Option<SseGuard>,
    cap: usize,
    stall: Duration,
) -> (SseSender, SseStream) {
    let (tx, rx) = mpsc::unbounded_channel();
    let cap = cap.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let sender = SseSender {
        tx,
        budget: Arc::new(Semaphore::new(cap)),
        cap,
        stall,
        ended: AtomicBool::new(false),
    };
    (
        sender,
        SseStream {
            rx,
            heartbeat: Box::pin(tokio::time::sleep(HEARTBEAT)),
            _guard: guard,
            _extra: None,
        },
    )
}

impl SseSender {
    /// Whether the client has gone (or the stream already ended); a producer checks this while
    /// it has nothing to send.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed() || self.ended.load(Ordering::Relaxed)
    }

    /// Resolves when the client disconnects (for producers waiting on something else).
    pub async fn closed(&self) {
        self.tx.closed().await
    }

    fn permits(&self, event: &SseEvent) -> u32 {
        // An event larger than the whole budget still goes out, alone.
        event.cost().min(self.cap) as u32
    }

    fn check_open(&self) -> Result<(), SendError> {
        if self.ended.load(Ordering::Relaxed) {
            return Err(SendError::Overflow);
        }
        if self.tx.is_closed() {
            return Err(SendError::Closed);
        }
        Ok(())
    }

    fn push(&self, event: SseEvent, permit: OwnedSemaphorePermit) -> Result<(), SendError> {
        self.tx
            .send(Queued {
                event,
                _permit: Some(permit),
            })
            .map_err(|_| SendError::Closed)
    }

    /// Sends `event`, waiting while the client's buffer is full. A client that drains nothing
    /// for the stall limit is sent `resync` and the stream ends ([`SendError::Overflow`]).
    pub async fn send(&self, event: SseEvent) -> Result<(), SendError> {
        self.check_open()?;
        let wanted = self.permits(&event);
        let acquire =
            tokio::time::timeout(self.stall, self.budget.clone().acquire_many_owned(wanted));
        tokio::select! {
            () = self.tx.closed() => Err(SendError::Closed),
            acquired = acquire => match acquired {
                Ok(Ok(permit)) => self.push(event, permit),
                _ => {
                    self.resync("the client stopped reading; reconnect with Last-Event-ID to resume");
                    Err(SendError::Overflow)
                }
            },
        }
    }

    /// Sends `event` only if it fits the client's buffer now; otherwise the client is sent
    /// `resync` and the stream ends ([`SendError::Overflow`]). For producers that cannot wait.
    pub fn try_send(&self, event: SseEvent, resync_reason: &str) -> Result<(), SendError> {
        self.check_open()?;
        match self
            .budget
            .clone()
            .try_acquire_many_owned(self.permits(&event))
        {
            Ok(permit) => self.push(event, permit),
            Err(_) => {
                self.resync(resync_reason);
                Err(SendError::Overflow)
            }
        }
    }

    /// Ends the stream with a `resync` event (sent after what is already queued; it needs no
    /// buffer room). Later sends fail with [`SendError::Overflow`].
    pub fn resync(&self, reason: &str) {
        if self.ended.swap(true, Ordering::Relaxed) {
            return;
        }
        tracing::debug!(reason, "SSE client told to resync");
        let _ = self.tx.send(Queued {
            event: SseEvent::new("resync", reason),
            _permit: None,
        });
    }
}

impl tokio_stream::Stream for SseStream {
    type Item = Result<Bytes, Infallible>;

    /// One body frame: every event queued by now (up to [`MAX_FRAME_BYTES`]), so a burst of
    /// lines goes out in one write instead of one write each; a heartbeat comment when nothing
    /// was sent for [`HEARTBEAT`].
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let first = match self.rx.poll_recv(cx) {
            Poll::Ready(Some(queued)) => queued,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {
                if std::future::Future::poll(self.heartbeat.as_mut(), cx).is_pending() {
                    return Poll::Pending;
                }
                self.reset_heartbeat();
                return Poll::Ready(Some(Ok(Bytes::from_static(HEARTBEAT_TEXT))));
            }
        };
        // The permits are dropped here: once the body hands the bytes to hyper they no longer
        // count against the producer (hyper's own write buffer is bounded).
        let mut frame = Vec::with_capacity(first.event.cost());
        first.event.encode(&mut frame);
        while frame.len() < MAX_FRAME_BYTES {
            match self.rx.try_recv() {
                Ok(queued) => queued.event.encode(&mut frame),
                Err(_) => break,
            }
        }
        self.reset_heartbeat();
        Poll::Ready(Some(Ok(Bytes::from(frame))))
    }
}

impl SseStream {
    fn reset_heartbeat(&mut self) {
        let next = tokio::time::Instant::now() + HEARTBEAT;
        self.heartbeat.as_mut().reset(next);
    }

    /// Keeps `value` alive as long as the response body (it is dropped when the client goes).
    pub fn with_guard(mut self, value: impl Send + Sync + 'static) -> Self {
        self._extra = Some(Box::new(value));
        self
    }

    /// The streaming response (`text/event-stream`, not cached).
    pub fn into_response(self) -> Response {
        (
            [
                (header::CONTENT_TYPE, "text/event-stream"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            Body::from_stream(self),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    fn event(n: usize, size: usize) -> SseEvent {
        SseEvent::new("line", "x".repeat(size)).id(n.to_string())
    }

    /// The events in body bytes (one `event:` field each).
    fn count_events(text: &str) -> usize {
        text.matches("event: ").count()
    }

    async fn next_text(rx: &mut SseStream) -> Option<String> {
        match rx.next().await {
            Some(Ok(frame)) => Some(String::from_utf8_lossy(&frame).into_owned()),
            _ => None,
        }
    }

    #[test]
    fn events_are_encoded_as_the_event_stream_format_says() {
        let mut out = Vec::new();
        SseEvent::new("stdout", "a\nb\rc")
            .id("3:0")
            .encode(&mut out);
        SseEvent::new("stdout", "").id("4:0").encode(&mut out);
        SseEvent::new("end", "done").encode(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: stdout\nid: 3:0\ndata: a\ndata: b\rdata: c\n\n\
             event: stdout\nid: 4:0\n\n\
             event: end\ndata: done\n\n"
        );
    }

    #[tokio::test]
    async fn queued_events_leave_in_one_frame() {
        let (tx, mut rx) = channel_with(None, 1 << 20, STALL_LIMIT);
        for n in 0..3 {
            tx.send(event(n, 5)).await.unwrap();
        }
        let frame = next_text(&mut rx).await.unwrap();
        assert_eq!(count_events(&frame), 3, "{frame}");
        assert!(
            frame.starts_with("event: line\nid: 0\ndata: xxxxx\n\n"),
            "{frame}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_producer_waits_for_the_client_then_resyncs_a_stalled_one() {
        let (tx, mut rx) = channel_with(None, 4096, Duration::from_millis(300));
        let producer = tokio::spawn(async move {
            let mut sent = 0;
            for n in 0..100 {
                match tx.send(event(n, 1000)).await {
                    Ok(()) => sent += 1,
                    Err(e) => return (sent, Some(e)),
                }
            }
            (sent, None)
        });
        // Drain 10 events: the producer keeps up, never more than ~4 ahead.
        let mut received = 0;
        while received < 10 {
            received += count_events(&next_text(&mut rx).await.unwrap());
        }
        // Then stop reading: the producer stalls and gives up with a resync.
        let (sent, err) = producer.await.unwrap();
        assert_eq!(err, Some(SendError::Overflow));
        assert!(
            (received..=received + 5).contains(&sent),
            "sent {sent}, received {received}"
        );
        let mut rest = String::new();
        while let Some(text) = next_text(&mut rx).await {
            rest.push_str(&text);
        }
        assert!(rest.ends_with("event: resync\ndata: the client stopped reading; reconnect with Last-Event-ID to resume\n\n"), "{rest}");
        assert_eq!(received + count_events(&rest), sent + 1);
    }

    #[tokio::test]
    async fn a_push_producer_over_the_cap_resyncs_at_once() {
        let (tx, mut rx) = channel_with(None, 2048, STALL_LIMIT);
        assert!(tx.try_send(event(0, 1000), "slow").is_ok());
        assert_eq!(
            tx.try_send(event(1, 1500), "slow"),
            Err(SendError::Overflow)
        );
        assert_eq!(tx.try_send(event(2, 1), "slow"), Err(SendError::Overflow));
        assert!(tx.is_closed());
        drop(tx);
        let mut all = String::new();
        while let Some(text) = next_text(&mut rx).await {
            all.push_str(&text);
        }
        assert_eq!(count_events(&all), 2, "{all}");
        assert!(all.ends_with("event: resync\ndata: slow\n\n"), "{all}");
    }

    #[tokio::test]
    async fn a_disconnected_client_stops_the_producer() {
        let (tx, rx) = channel_with(None, 64, STALL_LIMIT);
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.send(event(0, 1)).await, Err(SendError::Closed));
    }

    #[tokio::test]
    async fn an_event_larger_than_the_cap_goes_out_alone() {
        let (tx, mut rx) = channel_with(None, 100, STALL_LIMIT);
        tx.send(event(0, 10_000)).await.unwrap();
        assert!(rx.next().await.is_some());
        tx.send(event(1, 10)).await.unwrap();
    }
}
