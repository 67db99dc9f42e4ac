//! The order service's settings (its section of the configuration; `SHOP_*` variables).

use platform::config::{ConfigError, Section};
use serde::Deserialize;

/// The order service's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// How long the checkout saga waits for the stock reservation, in milliseconds; the payment
    /// gets twice as long and the capture four times (`SHOP_SAGA_STEP_TIMEOUT_MS`).
    pub saga_step_timeout_ms: u64,
    /// How often the order service looks for overdue saga steps (and the inventory for expired
    /// reservations), in milliseconds (`SHOP_RESERVATION_SWEEP_MS`).
    pub reservation_sweep_ms: u64,
    /// After how long without a change a cart with lines is reported abandoned, in seconds
    /// (`SHOP_CART_ABANDON_SECS`).
    pub cart_abandon_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self { saga_step_timeout_ms: 30_000, reservation_sweep_ms: 1_000, cart_abandon_secs: 24 * 60 * 60 }
    }
}

impl platform::config::Settings for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(100..=platform::contracts::order::MAX_SAGA_STEP_MS).contains(&self.saga_step_timeout_ms) {
            return Err(ConfigError::new(
                "saga_step_timeout_ms",
                "must be between 100 ms and 112.5 s (112500): the checkout's 15-minute stock hold must outlast \
                 the seven step timeouts before a commit is asked for again",
            ));
        }
        if !(10..=60 * 60 * 1000).contains(&self.reservation_sweep_ms) {
            return Err(ConfigError::new("reservation_sweep_ms", "must be between 10 ms and an hour"));
        }
        if !(1..=90 * 24 * 60 * 60).contains(&self.cart_abandon_secs) {
            return Err(ConfigError::new("cart_abandon_secs", "must be between 1 second and 90 days"));
        }
        Ok(())
    }
}

impl Settings {
    /// The saga's base step timeout.
    pub fn step_timeout(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(self.saga_step_timeout_ms as i64)
    }
}

/// The section a process running the order service declares.
pub const SECTION: Section = Section::of::<Settings>(crate::NAME);
