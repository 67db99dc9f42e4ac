//! The payment provider port and its adapters: [`stripe`] (PaymentIntents over Stripe's HTTP API)
//! and [`simulated`] (the embedded default, honouring Stripe's test payment methods).
//!
//! Every call carries an idempotency key derived from our own ids (see
//! [`Payment::key`](crate::domain::payment::Payment::key)), so a call retried after a timeout, or
//! made again for a redelivered command, is applied once by the provider.

pub mod simulated;
pub mod stripe;

use async_trait::async_trait;
use platform::money::Money;

use crate::domain::payment::Failure;

/// Why a provider call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The card was declined, or the payment method cannot be used: final for this payment.
    #[error("refused: {}: {}", .0.code, .0.message)]
    Refused(Failure),
    /// A passing failure (a timeout, a 5xx, a rate limit): try again later with the same key.
    #[error("the provider is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The provider refused the request itself (a bug, or a state the provider disagrees with).
    #[error("the provider refused the request: {0}")]
    Invalid(String),
}

impl platform::error::Kinded for ProviderError {
    fn kind(&self) -> platform::error::ErrorKind {
        use platform::error::ErrorKind;
        match self {
            Self::Refused(_) => ErrorKind::Conflict,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Invalid(_) => ErrorKind::Internal,
        }
    }
}

/// An authorization the provider holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The provider's reference (a PaymentIntent id).
    pub provider_ref: String,
}

/// Where a payment stands at the provider, as it says when asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntentState {
    /// Authorized and not captured: the amount is held on the card.
    Authorized,
    /// Captured: the amount is charged.
    Captured,
    /// Cancelled: nothing is held or charged.
    Cancelled,
    /// Anything else (declined, waiting for the shopper, processing): nothing is held.
    Other(String),
}

/// Where a refund stands at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundState {
    /// The money went back.
    Succeeded,
    /// Not settled yet (some payment methods take days; Stripe's `pending`, `requires_action`):
    /// asked again later, or told by `charge.refund.updated`.
    Pending,
    /// It did not go through (Stripe's `failed`, `canceled`), with why.
    Failed(String),
}

/// A refund the provider made (or is making).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRefund {
    /// The provider's refund id.
    pub id: String,
    /// Succeeded or pending (a refund refused at once is an error).
    pub state: RefundState,
}

/// A payment the provider holds for an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// The provider's reference (a PaymentIntent id).
    pub provider_ref: String,
    /// Where it stands.
    pub state: IntentState,
}

/// A payment provider.
#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// The provider's name (`stripe`, `simulated`), recorded with each payment.
    fn name(&self) -> &'static str;

    /// Authorizes `amount` with `payment_method` for later capture.
    async fn authorize(
        &self,
        amount: &Money,
        payment_method: &str,
        order_id: &str,
        idempotency_key: &str,
    ) -> Result<Authorization, ProviderError>;

    /// Captures `amount` of an authorization.
    async fn capture(&self, provider_ref: &str, amount: &Money, idempotency_key: &str) -> Result<(), ProviderError>;

    /// Cancels an authorization: nothing will be charged.
    async fn cancel(&self, provider_ref: &str, idempotency_key: &str) -> Result<(), ProviderError>;

    /// Refunds `amount` of a capture: the provider's refund, succeeded or still pending.
    async fn refund(
        &self,
        provider_ref: &str,
        amount: &Money,
        idempotency_key: &str,
    ) -> Result<ProviderRefund, ProviderError>;

    /// Where the refund `refund_id` (the provider's) stands: asked for one left pending.
    async fn refund_state(&self, refund_id: &str) -> Result<RefundState, ProviderError>;

    /// Where the payment `provider_ref` stands at the provider: asked when one of our calls was
    /// refused or its answer lost, so we record what the provider did rather than guess.
    async fn retrieve(&self, provider_ref: &str) -> Result<IntentState, ProviderError>;

    /// The payment the provider holds for `order_id` (made by an authorize whose answer we never
    /// got), if any: asked before a payment with no reference is given up.
    async fn find(&self, order_id: &str) -> Result<Option<Intent>, ProviderError>;
}
