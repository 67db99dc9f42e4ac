//! The user service's settings (its section of the configuration; `SHOP_*` variables).

use platform::config::{ConfigError, Section};
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

/// The `From` of emails when `SHOP_MAIL_FROM` is unset.
pub const DEFAULT_MAIL_FROM: &str = "Shop <no-reply@shop.local>";

/// Where the user service's emails go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailBackend {
    /// `.eml` files in the data dir's `mail` folder, for a developer to open (embedded mode).
    Folder,
    /// Amazon SES's v2 API (its raw `SendEmail`).
    Ses,
}

/// The user service's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where emails are delivered (`SHOP_MAIL_SINK`: folder | ses).
    pub mail_sink: MailBackend,
    /// The `From` of every email (`SHOP_MAIL_FROM`); with SES, an identity verified there.
    pub mail_from: String,
    /// The signing keys (`SHOP_JWT_PRIVATE_KEYS`): comma-separated base64 PKCS#8 Ed25519 keys, the
    /// last one signing, the others still published for tokens they signed. Unset: keys are made
    /// and kept under the data dir.
    pub jwt_private_keys: Option<SecretString>,
    /// Lifetime of an access token in seconds (`SHOP_ACCESS_TOKEN_TTL_SECS`).
    pub access_token_ttl_secs: u64,
    /// Lifetime of a refresh token in seconds (`SHOP_REFRESH_TOKEN_TTL_SECS`).
    pub refresh_token_ttl_secs: u64,
    /// How long a spent refresh token still answers with its successor (`SHOP_REFRESH_GRACE_MS`):
    /// two tabs refreshing at once, a retry after a lost answer. Later, it is a replay.
    pub refresh_grace_ms: u64,
    /// The Cognito user pool whose shoppers may sign in with its ID tokens (`SHOP_COGNITO_ISSUER`:
    /// `https://cognito-idp.<region>.amazonaws.com/<pool id>`); unset turns that sign-in off.
    pub cognito_issuer: Option<Url>,
    /// The pool's app client the ID tokens are issued to (`SHOP_COGNITO_CLIENT_ID`, their `aud`).
    pub cognito_client_id: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mail_sink: MailBackend::Folder,
            mail_from: DEFAULT_MAIL_FROM.into(),
            jwt_private_keys: None,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 60 * 60,
            refresh_grace_ms: 10_000,
            cognito_issuer: None,
            cognito_client_id: None,
        }
    }
}

impl platform::config::Settings for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(30..=24 * 60 * 60).contains(&self.access_token_ttl_secs) {
            return Err(ConfigError::new("access_token_ttl_secs", "must be between 30 seconds and a day"));
        }
        if self.refresh_token_ttl_secs < self.access_token_ttl_secs {
            return Err(ConfigError::new(
                "refresh_token_ttl_secs",
                "must not be shorter than the access-token lifetime",
            ));
        }
        if self.refresh_grace_ms > 60_000 {
            return Err(ConfigError::new("refresh_grace_ms", "must be at most a minute (0 turns the grace off)"));
        }
        if self.cognito_issuer.is_some() != self.cognito_client_id.as_deref().is_some_and(|c| !c.trim().is_empty()) {
            return Err(ConfigError::new(
                "cognito_issuer",
                "SHOP_COGNITO_ISSUER and SHOP_COGNITO_CLIENT_ID go together (both set, or neither)",
            ));
        }
        if !self.mail_from.contains('@') || self.mail_from.contains(['\r', '\n']) {
            return Err(ConfigError::new("mail_from", "must be an email address, such as Shop <shop@example.com>"));
        }
        Ok(())
    }
}

/// The section a process running the user service declares.
pub const SECTION: Section = Section::of::<Settings>(crate::NAME);
