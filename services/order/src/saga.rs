//! The checkout saga, orchestrated here (ARCHITECTURE.md): reserve the stock → authorize the
//! payment → confirm (commit the stock, capture the payment) → ship (label) — with compensations on
//! every failure (release the stock, void the payment) and a timeout per waiting step.
//!
//! What must hold whatever the faults: an order ships only once its payment is captured *and* its
//! stock committed (each answer is marked in the history until the other comes; an order with
//! nothing to pay needs no payment); an order cancelled, rejected or failed keeps no money (a late
//! capture is refunded) and no stock; and every order that is not final has a deadline, at which
//! the sweeper asks again for what is missing, or compensates. A command that can never succeed is
//! answered with a failure (`inventory.commit_failed.v1`, `payment.capture_failed.v1`) that
//! cancels the order, never left in a dead-letter queue for the order to wait on.
//!
//! Every move of an order is one transaction conditional on the status it moves from, with the
//! commands it sends (outbox), so a redelivered answer finds the order moved on and does nothing,
//! and a crash between steps loses nothing: the saga state is the order's status and deadline,
//! and [`sweep`] picks up every order whose step is overdue after a restart too.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use platform::contracts::inventory::{Commit, CommitFailed, Committed, Line, Rejected, Release, Released, Reserve};
use platform::contracts::order::OrderEvent;
use platform::contracts::payment::{Authorize, Capture, CaptureFailed, Failed, PaymentEvent, Void};
use platform::contracts::reconcile::Finding;
use platform::events::{Event, EventHandler, HandlerError};
use platform::objects::ObjectStore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::NAME;
use crate::domain::order::{
    MONEY_RELEASED, NOTHING_TO_PAY, Order, OrderStatus, PAYMENT_CAPTURED, STOCK_COMMITTED, STOCK_RELEASED, step_timeout,
};
use crate::reconcile;
use crate::store::{Advance, OrderStore, StoreError};

/// The saga's queue: the inventory's and the payment's answers.
pub const QUEUE: &str = "order-saga";

/// How long a stock reservation holds: longer than the steps that follow it may take (the
/// configuration refuses a step timeout too long for it).
pub const RESERVATION_TTL_SECONDS: u64 = platform::contracts::order::CHECKOUT_HOLD_SECONDS;

/// Orders the sweeper handles per round.
const SWEEP_BATCH: usize = 100;

fn command(kind: &str, order: &Order, data: impl serde::Serialize, cause: Option<&Event>) -> Event {
    Event::new(kind, NAME, data).with_subject(order.id.clone()).with_cause(cause)
}

/// What placing `order` sends, with the order in one transaction: `order.placed.v1` and its stock
/// reservation.
pub fn placing(order: &Order) -> Vec<Event> {
    vec![order_event(OrderEvent::PLACED, order, OrderStatus::Pending, None, None), reserve(order, None)]
}

/// `inventory.reserve.v1` for `order`.
pub fn reserve(order: &Order, cause: Option<&Event>) -> Event {
    let lines = order.items.iter().map(|i| Line { sku: i.sku.clone(), quantity: i.quantity }).collect();
    let data = Reserve { order_id: order.id.clone(), lines, ttl_seconds: Some(RESERVATION_TTL_SECONDS) };
    command(Reserve::KIND, order, data, cause)
}

fn authorize(order: &Order, cause: Option<&Event>) -> Event {
    let data = Authorize {
        order_id: order.id.clone(),
        customer_id: order.customer_id.clone(),
        amount: order.total.clone(),
        payment_method: order.payment_method.clone(),
    };
    command(Authorize::KIND, order, data, cause)
}

pub(crate) fn commit(order: &Order, cause: Option<&Event>) -> Event {
    command(Commit::KIND, order, Commit { order_id: order.id.clone() }, cause)
}

pub(crate) fn capture(order: &Order, cause: Option<&Event>) -> Event {
    command(Capture::KIND, order, Capture { order_id: order.id.clone() }, cause)
}

pub(crate) fn release(order: &Order, reason: &str, cause: Option<&Event>) -> Event {
    command(Release::KIND, order, Release { order_id: order.id.clone(), reason: reason.into() }, cause)
}

pub(crate) fn void(order: &Order, reason: &str, cause: Option<&Event>) -> Event {
    command(Void::KIND, order, Void { order_id: order.id.clone(), reason: reason.into() }, cause)
}

