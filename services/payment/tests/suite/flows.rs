//! The saga's payment steps as the command consumer takes them, with the simulated provider and
//! the embedded store: success, each decline, a provider outage retried with the same key,
//! redelivered commands, voids before and after authorization, refunds.

use std::sync::Arc;

use platform::contracts::payment::{Authorize, Capture, CaptureFailed, Failed, PaymentEvent, RefundCommand, Void};
use platform::events::{Event, EventHandler, HandlerError};
use platform::money::Money;
use shop_payment::app::payments::Payments;
use shop_payment::consumers::Commands;
use shop_payment::domain::payment::{PaymentStatus, RefundStatus};
use shop_payment::provider::RefundState;
use shop_payment::provider::simulated::SimulatedProvider;

use crate::conformance::{Stores, drain, sqlite_stores};

struct World {
    stores: Stores,
    provider: Arc<SimulatedProvider>,
    payments: Payments,
    commands: Commands,
}

fn world() -> World {
    let stores = sqlite_stores();
    let provider = Arc::new(SimulatedProvider::default());
    let payments = Payments::new(stores.store.clone(), provider.clone());
    World { commands: Commands::new(payments.clone()), payments, stores, provider }
}

fn authorize(order_id: &str, method: &str) -> Event {
    let command = Authorize {
        order_id: order_id.into(),
        customer_id: "user-1".into(),
        amount: Money::new(2500, "USD"),
        payment_method: method.into(),
    };
    Event::new(Authorize::KIND, "order", command)
}

fn capture(order_id: &str) -> Event {
    Event::new(Capture::KIND, "order", Capture { order_id: order_id.into() })
}

fn void(order_id: &str) -> Event {
    Event::new(Void::KIND, "order", Void { order_id: order_id.into(), reason: "cancelled".into() })
}

impl World {
    async fn status(&self, order_id: &str) -> PaymentStatus {
        self.stores.store.by_order(order_id).await.unwrap().unwrap().status
    }

    async fn events(&self) -> Vec<Event> {
        drain(self.stores.outbox.as_ref()).await
    }
}

