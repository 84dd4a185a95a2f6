//! `scripts/start-conductor.sh` (binary choice, argument pass-through, `--dry-run`) and
//! `scripts/install.sh` (files installed into a prefix, from already built binaries).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{conductor_bin, run, run_agent_bin, text, Sandbox};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

/// A copy of start-conductor.sh in `<sandbox>/<dir>/`, beside the binaries `bins` (symlinks
/// to the built ones).
fn launcher_beside(sb: &Sandbox, dir: &str, bins: &[&str]) -> PathBuf {
    let dir = sb.path().join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("start-conductor.sh");
    std::fs::copy(script("start-conductor.sh"), &copy).unwrap();
    for bin in bins {
        let target = if *bin == "conductor" {
            conductor_bin()
        } else {
            run_agent_bin()
        };
        std::os::unix::fs::symlink(target, dir.join(bin)).unwrap();
    }
    copy
}

/// Runs the launcher with `PATH` = `path` plus the system dirs (for bash, sed…).
fn launch(
    sb: &Sandbox,
    launcher: &Path,
    path: Option<&Path>,
    args: &[&str],
) -> std::process::Output {
    let mut search = String::new();
    if let Some(p) = path {
        search.push_str(&format!("{}:", p.display()));
    }
    search.push_str("/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin");
    let mut cmd = sb.command(Path::new("bash"));
    cmd.arg(launcher).args(args).env("PATH", search);
    cmd.env_remove("CONDUCTOR_BIN").env_remove("RUN_AGENT_BIN");
    run(&mut cmd)
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn launcher_prefers_conductor_beside_it_then_run_agent_serve() {
    let sb = Sandbox::new();
    let both = launcher_beside(&sb, "both", &["conductor", "run-agent"]);
    let out = launch(
        &sb,
        &both,
        None,
        &["--dry-run", "--config", "my config.yaml"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let dir = both.parent().unwrap().display().to_string();
    assert_eq!(
        stdout(&out),
        format!("{dir}/conductor --config my\\ config.yaml")
    );

    let only_run_agent = launcher_beside(&sb, "ra", &["run-agent"]);
    let out = launch(&sb, &only_run_agent, None, &["--port", "1", "--dry-run"]);
    let dir = only_run_agent.parent().unwrap().display().to_string();
    assert_eq!(
        stdout(&out),
        format!("{dir}/run-agent serve --port 1"),
        "{}",
        text(&out)
    );
}

#[test]
fn launcher_finds_binaries_on_path_and_fails_clearly_without_any() {
    let sb = Sandbox::new();
    let alone = launcher_beside(&sb, "alone", &[]);
    let path_dir = sb.path().join("on-path");
    std::fs::create_dir_all(&path_dir).unwrap();
    std::os::unix::fs::symlink(run_agent_bin(), path_dir.join("run-agent")).unwrap();
    let out = launch(&sb, &alone, Some(&path_dir), &["--dry-run"]);
    assert_eq!(
        stdout(&out),
        format!("{}/run-agent serve", path_dir.display()),
        "{}",
        text(&out)
    );
    std::os::unix::fs::symlink(conductor_bin(), path_dir.join("conductor")).unwrap();
    let out = launch(&sb, &alone, Some(&path_dir), &["--dry-run"]);
    assert_eq!(stdout(&out), format!("{}/conductor", path_dir.display()));

    // Nothing anywhere (the system dirs hold neither binary).
    if Command::new("sh")
        .args(["-c", "PATH=/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin command -v conductor || command -v run-agent"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("skipped the not-found case: a binary is installed system-wide");
        return;
    }
    let out = launch(&sb, &alone, None, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("neither 'conductor' nor 'run-agent' found"),
        "{}",
        text(&out)
    );
}

#[test]
fn launcher_execs_the_binary_with_the_arguments() {
    let sb = Sandbox::new();
    // run-agent serve --help proves the pass-through reached `serve` of the real binary.
    let ra = launcher_beside(&sb, "ra", &["run-agent"]);
    let out = launch(&sb, &ra, None, &["--port", "notaport"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--port"),
        "{}",
        text(&out)
    );
    let both = launcher_beside(&sb, "both", &["conductor", "run-agent"]);
    let out = launch(&sb, &both, None, &["--version"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).starts_with("conductor "), "{}", text(&out));
}

#[test]
fn install_script_puts_binaries_completions_and_man_pages_into_the_prefix() {
    let sb = Sandbox::new();
    let prefix = sb.path().join("prefix");
    let built = run_agent_bin().parent().unwrap().to_path_buf();
    let mut cmd = sb.command(Path::new("bash"));
    cmd.arg(script("install.sh"))
        .arg("--prefix")
        .arg(&prefix)
        .arg("--from")
        .arg(&built);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", text(&out));
    let report = stdout(&out);
    for file in [
        "bin/run-agent",
        "bin/conductor",
        "share/bash-completion/completions/run-agent",
        "share/bash-completion/completions/conductor",
        "share/zsh/site-functions/_run-agent",
        "share/zsh/site-functions/_conductor",
        "share/fish/vendor_completions.d/run-agent.fish",
        "share/fish/vendor_completions.d/conductor.fish",
        "share/man/man1/run-agent.1",
        "share/man/man1/run-agent-task.1",
        "share/man/man1/conductor.1",
    ] {
        let path = prefix.join(file);
        assert!(path.is_file(), "{file} missing\n{report}");
        assert!(
            report.contains(&path.display().to_string()),
            "{file} not reported\n{report}"
        );
    }
    // The installed binary runs, and the completion scripts call the installed binary.
    let out = run(Command::new(prefix.join("bin/run-agent")).arg("--version"));
    assert!(out.status.success(), "{}", text(&out));
    let bash = std::fs::read_to_string(prefix.join("share/bash-completion/completions/run-agent"))
        .unwrap();
    assert!(
        bash.contains(&prefix.join("bin/run-agent").display().to_string()),
        "{bash}"
    );

    // Bad arguments are refused with the allowed ones named, and nothing is installed.
    let mut cmd = sb.command(Path::new("bash"));
    cmd.arg(script("install.sh")).args(["--prefx", "/nowhere"]);
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--prefix DIR"),
        "{}",
        text(&out)
    );
    let mut cmd = sb.command(Path::new("bash"));
    cmd.arg(script("install.sh"))
        .arg("--prefix")
        .arg(sb.path().join("p2"))
        .arg("--from")
        .arg(sb.path().join("no-such-dir"));
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing"),
        "{}",
        text(&out)
    );
    assert!(!sb.path().join("p2/bin/run-agent").exists());
}