/// The order event of `order` reaching `status`.
pub fn order_event(
    kind: &str,
    order: &Order,
    status: OrderStatus,
    reason: Option<&str>,
    cause: Option<&Event>,
) -> Event {
    let data = OrderEvent {
        order_id: order.id.clone(),
        customer_id: order.customer_id.clone(),
        status: status.as_str().to_owned(),
        total: order.total.clone(),
        reason: reason.map(str::to_owned),
        tracking_number: order.tracking_number.clone(),
    };
    command(kind, order, data, cause)
}

/// The compensation of an order cancelled in `from`: its stock released, its payment voided (or
/// refunded, when captured), and the shopper told.
pub fn cancellation(order: &Order, reason: &str, cause: Option<&Event>) -> Vec<Event> {
    vec![
        release(order, reason, cause),
        void(order, reason, cause),
        order_event(OrderEvent::CANCELLED, order, OrderStatus::Cancelled, Some(reason), cause),
    ]
}

fn deadline(status: OrderStatus, base: chrono::Duration) -> Option<chrono::DateTime<Utc>> {
    step_timeout(status, base).map(|timeout| Utc::now() + timeout)
}

/// Step timeouts a compensation (a release, a void) may take to be answered before it is sent
/// again.
const COMPENSATION_STEPS: i32 = 4;

/// When compensations sent now must have answered.
fn compensation_deadline(step: chrono::Duration) -> Option<chrono::DateTime<Utc>> {
    Some(Utc::now() + step * COMPENSATION_STEPS)
}

/// The move of an order to `status` (cancelled or payment failed) for `reason`, with the deadline by
/// which its compensations must have answered (else the sweeper sends them again).
pub fn compensating(status: OrderStatus, reason: &str, step: chrono::Duration) -> Advance {
    Advance { steps: vec![(status, Some(reason.to_owned()))], deadline: compensation_deadline(step), label: None }
}

/// The compensations of an order that will not ship that have not answered yet, sent again with
/// the reason they were first sent with.
pub fn missing_compensations(order: &Order, cause: Option<&Event>) -> Vec<Event> {
    let reason = match order.status {
        OrderStatus::PaymentFailed => "payment_failed",
        _ => order.status_reason().unwrap_or("cancelled"),
    };
    let commands = order.unanswered_compensations().into_iter();
    commands
        .map(|mark| if mark == STOCK_RELEASED { release(order, reason, cause) } else { void(order, reason, cause) })
        .collect()
}

/// The part of every answer the saga reads.
#[derive(Deserialize)]
struct About {
    order_id: String,
}

/// The saga's handler of the inventory's and the payment's answers.
pub struct Saga {
    orders: Arc<dyn OrderStore>,
    objects: Arc<dyn ObjectStore>,
    outbox: Arc<Notify>,
    step: chrono::Duration,
}

impl Saga {
    /// A saga moving `orders`, keeping labels in `objects`, waking the outbox relay after moves,
    /// giving each waiting step a multiple of `step` (see [`step_timeout`]).
    pub fn new(
        orders: Arc<dyn OrderStore>,
        objects: Arc<dyn ObjectStore>,
        outbox: Arc<Notify>,
        step: chrono::Duration,
    ) -> Self {
        Self { orders, objects, outbox, step }
    }

    async fn advance(
        &self,
        order: &Order,
        from: &[OrderStatus],
        advance: Advance,
        events: Vec<Event>,
    ) -> Result<Option<Order>, StoreError> {
        let moved = self.orders.advance(&order.id, from, &advance, &events).await?;
        if moved.is_some() {
            self.outbox.notify_one();
        }
        Ok(moved)
    }