fn kinds(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

#[tokio::test]
async fn an_authorized_payment_is_captured_once_however_often_the_commands_come() {
    let w = world();
    let command = authorize("o1", "pm_card_visa");
    w.commands.handle(&command).await.unwrap();
    let payment = w.stores.store.by_order("o1").await.unwrap().unwrap();
    assert_eq!(payment.status, PaymentStatus::Authorized);
    assert!(payment.provider_ref.as_deref().is_some_and(|r| r.starts_with("pi_sim_")));
    let events = w.events().await;
    assert_eq!(kinds(&events), [PaymentEvent::AUTHORIZED]);
    assert_eq!(events[0].correlationid.as_deref(), Some(command.id.as_str()));
    let authorized: PaymentEvent = events[0].data_as().unwrap();
    assert_eq!((authorized.amount.amount, authorized.provider_ref), (2500, payment.provider_ref.clone()));

    // Redelivered: no second call to the provider, no second answer.
    let calls = w.provider.calls();
    w.commands.handle(&command).await.unwrap();
    w.commands.handle(&authorize("o1", "pm_card_visa")).await.unwrap();
    assert_eq!(w.provider.calls(), calls);
    assert!(w.events().await.is_empty());

    w.commands.handle(&capture("o1")).await.unwrap();
    let calls = w.provider.calls();
    w.commands.handle(&capture("o1")).await.unwrap();
    assert_eq!(w.provider.calls(), calls, "captured once");
    let captured = w.stores.store.by_order("o1").await.unwrap().unwrap();
    assert_eq!((captured.status, captured.captured), (PaymentStatus::Captured, 2500));
    // Asked again, it answers again: the saga that re-sent the capture moves on.
    assert_eq!(kinds(&w.events().await), [PaymentEvent::CAPTURED, PaymentEvent::CAPTURED]);
    let log: Vec<String> = w.stores.store.log(&captured.id).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(log, ["created", "authorized", "captured", "capture_confirmed"]);
}

#[tokio::test]
async fn each_decline_fails_the_payment_with_stripes_codes() {
    let w = world();
    for (order, method, code, decline) in [
        ("o1", "pm_card_chargeDeclined", "card_declined", Some("generic_decline")),
        ("o2", "pm_card_chargeDeclinedInsufficientFunds", "card_declined", Some("insufficient_funds")),
        ("o3", "pm_card_chargeDeclinedExpiredCard", "expired_card", None),
        ("o4", "pm_card_unknown", "resource_missing", None),
        ("o5", "4242424242424242", "payment_method_invalid", None),
    ] {
        w.commands.handle(&authorize(order, method)).await.unwrap();
        let payment = w.stores.store.by_order(order).await.unwrap().unwrap();
        assert_eq!(payment.status, PaymentStatus::Failed, "{method}");
        let failure = payment.failure.clone().unwrap();
        assert_eq!((failure.code.as_str(), failure.decline_code.as_deref()), (code, decline), "{method}");
        let events = w.events().await;
        assert_eq!(kinds(&events), [Failed::KIND]);
        let failed: Failed = events[0].data_as().unwrap();
        assert_eq!((failed.order_id.as_str(), failed.code.as_str()), (order, code));
        assert!(!payment.payment_method.contains("4242"), "card data is never stored");
    }
    // A failed payment is final: a redelivery does not try again.
    let calls = w.provider.calls();
    w.commands.handle(&authorize("o1", "pm_card_visa")).await.unwrap();
    assert_eq!((w.provider.calls(), w.status("o1").await), (calls, PaymentStatus::Failed));
}

#[tokio::test]
async fn a_provider_outage_is_retried_with_the_same_key_and_charges_once() {
    let w = world();
    w.provider.fail_next(2);
    let command = authorize("o1", "pm_card_visa");
    for _ in 0..2 {
        let outcome = w.commands.handle(&command).await;
        assert!(matches!(outcome, Err(HandlerError::Retry(_))), "{outcome:?}");
        assert_eq!(w.status("o1").await, PaymentStatus::Pending);
    }
    w.commands.handle(&command).await.unwrap();
    let payment = w.stores.store.by_order("o1").await.unwrap().unwrap();
    assert_eq!(payment.status, PaymentStatus::Authorized);
    // The intent is the one the key names: the same as a first, successful try would have made.
    let fresh = SimulatedProvider::default();
    use shop_payment::provider::PaymentProvider;
    let same = fresh.authorize(&payment.amount, "pm_card_visa", "o1", &payment.key("authorize")).await.unwrap();
    assert_eq!(payment.provider_ref, Some(same.provider_ref));
    assert_eq!(kinds(&w.events().await), [PaymentEvent::AUTHORIZED]);

    w.provider.fail_next(1);
    assert!(matches!(w.commands.handle(&capture("o1")).await, Err(HandlerError::Retry(_))));
    assert_eq!(w.status("o1").await, PaymentStatus::Authorized);
    w.commands.handle(&capture("o1")).await.unwrap();
    assert_eq!(w.status("o1").await, PaymentStatus::Captured);
}

#[tokio::test]
async fn a_void_cancels_an_authorization_refunds_a_capture_and_outruns_a_late_authorize() {
    let w = world();
    w.commands.handle(&authorize("o1", "pm_card_visa")).await.unwrap();
    w.commands.handle(&void("o1")).await.unwrap();
    assert_eq!(w.status("o1").await, PaymentStatus::Voided);
    w.commands.handle(&void("o1")).await.unwrap();
    // Asked again, it answers again (nothing more is done).
    assert_eq!(kinds(&w.events().await), [PaymentEvent::AUTHORIZED, PaymentEvent::VOIDED, PaymentEvent::VOIDED]);

    w.commands.handle(&authorize("o2", "pm_card_visa")).await.unwrap();
    w.commands.handle(&capture("o2")).await.unwrap();
    w.commands.handle(&void("o2")).await.unwrap();
    let refunded = w.stores.store.by_order("o2").await.unwrap().unwrap();
    assert_eq!((refunded.status, refunded.refunded), (PaymentStatus::Refunded, 2500));
    let events = w.events().await;
    assert_eq!(kinds(&events)[2..], [PaymentEvent::REFUNDED]);

    // The void arrives first (the saga timed out): the late authorize charges nothing.
    w.commands.handle(&void("o3")).await.unwrap();
    assert_eq!(kinds(&w.events().await), [PaymentEvent::VOIDED]);
    let calls = w.provider.calls();
    w.commands.handle(&authorize("o3", "pm_card_visa")).await.unwrap();
    assert_eq!(w.provider.calls(), calls, "the provider is never asked");
    assert_eq!(w.status("o3").await, PaymentStatus::Voided);
    assert!(w.events().await.is_empty());

    // A capture of a voided payment can never apply: answered with a failure the saga acts on.
    let calls = w.provider.calls();
    w.commands.handle(&capture("o1")).await.unwrap();
    assert_eq!(w.provider.calls(), calls);
    let events = w.events().await;
    assert_eq!(kinds(&events), [CaptureFailed::KIND]);
    let failed: CaptureFailed = events[0].data_as().unwrap();
    assert_eq!((failed.order_id.as_str(), failed.reason.as_str()), ("o1", "voided"));
    assert_eq!(w.status("o1").await, PaymentStatus::Voided);
}

#[tokio::test]
async fn a_redelivered_refund_command_refunds_once() {
    let w = world();
    w.commands.handle(&authorize("o1", "pm_card_visa")).await.unwrap();
    w.commands.handle(&capture("o1")).await.unwrap();
    w.events().await;
    let refund = Event::new(
        RefundCommand::KIND,
        "order",
        RefundCommand { order_id: "o1".into(), amount: Some(1000), reason: "returned item".into() },
    );
    w.commands.handle(&refund).await.unwrap();
    w.commands.handle(&refund).await.unwrap();
    let payment = w.stores.store.by_order("o1").await.unwrap().unwrap();
    assert_eq!((payment.status, payment.refunded), (PaymentStatus::PartiallyRefunded, 1000));
    assert_eq!(kinds(&w.events().await), [PaymentEvent::REFUNDED]);
    // Another refund command: another refund, up to what is left.
    let rest = Event::new(
        RefundCommand::KIND,
        "order",
        RefundCommand { order_id: "o1".into(), amount: None, reason: "goodwill".into() },
    );
    w.commands.handle(&rest).await.unwrap();
    assert_eq!(w.stores.store.by_order("o1").await.unwrap().unwrap().refunded, 2500);
    let over = Event::new(
        RefundCommand::KIND,
        "order",
        RefundCommand { order_id: "o1".into(), amount: Some(1), reason: "again".into() },
    );
    assert!(matches!(w.commands.handle(&over).await, Err(HandlerError::Reject(_))), "over-refund is refused");
}

#[tokio::test]
async fn malformed_commands_are_dead_lettered() {
    let w = world();
    for event in [
        Event::new(Authorize::KIND, "order", serde_json::json!({"order_id": "o1"})),
        Event::new(
            Authorize::KIND,
            "order",
            serde_json::json!({"order_id": "", "customer_id": "u",
            "amount": {"amount": 1, "currency": "USD"}, "payment_method": "pm_card_visa"}),
        ),
        Event::new(Void::KIND, "order", serde_json::json!({"order_id": "o1", "reason": ""})),
        Event::new(
            Authorize::KIND,
            "order",
            serde_json::json!({"order_id": "o1", "customer_id": "u",
            "amount": {"amount": -5, "currency": "USD"}, "payment_method": "pm_card_visa"}),
        ),
        Event::new("payment.teleport.v1", "order", serde_json::json!({})),
    ] {
        assert!(matches!(w.commands.handle(&event).await, Err(HandlerError::Reject(_))), "{event:?}");
    }
    assert!(w.stores.store.by_order("o1").await.unwrap().is_none());
}

#[tokio::test]
async fn a_refund_the_provider_did_not_confirm_is_asked_again_and_made_once() {
    let w = world();
    w.commands.handle(&authorize("o1", "pm_card_visa")).await.unwrap();
    w.commands.handle(&capture("o1")).await.unwrap();
    w.events().await;
    // The void's refund is recorded, but the provider is down.
    w.provider.fail_next(1);
    assert!(matches!(w.commands.handle(&void("o1")).await, Err(HandlerError::Retry(_))));
    let payment = w.stores.store.by_order("o1").await.unwrap().unwrap();
    assert_eq!(payment.status, PaymentStatus::Refunded, "the amount is spoken for");
    let refunds = w.stores.store.refunds(&payment.id).await.unwrap();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].status, shop_payment::domain::payment::RefundStatus::Pending);
    assert!(w.events().await.is_empty(), "nothing is announced before the provider confirms");
    // The redelivered void carries on with the same refund.
    w.commands.handle(&void("o1")).await.unwrap();
    let refunds = w.stores.store.refunds(&payment.id).await.unwrap();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].status, shop_payment::domain::payment::RefundStatus::Succeeded);
    assert_eq!(kinds(&w.events().await), [PaymentEvent::REFUNDED]);

    // A refund left pending (nobody asked again) is settled by the retry job.
    w.commands.handle(&authorize("o2", "pm_card_visa")).await.unwrap();
    w.commands.handle(&capture("o2")).await.unwrap();
    w.events().await;
    let payments = Payments::new(w.stores.store.clone(), w.provider.clone());
    let payment = w.stores.store.by_order("o2").await.unwrap().unwrap();
    w.provider.fail_next(1);
    assert!(payments.refund(&payment, Some(700), "damaged", "admin-key", None).await.is_err());
    assert_eq!(
        payments.retry_pending_refunds(chrono::Utc::now() - chrono::Duration::hours(1)).await.unwrap(),
        0,
        "too young"
    );
    assert_eq!(payments.retry_pending_refunds(chrono::Utc::now() + chrono::Duration::seconds(1)).await.unwrap(), 1);
    assert_eq!(payments.retry_pending_refunds(chrono::Utc::now() + chrono::Duration::seconds(1)).await.unwrap(), 0);
    let payment = w.stores.store.by_order("o2").await.unwrap().unwrap();
    assert_eq!((payment.status, payment.refunded), (PaymentStatus::PartiallyRefunded, 700));
    assert_eq!(kinds(&w.events().await), [PaymentEvent::REFUNDED]);
}

