//! The `OutboxStore` suite and the relay over it, for the SQLite, PostgreSQL and DynamoDB (moto)
//! outboxes: a refused event is parked and never blocks the ones behind it, a partition's lease
//! is held by one relay at a time, and two relays on one outbox publish each event once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use platform::dynamodb::{self, Committed, DynamoOutbox, Transaction};
use platform::events::bus::MAX_MESSAGE_BYTES;
use platform::events::outbox::{OutboxRelay, OutboxStore, SqliteOutbox, waiting_events};
use platform::events::sqlite::SqliteQueue;
use platform::events::{Event, EventBus, Routing};
use platform::sqlite::Db;
use platform::testing::PgSchema;
use serde_json::json;
use tempfile::TempDir;

use crate::unique;

/// One outbox under test, with a way to write events into it as its service's transactions do.
struct OutboxFixture {
    store: Arc<dyn OutboxStore>,
    writer: Box<dyn Writer>,
    dir: TempDir,
    schema: Option<PgSchema>,
}

#[async_trait]
trait Writer: Send + Sync {
    /// Commits `events` in one transaction.
    async fn write(&self, events: Vec<Event>);
}

struct SqliteWriter(Db);

#[async_trait]
impl Writer for SqliteWriter {
    async fn write(&self, events: Vec<Event>) {
        self.0
            .transaction(move |tx| {
                for event in &events {
                    platform::sqlite::outbox_push(tx, event)?;
                }
                Ok(())
            })
            .await
            .unwrap();
    }
}

struct PgWriter(sqlx::PgPool);

#[async_trait]
impl Writer for PgWriter {
    async fn write(&self, events: Vec<Event>) {
        let mut tx = self.0.begin().await.unwrap();
        for event in &events {
            platform::postgres::outbox_push(&mut tx, event).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
}

struct DynamoWriter(aws_sdk_dynamodb::Client, DynamoOutbox);

#[async_trait]
impl Writer for DynamoWriter {
    async fn write(&self, events: Vec<Event>) {
        for chunk in events.chunks(dynamodb::MAX_TRANSACTION_ITEMS) {
            let mut tx = Transaction::default();
            for event in chunk {
                tx.push((), self.1.put(event).unwrap());
            }
            assert!(matches!(dynamodb::transact(&self.0, tx).await.unwrap(), Committed::Yes));
        }
    }
}

async fn open_sqlite() -> Option<OutboxFixture> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("svc.db")).unwrap();
    db.migrate(platform::sqlite::PLATFORM_MIGRATIONS).unwrap();
    Some(OutboxFixture {
        store: Arc::new(SqliteOutbox(db.clone())),
        writer: Box::new(SqliteWriter(db)),
        dir,
        schema: None,
    })
}

async fn open_postgres() -> Option<OutboxFixture> {
    let schema = PgSchema::create().await?;
    platform::postgres::migrate(&schema.pool, platform::postgres::PLATFORM_MIGRATIONS).await.unwrap();
    let pool = schema.pool.clone();
    Some(OutboxFixture {
        store: Arc::new(platform::postgres::PgOutbox(pool.clone())),
        writer: Box::new(PgWriter(pool)),
        dir: tempfile::tempdir().unwrap(),
        schema: Some(schema),
    })
}

async fn open_dynamodb() -> Option<OutboxFixture> {
    let client = platform::testing::dynamodb_client()?;
    let table = unique("outbox-");
    dynamodb::create_tables(&client, &[dynamodb::outbox_table(&table)]).await.unwrap();
    let outbox = DynamoOutbox::new(client.clone(), table, "svc");
    Some(OutboxFixture {
        store: Arc::new(outbox.clone()),
        writer: Box::new(DynamoWriter(client, outbox)),
        dir: tempfile::tempdir().unwrap(),
        schema: None,
    })
}

impl OutboxFixture {
    /// A fresh embedded queue every event type goes to (queue `q`).
    fn bus(&self) -> Arc<SqliteQueue> {
        let path = self.dir.path().join(format!("{}.db", unique("events-")));
        Arc::new(SqliteQueue::open(path, Routing::new().subscribe("q", ["t.*"]), Duration::ZERO).unwrap())
    }

    fn relay(&self, bus: Arc<dyn EventBus>) -> OutboxRelay {
        OutboxRelay::new(self.store.clone(), bus, Duration::from_secs(60))
    }

    async fn done(self) {
        if let Some(schema) = self.schema {
            schema.drop().await;
        }
    }
}

macro_rules! outbox_suite {
    ($adapter:ident, $fixture:ident) => {
        mod $adapter {
            use super::*;

            #[tokio::test]
            async fn a_refused_event_is_parked_with_its_reason_and_the_events_behind_it_go_out() {
                let Some(fx) = $fixture().await else { return };
                super::a_refused_event_is_parked_with_its_reason_and_the_events_behind_it_go_out(&fx).await;
                fx.done().await;
            }

            #[tokio::test]
            async fn a_partitions_lease_is_held_by_one_relay_until_released_or_lapsed() {
                let Some(fx) = $fixture().await else { return };
                super::a_partitions_lease_is_held_by_one_relay_until_released_or_lapsed(&fx).await;
                fx.done().await;
            }

            #[tokio::test]
            async fn two_relays_on_one_outbox_publish_each_event_once() {
                let Some(fx) = $fixture().await else { return };
                super::two_relays_on_one_outbox_publish_each_event_once(&fx).await;
                fx.done().await;
            }

            #[tokio::test]
            async fn a_partition_held_by_another_relay_waits_for_it() {
                let Some(fx) = $fixture().await else { return };
                super::a_partition_held_by_another_relay_waits_for_it(&fx).await;
                fx.done().await;
            }
        }
    };
}

