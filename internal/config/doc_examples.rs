//! Tests that the examples in `docs/config.md` are true: every `yaml`/`hcl` block loads, the
//! YAML and HCL examples are the same config, and the sample error messages are what the
//! loader prints.

use std::path::Path;

use super::error::Format;
use super::load::parse_text;

const DOC: &str = include_str!("../../docs/config.md");

/// The bodies of the fenced blocks tagged `lang`.
fn blocks(lang: &str) -> Vec<String> {
    let fence = format!("```{lang}");
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in DOC.lines() {
        match &mut current {
            None if line.trim_end() == fence => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => out.extend(current.take()),
            Some(body) => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    out
}

#[test]
fn yaml_and_hcl_examples_load_to_the_same_config() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join(".codex-key"), "codex-token\n").unwrap();
    let home_str = home.path().display().to_string();
    let env = move |key: &str| (key == "HOME").then(|| home_str.clone());
    let dir = Path::new("/etc/conductor");

    let yaml = blocks("yaml");
    let hcl = blocks("hcl");
    assert_eq!(yaml.len(), 1, "one YAML example expected");
    assert_eq!(hcl.len(), 1, "one HCL example expected");
    let from_yaml = parse_text(&yaml[0], &dir.join("config.yaml"), Format::Yaml, &env).unwrap();
    let from_hcl = parse_text(&hcl[0], &dir.join("config.hcl"), Format::Hcl, &env).unwrap();
    assert_eq!(from_yaml, from_hcl);
    assert_eq!(from_yaml.agents.len(), 4);
    assert_eq!(
        from_yaml.agents["fast"].token.as_deref(),
        Some("codex-token")
    );
    assert_eq!(from_yaml.defaults.timeout, 1800);
}

#[test]
fn sample_error_messages_are_real() {
    let samples = blocks("text");
    let samples: Vec<&str> = samples
        .iter()
        .flat_map(|b| b.lines())
        .filter(|l| l.starts_with("/etc/conductor/"))
        .collect();
    assert_eq!(samples.len(), 3, "three sample errors expected");
    let env = |key: &str| (key == "HOME").then(|| "/home/me".to_string());
    let dir = Path::new("/etc/conductor");

    let port = parse_text(
        "api:\n  host: 127.0.0.1\n  port: 70000\n",
        &dir.join("config.yaml"),
        Format::Yaml,
        &env,
    );
    assert_eq!(port.unwrap_err().to_string(), samples[0]);

    let hcl = "# agents\n\nagent \"claude\" {}\n\nagent \"fast\" {\n  type = \"codex\"\n  tokn = \"x\"\n}\n";
    let tokn = parse_text(hcl, &dir.join("config.hcl"), Format::Hcl, &env);
    assert_eq!(tokn.unwrap_err().to_string(), samples[1]);

    let token_file = parse_text(
        "agents:\n  fast:\n    type: codex\n    token_file: ~/.codex-key\n",
        &dir.join("config.yaml"),
        Format::Yaml,
        &env,
    );
    assert_eq!(token_file.unwrap_err().to_string(), samples[2]);
}
