//! The sizes of a run's files, shown with the run (`files` in `GET /api/v1/runs/{run}`), so a
//! client asks only for files that exist and knows how big they are before reading them.

use std::path::Path;

use crate::storage::paths::{OUTPUT_FILE, PROMPT_FILE, STDERR_FILE, STDOUT_FILE};
use crate::wire::RunFiles;

/// The sizes of the run's files in `dir` (`None`: no such file).
pub fn file_sizes(dir: &Path) -> RunFiles {
    let size = |name: &str| {
        std::fs::symlink_metadata(dir.join(name))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    };
    RunFiles {
        stdout: size(STDOUT_FILE),
        stderr: size(STDERR_FILE),
        output: size(OUTPUT_FILE),
        prompt: size(PROMPT_FILE),
    }
}
