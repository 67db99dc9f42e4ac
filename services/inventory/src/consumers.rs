//! The inventory's half of the checkout saga: the handler of the order service's commands
//! (`inventory-commands` queue) and the sweeper that releases expired reservations.
//!
//! Every command is idempotent through the reservation it acts on (keyed by order id): a command
//! delivered again finds its work done and changes nothing. The answers of state changes leave
//! through the outbox with the change; `inventory.commit_failed.v1` changes nothing and is
//! published directly (again on a redelivery, which the saga ignores), and so is the
//! `inventory.committed.v1` or `inventory.released.v1` that answers a commit or release made
//! before (the saga re-sends a commit or release whose answer it never got, and waits for it).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use platform::contracts::inventory::{Commit, CommitFailed, Committed, MAX_TTL_SECONDS, Release, Released, Reserve};
use platform::events::{Event, EventBus, EventHandler, HandlerError, Subscription};

use crate::NAME;
use crate::domain::{EXPIRED, MAX_ORDER_ID, ReservationStatus, normalize_lines};
use crate::store::{InventoryStore, StoreError};

/// The queue of the saga's commands.
pub const QUEUE: &str = "inventory-commands";

/// The queues the service consumes and the events each receives.
pub const SUBSCRIPTIONS: &[Subscription] =
    &[Subscription { queue: QUEUE, events: &[Reserve::KIND, Commit::KIND, Release::KIND] }];

/// Applies the saga's commands.
pub struct Commands {
    store: Arc<dyn InventoryStore>,
    bus: Arc<dyn EventBus>,
    default_ttl: Duration,
}

impl Commands {
    /// A handler over `store`, answering on `bus` what changes nothing (the answers of changes
    /// leave through the store's outbox); reservations hold for `default_ttl` unless the command
    /// says otherwise.
    pub fn new(store: Arc<dyn InventoryStore>, bus: Arc<dyn EventBus>, default_ttl: Duration) -> Self {
        Self { store, bus, default_ttl }
    }

    async fn reserve(&self, event: &Event, command: Reserve) -> Result<(), HandlerError> {
        let lines = normalize_lines(&command.lines).map_err(|e| HandlerError::Reject(e.to_string()))?;
        let ttl = match command.ttl_seconds {
            Some(seconds) if (1..=MAX_TTL_SECONDS).contains(&seconds) => Duration::from_secs(seconds),
            Some(seconds) => return Err(HandlerError::Reject(format!("ttl_seconds {seconds} is out of range"))),
            None => self.default_ttl,
        };
        let expires_at = Utc::now() + ttl;
        self.store.reserve(&command.order_id, &lines, expires_at, Some(event)).await.map_err(retry)?;
        Ok(())
    }

    async fn commit(&self, event: &Event, order_id: &str) -> Result<(), HandlerError> {
        let outcome = self.store.commit(order_id, Some(event)).await.map_err(retry)?;
        let reason = match &outcome {
            None => "unknown",
            Some(outcome) => match outcome.reservation.status {
                ReservationStatus::Committed if outcome.changed => return Ok(()),
                ReservationStatus::Committed => {
                    // Committed before: answer again, so the saga that asked again moves on.
                    let lines = outcome.reservation.lines.clone();
                    let data = Committed { order_id: order_id.to_owned(), lines };
                    return self.answer(event, order_id, Committed::KIND, data).await;
                }
                ReservationStatus::Held => unreachable!("a commit leaves no reservation held"),
                ReservationStatus::Rejected => "rejected",
                ReservationStatus::Released if outcome.reservation.release_reason.as_deref() == Some(EXPIRED) => {
                    EXPIRED
                }
                ReservationStatus::Released | ReservationStatus::Returned => "released",
            },
        };
        let data = CommitFailed { order_id: order_id.to_owned(), reason: reason.to_owned() };
        self.answer(event, order_id, CommitFailed::KIND, data).await
    }

    async fn release(&self, event: &Event, command: Release) -> Result<(), HandlerError> {
        let outcome = self.store.release(&command.order_id, &command.reason, Some(event)).await.map_err(retry)?;
        if !outcome.changed {
            // Given back before (or nothing held): answer again, so the saga that asked again
            // knows nothing of the order's is held.
            let reservation = outcome.reservation;
            let data = Released {
                order_id: command.order_id.clone(),
                lines: Vec::new(),
                reason: reservation.release_reason.unwrap_or(command.reason),
                returned: reservation.status == ReservationStatus::Returned,
            };
            self.answer(event, &command.order_id, Released::KIND, data).await?;
        }
        Ok(())
    }

    /// Publishes `data` as `kind`, the answer to `cause` about `order_id`, straight to the bus: it
    /// changes nothing, so there is no transaction for it to leave with through the outbox.
    async fn answer(
        &self,
        cause: &Event,
        order_id: &str,
        kind: &str,
        data: impl serde::Serialize,
    ) -> Result<(), HandlerError> {
        let answer = Event::new(kind, NAME, data).with_subject(order_id.to_owned()).caused_by(cause);
        self.bus.publish(&answer).await.map_err(HandlerError::retry)
    }
}

fn retry(error: StoreError) -> HandlerError {
    HandlerError::retry(error)
}

fn parse<T: serde::de::DeserializeOwned>(event: &Event) -> Result<T, HandlerError> {
    event.data_as().map_err(|e| HandlerError::Reject(format!("{}: {e}", event.kind)))
}

fn check_order_id(order_id: &str) -> Result<(), HandlerError> {
    if order_id.is_empty() || order_id.len() > MAX_ORDER_ID {
        return Err(HandlerError::Reject(format!("order_id must be 1 to {MAX_ORDER_ID} characters")));
    }
    Ok(())
}

/// Records the order a command is about on the handler's span, once its id is checked.
fn about(order_id: &str) {
    tracing::Span::current().record("order.id", order_id);
}

#[async_trait]
impl EventHandler for Commands {
    #[tracing::instrument(skip_all, fields(order.id))]
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let applied = match event.kind.as_str() {
            Reserve::KIND => {
                let command: Reserve = parse(event)?;
                check_order_id(&command.order_id)?;
                about(&command.order_id);
                self.reserve(event, command).await
            }
            platform::contracts::inventory::Commit::KIND => {
                let command: platform::contracts::inventory::Commit = parse(event)?;
                check_order_id(&command.order_id)?;
                about(&command.order_id);
                self.commit(event, &command.order_id).await
            }
            Release::KIND => {
                let command: Release = parse(event)?;
                check_order_id(&command.order_id)?;
                about(&command.order_id);
                if command.reason.is_empty() || command.reason.len() > 200 {
                    return Err(HandlerError::Reject("reason must be 1 to 200 characters".into()));
                }
                self.release(event, command).await
            }
            other => Err(HandlerError::Reject(format!("the inventory takes no {other}"))),
        };
        if applied.is_ok() {
            tracing::info!("inventory command applied");
        }
        applied
    }

    /// Many orders at once; one order's commands in the order received.
    async fn handle_batch(&self, events: &[Event]) -> Vec<Result<(), HandlerError>> {
        platform::events::handle_by_subject(self, events).await
    }
}
