//! The HCL front end: text → [`Config`], using real HCL (hcl-rs).
//!
//! Shape: one labelled block per agent, one plain block per section:
//!
//! ```hcl
//! agent "fast" {
//!   type       = "codex"
//!   token_file = "~/.codex-key"
//! }
//! api {
//!   port = 14355
//! }
//! ```
//!
//! Agent keys are therefore spelled `agent.<name>.<key>` in HCL error messages and
//! `agents.<name>.<key>` in YAML ones. Lines are found from the parser's spans.

use std::collections::BTreeMap;

use hcl::edit::structure::{Body, Structure};
use hcl::edit::Span;
use serde::Deserialize;

use super::error::{Location, ParseFailure};
use super::schema::{
    deserialize_agents, split_missing_type, AgentConfig, ApiConfig, BusConfig, Config, Defaults,
    ModelPrice, StorageConfig, WebhookConfig,
};

/// The HCL file shape: like [`Config`], with agents as `agent "<name>"` blocks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HclFile {
    #[serde(default, deserialize_with = "deserialize_agents")]
    agent: BTreeMap<String, AgentConfig>,
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    api: ApiConfig,
    #[serde(default)]
    webhook: WebhookConfig,
    #[serde(default)]
    storage: StorageConfig,
    #[serde(default)]
    bus: BusConfig,
    #[serde(default)]
    pricing: BTreeMap<String, ModelPrice>,
}

/// Parses an HCL config document.
pub(crate) fn parse(text: &str) -> Result<Config, ParseFailure> {
    let body = hcl::edit::parser::parse_body(text).map_err(|err| ParseFailure::Syntax {
        location: Some(Location {
            line: err.location().line(),
            column: err.location().column(),
        }),
        message: err.message().to_string(),
    })?;
    check_structure(&body, text)?;
    let deserializer = hcl::de::Deserializer::from_body(hcl::Body::from(body.clone()));
    let file: HclFile = serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let raw_key = super::yaml::path_string(err.path());
        let message = err.into_inner().to_string();
        let (key, message) = match split_missing_type(&message) {
            Some((name, message)) => (format!("agents.{name}.type"), message),
            None => (canonical_key(&raw_key), message),
        };
        ParseFailure::Invalid {
            location: locate(&body, text, &key),
            key,
            message,
        }
    })?;
    Ok(Config {
        agents: file.agent,
        defaults: file.defaults,
        api: file.api,
        webhook: file.webhook,
        storage: file.storage,
        bus: file.bus,
        pricing: file.pricing,
    })
}

/// Maps the HCL spelling `agent.<name>…` to the canonical `agents.<name>…`.
fn canonical_key(key: &str) -> String {
    match key.strip_prefix("agent") {
        Some(rest) if rest.is_empty() || rest.starts_with('.') || rest.starts_with('[') => {
            format!("agents{rest}")
        }
        _ => key.to_string(),
    }
}

/// Rejects shapes the JSON-spec mapping would turn into confusing type errors: repeated
/// sections, agent blocks without exactly one label, and repeated agent names.
fn check_structure(body: &Body, text: &str) -> Result<(), ParseFailure> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut agents: BTreeMap<String, usize> = BTreeMap::new();
    for structure in body.iter() {
        let (name, labels) = match structure {
            Structure::Attribute(attr) => (attr.key.as_str().to_string(), None),
            Structure::Block(block) => (
                block.ident.as_str().to_string(),
                Some(
                    block
                        .labels
                        .iter()
                        .map(|l| l.as_str().to_string())
                        .collect::<Vec<_>>(),
                ),
            ),
        };
        let location = structure
            .span()
            .map(|span| offset_location(text, span.start));
        if name == "agent" {
            let Some(labels) = labels else {
                return Err(ParseFailure::Invalid {
                    key: "agents".to_string(),
                    location,
                    message: "`agent` must be a block with the agent's name as its label, e.g. \
                              agent \"claude\" { type = \"claude\" }"
                        .to_string(),
                });
            };
            if labels.len() != 1 {
                return Err(ParseFailure::Invalid {
                    key: "agents".to_string(),
                    location,
                    message: format!(
                        "an `agent` block needs exactly one label (the agent's name), found {}",
                        labels.len()
                    ),
                });
            }
            let label = labels[0].clone();
            if let Some(first) = agents.insert(label.clone(), location.map_or(0, |l| l.line)) {
                return Err(ParseFailure::Invalid {
                    key: format!("agents.{label}"),
                    location,
                    message: format!("agent \"{label}\" is defined twice (first on line {first})"),
                });
            }
            continue;
        }
        if name == "pricing" && labels.is_some() {
            // `pricing "<model>" { … }` blocks, one per model, like agent blocks.
            let labels = labels.unwrap_or_default();
            if labels.len() != 1 {
                return Err(ParseFailure::Invalid {
                    key: "pricing".to_string(),
                    location,
                    message: format!(
                        "a `pricing` block needs exactly one label (the model's name), found {}",
                        labels.len()
                    ),
                });
            }
            let label = format!("pricing.{}", labels[0]);
            if let Some(first) = seen.insert(label.clone(), location.map_or(0, |l| l.line)) {
                return Err(ParseFailure::Invalid {
                    key: label,
                    location,
                    message: format!(
                        "the price of model \"{}\" is given twice (first on line {first})",
                        labels[0]
                    ),
                });
            }
            continue;
        }
        if let Some(first) = seen.insert(name.clone(), location.map_or(0, |l| l.line)) {
            return Err(ParseFailure::Invalid {
                key: name.clone(),
                location,
                message: format!(
                    "`{name}` is given twice (first on line {first}); write one `{name} {{ … }}` block"
                ),
            });
        }
    }
    Ok(())
}

