//! e2e: config — `run-agent validate` on good and bad YAML/HCL files, discovery, env
//! overrides with provenance, secret masking and agent checks.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{free_port, run, text, Sandbox, Server};

const API_KEY: &str = "e2e-api-key-SECRET-0001";
const AGENT_TOKEN: &str = "e2e-agent-token-SECRET-0002";
const FILE_TOKEN: &str = "e2e-file-token-SECRET-0003";
const HOOK_SECRET: &str = "e2e-hook-SECRET-0004";

fn good_yaml() -> String {
    format!(
        "agents:\n  claude: {{}}\n  pplx:\n    type: perplexity\n    token_file: keys/pplx\n  \
         script:\n    type: command\n    command: [\"./agent.sh\", \"--flag\"]\n\
         defaults:\n  agent: claude\n  timeout: 2h\n\
         api:\n  host: 127.0.0.1\n  port: 15000\n\
         webhook:\n  url: https://hooks.example.com/x\n  secret: {HOOK_SECRET}\n\
         storage:\n  runs_dir: runs\n"
    )
}

fn good_hcl() -> String {
    format!(
        "agent \"claude\" {{}}\n\
         agent \"pplx\" {{\n  type = \"perplexity\"\n  token_file = \"keys/pplx\"\n}}\n\
         agent \"script\" {{\n  type = \"command\"\n  command = [\"./agent.sh\", \"--flag\"]\n}}\n\
         defaults {{\n  agent = \"claude\"\n  timeout = 7200\n}}\n\
         api {{\n  host = \"127.0.0.1\"\n  port = 15000\n}}\n\
         webhook {{\n  url = \"https://hooks.example.com/x\"\n  secret = \"{HOOK_SECRET}\"\n}}\n\
         storage {{\n  runs_dir = \"runs\"\n}}\n"
    )
}

/// A sandbox with a fake `claude` on PATH, the command agent's script and a token file.
fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    write_executable(
        &sb.path().join("bin/claude"),
        "#!/bin/sh\necho \"claude 9.9.9 (fake)\"\n",
    );
    write_executable(&sb.path().join("agent.sh"), "#!/bin/sh\ncat\n");
    sb.write("keys/pplx", &format!("{FILE_TOKEN}\n"));
    sb
}

