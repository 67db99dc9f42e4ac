//! The saga's commands as the inventory receives them: through its queue on the embedded bus, with
//! the consumer loop, redeliveries and all; and the expiry sweeper.

use std::sync::Arc;
use std::time::Duration;

use platform::contracts::inventory::{Commit, CommitFailed, Line, Release, Reserve, Reserved};
use platform::events::outbox::OutboxRelay;
use platform::events::sqlite::SqliteQueue;
use platform::events::{Consumer, Event, EventBus, EventHandler, HandlerError, Routing};
use serde_json::json;
use shop_inventory::app::sweep_once;
use shop_inventory::consumers::{Commands, QUEUE};
use shop_inventory::domain::ReservationStatus;

use crate::conformance::{Stores, sqlite_stores};

/// The inventory's store, its command handler and consumer, and a queue (`answers`) that receives
/// every answer the inventory publishes.
struct Saga {
    stores: Stores,
    bus: Arc<SqliteQueue>,
    commands: Arc<Commands>,
    consumer: Consumer,
    relay: OutboxRelay,
    _dir: tempfile::TempDir,
}

impl Saga {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let routing = Routing::of(shop_inventory::consumers::SUBSCRIPTIONS).subscribe("answers", ["inventory.*"]);
        let bus = Arc::new(SqliteQueue::open(dir.path().join("events.db"), routing, Duration::ZERO).unwrap());
        let stores = sqlite_stores();
        let commands = Arc::new(Commands::new(stores.store.clone(), bus.clone(), Duration::from_secs(900)));
        let consumer = Consumer::new(bus.clone(), QUEUE, commands.clone());
        let relay = OutboxRelay::new(stores.outbox.clone(), bus.clone(), Duration::from_secs(60));
        Self { stores, bus, commands, consumer, relay, _dir: dir }
    }

    /// Publishes the outbox, then takes every answer (acknowledged).
    async fn answers(&self) -> Vec<Event> {
        self.relay.drain().await.unwrap();
        let deliveries = self.bus.receive("answers", 1000, Duration::from_secs(30)).await.unwrap();
        let mut events = Vec::new();
        for delivery in &deliveries {
            events.push(delivery.event().unwrap());
            self.bus.ack(delivery).await.unwrap();
        }
        // The queue also hears the commands themselves.
        events.retain(|e| ![Reserve::KIND, Commit::KIND, Release::KIND].contains(&e.kind.as_str()));
        events
    }
}

fn reserve(order_id: &str, lines: &[(&str, i64)]) -> Event {
    let lines = lines.iter().map(|(sku, quantity)| Line { sku: (*sku).into(), quantity: *quantity }).collect();
    Event::new(Reserve::KIND, "order", Reserve { order_id: order_id.into(), lines, ttl_seconds: None })
}

#[tokio::test]
async fn a_command_delivered_twice_is_applied_once() {
    let saga = Saga::new();
    saga.stores.store.set("SKU-A", 5, None, "count", "a").await.unwrap();
    saga.answers().await;
    let command = reserve("o1", &[("SKU-A", 2)]);
    // The same message twice on the queue (an SQS redelivery), and once more by hand.
    saga.bus.publish(&command).await.unwrap();
    saga.bus.send(QUEUE, &command).await.unwrap();
    while saga.consumer.poll_once().await.unwrap() > 0 {}
    saga.commands.handle(&command).await.unwrap();

    let stock = saga.stores.store.get("SKU-A").await.unwrap().unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (5, 2), "held once");
    let answers = saga.answers().await;
    let reserved: Vec<&Event> = answers.iter().filter(|e| e.kind == Reserved::KIND).collect();
    assert_eq!(reserved.len(), 1, "one answer: {answers:?}");
    assert_eq!(reserved[0].correlationid.as_deref(), Some(command.id.as_str()));
    let held: Reserved = reserved[0].data_as().unwrap();
    let ttl = held.expires_at - chrono::Utc::now();
    assert!(ttl > chrono::Duration::seconds(890) && ttl <= chrono::Duration::seconds(900), "{ttl}");

    let commit = Event::new(Commit::KIND, "order", Commit { order_id: "o1".into() });
    saga.commands.handle(&commit).await.unwrap();
    saga.commands.handle(&commit).await.unwrap();
    let stock = saga.stores.store.get("SKU-A").await.unwrap().unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (3, 0), "committed once");
    // Each commit is answered (the second again, so a saga that asked again moves on).
    let answers = saga.answers().await;
    assert_eq!(answers.iter().filter(|e| e.kind == "inventory.committed.v1").count(), 2);
}

