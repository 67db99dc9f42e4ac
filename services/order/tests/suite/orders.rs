//! The order store conformance suite. Each test is a generic function over the port;
//! `conformance_suite!` instantiates it per adapter (the embedded SQLite store here).

use std::sync::Arc;

use chrono::{Duration, Utc};
use platform::address::AddressInput;
use platform::events::Event;
use platform::events::outbox::{OutboxStore, SqliteOutbox};
use platform::money::Money;
use shop_order::domain::order::{HistoryEntry, Order, OrderItem, OrderStatus, stamp};
use shop_order::store::orders::SqliteOrderStore;
use shop_order::store::{Advance, OrderStore, Placed};

struct Stores {
    orders: Arc<dyn OrderStore>,
    outbox: Arc<dyn OutboxStore>,
    _dir: tempfile::TempDir,
}

macro_rules! conformance_suite {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::sqlite_stores()).await;
                }
            )+
        }
    };
}

conformance_suite!(
    an_order_is_placed_once_per_key_with_its_events,
    an_order_moves_only_from_the_statuses_named_and_keeps_its_history,
    a_shoppers_orders_page_newest_first_and_the_queue_oldest_first,
    overdue_orders_are_found_by_their_deadline,
);

fn sqlite_stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = platform::sqlite::Db::open_migrated(dir.path().join("order.db"), shop_order::MIGRATIONS).unwrap();
    Stores { orders: Arc::new(SqliteOrderStore::new(db.clone())), outbox: Arc::new(SqliteOutbox(db)), _dir: dir }
}

fn order(customer: &str, deadline_in: Option<i64>) -> Order {
    let now = stamp(Utc::now());
    Order {
        id: format!("ord_{}", uuid::Uuid::now_v7().simple()),
        customer_id: customer.into(),
        status: OrderStatus::Pending,
        items: vec![OrderItem {
            sku: "A".into(),
            product_id: "p".into(),
            name: "A thing".into(),
            quantity: 2,
            unit_price: Money::new(500, "USD"),
            line_total: Money::new(1000, "USD"),
        }],
        total: Money::new(1000, "USD"),
        shipping_address: AddressInput {
            name: "Ada".into(),
            line1: "1 Main St".into(),
            line2: None,
            city: "Springfield".into(),
            region: None,
            postal_code: "12345".into(),
            country: "US".into(),
        },
        payment_method: "pm_card_visa".into(),
        label_url: None,
        tracking_number: None,
        history: vec![HistoryEntry { status: OrderStatus::Pending, at: now, reason: None }],
        deadline: deadline_in.map(|s| now + Duration::seconds(s)),
        created_at: now,
        updated_at: now,
    }
}

async fn drained(outbox: &dyn OutboxStore) -> Vec<String> {
    let rows = outbox.fetch(100).await.unwrap();
    let seqs: Vec<i64> = rows.iter().map(|(seq, _)| *seq).collect();
    outbox.delete(&seqs).await.unwrap();
    rows.iter().map(|(_, body)| Event::from_json(body).unwrap().kind).collect()
}

