//! Shared pieces of the API-client commands: building the client, tables, JSON output.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use super::ClientArgs;
use crate::client::{resolve_endpoint, ApiClient};

/// Timeout of one ordinary request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client from `--server`/`--api-key`, the environment, or the config (`--config` or the
/// one discovery finds).
pub fn client(args: &ClientArgs, timeout: Duration) -> anyhow::Result<ApiClient> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let endpoint = resolve_endpoint(
        args.server.as_deref(),
        args.api_key.as_deref(),
        args.config.as_deref(),
        &crate::config::process_env,
        &cwd,
    )?;
    Ok(ApiClient::from_endpoint(&endpoint, timeout))
}

/// Prints `value` as pretty JSON.
pub fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A value as table text: `-` when it shows as nothing.
pub fn text(value: impl std::fmt::Display) -> String {
    let shown = value.to_string();
    if shown.is_empty() {
        "-".to_string()
    } else {
        shown
    }
}

/// An optional value as table text: `-` when absent or empty.
pub fn opt_text<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map(text).unwrap_or_else(|| "-".to_string())
}

/// Renders rows under `headers` with columns padded to their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| -> String {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            if i == last {
                out.push_str(&c);
            } else {
                let pad = widths[i].saturating_sub(c.chars().count());
                out.push_str(&c);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_columns() {
        let t = table(
            &["A", "BB"],
            &[
                vec!["long".into(), "x".into()],
                vec!["y".into(), "z".into()],
            ],
        );
        assert_eq!(t, "A     BB\nlong  x\ny     z\n");
    }

    #[test]
    fn cells() {
        assert_eq!(text(""), "-");
        assert_eq!(text(3), "3");
        assert_eq!(opt_text(None::<&str>), "-");
        assert_eq!(opt_text(Some("a")), "a");
    }
}
