//! What shoppers and admins ask of a placed order: a cancellation, a delivery. Both are moves of
//! the order state machine, applied by the saga.

use crate::app::saga::{Applied, Saga, SagaError};
use crate::domain::order::{Order, OrderStatus};
use crate::domain::saga::SagaEvent;

/// Why an order was not moved.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// It has left, or is over.
    #[error("a {} order can no longer be cancelled", .0.as_str())]
    NotCancellable(OrderStatus),
    /// It has not shipped.
    #[error("a {} order cannot be delivered", .0.as_str())]
    NotShipped(OrderStatus),
    /// The saga could not move it.
    #[error(transparent)]
    Saga(#[from] SagaError),
}

impl platform::error::Kinded for OrderError {
    fn kind(&self) -> platform::error::ErrorKind {
        match self {
            Self::NotCancellable(_) | Self::NotShipped(_) => platform::error::ErrorKind::Conflict,
            Self::Saga(error) => error.kind(),
        }
    }
}

/// Cancels an order that has not left: its stock is released and its payment voided (or
/// refunded, when already captured). Cancelled again, it is answered as it is.
#[tracing::instrument(skip_all, fields(order.id = %order.id))]
pub async fn cancel(saga: &Saga, order: Order) -> Result<Order, OrderError> {
    match saga.apply(&order, &SagaEvent::Cancel, None).await? {
        Applied::Moved(cancelled) => Ok(*cancelled),
        Applied::Ignored => Ok(order),
        Applied::Refused => Err(OrderError::NotCancellable(order.status)),
        Applied::Overtaken => {
            let now = saga.orders().get(&order.id).await.map_err(SagaError::from)?.unwrap_or(order);
            Err(OrderError::NotCancellable(now.status))
        }
    }
}

/// Marks a shipped order delivered (its audit keeps the deadline it had). Delivered again, it is
/// answered as it is.
#[tracing::instrument(skip_all, fields(order.id = %order.id))]
pub async fn deliver(saga: &Saga, order: Order) -> Result<Order, OrderError> {
    match saga.apply(&order, &SagaEvent::Deliver, None).await? {
        Applied::Moved(delivered) => Ok(*delivered),
        Applied::Ignored => Ok(order),
        Applied::Refused | Applied::Overtaken => Err(OrderError::NotShipped(order.status)),
    }
}

/// Why a refund was not made.
#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    /// The request cannot be met by the order as it is.
    #[error(transparent)]
    Refused(#[from] crate::domain::refund::RefundRefusal),
    /// The key named another refund of the order.
    #[error("this Idempotency-Key was used with another refund")]
    KeyReused,
    /// The order kept changing under every try.
    #[error("the order kept changing; try again")]
    KeptChanging,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Tries of a refund whose order changed under it (another refund, a delivery).
const REFUND_ATTEMPTS: usize = 3;

/// The id of the refund an admin's `key` makes of `order_id`: the same key names the same refund,
/// so a request sent again refunds once.
pub fn refund_id(order_id: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{order_id}\n{key}").as_bytes());
    format!("rfd_{}", &hex::encode(digest)[..32])
}

/// Refunds units of a shipped order's lines (and its shipping) at what the shopper paid for them,
/// from the order's breakdown: the refund recorded on the order and the payment's refund command
/// sent in one transaction (the order moves to `refunded` once nothing is left). The same `key`
/// answers the order with that refund, however often it is sent.
#[tracing::instrument(skip_all, fields(order.id = %order.id))]
pub async fn refund(
    orders: &dyn crate::store::OrderStore,
    mut order: Order,
    request: &crate::domain::refund::RefundRequest,
    key: &str,
) -> Result<Order, RefundError> {
    use crate::domain::refund::{leaves_nothing, plan};
    use platform::contracts::payment::RefundCommand;

    let id = refund_id(&order.id, key);
    for _ in 0..REFUND_ATTEMPTS {
        if let Some(done) = order.refunds.iter().find(|r| r.id == id) {
            let same_lines = request.lines.len() == done.lines.len()
                && request.lines.iter().zip(&done.lines).all(|(a, b)| a.sku == b.sku && a.quantity == b.quantity);
            if same_lines && request.shipping == (done.shipping > 0) {
                return Ok(order);
            }
            return Err(RefundError::KeyReused);
        }
        let refund = plan(&order, request, id.clone(), crate::domain::order::stamp(chrono::Utc::now()))?;
        let whole = leaves_nothing(&order, &refund);
        let events = if refund.amount > 0 {
            let command = RefundCommand {
                order_id: order.id.clone(),
                amount: Some(refund.amount),
                reason: refund.reason.clone(),
            };
            // The payment gives the money back; the shopper is told what this refund is worth.
            let status = if whole { crate::domain::order::OrderStatus::Refunded } else { order.status };
            vec![
                platform::events::Event::new(RefundCommand::KIND, crate::NAME, command).with_subject(order.id.clone()),
                crate::app::saga::refunded_event(&order, status, refund.amount, Some(&refund.reason)),
            ]
        } else {
            Vec::new()
        };
        if let Some(refunded) = orders.refund(&order.id, order.refunds.len(), &refund, whole, &events).await? {
            metrics::counter!("order_refunds_total").increment(1);
            tracing::info!(refund.id = %refund.id, refund.amount = refund.amount, whole, "refund recorded");
            return Ok(refunded);
        }
        // Another refund (or a move) got in first: price it from the order as it is now.
        match orders.get(&order.id).await? {
            Some(now) => order = now,
            None => return Err(RefundError::KeptChanging),
        }
    }
    Err(RefundError::KeptChanging)
}
