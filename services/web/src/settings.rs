//! The web tier's settings (its section of the configuration; `SHOP_*` variables).

use platform::config::{ConfigError, Section};
use serde::Deserialize;

/// The web tier's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The shop's name, in every page's title and header (`SHOP_STORE_NAME`).
    pub store_name: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self { store_name: "Shop".into() }
    }
}

impl platform::config::Settings for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        let name = self.store_name.trim();
        if name.is_empty() || name.chars().count() > 60 {
            return Err(ConfigError::new("store_name", "must be 1 to 60 characters"));
        }
        Ok(())
    }
}

/// The section a process running the web tier declares.
pub const SECTION: Section = Section::of::<Settings>(crate::NAME);
