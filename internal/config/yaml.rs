//! The YAML front end: text → [`Config`], with key paths and lines in errors.
//!
//! YAML goes through `crate::yaml`, the one module that names the YAML library.

use super::error::{Location, ParseFailure};
use super::schema::{split_missing_type, Config};

/// Parses a YAML config document.
pub(crate) fn parse(text: &str) -> Result<Config, ParseFailure> {
    // A first pass to a generic value separates syntax errors from schema errors: the typed
    // pass below is lazy and would report a broken flow sequence as a type error.
    let value: crate::yaml::Value = crate::yaml::from_str(text).map_err(|err| {
        let location = location_of(&err);
        ParseFailure::Syntax {
            message: clean_message(&err.to_string(), location, ""),
            location,
        }
    })?;
    if value.is_null() {
        return Ok(Config::default());
    }
    let deserializer = crate::yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let key = path_string(err.path());
        let inner = err.into_inner();
        let location = location_of(&inner);
        let message = clean_message(&inner.to_string(), location, &key);
        match split_missing_type(&message) {
            Some((name, message)) => ParseFailure::Invalid {
                key: format!("agents.{name}.type"),
                location,
                message,
            },
            None => ParseFailure::Invalid {
                key,
                location,
                message,
            },
        }
    })
}

fn location_of(err: &crate::yaml::Error) -> Option<Location> {
    err.location().map(|loc| Location {
        line: loc.line(),
        column: loc.column(),
    })
}

/// The dotted key path, empty for the document root.
pub(crate) fn path_string(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text == "." {
        String::new()
    } else {
        text
    }
}

/// Drops what the error report shows separately: serde_yaml's trailing `at line L column C`
/// and its leading `<path>: ` (a prefix of the full key path).
fn clean_message(message: &str, location: Option<Location>, key: &str) -> String {
    let mut message = message;
    if let Some(loc) = location {
        let suffix = format!(" at line {} column {}", loc.line, loc.column);
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped;
        }
    }
    let boundaries = key
        .char_indices()
        .filter(|&(_, c)| c == '.' || c == '[')
        .map(|(i, _)| i)
        .chain(std::iter::once(key.len()));
    let mut best: Option<usize> = None;
    for end in boundaries {
        let prefix = &key[..end];
        if !prefix.is_empty() && message.starts_with(prefix) && message[end..].starts_with(": ") {
            best = Some(end + 2);
        }
    }
    match best {
        Some(cut) => message[cut..].to_string(),
        None => message.to_string(),
    }
}

/// Best-effort line of a canonical key path in block-style YAML (for errors found after
/// parsing); follows the path as deep as it can and returns the deepest key found.
pub(crate) fn locate(text: &str, key: &str) -> Option<Location> {
    let segments = super::keys::key_segments(key);
    let mut found: Option<Location> = None;
    let mut depth = 0;
    let mut parent_indent: Option<usize> = None;
    for (index, line) in text.lines().enumerate() {
        if depth == segments.len() {
            break;
        }
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if let Some(parent) = parent_indent {
            if indent <= parent {
                break;
            }
        } else if indent != 0 {
            continue;
        }
        let name = segments[depth];
        let is_key = [
            format!("{name}:"),
            format!("\"{name}\":"),
            format!("'{name}':"),
        ]
        .iter()
        .any(|k| trimmed.starts_with(k.as_str()));
        if is_key {
            found = Some(Location {
                line: index + 1,
                column: indent + 1,
            });
            parent_indent = Some(indent);
            depth += 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(text: &str) -> (String, Option<Location>, String) {
        ParseFailure::expect_invalid(parse(text))
    }

    #[test]
    fn empty_and_null_documents_are_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
        assert_eq!(parse("~\n").unwrap(), Config::default());
        assert_eq!(parse("# only a comment\n").unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_names_path_line_and_allowed_keys() {
        let (key, loc, msg) = invalid("api:\n  host: x\n  prot: 5\n");
        assert_eq!(key, "api.prot");
        assert_eq!(loc, Some(Location { line: 3, column: 3 }));
        assert!(
            msg.starts_with("unknown field `prot`, expected one of"),
            "{msg}"
        );
        assert!(msg.contains("`port`"), "{msg}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let (key, loc, msg) = invalid("api:\n  port: abc\n");
        assert_eq!(key, "api.port");
        assert_eq!(loc.map(|l| l.line), Some(2));
        assert!(msg.contains("invalid type: string \"abc\""), "{msg}");
        assert!(
            !msg.contains("line"),
            "location is reported separately: {msg}"
        );
    }

    #[test]
    fn list_items_have_indices() {
        let (key, _, _) = invalid("api:\n  cors_origins: [a, {x: 1}]\n");
        assert_eq!(key, "api.cors_origins[1]");
    }

    #[test]
    fn agent_without_type_points_at_its_type() {
        let (key, _, msg) = invalid("agents:\n  mine:\n    token: x\n");
        assert_eq!(key, "agents.mine.type");
        assert_eq!(
            msg,
            "agent `mine` has no `type` and its name is not an agent type"
        );
    }

    #[test]
    fn syntax_errors_are_syntax() {
        match parse("api: [\n") {
            Err(ParseFailure::Syntax { location, message }) => {
                assert!(location.is_some());
                assert!(!message.is_empty());
            }
            other => panic!("expected syntax error, got {other:?}"),
        }
        assert!(matches!(
            parse("api:\n  host: x\n   port: 3\n"),
            Err(ParseFailure::Syntax { .. })
        ));
    }

    #[test]
    fn agent_type_defaults_to_name() {
        let config = parse("agents:\n  claude:\n  gemini: {}\n").unwrap();
        assert_eq!(
            config.agents["claude"].agent_type,
            crate::config::AgentType::Claude
        );
        assert_eq!(
            config.agents["gemini"].agent_type,
            crate::config::AgentType::Gemini
        );
    }

    #[test]
    fn locate_follows_block_keys() {
        let text = "# c\napi:\n  host: x\n  port: 0\nagents:\n  fast:\n    type: codex\n    token_file: k\n";
        assert_eq!(
            locate(text, "api.port"),
            Some(Location { line: 4, column: 3 })
        );
        assert_eq!(
            locate(text, "agents.fast.token_file").map(|l| l.line),
            Some(8)
        );
        assert_eq!(
            locate(text, "agents.slow.token_file").map(|l| l.line),
            Some(5)
        );
        assert_eq!(locate(text, "webhook.url"), None);
    }
}
