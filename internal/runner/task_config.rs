//! A task's `TASK-CONFIG.yaml`: a YAML mapping whose keys belong to different features
//! (`depends_on` of [`super::deps`], `budget` of [`super::budget`]); each reads its key and
//! updates it, keeping the others.

use std::path::Path;

use crate::storage::atomic::write_atomic;
use crate::storage::paths::TASK_CONFIG_FILE;
use crate::yaml::{Mapping, Value};

use super::error::RunnerError;

/// The value of `key` in the TASK-CONFIG.yaml of `task_dir` (`None` without the file or the
/// key); a file that is not YAML is an error naming it.
pub fn read_key(task_dir: &Path, key: &str) -> Result<Option<Value>, RunnerError> {
    let path = task_dir.join(TASK_CONFIG_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RunnerError::io("read", &path, e)),
    };
    let doc: Value = crate::yaml::from_str(&text).map_err(|e| {
        RunnerError::invalid(path.display().to_string(), format!("invalid YAML: {e}"))
    })?;
    Ok(doc.get(key).filter(|v| !v.is_null()).cloned())
}

/// Sets `key` to `value` (`None` removes it) in the TASK-CONFIG.yaml of `task_dir`, keeping
/// the other keys; the file is removed when nothing is left, and written atomically otherwise.
pub fn write_key(task_dir: &Path, key: &str, value: Option<Value>) -> Result<(), RunnerError> {
    let path = task_dir.join(TASK_CONFIG_FILE);
    let mut map = match std::fs::read_to_string(&path) {
        Ok(text) => match crate::yaml::from_str::<Value>(&text) {
            Ok(Value::Mapping(map)) => map,
            _ => Mapping::new(),
        },
        Err(_) => Mapping::new(),
    };
    match value {
        Some(value) => map.insert(Value::String(key.into()), value),
        None => map.remove(key),
    };
    if map.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(RunnerError::io("remove", &path, e))
            }
            _ => Ok(()),
        };
    }
    let text = crate::yaml::to_string(&Value::Mapping(map))
        .map_err(|e| RunnerError::invalid(path.display().to_string(), e.to_string()))?;
    std::fs::create_dir_all(task_dir)
        .map_err(|e| RunnerError::io("create directory", task_dir, e))?;
    write_atomic(&path, text.as_bytes()).map_err(|e| RunnerError::io("write", &path, e))
}
