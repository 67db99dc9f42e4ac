//! The durable event queue of the embedded mode: a SQLite table per bus file with SQS's semantics —
//! visibility timeouts, receive counts, a dead-letter queue after [`MAX_RECEIVES`] receives, redrive —
//! and first-in first-out delivery per queue. Everything is on disk, so a restart loses nothing: a
//! message received but not acknowledged before the crash comes back when its visibility ends.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::params;
use tokio::sync::Notify;

use super::bus::{BusError, DeadLetter, Delivery, EventBus, MAX_RECEIVES};
use super::envelope::Event;
use super::routing::Routing;
use crate::sqlite::{Db, Migration, now_ms};

/// The queue's schema.
pub const QUEUE_MIGRATIONS: &[Migration] = &[
    Migration {
        scope: "events",
        version: 1,
        name: "queue",
        sql: include_str!("../../../../migrations/events/sqlite/0001_queue.sql"),
    },
    Migration {
        scope: "events",
        version: 2,
        name: "queue_indexes",
        sql: include_str!("../../../../migrations/events/sqlite/0002_queue_indexes.sql"),
    },
];

/// The condition of the `messages_exhausted` partial index, written out in each statement that
/// should use it (SQLite uses a partial index only where the query names its condition).
macro_rules! exhausted {
    () => {
        "receive_count >= 5"
    };
}
const _: () = assert!(MAX_RECEIVES == 5, "exhausted!() and the messages_exhausted index name MAX_RECEIVES");

/// How often a waiting receive looks for messages published by another process.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The embedded, durable queue.
#[derive(Clone)]
pub struct SqliteQueue {
    db: Db,
    routing: Arc<Routing>,
    published: Arc<Notify>,
    wait: Duration,
}

impl std::fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueue").field("db", &self.db).finish()
    }
}

impl SqliteQueue {
    /// Opens (creating) the queue file at `path`. A receive on an empty queue waits up to `wait` for
    /// a message.
    pub fn open(path: impl AsRef<Path>, routing: Routing, wait: Duration) -> Result<Self, BusError> {
        let db = Db::open(path)?;
        db.migrate(QUEUE_MIGRATIONS)?;
        Ok(Self { db, routing: Arc::new(routing), published: Arc::new(Notify::new()), wait })
    }

    /// Puts each event on its queues, all in one transaction.
    async fn insert(&self, rows: Vec<(Vec<String>, &Event)>) -> Result<(), BusError> {
        let rows: Vec<(Vec<String>, String, String)> = rows
            .into_iter()
            .filter(|(queues, event)| {
                if queues.is_empty() {
                    tracing::debug!(event.kind = %event.kind, "no queue subscribes to this event type");
                }
                !queues.is_empty()
            })
            .map(|(queues, event)| (queues, event.id.clone(), event.to_json()))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        self.db
            .transaction(move |tx| {
                let now = now_ms();
                let mut insert = tx.prepare_cached(
                    "INSERT INTO messages (queue, event_id, body, visible_at, enqueued_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                )?;
                for (queues, event_id, body) in &rows {
                    for queue in queues {
                        insert.execute(params![queue, event_id, body, now])?;
                    }
                }
                Ok(())
            })
            .await?;
        self.published.notify_waiters();
        Ok(())
    }

    fn routed<'a>(&self, event: &'a Event) -> (Vec<String>, &'a Event) {
        (self.routing.queues_for(&event.kind).map(str::to_owned).collect(), event)
    }

