//! The `EventBus` suite, for the embedded SQLite queue and for SQS (on the moto server), with the
//! consumer loop over each.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use platform::events::bus::{BusError, Delivery, EventBus, MAX_RECEIVES};
use platform::events::sqlite::SqliteQueue;
use platform::events::sqs::SqsBus;
use platform::events::{Consumer, Event, EventHandler, HandlerError, Routing};
use serde_json::json;
use tempfile::TempDir;

use crate::{eventually, moto_endpoint, unique};

/// How long a test waits for something that should happen.
const PATIENCE: Duration = Duration::from_secs(10);
/// A visibility timeout no test outlasts: a message received with it stays in flight.
const IN_FLIGHT: Duration = Duration::from_secs(60);
/// Clock granularity between the test's monotonic clock and the bus's (the SQLite queue keeps wall
/// clock milliseconds).
const CLOCK_SLACK: Duration = Duration::from_millis(10);

/// One adapter under test.
struct BusFixture {
    bus: Arc<dyn EventBus>,
    /// A short visibility timeout the adapter honours (SQS counts whole seconds), longer than one
    /// receive's own wait so that a hidden message can be seen to stay hidden.
    visibility: Duration,
    /// Whether a dead letter keeps the reason it was given (SQS has no place for one).
    keeps_reasons: bool,
    /// The folder of the SQLite queue.
    dir: Option<TempDir>,
}

/// The subscriptions of every bus under test.
fn routing() -> Routing {
    Routing::new()
        .subscribe("billing", ["order.*"])
        .subscribe("shipping", ["order.placed.v1"])
        .subscribe("audit", ["payment.*"])
}

async fn open_sqlite_queue() -> Option<BusFixture> {
    let dir = tempfile::tempdir().unwrap();
    let bus = SqliteQueue::open(dir.path().join("events.db"), routing(), Duration::from_millis(200)).unwrap();
    Some(BusFixture { bus: Arc::new(bus), visibility: Duration::from_millis(500), keeps_reasons: true, dir: Some(dir) })
}

async fn open_sqs() -> Option<BusFixture> {
    let endpoint = moto_endpoint()?;
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    // Short polls: the tests poll themselves, and moto's long poll spins while messages are in flight.
    let bus = SqsBus::new(aws_sdk_sqs::Client::new(&sdk), format!("{}-", unique("t-")), routing(), 0);
    Some(BusFixture { bus: Arc::new(bus), visibility: Duration::from_secs(1), keeps_reasons: false, dir: None })
}

macro_rules! bus_suite {
    ($adapter:ident, $fixture:ident $(, $extra:ident)* $(,)?) => {
        mod $adapter {
            use super::*;

            instantiate!($fixture:
                publish_puts_a_copy_on_every_subscribed_queue_and_none_on_the_others,
                send_puts_the_event_on_the_named_queue_alone,
                a_received_message_is_hidden_until_its_visibility_timeout_then_redelivered_with_a_higher_receive_count,
                an_acked_message_never_comes_back,
                a_nacked_message_with_no_delay_is_visible_again_at_once,
                a_nacked_message_with_a_delay_stays_hidden_for_that_delay,
                extend_keeps_messages_being_handled_hidden_past_their_visibility_timeout,
                a_message_received_max_receives_times_goes_to_the_dead_letter_queue_on_the_next_receive,
                dead_letter_moves_a_message_to_the_dead_letter_queue_at_once,
                dead_letters_are_listed_and_left_in_place,
                redrive_moves_dead_letters_back_and_they_are_received_again,
                messages_are_received_in_publication_order_where_the_bus_promises_it,
                a_consumer_acks_an_event_once_its_failing_handler_succeeds,
                a_consumer_dead_letters_a_rejected_event_at_once,
                a_consumer_settles_each_event_of_a_batch_by_its_own_outcome,
                a_published_batch_reaches_every_subscribed_queue_and_acks_settle_each,
                the_bus_answers_a_ping,
                a_message_no_queue_carries_is_refused_for_good_and_the_batch_stops_before_it,
                $($extra),*
            );
        }
    };
}