    async fn on_answer(&self, event: &Event, order: Order) -> Result<(), HandlerError> {
        let cause = Some(event);
        let moved = match event.kind.as_str() {
            "inventory.reserved.v1" if !order.needs_payment() => {
                // Nothing to pay: confirmed without a payment; only the stock is committed.
                let advance = Advance {
                    steps: vec![
                        (OrderStatus::Reserved, None),
                        (OrderStatus::Paid, Some(NOTHING_TO_PAY.into())),
                        (OrderStatus::Confirmed, None),
                    ],
                    deadline: deadline(OrderStatus::Confirmed, self.step),
                    label: None,
                };
                let events = vec![
                    commit(&order, cause),
                    order_event(OrderEvent::CONFIRMED, &order, OrderStatus::Confirmed, None, cause),
                ];
                self.advance(&order, &[OrderStatus::Pending], advance, events).await
            }
            "inventory.reserved.v1" => {
                let advance = Advance {
                    steps: vec![(OrderStatus::Reserved, None)],
                    deadline: deadline(OrderStatus::Reserved, self.step),
                    label: None,
                };
                self.advance(&order, &[OrderStatus::Pending], advance, vec![authorize(&order, cause)]).await
            }
            Rejected::KIND => {
                let reason = Some("out_of_stock".to_owned());
                let advance = Advance {
                    steps: vec![(OrderStatus::Rejected, reason)],
                    deadline: reconcile::audit_deadline(self.step),
                    label: None,
                };
                let told =
                    order_event(OrderEvent::REJECTED, &order, OrderStatus::Rejected, Some("out_of_stock"), cause);
                self.advance(&order, &[OrderStatus::Pending], advance, vec![told]).await
            }
            PaymentEvent::AUTHORIZED => {
                let advance = Advance {
                    steps: vec![(OrderStatus::Paid, None), (OrderStatus::Confirmed, None)],
                    deadline: deadline(OrderStatus::Confirmed, self.step),
                    label: None,
                };
                let events = vec![
                    commit(&order, cause),
                    capture(&order, cause),
                    order_event(OrderEvent::CONFIRMED, &order, OrderStatus::Confirmed, None, cause),
                ];
                self.advance(&order, &[OrderStatus::Reserved], advance, events).await
            }
            Failed::KIND => {
                let failed: Failed = event.data_as().map_err(|e| HandlerError::Reject(e.to_string()))?;
                let reason = failed.decline_code.unwrap_or(failed.code);
                let advance = compensating(OrderStatus::PaymentFailed, &reason, self.step);
                let events = vec![
                    release(&order, "payment_failed", cause),
                    order_event(OrderEvent::PAYMENT_FAILED, &order, OrderStatus::PaymentFailed, Some(&reason), cause),
                ];
                self.advance(&order, &[OrderStatus::Pending, OrderStatus::Reserved], advance, events).await
            }
            PaymentEvent::CAPTURED => match order.status {
                OrderStatus::Confirmed if order.is_committed() => self.ship(&order, cause).await?,
                OrderStatus::Confirmed if order.is_captured() => return Ok(()),
                OrderStatus::Confirmed => self.mark(&order, PAYMENT_CAPTURED).await,
                // Money taken for an order that will not ship: give it back (a void of a captured
                // payment refunds it; asked again, it refunds once).
                OrderStatus::Cancelled | OrderStatus::Rejected | OrderStatus::PaymentFailed => {
                    self.send(&order, vec![void(&order, "captured_after_cancel", cause)]).await
                }
                _ => return Ok(()),
            },
            Committed::KIND => match order.status {
                OrderStatus::Confirmed if order.is_captured() => self.ship(&order, cause).await?,
                OrderStatus::Confirmed if order.is_committed() => return Ok(()),
                OrderStatus::Confirmed => self.mark(&order, STOCK_COMMITTED).await,
                // Stock taken for an order that will not ship: it goes back (a release of
                // committed units returns them; asked again, it returns them once).
                OrderStatus::Cancelled | OrderStatus::Rejected | OrderStatus::PaymentFailed => {
                    self.send(&order, vec![release(&order, "committed_after_cancel", cause)]).await
                }
                _ => return Ok(()),
            },
            Released::KIND => self.compensated(&order, STOCK_RELEASED).await,
            PaymentEvent::VOIDED | PaymentEvent::REFUNDED => self.compensated(&order, MONEY_RELEASED).await,
            CommitFailed::KIND => match order.status {
                // The hold lapsed before the commit: the units may be sold; give the money back.
                OrderStatus::Confirmed => self.cancel(&order, "reservation_lapsed", cause).await,
                // The audit of a settled order: its stock is not where the rules want it.
                _ => {
                    let failed: CommitFailed = event.data_as().map_err(|e| HandlerError::Reject(e.to_string()))?;
                    self.found(&order, reconcile::commit_refused(&order, &failed.reason)).await
                }
            },
            CaptureFailed::KIND => match order.status {
                // The money can never be taken: give the stock back.
                OrderStatus::Confirmed => self.cancel(&order, "payment_capture_failed", cause).await,
                _ => {
                    let failed: CaptureFailed = event.data_as().map_err(|e| HandlerError::Reject(e.to_string()))?;
                    self.found(&order, reconcile::capture_refused(&order, &failed.reason)).await
                }
            },
            // Confirmations of compensations: nothing more to do.
            _ => return Ok(()),
        };
        moved.map_err(HandlerError::retry)?;
        Ok(())
    }

