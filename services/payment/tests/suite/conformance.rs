//! The payment store conformance suite, run against every adapter: `conformance::sqlite::<test>`
//! (a fresh database file) and `conformance::postgres::<test>` (a fresh schema of the database
//! `eval "$(scripts/dev-deps)"` starts; without `SHOP_TEST_DATABASE_URL` these skip on a laptop
//! and fail under `CI=true`).

use std::sync::Arc;

use chrono::Utc;
use platform::events::Event;
use platform::events::outbox::{OutboxStore, SqliteOutbox};
use platform::money::Money;
use platform::testing::PgSchema;
use shop_payment::domain::payment::{Failure, NewPayment, PaymentStatus, Refund, RefundStatus, Transition, stamp};
use shop_payment::store::postgres::PgPaymentStore;
use shop_payment::store::sqlite::SqlitePaymentStore;
use shop_payment::store::{KeyClaim, PaymentStore, RefundOutcome, StoreError};

/// One adapter's store and its outbox.
pub struct Stores {
    pub store: Arc<dyn PaymentStore>,
    pub outbox: Arc<dyn OutboxStore>,
    _dir: Option<tempfile::TempDir>,
    schema: Option<PgSchema>,
}

impl Stores {
    async fn done(self) {
        if let Some(schema) = &self.schema {
            schema.drop().await;
        }
    }
}

macro_rules! conformance_suite {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let stores = super::sqlite_stores();
                    super::$test(&stores).await;
                    stores.done().await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let Some(stores) = super::postgres_stores().await else { return };
                    super::$test(&stores).await;
                    stores.done().await;
                }
            )+
        }
    };
}

conformance_suite!(
    an_order_has_one_payment_and_its_creation_is_logged,
    a_transition_applies_only_from_the_states_named_with_its_log_entry_and_events,
    refunds_never_exceed_the_capture_and_a_refused_one_gives_its_amount_back,
    concurrent_refunds_together_never_exceed_the_capture,
    a_refund_computed_from_the_payment_as_read_is_recorded_once_across_replicas,
    payments_left_waiting_are_found_the_longest_waiting_first,
    idempotency_keys_answer_the_same_request_and_refuse_another,
    webhook_events_are_recorded_once,
);

pub fn sqlite_stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = platform::sqlite::Db::open_migrated(dir.path().join("payment.db"), shop_payment::MIGRATIONS).unwrap();
    Stores {
        store: Arc::new(SqlitePaymentStore::new(db.clone())),
        outbox: Arc::new(SqliteOutbox(db)),
        _dir: Some(dir),
        schema: None,
    }
}

async fn postgres_stores() -> Option<Stores> {
    let schema = PgSchema::create().await?;
    platform::postgres::migrate(&schema.pool, platform::postgres::PLATFORM_MIGRATIONS).await.unwrap();
    platform::postgres::migrate(&schema.pool, shop_payment::store::postgres::MIGRATIONS).await.unwrap();
    Some(Stores {
        store: Arc::new(PgPaymentStore::new(schema.pool.clone())),
        outbox: Arc::new(platform::postgres::PgOutbox(schema.pool.clone())),
        _dir: None,
        schema: Some(schema),
    })
}

pub fn new_payment(order_id: &str, amount: i64) -> NewPayment {
    NewPayment {
        order_id: order_id.into(),
        customer_id: "user-1".into(),
        amount: Money::new(amount, "USD"),
        payment_method: "pm_card_visa".into(),
        provider: "simulated".into(),
    }
}

/// Everything in the outbox, removed from it.
pub async fn drain(outbox: &dyn OutboxStore) -> Vec<Event> {
    platform::events::outbox::waiting_events(outbox, true).await.unwrap()
}

fn event(kind: &str) -> Event {
    Event::new(kind, "payment", serde_json::json!({}))
}

