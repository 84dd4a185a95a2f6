//! Configuration: the schema, YAML/HCL loading with precise errors, config-file discovery,
//! and the flag > env > file > default precedence used by the server and local commands.
//!
//! See `docs/config.md` for the user-facing reference.

mod check;
mod discovery;
#[cfg(test)]
mod doc_examples;
mod error;
mod hcl;
pub mod host_name;
mod keys;
mod load;
mod mask;
mod paths;
mod resolve;
mod schema;
mod secret_env;
mod yaml;

pub use discovery::{discover, Discovery, CONFIG_NAMES, ENV_CONFIG};
pub use error::{ConfigError, Format, Location};
pub use load::{agent_token_env, load, ENV_ADMIN_KEY, ENV_API_KEY};
pub use mask::mask_secret;
pub use resolve::{
    parse_bool, process_env, resolve_root, resolve_server, ConfigMode, LocalFlags, LocalRoot,
    ServerFlags, ServerSettings, Setting, Source, DEFAULT_ROOT_NAME, ENV_DISABLE_TASK_START,
    ENV_HOST, ENV_PORT, ENV_ROOT,
};
pub use schema::{
    parse_duration_secs, AgentConfig, AgentType, ApiConfig, Budget, BusConfig, Config, Defaults,
    ModelPrice, StorageConfig, WebhookConfig, WebhookEvent, DEFAULT_HOST, DEFAULT_MAX_RESTARTS,
    DEFAULT_PORT,
};
pub use secret_env::{with_secret_files, SecretEnv, ENV_ADMIN_KEY_FILE, ENV_API_KEY_FILE};
