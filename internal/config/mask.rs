//! Secret masking for anything shown to people or serialized out of the process.

use serde::Serializer;

use super::schema::Config;

/// Shows that a secret is set without revealing it: `****abcd` (last four characters) for
/// secrets of 12 characters or more, `<set>` for shorter ones.
pub fn mask_secret(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() >= 12 {
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("****{tail}")
    } else {
        "<set>".to_string()
    }
}

/// `Debug` for an optional secret that prints it masked.
pub(crate) struct Masked<'a>(pub &'a Option<String>);

impl std::fmt::Debug for Masked<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&mask_opt(self.0), f)
    }
}

fn mask_opt(secret: &Option<String>) -> Option<String> {
    secret.as_deref().map(mask_secret)
}

impl Config {
    /// A copy with every secret (agent tokens, API and admin keys, webhook secret) masked.
    pub fn redacted(&self) -> Config {
        let mut copy = self.clone();
        for agent in copy.agents.values_mut() {
            agent.token = mask_opt(&agent.token);
        }
        copy.api.api_key = mask_opt(&copy.api.api_key);
        copy.api.admin_key = mask_opt(&copy.api.admin_key);
        copy.webhook.secret = mask_opt(&copy.webhook.secret);
        copy
    }
}

/// serde `serialize_with` for an optional secret.
pub(crate) fn serialize_masked<S: Serializer>(
    secret: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_some(&mask_opt(secret))
}

/// serde `serialize_with` for a config: serializes [`Config::redacted`].
pub(crate) fn serialize_redacted<S: Serializer>(
    config: &Config,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&config.redacted(), serializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_never_reveal_short_secrets() {
        assert_eq!(mask_secret("abc"), "<set>");
        assert_eq!(mask_secret("0123456789ab"), "****89ab");
        assert_eq!(mask_secret("ключ-ключ-ключ"), "****ключ");
    }

    #[test]
    fn redacted_masks_everything() {
        let mut config = Config::default();
        config.api.api_key = Some("api-secret-123456".into());
        config.api.admin_key = Some("adm".into());
        config.webhook.secret = Some("hook-secret-123456".into());
        config.agents.insert(
            "x".into(),
            crate::config::AgentConfig {
                token: Some("token-secret-123456".into()),
                ..crate::config::AgentConfig::of_type(crate::config::AgentType::Xai)
            },
        );
        let json = serde_json::to_string(&config.redacted()).unwrap();
        for secret in ["api-secret", "adm\"", "hook-secret", "token-secret"] {
            assert!(!json.contains(secret), "{secret} leaked: {json}");
        }
        assert!(json.contains("****3456"));
    }
}
