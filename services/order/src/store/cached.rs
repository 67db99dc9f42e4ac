//! Hot carts cached in front of any cart store: in Redis in the local stack and on AWS,
//! in-process in the embedded mode (whichever [`Cache`] the process has).
//!
//! A cart is read from the cache when it is there; otherwise from the store, and the copy kept.
//! Every write goes to the store first and then renews the copy. Copies carry the cart's
//! `version` and are set with [`Cache::set_newer`], so a copy written late (two writers racing,
//! or a reader keeping what it read just before a write) never replaces a newer one: the cache
//! holds the newest version any writer or reader saw. A merged-away guest cart leaves a marker
//! at the highest version, so no late copy brings it back. Copies expire after [`TTL`]; the cache
//! failing only costs a read of the store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::cache::Cache;
use serde::{Deserialize, Serialize};

use super::{CartStore, StoreError};
use crate::domain::Cart;

/// How long a copy lives after it was last set.
pub const TTL: Duration = Duration::from_secs(15 * 60);

/// A cart store whose carts are cached.
pub struct CachedCarts {
    inner: Arc<dyn CartStore>,
    cache: Arc<dyn Cache>,
}

/// A cart as kept in the cache (`None` for a cart that is gone).
#[derive(Serialize, Deserialize)]
struct Kept {
    cart: Option<CachedCart>,
}

#[derive(Serialize, Deserialize)]
struct CachedCart {
    owner_id: Option<String>,
    currency: String,
    lines: Vec<(String, i64)>,
    #[serde(default)]
    codes: Vec<String>,
    #[serde(default)]
    shipping: Option<crate::domain::ShippingChoice>,
}

fn cart_key(id: &str) -> String {
    format!("cart:{id}")
}

fn owner_key(owner_id: &str) -> String {
    format!("cart-owner:{owner_id}")
}

impl CachedCarts {
    /// Caches the carts of `inner` in `cache`.
    pub fn new(inner: Arc<dyn CartStore>, cache: Arc<dyn Cache>) -> Self {
        Self { inner, cache }
    }

    /// The cached copy of cart `id`: `Some(None)` when it is known to be gone, `None` when there
    /// is no copy (or the cache did not answer).
    async fn cached(&self, id: &str) -> Option<Option<Cart>> {
        let (version, bytes) = match self.cache.get_versioned(&cart_key(id)).await {
            Ok(found) => found?,
            Err(error) => {
                tracing::warn!(%error, "the cart cache did not answer");
                return None;
            }
        };
        let copy: Kept = serde_json::from_slice(&bytes).ok()?;
        metrics::counter!("cart_cache_hits_total").increment(1);
        Some(copy.cart.map(|c| Cart {
            id: id.to_owned(),
            owner_id: c.owner_id,
            currency: c.currency,
            lines: c.lines,
            version,
            codes: c.codes,
            shipping: c.shipping,
        }))
    }

    /// Keeps `cart` as the copy of its id, unless a newer one is kept.
    async fn keep(&self, cart: &Cart) {
        let copy = Kept {
            cart: Some(CachedCart {
                owner_id: cart.owner_id.clone(),
                currency: cart.currency.clone(),
                lines: cart.lines.clone(),
                codes: cart.codes.clone(),
                shipping: cart.shipping.clone(),
            }),
        };
        self.put(&cart.id, cart.version, &copy).await;
    }

    /// Marks cart `id` gone for good.
    async fn forget(&self, id: &str) {
        self.put(id, u64::MAX, &Kept { cart: None }).await;
    }

    async fn put(&self, id: &str, version: u64, copy: &Kept) {
        let bytes = serde_json::to_vec(copy).expect("a cart serializes");
        if let Err(error) = self.cache.set_newer(&cart_key(id), version, &bytes, TTL).await {
            // An older copy may stay behind: drop it if the cache lets us.
            tracing::warn!(%error, "could not keep a cart in the cache");
            let _ = self.cache.delete(&cart_key(id)).await;
        }
    }

    /// Cart `id` from the store, kept as its copy.
    async fn load(&self, id: &str) -> Result<Option<Cart>, StoreError> {
        let cart = self.inner.get(id).await?;
        if let Some(cart) = &cart {
            self.keep(cart).await;
        }
        Ok(cart)
    }
}

