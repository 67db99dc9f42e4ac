//! The inventory store conformance suite, run against every adapter.
//!
//! Each test is one generic async function over [`Stores`] (the port and the outbox its writes
//! record events in, as the relay reads it); `conformance_suite!` instantiates it once per adapter,
//! as `conformance::sqlite::<test>` (a fresh database file) and `conformance::dynamodb::<test>`
//! (fresh tables with a unique prefix on the moto server that `eval "$(scripts/dev-deps)"`
//! starts; without `SHOP_TEST_AWS_ENDPOINT` these skip on a laptop and fail under `CI=true`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{Duration, Utc};
use platform::contracts::inventory::{Changed, Line, Rejected, Released, Reserved, Shortage, ThresholdCrossed};
use platform::events::Event;
use platform::events::outbox::{OutboxStore, SqliteOutbox};
use shop_inventory::domain::{LedgerKind, ReservationStatus, Stock};
use shop_inventory::store::dynamodb::DynamoInventoryStore;
use shop_inventory::store::sqlite::SqliteInventoryStore;
use shop_inventory::store::{InventoryStore, MAX_ON_HAND, StoreError};

/// One adapter's store and the outbox its writes record events in.
pub struct Stores {
    pub store: Arc<dyn InventoryStore>,
    pub outbox: Arc<dyn OutboxStore>,
    /// Keeps the SQLite database's directory alive for the test.
    _dir: Option<tempfile::TempDir>,
}

/// Instantiates each generic test for each adapter.
macro_rules! conformance_suite {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(super::sqlite_stores()).await;
                }
            )+
        }

        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let Some(stores) = super::dynamodb_stores().await else { return };
                    super::$test(stores).await;
                }
            )+
        }
    };
}

conformance_suite!(
    stock_is_set_and_adjusted_with_a_ledger_that_adds_up_to_the_units_on_hand,
    refused_admin_writes_change_nothing,
    a_reservation_holds_every_line_or_none_and_names_the_short_skus,
    every_command_is_idempotent_per_order,
    commit_takes_units_off_hand_and_a_later_release_returns_them,
    an_expired_reservation_returns_its_stock_exactly_once,
    two_hundred_concurrent_reservations_of_ten_units_hold_exactly_ten,
    every_change_has_its_events_and_threshold_crossings_are_announced_once,
    the_listing_pages_through_every_sku_and_the_low_stock_ones,
);

pub fn sqlite_stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) =
        platform::sqlite::Db::open_migrated(dir.path().join("inventory.db"), shop_inventory::MIGRATIONS).unwrap();
    Stores {
        store: Arc::new(SqliteInventoryStore::new(db.clone())),
        outbox: Arc::new(SqliteOutbox(db)),
        _dir: Some(dir),
    }
}

pub async fn dynamodb_stores() -> Option<Stores> {
    let client = platform::testing::dynamodb_client()?;
    let prefix = format!("t-{}-", uuid::Uuid::new_v4().simple());
    let inventory = DynamoInventoryStore::new(client, &prefix);
    inventory.create_tables().await.unwrap();
    Some(Stores { outbox: Arc::new(inventory.outbox()), store: Arc::new(inventory), _dir: None })
}

fn line(sku: &str, quantity: i64) -> Line {
    Line { sku: sku.into(), quantity }
}

fn later() -> chrono::DateTime<Utc> {
    Utc::now() + Duration::minutes(15)
}

async fn stock(stores: &Stores, sku: &str) -> Stock {
    stores.store.get(sku).await.unwrap().unwrap_or_else(|| panic!("{sku} is unknown"))
}

/// (on hand, reserved, available) of `sku`.
async fn levels(stores: &Stores, sku: &str) -> (i64, i64, i64) {
    let s = stock(stores, sku).await;
    (s.on_hand, s.reserved, s.available())
}