fn write_executable(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `run-agent validate ARGS` with the sandbox's `bin` first on PATH.
fn validate(sb: &Sandbox, args: &[&str]) -> Command {
    let mut cmd = sb.run_agent();
    let path = format!(
        "{}:{}",
        sb.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.arg("validate").args(args).env("PATH", path);
    cmd
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn good_yaml_is_discovered_and_reported_with_sources() {
    let sb = sandbox();
    let config = sb.write("config.yaml", &good_yaml());
    let out = run(&mut validate(&sb, &[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let so = stdout(&out);
    for line in [
        format!("config = {} (file)", config.display()),
        format!("root = {} (file)", sb.path().join("runs").display()),
        "api.host = 127.0.0.1 (file)".to_string(),
        "api.port = 15000 (file)".to_string(),
        "api.port_explicit = false".to_string(),
        "api.api_key = <unset> (default)".to_string(),
        "defaults.agent = claude (file)".to_string(),
        "defaults.timeout = 7200s (file)".to_string(),
        "defaults.max_restarts = 100 (default)".to_string(),
        "task_start_disabled = false (default)".to_string(),
    ] {
        assert!(
            so.lines().any(|l| l == line),
            "missing {line:?}\n{}",
            text(&out)
        );
    }
    let claude = so
        .lines()
        .find(|l| l.starts_with("agents.claude = "))
        .unwrap();
    assert!(claude.contains("program claude"), "{claude}");
    assert!(
        claude.contains("version \"claude 9.9.9 (fake)\""),
        "{claude}"
    );
    let script = so
        .lines()
        .find(|l| l.starts_with("agents.script = "))
        .unwrap();
    assert!(
        script.contains(&format!("-> {}", sb.path().join("agent.sh").display())),
        "{script}"
    );
    let pplx = so
        .lines()
        .find(|l| l.starts_with("agents.pplx = "))
        .unwrap();
    assert!(pplx.contains("(token_file)"), "{pplx}");
    let all = text(&out);
    assert!(!all.contains(FILE_TOKEN), "token leaked: {all}");
    assert!(!all.contains(HOOK_SECRET), "webhook secret leaked: {all}");
}

#[test]
fn good_hcl_equals_good_yaml() {
    let sb = sandbox();
    sb.write("a.yaml", &good_yaml());
    sb.write("b.hcl", &good_hcl());
    let yaml = run(&mut validate(&sb, &["--config", "a.yaml", "--json"]));
    let hcl = run(&mut validate(&sb, &["--config", "b.hcl", "--json"]));
    assert_eq!(yaml.status.code(), Some(0), "{}", text(&yaml));
    assert_eq!(hcl.status.code(), Some(0), "{}", text(&hcl));
    let yaml: serde_json::Value = serde_json::from_slice(&yaml.stdout).unwrap();
    let hcl: serde_json::Value = serde_json::from_slice(&hcl.stdout).unwrap();
    assert_eq!(yaml["settings"]["config"], hcl["settings"]["config"]);
    assert_eq!(hcl["config_source"], "flag");
    assert_eq!(hcl["ok"], true);
    assert_eq!(hcl["settings"]["port"]["value"], 15000);
    assert_eq!(hcl["settings"]["port"]["source"], "file");
    assert_eq!(
        hcl["settings"]["config"]["agents"]["pplx"]["token_file"],
        sb.path().join("keys/pplx").display().to_string()
    );
}

#[test]
fn each_bad_config_exits_2_naming_file_and_key() {
    let sb = sandbox();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "syntax.yaml",
            "api:\n  host: x\n   port: 3\n",
            &["YAML syntax error", "line 3"],
        ),
        (
            "syntax.hcl",
            "api {\n  port = \n}\n",
            &["HCL syntax error", "line 2"],
        ),
        (
            "unknown.yaml",
            "api:\n  prot: 1\n",
            &["`api.prot`", "line 2", "unknown field", "host, port"],
        ),
        (
            "unknown.hcl",
            "agent \"fast\" {\n  type = \"codex\"\n  tokn = \"x\"\n}\n",
            &["`agent.fast.tokn`", "line 3", "token_file"],
        ),
        (
            "type.yaml",
            "bus:\n  fsync: [1]\n",
            &["`bus.fsync`", "line 2", "true or false"],
        ),
        (
            "value.yaml",
            "api:\n  port: 0\n",
            &["`api.port`", "line 2", "1 to 65535"],
        ),
        (
            "value.hcl",
            "webhook {\n  events = [\"run_end\"]\n}\n",
            &["`webhook.events[0]`", "run_start, run_stop, run_crash"],
        ),
        (
            "tokenfile.yaml",
            "agents:\n  fast:\n    type: codex\n    token_file: nope.key\n",
            &["`agents.fast.token_file`", "nope.key", "does not exist"],
        ),
    ];
    for (name, body, needles) in cases {
        let path = sb.write(name, body);
        let out = run(&mut validate(&sb, &["--config", name]));
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&path.display().to_string()),
            "{name}: file not named: {err}"
        );
        for needle in *needles {
            assert!(err.contains(needle), "{name}: {needle:?} missing: {err}");
        }
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{name}: not one paragraph: {err}"
        );
    }
}

#[test]
fn env_overrides_show_source_env_and_secrets_stay_masked() {
    let sb = sandbox();
    sb.write("config.yaml", &good_yaml());
    let mut cmd = validate(&sb, &[]);
    cmd.env("CONDUCTOR_PORT", "15555")
        .env("CONDUCTOR_HOST", "127.0.0.2")
        .env("CONDUCTOR_ROOT", "elsewhere")
        .env("CONDUCTOR_API_KEY", API_KEY)
        .env("CONDUCTOR_AGENT_PPLX_TOKEN", AGENT_TOKEN)
        .env("CONDUCTOR_DISABLE_TASK_START", "yes");
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let so = stdout(&out);
    for line in [
        "api.port = 15555 (env)".to_string(),
        "api.port_explicit = true".to_string(),
        "api.host = 127.0.0.2 (env)".to_string(),
        format!("root = {} (env)", sb.path().join("elsewhere").display()),
        "api.api_key = ****0001 (env)".to_string(),
        "api.auth_enabled = true".to_string(),
        "task_start_disabled = true (env)".to_string(),
    ] {
        assert!(
            so.lines().any(|l| l == line),
            "missing {line:?}\n{}",
            text(&out)
        );
    }
    let pplx = so
        .lines()
        .find(|l| l.starts_with("agents.pplx = "))
        .unwrap();
    assert!(pplx.contains("token ****0002 (env)"), "{pplx}");

    let mut json = validate(&sb, &["--json"]);
    json.env("CONDUCTOR_API_KEY", API_KEY)
        .env("CONDUCTOR_AGENT_PPLX_TOKEN", AGENT_TOKEN);
    let json = run(&mut json);
    assert_eq!(json.status.code(), Some(0), "{}", text(&json));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["settings"]["api_key"]["source"], "env");
    assert_eq!(doc["settings"]["api_key"]["value"], "****0001");
    for output in [text(&out), text(&json)] {
        for secret in [API_KEY, AGENT_TOKEN, FILE_TOKEN, HOOK_SECRET] {
            assert!(!output.contains(secret), "{secret} leaked:\n{output}");
        }
    }
}