#[tokio::test]
async fn a_hold_placed_after_its_payment_was_voided_is_released_on_redelivery() {
    use shop_payment::domain::payment::{NewPayment, Transition};
    let w = world();
    // The state a void that won the race leaves when the release of the hold failed.
    let new = NewPayment {
        order_id: "o1".into(),
        customer_id: "user-1".into(),
        amount: Money::new(2500, "USD"),
        payment_method: "pm_card_visa".into(),
        provider: "simulated".into(),
    };
    let (payment, _) = w.stores.store.open(&new, PaymentStatus::Pending).await.unwrap();
    let voided = Transition::new(PaymentStatus::Voided, "voided", 2500);
    w.stores.store.transition(&payment.id, &[PaymentStatus::Pending], &voided, &[]).await.unwrap().unwrap();
    let mut hold = Transition::new(PaymentStatus::Voided, "authorization_to_cancel", 0);
    hold.provider_ref = Some("pi_sim_0123456789abcdef01234567".into());
    w.stores.store.transition(&payment.id, &[PaymentStatus::Voided], &hold, &[]).await.unwrap().unwrap();

    let calls = w.provider.calls();
    w.commands.handle(&authorize("o1", "pm_card_visa")).await.unwrap();
    assert_eq!(w.provider.calls(), calls + 1, "the hold is released");
    w.commands.handle(&authorize("o1", "pm_card_visa")).await.unwrap();
    w.commands.handle(&void("o1")).await.unwrap();
    assert_eq!(w.provider.calls(), calls + 1, "once");
    let log: Vec<String> = w.stores.store.log(&payment.id).await.unwrap().into_iter().map(|e| e.kind).collect();
    // The void asked again is answered again.
    assert_eq!(log, ["created", "voided", "authorization_to_cancel", "authorization_cancelled", "release_confirmed"]);
    assert_eq!(w.status("o1").await, PaymentStatus::Voided);
}