/// Everything in the outbox, as the relay would publish it, removed from it.
pub async fn drain(stores: &Stores) -> Vec<Event> {
    platform::events::outbox::waiting_events(stores.outbox.as_ref(), true).await.unwrap()
}

fn kinds(events: &[Event]) -> Vec<&str> {
    let mut kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds
}

async fn stock_is_set_and_adjusted_with_a_ledger_that_adds_up_to_the_units_on_hand(stores: Stores) {
    let s = &stores.store;
    assert!(s.get("SKU-A").await.unwrap().is_none());
    let created = s.set("SKU-A", 10, Some(2), "opening count", "admin-1").await.unwrap();
    assert_eq!((created.on_hand, created.reserved, created.low_stock_threshold), (10, 0, 2));
    let set = s.set("SKU-A", 7, None, "cycle count", "admin-1").await.unwrap();
    assert_eq!(set.low_stock_threshold, 2, "an absent threshold keeps the one set");
    assert!(set.version > created.version);
    s.adjust("SKU-A", 5, "received PO-1", "admin-2").await.unwrap();
    let adjusted = s.adjust("SKU-A", -3, "damaged", "admin-2").await.unwrap();
    assert_eq!(adjusted.on_hand, 9);
    assert_eq!(stock(&stores, "SKU-A").await, adjusted);

    let ledger = s.ledger("SKU-A", None, 100).await.unwrap();
    let summary: Vec<(LedgerKind, i64, &str, &str)> =
        ledger.iter().map(|e| (e.kind, e.delta, e.reason.as_str(), e.reference.as_str())).collect();
    assert_eq!(
        summary,
        vec![
            (LedgerKind::Adjust, -3, "damaged", "admin-2"),
            (LedgerKind::Adjust, 5, "received PO-1", "admin-2"),
            (LedgerKind::Set, -3, "cycle count", "admin-1"),
            (LedgerKind::Set, 10, "opening count", "admin-1"),
        ]
    );
    assert_eq!(ledger.iter().map(|e| e.delta).sum::<i64>(), 9, "the ledger adds up to the units on hand");
    assert!(ledger.windows(2).all(|w| w[0].seq > w[1].seq), "newest first");
    // Pages go on before the last entry seen.
    let first = s.ledger("SKU-A", None, 2).await.unwrap();
    let rest = s.ledger("SKU-A", Some(first[1].seq), 10).await.unwrap();
    assert_eq!(first.iter().chain(&rest).cloned().collect::<Vec<_>>(), ledger);
    // Setting the same level again records nothing.
    s.set("SKU-A", 9, None, "recount", "admin-1").await.unwrap();
    assert_eq!(s.ledger("SKU-A", None, 100).await.unwrap().len(), 4);
}

async fn refused_admin_writes_change_nothing(stores: Stores) {
    let s = &stores.store;
    assert!(matches!(s.adjust("NOPE", 1, "x", "a").await, Err(StoreError::UnknownSku(sku)) if sku == "NOPE"));
    assert!(s.get("NOPE").await.unwrap().is_none(), "an adjustment never creates a SKU");
    s.set("SKU-A", 10, None, "count", "a").await.unwrap();
    s.reserve("o1", &[line("SKU-A", 4)], later(), None).await.unwrap();
    let before = stock(&stores, "SKU-A").await;
    let ledger = s.ledger("SKU-A", None, 100).await.unwrap();
    drain(&stores).await;

    let below = s.set("SKU-A", 3, None, "count", "a").await;
    assert!(matches!(below, Err(StoreError::BelowReserved { on_hand: 3, reserved: 4, .. })), "{below:?}");
    let below = s.adjust("SKU-A", -7, "lost", "a").await;
    assert!(matches!(below, Err(StoreError::BelowReserved { on_hand: 3, reserved: 4, .. })), "{below:?}");
    assert!(matches!(s.set("SKU-B", -1, None, "count", "a").await, Err(StoreError::BelowReserved { .. })));
    let too_many = s.set("SKU-A", MAX_ON_HAND + 1, None, "count", "a").await;
    assert!(matches!(too_many, Err(StoreError::TooMany { .. })), "{too_many:?}");
    let too_many = s.adjust("SKU-A", MAX_ON_HAND, "found a warehouse", "a").await;
    assert!(matches!(too_many, Err(StoreError::TooMany { .. })), "{too_many:?}");
    let overflow = s.adjust("SKU-A", i64::MAX, "found a warehouse", "a").await;
    assert!(matches!(overflow, Err(StoreError::TooMany { .. })), "{overflow:?}");

    assert_eq!(stock(&stores, "SKU-A").await, before);
    assert!(s.get("SKU-B").await.unwrap().is_none());
    assert_eq!(s.ledger("SKU-A", None, 100).await.unwrap(), ledger);
    assert!(drain(&stores).await.is_empty(), "a refused write publishes nothing");
    // Down to exactly the reserved units is fine.
    assert_eq!(s.adjust("SKU-A", -6, "lost", "a").await.unwrap().available(), 0);
}

