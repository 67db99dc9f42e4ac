//! The order service's storage ports and their adapters.

pub mod sqlite;

use std::collections::HashMap;

use async_trait::async_trait;

use crate::domain::Cart;

/// A failure of the cart store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A cart may hold at most this many SKUs.
    #[error("a cart holds at most {0} SKUs")]
    TooManyLines(usize),
    /// The store itself failed.
    #[error("cart store")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Carts: guest carts (found by id, the bearer secret) and each user's persistent cart.
#[async_trait]
pub trait CartStore: Send + Sync {
    /// Stores a new cart.
    async fn create(&self, cart: &Cart) -> Result<(), StoreError>;

    /// The cart with `id`.
    async fn get(&self, id: &str) -> Result<Option<Cart>, StoreError>;

    /// The persistent cart of `owner_id`, made (empty, in `currency`) if it has none.
    async fn user_cart(&self, owner_id: &str, currency: &str) -> Result<Cart, StoreError>;

    /// Sets the units of `sku` in cart `id` (0 removes the line; a new line goes last); the cart
    /// after it, or `None` when there is no such cart. [`StoreError::TooManyLines`] when a new
    /// line would take it over `max_lines`.
    async fn set_quantity(
        &self,
        id: &str,
        sku: &str,
        quantity: i64,
        max_lines: usize,
    ) -> Result<Option<Cart>, StoreError>;

    /// Moves guest cart `guest_id`'s lines into `owner_id`'s cart (units of a SKU in both are
    /// added, then capped by `caps` where given) and deletes the guest cart, in one transaction;
    /// the user's cart after it, or `None` when the guest cart does not exist (or is a user's).
    async fn merge(
        &self,
        guest_id: &str,
        owner_id: &str,
        currency: &str,
        caps: &HashMap<String, i64>,
        max_lines: usize,
    ) -> Result<Option<Cart>, StoreError>;
}