bus_suite!(
    sqlite_queue,
    open_sqlite_queue,
    an_ack_with_a_stale_receipt_fails,
    a_restart_loses_neither_published_nor_in_flight_messages
);
bus_suite!(sqs, open_sqs, a_dead_letter_whose_delete_failed_leaves_a_copy_that_the_inbox_applies_once);

// ---- helpers ----------------------------------------------------------------------------------

fn event(kind: &str, n: usize) -> Event {
    Event::new(kind, "conformance", json!({ "n": n }))
}

fn event_id(delivery: &Delivery) -> String {
    delivery.event().unwrap().id
}

fn ids(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.id.clone()).collect()
}

async fn ensure(bus: &dyn EventBus, queues: &[&str]) {
    for queue in queues {
        bus.ensure_queue(queue).await.unwrap();
    }
}

/// Sends `count` events to `queue`, in order.
async fn send_events(bus: &dyn EventBus, queue: &str, count: usize) -> Vec<Event> {
    let mut sent = Vec::new();
    for n in 0..count {
        let event = event("order.placed.v1", n);
        bus.send(queue, &event).await.unwrap();
        sent.push(event);
    }
    sent
}

/// Receives from `queue` until `count` messages came, in batches of at most ten; panics after
/// [`PATIENCE`].
async fn receive_n(bus: &dyn EventBus, queue: &str, count: usize, visibility: Duration) -> Vec<Delivery> {
    let deadline = Instant::now() + PATIENCE;
    let mut received = Vec::new();
    while received.len() < count {
        assert!(
            Instant::now() < deadline,
            "received {} of {count} messages from {queue} in {PATIENCE:?}",
            received.len()
        );
        let batch = bus.receive(queue, (count - received.len()).min(10), visibility).await.unwrap();
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        received.extend(batch);
    }
    assert_eq!(received.len(), count, "more messages than asked for");
    for delivery in &received {
        assert_eq!(delivery.queue, queue);
    }
    received
}

/// Receives one message from `queue`, with the instant the receive that got it returned.
async fn receive_one(bus: &dyn EventBus, queue: &str, visibility: Duration) -> (Delivery, Instant) {
    let mut received = receive_n(bus, queue, 1, visibility).await;
    (received.pop().unwrap(), Instant::now())
}