async fn an_order_is_placed_once_per_key_with_its_events(s: Stores) {
    let first = order("u1", Some(30));
    let events = [Event::new("order.placed.v1", "order", serde_json::json!({}))];
    assert_eq!(s.orders.place(&first, "k1", "h1", None, &events).await.unwrap(), Placed::New(first.clone()));
    let again = s.orders.place(&order("u1", Some(30)), "k1", "h1", None, &events).await.unwrap();
    assert_eq!(again, Placed::Existing(first.clone()), "the same request: the same order");
    assert_eq!(s.orders.place(&order("u1", None), "k1", "h2", None, &events).await.unwrap(), Placed::KeyReused);
    let other = order("u2", None);
    assert_eq!(
        s.orders.place(&other, "k1", "h9", None, &[]).await.unwrap(),
        Placed::New(other),
        "keys are per shopper"
    );
    assert_eq!(drained(s.outbox.as_ref()).await, ["order.placed.v1"], "events only with the order placed");
    assert_eq!(s.orders.get(&first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(
        s.orders.by_key("u1", "k1").await.unwrap().map(|(o, h)| (o.id, h)),
        Some((first.id.clone(), "h1".into()))
    );
    assert!(s.orders.by_key("u2", "k2").await.unwrap().is_none());
}

async fn an_order_moves_only_from_the_statuses_named_and_keeps_its_history(s: Stores) {
    let placed = order("u1", Some(30));
    s.orders.place(&placed, "k", "h", None, &[]).await.unwrap();
    let reserve = Advance {
        steps: vec![(OrderStatus::Reserved, None)],
        deadline: Some(Utc::now() + Duration::seconds(60)),
        label: None,
    };
    let events = [Event::new("payment.authorize.v1", "order", serde_json::json!({}))];
    let moved = s.orders.advance(&placed.id, &[OrderStatus::Pending], &reserve, &events).await.unwrap().unwrap();
    assert_eq!(moved.status, OrderStatus::Reserved);
    assert!(
        s.orders.advance(&placed.id, &[OrderStatus::Pending], &reserve, &events).await.unwrap().is_none(),
        "moved on"
    );
    assert_eq!(drained(s.outbox.as_ref()).await, ["payment.authorize.v1"], "the repeated move sent nothing");
    let confirm =
        Advance { steps: vec![(OrderStatus::Paid, None), (OrderStatus::Confirmed, None)], deadline: None, label: None };
    s.orders.advance(&placed.id, &[OrderStatus::Reserved], &confirm, &[]).await.unwrap().unwrap();
    let ship = Advance {
        steps: vec![(OrderStatus::Shipped, None)],
        label: Some(("https://files/labels/x.pdf".into(), "SHP000000000001".into())),
        deadline: None,
    };
    let shipped = s.orders.advance(&placed.id, &[OrderStatus::Confirmed], &ship, &[]).await.unwrap().unwrap();
    assert_eq!(s.orders.get(&placed.id).await.unwrap().unwrap(), shipped, "what is returned is what is stored");
    let history: Vec<OrderStatus> = shipped.history.iter().map(|h| h.status).collect();
    assert_eq!(
        history,
        [OrderStatus::Pending, OrderStatus::Reserved, OrderStatus::Paid, OrderStatus::Confirmed, OrderStatus::Shipped]
    );
    assert!(shipped.history.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!((shipped.tracking_number.as_deref(), shipped.deadline), (Some("SHP000000000001"), None));
    assert!(s.orders.advance("ord_none", &[OrderStatus::Pending], &reserve, &[]).await.unwrap().is_none());
}

async fn a_shoppers_orders_page_newest_first_and_the_queue_oldest_first(s: Stores) {
    let mut mine = Vec::new();
    for i in 0..5 {
        let o = order("u1", None);
        s.orders.place(&o, &format!("k{i}"), "h", None, &[]).await.unwrap();
        mine.push(o.id);
    }
    s.orders.place(&order("u2", None), "k", "h", None, &[]).await.unwrap();
    let first = s.orders.by_customer("u1", None, 2).await.unwrap();
    let rest = s.orders.by_customer("u1", Some(&first[1].id), 10).await.unwrap();
    let ids: Vec<String> = first.iter().chain(&rest).map(|o| o.id.clone()).collect();
    mine.reverse();
    assert_eq!(ids, mine, "newest first, every order once");
    let queue = s.orders.by_status(OrderStatus::Pending, None, 3).await.unwrap();
    let tail = s.orders.by_status(OrderStatus::Pending, Some(&queue[2].id), 10).await.unwrap();
    assert_eq!(queue.len() + tail.len(), 6);
    assert!(queue.iter().chain(&tail).collect::<Vec<_>>().windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    assert!(s.orders.by_status(OrderStatus::Shipped, None, 10).await.unwrap().is_empty());
}

async fn overdue_orders_are_found_by_their_deadline(s: Stores) {
    let late = order("u1", Some(-1));
    let later = order("u1", Some(3600));
    let none = order("u1", None);
    for (o, k) in [(&late, "a"), (&later, "b"), (&none, "c")] {
        s.orders.place(o, k, "h", None, &[]).await.unwrap();
    }
    let due: Vec<String> = s.orders.due(Utc::now(), 10).await.unwrap().into_iter().map(|o| o.id).collect();
    assert_eq!(due, std::slice::from_ref(&late.id));
    let settle = Advance { steps: vec![(OrderStatus::Cancelled, Some("timed_out".into()))], ..Advance::default() };
    s.orders.advance(&late.id, &[OrderStatus::Pending], &settle, &[]).await.unwrap().unwrap();
    assert!(s.orders.due(Utc::now(), 10).await.unwrap().is_empty(), "a settled order has no deadline");
    assert_eq!(s.orders.due(Utc::now() + Duration::hours(2), 10).await.unwrap().len(), 1);
}