outbox_suite!(sqlite, open_sqlite);
outbox_suite!(postgres, open_postgres);
outbox_suite!(dynamo, open_dynamodb);

fn event(n: usize) -> Event {
    Event::new("t.happened.v1", "svc", json!({ "n": n })).with_subject(format!("agg-{n}"))
}

async fn received_ids(bus: &SqliteQueue) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let batch = bus.receive("q", 100, Duration::from_secs(60)).await.unwrap();
        if batch.is_empty() {
            return ids;
        }
        ids.extend(batch.iter().map(|d| d.event().unwrap().id));
    }
}

async fn a_refused_event_is_parked_with_its_reason_and_the_events_behind_it_go_out(fx: &OutboxFixture) {
    let first = event(1);
    // What a registration with such an address wrote before the API refused it.
    let odd = Event::new("t.happened.v1", "svc", json!({ "email": "a\u{FFFE}@example.com" })).with_subject("agg-1");
    let large =
        Event::new("t.happened.v1", "svc", json!({ "blob": "x".repeat(MAX_MESSAGE_BYTES) })).with_subject("agg-1");
    let last = event(1);
    fx.writer.write(vec![first.clone(), odd.clone()]).await;
    fx.writer.write(vec![large.clone(), last.clone()]).await;

    let bus = fx.bus();
    let relay = fx.relay(bus.clone());
    assert_eq!(relay.drain().await.unwrap(), 2, "the two good events are published");
    assert_eq!(relay.drain().await.unwrap(), 0, "and nothing is left to block the outbox");
    assert!(waiting_events(fx.store.as_ref(), false).await.unwrap().is_empty());
    assert_eq!(received_ids(&bus).await, [first.id, last.id]);

    let parked = fx.store.parked(10).await.unwrap();
    let by_id: BTreeMap<Option<String>, String> =
        parked.iter().map(|p| (p.event_id.clone(), p.reason.clone())).collect();
    assert_eq!(by_id.len(), 2, "{parked:?}");
    assert!(by_id[&Some(odd.id.clone())].contains("U+FFFE"), "{by_id:?}");
    assert!(by_id[&Some(large.id.clone())].contains("over the queue's limit"), "{by_id:?}");
    let kept = parked.iter().find(|p| p.event_id.as_deref() == Some(odd.id.as_str())).unwrap();
    assert_eq!(Event::from_json(&kept.body).unwrap(), odd, "the parked event is kept whole");
    assert!(kept.parked_at_ms > 0);
}

async fn a_partitions_lease_is_held_by_one_relay_until_released_or_lapsed(fx: &OutboxFixture) {
    let store = fx.store.as_ref();
    let ttl = Duration::from_secs(30);
    assert!(store.lease(0, "a", ttl).await.unwrap(), "a free partition is taken");
    assert!(!store.lease(0, "b", ttl).await.unwrap(), "another relay does not take it");
    assert!(store.lease(0, "a", ttl).await.unwrap(), "its holder renews it");
    store.release(0, "b").await.unwrap();
    assert!(!store.lease(0, "b", ttl).await.unwrap(), "a relay that does not hold it cannot give it up");
    store.release(0, "a").await.unwrap();
    assert!(store.lease(0, "b", ttl).await.unwrap(), "a released lease is free");
    store.release(0, "b").await.unwrap();

    let last = store.partitions() - 1;
    assert!(store.lease(last, "c", Duration::from_millis(1)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(store.lease(last, "d", ttl).await.unwrap(), "a lapsed lease is taken over");
    assert!(!store.lease(last, "c", ttl).await.unwrap(), "and its old holder has lost it");
}

async fn two_relays_on_one_outbox_publish_each_event_once(fx: &OutboxFixture) {
    let events: Vec<Event> = (0..120).map(event).collect();
    for chunk in events.chunks(40) {
        fx.writer.write(chunk.to_vec()).await;
    }
    if fx.store.partitions() > 1 {
        // The events spread over the partitions by subject.
        let mut used = 0;
        for partition in 0..fx.store.partitions() {
            used += usize::from(!fx.store.fetch(partition, 1).await.unwrap().is_empty());
        }
        assert!(used > fx.store.partitions() as usize / 2, "{used} partitions hold events");
    }
    let bus = fx.bus();
    let (a, b) = (fx.relay(bus.clone()), fx.relay(bus.clone()));
    let (sent_a, sent_b) = tokio::join!(a.drain(), b.drain());
    let (sent_a, sent_b) = (sent_a.unwrap(), sent_b.unwrap());
    // Whatever one skipped because the other held it, a later look finds gone or publishes.
    let again = a.drain().await.unwrap() + b.drain().await.unwrap();
    assert_eq!(sent_a + sent_b + again, events.len(), "{sent_a} + {sent_b} + {again}");
    let mut received = received_ids(&bus).await;
    assert_eq!(received.len(), events.len(), "each event published once");
    received.sort();
    let mut expected: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    expected.sort();
    assert_eq!(received, expected);
}

async fn a_partition_held_by_another_relay_waits_for_it(fx: &OutboxFixture) {
    fx.writer.write(vec![event(7)]).await;
    let store = fx.store.as_ref();
    for partition in 0..store.partitions() {
        assert!(store.lease(partition, "elsewhere", Duration::from_secs(30)).await.unwrap());
    }
    let bus = fx.bus();
    let relay = fx.relay(bus.clone());
    assert_eq!(relay.drain().await.unwrap(), 0, "every partition is another relay's");
    assert_eq!(waiting_events(store, false).await.unwrap().len(), 1);
    for partition in 0..store.partitions() {
        store.release(partition, "elsewhere").await.unwrap();
    }
    assert_eq!(relay.drain().await.unwrap(), 1, "released, it is this relay's to drain");
}
