//! Build identity: crate version and git commit, shown by `--version` and `/api/v1/status`.

/// The crate version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The short git commit the binary was built from, or `unknown` outside a git checkout.
pub const GIT_COMMIT: &str = env!("CONDUCTOR_GIT_COMMIT");

/// `<version> (<commit>)`, the long form printed by `--version`.
pub fn long_version() -> &'static str {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (",
        env!("CONDUCTOR_GIT_COMMIT"),
        ")"
    )
}
