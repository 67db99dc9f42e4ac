//! The payment service's storage port and its adapters ([`sqlite`], [`postgres`]).
//!
//! Payments (one per order), their transaction log (every state change, append-only), refunds,
//! the idempotency records of the admin API and the provider webhook events received. Every
//! change of a payment is one transaction with its log entry and its events (outbox), conditional
//! on the status it moves from, so two writers never both move a payment.

pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::events::Event;

pub use crate::domain::change::RefundOutcome;
use crate::domain::change::Refused;
use crate::domain::payment::{LogEntry, NewPayment, Payment, PaymentStatus, Refund, Transition};

/// A failure of the payment store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A refund larger than what may still be refunded (or of a payment not charged).
    #[error("at most {refundable} may still be refunded")]
    NotRefundable {
        /// Minor units that may still be refunded.
        refundable: i64,
    },
    /// A refund conditional on what had been refunded found another amount (a refund recorded
    /// meanwhile, by another replica): read the payment again.
    #[error("the payment's refunded amount is {refunded} now")]
    RefundedMoved {
        /// Minor units refunded now.
        refunded: i64,
    },
    /// No such payment.
    #[error("no payment {0}")]
    UnknownPayment(String),
    /// The store itself failed.
    #[error("payment store")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl platform::error::Kinded for StoreError {
    fn kind(&self) -> platform::error::ErrorKind {
        use platform::error::ErrorKind;
        match self {
            Self::NotRefundable { .. } => ErrorKind::Invalid { field: "amount" },
            Self::RefundedMoved { .. } => ErrorKind::Conflict,
            Self::UnknownPayment(_) => ErrorKind::NotFound,
            Self::Backend(error) => platform::error::backend_kind(error.as_ref()),
        }
    }
}

impl From<platform::sqlite::DbError> for StoreError {
    fn from(error: platform::sqlite::DbError) -> Self {
        Self::Backend(Box::new(error))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::Backend(Box::new(error))
    }
}

impl From<Refused> for StoreError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::NotRefundable { refundable } => Self::NotRefundable { refundable },
            Refused::RefundedMoved { refunded } => Self::RefundedMoved { refunded },
            // A move that does not apply is answered with `None`, never converted: one here is a bug.
            moved @ Refused::Moved(_) => Self::Backend(Box::new(moved)),
        }
    }
}

/// How long a claimed idempotency key stays with the request serving it.
pub const KEY_LEASE_SECS: i64 = 60;

/// What an idempotency key stands for when a request claims it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// The key is new: it is now this request's; complete or release it.
    New,
    /// A request with the key is being served right now.
    InProgress,
    /// The key was used with the same request: its answer (status and JSON body).
    Done(u16, String),
    /// The key was used with another request.
    Mismatch,
}

/// Payments and their log.
#[async_trait]
pub trait PaymentStore: Send + Sync {
    /// The order's payment: made with `status` (`pending`, or `voided` for a void that came
    /// before its authorize) if the order has none (`true`), or the one it has (`false`).
    async fn open(&self, new: &NewPayment, status: PaymentStatus) -> Result<(Payment, bool), StoreError>;

    /// A payment by id.
    async fn get(&self, id: &str) -> Result<Option<Payment>, StoreError>;

    /// The payment of an order.
    async fn by_order(&self, order_id: &str) -> Result<Option<Payment>, StoreError>;

    /// The payment the provider knows as `provider_ref`.
    async fn by_provider_ref(&self, provider_ref: &str) -> Result<Option<Payment>, StoreError>;

    /// Payments in `status` unchanged since before `before`, the longest unchanged first, at most
    /// `limit`: what the reconciler asks the provider about.
    async fn stale(
        &self,
        status: PaymentStatus,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError>;

    /// Applies `transition` when the payment's status is one of `from`, with its log entry and
    /// `events`, in one transaction; the payment after it, or `None` when its status is not (it
    /// moved on, or it does not exist).
    async fn transition(
        &self,
        id: &str,
        from: &[PaymentStatus],
        transition: &Transition,
        events: &[Event],
    ) -> Result<Option<Payment>, StoreError>;

    /// Records `refund` of a charged payment, counting its amount as refunded
    /// (`partially_refunded`, or `refunded` once all of the capture is), with its log entry:
    /// pending (the provider is asked next), or, when its status is `succeeded` (made at the
    /// provider already, from its dashboard), settled at once with `events`.
    /// [`StoreError::NotRefundable`] when it exceeds what may still be refunded. With
    /// `refunded_before`, only if the payment's refunded amount is still that
    /// ([`StoreError::RefundedMoved`] otherwise): a refund computed from the payment as read is
    /// recorded once, however many replicas compute it at once.
    async fn refund(
        &self,
        refund: &Refund,
        refunded_before: Option<i64>,
        events: &[Event],
    ) -> Result<Payment, StoreError>;

    /// Settles a pending refund with the provider's answer: made (its refund id, with `events`),
    /// still pending there (its refund id kept, to ask about later), or refused (the amount
    /// becomes refundable again). A settled refund is left as it is; the payment after it.
    async fn settle_refund(
        &self,
        refund_id: &str,
        outcome: RefundOutcome,
        events: &[Event],
    ) -> Result<Payment, StoreError>;

    /// Refunds still pending since before `before`, oldest first, at most `limit`.
    async fn pending_refunds(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Refund>, StoreError>;

    /// A refund by id.
    async fn get_refund(&self, refund_id: &str) -> Result<Option<Refund>, StoreError>;

    /// The refunds of a payment, oldest first.
    async fn refunds(&self, payment_id: &str) -> Result<Vec<Refund>, StoreError>;

    /// The transaction log of a payment, oldest first.
    async fn log(&self, payment_id: &str) -> Result<Vec<LogEntry>, StoreError>;

    /// Claims idempotency key `key` in `scope` for a request hashed `request_hash`. A claim whose
    /// request is still being served is held for [`KEY_LEASE_SECS`]; after that (the server
    /// died mid-request) the same request may claim it again.
    async fn claim_key(&self, scope: &str, key: &str, request_hash: &str) -> Result<KeyClaim, StoreError>;

    /// Stores the answer of the request that claimed `key`.
    async fn complete_key(&self, scope: &str, key: &str, status: u16, body: &str) -> Result<(), StoreError>;

    /// Gives up a claim whose request failed without an answer to keep: the same request may
    /// claim it again at once (another request with the key is still refused).
    async fn release_key(&self, scope: &str, key: &str) -> Result<(), StoreError>;

    /// Records webhook event `event_id` of `provider`; `false` when it was recorded before.
    async fn record_webhook(&self, provider: &str, event_id: &str, event_type: &str) -> Result<bool, StoreError>;
}