#[test]
fn no_config_uses_defaults_and_missing_explicit_config_fails() {
    let sb = Sandbox::new();
    let out = run(&mut validate(&sb, &[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("no config file found (searched: "), "{err}");
    assert!(
        err.contains(&sb.path().join("config.yaml").display().to_string()),
        "{err}"
    );
    assert!(
        err.contains(
            &sb.path()
                .join(".config/conductor/config.hcl")
                .display()
                .to_string()
        ),
        "{err}"
    );
    assert!(err.contains("); using defaults"), "{err}");
    let so = stdout(&out);
    let root: PathBuf = sb.path().join("run-agent");
    assert!(
        so.contains(&format!("root = {} (default)", root.display())),
        "{so}"
    );
    assert!(so.contains("api.port = 14355 (default)"), "{so}");
    assert!(so.contains("api.host = 0.0.0.0 (default)"), "{so}");

    let out = run(&mut validate(&sb, &["--config", "missing.yaml"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&sb.path().join("missing.yaml").display().to_string()),
        "{err}"
    );
    assert!(err.contains("--config"), "{err}");

    let mut from_env = validate(&sb, &[]);
    from_env.env("CONDUCTOR_CONFIG", "gone.hcl");
    let out = run(&mut from_env);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("CONDUCTOR_CONFIG"), "{}", text(&out));
}

#[test]
fn home_config_is_found_and_conductor_validate_agrees() {
    let sb = sandbox();
    let path = sb.write(".config/conductor/config.hcl", "api {\n  port = 16000\n}\n");
    let out = run(sb.conductor().arg("validate"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let so = stdout(&out);
    assert!(
        so.contains(&format!("config = {} (file)", path.display())),
        "{so}"
    );
    assert!(so.contains("api.port = 16000 (file)"), "{so}");
}

#[test]
fn missing_agent_binary_exits_1() {
    let sb = sandbox();
    sb.write("config.yaml", "agents:\n  gemini: {}\n  claude: {}\n");
    let out = run(validate(&sb, &[]).env("PATH", sb.path().join("bin")));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let so = stdout(&out);
    let gemini = so
        .lines()
        .find(|l| l.starts_with("agents.gemini = "))
        .unwrap();
    assert!(
        gemini.contains("PROBLEM: gemini not found on PATH"),
        "{gemini}"
    );
    let claude = so
        .lines()
        .find(|l| l.starts_with("agents.claude = "))
        .unwrap();
    assert!(claude.ends_with(", ok"), "{claude}");

    let out = run(validate(&sb, &["--skip-agent-checks"]).env("PATH", sb.path().join("bin")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// GET `path` on `server` with an optional bearer key; the status code.
fn status_with_key(server: &Server, path: &str, key: Option<&str>) -> u16 {
    let agent = crate::support::http_agent(None);
    let mut request = agent.get(&format!("{}{path}", server.base));
    if let Some(key) = key {
        request = request.header("Authorization", &format!("Bearer {key}"));
    }
    request.call().expect("GET").status().as_u16()
}

#[test]
fn server_reads_api_and_admin_keys_from_files() {
    const ADMIN_KEY: &str = "e2e-admin-key-SECRET-0005";
    let sb = Sandbox::new();
    let api_file = sb.write("secrets/api_key", &format!("{API_KEY}\n"));
    let admin_file = sb.write("secrets/admin_key", &format!("{ADMIN_KEY}\n"));
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--port"])
        .arg(free_port().to_string())
        .arg("--root")
        .arg(sb.path().join("runs"))
        .env("CONDUCTOR_API_KEY_FILE", &api_file)
        .env("CONDUCTOR_ADMIN_KEY_FILE", &admin_file);
    let server = Server::start(cmd, sb.path());
    assert_eq!(status_with_key(&server, "/healthz", None), 200);
    assert_eq!(status_with_key(&server, "/api/v1/status", None), 401);
    assert_eq!(
        status_with_key(&server, "/api/v1/status", Some("wrong")),
        401
    );
    assert_eq!(
        status_with_key(&server, "/api/v1/status", Some(API_KEY)),
        200
    );
    // The admin route wants the admin key from its file, not the API key.
    let admin = "/api/v1/admin/self-update";
    assert_ne!(status_with_key(&server, admin, Some(API_KEY)), 200);
    assert_eq!(status_with_key(&server, admin, Some(ADMIN_KEY)), 200);
    let log = server.log();
    assert!(!log.contains(API_KEY) && !log.contains(ADMIN_KEY), "{log}");
    server.terminate();
}

#[test]
fn server_refuses_to_start_with_an_unreadable_key_file() {
    let sb = Sandbox::new();
    let missing = sb.path().join("secrets/nope");
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--port"])
        .arg(free_port().to_string())
        .env("CONDUCTOR_API_KEY_FILE", &missing);
    let out = run(&mut cmd);
    assert!(!out.status.success(), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("CONDUCTOR_API_KEY_FILE={}", missing.display()))
            && err.contains("does not exist"),
        "{err}"
    );

    let key_file = sb.write("secrets/api_key", "from-file\n");
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--port"])
        .arg(free_port().to_string())
        .env("CONDUCTOR_API_KEY", API_KEY)
        .env("CONDUCTOR_API_KEY_FILE", &key_file);
    let out = run(&mut cmd);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        stderr(&out).contains("both CONDUCTOR_API_KEY and CONDUCTOR_API_KEY_FILE are set"),
        "{}",
        text(&out)
    );
}