/// Finds the line of a canonical key path in HCL text (for errors found after parsing).
pub(crate) fn locate_in_text(text: &str, key: &str) -> Option<Location> {
    let body = hcl::edit::parser::parse_body(text).ok()?;
    locate(&body, text, key)
}

/// Finds the line of a canonical key path in the parsed body, as deep as it can be followed.
fn locate(body: &Body, text: &str, key: &str) -> Option<Location> {
    let segments = super::keys::key_segments(key);
    let (first, rest) = segments.split_first()?;
    let (section, rest): (Option<&Structure>, &[&str]) = if *first == "agents" {
        match rest.split_first() {
            Some((name, rest)) => (
                body.iter().find(|s| match s {
                    Structure::Block(b) => {
                        b.ident.as_str() == "agent"
                            && b.labels.first().map(|l| l.as_str()) == Some(*name)
                    }
                    Structure::Attribute(_) => false,
                }),
                rest,
            ),
            None => (body.iter().find(|s| ident(s) == "agent"), rest),
        }
    } else {
        (body.iter().find(|s| ident(s) == *first), rest)
    };
    let section = section?;
    let mut span = section.span();
    if let (Structure::Block(block), Some(leaf)) = (section, rest.first()) {
        if let Some(attr) = block.body.iter().find(|s| ident(s) == *leaf) {
            span = attr.span().or(span);
        }
    }
    span.map(|span| offset_location(text, span.start))
}

fn ident(structure: &Structure) -> &str {
    match structure {
        Structure::Attribute(attr) => attr.key.as_str(),
        Structure::Block(block) => block.ident.as_str(),
    }
}

/// 1-based line and column of a byte offset.
fn offset_location(text: &str, offset: usize) -> Location {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Location { line, column }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AgentType;

    fn invalid(text: &str) -> (String, Option<Location>, String) {
        ParseFailure::expect_invalid(parse(text))
    }

    #[test]
    fn blocks_parse() {
        let config = parse(
            "agent \"claude\" {}\nagent \"fast\" {\n  type = \"codex\"\n}\napi {\n  port = 9000\n}\n",
        )
        .unwrap();
        assert_eq!(config.agents["claude"].agent_type, AgentType::Claude);
        assert_eq!(config.agents["fast"].agent_type, AgentType::Codex);
        assert_eq!(config.api.port, 9000);
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_has_path_and_line() {
        let (key, loc, msg) = invalid("api {\n  host = \"x\"\n  prot = 5\n}\n");
        assert_eq!(key, "api.prot");
        assert_eq!(loc, Some(Location { line: 3, column: 3 }));
        assert!(msg.contains("unknown field `prot`"), "{msg}");
        let (key, loc, _) = invalid("agent \"a\" {\n  type = \"claude\"\n  tokn = \"x\"\n}\n");
        assert_eq!(key, "agents.a.tokn");
        assert_eq!(loc.map(|l| l.line), Some(3));
        let (key, loc, _) = invalid("\nsse {\n}\n");
        assert_eq!(key, "sse");
        assert_eq!(loc.map(|l| l.line), Some(2));
    }

    #[test]
    fn wrong_type_has_path() {
        let (key, loc, msg) = invalid("api {\n  port = \"x\"\n}\n");
        assert_eq!(key, "api.port");
        assert_eq!(loc.map(|l| l.line), Some(2));
        assert!(msg.contains("invalid type"), "{msg}");
    }

    #[test]
    fn structure_errors() {
        let (key, _, msg) = invalid("api {\n}\napi {\n}\n");
        assert_eq!(key, "api");
        assert!(msg.contains("twice"), "{msg}");
        let (key, _, _) = invalid("agent {\n  type = \"claude\"\n}\n");
        assert_eq!(key, "agents");
        let (key, loc, msg) =
            invalid("agent \"a\" { type = \"claude\" }\nagent \"a\" { type = \"codex\" }\n");
        assert_eq!(key, "agents.a");
        assert_eq!(loc.map(|l| l.line), Some(2));
        assert!(msg.contains("first on line 1"), "{msg}");
        let (_, _, msg) = invalid("agent \"a\" \"b\" {}\n");
        assert!(msg.contains("exactly one label"), "{msg}");
        let (key, _, _) = invalid("agent \"mine\" { token = \"x\" }\n");
        assert_eq!(key, "agents.mine.type");
    }

    #[test]
    fn syntax_error_has_line() {
        match parse("api {\n  port = \n}\n") {
            Err(ParseFailure::Syntax { location, message }) => {
                assert_eq!(location.map(|l| l.line), Some(2));
                assert!(message.contains("expected"), "{message}");
            }
            other => panic!("expected syntax error, got {other:?}"),
        }
    }
}
