//! The outbox relay: publishes what services wrote to their outbox table (in the same transaction as
//! their state change) and deletes what the bus accepted. A crash between the two republishes; the
//! consumers' inbox makes that harmless.
//!
//! The relay looks every interval, and at once when an [`OutboxSignal`] wakes it: the stores that
//! write outbox rows hold the signal of their service's relay and wake it after a commit that wrote
//! events, so nothing above the store knows there is a relay.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::params;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::bus::{BusError, EventBus};
use super::envelope::Event;
use crate::sqlite::Db;

/// Rows the relay moves at a time.
const BATCH: usize = 500;

/// A table of events waiting to be published.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// The oldest waiting events, in order, with their sequence numbers.
    async fn fetch(&self, limit: usize) -> Result<Vec<(i64, String)>, BusError>;
    /// Forgets published events.
    async fn delete(&self, seqs: &[i64]) -> Result<(), BusError>;
}

/// The outbox of a SQLite service database.
#[derive(Debug, Clone)]
pub struct SqliteOutbox(pub Db);

#[async_trait]
impl OutboxStore for SqliteOutbox {
    async fn fetch(&self, limit: usize) -> Result<Vec<(i64, String)>, BusError> {
        Ok(self
            .0
            .read(move |c| {
                let mut select = c.prepare_cached("SELECT seq, body FROM outbox ORDER BY seq LIMIT ?1")?;
                let rows = select
                    .query_map(params![limit as i64], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?)
    }

    async fn delete(&self, seqs: &[i64]) -> Result<(), BusError> {
        let seqs = seqs.to_vec();
        self.0
            .transaction(move |tx| {
                let mut delete = tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?;
                for seq in seqs {
                    delete.execute(params![seq])?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }
}

/// Wakes an outbox relay: a store that wrote events calls [`wake`](Self::wake) once its
/// transaction commits, so they leave at once instead of at the relay's next look. Clones wake the
/// same relay; one nobody listens on (the default, in tests and tools) wakes nobody. Wakes that
/// come while the relay is busy fold into one more look.
#[derive(Debug, Clone, Default)]
pub struct OutboxSignal(Arc<Notify>);

impl OutboxSignal {
    /// Wakes the relay listening on this signal (or the next one to listen).
    pub fn wake(&self) {
        self.0.notify_one();
    }

    /// Wakes the relay if `wrote`: what a store calls with whether the transaction it committed
    /// wrote events.
    pub fn wake_if(&self, wrote: bool) {
        if wrote {
            self.wake();
        }
    }

    /// Waits until the signal is woken; returns at once if it was woken since the last wait.
    pub async fn woken(&self) {
        self.0.notified().await;
    }
}

/// Moves an outbox onto the bus.
#[derive(Clone)]
pub struct OutboxRelay {
    store: Arc<dyn OutboxStore>,
    bus: Arc<dyn EventBus>,
    signal: OutboxSignal,
    interval: Duration,
}

impl OutboxRelay {
    /// A relay from `store` to `bus` that looks every `interval` and whenever its signal is woken
    /// (a signal of its own unless [`woken_by`](Self::woken_by) names the stores').
    pub fn new(store: Arc<dyn OutboxStore>, bus: Arc<dyn EventBus>, interval: Duration) -> Self {
        Self { store, bus, signal: OutboxSignal::default(), interval }
    }

    /// The relay, woken by `signal` (the one the stores writing its outbox hold).
    pub fn woken_by(mut self, signal: OutboxSignal) -> Self {
        self.signal = signal;
        self
    }

    /// Publishes everything waiting; the number published.
    pub async fn drain(&self) -> Result<usize, BusError> {
        let mut total = 0;
        loop {
            let rows = self.store.fetch(BATCH).await?;
            if rows.is_empty() {
                return Ok(total);
            }
            let mut published = Vec::with_capacity(rows.len());
            let mut events = Vec::with_capacity(rows.len());
            let mut seqs = Vec::with_capacity(rows.len());
            for (seq, body) in &rows {
                match Event::from_json(body) {
                    Ok(event) => {
                        events.push(event);
                        seqs.push(*seq);
                    }
                    Err(error) => {
                        // Only our own code writes the outbox; a bad row is a bug, kept out of the way.
                        tracing::error!(outbox.seq = seq, %error, "dropping an outbox row that is not an event");
                        published.push(*seq);
                    }
                }
            }
            let (sent, outcome) = self.bus.publish_batch(&events).await;
            published.extend_from_slice(&seqs[..sent]);
            if crate::telemetry::emf::enabled() {
                // Business metrics count what was published (at least once, as the events go).
                events[..sent].iter().filter_map(crate::telemetry::emf::of_event).for_each(|set| set.emit());
            }
            let failure = outcome.err();
            // Counted when published (a failed delete republishes later; the inbox absorbs that).
            metrics::counter!("outbox_published_total").increment(published.len() as u64);
            self.store.delete(&published).await?;
            total += published.len();
            if let Some(error) = failure {
                return Err(error);
            }
        }
    }

    /// Runs until `shutdown`, then publishes what is left once more.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(error) = self.drain().await {
                tracing::warn!(error = %crate::error::cause_chain(&error), "outbox relay could not publish; will retry");
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.signal.woken() => {}
                () = tokio::time::sleep(self.interval) => {}
            }
        }
        if let Err(error) = self.drain().await {
            tracing::warn!(error = %crate::error::cause_chain(&error), "outbox left unpublished at shutdown");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::events::routing::Routing;
    use crate::events::sqlite::SqliteQueue;
    use crate::sqlite::{PLATFORM_MIGRATIONS, outbox_push};

    #[tokio::test]
    async fn committed_events_are_published_in_order_and_rolled_back_ones_never() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("svc.db")).unwrap();
        db.migrate(PLATFORM_MIGRATIONS).unwrap();
        let bus = Arc::new(
            SqliteQueue::open(dir.path().join("events.db"), Routing::new().subscribe("q", ["t.*"]), Duration::ZERO)
                .unwrap(),
        );
        let events: Vec<Event> = (0..3).map(|i| Event::new("t.happened.v1", "svc", json!({"i": i}))).collect();
        let committed = events.clone();
        db.transaction(move |tx| {
            for event in &committed {
                outbox_push(tx, event)?;
            }
            Ok(())
        })
        .await
        .unwrap();
        let rolled_back = Event::new("t.happened.v1", "svc", json!({"i": 99}));
        let _ = db
            .transaction(move |tx| {
                outbox_push(tx, &rolled_back)?;
                Err::<(), _>(crate::sqlite::DbError::Sqlite(rusqlite::Error::InvalidQuery))
            })
            .await;

        let relay = OutboxRelay::new(Arc::new(SqliteOutbox(db.clone())), bus.clone(), Duration::from_secs(60));
        assert_eq!(relay.drain().await.unwrap(), 3);
        assert_eq!(relay.drain().await.unwrap(), 0);
        let received = bus.receive("q", 10, Duration::from_secs(30)).await.unwrap();
        let ids: Vec<String> = received.iter().map(|d| d.event().unwrap().id).collect();
        assert_eq!(ids, events.iter().map(|e| e.id.clone()).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_signal_remembers_one_wake_until_it_is_waited_on() {
        use futures::FutureExt;
        let signal = OutboxSignal::default();
        assert!(signal.woken().now_or_never().is_none(), "not woken yet");
        let store_side = signal.clone();
        store_side.wake();
        store_side.wake();
        assert!(signal.woken().now_or_never().is_some(), "a clone wakes the same relay");
        assert!(signal.woken().now_or_never().is_none(), "two wakes before a look are one look");
    }

    #[tokio::test]
    async fn a_woken_relay_publishes_before_its_next_look() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("svc.db")).unwrap();
        db.migrate(PLATFORM_MIGRATIONS).unwrap();
        // A receive that waits for a publish (up to ten seconds), so the test sees when the relay moves.
        let routing = Routing::new().subscribe("q", ["t.*"]);
        let bus = Arc::new(SqliteQueue::open(dir.path().join("events.db"), routing, Duration::from_secs(10)).unwrap());
        let signal = OutboxSignal::default();
        let relay = OutboxRelay::new(Arc::new(SqliteOutbox(db.clone())), bus.clone(), Duration::from_secs(3600))
            .woken_by(signal.clone());
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(relay.run(shutdown.clone()));
        // The relay's first look finds nothing; after that only the signal makes it look again.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let event = Event::new("t.happened.v1", "svc", json!({}));
        let written = event.clone();
        db.transaction(move |tx| outbox_push(tx, &written)).await.unwrap();
        signal.wake();
        let received = bus.receive("q", 10, Duration::from_secs(30)).await.unwrap();
        assert_eq!(received.iter().map(|d| d.event().unwrap().id).collect::<Vec<_>>(), [event.id]);
        shutdown.cancel();
        running.await.unwrap();
    }
}