    async fn claim(&self, queue: &str, max: usize, visibility: Duration) -> Result<Vec<Delivery>, BusError> {
        let queue = queue.to_owned();
        let hidden_for = i64::try_from(visibility.as_millis()).unwrap_or(i64::MAX);
        let deliveries = self
            .db
            .transaction(move |tx| {
                let now = now_ms();
                // Messages received MAX_RECEIVES times without success die instead of coming back.
                tx.prepare_cached(concat!(
                    "INSERT INTO dead_letters (queue, event_id, body, receive_count, reason, enqueued_at, dead_at)
                     SELECT queue, event_id, body, receive_count, 'exceeded the maximum receive count', enqueued_at, ?2
                     FROM messages WHERE queue = ?1 AND visible_at <= ?2 AND ",
                    exhausted!(),
                    " ORDER BY id"
                ))?
                .execute(params![queue, now])?;
                tx.prepare_cached(concat!(
                    "DELETE FROM messages WHERE queue = ?1 AND visible_at <= ?2 AND ",
                    exhausted!()
                ))?
                .execute(params![queue, now])?;
                let mut claim = tx.prepare_cached(
                    "UPDATE messages SET receive_count = receive_count + 1, visible_at = ?3,
                            receipt = lower(hex(randomblob(12)))
                     WHERE id IN (SELECT id FROM messages WHERE queue = ?1 AND visible_at <= ?2 ORDER BY id LIMIT ?4)
                     RETURNING id, receipt, receive_count, body",
                )?;
                let mut deliveries = claim
                    .query_map(params![queue, now, now.saturating_add(hidden_for), max as i64], |row| {
                        Ok(Delivery {
                            queue: queue.clone(),
                            message_id: row.get::<_, i64>(0)?.to_string(),
                            receipt: row.get(1)?,
                            receive_count: row.get(2)?,
                            body: row.get(3)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                deliveries.sort_by_key(|d| d.message_id.parse::<i64>().unwrap_or_default());
                Ok(deliveries)
            })
            .await?;
        Ok(deliveries)
    }

    async fn has_visible(&self, queue: &str) -> Result<bool, BusError> {
        let queue = queue.to_owned();
        Ok(self
            .db
            .read(move |c| {
                Ok(c.prepare_cached("SELECT EXISTS (SELECT 1 FROM messages WHERE queue = ?1 AND visible_at <= ?2)")?
                    .query_row(params![queue, now_ms()], |r| r.get(0))?)
            })
            .await?)
    }

    fn message_id(delivery: &Delivery) -> Result<i64, BusError> {
        delivery.message_id.parse().map_err(|_| BusError::StaleReceipt(delivery.message_id.clone()))
    }
}

/// Refuses, as SQS would, an event whose body no queue carries.
fn refuse(event: &Event) -> Result<(), BusError> {
    super::bus::refusal(&event.to_json()).map_or(Ok(()), |reason| Err(BusError::Refused(reason)))
}

#[async_trait]
impl EventBus for SqliteQueue {
    async fn ensure_queue(&self, _queue: &str) -> Result<(), BusError> {
        // Queues are rows keyed by name: they exist as soon as a message names them.
        Ok(())
    }

    async fn publish(&self, event: &Event) -> Result<(), BusError> {
        refuse(event)?;
        self.insert(vec![self.routed(event)]).await
    }

    async fn publish_batch(&self, events: &[Event]) -> (usize, Result<(), BusError>) {
        // Everything before the first event a queue refuses goes in one transaction.
        let (sendable, refused) = match events.iter().position(|e| refuse(e).is_err()) {
            Some(i) => (i, refuse(&events[i]).err()),
            None => (events.len(), None),
        };
        match self.insert(events[..sendable].iter().map(|e| self.routed(e)).collect()).await {
            Ok(()) => (sendable, refused.map_or(Ok(()), Err)),
            Err(error) => (0, Err(error)),
        }
    }

    async fn send(&self, queue: &str, event: &Event) -> Result<(), BusError> {
        refuse(event)?;
        self.insert(vec![(vec![queue.to_owned()], event)]).await
    }

    async fn receive(&self, queue: &str, max: usize, visibility: Duration) -> Result<Vec<Delivery>, BusError> {
        let deadline = Instant::now() + self.wait;
        loop {
            // Register interest before looking, so a publish in between is not missed.
            let published = self.published.notified();
            // An idle consumer polls often: look on a reader first and take the writer only for work.
            let deliveries = if self.has_visible(queue).await? {
                self.claim(queue, max.max(1), visibility).await?
            } else {
                Vec::new()
            };
            let now = Instant::now();
            if !deliveries.is_empty() || now >= deadline {
                return Ok(deliveries);
            }
            let _ = tokio::time::timeout((deadline - now).min(POLL_INTERVAL), published).await;
        }
    }

    async fn ack_batch(&self, deliveries: &[&Delivery]) -> Vec<Result<(), BusError>> {
        let mut keys = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            match Self::message_id(delivery) {
                Ok(id) => keys.push(Some((id, delivery.receipt.clone()))),
                Err(_) => keys.push(None),
            }
        }
        let lookup = keys;
        let deleted = self
            .db
            .transaction(move |tx| {
                let mut delete = tx.prepare_cached("DELETE FROM messages WHERE id = ?1 AND receipt = ?2")?;
                let mut deleted = Vec::with_capacity(lookup.len());
                for key in &lookup {
                    deleted.push(match key {
                        Some((id, receipt)) => delete.execute(params![id, receipt])? == 1,
                        None => false,
                    });
                }
                Ok(deleted)
            })
            .await;
        match deleted {
            Ok(deleted) => deliveries
                .iter()
                .zip(deleted)
                .map(|(d, ok)| if ok { Ok(()) } else { Err(BusError::StaleReceipt(d.message_id.clone())) })
                .collect(),
            Err(error) => {
                // The batch failed as a whole: settle each alone (each reports its own failure).
                tracing::warn!(%error, "batch acknowledgement failed; acknowledging one by one");
                let mut outcomes = Vec::with_capacity(deliveries.len());
                for delivery in deliveries {
                    outcomes.push(self.ack(delivery).await);
                }
                outcomes
            }
        }
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), BusError> {
        let id = Self::message_id(delivery)?;
        let receipt = delivery.receipt.clone();
        let deleted = self
            .db
            .call(move |c| {
                Ok(c.prepare_cached("DELETE FROM messages WHERE id = ?1 AND receipt = ?2")?
                    .execute(params![id, receipt])?)
            })
            .await?;
        if deleted == 0 {
            return Err(BusError::StaleReceipt(delivery.message_id.clone()));
        }
        Ok(())
    }

    async fn nack(&self, delivery: &Delivery, delay: Duration) -> Result<(), BusError> {
        let id = Self::message_id(delivery)?;
        let receipt = delivery.receipt.clone();
        let visible_at = now_ms().saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
        let updated = self
            .db
            .call(move |c| {
                Ok(c.prepare_cached("UPDATE messages SET visible_at = ?3 WHERE id = ?1 AND receipt = ?2")?
                    .execute(params![id, receipt, visible_at])?)
            })
            .await?;
        if updated == 0 {
            return Err(BusError::StaleReceipt(delivery.message_id.clone()));
        }
        if delay.is_zero() {
            self.published.notify_waiters();
        }
        Ok(())
    }

    async fn extend(&self, deliveries: &[&Delivery], visibility: Duration) -> Result<(), BusError> {
        let keys = deliveries
            .iter()
            .map(|d| Ok((Self::message_id(d)?, d.receipt.clone())))
            .collect::<Result<Vec<_>, BusError>>()?;
        let visible_at = now_ms().saturating_add(i64::try_from(visibility.as_millis()).unwrap_or(i64::MAX));
        // One write for the batch; a message received again since (stale receipt) is left alone.
        self.db
            .transaction(move |tx| {
                let mut update =
                    tx.prepare_cached("UPDATE messages SET visible_at = ?3 WHERE id = ?1 AND receipt = ?2")?;
                for (id, receipt) in &keys {
                    update.execute(params![id, receipt, visible_at])?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<(), BusError> {
        let id = Self::message_id(delivery)?;
        let receipt = delivery.receipt.clone();
        let reason = reason.to_owned();
        let moved = self
            .db
            .transaction(move |tx| {
                let moved = tx.execute(
                    "INSERT INTO dead_letters (queue, event_id, body, receive_count, reason, enqueued_at, dead_at)
                     SELECT queue, event_id, body, receive_count, ?3, enqueued_at, ?4 FROM messages
                     WHERE id = ?1 AND receipt = ?2",
                    params![id, receipt, reason, now_ms()],
                )?;
                tx.execute("DELETE FROM messages WHERE id = ?1 AND receipt = ?2", params![id, receipt])?;
                Ok(moved)
            })
            .await?;
        if moved == 0 {
            return Err(BusError::StaleReceipt(delivery.message_id.clone()));
        }
        Ok(())
    }

    async fn dead_letters(&self, queue: &str, limit: usize) -> Result<Vec<DeadLetter>, BusError> {
        let queue = queue.to_owned();
        let letters = self
            .db
            .read(move |c| {
                let mut select = c.prepare_cached(
                    "SELECT id, body, receive_count, reason FROM dead_letters WHERE queue = ?1 ORDER BY id LIMIT ?2",
                )?;
                let letters = select
                    .query_map(params![queue, limit as i64], |row| {
                        Ok(DeadLetter {
                            message_id: row.get::<_, i64>(0)?.to_string(),
                            queue: queue.clone(),
                            body: row.get(1)?,
                            receive_count: row.get(2)?,
                            reason: row.get(3)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(letters)
            })
            .await?;
        Ok(letters)
    }

    async fn redrive(&self, queue: &str) -> Result<usize, BusError> {
        let queue = queue.to_owned();
        let moved = self
            .db
            .transaction(move |tx| {
                let moved = tx.execute(
                    "INSERT INTO messages (queue, event_id, body, visible_at, enqueued_at)
                     SELECT queue, event_id, body, ?2, ?2 FROM dead_letters WHERE queue = ?1 ORDER BY id",
                    params![queue, now_ms()],
                )?;
                tx.execute("DELETE FROM dead_letters WHERE queue = ?1", params![queue])?;
                Ok(moved)
            })
            .await?;
        self.published.notify_waiters();
        Ok(moved)
    }

    fn ordered(&self) -> bool {
        true
    }

    async fn ping(&self) -> Result<(), BusError> {
        self.db.read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)).await?;
        Ok(())
    }
}
