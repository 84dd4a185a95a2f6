//! Usage read from an agent's stdout file while the agent writes it: each call reads what
//! was appended since the last one and feeds the complete JSON lines to the CLI's parser.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::AgentType;
use crate::storage::Usage;

use super::{parser, EventParser, MAX_LINE};

/// How much is read per call at most (the rest comes with the next calls).
const READ_CHUNK: u64 = 8 * 1024 * 1024;

/// An incremental reader of a CLI agent's stream for its usage.
pub struct LiveUsage {
    parser: Box<dyn EventParser>,
    path: PathBuf,
    offset: u64,
    /// The unfinished last line.
    partial: Vec<u8>,
    /// The current line is longer than the parser takes: skip to its end.
    skipping: bool,
}

impl std::fmt::Debug for LiveUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveUsage")
            .field("path", &self.path)
            .field("offset", &self.offset)
            .finish()
    }
}

impl LiveUsage {
    /// A reader of `stdout` for an agent of `agent_type`; `None` for types without a stream.
    pub fn new(agent_type: AgentType, stdout: &Path) -> Option<LiveUsage> {
        let (parser, _) = parser(agent_type)?;
        Some(LiveUsage {
            parser,
            path: stdout.to_path_buf(),
            offset: 0,
            partial: Vec::new(),
            skipping: false,
        })
    }

    /// Reads what was appended since the last call. Returns whether the usage changed.
    /// A file that cannot be read changes nothing (the next call tries again).
    pub fn poll(&mut self) -> bool {
        let before = self.parser.usage();
        loop {
            let read = self.read_more();
            if read < READ_CHUNK {
                break;
            }
        }
        self.parser.usage() != before
    }

    /// Reads the rest and takes an unfinished last line as a line (the agent has exited).
    pub fn finish(&mut self) -> Option<Usage> {
        self.poll();
        let rest = std::mem::take(&mut self.partial);
        if !self.skipping {
            self.line(&rest);
        }
        self.parser.usage()
    }

    /// What the stream said so far.
    pub fn usage(&self) -> Option<Usage> {
        self.parser.usage()
    }

    fn read_more(&mut self) -> u64 {
        let Ok(mut file) = File::open(&self.path) else {
            return 0;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return 0;
        }
        let mut bytes = Vec::new();
        let Ok(read) = file.take(READ_CHUNK).read_to_end(&mut bytes) else {
            return 0;
        };
        self.offset += read as u64;
        let mut rest = bytes.as_slice();
        while let Some(newline) = rest.iter().position(|b| *b == b'\n') {
            let (head, tail) = rest.split_at(newline);
            rest = &tail[1..];
            if self.skipping {
                self.skipping = false;
                continue;
            }
            if self.partial.is_empty() {
                self.line(head);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(head);
                self.line(&line);
            }
        }
        if !self.skipping {
            self.partial.extend_from_slice(rest);
            if self.partial.len() > MAX_LINE {
                self.partial.clear();
                self.skipping = true;
            }
        }
        read as u64
    }

    fn line(&mut self, line: &[u8]) {
        if line.len() > MAX_LINE {
            return;
        }
        let Ok(text) = std::str::from_utf8(line) else {
            return;
        };
        if let Ok(event) = serde_json::from_str::<Value>(text.trim()) {
            if event.is_object() {
                self.parser.event(&event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn reads_lines_as_they_are_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        let mut file = File::create(&path).unwrap();
        let mut live = LiveUsage::new(AgentType::Codex, &path).unwrap();
        assert!(!live.poll());
        file.write_all(b"{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":5,")
            .unwrap();
        assert!(!live.poll());
        file.write_all(b"\"output_tokens\":2}}\nnot json\n{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":1}}")
            .unwrap();
        assert!(live.poll());
        assert_eq!(live.usage().unwrap().input_tokens, 5);
        let usage = live.finish().unwrap();
        assert_eq!((usage.input_tokens, usage.output_tokens), (6, 2));
        assert!(LiveUsage::new(AgentType::Command, &path).is_none());
    }
}
