//! The payment service's storage ports and their adapters.

pub mod sqlite;

use async_trait::async_trait;

/// A failure of the payment store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store itself failed.
    #[error("payment store")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Provider webhook events received.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Records `event_id` of `provider`; `false` when it was recorded before (a redelivery).
    async fn record(&self, provider: &str, event_id: &str, event_type: &str) -> Result<bool, StoreError>;
}
