//! The inventory service's settings (its section of the configuration; `SHOP_*` variables).

use platform::config::{ConfigError, Section};
use serde::Deserialize;

/// The inventory service's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// How long a stock reservation holds when the saga's command names no time
    /// (`SHOP_RESERVATION_TTL_SECS`).
    pub reservation_ttl_secs: u64,
    /// How often the inventory looks for expired reservations (and the order service for overdue
    /// saga steps), in milliseconds (`SHOP_RESERVATION_SWEEP_MS`).
    pub reservation_sweep_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self { reservation_ttl_secs: 15 * 60, reservation_sweep_ms: 1_000 }
    }
}

impl platform::config::Settings for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=platform::contracts::inventory::MAX_TTL_SECONDS).contains(&self.reservation_ttl_secs) {
            return Err(ConfigError::new("reservation_ttl_secs", "must be between 1 second and a day"));
        }
        if !(10..=60 * 60 * 1000).contains(&self.reservation_sweep_ms) {
            return Err(ConfigError::new("reservation_sweep_ms", "must be between 10 ms and an hour"));
        }
        Ok(())
    }
}

/// The section a process running the inventory service declares.
pub const SECTION: Section = Section::of::<Settings>(crate::NAME);