#[tokio::test]
async fn when_an_answer_was_lost_the_provider_is_asked_what_it_did() {
    let w = world();
    // A capture made at the provider with its answer lost; then a void: refunded, not refused.
    w.commands.handle(&authorize("o1", "pm_card_visa")).await.unwrap();
    w.provider.lose_next_answers(1);
    assert!(matches!(w.commands.handle(&capture("o1")).await, Err(HandlerError::Retry(_))));
    assert_eq!(w.status("o1").await, PaymentStatus::Authorized);
    w.commands.handle(&void("o1")).await.unwrap();
    let refunded = w.stores.store.by_order("o1").await.unwrap().unwrap();
    assert_eq!((refunded.status, refunded.captured, refunded.refunded), (PaymentStatus::Refunded, 2500, 2500));
    assert_eq!(kinds(&w.events().await), [PaymentEvent::AUTHORIZED, PaymentEvent::REFUNDED]);
    // The capture retried now is refused: the money went back.
    w.commands.handle(&capture("o1")).await.unwrap();
    assert_eq!(kinds(&w.events().await), [CaptureFailed::KIND]);

    // An authorization placed with every answer lost; the void finds the hold and releases it.
    w.provider.lose_next_answers(1);
    assert!(matches!(w.commands.handle(&authorize("o2", "pm_card_visa")).await, Err(HandlerError::Retry(_))));
    assert_eq!(w.status("o2").await, PaymentStatus::Pending);
    w.provider.fail_next(1);
    assert!(matches!(w.commands.handle(&void("o2")).await, Err(HandlerError::Retry(_))), "asked again later");
    w.commands.handle(&void("o2")).await.unwrap();
    assert_eq!(w.provider.state_for_order("o2"), Some(shop_payment::provider::IntentState::Cancelled));
    let calls = w.provider.calls();
    w.commands.handle(&void("o2")).await.unwrap();
    w.commands.handle(&authorize("o2", "pm_card_visa")).await.unwrap();
    assert_eq!(w.provider.calls(), calls, "the provider is asked once");
    assert_eq!(w.status("o2").await, PaymentStatus::Voided);

    // A capture the provider refuses for good (a lapsed authorization): a failure the saga acts on.
    w.commands.handle(&authorize("o3", "pm_card_visa")).await.unwrap();
    w.events().await;
    w.provider.refuse_captures(true);
    w.commands.handle(&capture("o3")).await.unwrap();
    let events = w.events().await;
    assert_eq!(kinds(&events), [CaptureFailed::KIND]);
    assert_eq!(w.status("o3").await, PaymentStatus::Voided, "nothing is held any more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refund_made_at_the_provider_is_counted_once_however_many_replicas_apply_its_events() {
    let w = world();
    w.commands.handle(&authorize("o1", "pm_card_visa")).await.unwrap();
    w.commands.handle(&capture("o1")).await.unwrap();
    let payment = w.stores.store.by_order("o1").await.unwrap().unwrap();
    w.events().await;
    // Stripe's dashboard refunds 1,000 of the 2,500; its event comes to eight replicas at once,
    // twice (a redelivery under another id carries the same running total).
    let event = |id: &str| -> shop_payment::app::payments::StripeEvent {
        serde_json::from_value(serde_json::json!({
            "id": id, "type": "charge.refunded",
            "data": {"object": {"id": "ch_1", "payment_intent": payment.provider_ref, "amount_refunded": 1000}}
        }))
        .unwrap()
    };
    let replicas: Vec<_> = (0..8)
        .map(|n| {
            let replica = Payments::new(w.stores.store.clone(), w.provider.clone());
            let event = event(if n % 2 == 0 { "evt_1" } else { "evt_2" });
            tokio::spawn(async move { replica.apply_stripe_event(&event).await })
        })
        .collect();
    for replica in replicas {
        assert!(replica.await.unwrap().unwrap());
    }
    let after = w.stores.store.get(&payment.id).await.unwrap().unwrap();
    assert_eq!((after.status, after.refunded), (PaymentStatus::PartiallyRefunded, 1000));
    let refunds = w.stores.store.refunds(&payment.id).await.unwrap();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].provider_ref.as_deref(), Some("ch_1"));
    assert_eq!(kinds(&w.events().await), [PaymentEvent::REFUNDED]);
    // The next refund at Stripe (its total now 1,500) adds its 500.
    let mut later = event("evt_3");
    later.data.object["amount_refunded"] = serde_json::json!(1500);
    let replica = Payments::new(w.stores.store.clone(), w.provider.clone());
    replica.apply_stripe_event(&later).await.unwrap();
    assert_eq!(w.stores.store.get(&payment.id).await.unwrap().unwrap().refunded, 1500);
}

