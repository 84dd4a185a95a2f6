//! Reading a bus: all messages, messages after a msg_id, the last N (from a tail window, not
//! the whole file), optionally filtered by type. A missing bus reads as empty.
//!
//! Tail windows (like the Go reference's `ReadLastN`): files up to 64 KiB are read whole; otherwise a
//! window of `max(64 KiB, n × 384)` bytes from the end is parsed, doubled up to three times
//! while it holds too few messages, before a full read. The parser resyncs, so a window that
//! starts mid-record skips the torn prefix; the first message of a window is dropped anyway,
//! in case the window began inside a record in a way that still decodes.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::error::BusError;
use super::message::Message;
use super::parse::Parser;
use super::path;

/// Files up to this size are read whole for a tail read; also the smallest tail window.
pub const TAIL_MIN_WINDOW: u64 = 64 * 1024;
/// Window bytes assumed per wanted message.
const TAIL_BYTES_PER_MESSAGE: u64 = 384;
/// Window doublings before falling back to a full read.
const TAIL_DOUBLINGS: u32 = 3;
/// Read chunk size for streaming reads.
const CHUNK: usize = 1 << 20;
/// Shared-lock attempts (and the sleep between later ones) when settling a length.
const SETTLE_TRIES: u32 = 200;
const SETTLE_SLEEP: std::time::Duration = std::time::Duration::from_micros(100);

/// What to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadQuery {
    /// Only messages after this msg_id (an unknown id is an error).
    pub since: Option<String>,
    /// Only the last N (after the other filters); `None` or 0 = all.
    pub tail: Option<usize>,
    /// Only messages of this type (exact match).
    pub msg_type: Option<String>,
}

/// All messages of the bus at `path`.
pub fn read_all(path: &Path) -> Result<Vec<Message>, BusError> {
    read(path, &ReadQuery::default())
}

/// The messages after `since_id`; [`BusError::SinceNotFound`] when the bus has no such id.
pub fn read_since(path: &Path, since_id: &str) -> Result<Vec<Message>, BusError> {
    read(
        path,
        &ReadQuery {
            since: Some(since_id.to_string()),
            ..ReadQuery::default()
        },
    )
}

/// The last `n` messages, read from a tail window (all when `n` is 0).
pub fn read_tail(path: &Path, n: usize) -> Result<Vec<Message>, BusError> {
    read(
        path,
        &ReadQuery {
            tail: Some(n),
            ..ReadQuery::default()
        },
    )
}

/// Runs `query` against the bus at `path`.
pub fn read(path: &Path, query: &ReadQuery) -> Result<Vec<Message>, BusError> {
    let Some(file) = path::open_read(path)? else {
        return if let Some(id) = &query.since {
            Err(since_not_found(id, path))
        } else {
            Ok(Vec::new())
        };
    };
    let (size, _) = settled_len(&file, path)?;
    let (mut collector, parser) = load(&file, path, size, query)?;
    let mut rest = Vec::new();
    parser.finish(&mut rest);
    for msg in rest {
        collector.push(msg);
    }
    collector.into_messages(path)
}

/// The file's length at a record boundary: read under a brief shared `flock`, so no append is
/// half-way (appenders write under the exclusive lock). Returns `(len, true)` then; when the lock
/// stays busy for ~20 ms, `(current len, false)` — data up to it may end mid-record.
pub(crate) fn settled_len(file: &File, path: &Path) -> Result<(u64, bool), BusError> {
    let len = |file: &File| {
        file.metadata()
            .map(|m| m.len())
            .map_err(|e| BusError::io("inspect", path, e))
    };
    for attempt in 0..SETTLE_TRIES {
        match fs2::FileExt::try_lock_shared(file) {
            Ok(()) => {
                let result = len(file);
                crate::storage::lock::unlock(file);
                return result.map(|n| (n, true));
            }
            Err(err) if is_contended(&err) => {
                if attempt < 10 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(SETTLE_SLEEP);
                }
            }
            Err(err) => return Err(BusError::io("lock (shared)", path, err)),
        }
    }
    Ok((len(file)?, false))
}

fn is_contended(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::WouldBlock
        || err.raw_os_error() == fs2::lock_contended_error().raw_os_error()
}

/// Parses `file` up to `size` for `query`. Returns what was collected and the parser positioned
/// at `size` (records still incomplete there are not emitted yet), so a follower can continue.
pub(crate) fn load<'q>(
    file: &File,
    path: &Path,
    size: u64,
    query: &'q ReadQuery,
) -> Result<(Collector<'q>, Parser), BusError> {
    let tail = query.tail.unwrap_or(0);
    if query.since.is_none() && tail > 0 && size > TAIL_MIN_WINDOW {
        let mut window = TAIL_MIN_WINDOW.max(tail as u64 * TAIL_BYTES_PER_MESSAGE);
        for _ in 0..=TAIL_DOUBLINGS {
            if window >= size {
                break;
            }
            let mut collector = Collector::new(query, true);
            let parser = parse_window(file, path, size - window, size, &mut collector)?;
            if collector.matched >= tail {
                return Ok((collector, parser));
            }
            window = window.saturating_mul(2);
        }
    }
    let mut collector = Collector::new(query, false);
    let mut parser = Parser::new();
    let mut out = Vec::new();
    stream(file, path, 0, size, |chunk| {
        parser.feed(chunk, &mut out);
        for msg in out.drain(..) {
            collector.push(msg);
        }
    })?;
    parser.flush(&mut out);
    for msg in out {
        collector.push(msg);
    }
    Ok((collector, parser))
}