async fn a_reservation_holds_every_line_or_none_and_names_the_short_skus(stores: Stores) {
    let s = &stores.store;
    s.set("SKU-A", 5, None, "count", "a").await.unwrap();
    s.set("SKU-B", 1, None, "count", "a").await.unwrap();
    drain(&stores).await;

    let rejected =
        s.reserve("o1", &[line("SKU-A", 2), line("SKU-B", 2), line("SKU-X", 1)], later(), None).await.unwrap();
    assert!(rejected.changed);
    assert_eq!(rejected.reservation.status, ReservationStatus::Rejected);
    assert_eq!(
        rejected.reservation.short,
        vec![
            Shortage { sku: "SKU-B".into(), requested: 2, available: 1 },
            Shortage { sku: "SKU-X".into(), requested: 1, available: 0 },
        ]
    );
    assert_eq!(levels(&stores, "SKU-A").await, (5, 0, 5), "nothing is held when a line is short");
    assert_eq!(levels(&stores, "SKU-B").await, (1, 0, 1));
    let events = drain(&stores).await;
    assert_eq!(kinds(&events), ["inventory.rejected.v1"]);
    let answer: Rejected = events[0].data_as().unwrap();
    assert_eq!((answer.order_id.as_str(), answer.short.len()), ("o1", 2));

    let expires_at = later();
    let held =
        s.reserve("o2", &[line("SKU-A", 1), line("SKU-B", 1), line("SKU-A", 1)], expires_at, None).await.unwrap();
    assert_eq!(held.reservation.status, ReservationStatus::Held);
    assert_eq!(held.reservation.lines, vec![line("SKU-A", 2), line("SKU-B", 1)], "lines of one SKU merge");
    assert_eq!(levels(&stores, "SKU-A").await, (5, 2, 3));
    assert_eq!(levels(&stores, "SKU-B").await, (1, 1, 0));
    let stored = s.reservation("o2").await.unwrap().unwrap();
    assert_eq!(stored.expires_at.timestamp_millis(), expires_at.timestamp_millis());
    assert_eq!((stored.status, stored.lines.len()), (ReservationStatus::Held, 2));
    let events = drain(&stores).await;
    let reserved: Vec<Reserved> =
        events.iter().filter(|e| e.kind == Reserved::KIND).map(|e| e.data_as().unwrap()).collect();
    assert_eq!(reserved.len(), 1);
    assert_eq!(reserved[0].lines, held.reservation.lines);
    assert!(s.reservation("o-none").await.unwrap().is_none());
}

