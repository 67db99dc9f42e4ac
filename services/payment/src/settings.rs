//! The payment service's settings (its section of the configuration; `SHOP_*` variables).

use platform::config::{ConfigError, Section};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

/// Who takes the payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderChoice {
    /// The simulated provider (honours Stripe's test payment methods; embedded mode, tests).
    Simulated,
    /// Stripe.
    Stripe,
}

/// The payment service's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Who takes the payments (`SHOP_PAYMENT_PROVIDER`: simulated | stripe).
    pub payment_provider: ProviderChoice,
    /// Stripe's secret API key (`SHOP_STRIPE_SECRET_KEY`), required with the Stripe provider.
    pub stripe_secret_key: Option<SecretString>,
    /// The signing secret of the Stripe webhook endpoint (`SHOP_STRIPE_WEBHOOK_SECRET`); without it
    /// every webhook is refused.
    pub stripe_webhook_secret: Option<SecretString>,
    /// Stripe's API (`SHOP_STRIPE_API_BASE`).
    pub stripe_api_base: Url,
    /// How long one call to the payment provider may take, in milliseconds
    /// (`SHOP_PAYMENT_TIMEOUT_MS`).
    pub payment_timeout_ms: u64,
    /// The simulated provider's latency per call, in milliseconds (`SHOP_SIMULATED_LATENCY_MS`).
    pub simulated_latency_ms: u64,
    /// The share of the simulated provider's calls that fail as if it were down, 0 to 1
    /// (`SHOP_SIMULATED_FAILURE_RATE`).
    pub simulated_failure_rate: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            payment_provider: ProviderChoice::Simulated,
            stripe_secret_key: None,
            stripe_webhook_secret: None,
            stripe_api_base: Url::parse("https://api.stripe.com").expect("a URL"),
            payment_timeout_ms: 10_000,
            simulated_latency_ms: 0,
            simulated_failure_rate: 0.0,
        }
    }
}

impl platform::config::Settings for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.payment_provider == ProviderChoice::Stripe
            && self.stripe_secret_key.as_ref().is_none_or(|k| k.expose_secret().is_empty())
        {
            return Err(ConfigError::new("stripe_secret_key", "is required when SHOP_PAYMENT_PROVIDER=stripe"));
        }
        if !(0.0..=1.0).contains(&self.simulated_failure_rate) {
            return Err(ConfigError::new("simulated_failure_rate", "must be between 0 and 1"));
        }
        if !(100..=120_000).contains(&self.payment_timeout_ms) {
            return Err(ConfigError::new("payment_timeout_ms", "must be between 100 ms and 2 minutes"));
        }
        Ok(())
    }
}

/// The section a process running the payment service declares.
pub const SECTION: Section = Section::of::<Settings>(crate::NAME);
