//! The payment's half of the checkout saga: the handler of the order service's commands
//! (`payment-commands` queue). Each command is idempotent per order (and a refund per command):
//! a redelivered command never charges, captures or refunds twice.

use async_trait::async_trait;
use platform::contracts::MAX_ORDER_ID;
use platform::contracts::payment::{Authorize, Capture, RefundCommand, Void};
use platform::events::{Event, EventHandler, HandlerError, Subscription};

use crate::app::payments::{PaymentError, Payments};
use crate::domain::payment::Payment;

/// The queue of the saga's commands.
pub const QUEUE: &str = "payment-commands";

/// The queues the service consumes and the events each receives.
pub const SUBSCRIPTIONS: &[Subscription] =
    &[Subscription { queue: QUEUE, events: &[Authorize::KIND, Capture::KIND, Void::KIND, RefundCommand::KIND] }];

/// Applies the saga's commands.
pub struct Commands {
    payments: Payments,
}

impl Commands {
    /// A handler taking its steps with `payments`.
    pub fn new(payments: Payments) -> Self {
        Self { payments }
    }
}

fn parse<T: serde::de::DeserializeOwned>(event: &Event) -> Result<T, HandlerError> {
    event.data_as().map_err(|e| HandlerError::Reject(format!("{}: {e}", event.kind)))
}

fn check(order_id: &str, reason: Option<&str>) -> Result<(), HandlerError> {
    if order_id.is_empty() || order_id.len() > MAX_ORDER_ID {
        return Err(HandlerError::Reject(format!("order_id must be 1 to {MAX_ORDER_ID} characters")));
    }
    if reason.is_some_and(|r| r.is_empty() || r.len() > 200) {
        return Err(HandlerError::Reject("reason must be 1 to 200 characters".into()));
    }
    Ok(())
}

/// Records the order a command is about on the handler's span, once its id is checked.
fn about(order_id: &str) {
    tracing::Span::current().record("order.id", order_id);
}

/// The outcome of a step for the queue; a step taken is logged with the payment it left.
fn applied(result: Result<Payment, PaymentError>) -> Result<(), HandlerError> {
    if let Ok(payment) = &result {
        tracing::Span::current().record("payment.id", payment.id.as_str());
        tracing::info!(payment.status = payment.status.as_str(), "payment command applied");
    }
    outcome(result)
}

fn outcome<T>(result: Result<T, PaymentError>) -> Result<(), HandlerError> {
    match result {
        Ok(_) => Ok(()),
        Err(error @ PaymentError::Store(crate::store::StoreError::NotRefundable { .. })) => {
            Err(HandlerError::Reject(error.to_string()))
        }
        Err(error @ (PaymentError::Unavailable(_) | PaymentError::Store(_))) => Err(HandlerError::retry(error)),
        // A step the provider refuses for good (a void of an authorization it will not cancel):
        // for operators, through the dead-letter queue. A capture that can never succeed is
        // answered with `payment.capture_failed.v1` instead, which the saga acts on.
        Err(error) => Err(HandlerError::Reject(error.to_string())),
    }
}

#[async_trait]
impl EventHandler for Commands {
    #[tracing::instrument(skip_all, fields(order.id, payment.id))]
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        match event.kind.as_str() {
            Authorize::KIND => {
                let command: Authorize = parse(event)?;
                check(&command.order_id, None)?;
                about(&command.order_id);
                if command.customer_id.is_empty() || command.customer_id.len() > MAX_ORDER_ID {
                    return Err(HandlerError::Reject("customer_id must be 1 to 128 characters".into()));
                }
                if command.amount.amount <= 0 || !platform::money::is_currency_code(&command.amount.currency) {
                    return Err(HandlerError::Reject("the amount must be positive, in an ISO 4217 currency".into()));
                }
                applied(self.payments.authorize(&command, Some(event)).await)
            }
            Capture::KIND => {
                let command: Capture = parse(event)?;
                check(&command.order_id, None)?;
                about(&command.order_id);
                applied(self.payments.capture(&command.order_id, Some(event)).await)
            }
            Void::KIND => {
                let command: Void = parse(event)?;
                check(&command.order_id, Some(&command.reason))?;
                about(&command.order_id);
                applied(self.payments.void(&command.order_id, &command.reason, Some(event)).await)
            }
            RefundCommand::KIND => {
                let command: RefundCommand = parse(event)?;
                check(&command.order_id, Some(&command.reason))?;
                about(&command.order_id);
                if command.amount.is_some_and(|a| a <= 0) {
                    return Err(HandlerError::Reject("amount must be positive".into()));
                }
                let store = self.payments.store();
                let payment = match store.by_order(&command.order_id).await {
                    Ok(Some(payment)) => payment,
                    Ok(None) => return Err(HandlerError::Reject(format!("no payment for order {}", command.order_id))),
                    Err(error) => return Err(HandlerError::retry(error)),
                };
                // The command's id is the refund's key: a redelivery refunds once.
                let refunded =
                    self.payments.refund(&payment, command.amount, &command.reason, &event.id, Some(event)).await;
                applied(refunded.map(|(payment, _)| payment))
            }
            other => Err(HandlerError::Reject(format!("the payment service takes no {other}"))),
        }
    }

    /// Many orders at once; one order's commands in the order received.
    async fn handle_batch(&self, events: &[Event]) -> Vec<Result<(), HandlerError>> {
        platform::events::handle_by_subject(self, events).await
    }
}