async fn every_command_is_idempotent_per_order(stores: Stores) {
    let s = &stores.store;
    s.set("SKU-A", 10, None, "count", "a").await.unwrap();
    let cause = Event::new("inventory.reserve.v1", "order", serde_json::json!({}));
    let first = s.reserve("o1", &[line("SKU-A", 3)], later(), Some(&cause)).await.unwrap();
    assert!(first.changed);
    drain(&stores).await;

    // The same command again, and even one with other lines: the order's reservation stands.
    let again = s.reserve("o1", &[line("SKU-A", 3)], later(), Some(&cause)).await.unwrap();
    assert!(!again.changed);
    assert_eq!(again.reservation, first.reservation);
    assert!(!s.reserve("o1", &[line("SKU-A", 9)], later(), None).await.unwrap().changed);
    assert_eq!(levels(&stores, "SKU-A").await, (10, 3, 7));
    assert!(drain(&stores).await.is_empty(), "a redelivered reserve publishes nothing");

    assert!(s.commit("o1", None).await.unwrap().unwrap().changed);
    let repeated = s.commit("o1", None).await.unwrap().unwrap();
    assert!(!repeated.changed);
    assert_eq!(repeated.reservation.status, ReservationStatus::Committed);
    assert_eq!(levels(&stores, "SKU-A").await, (7, 0, 7));
    drain(&stores).await;

    assert!(s.release("o1", "cancelled", None).await.unwrap().changed);
    let repeated = s.release("o1", "cancelled", None).await.unwrap();
    assert!(!repeated.changed);
    assert_eq!(repeated.reservation.status, ReservationStatus::Returned);
    assert_eq!(levels(&stores, "SKU-A").await, (10, 0, 10));
    assert!(s.commit("o1", None).await.unwrap().is_some_and(|o| !o.changed), "a returned order stays returned");
    let events = drain(&stores).await;
    assert_eq!(events.iter().filter(|e| e.kind == Released::KIND).count(), 1);

    // A release that overtakes its reserve is remembered: the late reserve holds nothing.
    let early = s.release("o2", "timed_out", None).await.unwrap();
    assert!(early.changed);
    assert_eq!((early.reservation.status, early.reservation.lines.len()), (ReservationStatus::Released, 0));
    let late = s.reserve("o2", &[line("SKU-A", 1)], later(), None).await.unwrap();
    assert!(!late.changed);
    assert_eq!(late.reservation.status, ReservationStatus::Released);
    assert_eq!(levels(&stores, "SKU-A").await, (10, 0, 10));
    assert!(s.commit("o-unknown", None).await.unwrap().is_none());
    drain(&stores).await;

    // Every answer carries the correlation of the command that caused it.
    s.reserve("o3", &[line("SKU-A", 1)], later(), Some(&cause)).await.unwrap();
    let events = drain(&stores).await;
    assert!(events.iter().any(|e| e.kind == Reserved::KIND));
    assert!(events.iter().all(|e| e.correlationid.as_deref() == Some(cause.id.as_str())), "{events:?}");
}

async fn commit_takes_units_off_hand_and_a_later_release_returns_them(stores: Stores) {
    let s = &stores.store;
    s.set("SKU-A", 10, None, "count", "a").await.unwrap();
    s.set("SKU-B", 4, None, "count", "a").await.unwrap();
    s.reserve("o1", &[line("SKU-A", 3), line("SKU-B", 4)], later(), None).await.unwrap();
    let committed = s.commit("o1", None).await.unwrap().unwrap();
    assert_eq!(committed.reservation.status, ReservationStatus::Committed);
    assert_eq!(levels(&stores, "SKU-A").await, (7, 0, 7));
    assert_eq!(levels(&stores, "SKU-B").await, (0, 0, 0));
    let sale = &s.ledger("SKU-A", None, 1).await.unwrap()[0];
    assert_eq!((sale.kind, sale.delta, sale.reference.as_str()), (LedgerKind::Sale, -3, "o1"));

    let returned = s.release("o1", "cancelled", None).await.unwrap();
    assert_eq!(returned.reservation.status, ReservationStatus::Returned);
    assert_eq!(returned.reservation.release_reason.as_deref(), Some("cancelled"));
    assert_eq!(levels(&stores, "SKU-A").await, (10, 0, 10));
    assert_eq!(levels(&stores, "SKU-B").await, (4, 0, 4));
    let back = &s.ledger("SKU-B", None, 1).await.unwrap()[0];
    assert_eq!((back.kind, back.delta, back.reason.as_str()), (LedgerKind::Return, 4, "cancelled"));
    for sku in ["SKU-A", "SKU-B"] {
        let sum: i64 = s.ledger(sku, None, 100).await.unwrap().iter().map(|e| e.delta).sum();
        assert_eq!(sum, stock(&stores, sku).await.on_hand, "{sku}'s ledger adds up");
    }

    // A released reservation cannot be committed.
    s.reserve("o2", &[line("SKU-A", 2)], later(), None).await.unwrap();
    let released = s.release("o2", "payment_failed", None).await.unwrap();
    assert_eq!(released.reservation.status, ReservationStatus::Released);
    assert_eq!(levels(&stores, "SKU-A").await, (10, 0, 10));
    let refused = s.commit("o2", None).await.unwrap().unwrap();
    assert!(!refused.changed);
    assert_eq!(refused.reservation.status, ReservationStatus::Released);
    assert_eq!(levels(&stores, "SKU-A").await, (10, 0, 10));
}