/// A payment of `amount` captured in full.
async fn captured(stores: &Stores, order_id: &str, amount: i64) -> String {
    let (payment, _) = stores.store.open(&new_payment(order_id, amount), PaymentStatus::Pending).await.unwrap();
    let mut authorize = Transition::new(PaymentStatus::Authorized, "authorized", amount);
    authorize.provider_ref = Some(format!("pi_{order_id}"));
    stores.store.transition(&payment.id, &[PaymentStatus::Pending], &authorize, &[]).await.unwrap().unwrap();
    let mut capture = Transition::new(PaymentStatus::Captured, "captured", amount);
    capture.captured = amount;
    stores.store.transition(&payment.id, &[PaymentStatus::Authorized], &capture, &[]).await.unwrap().unwrap();
    payment.id
}

fn refund(payment_id: &str, id: &str, amount: i64) -> Refund {
    Refund {
        id: id.into(),
        payment_id: payment_id.into(),
        amount: Money::new(amount, "USD"),
        status: RefundStatus::Pending,
        provider_ref: None,
        reason: "requested by customer".into(),
        created_at: stamp(Utc::now()),
    }
}

async fn an_order_has_one_payment_and_its_creation_is_logged(stores: &Stores) {
    let s = &stores.store;
    let (first, created) = s.open(&new_payment("o1", 1999), PaymentStatus::Pending).await.unwrap();
    assert!(created);
    assert_eq!((first.status, first.amount.amount, first.captured), (PaymentStatus::Pending, 1999, 0));
    let (again, created) = s.open(&new_payment("o1", 5000), PaymentStatus::Pending).await.unwrap();
    assert!(!created);
    assert_eq!(again, first, "the order's payment stands");
    assert_eq!(s.get(&first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(s.by_order("o1").await.unwrap(), Some(first.clone()));
    assert!(s.by_order("o2").await.unwrap().is_none());
    let log = s.log(&first.id).await.unwrap();
    assert_eq!(log.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["created"]);
    // Concurrent opens of one order make one payment.
    let opens: Vec<_> = (0..10)
        .map(|_| {
            let store = s.clone();
            tokio::spawn(async move { store.open(&new_payment("o-race", 100), PaymentStatus::Pending).await.unwrap() })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    let mut made = 0;
    for open in opens {
        let (payment, created) = open.await.unwrap();
        ids.insert(payment.id);
        made += usize::from(created);
    }
    assert_eq!((ids.len(), made), (1, 1));
}

async fn a_transition_applies_only_from_the_states_named_with_its_log_entry_and_events(stores: &Stores) {
    let s = &stores.store;
    let (payment, _) = s.open(&new_payment("o1", 1999), PaymentStatus::Pending).await.unwrap();
    drain(stores.outbox.as_ref()).await;
    let mut authorize = Transition::new(PaymentStatus::Authorized, "authorized", 1999);
    authorize.provider_ref = Some("pi_123".into());
    let authorized = s
        .transition(&payment.id, &[PaymentStatus::Pending], &authorize, &[event("payment.authorized.v1")])
        .await
        .unwrap();
    let authorized = authorized.expect("moved from pending");
    assert_eq!((authorized.status, authorized.provider_ref.as_deref()), (PaymentStatus::Authorized, Some("pi_123")));
    assert!(authorized.updated_at >= payment.updated_at);
    // The same move again finds the payment moved on, and changes nothing.
    let again = s.transition(&payment.id, &[PaymentStatus::Pending], &authorize, &[event("x.v1")]).await.unwrap();
    assert!(again.is_none());
    assert!(s.transition("pay_none", &[PaymentStatus::Pending], &authorize, &[]).await.unwrap().is_none());
    let events = drain(stores.outbox.as_ref()).await;
    assert_eq!(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["payment.authorized.v1"]);
    assert_eq!(s.by_provider_ref("pi_123").await.unwrap().unwrap().id, payment.id);

    let mut fail = Transition::new(PaymentStatus::Failed, "failed", 1999);
    fail.failure = Some(Failure { code: "card_declined".into(), decline_code: Some("x".into()), message: "no".into() });
    assert!(s.transition(&payment.id, &[PaymentStatus::Pending], &fail, &[]).await.unwrap().is_none());
    let mut capture = Transition::new(PaymentStatus::Captured, "captured", 1999);
    capture.captured = 1999;
    let captured = s.transition(&payment.id, &[PaymentStatus::Authorized], &capture, &[]).await.unwrap().unwrap();
    assert_eq!((captured.status, captured.captured, captured.refundable()), (PaymentStatus::Captured, 1999, 1999));
    assert_eq!(s.get(&payment.id).await.unwrap().unwrap(), captured, "what is returned is what is stored");

    let log = s.log(&payment.id).await.unwrap();
    let kinds: Vec<(&str, PaymentStatus)> = log.iter().map(|e| (e.kind.as_str(), e.status)).collect();
    assert_eq!(
        kinds,
        [
            ("created", PaymentStatus::Pending),
            ("authorized", PaymentStatus::Authorized),
            ("captured", PaymentStatus::Captured),
        ]
    );
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(log[1].provider_ref.as_deref(), Some("pi_123"));

    // A refused authorization keeps its reason.
    let (other, _) = s.open(&new_payment("o2", 500), PaymentStatus::Pending).await.unwrap();
    let failed = s.transition(&other.id, &[PaymentStatus::Pending], &fail, &[]).await.unwrap().unwrap();
    assert_eq!(failed.failure.as_ref().map(|f| f.code.as_str()), Some("card_declined"));
    assert_eq!(s.get(&other.id).await.unwrap().unwrap().failure, failed.failure);
}

async fn refunds_never_exceed_the_capture_and_a_refused_one_gives_its_amount_back(stores: &Stores) {
    let s = &stores.store;
    let id = captured(stores, "o1", 1000).await;
    drain(stores.outbox.as_ref()).await;
    let after = s.refund(&refund(&id, "re_1", 600), None, &[]).await.unwrap();
    assert_eq!((after.status, after.refunded, after.refundable()), (PaymentStatus::PartiallyRefunded, 600, 400));
    assert!(matches!(
        s.refund(&refund(&id, "re_2", 401), None, &[]).await,
        Err(StoreError::NotRefundable { refundable: 400 })
    ));
    assert!(matches!(s.refund(&refund(&id, "re_3", 0), None, &[]).await, Err(StoreError::NotRefundable { .. })));
    assert!(matches!(s.refund(&refund("pay_none", "re_4", 1), None, &[]).await, Err(StoreError::UnknownPayment(_))));
    assert!(drain(stores.outbox.as_ref()).await.is_empty(), "a pending refund publishes nothing yet");

    let settled = s
        .settle_refund("re_1", RefundOutcome::Succeeded("re_stripe_1".into()), &[event("payment.refunded.v1")])
        .await
        .unwrap();
    assert_eq!(settled.refunded, 600);
    let stored = s.get_refund("re_1").await.unwrap().unwrap();
    assert_eq!((stored.status, stored.provider_ref.as_deref()), (RefundStatus::Succeeded, Some("re_stripe_1")));
    assert_eq!(drain(stores.outbox.as_ref()).await.len(), 1);

    let full = s.refund(&refund(&id, "re_5", 400), None, &[]).await.unwrap();
    assert_eq!((full.status, full.refundable()), (PaymentStatus::Refunded, 0));
    let back = s
        .settle_refund("re_5", RefundOutcome::Failed("the charge is disputed".into()), &[event("x.v1")])
        .await
        .unwrap();
    assert_eq!((back.status, back.refunded, back.refundable()), (PaymentStatus::PartiallyRefunded, 600, 400));
    assert_eq!(s.get_refund("re_5").await.unwrap().unwrap().status, RefundStatus::Failed);
    assert!(drain(stores.outbox.as_ref()).await.is_empty(), "a refused refund publishes nothing");
    // Settling again changes nothing.
    let again = s.settle_refund("re_5", RefundOutcome::Succeeded("late".into()), &[event("x.v1")]).await.unwrap();
    assert_eq!(again.refunded, 600);
    assert!(drain(stores.outbox.as_ref()).await.is_empty());

    let refunds = s.refunds(&id).await.unwrap();
    assert_eq!(refunds.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["re_1", "re_5"]);
    let kinds: Vec<String> = s.log(&id).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds[3..], ["refund_requested", "refunded", "refund_requested", "refund_failed"]);

    // A refund the provider holds pending keeps its reference and its amount counted, publishes
    // nothing, and settles later.
    let pending = s.refund(&refund(&id, "re_7", 100), None, &[]).await.unwrap();
    assert_eq!(pending.refunded, 700);
    let held = s.settle_refund("re_7", RefundOutcome::Pending("re_stripe_7".into()), &[event("x.v1")]).await.unwrap();
    assert_eq!(held.refunded, 700);
    let stored = s.get_refund("re_7").await.unwrap().unwrap();
    assert_eq!((stored.status, stored.provider_ref.as_deref()), (RefundStatus::Pending, Some("re_stripe_7")));
    s.settle_refund("re_7", RefundOutcome::Pending("re_stripe_7".into()), &[]).await.unwrap();
    assert!(drain(stores.outbox.as_ref()).await.is_empty(), "pending publishes nothing");
    s.settle_refund("re_7", RefundOutcome::Succeeded("re_stripe_7".into()), &[event("payment.refunded.v1")])
        .await
        .unwrap();
    assert_eq!(s.get_refund("re_7").await.unwrap().unwrap().status, RefundStatus::Succeeded);
    assert_eq!(drain(stores.outbox.as_ref()).await.len(), 1);
    // A refund made at the provider already is recorded settled, with its event, at once.
    let mut made = refund(&id, "re_8", 50);
    made.status = RefundStatus::Succeeded;
    made.provider_ref = Some("ch_1".into());
    let after = s.refund(&made, Some(700), &[event("payment.refunded.v1")]).await.unwrap();
    assert_eq!(after.refunded, 750);
    assert_eq!(s.get_refund("re_8").await.unwrap().unwrap().status, RefundStatus::Succeeded);
    assert_eq!(drain(stores.outbox.as_ref()).await.len(), 1);
    let kinds: Vec<String> = s.log(&id).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds[7..], ["refund_requested", "refund_pending", "refunded", "refund_requested", "refunded"]);

    // Only a charged payment is refundable.
    let (pending, _) = s.open(&new_payment("o2", 100), PaymentStatus::Pending).await.unwrap();
    assert!(matches!(
        s.refund(&refund(&pending.id, "re_6", 1), None, &[]).await,
        Err(StoreError::NotRefundable { refundable: 0 })
    ));
}

async fn concurrent_refunds_together_never_exceed_the_capture(stores: &Stores) {
    let id = captured(stores, "o1", 1000).await;
    let refunds: Vec<_> = (0..10)
        .map(|i| {
            let (store, id) = (stores.store.clone(), id.clone());
            tokio::spawn(async move { store.refund(&refund(&id, &format!("re_{i}"), 300), None, &[]).await })
        })
        .collect();
    let mut accepted = 0;
    for outcome in refunds {
        match outcome.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(StoreError::NotRefundable { .. }) => {}
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(accepted, 3);
    let payment = stores.store.get(&id).await.unwrap().unwrap();
    assert_eq!((payment.refunded, payment.refundable()), (900, 100));
}

async fn a_refund_computed_from_the_payment_as_read_is_recorded_once_across_replicas(stores: &Stores) {
    let id = captured(stores, "o1", 1000).await;
    // Ten replicas read the payment (nothing refunded) and each records the 300 it computed
    // missing, on condition that nothing was refunded meanwhile: one is recorded.
    let refunds: Vec<_> = (0..10)
        .map(|i| {
            let (store, id) = (stores.store.clone(), id.clone());
            tokio::spawn(async move { store.refund(&refund(&id, &format!("re_{i}"), 300), Some(0), &[]).await })
        })
        .collect();
    let mut accepted = 0;
    for outcome in refunds {
        match outcome.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(StoreError::RefundedMoved { refunded }) => assert_eq!(refunded, 300),
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(accepted, 1);
    let payment = stores.store.get(&id).await.unwrap().unwrap();
    assert_eq!(payment.refunded, 300);
    assert_eq!(stores.store.refunds(&id).await.unwrap().len(), 1, "a refused one records nothing");
    // Read again, the condition holds.
    stores.store.refund(&refund(&id, "re_next", 100), Some(300), &[]).await.unwrap();
    assert_eq!(stores.store.get(&id).await.unwrap().unwrap().refunded, 400);
}

async fn payments_left_waiting_are_found_the_longest_waiting_first(stores: &Stores) {
    let s = &stores.store;
    let (first, _) = s.open(&new_payment("o1", 100), PaymentStatus::Pending).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (second, _) = s.open(&new_payment("o2", 100), PaymentStatus::Pending).await.unwrap();
    let authorized = captured(stores, "o3", 100).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let now = Utc::now();
    let ids = |payments: Vec<shop_payment::domain::payment::Payment>| -> Vec<String> {
        payments.into_iter().map(|p| p.id).collect()
    };
    assert_eq!(ids(s.stale(PaymentStatus::Pending, now, 10).await.unwrap()), [first.id.clone(), second.id]);
    assert_eq!(ids(s.stale(PaymentStatus::Pending, now, 1).await.unwrap()), [first.id]);
    assert!(s.stale(PaymentStatus::Pending, first.created_at, 10).await.unwrap().is_empty(), "none older");
    assert_eq!(ids(s.stale(PaymentStatus::Captured, now, 10).await.unwrap()), [authorized]);
    assert!(s.stale(PaymentStatus::Authorized, now, 10).await.unwrap().is_empty());
}

async fn idempotency_keys_answer_the_same_request_and_refuse_another(stores: &Stores) {
    let s = &stores.store;
    assert_eq!(s.claim_key("refund", "k1", "h1").await.unwrap(), KeyClaim::New);
    assert_eq!(s.claim_key("refund", "k1", "h1").await.unwrap(), KeyClaim::InProgress);
    assert_eq!(s.claim_key("refund", "k1", "h2").await.unwrap(), KeyClaim::Mismatch);
    assert_eq!(s.claim_key("other", "k1", "h2").await.unwrap(), KeyClaim::New, "keys are per scope");
    s.complete_key("refund", "k1", 200, "{\"ok\":true}").await.unwrap();
    assert_eq!(s.claim_key("refund", "k1", "h1").await.unwrap(), KeyClaim::Done(200, "{\"ok\":true}".into()));
    s.release_key("refund", "k1").await.unwrap();
    assert!(matches!(s.claim_key("refund", "k1", "h1").await.unwrap(), KeyClaim::Done(200, _)), "a kept answer stays");
    // A released claim (the request failed without an answer) can be claimed again by the same
    // request, and is still refused to another.
    assert_eq!(s.claim_key("refund", "k2", "h").await.unwrap(), KeyClaim::New);
    s.release_key("refund", "k2").await.unwrap();
    assert_eq!(s.claim_key("refund", "k2", "other").await.unwrap(), KeyClaim::Mismatch);
    assert_eq!(s.claim_key("refund", "k2", "h").await.unwrap(), KeyClaim::New);
    assert_eq!(s.claim_key("refund", "k2", "h").await.unwrap(), KeyClaim::InProgress, "taken again: held again");
}

async fn webhook_events_are_recorded_once(stores: &Stores) {
    let s = &stores.store;
    assert!(s.record_webhook("stripe", "evt_1", "charge.refunded").await.unwrap());
    assert!(!s.record_webhook("stripe", "evt_1", "charge.refunded").await.unwrap());
    assert!(s.record_webhook("stripe", "evt_2", "charge.refunded").await.unwrap());
    assert!(s.record_webhook("other", "evt_1", "x").await.unwrap());
}
