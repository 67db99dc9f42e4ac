//! The outbox relay: publishes what services wrote to their outbox table (in the same transaction as
//! their state change) and deletes what the bus accepted. A crash between the two republishes; the
//! consumers' inbox makes that harmless.
//!
//! The relay looks at once when an [`OutboxSignal`] wakes it: the stores that write outbox rows hold
//! the signal of their service's relay and wake it after a commit that wrote events, so nothing
//! above the store knows there is a relay. Besides, it looks every interval for what no wake
//! announced (rows another task of the service wrote and could not publish, a crashed task's):
//! every interval while there is work, then, while its looks find nothing, less and less often
//! (up to [`IDLE_LOOKS`] intervals apart), so an idle service does not query its store's outbox
//! partitions several times a second for nothing.
//!
//! An outbox is spread over [`partitions`](OutboxStore::partitions) (DynamoDB's sharded partition
//! keys; one for a SQL table). A relay drains a partition only while it holds the partition's
//! lease, so the tasks of a service publish each event once and share a backlog between them
//! instead of each publishing all of it. An event the bus refuses for good (too large, characters a
//! queue does not carry) is parked in the outbox's dead-letter table with the reason, counted
//! (`outbox_parked_total`, the `OutboxParked` business metric and its alarm), and the events behind
//! it go on; any other failure is retried with a growing pause.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::bus::{BusError, EventBus};
use super::envelope::Event;
use crate::sqlite::Db;

/// Rows the relay moves at a time.
const BATCH: usize = 500;

/// The most intervals an idle relay waits between looks that no wake asked for.
pub const IDLE_LOOKS: u32 = 8;

/// The pause after `idle` looks in a row found nothing: doubling from the interval as
/// [`retry_after`] does, up to [`IDLE_LOOKS`] intervals.
pub fn idle_pause(interval: Duration, idle: u32) -> Duration {
    retry_after(interval, idle).min(interval.saturating_mul(IDLE_LOOKS))
}

/// How long a relay's lease on a partition lasts unless renewed: how long a partition waits when
/// its relay died holding it. A relay renews it after a third of that while it drains.
pub const LEASE_TTL: Duration = Duration::from_secs(10);

/// The longest pause between tries while the bus keeps failing.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// An event the bus refused for good, kept out of the outbox with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedEvent {
    /// Its outbox sequence number.
    pub seq: i64,
    /// Its event id, where the row was an event.
    pub event_id: Option<String>,
    /// The row as it was written.
    pub body: String,
    /// Why the bus refused it.
    pub reason: String,
    /// When it was parked (milliseconds since the epoch).
    pub parked_at_ms: i64,
}

/// The event id of an outbox row, where it has one.
pub fn event_id_of(body: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    serde_json::from_str::<Id>(body).ok().map(|row| row.id)
}

/// A table of events waiting to be published.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// The partitions the outbox is spread over, `0..partitions()`; each is drained on its own.
    fn partitions(&self) -> u32 {
        1
    }

    /// Takes `partition` for `owner` until `ttl` from now, or keeps it, unless another relay holds
    /// an unexpired lease on it; whether `owner` holds it now.
    async fn lease(&self, partition: u32, owner: &str, ttl: Duration) -> Result<bool, BusError>;

    /// Gives up `owner`'s lease on `partition` (nothing when another holds it).
    async fn release(&self, partition: u32, owner: &str) -> Result<(), BusError>;

    /// Whether `partition` has events waiting (what a relay asks before taking its lease).
    async fn waiting(&self, partition: u32) -> Result<bool, BusError> {
        Ok(!self.fetch(partition, 1).await?.is_empty())
    }

    /// The oldest waiting events of `partition`, in order, with their sequence numbers.
    async fn fetch(&self, partition: u32, limit: usize) -> Result<Vec<(i64, String)>, BusError>;

    /// Forgets published events of `partition`.
    async fn delete(&self, partition: u32, seqs: &[i64]) -> Result<(), BusError>;

    /// Moves row `seq` of `partition`, which the bus refused for good, out of the outbox into its
    /// dead-letter table with `reason`.
    async fn park(&self, partition: u32, seq: i64, body: &str, reason: &str) -> Result<(), BusError>;

    /// Up to `limit` parked events, oldest first.
    async fn parked(&self, limit: usize) -> Result<Vec<ParkedEvent>, BusError>;
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

/// The outbox of a SQLite service database (one partition).
#[derive(Debug, Clone)]
pub struct SqliteOutbox(pub Db);

