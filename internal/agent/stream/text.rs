//! Text helpers shared by the stream parsers.

use serde_json::Value;

/// Text in a value: a string, an object's text-like key, or an array's texts joined by `\n`.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(text_of)
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Object(map) => [
            "text",
            "content",
            "result",
            "message",
            "output",
            "output_text",
        ]
        .iter()
        .filter_map(|k| map.get(*k).map(text_of))
        .find(|t| !t.is_empty())
        .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The first non-empty text among `keys` of `value`.
pub fn first_text(value: &Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .filter_map(|k| value.get(*k).map(text_of))
        .find(|t| !t.trim().is_empty())
}

/// Merge of a whole message: a chunk already emitted as a prefix is dropped, an extension
/// adds its new suffix, anything else starts a new line.
pub fn merge(out: &mut String, chunk: &str) {
    if chunk.is_empty() || out.starts_with(chunk) {
        return;
    }
    if let Some(rest) = chunk.strip_prefix(out.as_str()) {
        out.push_str(rest);
        return;
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(chunk);
}
