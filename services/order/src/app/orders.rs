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