#[tokio::test]
async fn a_refund_left_pending_at_the_provider_answers_the_void_only_once_it_ends() {
    let w = world();
    w.commands.handle(&authorize("o1", "pm_card_visa")).await.unwrap();
    w.commands.handle(&capture("o1")).await.unwrap();
    w.events().await;
    let later = || chrono::Utc::now() + chrono::Duration::seconds(1);
    // The provider takes the void's refund but holds it pending (a bank transfer): counted, not
    // answered.
    w.provider.hold_refunds_pending(true);
    w.commands.handle(&void("o1")).await.unwrap();
    let payment = w.stores.store.by_order("o1").await.unwrap().unwrap();
    assert_eq!((payment.status, payment.refunded), (PaymentStatus::Refunded, 2500));
    let refunds = w.stores.store.refunds(&payment.id).await.unwrap();
    assert_eq!(refunds[0].status, RefundStatus::Pending);
    assert!(refunds[0].provider_ref.as_deref().is_some_and(|r| r.starts_with("re_sim_")));
    assert!(w.events().await.is_empty(), "nothing is answered while the refund is pending");
    w.commands.handle(&void("o1")).await.unwrap();
    assert_eq!(w.payments.retry_pending_refunds(later()).await.unwrap(), 0, "still pending");
    assert!(w.events().await.is_empty());

    // It fails at the provider: the money is charged again, and the void asked again makes a new
    // refund under its next key, which succeeds.
    assert_eq!(w.provider.end_pending_refunds(RefundState::Failed("the card was closed".into())).len(), 1);
    w.payments.retry_pending_refunds(later()).await.unwrap();
    let payment = w.stores.store.by_order("o1").await.unwrap().unwrap();
    assert_eq!((payment.status, payment.refunded), (PaymentStatus::Captured, 0));
    assert!(w.events().await.is_empty(), "a failed refund answers nothing");
    w.commands.handle(&void("o1")).await.unwrap();
    assert!(w.events().await.is_empty());
    assert_eq!(w.provider.end_pending_refunds(RefundState::Succeeded).len(), 1);
    assert_eq!(w.payments.retry_pending_refunds(later()).await.unwrap(), 1);
    let payment = w.stores.store.by_order("o1").await.unwrap().unwrap();
    assert_eq!((payment.status, payment.refunded), (PaymentStatus::Refunded, 2500));
    let refunds = w.stores.store.refunds(&payment.id).await.unwrap();
    let statuses: Vec<RefundStatus> = refunds.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [RefundStatus::Failed, RefundStatus::Succeeded]);
    assert_eq!(kinds(&w.events().await), [PaymentEvent::REFUNDED]);
}