/// Asserts that nothing can be received from `queue` for `during` (and on one receive at least).
async fn assert_nothing_for(bus: &dyn EventBus, queue: &str, during: Duration) {
    let deadline = Instant::now() + during;
    loop {
        let batch = bus.receive(queue, 10, IN_FLIGHT).await.unwrap();
        let bodies: Vec<_> = batch.iter().map(|d| d.body.as_str()).collect();
        assert!(batch.is_empty(), "{queue} should be empty, got {bodies:?}");
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Long enough for a message left in flight with the fixture's visibility timeout to come back.
fn past_visibility(fx: &BusFixture) -> Duration {
    fx.visibility + Duration::from_millis(300)
}

fn assert_stale(result: Result<(), BusError>) {
    assert!(matches!(result, Err(BusError::StaleReceipt(_))), "expected a stale receipt, got {result:?}");
}

// ---- the suite --------------------------------------------------------------------------------

async fn publish_puts_a_copy_on_every_subscribed_queue_and_none_on_the_others(fx: &BusFixture) {
    let bus = fx.bus.as_ref();
    ensure(bus, &["billing", "shipping", "audit"]).await;
    let placed = event("order.placed.v1", 0);
    let cancelled = event("order.cancelled.v1", 1);
    bus.publish(&placed).await.unwrap();
    bus.publish(&cancelled).await.unwrap();
    bus.publish(&event("nobody.listens.v1", 2)).await.unwrap();

    let billing: BTreeSet<String> = receive_n(bus, "billing", 2, IN_FLIGHT).await.iter().map(event_id).collect();
    assert_eq!(billing, BTreeSet::from([placed.id.clone(), cancelled.id.clone()]));
    let (shipping, _) = receive_one(bus, "shipping", IN_FLIGHT).await;
    assert_eq!(shipping.event().unwrap(), placed, "the envelope travels intact");
    assert_eq!(shipping.receive_count, 1);
    for queue in ["billing", "shipping", "audit"] {
        assert_nothing_for(bus, queue, Duration::ZERO).await;
    }
}

async fn send_puts_the_event_on_the_named_queue_alone(fx: &BusFixture) {
    let bus = fx.bus.as_ref();
    ensure(bus, &["billing", "shipping"]).await;
    let sent = send_events(bus, "shipping", 1).await;
    let (delivery, _) = receive_one(bus, "shipping", IN_FLIGHT).await;
    assert_eq!(delivery.event().unwrap(), sent[0]);
    assert_nothing_for(bus, "billing", Duration::ZERO).await;
}

async fn a_received_message_is_hidden_until_its_visibility_timeout_then_redelivered_with_a_higher_receive_count(
    fx: &BusFixture,
) {
    let bus = fx.bus.as_ref();
    ensure(bus, &["work"]).await;
    let sent = send_events(bus, "work", 1).await;
    let mut first = None;
    let mut hidden_from = Instant::now();
    while first.is_none() {
        // The message is hidden from some instant after this one.
        hidden_from = Instant::now();
        first = bus.receive("work", 1, fx.visibility).await.unwrap().pop();
    }
    let first = first.unwrap();
    assert_eq!(first.receive_count, 1);

    let (again, received_at) = receive_one(bus, "work", fx.visibility).await;
    assert!(
        received_at + CLOCK_SLACK >= hidden_from + fx.visibility,
        "redelivered {:?} after the receive, before its visibility timeout of {:?}",
        received_at - hidden_from,
        fx.visibility
    );
    assert_eq!(again.message_id, first.message_id);
    assert_eq!(again.event().unwrap(), sent[0]);
    assert_eq!(again.receive_count, 2);
    assert_ne!(again.receipt, first.receipt, "each receive has its own receipt");
}

async fn an_acked_message_never_comes_back(fx: &BusFixture) {
    let bus = fx.bus.as_ref();
    ensure(bus, &["work"]).await;
    send_events(bus, "work", 1).await;
    let (delivery, _) = receive_one(bus, "work", fx.visibility).await;
    bus.ack(&delivery).await.unwrap();
    assert_nothing_for(bus, "work", past_visibility(fx)).await;
    assert!(bus.dead_letters("work", 10).await.unwrap().is_empty());
}

async fn a_nacked_message_with_no_delay_is_visible_again_at_once(fx: &BusFixture) {
    let bus = fx.bus.as_ref();
    ensure(bus, &["work"]).await;
    let sent = send_events(bus, "work", 1).await;
    let (delivery, _) = receive_one(bus, "work", IN_FLIGHT).await;
    bus.nack(&delivery, Duration::ZERO).await.unwrap();
    // Well before IN_FLIGHT has passed.
    let (again, _) = receive_one(bus, "work", IN_FLIGHT).await;
    assert_eq!(again.message_id, delivery.message_id);
    assert_eq!(again.event().unwrap(), sent[0]);
    assert_eq!(again.receive_count, 2);
}

async fn a_nacked_message_with_a_delay_stays_hidden_for_that_delay(fx: &BusFixture) {
    let bus = fx.bus.as_ref();
    ensure(bus, &["work"]).await;
    send_events(bus, "work", 1).await;
    let (delivery, _) = receive_one(bus, "work", IN_FLIGHT).await;
    let nacked_at = Instant::now();
    bus.nack(&delivery, fx.visibility).await.unwrap();
    let (again, received_at) = receive_one(bus, "work", IN_FLIGHT).await;
    assert!(
        received_at + CLOCK_SLACK >= nacked_at + fx.visibility,
        "redelivered {:?} after a nack delaying it {:?}",
        received_at - nacked_at,
        fx.visibility
    );
    assert_eq!(again.message_id, delivery.message_id);
    assert_eq!(again.receive_count, 2);
}

async fn extend_keeps_messages_being_handled_hidden_past_their_visibility_timeout(fx: &BusFixture) {
    let bus = fx.bus.as_ref();
    ensure(bus, &["work"]).await;
    // More than one SQS batch call's worth.
    let sent = send_events(bus, "work", 12).await;
    let received = receive_n(bus, "work", 12, fx.visibility).await;
    tokio::time::sleep(fx.visibility / 2).await;
    let held: Vec<&Delivery> = received.iter().collect();
    bus.extend(&held, fx.visibility * 3).await.unwrap();
    // Past the visibility timeout they were received with, none has come back.
    assert_nothing_for(bus, "work", fx.visibility).await;
    // Once the extension runs out they are delivered again.
    let again = receive_n(bus, "work", 12, IN_FLIGHT).await;
    let ids: BTreeSet<String> = again.iter().map(event_id).collect();
    assert_eq!(ids, sent.iter().map(|e| e.id.clone()).collect::<BTreeSet<_>>());
    assert!(again.iter().all(|d| d.receive_count == 2));
}

async fn a_message_received_max_receives_times_goes_to_the_dead_letter_queue_on_the_next_receive(fx: &BusFixture) {
    let bus = fx.bus.as_ref();
    ensure(bus, &["work"]).await;
    let sent = send_events(bus, "work", 1).await;
    for receive in 1..=MAX_RECEIVES {
        let (delivery, _) = receive_one(bus, "work", IN_FLIGHT).await;
        assert_eq!(delivery.receive_count, receive);
        bus.nack(&delivery, Duration::ZERO).await.unwrap();
    }
    // Visible again, the message dies on the next receive instead of being delivered a sixth time.
    let letters = eventually(PATIENCE, || async {
        let delivered = bus.receive("work", 10, IN_FLIGHT).await.unwrap();
        assert!(delivered.is_empty(), "delivered again after {MAX_RECEIVES} receives: {delivered:?}");
        Some(bus.dead_letters("work", 10).await.unwrap()).filter(|letters| !letters.is_empty())
    })
    .await
    .expect("the message reaches the dead-letter queue");
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(Event::from_json(&letter.body).unwrap(), sent[0]);
    assert_eq!(letter.queue, "work");
    assert!(letter.receive_count >= MAX_RECEIVES, "{letter:?}");
    if fx.keeps_reasons {
        assert!(letter.reason.as_deref().is_some_and(|r| !r.is_empty()), "{letter:?}");
    }
    assert_nothing_for(bus, "work", Duration::ZERO).await;
}

async fn dead_letter_moves_a_message_to_the_dead_letter_queue_at_once(fx: &BusFixture) {
    let bus = fx.bus.as_ref();
    ensure(bus, &["work"]).await;
    let sent = send_events(bus, "work", 2).await;
    let deliveries = receive_n(bus, "work", 2, fx.visibility).await;
    let (doomed, kept): (Vec<_>, Vec<_>) = deliveries.into_iter().partition(|d| event_id(d) == sent[0].id);
    bus.dead_letter(&doomed[0], "a payload of the wrong shape").await.unwrap();

    let letters = bus.dead_letters("work", 10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(Event::from_json(&letters[0].body).unwrap(), sent[0]);
    assert_eq!(letters[0].queue, "work");
    assert!(letters[0].receive_count >= 1);
    if fx.keeps_reasons {
        assert_eq!(letters[0].reason.as_deref(), Some("a payload of the wrong shape"));
    }
    // The other message is untouched: back after its visibility timeout. The dead one is not.
    let (back, _) = receive_one(bus, "work", IN_FLIGHT).await;
    assert_eq!(back.message_id, kept[0].message_id);
    bus.ack(&back).await.unwrap();
    assert_nothing_for(bus, "work", past_visibility(fx)).await;
}

async fn dead_letters_are_listed_and_left_in_place(fx: &BusFixture) {
    let bus = fx.bus.as_ref();
    ensure(bus, &["work"]).await;
    let sent = send_events(bus, "work", 3).await;
    let mut deliveries = receive_n(bus, "work", 3, IN_FLIGHT).await;
    // Dead-letter them in publication order.
    deliveries.sort_by_key(|d| sent.iter().position(|e| e.id == event_id(d)));
    for delivery in &deliveries {
        bus.dead_letter(delivery, "rejected").await.unwrap();
    }
    let listed = |limit| async move {
        bus.dead_letters("work", limit).await.unwrap().iter().map(|l| Event::from_json(&l.body).unwrap().id).collect()
    };
    let all: Vec<String> = listed(10).await;
    if bus.ordered() {
        assert_eq!(all, ids(&sent), "oldest first");
    } else {
        assert_eq!(all.iter().collect::<BTreeSet<_>>(), ids(&sent).iter().collect::<BTreeSet<_>>());
    }
    // Listing leaves them in place (a queue whose listing hides them for a moment shows them again).
    let again = eventually(PATIENCE, || async {
        let two: Vec<String> = listed(2).await;
        Some(two).filter(|two| two.len() == 2)
    })
    .await
    .expect("a listing with a limit of 2 returns 2");
    if bus.ordered() {
        assert_eq!(again, ids(&sent[..2]));
    }
    let all_again = eventually(PATIENCE, || async { Some(listed(10).await).filter(|l: &Vec<String>| l.len() == 3) })
        .await
        .expect("the dead letters are still there");
    assert_eq!(all_again.iter().collect::<BTreeSet<_>>(), all.iter().collect::<BTreeSet<_>>());
}

async fn redrive_moves_dead_letters_back_and_they_are_received_again(fx: &BusFixture) {
    let bus = fx.bus.as_ref();
    ensure(bus, &["work"]).await;
    let sent = send_events(bus, "work", 2).await;
    for delivery in receive_n(bus, "work", 2, IN_FLIGHT).await {
        bus.dead_letter(&delivery, "rejected").await.unwrap();
    }
    assert_eq!(bus.dead_letters("work", 10).await.unwrap().len(), 2);

    assert_eq!(bus.redrive("work").await.unwrap(), 2);
    assert!(bus.dead_letters("work", 10).await.unwrap().is_empty());
    let again = receive_n(bus, "work", 2, IN_FLIGHT).await;
    let received: BTreeSet<String> = again.iter().map(event_id).collect();
    assert_eq!(received, ids(&sent).into_iter().collect());
    for delivery in &again {
        assert_eq!(delivery.receive_count, 1, "a redriven message starts its receives afresh");
        bus.ack(delivery).await.unwrap();
    }
    assert_eq!(bus.redrive("work").await.unwrap(), 0);
}

async fn messages_are_received_in_publication_order_where_the_bus_promises_it(fx: &BusFixture) {
    let bus = fx.bus.as_ref();
    ensure(bus, &["billing", "shipping"]).await;
    let mut published = Vec::new();
    for n in 0..20 {
        let event = event("order.placed.v1", n);
        bus.publish(&event).await.unwrap();
        published.push(event);
    }
    for queue in ["billing", "shipping"] {
        let received: Vec<String> = receive_n(bus, queue, 20, IN_FLIGHT).await.iter().map(event_id).collect();
        if bus.ordered() {
            assert_eq!(received, ids(&published), "{queue} delivers in publication order");
        } else {
            let received: BTreeSet<_> = received.into_iter().collect();
            assert_eq!(received, ids(&published).into_iter().collect(), "{queue} delivers every message");
        }
    }
}

/// A handler that fails its first `failures` calls, then succeeds (or rejects every event).
#[derive(Default)]
struct ScriptedHandler {
    failures: u32,
    reject: bool,
    seen: Mutex<Vec<String>>,
    calls: AtomicU32,
}

#[async_trait]
impl EventHandler for ScriptedHandler {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        self.seen.lock().unwrap().push(event.id.clone());
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.reject {
            return Err(HandlerError::Reject("a payload of the wrong shape".into()));
        }
        if call <= self.failures {
            return Err(HandlerError::retry("the dependency is down"));
        }
        Ok(())
    }
}

/// Polls `consumer` until `handler` has been called `calls` times.
async fn consume_until(consumer: &Consumer, handler: &ScriptedHandler, calls: u32) {
    // The retries back off 1 s, then 2 s.
    let deadline = Instant::now() + PATIENCE * 2;
    while handler.calls.load(Ordering::SeqCst) < calls {
        assert!(Instant::now() < deadline, "the handler ran {} of {calls} times", handler.calls.load(Ordering::SeqCst));
        if consumer.poll_once().await.unwrap() == 0 {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn a_consumer_acks_an_event_once_its_failing_handler_succeeds(fx: &BusFixture) {
    ensure(fx.bus.as_ref(), &["work"]).await;
    let sent = send_events(fx.bus.as_ref(), "work", 1).await;
    let handler = Arc::new(ScriptedHandler { failures: 2, ..Default::default() });
    let consumer = Consumer::new(fx.bus.clone(), "work", handler.clone()).visibility(fx.visibility);
    consume_until(&consumer, &handler, 3).await;

    assert_eq!(*handler.seen.lock().unwrap(), vec![sent[0].id.clone(); 3]);
    // Acknowledged: it comes back neither after the visibility timeout nor from the dead letters.
    assert_nothing_for(fx.bus.as_ref(), "work", past_visibility(fx)).await;
    assert!(fx.bus.dead_letters("work", 10).await.unwrap().is_empty());
    assert_eq!(handler.calls.load(Ordering::SeqCst), 3);
}

async fn a_consumer_dead_letters_a_rejected_event_at_once(fx: &BusFixture) {
    ensure(fx.bus.as_ref(), &["work"]).await;
    let sent = send_events(fx.bus.as_ref(), "work", 1).await;
    let handler = Arc::new(ScriptedHandler { reject: true, ..Default::default() });
    let consumer = Consumer::new(fx.bus.clone(), "work", handler.clone()).visibility(fx.visibility);
    consume_until(&consumer, &handler, 1).await;

    let letters = fx.bus.dead_letters("work", 10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(Event::from_json(&letters[0].body).unwrap(), sent[0]);
    if fx.keeps_reasons {
        assert_eq!(letters[0].reason.as_deref(), Some("a payload of the wrong shape"));
    }
    assert_nothing_for(fx.bus.as_ref(), "work", past_visibility(fx)).await;
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1);
}

/// A handler that fails the first attempt at one event and applies every other.
struct FailsOnce {
    id: String,
    failed: AtomicU32,
    applied: Mutex<Vec<String>>,
}

#[async_trait]
impl EventHandler for FailsOnce {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        if event.id == self.id && self.failed.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(HandlerError::retry("the dependency is down"));
        }
        self.applied.lock().unwrap().push(event.id.clone());
        Ok(())
    }
}

async fn a_consumer_settles_each_event_of_a_batch_by_its_own_outcome(fx: &BusFixture) {
    ensure(fx.bus.as_ref(), &["work"]).await;
    let sent = send_events(fx.bus.as_ref(), "work", 3).await;
    let handler =
        Arc::new(FailsOnce { id: sent[1].id.clone(), failed: AtomicU32::new(0), applied: Mutex::new(Vec::new()) });
    let consumer = Consumer::new(fx.bus.clone(), "work", handler.clone()).visibility(fx.visibility);
    // The retry backs off a second before the failed event is visible again.
    let deadline = Instant::now() + PATIENCE * 2;
    while handler.applied.lock().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "applied {:?}", handler.applied.lock().unwrap());
        if consumer.poll_once().await.unwrap() == 0 {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    let applied: BTreeSet<String> = handler.applied.lock().unwrap().iter().cloned().collect();
    assert_eq!(applied, ids(&sent).into_iter().collect(), "each event applied once");
    assert_eq!(handler.applied.lock().unwrap().len(), 3, "the two that succeeded were acknowledged, not redelivered");
    assert_eq!(handler.failed.load(Ordering::SeqCst), 2, "the failed one came back once");
    assert!(fx.bus.dead_letters("work", 10).await.unwrap().is_empty());
    assert_nothing_for(fx.bus.as_ref(), "work", past_visibility(fx)).await;
}

async fn a_published_batch_reaches_every_subscribed_queue_and_acks_settle_each(fx: &BusFixture) {
    let bus = fx.bus.as_ref();
    ensure(bus, &["billing", "shipping", "audit"]).await;
    let events: Vec<Event> = (0..3).map(|n| event("order.placed.v1", n)).collect();
    let (published, outcome) = bus.publish_batch(&events).await;
    outcome.unwrap();
    assert_eq!(published, 3);
    for queue in ["billing", "shipping"] {
        let deliveries = receive_n(bus, queue, 3, fx.visibility).await;
        let received: BTreeSet<_> = deliveries.iter().map(event_id).collect();
        assert_eq!(received, ids(&events).into_iter().collect(), "{queue}");
        let refs: Vec<&Delivery> = deliveries.iter().collect();
        assert!(bus.ack_batch(&refs).await.iter().all(Result::is_ok), "{queue}");
        assert_nothing_for(bus, queue, past_visibility(fx)).await;
    }
    assert_nothing_for(bus, "audit", Duration::ZERO).await;
}

async fn a_message_no_queue_carries_is_refused_for_good_and_the_batch_stops_before_it(fx: &BusFixture) {
    let bus = fx.bus.as_ref();
    ensure(bus, &["billing", "shipping"]).await;
    let good = event("order.placed.v1", 1);
    let odd = Event::new("order.placed.v1", "order", json!({ "email": "a\u{FFFF}@example.com" }));
    let large =
        Event::new("order.placed.v1", "order", json!({ "blob": "x".repeat(platform::events::bus::MAX_MESSAGE_BYTES) }));
    let after = event("order.placed.v1", 2);
    for refused in [&odd, &large] {
        assert!(matches!(bus.publish(refused).await, Err(BusError::Refused(_))), "publish");
        assert!(matches!(bus.send("billing", refused).await, Err(BusError::Refused(_))), "send");
    }
    let (sent, outcome) = bus.publish_batch(&[good.clone(), odd.clone(), after.clone()]).await;
    assert_eq!(sent, 1, "the events before the refused one are published");
    match outcome {
        Err(BusError::Refused(reason)) => assert!(reason.contains("U+FFFF"), "{reason}"),
        other => panic!("a refusal, not {other:?}"),
    }
    let (sent, outcome) = bus.publish_batch(std::slice::from_ref(&after)).await;
    assert!(sent == 1 && outcome.is_ok(), "the event behind it goes out on its own");
    let received = receive_n(bus, "billing", 2, IN_FLIGHT).await;
    assert_eq!(received.iter().map(event_id).collect::<BTreeSet<_>>(), BTreeSet::from([good.id, after.id]));
    assert_nothing_for(bus, "billing", Duration::from_millis(300)).await;
}

async fn the_bus_answers_a_ping(fx: &BusFixture) {
    fx.bus.ping().await.unwrap();
}

// ---- the SQLite queue alone ---------------------------------------------------------------------

/// SQS may accept a stale receipt (and delete or not); the SQLite queue refuses it.
async fn an_ack_with_a_stale_receipt_fails(fx: &BusFixture) {
    let bus = fx.bus.as_ref();
    send_events(bus, "work", 1).await;
    let (first, _) = receive_one(bus, "work", fx.visibility).await;
    let (second, _) = receive_one(bus, "work", IN_FLIGHT).await;
    assert_eq!(second.message_id, first.message_id);
    assert_stale(bus.ack(&first).await);
    assert_stale(bus.nack(&first, Duration::ZERO).await);
    assert_stale(bus.dead_letter(&first, "stale").await);
    assert!(bus.dead_letters("work", 10).await.unwrap().is_empty());
    bus.ack(&second).await.unwrap();
    assert_stale(bus.ack(&second).await);
    assert_nothing_for(bus, "work", Duration::ZERO).await;
}

async fn a_restart_loses_neither_published_nor_in_flight_messages(fx: &BusFixture) {
    let path = fx.dir.as_ref().expect("the SQLite queue's folder").path().join("restart.db");
    let wait = Duration::from_millis(200);
    let in_flight = event("order.placed.v1", 0);
    let waiting = event("order.placed.v1", 1);
    let hidden_from = Instant::now();
    {
        let bus = SqliteQueue::open(&path, routing(), wait).unwrap();
        bus.publish(&in_flight).await.unwrap();
        bus.publish(&waiting).await.unwrap();
        let received = bus.receive("billing", 1, fx.visibility).await.unwrap();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].event().unwrap(), in_flight, "first in, first out");
        // Dropped without an ack: the process stops here.
    }
    let bus = SqliteQueue::open(&path, routing(), wait).unwrap();
    let (first, _) = receive_one(&bus, "billing", IN_FLIGHT).await;
    assert_eq!(first.event().unwrap(), waiting);
    assert_eq!(first.receive_count, 1);
    let (second, received_at) = receive_one(&bus, "billing", IN_FLIGHT).await;
    assert_eq!(second.event().unwrap(), in_flight);
    assert_eq!(second.receive_count, 2);
    assert!(received_at + CLOCK_SLACK >= hidden_from + fx.visibility, "back only after its visibility timeout");
    let (shipping, _) = receive_one(&bus, "shipping", IN_FLIGHT).await;
    assert_eq!(shipping.event().unwrap(), in_flight, "the other queue's copy survived too");
}

/// SQS dead-letters by sending to the dead-letter queue, then deleting from the queue: a failure
/// between the two leaves the event in both. That is at-least-once delivery like any other: a
/// consumer that records the events it applied (the inbox) applies it once however many copies
/// come back, from the queue or redriven from the dead letters.
async fn a_dead_letter_whose_delete_failed_leaves_a_copy_that_the_inbox_applies_once(fx: &BusFixture) {
    let bus = fx.bus.as_ref();
    ensure(bus, &["work"]).await;
    let sent = send_events(bus, "work", 1).await;
    let (delivery, _) = receive_one(bus, "work", fx.visibility).await;
    // The send reaches the dead-letter queue; the delete fails (its receipt is no longer good).
    let broken = Delivery { receipt: format!("{}-no-longer-valid", delivery.receipt), ..delivery.clone() };
    assert!(bus.dead_letter(&broken, "a handler that gave up").await.is_err(), "the failure is reported");
    assert_eq!(bus.dead_letters("work", 10).await.unwrap().len(), 1);

    let dir = tempfile::tempdir().unwrap();
    let db = platform::sqlite::Db::open(dir.path().join("service.db")).unwrap();
    db.migrate(platform::sqlite::PLATFORM_MIGRATIONS).unwrap();
    let applied = Arc::new(AtomicU32::new(0));
    let apply = |delivery: Delivery| {
        let (db, applied) = (db.clone(), applied.clone());
        async move {
            let id = delivery.event().unwrap().id;
            let first = db.transaction(move |tx| platform::sqlite::inbox_claim(tx, "conformance", &id)).await.unwrap();
            if first {
                applied.fetch_add(1, Ordering::SeqCst);
            }
        }
    };
    // The copy left on the queue comes back and is applied…
    let (again, _) = receive_one(bus, "work", IN_FLIGHT).await;
    assert_eq!(event_id(&again), sent[0].id);
    apply(again.clone()).await;
    bus.ack(&again).await.unwrap();
    // …and the dead letter, redriven by an operator, is the same event: applied already.
    assert_eq!(bus.redrive("work").await.unwrap(), 1);
    let (redriven, _) = receive_one(bus, "work", IN_FLIGHT).await;
    assert_eq!(event_id(&redriven), sent[0].id);
    apply(redriven.clone()).await;
    bus.ack(&redriven).await.unwrap();
    assert_eq!(applied.load(Ordering::SeqCst), 1, "two copies, applied once");
    assert_nothing_for(bus, "work", Duration::ZERO).await;
}
