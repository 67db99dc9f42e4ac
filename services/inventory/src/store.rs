//! The inventory service's storage port and its adapters.

pub mod sqlite;

use async_trait::async_trait;

use crate::domain::Stock;

/// A failure of the stock store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store itself failed.
    #[error("stock store")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Stock levels by SKU.
#[async_trait]
pub trait StockStore: Send + Sync {
    /// The stock of `sku`, if the SKU is known.
    async fn get(&self, sku: &str) -> Result<Option<Stock>, StoreError>;
    /// Sets the on-hand count (and threshold) of `sku`, creating it.
    async fn set(&self, sku: &str, on_hand: i64, low_stock_threshold: Option<i64>) -> Result<Stock, StoreError>;
}