#[tokio::test]
async fn a_commit_that_finds_nothing_held_says_why() {
    let saga = Saga::new();
    saga.stores.store.set("SKU-A", 5, None, "count", "a").await.unwrap();
    let reasons = |answers: Vec<Event>| -> Vec<CommitFailed> {
        answers.iter().filter(|e| e.kind == CommitFailed::KIND).map(|e| e.data_as().unwrap()).collect()
    };
    saga.answers().await;

    saga.commands.handle(&Event::new(Commit::KIND, "order", Commit { order_id: "never".into() })).await.unwrap();
    assert_eq!(
        reasons(saga.answers().await),
        vec![CommitFailed { order_id: "never".into(), reason: "unknown".into() }]
    );

    saga.commands.handle(&reserve("o-short", &[("SKU-A", 9)])).await.unwrap();
    saga.commands.handle(&Event::new(Commit::KIND, "order", Commit { order_id: "o-short".into() })).await.unwrap();
    assert_eq!(reasons(saga.answers().await)[0].reason, "rejected");

    let ttl = Event::new(
        Reserve::KIND,
        "order",
        json!({"order_id": "o-brief", "lines": [{"sku": "SKU-A", "quantity": 1}], "ttl_seconds": 1}),
    );
    saga.commands.handle(&ttl).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(sweep_once(saga.stores.store.as_ref()).await.unwrap(), 1);
    assert_eq!(sweep_once(saga.stores.store.as_ref()).await.unwrap(), 0, "released once");
    saga.commands.handle(&Event::new(Commit::KIND, "order", Commit { order_id: "o-brief".into() })).await.unwrap();
    assert_eq!(reasons(saga.answers().await)[0].reason, "expired");
    let stock = saga.stores.store.get("SKU-A").await.unwrap().unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (5, 0));

    let release = Event::new(Release::KIND, "order", Release { order_id: "o-late".into(), reason: "timed_out".into() });
    saga.commands.handle(&release).await.unwrap();
    saga.commands.handle(&reserve("o-late", &[("SKU-A", 1)])).await.unwrap();
    let late = saga.stores.store.reservation("o-late").await.unwrap().unwrap();
    assert_eq!(late.status, ReservationStatus::Released, "a reserve after its release holds nothing");
}

#[tokio::test]
async fn malformed_commands_are_dead_lettered_not_retried() {
    let saga = Saga::new();
    let bad = [
        Event::new(Reserve::KIND, "order", json!({"order_id": "o1"})),
        Event::new(Reserve::KIND, "order", json!({"order_id": "o1", "lines": [{"sku": "A", "quantity": 0}]})),
        Event::new(Reserve::KIND, "order", json!({"order_id": "o1", "lines": [], "ttl_seconds": 5})),
        Event::new(Reserve::KIND, "order", json!({"order_id": "", "lines": [{"sku": "A", "quantity": 1}]})),
        Event::new(
            Reserve::KIND,
            "order",
            json!({"order_id": "o1", "lines": [{"sku": "A", "quantity": 1}], "ttl_seconds": 0}),
        ),
        Event::new(Release::KIND, "order", json!({"order_id": "o1", "reason": ""})),
        Event::new(Commit::KIND, "order", json!({"order_id": "o1", "extra": true})),
        Event::new("inventory.teleport.v1", "order", json!({})),
    ];
    for event in &bad {
        let outcome = saga.commands.handle(event).await;
        assert!(matches!(outcome, Err(HandlerError::Reject(_))), "{event:?} → {outcome:?}");
    }
    for event in &bad {
        saga.bus.send(QUEUE, event).await.unwrap();
    }
    while saga.consumer.poll_once().await.unwrap() > 0 {}
    assert_eq!(saga.bus.dead_letters(QUEUE, 100).await.unwrap().len(), bad.len());
    assert!(saga.stores.store.reservation("o1").await.unwrap().is_none(), "nothing was applied");
}

#[tokio::test]
async fn a_command_is_logged_with_its_order_and_its_answer_carries_the_checkouts_trace_on() {
    let logs = platform::testing::capture_logs("info");
    let saga = Saga::new();
    saga.stores.store.set("SKU-A", 5, None, "count", "a").await.unwrap();
    saga.answers().await;
    let checkout = platform::telemetry::trace::TraceContext::new_root();
    let command = reserve("o-traced", &[("SKU-A", 1)]).with_trace(&checkout);
    saga.bus.send(QUEUE, &command).await.unwrap();
    assert_eq!(saga.consumer.poll_once().await.unwrap(), 1);

    let lines = logs.with_message("inventory command applied");
    assert_eq!(lines.len(), 1, "{:#?}", logs.lines());
    let field = |name| platform::testing::log_field(&lines[0], name).and_then(|v| v.as_str()).unwrap_or_default();
    assert_eq!(field("order.id"), "o-traced");
    assert_eq!(field("event.id"), command.id);
    assert_eq!(field("trace_id"), checkout.trace_id);
    // The answer (and the stock change it made) goes on in the same trace.
    let answers = saga.answers().await;
    assert!(answers.iter().any(|e| e.kind == Reserved::KIND), "{answers:?}");
    for answer in &answers {
        assert_eq!(answer.traceparent, command.traceparent, "{answer:?}");
        assert_eq!(answer.correlationid.as_deref(), Some(checkout.request_id.as_str()), "{answer:?}");
    }
}
