//! The checkout saga across its three services, with faults injected where they happen in
//! production. The order, payment and inventory services' own stores (SQLite), handlers, sweepers
//! and the simulated provider are wired in-process; the messages between them are carried by a
//! pump the test drives, which retries a failed delivery and dead-letters it after the fifth, as
//! the queues do. Faults: a store that fails (the inventory's commits), a provider whose answers
//! are lost after it acted, one that refuses captures, a label store that fails for a while, and
//! answers duplicated, reordered and late. Every test ends by checking that money and stock agree.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use platform::address::AddressInput;
use platform::contracts::inventory::{Commit, Reserve};
use platform::contracts::order::OrderEvent;
use platform::contracts::payment::{Capture, PaymentEvent, Void};
use platform::events::outbox::{OutboxStore, SqliteOutbox};
use platform::events::sqlite::SqliteQueue;
use platform::events::{Event, EventBus, EventHandler, HandlerError, Routing};
use platform::money::Money;
use platform::objects::{Object, ObjectError, ObjectStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shop_inventory::domain::ReservationStatus;
use shop_inventory::store::InventoryStore;
use shop_order::app::saga::{self, Saga};
use shop_order::consumers::{QUEUE as SAGA_QUEUE, SagaAnswers};
use shop_order::domain::order::{Order, OrderItem, OrderStatus};
use shop_order::store::{OrderStore, Placed};
use shop_payment::app::payments::Payments;
use shop_payment::domain::payment::PaymentStatus;
use shop_payment::provider::IntentState;
use shop_payment::provider::simulated::SimulatedProvider;
use shop_payment::store::PaymentStore;

/// Receives after which a message is dead-lettered, as on the queues.
const MAX_RECEIVES: u32 = 5;

/// A label store that fails while told to, then stores labels in memory.
#[derive(Default)]
struct Labels {
    failing: AtomicU32,
    stored: std::sync::Mutex<HashMap<String, Bytes>>,
}

#[async_trait]
impl ObjectStore for Labels {
    async fn put(&self, key: &str, bytes: Bytes, _content_type: &str) -> Result<(), ObjectError> {
        if self.failing.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(ObjectError::Config("the label store is unavailable on purpose".into()));
        }
        self.stored.lock().unwrap().insert(key.to_owned(), bytes);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Object>, ObjectError> {
        let bytes = self.stored.lock().unwrap().get(key).cloned();
        Ok(bytes.map(|bytes| Object { bytes, content_type: Some("application/pdf".into()) }))
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, ObjectError> {
        Ok(self.stored.lock().unwrap().get(key).map(|bytes| bytes.len() as u64))
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        self.stored.lock().unwrap().remove(key);
        Ok(())
    }

    async fn presign_upload(
        &self,
        _key: &str,
        _content_type: &str,
        _expires_in: Duration,
    ) -> Result<platform::objects::PresignedUpload, ObjectError> {
        Err(ObjectError::Config("labels are never uploaded by clients".into()))
    }

    fn public_url(&self, key: &str) -> url::Url {
        format!("http://labels.invalid/{key}").parse().unwrap()
    }

    async fn ping(&self) -> Result<(), ObjectError> {
        Ok(())
    }
}

/// The inventory's command handler behind a store that fails its next commits (locked).
struct Inventory {
    commands: shop_inventory::consumers::Commands,
    failing_commits: AtomicU32,
}

#[async_trait]
impl EventHandler for Inventory {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let failing = event.kind == Commit::KIND
            && self.failing_commits.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if failing {
            return Err(HandlerError::retry("database is locked"));
        }
        self.commands.handle(event).await
    }
}

/// A message on its way, and how often it was received.
struct Message {
    event: Event,
    receives: u32,
}

/// The three services of the saga and the messages between them.
struct World {
    orders: Arc<dyn OrderStore>,
    order_outbox: Arc<dyn OutboxStore>,
    saga: SagaAnswers,
    payments: Arc<dyn PaymentStore>,
    payment_outbox: Arc<dyn OutboxStore>,
    /// The payment's database, to put it back as a restored backup would.
    payment_db: platform::sqlite::Db,
    payment_commands: shop_payment::consumers::Commands,
    /// The payment service's steps (its reconciler).
    payment_steps: Payments,
    provider: Arc<SimulatedProvider>,
    inventory: Arc<dyn InventoryStore>,
    inventory_outbox: Arc<dyn OutboxStore>,
    inventory_commands: Inventory,
    /// The inventory's direct answers (`commit_failed`, a repeated `committed`).
    bus: Arc<SqliteQueue>,
    labels: Arc<Labels>,
    step: chrono::Duration,
    /// Reservations hold this long (the saga asks for 15 minutes; tests make time pass faster).
    hold_seconds: Option<u64>,
    /// Where each message goes: the platform's own routing.
    routing: Routing,
    queue: VecDeque<Message>,
    dead: Vec<Event>,
    /// Every order event published, by kind.
    told: Vec<(String, String)>,
    stock_at_start: HashMap<String, i64>,
    _dir: tempfile::TempDir,
}

fn address() -> AddressInput {
    AddressInput {
        name: "Ada Shopper".into(),
        line1: "1 Main St".into(),
        line2: None,
        city: "Springfield".into(),
        region: None,
        postal_code: "12345".into(),
        country: "US".into(),
    }
}

impl World {
    async fn new(stock: &[(&str, i64)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str, migrations| {
            platform::sqlite::Db::open_migrated(dir.path().join(format!("{name}.db")), migrations).unwrap().0
        };
        let order_db = open("order", shop_order::MIGRATIONS);
        let payment_db = open("payment", shop_payment::MIGRATIONS);
        let inventory_db = open("inventory", shop_inventory::MIGRATIONS);
        let routing = Routing::new().subscribe("answers", ["inventory.*", "payment.*"]);
        let bus = Arc::new(SqliteQueue::open(dir.path().join("events.db"), routing, Duration::ZERO).unwrap());

        let orders: Arc<dyn OrderStore> = Arc::new(shop_order::store::sqlite::SqliteOrderStore::new(order_db.clone()));
        let labels = Arc::new(Labels::default());
        let step = chrono::Duration::milliseconds(40);
        let saga = SagaAnswers(Arc::new(Saga::new(orders.clone(), labels.clone(), step)));

        let payments: Arc<dyn PaymentStore> =
            Arc::new(shop_payment::store::sqlite::SqlitePaymentStore::new(payment_db.clone()));
        let provider = Arc::new(SimulatedProvider::default());
        let payment_steps = Payments::new(payments.clone(), provider.clone());
        let payment_commands = shop_payment::consumers::Commands::new(payment_steps.clone());

        let inventory: Arc<dyn InventoryStore> =
            Arc::new(shop_inventory::store::sqlite::SqliteInventoryStore::new(inventory_db.clone()));
        for (sku, units) in stock {
            inventory.set(sku, *units, None, "initial stock", "test").await.unwrap();
        }
        let inventory_commands = Inventory {
            commands: shop_inventory::consumers::Commands::new(
                inventory.clone(),
                bus.clone(),
                Duration::from_secs(900),
            ),
            failing_commits: AtomicU32::new(0),
        };
        Self {
            orders,
            order_outbox: Arc::new(SqliteOutbox(order_db)),
            saga,
            payments,
            payment_outbox: Arc::new(SqliteOutbox(payment_db.clone())),
            payment_db,
            payment_commands,
            payment_steps,
            provider,
            inventory,
            inventory_outbox: Arc::new(SqliteOutbox(inventory_db)),
            inventory_commands,
            bus,
            labels,
            step,
            hold_seconds: None,
            routing: shop::routing(),
            queue: VecDeque::new(),
            dead: Vec::new(),
            told: Vec::new(),
            stock_at_start: stock.iter().map(|(sku, units)| ((*sku).to_owned(), *units)).collect(),
            _dir: dir,
        }
    }

    /// Places an order of `lines` (SKU, units, unit price in cents), as checkout does.
    async fn place(&self, lines: &[(&str, i64, i64)]) -> String {
        let items: Vec<OrderItem> = lines
            .iter()
            .map(|(sku, quantity, price)| OrderItem {
                sku: (*sku).to_owned(),
                product_id: format!("prod-{sku}"),
                name: format!("Product {sku}"),
                quantity: *quantity,
                unit_price: Money::new(*price, "USD"),
                line_total: Money::new(price * quantity, "USD"),
            })
            .collect();
        let total = Money::new(items.iter().map(|i| i.line_total.amount).sum(), "USD");
        let order = Order::pending("user-1".into(), items, total, address(), "pm_card_visa".into(), self.step);
        let events = saga::placing(&order);
        let placed = self.orders.place(&order, &order.id, "hash", None, &events).await.unwrap();
        assert!(matches!(placed, Placed::New(_)));
        order.id
    }

    /// The shopper cancels, as `POST /v1/orders/{id}/cancel` does; whether it could.
    async fn cancel(&self, order_id: &str) -> bool {
        let order = self.order(order_id).await;
        if !order.status.is_cancellable() {
            return false;
        }
        let advance = saga::compensating(OrderStatus::Cancelled, "cancelled", self.step);
        let events = saga::cancellation(&order, "cancelled", None);
        self.orders.advance(order_id, &[order.status], &advance, &events).await.unwrap().is_some()
    }

    async fn order(&self, order_id: &str) -> Order {
        self.orders.get(order_id).await.unwrap().unwrap()
    }

    /// Takes what the services published into the queue.
    async fn collect(&mut self) {
        for outbox in [&self.order_outbox, &self.payment_outbox, &self.inventory_outbox] {
            for partition in 0..outbox.partitions() {
                loop {
                    let rows = outbox.fetch(partition, 500).await.unwrap();
                    if rows.is_empty() {
                        break;
                    }
                    let seqs: Vec<i64> = rows.iter().map(|(seq, _)| *seq).collect();
                    for (_, body) in rows {
                        self.queue.push_back(Message { event: Event::from_json(&body).unwrap(), receives: 0 });
                    }
                    outbox.delete(partition, &seqs).await.unwrap();
                }
            }
        }
        for delivery in self.bus.receive("answers", 1000, Duration::from_secs(30)).await.unwrap() {
            self.queue.push_back(Message { event: delivery.event().unwrap(), receives: 0 });
            self.bus.ack(&delivery).await.unwrap();
        }
    }

    /// Delivers `message` to the service it is for, as its consumer would; `Some` when it is to
    /// be delivered again (it failed, and has receives left).
    async fn deliver(&mut self, mut message: Message) -> Option<Message> {
        let mut event = message.event.clone();
        let kind = event.kind.as_str();
        if kind == Reserve::KIND
            && let Some(seconds) = self.hold_seconds
        {
            let mut command: Reserve = event.data_as().unwrap();
            command.ttl_seconds = Some(seconds);
            event.data = serde_json::to_value(command).unwrap();
        }
        // Each message goes where the platform's routing sends it.
        let queue = |name: &str| self.routing.queues_for(&event.kind).any(|q| q == name);
        let outcome = if queue(shop_inventory::consumers::QUEUE) {
            self.inventory_commands.handle(&event).await
        } else if queue(shop_payment::consumers::QUEUE) {
            self.payment_commands.handle(&event).await
        } else if queue(SAGA_QUEUE) {
            self.saga.handle(&event).await
        } else {
            if event.kind.starts_with("order.") {
                let order_id = event.data["order_id"].as_str().unwrap_or_default().to_owned();
                self.told.push((event.kind.clone(), order_id));
            }
            Ok(())
        };
        message.receives += 1;
        match outcome {
            Ok(()) => None,
            Err(HandlerError::Retry(_)) if message.receives < MAX_RECEIVES => Some(message),
            Err(_) => {
                self.dead.push(message.event);
                None
            }
        }
    }

    /// Delivers every message, and every message that causes, until none is left.
    async fn settle(&mut self) {
        for _ in 0..10_000 {
            self.collect().await;
            let Some(message) = self.queue.pop_front() else { return };
            if let Some(again) = self.deliver(message).await {
                self.queue.push_back(again);
            }
        }
        panic!("the saga never settled");
    }

    /// Delivers every message, and every message that causes, but those of `kind`, which are held
    /// back and returned.
    async fn settle_holding(&mut self, kind: &str) -> Vec<Message> {
        let mut held = Vec::new();
        loop {
            self.collect().await;
            let Some(message) = self.queue.pop_front() else { return held };
            if message.event.kind == kind {
                held.push(message);
            } else if let Some(again) = self.deliver(message).await {
                self.queue.push_back(again);
            }
        }
    }

    /// Lets the longest step timeout pass, runs the sweepers (the saga's and the expired
    /// reservations'), and settles what they sent.
    async fn time_passes(&mut self) {
        tokio::time::sleep((self.step * 5).to_std().unwrap()).await;
        self.saga.0.sweep_once().await.unwrap();
        shop_inventory::app::sweep_once(self.inventory.as_ref()).await.unwrap();
        self.settle().await;
    }

    /// Lets time pass until no order waits for a step (at most `rounds` step timeouts).
    async fn until_final(&mut self, ids: &[String], rounds: usize) {
        for _ in 0..rounds {
            self.settle().await;
            let mut waiting = false;
            for id in ids {
                waiting |= self.order(id).await.deadline.is_some();
            }
            if !waiting {
                return;
            }
            self.time_passes().await;
        }
        for id in ids {
            let order = self.order(id).await;
            assert!(order.deadline.is_none(), "{id} is stuck: {order:?}");
        }
    }

    /// Checks that money and stock agree for every order in `ids`, and for the stock as a whole:
    /// a shipped order's payment is captured in full and its stock committed; any other order
    /// keeps no money (nothing held or captured at the provider, all of it refunded) and no
    /// stock; every unit on hand is the start's less what shipped, and none is held.
    async fn assert_money_and_stock_agree(&self, ids: &[String]) {
        let mut shipped_units: HashMap<String, i64> = HashMap::new();
        for id in ids {
            let order = self.order(id).await;
            let payment = self.payments.by_order(id).await.unwrap();
            let reservation = self.inventory.reservation(id).await.unwrap();
            let at_provider =
                payment.as_ref().and_then(|p| p.provider_ref.as_deref()).map(|r| self.provider.state_of(r));
            let what = format!("{id}: {:?} {:?} {:?} {at_provider:?}", order.status, payment, reservation);
            match order.status {
                OrderStatus::Shipped => {
                    if order.needs_payment() {
                        let payment = payment.as_ref().expect(&what);
                        assert_eq!(payment.status, PaymentStatus::Captured, "{what}");
                        assert_eq!((payment.captured, payment.refunded), (order.total.amount, 0), "{what}");
                        assert_eq!(at_provider, Some(IntentState::Captured), "{what}");
                    } else {
                        assert!(payment.is_none_or(|p| p.status == PaymentStatus::Voided), "{what}");
                    }
                    let reservation = reservation.as_ref().expect(&what);
                    assert_eq!(reservation.status, ReservationStatus::Committed, "{what}");
                    assert!(order.label_url.is_some() && order.tracking_number.is_some(), "{what}");
                    for item in &order.items {
                        *shipped_units.entry(item.sku.clone()).or_default() += item.quantity;
                    }
                }
                OrderStatus::Cancelled | OrderStatus::Rejected | OrderStatus::PaymentFailed => {
                    assert!(order.is_compensated(), "{what}: every compensation answered");
                    if let Some(payment) = &payment {
                        assert_eq!(payment.refundable(), 0, "{what}");
                        assert_eq!(payment.captured, payment.refunded, "{what}");
                        let refunds = self.payments.refunds(&payment.id).await.unwrap();
                        let settled: i64 = refunds
                            .iter()
                            .filter(|r| r.status == shop_payment::domain::payment::RefundStatus::Succeeded)
                            .map(|r| r.amount.amount)
                            .sum();
                        assert_eq!(settled, payment.captured, "{what}: every refund made at the provider");
                        assert!(
                            matches!(
                                payment.status,
                                PaymentStatus::Voided | PaymentStatus::Failed | PaymentStatus::Refunded
                            ),
                            "{what}"
                        );
                    }
                    assert_ne!(at_provider, Some(IntentState::Authorized), "{what}: a hold left open");
                    if let Some(found) = self.provider.state_for_order(id) {
                        assert_ne!(found, IntentState::Authorized, "{what}: a hold left open at the provider");
                    }
                    if let Some(reservation) = &reservation {
                        assert!(
                            matches!(
                                reservation.status,
                                ReservationStatus::Released | ReservationStatus::Returned | ReservationStatus::Rejected
                            ),
                            "{what}"
                        );
                    }
                }
                other => panic!("{what}: not final ({other:?})"),
            }
        }
        for (sku, start) in &self.stock_at_start {
            let stock = self.inventory.get(sku).await.unwrap().unwrap();
            let shipped = shipped_units.get(sku).copied().unwrap_or(0);
            assert_eq!((stock.on_hand, stock.reserved), (start - shipped, 0), "{sku}: stock conserved");
        }
        assert!(
            self.dead.is_empty(),
            "no saga message is left dead: {:?}",
            self.dead.iter().map(|e| &e.kind).collect::<Vec<_>>()
        );
    }

    fn told(&self, kind: &str, order_id: &str) -> bool {
        self.told.iter().any(|(k, id)| k == kind && id == order_id)
    }
}

#[tokio::test]
async fn an_order_ships_only_once_its_stock_is_committed_and_a_lost_commit_is_asked_for_again() {
    let mut w = World::new(&[("SKU-A", 5)]).await;
    // The inventory's store is locked long enough for the commit to be dead-lettered.
    w.inventory_commands.failing_commits.store(MAX_RECEIVES, Ordering::SeqCst);
    let id = w.place(&[("SKU-A", 2, 1500)]).await;
    w.settle().await;
    assert_eq!(w.dead.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), [Commit::KIND]);
    w.dead.clear();
    let order = w.order(&id).await;
    // Captured, but not shipped without its stock.
    assert_eq!(order.status, OrderStatus::Confirmed, "{order:?}");
    assert!(order.is_captured() && !order.is_committed());
    // The deadline passes: the commit is asked for again, and the order ships.
    w.until_final(std::slice::from_ref(&id), 5).await;
    assert_eq!(w.order(&id).await.status, OrderStatus::Shipped);
    assert!(w.told(OrderEvent::SHIPPED, &id));
    w.assert_money_and_stock_agree(&[id]).await;
}

#[tokio::test]
async fn a_commit_that_fails_until_the_hold_lapses_cancels_the_order_and_refunds_it() {
    let mut w = World::new(&[("SKU-A", 5)]).await;
    w.hold_seconds = Some(1);
    w.inventory_commands.failing_commits.store(1_000, Ordering::SeqCst);
    let id = w.place(&[("SKU-A", 2, 1500)]).await;
    w.settle().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    w.inventory_commands.failing_commits.store(0, Ordering::SeqCst);
    w.dead.clear();
    w.until_final(std::slice::from_ref(&id), 5).await;
    let order = w.order(&id).await;
    assert_eq!(order.status, OrderStatus::Cancelled, "{order:?}");
    assert_eq!(order.status_reason(), Some("reservation_lapsed"));
    let payment = w.payments.by_order(&id).await.unwrap().unwrap();
    assert_eq!((payment.status, payment.refunded), (PaymentStatus::Refunded, 3000));
    w.assert_money_and_stock_agree(&[id]).await;
}

#[tokio::test]
async fn a_cancel_that_meets_a_capture_whose_answer_was_lost_refunds_it() {
    let mut w = World::new(&[("SKU-A", 5)]).await;
    let id = w.place(&[("SKU-A", 1, 2500)]).await;
    // Up to the capture: the provider captures, and the answer of that call is lost.
    let mut held = w.settle_holding(Capture::KIND).await;
    assert_eq!(held.len(), 1);
    w.provider.lose_next_answers(1);
    let retried = w.deliver(held.remove(0)).await.expect("the capture is to be retried");
    w.queue.push_back(retried);
    let payment = w.payments.by_order(&id).await.unwrap().unwrap();
    assert_eq!(payment.status, PaymentStatus::Authorized, "our side does not know it was captured");
    assert_eq!(w.provider.state_of(payment.provider_ref.as_deref().unwrap()), IntentState::Captured);
    // The shopper cancels now: the void meets "already captured" and becomes a refund.
    assert!(w.cancel(&id).await);
    // The void goes before the retried capture.
    w.collect().await;
    let retried: Vec<Message> = std::mem::take(&mut w.queue).into_iter().collect();
    let (voids, rest): (Vec<Message>, Vec<Message>) = retried.into_iter().partition(|m| m.event.kind == Void::KIND);
    w.queue.extend(voids);
    w.queue.extend(rest);
    w.until_final(std::slice::from_ref(&id), 5).await;
    let order = w.order(&id).await;
    assert_eq!(order.status, OrderStatus::Cancelled);
    let payment = w.payments.by_order(&id).await.unwrap().unwrap();
    assert_eq!((payment.status, payment.captured, payment.refunded), (PaymentStatus::Refunded, 2500, 2500));
    w.assert_money_and_stock_agree(&[id]).await;
}

#[tokio::test]
async fn a_capture_that_arrives_after_the_cancel_charges_nothing() {
    let mut w = World::new(&[("SKU-A", 5)]).await;
    let id = w.place(&[("SKU-A", 1, 2500)]).await;
    // Deliver everything but hold the capture back.
    let held = w.settle_holding(Capture::KIND).await;
    assert!(w.cancel(&id).await);
    // The void (an authorization cancelled) goes first… then a capture re-sent long before arrives.
    w.settle().await;
    w.queue.extend(held);
    w.settle().await;
    w.until_final(std::slice::from_ref(&id), 5).await;
    let payment = w.payments.by_order(&id).await.unwrap().unwrap();
    assert_eq!(payment.status, PaymentStatus::Voided, "a voided authorization is never captured");
    w.assert_money_and_stock_agree(&[id]).await;
}

#[tokio::test]
async fn a_captured_answer_that_arrives_after_the_cancel_is_refunded_at_once() {
    let mut w = World::new(&[("SKU-A", 5)]).await;
    let id = w.place(&[("SKU-A", 1, 2500)]).await;
    // Captured at the payment service, its answer still on the way.
    let held = w.settle_holding(PaymentEvent::CAPTURED).await;
    assert_eq!(held.len(), 1);
    assert_eq!(w.payments.by_order(&id).await.unwrap().unwrap().status, PaymentStatus::Captured);
    // The shopper cancels, and the void of the cancel is lost: only the stock goes back.
    assert!(w.cancel(&id).await);
    w.collect().await;
    w.queue.retain(|m| m.event.kind != Void::KIND);
    w.settle().await;
    assert_eq!(w.payments.by_order(&id).await.unwrap().unwrap().status, PaymentStatus::Captured);
    // The late `captured` refunds the money straight away, before any deadline passes.
    w.queue.extend(held);
    w.settle().await;
    let payment = w.payments.by_order(&id).await.unwrap().unwrap();
    assert_eq!((payment.status, payment.refunded), (PaymentStatus::Refunded, 2500));
    assert!(w.order(&id).await.is_compensated(), "every compensation answered");
    w.assert_money_and_stock_agree(&[id]).await;
}

#[tokio::test]
async fn a_label_store_that_fails_for_a_while_delays_shipping_but_never_strands_the_order() {
    let mut w = World::new(&[("SKU-A", 5)]).await;
    // Enough failures for the answer that would ship it to be dead-lettered.
    w.labels.failing.store(MAX_RECEIVES, Ordering::SeqCst);
    let id = w.place(&[("SKU-A", 1, 990)]).await;
    w.settle().await;
    assert_eq!(w.dead.len(), 1, "{:?}", w.dead.iter().map(|e| &e.kind).collect::<Vec<_>>());
    w.dead.clear();
    assert_eq!(w.order(&id).await.status, OrderStatus::Confirmed);
    // The sweeper asks again for what did not answer; the payment answers `captured` again.
    w.until_final(std::slice::from_ref(&id), 5).await;
    let order = w.order(&id).await;
    assert_eq!(order.status, OrderStatus::Shipped, "{order:?}");
    assert!(w.labels.stored.lock().unwrap().contains_key(&shop_order::label::label_key(&id)));
    w.assert_money_and_stock_agree(&[id]).await;
}

#[tokio::test]
async fn a_capture_the_provider_refuses_for_good_cancels_the_order_and_returns_the_stock() {
    let mut w = World::new(&[("SKU-A", 5)]).await;
    w.provider.refuse_captures(true);
    let id = w.place(&[("SKU-A", 3, 1000)]).await;
    w.until_final(std::slice::from_ref(&id), 5).await;
    let order = w.order(&id).await;
    assert_eq!(order.status, OrderStatus::Cancelled, "{order:?}");
    assert_eq!(order.status_reason(), Some("payment_capture_failed"));
    assert!(w.told(OrderEvent::CANCELLED, &id));
    let reservation = w.inventory.reservation(&id).await.unwrap().unwrap();
    assert_eq!(reservation.status, ReservationStatus::Returned, "the committed units went back");
    w.assert_money_and_stock_agree(&[id]).await;
}

#[tokio::test]
async fn an_authorization_whose_answers_were_all_lost_is_found_and_released_when_the_order_times_out() {
    let mut w = World::new(&[("SKU-A", 5)]).await;
    let id = w.place(&[("SKU-A", 1, 4200)]).await;
    // The provider authorizes, and every answer is lost until the step times out.
    w.provider.lose_next_answers(MAX_RECEIVES);
    w.settle().await;
    w.dead.clear();
    let payment = w.payments.by_order(&id).await.unwrap().unwrap();
    assert_eq!((payment.status, payment.provider_ref.as_deref()), (PaymentStatus::Pending, None));
    w.until_final(std::slice::from_ref(&id), 5).await;
    let order = w.order(&id).await;
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert_eq!(order.status_reason(), Some("timed_out"));
    let held = w.provider.state_for_order(&id);
    assert_eq!(held, Some(IntentState::Cancelled), "the hold the provider placed was found and released");
    w.assert_money_and_stock_agree(&[id]).await;
}

#[tokio::test]
async fn an_order_with_nothing_to_pay_ships_without_a_payment() {
    let mut w = World::new(&[("SKU-FREE", 5)]).await;
    let id = w.place(&[("SKU-FREE", 2, 0)]).await;
    w.settle().await;
    let order = w.order(&id).await;
    assert_eq!(order.status, OrderStatus::Shipped, "{order:?}");
    assert!(w.payments.by_order(&id).await.unwrap().is_none(), "no payment was asked for");
    assert_eq!(w.provider.calls(), 0);
    w.assert_money_and_stock_agree(&[id]).await;
}

/// What the random schedule may do at each turn.
#[derive(Debug, Clone, Copy)]
enum Turn {
    Deliver,
    Duplicate,
    Transient,
    Cancel,
    LoseAnswer,
    Outage,
    TimePasses,
}

#[tokio::test]
async fn any_interleaving_of_answers_duplicates_and_timeouts_leaves_money_and_stock_agreeing() {
    // The seeds run side by side: most of each is time passing.
    futures::future::join_all((0..6u64).map(interleaving)).await;
}

/// One random interleaving of the saga's answers, duplicates and timeouts over 14 orders.
async fn interleaving(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut w = World::new(&[("SKU-A", 6), ("SKU-B", 4), ("SKU-FREE", 3)]).await;
    w.hold_seconds = Some(if seed.is_multiple_of(2) { 900 } else { 1 });
    let mut ids = Vec::new();
    for n in 0..14 {
        let lines: Vec<(&str, i64, i64)> = match n % 4 {
            0 => vec![("SKU-A", 1, 1000)],
            1 => vec![("SKU-A", 1, 1000), ("SKU-B", 2, 500)],
            2 => vec![("SKU-FREE", 1, 0)],
            _ => vec![("SKU-B", 1, 700)],
        };
        ids.push(w.place(&lines).await);
    }
    for _ in 0..600 {
        w.collect().await;
        if w.queue.is_empty() {
            break;
        }
        let turn = match rng.random_range(0..100) {
            0..55 => Turn::Deliver,
            55..67 => Turn::Duplicate,
            67..77 => Turn::Transient,
            77..82 => Turn::Cancel,
            82..88 => Turn::LoseAnswer,
            88..94 => Turn::Outage,
            _ => Turn::TimePasses,
        };
        let index = rng.random_range(0..w.queue.len());
        match turn {
            Turn::Deliver | Turn::Duplicate => {
                let message = w.queue.remove(index).unwrap();
                if matches!(turn, Turn::Duplicate) {
                    w.queue.push_back(Message { event: message.event.clone(), receives: 0 });
                }
                if let Some(again) = w.deliver(message).await {
                    w.queue.push_back(again);
                }
            }
            // A receive that timed out before it was handled: delivered again later, or
            // dead-lettered after the fifth, as on the queues.
            Turn::Transient => {
                let mut message = w.queue.remove(index).unwrap();
                message.receives += 1;
                if message.receives >= MAX_RECEIVES {
                    w.dead.push(message.event);
                } else {
                    w.queue.push_back(message);
                }
            }
            Turn::Cancel => {
                let id = ids[rng.random_range(0..ids.len())].clone();
                w.cancel(&id).await;
            }
            Turn::LoseAnswer => w.provider.lose_next_answers(1),
            Turn::Outage => w.provider.fail_next(2),
            Turn::TimePasses => {
                tokio::time::sleep((w.step * 5).to_std().unwrap()).await;
                w.saga.0.sweep_once().await.unwrap();
                shop_inventory::app::sweep_once(w.inventory.as_ref()).await.unwrap();
            }
        }
    }
    w.provider.lose_next_answers(0);
    w.provider.fail_next(0);
    w.until_final(&ids, 40).await;
    // Dead letters are for operators; the invariants hold without them.
    w.dead.clear();
    w.assert_money_and_stock_agree(&ids).await;
}

#[tokio::test]
async fn a_compensation_lost_to_the_dead_letter_queue_is_sent_again_until_answered() {
    let mut w = World::new(&[("SKU-A", 5)]).await;
    let id = w.place(&[("SKU-A", 2, 1200)]).await;
    // Up to the confirmed order's commit and capture, both answered.
    w.settle().await;
    let order = w.order(&id).await;
    assert_eq!(order.status, OrderStatus::Shipped, "{order:?}");

    // Another order, cancelled once its stock is committed; its release and void are lost.
    let other = w.place(&[("SKU-A", 1, 800)]).await;
    w.settle_holding(Capture::KIND).await;
    assert!(w.order(&other).await.is_committed());
    assert!(w.cancel(&other).await);
    w.collect().await;
    let lost: Vec<String> = w.queue.drain(..).map(|m| m.event.kind).collect();
    assert!(lost.iter().any(|k| k == "inventory.release.v1") && lost.iter().any(|k| k == Void::KIND), "{lost:?}");
    assert_eq!(w.inventory.get("SKU-A").await.unwrap().unwrap().on_hand, 2, "the units are still out");

    // The compensation deadline passes: what has not answered is sent again, and answered.
    w.until_final(&[id.clone(), other.clone()], 5).await;
    let cancelled = w.order(&other).await;
    assert!(cancelled.is_compensated(), "{cancelled:?}");
    w.assert_money_and_stock_agree(&[id, other]).await;
}

#[tokio::test]
async fn the_audit_of_a_settled_order_repairs_what_a_restored_backup_lost() {
    let mut w = World::new(&[("SKU-A", 5), ("SKU-B", 5)]).await;
    let shipped = w.place(&[("SKU-A", 1, 2500)]).await;
    let cancelled = w.place(&[("SKU-B", 1, 900)]).await;
    // Both confirmed; the second is cancelled before its capture arrives, the first ships.
    let captures = w.settle_holding(Capture::KIND).await;
    assert!(w.cancel(&cancelled).await);
    w.settle().await;
    w.queue.extend(captures);
    w.settle().await;
    assert_eq!(w.order(&shipped).await.status, OrderStatus::Shipped);
    assert!(w.order(&cancelled).await.is_compensated());
    w.assert_money_and_stock_agree(&[shipped.clone(), cancelled.clone()]).await;

    // The payment database is restored from a backup taken while the first payment was only
    // authorized: our records say the money is held, the provider says it was taken.
    let order_id = shipped.clone();
    w.payment_db
        .transaction(move |tx| {
            tx.execute("UPDATE payments SET status = 'authorized', captured = 0 WHERE order_id = ?1", [&order_id])?;
            Ok(())
        })
        .await
        .unwrap();
    // The audit asks again for what each settled order must have: the capture is recorded again
    // (the provider, asked with the same key, does not take the money twice).
    w.until_final(&[shipped.clone(), cancelled.clone()], 4).await;
    let payment = w.payments.by_order(&shipped).await.unwrap().unwrap();
    assert_eq!((payment.status, payment.captured), (PaymentStatus::Captured, 2500));
    for id in [&shipped, &cancelled] {
        let order = w.order(id).await;
        assert!(order.deadline.is_none(), "{id} audited once: {order:?}");
        assert!(!order.history.iter().any(|h| h.reason.as_deref().is_some_and(|r| r.starts_with("audit:"))));
    }
    w.assert_money_and_stock_agree(&[shipped, cancelled]).await;
}

#[tokio::test]
async fn the_audit_reports_a_shipped_order_whose_stock_went_back() {
    let mut w = World::new(&[("SKU-A", 5)]).await;
    let id = w.place(&[("SKU-A", 2, 2500)]).await;
    w.settle().await;
    assert_eq!(w.order(&id).await.status, OrderStatus::Shipped);
    // Behind the saga's back (a mistaken release by hand), the shipped units go back on hand.
    w.inventory.release(&id, "by hand", None).await.unwrap();
    assert_eq!(w.inventory.get("SKU-A").await.unwrap().unwrap().on_hand, 5);
    w.until_final(std::slice::from_ref(&id), 4).await;
    // No command can take back stock that left in a parcel: the order is marked and reported,
    // nothing else moves.
    let order = w.order(&id).await;
    assert_eq!(order.status, OrderStatus::Shipped);
    let marks: Vec<&str> = order.history.iter().filter_map(|h| h.reason.as_deref()).collect();
    assert!(marks.contains(&"audit:no_stock"), "{marks:?}");
    let payment = w.payments.by_order(&id).await.unwrap().unwrap();
    assert_eq!((payment.status, payment.captured), (PaymentStatus::Captured, 5000));
    // Audited once: time passing asks nothing more.
    w.time_passes().await;
    assert!(w.queue.is_empty());
    assert_eq!(w.order(&id).await.history.len(), order.history.len());
}

#[tokio::test]
async fn an_order_left_without_a_deadline_is_found_and_moved_on() {
    let mut w = World::new(&[("SKU-A", 5)]).await;
    let id = w.place(&[("SKU-A", 1, 2500)]).await;
    // The reserve command is lost, and the order (a bug) lost its deadline.
    w.collect().await;
    w.queue.clear();
    let advance = shop_order::store::Advance::default();
    w.orders.advance(&id, &[OrderStatus::Pending], &advance, &[]).await.unwrap().unwrap();
    w.time_passes().await;
    assert_eq!(w.order(&id).await.status, OrderStatus::Pending, "nothing moves an order without a deadline");
    assert_eq!(shop_order::app::reconcile::dead_ends_once(w.orders.as_ref()).await.unwrap(), 1);
    assert_eq!(shop_order::app::reconcile::dead_ends_once(w.orders.as_ref()).await.unwrap(), 0);
    w.until_final(std::slice::from_ref(&id), 6).await;
    assert_eq!(w.order(&id).await.status, OrderStatus::Cancelled);
    w.assert_money_and_stock_agree(&[id]).await;
}

/// The payment reconciler's round, as if every payment had waited past the limit.
async fn reconcile_payments(w: &World) -> shop_payment::app::payments::reconcile::Reconciled {
    w.payment_steps.reconcile_once(chrono::Utc::now() + chrono::Duration::seconds(1)).await.unwrap()
}

#[tokio::test]
async fn the_payment_reconciler_voids_an_authorize_that_never_finished_and_releases_its_hold() {
    let mut w = World::new(&[("SKU-A", 5)]).await;
    let id = w.place(&[("SKU-A", 1, 4200)]).await;
    // The provider authorizes and every answer is lost: the authorize is dead-lettered, and the
    // order's void (it times out) is lost too.
    w.provider.lose_next_answers(MAX_RECEIVES);
    w.settle().await;
    w.dead.clear();
    assert_eq!(w.payments.by_order(&id).await.unwrap().unwrap().status, PaymentStatus::Pending);
    assert_eq!(w.provider.state_for_order(&id), Some(IntentState::Authorized), "a hold on the card");
    assert_eq!(reconcile_payments(&w).await.repaired, 1);
    assert_eq!(w.payments.by_order(&id).await.unwrap().unwrap().status, PaymentStatus::Voided);
    assert_eq!(w.provider.state_for_order(&id), Some(IntentState::Cancelled), "the hold released");
    assert_eq!(reconcile_payments(&w).await, Default::default(), "nothing left to do");
    w.until_final(std::slice::from_ref(&id), 6).await;
    assert_eq!(w.order(&id).await.status, OrderStatus::Cancelled);
    w.assert_money_and_stock_agree(&[id]).await;
}

#[tokio::test]
async fn the_payment_reconciler_records_a_capture_whose_answer_was_lost_and_the_order_ships() {
    let mut w = World::new(&[("SKU-A", 5)]).await;
    let id = w.place(&[("SKU-A", 1, 4200)]).await;
    let captures = w.settle_holding(Capture::KIND).await;
    // The capture reaches the provider, its answer is lost, and the command is lost with it.
    w.provider.lose_next_answers(1);
    w.queue.extend(captures);
    w.collect().await;
    let message = w.queue.pop_front().unwrap();
    assert!(w.deliver(message).await.is_some(), "the capture failed at our side");
    w.queue.clear();
    let payment = w.payments.by_order(&id).await.unwrap().unwrap();
    assert_eq!(payment.status, PaymentStatus::Authorized);
    assert_eq!(w.provider.state_of(payment.provider_ref.as_deref().unwrap()), IntentState::Captured);
    // The reconciler asks the provider, records the capture and answers it: the order ships.
    assert_eq!(reconcile_payments(&w).await.repaired, 1);
    w.settle().await;
    assert_eq!(w.order(&id).await.status, OrderStatus::Shipped);
    w.until_final(std::slice::from_ref(&id), 4).await;
    w.assert_money_and_stock_agree(&[id]).await;
}

#[tokio::test]
async fn the_payment_reconciler_reports_an_authorization_left_open_once() {
    let mut w = World::new(&[("SKU-A", 5)]).await;
    let id = w.place(&[("SKU-A", 1, 4200)]).await;
    let captures = w.settle_holding(Capture::KIND).await;
    assert_eq!(w.payments.by_order(&id).await.unwrap().unwrap().status, PaymentStatus::Authorized);
    // Still held at the provider: whether to capture or void is the order's to say.
    let reported = reconcile_payments(&w).await;
    assert_eq!((reported.repaired, reported.reported), (0, 1));
    assert_eq!(reconcile_payments(&w).await, Default::default(), "reported once");
    assert_eq!(w.payments.by_order(&id).await.unwrap().unwrap().status, PaymentStatus::Authorized);
    w.queue.extend(captures);
    w.settle().await;
    w.until_final(std::slice::from_ref(&id), 4).await;
    assert_eq!(w.order(&id).await.status, OrderStatus::Shipped);
    w.assert_money_and_stock_agree(&[id]).await;
}
