//! The user service's storage port and its adapters.

pub mod sqlite;

use async_trait::async_trait;
use platform::events::Event;

/// A failure of the user store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store itself failed.
    #[error("user store")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Builds an event for an account id, inside the store's transaction.
pub type EventFactory = Box<dyn FnOnce(&str) -> Event + Send + 'static>;

/// A password-reset request to record.
#[derive(Debug, Clone)]
pub struct ResetRequest {
    /// The normalised email it was asked for.
    pub email: String,
    /// SHA-256 of the token mailed to the user.
    pub token_hash: String,
    /// When the token stops working (Unix ms).
    pub expires_at: i64,
}

/// Accounts and credentials.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Records a reset token for the account with `request.email`, and the event `make_event` builds
    /// for that account's id, in one transaction. `false` (and nothing written) when no account has
    /// that email.
    async fn request_password_reset(&self, request: ResetRequest, make_event: EventFactory)
    -> Result<bool, StoreError>;
}
