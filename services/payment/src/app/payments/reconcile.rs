//! The payment service's part of reconciling what the world did with what we recorded: its own
//! payments against the provider's (the rules between an order, its payment and its stock are in
//! [`platform::contracts::reconcile`]; the order service's audit asks this service about each
//! settled order through the saga's commands).
//!
//! Every round ([`RECONCILE_EVERY`]) looks at the payments that waited longer than any checkout
//! can ([`WAITING_LIMIT`]: the stock hold, and the longest a command is retried, have passed):
//! - **pending** (an authorize that never finished, its void lost too): voided as the void would
//!   (the provider searched for a hold it placed, released, or a capture refunded);
//! - **authorized** (a capture or void that never came): the provider asked. Captured there, the
//!   capture is recorded and answered (the saga ships, or refunds, the order); cancelled or lapsed
//!   there, it is voided and answered; still held there, it is reported once: which of capture and
//!   void is right is the order's to say, and the order's own deadline asks.
//!
//! Each finding is logged and counted (`reconcile_findings_total`, `ReconcileRepaired` /
//! `ReconcileUnrepaired`).

use std::time::Duration;

use chrono::Utc;
use platform::contracts::payment::PaymentEvent;
use platform::contracts::reconcile::count;

use super::{Payments, payment_event, provider_error};
use crate::NAME;
use crate::app::payments::PaymentError;
use crate::domain::payment::{Payment, PaymentStatus, Transition};
use crate::provider::IntentState;

/// How often the reconciler looks.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(5 * 60);

/// How long a payment may wait in `pending` or `authorized` before it is looked at: longer than
/// the stock hold of its checkout, and than the retries of a command.
pub const WAITING_LIMIT: Duration = Duration::from_secs(platform::contracts::order::CHECKOUT_HOLD_SECONDS + 5 * 60);

/// Payments of each waiting status looked at per round.
const BATCH: usize = 100;

/// The log entry of an open authorization reported to people.
const REPORTED_OPEN: &str = "reconcile_reported";

/// What a round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Payments set right.
    pub repaired: usize,
    /// Payments reported for people to look at.
    pub reported: usize,
}

impl Payments {
    /// One round: the payments waiting since before `before` set right with what the provider
    /// says, or reported.
    pub async fn reconcile_once(&self, before: chrono::DateTime<Utc>) -> Result<Reconciled, PaymentError> {
        let mut done = Reconciled::default();
        for payment in self.store.stale(PaymentStatus::Pending, before, BATCH).await? {
            let voided = self.void(&payment.order_id, "abandoned", None).await?;
            if voided.status != PaymentStatus::Pending {
                tracing::warn!(payment_id = %payment.id, order_id = %payment.order_id, now = voided.status.as_str(),
                    "reconcile: an authorize that never finished was voided");
                count(NAME, "authorize_abandoned", true);
                done.repaired += 1;
            }
        }
        for payment in self.store.stale(PaymentStatus::Authorized, before, BATCH).await? {
            match self.reconcile_hold(&payment).await? {
                Some(true) => done.repaired += 1,
                Some(false) => done.reported += 1,
                None => {}
            }
        }
        Ok(done)
    }

    /// An authorization left open: `Some(true)` set right, `Some(false)` reported, `None` nothing
    /// new.
    async fn reconcile_hold(&self, payment: &Payment) -> Result<Option<bool>, PaymentError> {
        let provider_ref = payment.provider_ref.clone().unwrap_or_default();
        let state = self.provider.retrieve(&provider_ref).await.map_err(provider_error)?;
        let rule = match state {
            IntentState::Captured => {
                self.record_capture(payment, super::CAPTURED_AT_PROVIDER, None, Some(None)).await?;
                "captured_unrecorded"
            }
            IntentState::Authorized => {
                let log = self.store.log(&payment.id).await?;
                if log.iter().any(|entry| entry.kind == REPORTED_OPEN) {
                    return Ok(None);
                }
                let detail = "an authorization open long after its checkout: neither capture nor void came";
                self.note(payment, (REPORTED_OPEN, 0), detail, &[]).await?;
                tracing::error!(payment_id = %payment.id, order_id = %payment.order_id, provider_ref,
                    "reconcile: {detail}");
                count(NAME, "authorization_open", false);
                return Ok(Some(false));
            }
            other => {
                // Cancelled or lapsed at the provider: nothing is held any more.
                let mut transition = Transition::new(PaymentStatus::Voided, "hold_lapsed", payment.amount.amount);
                transition.detail = format!("{other:?} at the provider");
                let event = payment_event(PaymentEvent::VOIDED, payment, payment.amount.amount, None);
                if self.move_to(payment, &[PaymentStatus::Authorized], transition, &[event]).await?.is_none() {
                    return Ok(None);
                }
                "hold_lapsed"
            }
        };
        tracing::warn!(payment_id = %payment.id, order_id = %payment.order_id, rule,
            "reconcile: recorded what the provider did");
        count(NAME, rule, true);
        Ok(Some(true))
    }
}