#[tokio::test]
async fn a_void_whose_refunds_the_provider_keeps_refusing_is_left_for_operators() {
    let w = world();
    w.commands.handle(&authorize("o1", "pm_card_visa")).await.unwrap();
    w.commands.handle(&capture("o1")).await.unwrap();
    w.provider.hold_refunds_pending(true);
    let later = || chrono::Utc::now() + chrono::Duration::seconds(1);
    for _ in 0..3 {
        w.commands.handle(&void("o1")).await.unwrap();
        w.provider.end_pending_refunds(RefundState::Failed("the charge is disputed".into()));
        w.payments.retry_pending_refunds(later()).await.unwrap();
    }
    // Three refunds refused: the void is refused for good (dead-lettered for operators), not
    // answered as if the money went back.
    let refused = w.commands.handle(&void("o1")).await;
    assert!(matches!(refused, Err(HandlerError::Reject(ref why)) if why.contains("refused 3 refunds")), "{refused:?}");
    let payment = w.stores.store.by_order("o1").await.unwrap().unwrap();
    assert_eq!((payment.status, payment.refunded), (PaymentStatus::Captured, 0));
    assert_eq!(w.stores.store.refunds(&payment.id).await.unwrap().len(), 3);
}

#[tokio::test]
async fn stripe_telling_a_pending_refund_ended_settles_it() {
    let w = world();
    w.commands.handle(&authorize("o1", "pm_card_visa")).await.unwrap();
    w.commands.handle(&capture("o1")).await.unwrap();
    w.provider.hold_refunds_pending(true);
    w.commands.handle(&void("o1")).await.unwrap();
    w.events().await;
    let payment = w.stores.store.by_order("o1").await.unwrap().unwrap();
    let at_provider = w.stores.store.refunds(&payment.id).await.unwrap()[0].provider_ref.clone().unwrap();
    let updated = |status: &str| -> shop_payment::app::payments::StripeEvent {
        serde_json::from_value(serde_json::json!({
            "id": format!("evt_{status}"), "type": "charge.refund.updated",
            "data": {"object": {"id": at_provider, "object": "refund", "payment_intent": payment.provider_ref,
                "status": status, "amount": 2500}}
        }))
        .unwrap()
    };
    // An event that says more than the provider does (out of order) changes nothing: the provider
    // is asked where the refund stands.
    assert!(w.payments.apply_stripe_event(&updated("succeeded")).await.unwrap());
    assert_eq!(w.stores.store.refunds(&payment.id).await.unwrap()[0].status, RefundStatus::Pending);
    w.provider.end_pending_refunds(RefundState::Succeeded);
    assert!(w.payments.apply_stripe_event(&updated("succeeded")).await.unwrap());
    assert_eq!(w.stores.store.refunds(&payment.id).await.unwrap()[0].status, RefundStatus::Succeeded);
    assert_eq!(kinds(&w.events().await), [PaymentEvent::REFUNDED]);
    // About a refund we do not hold pending: nothing.
    assert!(!w.payments.apply_stripe_event(&updated("succeeded")).await.unwrap());
}