async fn an_expired_reservation_returns_its_stock_exactly_once(stores: Stores) {
    let s = &stores.store;
    s.set("SKU-A", 5, None, "count", "a").await.unwrap();
    let past = Utc::now() - Duration::seconds(1);
    s.reserve("o-old", &[line("SKU-A", 2)], past, None).await.unwrap();
    s.reserve("o-new", &[line("SKU-A", 1)], later(), None).await.unwrap();
    assert_eq!(levels(&stores, "SKU-A").await, (5, 3, 2));
    drain(&stores).await;

    // Two sweepers at once: the reservation is released by one of them.
    let now = Utc::now();
    let (a, b) = tokio::join!(s.expire(now, 100), s.expire(now, 100));
    let expired: Vec<_> = a.unwrap().into_iter().chain(b.unwrap()).collect();
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!(expired[0].order_id, "o-old");
    assert_eq!(expired[0].release_reason.as_deref(), Some("expired"));
    assert_eq!(levels(&stores, "SKU-A").await, (5, 1, 4));
    assert!(s.expire(Utc::now(), 100).await.unwrap().is_empty());
    assert_eq!(levels(&stores, "SKU-A").await, (5, 1, 4), "the stock came back once");

    let events = drain(&stores).await;
    let released: Vec<Released> =
        events.iter().filter(|e| e.kind == Released::KIND).map(|e| e.data_as().unwrap()).collect();
    assert_eq!(released.len(), 1);
    assert_eq!((released[0].order_id.as_str(), released[0].reason.as_str()), ("o-old", "expired"));

    // An expired reservation is not committed.
    let late = s.commit("o-old", None).await.unwrap().unwrap();
    assert_eq!((late.changed, late.reservation.status), (false, ReservationStatus::Released));
    // A committed one never expires.
    s.commit("o-new", None).await.unwrap();
    assert!(s.expire(Utc::now() + Duration::hours(1), 100).await.unwrap().is_empty());
    assert_eq!(levels(&stores, "SKU-A").await, (4, 0, 4));
}

