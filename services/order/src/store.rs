//! The order service's storage ports and their adapters.

pub mod sqlite;

use async_trait::async_trait;

use crate::domain::Cart;

/// A failure of the cart store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store itself failed.
    #[error("cart store")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Carts.
#[async_trait]
pub trait CartStore: Send + Sync {
    /// Stores a new cart.
    async fn create(&self, cart: &Cart) -> Result<(), StoreError>;
    /// The cart with `id`.
    async fn get(&self, id: &str) -> Result<Option<Cart>, StoreError>;
}
