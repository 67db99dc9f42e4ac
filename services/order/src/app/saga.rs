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

use bytes::Bytes;
use chrono::Utc;
use platform::contracts::inventory::{Commit, Line, Release, Reserve};
use platform::contracts::order::OrderEvent;
use platform::contracts::payment::{Authorize, Capture, Void};
use platform::events::Event;
use platform::objects::ObjectStore;
use tokio_util::sync::CancellationToken;

use crate::NAME;
use crate::app::reconcile;
use crate::domain::order::{Order, OrderStatus, step_timeout};
use crate::domain::saga::{self as rules, Command, Deadline, Facts, Refused, SagaEvent, Transition};
use crate::label;
use crate::store::{Advance, OrderStore, StoreError};

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

pub fn commit(order: &Order, cause: Option<&Event>) -> Event {
    command(Commit::KIND, order, Commit { order_id: order.id.clone() }, cause)
}

pub fn capture(order: &Order, cause: Option<&Event>) -> Event {
    command(Capture::KIND, order, Capture { order_id: order.id.clone() }, cause)
}

pub fn release(order: &Order, reason: &str, cause: Option<&Event>) -> Event {
    command(Release::KIND, order, Release { order_id: order.id.clone(), reason: reason.into() }, cause)
}

pub fn void(order: &Order, reason: &str, cause: Option<&Event>) -> Event {
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
    command(kind, order, order_data(order, status, reason), cause)
}

/// `order.refunded.v1`: a refund of `order` gives back `amount` (minor units of its currency), the
/// order reaching `status`.
pub fn refunded_event(order: &Order, status: OrderStatus, amount: i64, reason: Option<&str>) -> Event {
    let data = OrderEvent {
        refunded: Some(platform::money::Money::new(amount, &order.total.currency)),
        ..order_data(order, status, reason)
    };
    command(OrderEvent::REFUNDED, order, data, None)
}

fn order_data(order: &Order, status: OrderStatus, reason: Option<&str>) -> OrderEvent {
    OrderEvent {
        order_id: order.id.clone(),
        customer_id: order.customer_id.clone(),
        status: status.as_str().to_owned(),
        total: order.total.clone(),
        reason: reason.map(str::to_owned),
        tracking_number: order.tracking_number.clone(),
        totals: Some(platform::contracts::order::Totals {
            subtotal: order.pricing.subtotal,
            discount_total: order.pricing.discount_total,
            shipping_total: order.pricing.shipping_total,
            tax_total: order.pricing.tax_total,
            tax_inclusive: order.pricing.tax_inclusive,
        }),
        guest: order.email.as_ref().zip(order.token.as_ref()).map(|(email, token)| {
            platform::contracts::order::GuestContact { email: email.clone(), token: token.clone() }
        }),
        refunded: None,
    }
}

/// The events of `commands` about `order`.
pub fn events(order: &Order, commands: &[Command], cause: Option<&Event>) -> Vec<Event> {
    let event = |command: &Command| match command {
        Command::Reserve => reserve(order, cause),
        Command::Authorize => authorize(order, cause),
        Command::Commit => commit(order, cause),
        Command::Capture => capture(order, cause),
        Command::Release(reason) => release(order, reason, cause),
        Command::Void(reason) => void(order, reason, cause),
        Command::Tell(kind, status, reason) => order_event(kind, order, *status, reason.as_deref(), cause),
    };
    commands.iter().map(event).collect()
}

