//! What the order service receives: the inventory's and the payment's answers to the saga's
//! commands, and the user service's word that an account's email is proven (its guest orders
//! are then the account's), on one queue.

use std::sync::Arc;

use async_trait::async_trait;
use platform::contracts::inventory::{CommitFailed, Committed, Rejected, Released, Reserved};
use platform::contracts::payment::{CaptureFailed, Failed, PaymentEvent};
use platform::contracts::user::EmailVerified;
use platform::events::{Event, EventHandler, HandlerError, Subscription};
use serde::Deserialize;

use crate::app::saga::{Applied, Saga};
use crate::domain::saga::{SagaEvent, Transition, transition};

/// The saga's queue: the inventory's and the payment's answers.
pub const QUEUE: &str = "order-saga";

/// The queues the service consumes and the events each receives.
pub const SUBSCRIPTIONS: &[Subscription] = &[Subscription {
    queue: QUEUE,
    events: &[
        Reserved::KIND,
        Rejected::KIND,
        Committed::KIND,
        CommitFailed::KIND,
        Released::KIND,
        PaymentEvent::AUTHORIZED,
        Failed::KIND,
        PaymentEvent::CAPTURED,
        CaptureFailed::KIND,
        PaymentEvent::VOIDED,
        PaymentEvent::REFUNDED,
        EmailVerified::KIND,
    ],
}];

/// The part of every answer the saga reads.
#[derive(Deserialize)]
struct About {
    order_id: String,
}

/// The saga's handler of the inventory's and the payment's answers.
pub struct SagaAnswers(pub Arc<Saga>);

/// The event of the state machine an answer is; `None` for one the saga does not wait for (the
/// confirmations of its own compensations are all it hears besides).
fn saga_event(event: &Event) -> Result<Option<SagaEvent>, HandlerError> {
    let reject = |e: serde_json::Error| HandlerError::Reject(format!("{}: {e}", event.kind));
    Ok(Some(match event.kind.as_str() {
        Reserved::KIND => SagaEvent::Reserved,
        Rejected::KIND => SagaEvent::OutOfStock,
        PaymentEvent::AUTHORIZED => SagaEvent::Authorized,
        Failed::KIND => {
            let failed: Failed = event.data_as().map_err(reject)?;
            SagaEvent::PaymentFailed(failed.decline_code.unwrap_or(failed.code))
        }
        PaymentEvent::CAPTURED => SagaEvent::Captured,
        Committed::KIND => SagaEvent::Committed,
        Released::KIND => SagaEvent::Released,
        PaymentEvent::VOIDED | PaymentEvent::REFUNDED => SagaEvent::MoneyReleased,
        // The reason is read when it matters (the audit of a settled order).
        CommitFailed::KIND => SagaEvent::CommitFailed(String::new()),
        CaptureFailed::KIND => SagaEvent::CaptureFailed(String::new()),
        _ => return Ok(None),
    }))
}

#[async_trait]
impl EventHandler for SagaAnswers {
    #[tracing::instrument(skip_all, fields(event.kind = %event.kind, event.id = %event.id, order.id))]
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        if event.kind == EmailVerified::KIND {
            let verified: EmailVerified =
                event.data_as().map_err(|e| HandlerError::Reject(format!("{}: {e}", event.kind)))?;
            let Some(email) = platform::email::normalize(&verified.email) else {
                return Err(HandlerError::Reject(format!("{}: not an email address", event.kind)));
            };
            let claimed =
                self.0.orders().claim_guest_orders(&email, &verified.user_id).await.map_err(HandlerError::retry)?;
            if claimed > 0 {
                tracing::info!(user.id = %verified.user_id, claimed, "guest orders joined the account");
            }
            return Ok(());
        }
        if !(event.kind.starts_with("inventory.") || event.kind.starts_with("payment.")) {
            return Ok(());
        }
        let about: About = event.data_as().map_err(|e| HandlerError::Reject(format!("{}: {e}", event.kind)))?;
        tracing::Span::current().record("order.id", about.order_id.as_str());
        let Some(order) = self.0.orders().get(&about.order_id).await.map_err(HandlerError::retry)? else {
            // Not one of ours (a payment or a reservation made for another purpose).
            return Ok(());
        };
        let Some(mut answer) = saga_event(event)? else { return Ok(()) };
        // A refused commit or capture of a settled order is audited by its reason.
        let facts = crate::domain::saga::Facts::of(&order);
        if let Transition::Audit(..) = transition(order.status, &facts, &answer) {
            let reason = match answer {
                SagaEvent::CommitFailed(_) => event.data_as::<CommitFailed>().map(|f| f.reason),
                _ => event.data_as::<CaptureFailed>().map(|f| f.reason),
            };
            let reason = reason.map_err(|e| HandlerError::Reject(e.to_string()))?;
            answer = match answer {
                SagaEvent::CommitFailed(_) => SagaEvent::CommitFailed(reason),
                _ => SagaEvent::CaptureFailed(reason),
            };
        }
        match self.0.apply(&order, &answer, Some(event)).await.map_err(HandlerError::retry)? {
            Applied::Moved(_) | Applied::Overtaken | Applied::Ignored | Applied::Refused => Ok(()),
        }
    }

    /// Many orders at once; one order's answers in the order received.
    async fn handle_batch(&self, events: &[Event]) -> Vec<Result<(), HandlerError>> {
        platform::events::handle_by_subject(self, events).await
    }
}