async fn two_hundred_concurrent_reservations_of_ten_units_hold_exactly_ten(stores: Stores) {
    stores.store.set("HOT", 10, None, "count", "a").await.unwrap();
    drain(&stores).await;
    let racers: Vec<_> = (0..200)
        .map(|i| {
            let store = stores.store.clone();
            tokio::spawn(async move { store.reserve(&format!("race-{i}"), &[line("HOT", 1)], later(), None).await })
        })
        .collect();
    let mut by_status: HashMap<ReservationStatus, usize> = HashMap::new();
    for racer in racers {
        let outcome = racer.await.unwrap().unwrap();
        assert!(outcome.changed);
        *by_status.entry(outcome.reservation.status).or_default() += 1;
    }
    assert_eq!(by_status.get(&ReservationStatus::Held), Some(&10), "{by_status:?}");
    assert_eq!(by_status.get(&ReservationStatus::Rejected), Some(&190), "{by_status:?}");
    assert_eq!(levels(&stores, "HOT").await, (10, 10, 0));

    let events = drain(&stores).await;
    assert_eq!(events.iter().filter(|e| e.kind == Reserved::KIND).count(), 10);
    assert_eq!(events.iter().filter(|e| e.kind == Rejected::KIND).count(), 190);
    for changed in events.iter().filter(|e| e.kind == Changed::KIND) {
        let changed: Changed = changed.data_as().unwrap();
        assert!(changed.available >= 0 && changed.reserved <= changed.on_hand, "{changed:?}");
    }
    let low: Vec<&Event> = events.iter().filter(|e| e.kind == ThresholdCrossed::LOW_STOCK).collect();
    assert_eq!(low.len(), 1, "the SKU ran out once");
}

async fn every_change_has_its_events_and_threshold_crossings_are_announced_once(stores: Stores) {
    let s = &stores.store;
    let changed_of = |events: &[Event]| -> Vec<Changed> {
        events.iter().filter(|e| e.kind == Changed::KIND).map(|e| e.data_as().unwrap()).collect()
    };
    s.set("SKU-A", 5, Some(2), "count", "a").await.unwrap();
    let events = drain(&stores).await;
    assert_eq!(kinds(&events), ["inventory.changed.v1"]);
    let first = &changed_of(&events)[0];
    assert_eq!((first.sku.as_str(), first.available, first.on_hand, first.reserved), ("SKU-A", 5, 5, 0));

    s.reserve("o1", &[line("SKU-A", 2)], later(), None).await.unwrap();
    let events = drain(&stores).await;
    assert_eq!(kinds(&events), ["inventory.changed.v1", "inventory.reserved.v1"], "3 left: above the threshold");
    let changed = &changed_of(&events)[0];
    assert_eq!((changed.available, changed.reserved), (3, 2));
    assert!(changed.version > first.version);

    s.reserve("o2", &[line("SKU-A", 1)], later(), None).await.unwrap();
    let events = drain(&stores).await;
    assert_eq!(kinds(&events), ["inventory.changed.v1", "inventory.low_stock.v1", "inventory.reserved.v1"]);
    let low: ThresholdCrossed =
        events.iter().find(|e| e.kind == ThresholdCrossed::LOW_STOCK).unwrap().data_as().unwrap();
    assert_eq!(low, ThresholdCrossed { sku: "SKU-A".into(), threshold: 2 });

    s.reserve("o3", &[line("SKU-A", 1)], later(), None).await.unwrap();
    let events = drain(&stores).await;
    assert_eq!(kinds(&events), ["inventory.changed.v1", "inventory.reserved.v1"], "still low: no second alert");

    s.release("o1", "payment_failed", None).await.unwrap();
    let events = drain(&stores).await;
    assert_eq!(kinds(&events), ["inventory.changed.v1", "inventory.released.v1", "inventory.restocked.v1"]);
    assert_eq!(changed_of(&events)[0].available, 3);

    s.commit("o2", None).await.unwrap();
    let events = drain(&stores).await;
    assert_eq!(kinds(&events), ["inventory.changed.v1", "inventory.committed.v1"], "a commit leaves available as is");
    let changed = &changed_of(&events)[0];
    assert_eq!((changed.on_hand, changed.reserved, changed.available), (4, 1, 3));

    s.adjust("SKU-A", -1, "damaged", "a").await.unwrap();
    let events = drain(&stores).await;
    assert_eq!(kinds(&events), ["inventory.changed.v1", "inventory.low_stock.v1"]);
    s.set("SKU-A", 10, None, "count", "a").await.unwrap();
    let events = drain(&stores).await;
    assert_eq!(kinds(&events), ["inventory.changed.v1", "inventory.restocked.v1"]);
    assert_eq!(changed_of(&events)[0].available, 9);
    for event in &events {
        assert_eq!(event.subject.as_deref(), Some("SKU-A"));
        assert_eq!(event.source, "/services/inventory");
    }
}