/// The compensation of an order cancelled for `reason`: its stock released, its payment voided (or
/// refunded, when captured), and the shopper told.
pub fn cancellation(order: &Order, reason: &str, cause: Option<&Event>) -> Vec<Event> {
    events(order, &rules::cancellation(reason), cause)
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

/// How a move ended.
#[derive(Debug)]
pub enum Applied {
    /// The order moved (or sent what it had to): as it is now.
    Moved(Box<Order>),
    /// It had moved on meanwhile (its status was no longer one the move starts from): nothing done.
    Overtaken,
    /// Nothing to do.
    Ignored,
    /// Not allowed in its status.
    Refused,
}

/// What stopped the saga applying a move.
#[derive(Debug, thiserror::Error)]
pub enum SagaError {
    /// The order store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The shipping label could not be stored.
    #[error("cannot store the shipping label")]
    Label(#[from] platform::objects::ObjectError),
}

impl platform::error::Kinded for SagaError {
    fn kind(&self) -> platform::error::ErrorKind {
        match self {
            Self::Store(error) => error.kind(),
            Self::Label(error) => error.kind(),
        }
    }
}

/// The saga: applies the order state machine's moves ([`rules::transition`]) to orders, each in
/// one transaction with the commands it sends.
pub struct Saga {
    orders: Arc<dyn OrderStore>,
    objects: Arc<dyn ObjectStore>,
    step: chrono::Duration,
}

impl Saga {
    /// A saga moving `orders` (whose store wakes the outbox relay after a move), keeping labels in
    /// `objects`, giving each waiting step a multiple of `step` (see [`step_timeout`]).
    pub fn new(orders: Arc<dyn OrderStore>, objects: Arc<dyn ObjectStore>, step: chrono::Duration) -> Self {
        Self { orders, objects, step }
    }

    /// The orders it moves.
    pub fn orders(&self) -> &Arc<dyn OrderStore> {
        &self.orders
    }

    /// The base step timeout.
    pub fn step(&self) -> chrono::Duration {
        self.step
    }

    /// Applies what `event` (caused by `cause`, when a message) does to `order`.
    #[tracing::instrument(skip_all, fields(order.id = %order.id, order.status = order.status.as_str()))]
    pub async fn apply(&self, order: &Order, event: &SagaEvent, cause: Option<&Event>) -> Result<Applied, SagaError> {
        let moved = match rules::transition(order.status, &Facts::of(order), event) {
            Transition::Move { from, steps, deadline, commands } => {
                let advance = Advance { steps, deadline: self.deadline(order, deadline), label: None };
                self.advance(order, &from, advance, events(order, &commands, cause)).await?
            }
            Transition::Ship => self.ship(order, cause).await?,
            Transition::Audit(refused, reason) => self.found(order, refused, &reason).await?,
            Transition::Reconcile => self.reconcile(order).await?,
            Transition::Ignore => return Ok(Applied::Ignored),
            Transition::Refuse => return Ok(Applied::Refused),
        };
        let Some(moved) = moved else { return Ok(Applied::Overtaken) };
        tracing::info!(to = moved.status.as_str(), "saga step applied");
        Ok(Applied::Moved(Box::new(moved)))
    }

    /// When a deadline rule says an order moved now must have moved on.
    fn deadline(&self, order: &Order, rule: Deadline) -> Option<chrono::DateTime<Utc>> {
        match rule {
            Deadline::Step(status) => deadline(status, self.step),
            Deadline::Compensation => compensation_deadline(self.step),
            Deadline::Audit => reconcile::audit_deadline(self.step),
            Deadline::Keep => order.deadline,
        }
    }

    async fn advance(
        &self,
        order: &Order,
        from: &[OrderStatus],
        advance: Advance,
        events: Vec<Event>,
    ) -> Result<Option<Order>, StoreError> {
        self.orders.advance(&order.id, from, &advance, &events).await
    }

    /// Marks what the audit of a settled order found that no command sets right (once per rule),
    /// and reports it.
    async fn found(&self, order: &Order, refused: Refused, reason: &str) -> Result<Option<Order>, StoreError> {
        let finding = match refused {
            Refused::Commit => reconcile::commit_refused(order, reason),
            Refused::Capture => reconcile::capture_refused(order, reason),
        };
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

    /// The audit of a settled order whose deadline passed: the commands that set it right if the
    /// world disagrees; it keeps no deadline after.
    async fn reconcile(&self, order: &Order) -> Result<Option<Order>, StoreError> {
        let commands = reconcile::audit(order);
        let audited = self.advance(order, &[order.status], Advance::default(), commands.clone()).await?;
        if audited.is_some() && !commands.is_empty() {
            metrics::counter!("reconcile_audited_total", "service" => NAME).increment(1);
        }
        Ok(audited)
    }

    /// Ships a confirmed order whose payment is captured and stock committed: its label made, the
    /// shopper told. A label that cannot be stored now is retried with the answer.
    async fn ship(&self, order: &Order, cause: Option<&Event>) -> Result<Option<Order>, SagaError> {
        let tracking = label::tracking_number(&order.id);
        let pdf = Bytes::from(label::render(order, &tracking));
        self.objects.put(&label::label_key(&order.id), pdf, "application/pdf").await?;
        let mut shipped = order.clone();
        shipped.tracking_number = Some(tracking.clone());
        let advance = Advance {
            steps: vec![(OrderStatus::Shipped, None)],
            label: Some((label::label_url(&order.id), tracking)),
            deadline: reconcile::audit_deadline(self.step),
        };
        let told = order_event(OrderEvent::SHIPPED, &shipped, OrderStatus::Shipped, None, cause);
        Ok(self.advance(order, &[OrderStatus::Confirmed], advance, vec![told]).await?)
    }

    /// One round of [`sweep`]: every order whose deadline passed is moved as [`SagaEvent::Overdue`]
    /// says; the orders moved.
    pub async fn sweep_once(&self) -> Result<usize, SagaError> {
        let mut moved = 0;
        for order in self.orders.due(Utc::now(), SWEEP_BATCH).await? {
            moved += usize::from(matches!(self.apply(&order, &SagaEvent::Overdue, None).await?, Applied::Moved(_)));
        }
        Ok(moved)
    }
}

/// Gives up on, or asks again for, every order whose waiting step is overdue, every `interval`,
/// until `shutdown`: an order still waiting for its stock or its payment is cancelled (stock
/// released, payment voided); a confirmed one has its commit or capture, whichever has not
/// answered, sent again; a settled one is audited.
pub async fn sweep(saga: Arc<Saga>, interval: Duration, shutdown: CancellationToken) {
    loop {
        match saga.sweep_once().await {
            Ok(0) => {}
            Ok(moved) => tracing::info!(moved, "moved orders whose saga step timed out"),
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
