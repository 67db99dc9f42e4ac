//! Payments, their states and their transaction log.

use chrono::{DateTime, Utc};
use platform::money::Money;
use serde::{Deserialize, Serialize};

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Made; the provider has not answered the authorization yet.
    Pending,
    /// The amount is held on the shopper's card.
    Authorized,
    /// The authorization was refused (declined, or an invalid payment method).
    Failed,
    /// The amount is charged.
    Captured,
    /// The authorization was cancelled (or the payment was voided before it was authorized):
    /// nothing is charged.
    Voided,
    /// Part of the captured amount went back.
    PartiallyRefunded,
    /// All of the captured amount went back.
    Refunded,
}

impl PaymentStatus {
    /// Every status, the first a payment has first.
    pub const ALL: [Self; 7] = [
        Self::Pending,
        Self::Authorized,
        Self::Failed,
        Self::Captured,
        Self::Voided,
        Self::PartiallyRefunded,
        Self::Refunded,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Authorized => "authorized",
            Self::Failed => "failed",
            Self::Captured => "captured",
            Self::Voided => "voided",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
        }
    }

    /// The status of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "pending" => Self::Pending,
            "authorized" => Self::Authorized,
            "failed" => Self::Failed,
            "captured" => Self::Captured,
            "voided" => Self::Voided,
            "partially_refunded" => Self::PartiallyRefunded,
            "refunded" => Self::Refunded,
            _ => return None,
        })
    }

    /// Whether money was charged (and so may be refunded).
    pub fn is_charged(self) -> bool {
        matches!(self, Self::Captured | Self::PartiallyRefunded)
    }
}

/// Why an authorization was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Failure {
    /// The provider's code: `card_declined`, `payment_method_invalid`…
    pub code: String,
    /// The bank's reason when declined: `generic_decline`, `insufficient_funds`…
    pub decline_code: Option<String>,
    /// A message for the shopper.
    pub message: String,
}

/// One order's payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Payment {
    /// `pay_…`.
    pub id: String,
    /// The order (one payment per order).
    pub order_id: String,
    /// The shopper who owns it.
    pub customer_id: String,
    /// The amount to authorize and capture.
    pub amount: Money,
    /// Where it stands.
    pub status: PaymentStatus,
    /// The provider's payment method token (`pm_…`).
    pub payment_method: String,
    /// The provider (`simulated`, `stripe`).
    pub provider: String,
    /// The provider's reference (a PaymentIntent id) once authorized.
    pub provider_ref: Option<String>,
    /// Minor units captured.
    pub captured: i64,
    /// Minor units refunded.
    pub refunded: i64,
    /// Why the authorization was refused.
    pub failure: Option<Failure>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Payment {
    /// Minor units that may still be refunded.
    pub fn refundable(&self) -> i64 {
        if self.status.is_charged() { self.captured - self.refunded } else { 0 }
    }

    /// The provider idempotency key of `step` (`authorize`, `capture`, `void`) of this payment:
    /// derived from our own ids, so a retried or redelivered step sends the same key.
    pub fn key(&self, step: &str) -> String {
        format!("{}-{step}", self.id)
    }
}

/// A new payment for an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    /// The order.
    pub order_id: String,
    /// The shopper.
    pub customer_id: String,
    /// The amount.
    pub amount: Money,
    /// The provider's payment method token.
    pub payment_method: String,
    /// The provider.
    pub provider: String,
}

/// A change of a payment's state, as the transaction log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The new status.
    pub to: PaymentStatus,
    /// What the log calls the change (`authorized`, `captured`, `webhook:charge.refunded`…).
    pub kind: String,
    /// The amount the change is about (minor units).
    pub amount: i64,
    /// The provider's reference, when the change gives one.
    pub provider_ref: Option<String>,
    /// Minor units newly captured.
    pub captured: i64,
    /// Minor units newly refunded.
    pub refunded: i64,
    /// Why an authorization was refused.
    pub failure: Option<Failure>,
    /// More for the log (a refund id, a webhook event id).
    pub detail: String,
}

impl Transition {
    /// A change to `to` recorded as `kind` about `amount`.
    pub fn new(to: PaymentStatus, kind: impl Into<String>, amount: i64) -> Self {
        Self {
            to,
            kind: kind.into(),
            amount,
            provider_ref: None,
            captured: 0,
            refunded: 0,
            failure: None,
            detail: String::new(),
        }
    }
}

/// One entry of the transaction log: every state change of every payment, append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LogEntry {
    /// Orders the entries.
    pub seq: i64,
    /// The payment.
    pub payment_id: String,
    /// What happened.
    pub kind: String,
    /// The status after it.
    pub status: PaymentStatus,
    /// The amount it was about (minor units).
    pub amount: i64,
    /// The provider's reference.
    pub provider_ref: Option<String>,
    /// More (a refund id, a webhook event id, a decline code).
    pub detail: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Where a refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Recorded (its amount counted as refunded); the provider has not confirmed it yet.
    Pending,
    /// The provider refunded it.
    Succeeded,
    /// The provider refused it; its amount is refundable again.
    Failed,
}

impl RefundStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// The status of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "pending" => Self::Pending,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A refund of (part of) a captured payment. It is recorded before the provider is asked (so two
/// refunds can never together exceed the capture), then settled with the provider's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Refund {
    /// `re_…`: derived from the request's idempotency key, and the provider's idempotency key.
    pub id: String,
    /// The payment.
    pub payment_id: String,
    /// What goes back.
    pub amount: Money,
    /// Where it stands.
    pub status: RefundStatus,
    /// The provider's refund id, once it confirmed.
    pub provider_ref: Option<String>,
    /// Why.
    pub reason: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// `time` to the microsecond, as PostgreSQL keeps times (and SQLite stores them here).
pub fn stamp(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(time.timestamp_micros()).unwrap_or(time)
}

pub use platform::contracts::payment::is_payment_method_token;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_only_charged_money_is_refundable() {
        for status in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(status.as_str()), Some(status));
        }
        assert!(PaymentStatus::Captured.is_charged() && !PaymentStatus::Authorized.is_charged());
    }

    #[test]
    fn payment_methods_are_tokens() {
        assert!(is_payment_method_token("pm_card_visa"));
        assert!(is_payment_method_token("pm_card_chargeDeclinedInsufficientFunds"));
        for bad in ["", "pm_", "card_visa", "pm_4242 4242", "pm_x/y", "4242424242424242"] {
            assert!(!is_payment_method_token(bad), "{bad}");
        }
    }
}