#[async_trait]
impl OutboxStore for SqliteOutbox {
    async fn lease(&self, partition: u32, owner: &str, ttl: Duration) -> Result<bool, BusError> {
        let owner = owner.to_owned();
        let now = now_ms();
        Ok(self
            .0
            .transaction(move |tx| {
                let changed = tx
                    .prepare_cached(
                        "INSERT INTO outbox_lease (part, owner, until_ms) VALUES (?1, ?2, ?3)
                         ON CONFLICT (part) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
                         WHERE outbox_lease.owner = excluded.owner OR outbox_lease.until_ms < ?4",
                    )?
                    .execute(params![partition, owner, now.saturating_add(ttl_ms(ttl)), now])?;
                Ok(changed == 1)
            })
            .await?)
    }

    async fn release(&self, partition: u32, owner: &str) -> Result<(), BusError> {
        let owner = owner.to_owned();
        self.0
            .transaction(move |tx| {
                tx.prepare_cached("DELETE FROM outbox_lease WHERE part = ?1 AND owner = ?2")?
                    .execute(params![partition, owner])?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn fetch(&self, _partition: u32, limit: usize) -> Result<Vec<(i64, String)>, BusError> {
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

    async fn delete(&self, _partition: u32, seqs: &[i64]) -> Result<(), BusError> {
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

    async fn park(&self, _partition: u32, seq: i64, body: &str, reason: &str) -> Result<(), BusError> {
        let (body, reason) = (body.to_owned(), reason.to_owned());
        let event_id = event_id_of(&body);
        self.0
            .transaction(move |tx| {
                let removed = tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?.execute(params![seq])?;
                if removed == 1 {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO outbox_dead (seq, event_id, body, reason, parked_at)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![seq, event_id, body, reason, now_ms()])?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn parked(&self, limit: usize) -> Result<Vec<ParkedEvent>, BusError> {
        Ok(self
            .0
            .read(move |c| {
                let mut select = c.prepare_cached(
                    "SELECT seq, event_id, body, reason, parked_at FROM outbox_dead ORDER BY seq LIMIT ?1",
                )?;
                let rows = select
                    .query_map(params![limit as i64], |row| {
                        Ok(ParkedEvent {
                            seq: row.get(0)?,
                            event_id: row.get(1)?,
                            body: row.get(2)?,
                            reason: row.get(3)?,
                            parked_at_ms: row.get(4)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?)
    }
}

/// Every event waiting in `store`, across its partitions, in the order they were made (by event
/// id, a UUIDv7), taken out of it when `take` (for tests and tools that stand in for the relay).
pub async fn waiting_events(store: &dyn OutboxStore, take: bool) -> Result<Vec<Event>, BusError> {
    let mut events = Vec::new();
    for partition in 0..store.partitions() {
        loop {
            let rows = store.fetch(partition, BATCH).await?;
            for (_, body) in &rows {
                events.push(Event::from_json(body).map_err(|e| BusError::Outbox(Box::new(e)))?);
            }
            if !take || rows.is_empty() {
                break;
            }
            let seqs: Vec<i64> = rows.iter().map(|(seq, _)| *seq).collect();
            store.delete(partition, &seqs).await?;
        }
    }
    events.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(events)
}

/// Who holds the lease of `partition` of a SQLite outbox, and until when (for tests and tools).
pub async fn sqlite_lease_holder(db: &Db, partition: u32) -> Result<Option<(String, i64)>, BusError> {
    Ok(db
        .read(move |c| {
            Ok(c.prepare_cached("SELECT owner, until_ms FROM outbox_lease WHERE part = ?1")?
                .query_row(params![partition], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?)
        })
        .await?)
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

/// The pause before the next try after `failures` drains in a row failed: doubling from `interval`,
/// at most [`MAX_BACKOFF`].
pub fn retry_after(interval: Duration, failures: u32) -> Duration {
    interval.saturating_mul(1 << failures.min(16)).min(MAX_BACKOFF)
}

/// Moves an outbox onto the bus.
#[derive(Clone)]
pub struct OutboxRelay {
    store: Arc<dyn OutboxStore>,
    bus: Arc<dyn EventBus>,
    signal: OutboxSignal,
    interval: Duration,
    owner: String,
}

impl OutboxRelay {
    /// A relay from `store` to `bus` that looks every `interval` and whenever its signal is woken
    /// (a signal of its own unless [`woken_by`](Self::woken_by) names the stores').
    pub fn new(store: Arc<dyn OutboxStore>, bus: Arc<dyn EventBus>, interval: Duration) -> Self {
        let owner = uuid::Uuid::new_v4().simple().to_string();
        Self { store, bus, signal: OutboxSignal::default(), interval, owner }
    }

    /// The relay, woken by `signal` (the one the stores writing its outbox hold).
    pub fn woken_by(mut self, signal: OutboxSignal) -> Self {
        self.signal = signal;
        self
    }

    /// The name this relay holds leases under.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Publishes everything waiting in the partitions no other relay holds; the number published.
    /// The partitions are drained side by side (a pass costs one round trip when they are idle, and
    /// an event waits for its own partition only). A failing partition does not stop the others;
    /// the first failure is returned.
    pub async fn drain(&self) -> Result<usize, BusError> {
        let partitions = self.store.partitions().max(1);
        let drained = futures::future::join_all((0..partitions).map(|p| self.drain_partition(p))).await;
        let mut total = 0;
        let mut failure = None;
        for outcome in drained {
            match outcome {
                Ok(published) => total += published,
                Err(error) => {
                    failure.get_or_insert(error);
                }
            }
        }
        failure.map_or(Ok(total), Err)
    }

    async fn drain_partition(&self, partition: u32) -> Result<usize, BusError> {
        // An idle partition costs one read: the lease is taken only when there is work.
        if !self.store.waiting(partition).await? {
            return Ok(0);
        }
        if !self.store.lease(partition, &self.owner, LEASE_TTL).await? {
            metrics::counter!("outbox_lease_busy_total").increment(1);
            return Ok(0);
        }
        let drained = self.drain_leased(partition).await;
        if let Err(error) = self.store.release(partition, &self.owner).await {
            tracing::warn!(partition, error = %crate::error::cause_chain(&error), "could not give up an outbox lease; it lapses");
        }
        drained
    }

    async fn drain_leased(&self, partition: u32) -> Result<usize, BusError> {
        let mut leased_at = Instant::now();
        let mut total = 0;
        loop {
            if leased_at.elapsed() > LEASE_TTL / 3 {
                if !self.store.lease(partition, &self.owner, LEASE_TTL).await? {
                    return Ok(total);
                }
                leased_at = Instant::now();
            }
            // Fetched after the lease was taken: what a relay that held it before published is gone.
            let rows = self.store.fetch(partition, BATCH).await?;
            if rows.is_empty() {
                return Ok(total);
            }
            let mut events = Vec::with_capacity(rows.len());
            let mut kept = Vec::with_capacity(rows.len());
            for (seq, body) in &rows {
                match Event::from_json(body) {
                    Ok(event) => {
                        events.push(event);
                        kept.push((*seq, body.as_str()));
                    }
                    Err(error) => {
                        // Only our own code writes the outbox; a bad row is a bug, kept out of the way.
                        self.park(partition, *seq, body, &format!("not an event: {error}"), None).await?;
                    }
                }
            }
            let mut published = Vec::with_capacity(events.len());
            let mut failure = None;
            let mut at = 0;
            while at < events.len() {
                let (sent, outcome) = self.bus.publish_batch(&events[at..]).await;
                let sent = sent.min(events.len() - at);
                published.extend(kept[at..at + sent].iter().map(|(seq, _)| *seq));
                // Counted when published, by type (a failed delete republishes later; the inbox
                // absorbs that): what shows the tasks of a service publish each event once.
                for event in &events[at..at + sent] {
                    metrics::counter!("outbox_published_total", "kind" => event.kind.clone()).increment(1);
                }
                if crate::telemetry::emf::enabled() {
                    // Business metrics count what was published (at least once, as the events go).
                    events[at..at + sent].iter().filter_map(crate::telemetry::emf::of_event).for_each(|set| set.emit());
                }
                at += sent;
                match outcome {
                    Ok(()) => break,
                    Err(BusError::Refused(reason)) if at < events.len() => {
                        let (seq, body) = kept[at];
                        self.park(partition, seq, body, &reason, Some(&events[at])).await?;
                        at += 1;
                    }
                    Err(error) => {
                        failure = Some(error);
                        break;
                    }
                }
            }
            self.store.delete(partition, &published).await?;
            total += published.len();
            if let Some(error) = failure {
                return Err(error);
            }
        }
    }

    async fn park(
        &self,
        partition: u32,
        seq: i64,
        body: &str,
        reason: &str,
        event: Option<&Event>,
    ) -> Result<(), BusError> {
        tracing::error!(
            outbox.seq = seq,
            event.id = event.map(|e| e.id.as_str()),
            event.kind = event.map(|e| e.kind.as_str()),
            reason,
            "parking an outbox event the bus refuses for good"
        );
        self.store.park(partition, seq, body, reason).await?;
        metrics::counter!("outbox_parked_total").increment(1);
        if crate::telemetry::emf::enabled() {
            let service = event.and_then(|e| e.source.strip_prefix("/services/")).unwrap_or("unknown");
            crate::telemetry::emf::business(service, "OutboxParked", 1.0, crate::telemetry::emf::Unit::Count).emit();
        }
        Ok(())
    }

    /// Runs until `shutdown`, then publishes what is left once more. While the bus fails it waits
    /// longer after each failure ([`retry_after`]), deaf to wakes; while its looks find nothing it
    /// looks less often ([`idle_pause`]), and a wake or a look that finds work brings it back.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        let mut idle = 0u32;
        loop {
            match self.drain().await {
                Ok(published) => {
                    failures = 0;
                    idle = if published == 0 { idle.saturating_add(1) } else { 0 };
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(failures, error = %crate::error::cause_chain(&error), "outbox relay could not publish; will retry");
                }
            }
            let pause = if failures == 0 {
                idle_pause(self.interval, idle.saturating_sub(1))
            } else {
                retry_after(self.interval, failures)
            };
            let woken = async {
                if failures == 0 {
                    self.signal.woken().await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = woken => idle = 0,
                () = tokio::time::sleep(pause) => {}
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

    #[test]
    fn an_idle_relay_looks_less_and_less_often_up_to_its_cap() {
        let second = Duration::from_millis(500);
        let pauses: Vec<u128> = (0..6).map(|idle| idle_pause(second, idle).as_millis()).collect();
        assert_eq!(pauses, [500, 1000, 2000, 4000, 4000, 4000]);
    }

    /// A bus that fails its first `failing` publishes as a temporary outage would, noting when each
    /// try came.
    struct FlakyBus {
        failing: usize,
        tries: std::sync::Mutex<Vec<Instant>>,
        published: std::sync::Mutex<Vec<String>>,
    }

    #[async_trait]
    impl EventBus for FlakyBus {
        async fn ensure_queue(&self, _queue: &str) -> Result<(), BusError> {
            Ok(())
        }
        async fn publish(&self, event: &Event) -> Result<(), BusError> {
            let mut tries = self.tries.lock().unwrap();
            tries.push(Instant::now());
            if tries.len() <= self.failing {
                return Err(BusError::Outbox("the queue is not answering".into()));
            }
            self.published.lock().unwrap().push(event.id.clone());
            Ok(())
        }
        async fn send(&self, _queue: &str, event: &Event) -> Result<(), BusError> {
            self.publish(event).await
        }
        async fn receive(&self, _q: &str, _max: usize, _v: Duration) -> Result<Vec<crate::events::Delivery>, BusError> {
            Ok(Vec::new())
        }
        async fn ack(&self, _delivery: &crate::events::Delivery) -> Result<(), BusError> {
            Ok(())
        }
        async fn nack(&self, _delivery: &crate::events::Delivery, _delay: Duration) -> Result<(), BusError> {
            Ok(())
        }
        async fn dead_letter(&self, _delivery: &crate::events::Delivery, _reason: &str) -> Result<(), BusError> {
            Ok(())
        }
        async fn dead_letters(
            &self,
            _queue: &str,
            _limit: usize,
        ) -> Result<Vec<super::super::bus::DeadLetter>, BusError> {
            Ok(Vec::new())
        }
        async fn redrive(&self, _queue: &str) -> Result<usize, BusError> {
            Ok(0)
        }
        fn ordered(&self) -> bool {
            true
        }
        async fn ping(&self) -> Result<(), BusError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_failing_bus_is_retried_less_and_less_often_deaf_to_wakes_then_each_event_goes_once() {
        let interval = Duration::from_millis(20);
        let event = Event::new("t.happened.v1", "svc", json!({"i": 1}));
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("svc.db")).unwrap();
        db.migrate(PLATFORM_MIGRATIONS).unwrap();
        let written = event.clone();
        db.transaction(move |tx| outbox_push(tx, &written)).await.unwrap();
        let store = Arc::new(SqliteOutbox(db));
        let bus = Arc::new(FlakyBus { failing: 4, tries: Default::default(), published: Default::default() });
        let signal = OutboxSignal::default();
        let relay = OutboxRelay::new(store.clone(), bus.clone(), interval).woken_by(signal.clone());
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(relay.run(shutdown.clone()));
        // Wakes while the bus fails (new writes) must not bring the next try forward.
        let deadline = Instant::now() + Duration::from_secs(10);
        while bus.published.lock().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "the relay never got through");
            signal.wake();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        shutdown.cancel();
        running.await.unwrap();
        let tries = bus.tries.lock().unwrap().clone();
        assert_eq!(tries.len(), 5, "four failures, then the one publish");
        let gaps: Vec<Duration> = tries.windows(2).map(|pair| pair[1] - pair[0]).collect();
        for (failures, gap) in (1..).zip(&gaps) {
            assert!(*gap >= retry_after(interval, failures), "try after {failures} failures came after {gap:?}");
        }
        assert_eq!(*bus.published.lock().unwrap(), [event.id]);
        assert!(waiting_events(store.as_ref(), false).await.unwrap().is_empty(), "the published event left the outbox");
    }

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
