//! tracing setup: text or JSON lines on stderr, level from `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. Safe to call once per process.
pub fn init(format: LogFormat) {
    // Without RUST_LOG a plain level filter: parsing directives (EnvFilter) costs a short
    // command such as `bus post` a noticeable part of its start-up.
    let result = match std::env::var_os(EnvFilter::DEFAULT_ENV) {
        Some(_) => {
            let filter =
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
            let builder = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr);
            match format {
                LogFormat::Text => builder.with_ansi(false).try_init(),
                LogFormat::Json => builder.json().try_init(),
            }
        }
        None => {
            let builder = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::INFO)
                .with_writer(std::io::stderr);
            match format {
                LogFormat::Text => builder.with_ansi(false).try_init(),
                LogFormat::Json => builder.json().try_init(),
            }
        }
    };
    // A second init (tests calling main twice) keeps the first subscriber.
    let _ = result;
}
