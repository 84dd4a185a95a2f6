//! The module layering, checked: data flows one way (config → storage → bus → runner → api →
//! cli), self-update depends only on storage, the wire model knows no server, and the HTTP
//! client never pulls in the server.
//! A `crate::<module>` path in a module that must not know it fails the test with the file.

use std::path::{Path, PathBuf};

/// Everything above the leaf utilities.
const ABOVE_LEAVES: &[&str] = &[
    "config", "storage", "bus", "runner", "gc", "update", "wire", "client", "api", "ui", "cli",
];

/// Modules that each top-level module must not use.
fn forbidden() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("units", ABOVE_LEAVES),
        ("limit", ABOVE_LEAVES),
        ("process", ABOVE_LEAVES),
        ("version", ABOVE_LEAVES),
        ("yaml", ABOVE_LEAVES),
        ("config", &ABOVE_LEAVES[1..]),
        ("storage", &ABOVE_LEAVES[2..]),
        ("bus", &ABOVE_LEAVES[3..]),
        ("runner", &ABOVE_LEAVES[4..]),
        ("gc", &ABOVE_LEAVES[5..]),
        (
            "update",
            &["bus", "runner", "gc", "wire", "client", "api", "ui", "cli"],
        ),
        ("wire", &["runner", "gc", "client", "api", "ui", "cli"]),
        ("client", &["runner", "gc", "update", "api", "ui", "cli"]),
        ("api", &["cli"]),
        ("ui", &["api", "cli"]),
    ]
}

/// The `.rs` files of a top-level module (`internal/<name>.rs` and `internal/<name>/**`).
fn sources(name: &str) -> Vec<PathBuf> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("internal");
    let mut out = vec![];
    let file = base.join(format!("{name}.rs"));
    if file.is_file() {
        out.push(file);
    }
    let mut dirs = vec![base.join(name)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn no_module_uses_one_above_it() {
    let mut wrong = vec![];
    for (module, forbidden) in forbidden() {
        let files = sources(module);
        assert!(!files.is_empty(), "module {module} has no sources");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for other in forbidden {
                if text.contains(&format!("crate::{other}::"))
                    || text.contains(&format!("crate::{other}}}"))
                    || text.contains(&format!("crate::{other};"))
                {
                    wrong.push(format!("{} uses crate::{other}", file.display()));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "forbidden arrows:\n{}", wrong.join("\n"));
}

#[test]
fn the_wire_model_knows_no_http_server() {
    for file in sources("wire") {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for server in ["axum", "tower", "hyper"] {
            assert!(
                !text.contains(&format!("{server}::")),
                "{} uses {server}: the client must decode the wire model without the server",
                file.display()
            );
        }
    }
}
