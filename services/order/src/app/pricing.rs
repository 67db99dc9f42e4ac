//! Pricing a cart: the pricing engine's settings (zones and promotions) read through a short-lived
//! cache, and the steps that turn a cart into its [`Breakdown`](crate::domain::pricing::Breakdown).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::promotion::Promotion;
use crate::domain::shipping::Zone;
use crate::store::{PricingStore, StoreError};

/// How long the settings are reused before they are read again: an admin's change shows in every
/// process within this (at once in the process that made it).
pub const SETTINGS_TTL: Duration = Duration::from_secs(5);

/// Zones and promotions, as last read.
#[derive(Debug, Clone, Default)]
pub struct PricingSettings {
    /// Every shipping zone.
    pub zones: Vec<Zone>,
    /// Every promotion.
    pub promotions: Vec<Promotion>,
}

/// The settings, read from the store at most every [`SETTINGS_TTL`].
pub struct PricingCache {
    store: Arc<dyn PricingStore>,
    cached: Mutex<Option<(Instant, Arc<PricingSettings>)>>,
}

impl PricingCache {
    /// A cache over `store`.
    pub fn new(store: Arc<dyn PricingStore>) -> Self {
        Self { store, cached: Mutex::new(None) }
    }

    /// The settings, at most [`SETTINGS_TTL`] old.
    pub async fn get(&self) -> Result<Arc<PricingSettings>, StoreError> {
        if let Some((at, settings)) = self.cached.lock().expect("pricing cache lock").as_ref()
            && at.elapsed() < SETTINGS_TTL
        {
            return Ok(settings.clone());
        }
        let (zones, promotions) = futures::try_join!(self.store.zones(), self.store.promotions())?;
        let settings = Arc::new(PricingSettings { zones, promotions });
        *self.cached.lock().expect("pricing cache lock") = Some((Instant::now(), settings.clone()));
        Ok(settings)
    }

    /// Drops the cached settings (after a change).
    pub fn forget(&self) {
        *self.cached.lock().expect("pricing cache lock") = None;
    }
}
