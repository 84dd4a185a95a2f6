//! Embeds the git commit of the build into the binaries (`CONDUCTOR_GIT_COMMIT`), and links
//! release binaries as position-dependent executables.
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=CONDUCTOR_GIT_COMMIT={commit}");
    // Release binaries are not PIE: a PIE makes the dynamic loader apply ~9,000 relative
    // relocations (and copy the pages they touch) at every start, a good part of a short
    // command's cost (docs/performance.md). The objects stay position-independent; only the
    // final link fixes the address. Debug and test builds keep the default.
    if std::env::var("PROFILE").as_deref() == Ok("release")
        && std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
    {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