    /// Cancels a confirmed order whose commit or capture can never succeed: stock released, money
    /// voided or refunded, the shopper told.
    async fn cancel(&self, order: &Order, reason: &str, cause: Option<&Event>) -> Result<Option<Order>, StoreError> {
        let advance = compensating(OrderStatus::Cancelled, reason, self.step);
        self.advance(order, &[OrderStatus::Confirmed], advance, cancellation(order, reason, cause)).await
    }

    /// Marks what the audit of a settled order found that no command sets right (once per rule),
    /// and reports it.
    async fn found(&self, order: &Order, finding: Option<Finding>) -> Result<Option<Order>, StoreError> {
        let Some(finding) = finding else { return Ok(None) };
        let mark = reconcile::audit_mark(finding.rule);
        if order.history.iter().any(|entry| entry.reason.as_deref() == Some(mark.as_str())) {
            return Ok(None);
        }
        let advance = Advance { steps: vec![(order.status, Some(mark))], deadline: order.deadline, label: None };
        let marked = self.advance(order, &[order.status], advance, Vec::new()).await?;
        if marked.is_some() {
            reconcile::report(order, &finding);
        }
        Ok(marked)
    }

    /// Marks a compensation of an order that will not ship answered, if it was awaited.
    async fn compensated(&self, order: &Order, mark: &'static str) -> Result<Option<Order>, StoreError> {
        if !order.unanswered_compensations().contains(&mark) {
            return Ok(None);
        }
        self.mark(order, mark).await
    }

    /// Records `mark` in an order's history, its status kept: one half of a confirmed order
    /// answered, or one compensation of an order that will not ship. The deadline stays, unless
    /// the mark was the last compensation awaited: then the order is settled, and audited later.
    async fn mark(&self, order: &Order, mark: &'static str) -> Result<Option<Order>, StoreError> {
        let last = order.unanswered_compensations() == [mark];
        let deadline = if last { reconcile::audit_deadline(self.step) } else { order.deadline };
        let advance = Advance { steps: vec![(order.status, Some(mark.into()))], deadline, label: None };
        self.advance(order, &[order.status], advance, Vec::new()).await
    }

    /// Sends `commands` about an order without moving it (its deadline kept).
    async fn send(&self, order: &Order, commands: Vec<Event>) -> Result<Option<Order>, StoreError> {
        let advance = Advance { deadline: order.deadline, ..Advance::default() };
        self.advance(order, &[order.status], advance, commands).await
    }

    /// Ships a confirmed order whose payment is captured and stock committed: its label made, the
    /// shopper told. A label that cannot be stored now is retried with the answer.
    async fn ship(
        &self,
        order: &Order,
        cause: Option<&Event>,
    ) -> Result<Result<Option<Order>, StoreError>, HandlerError> {
        let (url, tracking) = self.label(order).await.map_err(HandlerError::retry)?;
        let mut shipped = order.clone();
        shipped.tracking_number = Some(tracking.clone());
        let advance = Advance {
            steps: vec![(OrderStatus::Shipped, None)],
            label: Some((url, tracking)),
            deadline: reconcile::audit_deadline(self.step),
        };
        let told = order_event(OrderEvent::SHIPPED, &shipped, OrderStatus::Shipped, None, cause);
        Ok(self.advance(order, &[OrderStatus::Confirmed], advance, vec![told]).await)
    }

    /// Makes the order's shipping label (a PDF with the addresses, the items and a tracking
    /// number) in the object store; where the API serves it (to the order's owner and admins only:
    /// it carries addresses) and the tracking number. Made again it is the same.
    async fn label(&self, order: &Order) -> Result<(String, String), platform::objects::ObjectError> {
        let tracking = tracking_number(&order.id);
        let pdf = Bytes::from(crate::label::render(order, &tracking));
        self.objects.put(&label_key(&order.id), pdf, "application/pdf").await?;
        Ok((format!("/v1/orders/{}/label", order.id), tracking))
    }
}

/// The object-store key of an order's shipping label.
pub fn label_key(order_id: &str) -> String {
    format!("labels/{order_id}.pdf")
}

