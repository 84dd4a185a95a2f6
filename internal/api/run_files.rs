//! The sizes of a run's files, shown with the run (`files` in `GET /api/v1/runs/{run}`), so a
//! client asks only for files that exist and knows how big they are before reading them.

use std::path::Path;

use serde_json::{json, Value};

use crate::storage::paths::{OUTPUT_FILE, PROMPT_FILE, STDERR_FILE, STDOUT_FILE};

/// `{"stdout": bytes|null, "stderr": …, "output": …, "prompt": …}` (null: no such file).
pub fn file_sizes(dir: &Path) -> Value {
    let size = |name: &str| {
        std::fs::symlink_metadata(dir.join(name))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    };
    json!({
        "stdout": size(STDOUT_FILE),
        "stderr": size(STDERR_FILE),
        "output": size(OUTPUT_FILE),
        "prompt": size(PROMPT_FILE),
    })
}