#[async_trait]
impl CartStore for CachedCarts {
    async fn create(&self, cart: &Cart) -> Result<(), StoreError> {
        self.inner.create(cart).await?;
        self.keep(cart).await;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<Cart>, StoreError> {
        if let Some(copy) = self.cached(id).await {
            return Ok(copy);
        }
        metrics::counter!("cart_cache_misses_total").increment(1);
        self.load(id).await
    }

    async fn user_cart(&self, owner_id: &str, currency: &str) -> Result<Cart, StoreError> {
        // A user's cart id never changes once made, so the pointer to it is cached as it is.
        if let Ok(Some(id)) = self.cache.get(&owner_key(owner_id)).await {
            let id = String::from_utf8_lossy(&id).into_owned();
            if let Some(cart) = self.get(&id).await?.filter(|c| c.owner_id.as_deref() == Some(owner_id)) {
                return Ok(cart);
            }
        }
        let cart = self.inner.user_cart(owner_id, currency).await?;
        if let Err(error) = self.cache.set(&owner_key(owner_id), cart.id.as_bytes(), Some(TTL)).await {
            tracing::warn!(%error, "could not keep a cart pointer in the cache");
        }
        self.keep(&cart).await;
        Ok(cart)
    }

    async fn set_quantity(
        &self,
        id: &str,
        sku: &str,
        quantity: i64,
        max_lines: usize,
    ) -> Result<Option<Cart>, StoreError> {
        let cart = self.inner.set_quantity(id, sku, quantity, max_lines).await?;
        if let Some(cart) = &cart {
            self.keep(cart).await;
        }
        Ok(cart)
    }

    async fn set_details(
        &self,
        id: &str,
        codes: &[String],
        shipping: Option<&crate::domain::ShippingChoice>,
    ) -> Result<Option<Cart>, StoreError> {
        let cart = self.inner.set_details(id, codes, shipping).await?;
        if let Some(cart) = &cart {
            self.keep(cart).await;
        }
        Ok(cart)
    }

    async fn abandon(&self, before: DateTime<Utc>, limit: usize) -> Result<usize, StoreError> {
        self.inner.abandon(before, limit).await
    }

    async fn merge(
        &self,
        guest_id: &str,
        owner_id: &str,
        currency: &str,
        caps: &HashMap<String, i64>,
        max_lines: usize,
    ) -> Result<Option<Cart>, StoreError> {
        let merged = self.inner.merge(guest_id, owner_id, currency, caps, max_lines).await?;
        if let Some(cart) = &merged {
            self.forget(guest_id).await;
            self.keep(cart).await;
        }
        Ok(merged)
    }

    async fn refresh(&self, id: &str) -> Result<Option<Cart>, StoreError> {
        let cart = self.inner.get(id).await?;
        match &cart {
            Some(cart) => self.keep(cart).await,
            None => self.forget(id).await,
        }
        Ok(cart)
    }
}

#[cfg(test)]
mod tests {
    use platform::cache::memory::MemoryCache;

    use super::*;
    use crate::store::sqlite::SqliteCartStore;

    fn stores() -> (tempfile::TempDir, Arc<dyn CartStore>, CachedCarts) {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = platform::sqlite::Db::open_migrated(dir.path().join("order.db"), crate::MIGRATIONS).unwrap();
        let inner: Arc<dyn CartStore> = Arc::new(SqliteCartStore::new(db));
        let cached = CachedCarts::new(inner.clone(), Arc::new(MemoryCache::new(100)));
        (dir, inner, cached)
    }

    #[tokio::test]
    async fn reads_are_served_from_the_copy_and_a_refresh_renews_it() {
        let (_dir, inner, cached) = stores();
        let cart = cached.user_cart("u1", "USD").await.unwrap();
        cached.set_quantity(&cart.id, "A", 1, 10).await.unwrap();
        // Another writer (an order emptying the cart) goes to the store, not through the cache.
        let behind = inner.set_quantity(&cart.id, "A", 0, 10).await.unwrap().unwrap();
        assert_eq!(cached.get(&cart.id).await.unwrap().unwrap().lines.len(), 1, "served from the copy");
        assert_eq!(cached.refresh(&cart.id).await.unwrap(), Some(behind.clone()));
        assert_eq!(cached.get(&cart.id).await.unwrap(), Some(behind.clone()));
        assert_eq!(cached.user_cart("u1", "USD").await.unwrap(), behind);
    }

    #[tokio::test]
    async fn a_late_copy_never_replaces_a_newer_one_and_a_merged_cart_stays_gone() {
        let (_dir, inner, cached) = stores();
        let mut guest = Cart::new(crate::domain::new_cart_id(), None, "USD");
        guest.lines.push(("A".into(), 1));
        cached.create(&guest).await.unwrap();
        let newer = cached.set_quantity(&guest.id, "B", 1, 10).await.unwrap().unwrap();
        cached.keep(&guest).await;
        assert_eq!(cached.get(&guest.id).await.unwrap(), Some(newer.clone()), "the older copy came too late");

        cached.merge(&guest.id, "u1", "USD", &HashMap::new(), 10).await.unwrap().unwrap();
        cached.keep(&newer).await;
        assert_eq!(cached.get(&guest.id).await.unwrap(), None, "a copy of a merged cart does not bring it back");
        assert_eq!(inner.get(&guest.id).await.unwrap(), None);
    }
}
