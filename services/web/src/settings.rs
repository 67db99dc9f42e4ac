//! The web tier's settings (its section of the configuration; `SHOP_*` variables).

use platform::config::{ConfigError, Section};
use serde::Deserialize;

/// The web tier's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The shop's name, in every page's title and header (`SHOP_STORE_NAME`).
    pub store_name: String,
    /// Stripe's publishable key (`SHOP_STRIPE_PUBLISHABLE_KEY`, `pk_test_…` or `pk_live_…`): when
    /// set, the checkout collects cards with Stripe's Payment Element (Stripe's own script and
    /// frames in the browser, so no card number reaches the shop) instead of offering the simulated
    /// provider's test methods. Required with `SHOP_PAYMENT_PROVIDER=stripe`.
    pub stripe_publishable_key: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self { store_name: "Shop".into(), stripe_publishable_key: None }
    }
}

impl platform::config::Settings for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        let name = self.store_name.trim();
        if name.is_empty() || name.chars().count() > 60 {
            return Err(ConfigError::new("store_name", "must be 1 to 60 characters"));
        }
        if let Some(key) = self.card_key()
            && !is_publishable_key(key)
        {
            return Err(ConfigError::new("stripe_publishable_key", "must be a key like pk_live_… or pk_test_…"));
        }
        Ok(())
    }
}

impl Settings {
    /// The publishable key, when one is set (an empty variable sets none).
    pub fn card_key(&self) -> Option<&str> {
        self.stripe_publishable_key.as_deref().filter(|k| !k.is_empty())
    }
}

/// Whether `key` looks like a Stripe publishable key (and so is safe in a page's attribute).
pub fn is_publishable_key(key: &str) -> bool {
    (key.starts_with("pk_live_") || key.starts_with("pk_test_"))
        && key.len() <= 255
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The section a process running the web tier declares.
pub const SECTION: Section = Section::of::<Settings>(crate::NAME);

#[cfg(test)]
mod tests {
    use platform::config::Settings as _;

    use super::*;

    #[test]
    fn a_publishable_key_must_look_like_one_and_an_empty_one_is_none() {
        for key in ["pk_test_abc123", "pk_live_51HxYz_0"] {
            assert!(is_publishable_key(key), "{key}");
        }
        for key in ["sk_test_abc", "pk_test_\"><script>", "pk_demo_x", "pk_test_a b"] {
            assert!(!is_publishable_key(key), "{key}");
        }
        let with = |key: &str| Settings { stripe_publishable_key: Some(key.into()), ..Settings::default() };
        assert!(with("pk_test_abc").validate().is_ok());
        assert_eq!(with("pk_test_abc").card_key(), Some("pk_test_abc"));
        assert!(with("sk_live_secret").validate().is_err(), "a secret key never goes in a page");
        assert!(with("").validate().is_ok());
        assert_eq!(with("").card_key(), None, "an empty variable sets no key");
    }
}