/// The tracking number of an order: 12 digits derived from its id.
pub fn tracking_number(order_id: &str) -> String {
    let digest = Sha256::digest(order_id.as_bytes());
    let number = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) % 1_000_000_000_000;
    format!("SHP{number:012}")
}

#[async_trait]
impl EventHandler for Saga {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        if !(event.kind.starts_with("inventory.") || event.kind.starts_with("payment.")) {
            return Ok(());
        }
        let about: About = event.data_as().map_err(|e| HandlerError::Reject(format!("{}: {e}", event.kind)))?;
        let Some(order) = self.orders.get(&about.order_id).await.map_err(HandlerError::retry)? else {
            // Not one of ours (a payment or a reservation made for another purpose).
            return Ok(());
        };
        self.on_answer(event, order).await
    }

    /// Many orders at once; one order's answers in the order received.
    async fn handle_batch(&self, events: &[Event]) -> Vec<Result<(), HandlerError>> {
        platform::events::handle_by_subject(self, events).await
    }
}

/// Gives up on, or asks again for, every order whose waiting step is overdue, every `interval`,
/// until `shutdown`: an order still waiting for its stock or its payment is cancelled (stock
/// released, payment voided); a confirmed one has its commit or capture, whichever has not
/// answered, sent again.
pub async fn sweep(
    orders: Arc<dyn OrderStore>,
    outbox: Arc<Notify>,
    step: chrono::Duration,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        match sweep_once(orders.as_ref(), step).await {
            Ok(0) => {}
            Ok(moved) => {
                tracing::info!(moved, "moved orders whose saga step timed out");
                outbox.notify_one();
            }
            Err(error) => {
                tracing::warn!(error = %platform::error::cause_chain(&error), "could not sweep overdue orders")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// The commands that move a confirmed order on: what has not answered yet. When both halves are
/// marked (two answers handled at once, each before the other was recorded) the capture is asked
/// for again, and its answer ships the order.
pub fn missing_halves(order: &Order, cause: Option<&Event>) -> Vec<Event> {
    match (order.is_committed(), order.is_captured()) {
        (false, false) => vec![commit(order, cause), capture(order, cause)],
        (false, true) => vec![commit(order, cause)],
        (true, false) => vec![capture(order, cause)],
        // Both answered, yet not shipped: ask again for the one whose answer ships it.
        (true, true) if order.needs_payment() => vec![capture(order, cause)],
        (true, true) => vec![commit(order, cause)],
    }
}

/// One round of [`sweep`]; the orders moved.
pub async fn sweep_once(orders: &dyn OrderStore, step: chrono::Duration) -> Result<usize, StoreError> {
    let mut moved = 0;
    for order in orders.due(Utc::now(), SWEEP_BATCH).await? {
        let status = order.status;
        let result = match status {
            OrderStatus::Pending | OrderStatus::Reserved | OrderStatus::Paid => {
                let reason = "timed_out";
                let advance = compensating(OrderStatus::Cancelled, reason, step);
                orders.advance(&order.id, &[status], &advance, &cancellation(&order, reason, None)).await?
            }
            // A compensation not answered (its command dead-lettered, the service down): sent again
            // until it is, so no stock or money stays with an order that will not ship.
            OrderStatus::Cancelled | OrderStatus::PaymentFailed if !order.is_compensated() => {
                let advance = Advance { steps: Vec::new(), deadline: compensation_deadline(step), label: None };
                orders.advance(&order.id, &[status], &advance, &missing_compensations(&order, None)).await?
            }
            OrderStatus::Confirmed => {
                let advance = Advance { steps: Vec::new(), deadline: deadline(status, step), label: None };
                orders.advance(&order.id, &[status], &advance, &missing_halves(&order, None)).await?
            }
            // Settled, and its audit is due: the commands that set it right if the world disagrees.
            _ => {
                let commands = reconcile::audit(&order);
                let audited = orders.advance(&order.id, &[status], &Advance::default(), &commands).await?;
                if audited.is_some() && !commands.is_empty() {
                    metrics::counter!("reconcile_audited_total", "service" => NAME).increment(1);
                }
                audited
            }
        };
        moved += usize::from(result.is_some());
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_numbers_are_stable_per_order() {
        assert_eq!(tracking_number("ord_1"), tracking_number("ord_1"));
        assert_ne!(tracking_number("ord_1"), tracking_number("ord_2"));
        assert_eq!(tracking_number("ord_1").len(), 15);
    }
}