async fn the_listing_pages_through_every_sku_and_the_low_stock_ones(stores: Stores) {
    let s = &stores.store;
    for (i, (on_hand, threshold)) in [(10, 2), (2, 2), (0, 0), (5, 1), (1, 3), (7, 0), (3, 3)].into_iter().enumerate() {
        s.set(&format!("SKU-{i}"), on_hand, Some(threshold), "count", "a").await.unwrap();
    }
    s.reserve("o1", &[line("SKU-3", 4)], later(), None).await.unwrap(); // 1 left of 5, threshold 1: low

    async fn collect(s: &dyn InventoryStore, low_only: bool, page: usize) -> (BTreeSet<String>, usize) {
        let mut seen = BTreeSet::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let items = s.list(low_only, after.as_deref(), page).await.unwrap();
            pages += 1;
            assert!(items.len() <= page);
            for stock in &items {
                assert!(!low_only || stock.is_low(), "{stock:?}");
                assert!(seen.insert(stock.sku.clone()), "{} listed twice", stock.sku);
            }
            if items.len() < page {
                return (seen, pages);
            }
            after = items.last().map(|s| s.sku.clone());
        }
    }
    let expected_low: BTreeSet<String> = ["SKU-1", "SKU-2", "SKU-3", "SKU-4", "SKU-6"].map(String::from).into();
    let (low, pages) = collect(s.as_ref(), true, 2).await;
    assert_eq!(low, expected_low);
    assert!(pages >= 3);
    let (all, _) = collect(s.as_ref(), false, 3).await;
    assert_eq!(all.len(), 7);
    assert_eq!(collect(s.as_ref(), false, 100).await.0, all);
}

/// The sweeper lists expired holds from an eventually consistent index, so it may act on a
/// reservation that was committed (or released) after the index listed it: that one is left alone.
#[tokio::test]
async fn dynamodb_the_sweeper_leaves_a_reservation_that_moved_on_after_it_was_listed() {
    let Some(client) = platform::testing::dynamodb_client() else { return };
    let inventory = DynamoInventoryStore::new(client, &format!("t-{}-", uuid::Uuid::new_v4().simple()));
    inventory.create_tables().await.unwrap();
    let stores = Stores { store: Arc::new(inventory.clone()), outbox: Arc::new(inventory.outbox()), _dir: None };
    let s = &stores.store;
    s.set("SKU-A", 5, None, "count", "a").await.unwrap();
    let past = Utc::now() - Duration::seconds(1);
    s.reserve("o-committed", &[line("SKU-A", 2)], past, None).await.unwrap();
    s.reserve("o-released", &[line("SKU-A", 1)], past, None).await.unwrap();
    s.reserve("o-current", &[line("SKU-A", 1)], later(), None).await.unwrap();
    s.commit("o-committed", None).await.unwrap();
    s.release("o-released", "payment_failed", None).await.unwrap();
    let before = stock(&stores, "SKU-A").await;
    let ledger = s.ledger("SKU-A", None, 100).await.unwrap();

    for order in ["o-committed", "o-released", "o-current", "o-none"] {
        assert_eq!(inventory.expire_order(order, Utc::now()).await.unwrap(), None, "{order}");
    }
    assert_eq!(stock(&stores, "SKU-A").await, before, "no units moved");
    assert_eq!(s.ledger("SKU-A", None, 100).await.unwrap(), ledger, "no return was booked");
    assert_eq!(s.reservation("o-committed").await.unwrap().unwrap().status, ReservationStatus::Committed);
    assert_eq!(s.reservation("o-current").await.unwrap().unwrap().status, ReservationStatus::Held);
}