#[tokio::test]
async fn a_command_taken_off_the_queue_is_logged_with_its_order_its_payment_and_the_trace_of_its_checkout() {
    use platform::events::sqlite::SqliteQueue;
    use platform::events::{Consumer, EventBus, Routing};
    use platform::testing::log_field;

    let logs = platform::testing::capture_logs("info");
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn EventBus> = Arc::new(
        SqliteQueue::open(dir.path().join("events.db"), Routing::new(), std::time::Duration::from_millis(50)).unwrap(),
    );
    // The checkout's request: its trace travels on the command.
    let checkout = platform::telemetry::trace::TraceContext::new_root();
    let command = authorize("o-logged", "pm_card_visa").with_trace(&checkout);
    bus.send(shop_payment::consumers::QUEUE, &command).await.unwrap();
    let consumer = Consumer::new(bus, shop_payment::consumers::QUEUE, Arc::new(w.commands));
    assert_eq!(consumer.poll_once().await.unwrap(), 1);

    let payment = w.stores.store.by_order("o-logged").await.unwrap().unwrap();
    let lines = logs.with_message("payment command applied");
    assert_eq!(lines.len(), 1, "{:#?}", logs.lines());
    let field = |name| log_field(&lines[0], name).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    assert_eq!(field("order.id"), "o-logged");
    assert_eq!(field("payment.id"), payment.id);
    assert_eq!(field("payment.status"), "authorized");
    assert_eq!(field("event.id"), command.id);
    assert_eq!(field("event.kind"), Authorize::KIND);
    assert_eq!(field("trace_id"), checkout.trace_id);
    assert_eq!(field("correlation_id"), checkout.request_id);
    // No line of the step carries the payment method's token.
    let written = serde_json::to_string(&logs.lines()).unwrap();
    assert!(!written.contains("pm_card_visa"), "{written}");
}