/// Parses `[start, end)` of `file`, beginning at the first line start at or after `start`.
fn parse_window(
    file: &File,
    path: &Path,
    start: u64,
    end: u64,
    collector: &mut Collector<'_>,
) -> Result<Parser, BusError> {
    // One byte before the window tells whether `start` is already a line start.
    let from = start.saturating_sub(1);
    let mut buf = vec![0u8; (end - from) as usize];
    file.read_exact_at(&mut buf, from)
        .map_err(|e| BusError::io("read", path, e))?;
    let skip = if start == 0 {
        0
    } else {
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => buf.len(),
        }
    };
    let mut parser = Parser::mid_file();
    let mut out = Vec::new();
    parser.feed(&buf[skip..], &mut out);
    parser.flush(&mut out);
    for msg in out {
        collector.push(msg);
    }
    Ok(parser)
}

/// Calls `f` with consecutive chunks of `[start, end)` of `file`.
pub(crate) fn stream(
    file: &File,
    path: &Path,
    start: u64,
    end: u64,
    mut f: impl FnMut(&[u8]),
) -> Result<(), BusError> {
    let mut buf = vec![0u8; CHUNK.min((end - start) as usize).max(1)];
    let mut pos = start;
    while pos < end {
        let want = buf.len().min((end - pos) as usize);
        let n = file
            .read_at(&mut buf[..want], pos)
            .map_err(|e| BusError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        f(&buf[..n]);
        pos += n as u64;
    }
    Ok(())
}

pub(crate) fn since_not_found(id: &str, path: &Path) -> BusError {
    BusError::SinceNotFound {
        id: id.to_string(),
        path: path.to_path_buf(),
    }
}

/// Applies since / type / tail to messages in file order.
pub(crate) struct Collector<'q> {
    since: Option<&'q str>,
    found: bool,
    msg_type: Option<&'q str>,
    tail: usize,
    skip_first: bool,
    matched: usize,
    out: VecDeque<Message>,
}

impl<'q> Collector<'q> {
    fn new(query: &'q ReadQuery, skip_first: bool) -> Self {
        Self {
            since: query.since.as_deref(),
            found: false,
            msg_type: query.msg_type.as_deref(),
            tail: query.tail.unwrap_or(0),
            skip_first,
            matched: 0,
            out: VecDeque::new(),
        }
    }

    pub(crate) fn push(&mut self, msg: Message) {
        if std::mem::take(&mut self.skip_first) {
            return;
        }
        if let Some(id) = self.since {
            if !self.found {
                self.found = msg.msg_id == id;
                return;
            }
        }
        if self.msg_type.is_some_and(|t| t != msg.msg_type) {
            return;
        }
        self.matched += 1;
        if self.tail > 0 && self.out.len() == self.tail {
            self.out.pop_front();
        }
        self.out.push_back(msg);
    }

    pub(crate) fn into_messages(self, path: &Path) -> Result<Vec<Message>, BusError> {
        match self.since {
            Some(id) if !self.found => Err(since_not_found(id, path)),
            _ => Ok(self.out.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::append::{AppendOptions, BusWriter};
    use crate::bus::message::NewMessage;
    use crate::storage::ids::ProjectId;

    fn fill(path: &Path, count: usize, body_len: usize) -> Vec<String> {
        let mut writer = BusWriter::new(path, AppendOptions::default());
        (0..count)
            .map(|i| {
                let ty = if i % 3 == 0 { "FACT" } else { "INFO" };
                let body = format!("{i}:{}", "x".repeat(body_len));
                let msg = NewMessage::new(ty, ProjectId::parse("p").unwrap()).body(body);
                writer.append(&msg).unwrap()
            })
            .collect()
    }

    #[test]
    fn since_tail_and_type() {
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("b.md");
        let ids = fill(&bus, 10, 5);
        let after = read_since(&bus, &ids[6]).unwrap();
        assert_eq!(
            after.iter().map(|m| &m.msg_id).collect::<Vec<_>>(),
            ids[7..].iter().collect::<Vec<_>>()
        );
        assert!(read_since(&bus, &ids[9]).unwrap().is_empty());
        let err = read_since(&bus, "MSG-nope").unwrap_err();
        assert!(
            err.to_string().contains("MSG-nope") && err.to_string().contains("b.md"),
            "{err}"
        );
        let tail = read_tail(&bus, 3).unwrap();
        assert_eq!(
            tail.iter().map(|m| &m.msg_id).collect::<Vec<_>>(),
            ids[7..].iter().collect::<Vec<_>>()
        );
        let facts = read(
            &bus,
            &ReadQuery {
                tail: Some(2),
                msg_type: Some("FACT".into()),
                ..ReadQuery::default()
            },
        )
        .unwrap();
        assert_eq!(
            facts.iter().map(|m| &m.msg_id).collect::<Vec<_>>(),
            [&ids[6], &ids[9]]
        );
        assert!(read_all(&dir.path().join("missing.md")).unwrap().is_empty());
    }

    #[test]
    fn tail_windows_on_a_large_bus_match_a_full_read() {
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("b.md");
        // ~1,000 records of ~700 bytes: several windows deep.
        fill(&bus, 1000, 500);
        let all = read_all(&bus).unwrap();
        assert_eq!(all.len(), 1000);
        for n in [1, 5, 100, 400, 999, 1000, 5000] {
            let tail = read_tail(&bus, n).unwrap();
            let want = &all[all.len().saturating_sub(n)..];
            assert_eq!(tail, want, "n = {n}");
        }
        let facts = read(
            &bus,
            &ReadQuery {
                tail: Some(50),
                msg_type: Some("FACT".into()),
                ..ReadQuery::default()
            },
        )
        .unwrap();
        let want: Vec<_> = all
            .iter()
            .filter(|m| m.msg_type == "FACT")
            .cloned()
            .collect();
        assert_eq!(facts, want[want.len() - 50..]);
    }
}
