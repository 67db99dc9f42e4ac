//! PostgreSQL data access: the migration runner, the outbox (through the relay) and the inbox, each
//! test in a fresh schema of the test database.

use std::sync::Arc;
use std::time::Duration;

use platform::events::outbox::OutboxRelay;
use platform::events::sqlite::SqliteQueue;
use platform::events::{Event, EventBus, Routing};
use platform::postgres::{PLATFORM_MIGRATIONS, PgOutbox, inbox_claim, migrate, outbox_push};
use platform::testing::PgSchema;
use serde_json::json;

async fn tables(schema: &PgSchema) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name",
    )
    .bind(schema.name())
    .fetch_all(schema.admin())
    .await
    .unwrap()
}

#[tokio::test]
async fn migrate_applies_each_migration_once_into_the_connections_schema() {
    let Some(schema) = PgSchema::create().await else { return };
    assert_eq!(migrate(&schema.pool, PLATFORM_MIGRATIONS).await.unwrap(), PLATFORM_MIGRATIONS.len());
    assert_eq!(migrate(&schema.pool, PLATFORM_MIGRATIONS).await.unwrap(), 0, "a second run applies nothing");
    assert_eq!(tables(&schema).await, ["_migrations", "inbox", "outbox", "outbox_dead", "outbox_lease"]);
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM _migrations").fetch_one(&schema.pool).await.unwrap();
    assert_eq!(recorded, PLATFORM_MIGRATIONS.len() as i64);
    schema.drop().await;
}

#[tokio::test]
async fn concurrent_migrations_apply_each_migration_once() {
    let Some(schema) = PgSchema::create().await else { return };
    let runs = (0..4).map(|_| {
        let pool = schema.pool.clone();
        tokio::spawn(async move { migrate(&pool, PLATFORM_MIGRATIONS).await })
    });
    let mut applied = 0;
    for run in futures::future::join_all(runs).await {
        applied += run.unwrap().expect("a migration run beside others succeeds");
    }
    assert_eq!(applied, PLATFORM_MIGRATIONS.len());
    assert_eq!(tables(&schema).await, ["_migrations", "inbox", "outbox", "outbox_dead", "outbox_lease"]);
    schema.drop().await;
}

#[tokio::test]
async fn the_outbox_relay_publishes_committed_events_in_order_and_never_rolled_back_ones() {
    let Some(schema) = PgSchema::create().await else { return };
    migrate(&schema.pool, PLATFORM_MIGRATIONS).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(
        SqliteQueue::open(dir.path().join("events.db"), Routing::new().subscribe("q", ["t.*"]), Duration::ZERO)
            .unwrap(),
    );

    // Two aggregates: each one's events keep their order (they share a partition); the partitions
    // drain side by side.
    let committed: Vec<Event> = (0..6)
        .map(|i| Event::new("t.happened.v1", "svc", json!({ "i": i })).with_subject(format!("agg-{}", i % 2)))
        .collect();
    let mut tx = schema.pool.begin().await.unwrap();
    for event in &committed[..3] {
        outbox_push(&mut tx, event).await.unwrap();
    }
    tx.commit().await.unwrap();
    let mut tx = schema.pool.begin().await.unwrap();
    outbox_push(&mut tx, &Event::new("t.happened.v1", "svc", json!({ "i": "rolled back" }))).await.unwrap();
    tx.rollback().await.unwrap();
    let mut tx = schema.pool.begin().await.unwrap();
    for event in &committed[3..] {
        outbox_push(&mut tx, event).await.unwrap();
    }
    tx.commit().await.unwrap();

    let relay = OutboxRelay::new(Arc::new(PgOutbox(schema.pool.clone())), bus.clone(), Duration::from_secs(60));
    assert_eq!(relay.drain().await.unwrap(), 6);
    assert_eq!(relay.drain().await.unwrap(), 0, "published events leave the outbox");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&schema.pool).await.unwrap();
    assert_eq!(left, 0);

    let received = bus.receive("q", 10, Duration::from_secs(30)).await.unwrap();
    let received: Vec<Event> = received.iter().map(|d| d.event().unwrap()).collect();
    assert_eq!(received.len(), committed.len(), "{received:?}");
    for subject in ["agg-0", "agg-1"] {
        let of = |events: &[Event]| -> Vec<Event> {
            events.iter().filter(|e| e.subject.as_deref() == Some(subject)).cloned().collect()
        };
        assert_eq!(of(&received), of(&committed), "{subject}'s events in order");
    }
    schema.drop().await;
}

#[tokio::test]
async fn an_inbox_claim_succeeds_once_per_consumer_and_event() {
    let Some(schema) = PgSchema::create().await else { return };
    migrate(&schema.pool, PLATFORM_MIGRATIONS).await.unwrap();
    let claim = |consumer: &'static str, event_id: &'static str, commit: bool| {
        let pool = schema.pool.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            let claimed = inbox_claim(&mut tx, consumer, event_id).await.unwrap();
            if commit {
                tx.commit().await.unwrap();
            } else {
                tx.rollback().await.unwrap();
            }
            claimed
        }
    };
    assert!(claim("indexer", "e-1", false).await);
    assert!(claim("indexer", "e-1", true).await, "a claim rolled back with its transaction never happened");
    assert!(!claim("indexer", "e-1", true).await, "the second delivery is a duplicate");
    assert!(!claim("indexer", "e-1", false).await);
    assert!(claim("notifier", "e-1", true).await, "each consumer claims for itself");
    assert!(claim("indexer", "e-2", true).await);
    schema.drop().await;
}
