//! The order store conformance suite: each test is a generic function over the stores, run on
//! every adapter by `conformance_suite!`.

use chrono::{Duration, Utc};
use platform::address::AddressInput;
use platform::events::Event;
use platform::money::Money;
use shop_order::domain::Cart;
use shop_order::domain::order::{Order, OrderItem, OrderStatus};
use shop_order::store::{Advance, Placed};

use crate::{Stores, drained};

crate::conformance_suite!(cached:
    an_order_is_placed_once_per_key_with_its_events,
    placing_empties_the_cart_it_was_made_from_and_only_at_that_version,
    an_order_moves_only_from_the_statuses_named_and_keeps_its_history,
    concurrent_moves_of_one_order_apply_once,
    a_shoppers_orders_page_newest_first_and_the_queue_oldest_first,
    overdue_orders_are_found_by_their_deadline,
    a_limited_promotion_is_used_at_most_its_limit_and_a_failed_order_gives_its_use_back,
    refunds_of_a_shipped_order_are_recorded_once_each_and_the_last_refunds_it,
    a_verified_account_takes_over_the_orders_placed_as_a_guest_with_its_email,
);

fn order(customer: &str, deadline_in: Option<i64>) -> Order {
    let item = OrderItem {
        sku: "A".into(),
        product_id: "p".into(),
        name: "A thing".into(),
        quantity: 2,
        unit_price: Money::new(500, "USD"),
        line_total: Money::new(1000, "USD"),
    };
    let address = AddressInput {
        name: "Ada".into(),
        line1: "1 Main St".into(),
        line2: None,
        city: "Springfield".into(),
        region: None,
        postal_code: "12345".into(),
        country: "US".into(),
    };
    let total = Money::new(1000, "USD");
    let mut order =
        Order::pending(customer.into(), vec![item], total, address, "pm_card_visa".into(), Duration::seconds(30));
    order.deadline = deadline_in.map(|s| order.created_at + Duration::seconds(s));
    order
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

async fn placing_empties_the_cart_it_was_made_from_and_only_at_that_version(s: Stores) {
    let cart = s.carts.user_cart("u1", "USD").await.unwrap();
    let cart = s.carts.set_quantity(&cart.id, "A", 2, 10).await.unwrap().unwrap();
    let stale = cart.version;
    let cart = s.carts.set_quantity(&cart.id, "B", 1, 10).await.unwrap().unwrap();
    let choice = shop_order::domain::ShippingChoice {
        country: "US".into(),
        region: None,
        postal_code: None,
        method_id: Some("standard".into()),
    };
    let cart = s.carts.set_details(&cart.id, &["SAVE10".to_owned()], Some(&choice)).await.unwrap().unwrap();
    let first = order("u1", Some(30));
    let events = [Event::new("order.placed.v1", "order", serde_json::json!({}))];
    assert_eq!(
        s.orders.place(&first, "k1", "h1", Some((&cart.id, stale)), &events).await.unwrap(),
        Placed::CartChanged,
        "priced from a cart that has changed since"
    );
    assert_eq!(s.orders.get(&first.id).await.unwrap(), None, "nothing written");
    assert!(drained(s.outbox.as_ref()).await.is_empty());
    assert_eq!(s.carts.get(&cart.id).await.unwrap().unwrap().lines.len(), 2);
    assert_eq!(
        s.orders.place(&first, "k1", "h1", Some(("f".repeat(32).as_str(), 0)), &events).await.unwrap(),
        Placed::CartChanged,
        "a cart that is gone"
    );

    let placed = s.orders.place(&first, "k1", "h1", Some((&cart.id, cart.version)), &events).await.unwrap();
    assert_eq!(placed, Placed::New(first.clone()));
    let emptied = s.carts.refresh(&cart.id).await.unwrap().unwrap();
    assert_eq!(s.carts.get(&cart.id).await.unwrap(), Some(emptied.clone()), "a copy renewed too");
    assert!(emptied.lines.is_empty());
    assert!(emptied.codes.is_empty(), "its codes were used");
    assert_eq!(emptied.shipping, Some(choice), "where it ships stays");
    assert!(emptied.version > cart.version, "emptying is a change");
    assert_eq!(
        s.orders.place(&order("u1", None), "k1", "h1", Some((&cart.id, cart.version)), &events).await.unwrap(),
        Placed::Existing(first),
        "a repeat of the same request finds its order before looking at the cart"
    );
    assert_eq!(drained(s.outbox.as_ref()).await, ["order.placed.v1"]);
    let again: Cart = s.carts.set_quantity(&cart.id, "A", 1, 10).await.unwrap().unwrap();
    assert_eq!(again.lines, vec![("A".to_owned(), 1)], "the emptied cart takes lines again");
}

async fn concurrent_moves_of_one_order_apply_once(s: Stores) {
    let placed = order("u1", Some(30));
    s.orders.place(&placed, "k", "h", None, &[]).await.unwrap();
    let reserve = Advance { steps: vec![(OrderStatus::Reserved, None)], ..Advance::default() };
    let cancel = Advance { steps: vec![(OrderStatus::Cancelled, Some("by_customer".into()))], ..Advance::default() };
    let event = |kind: &str| [Event::new(kind, "order", serde_json::json!({}))];
    let (authorize, release) = (event("payment.authorize.v1"), event("inventory.release.v1"));
    let (reserved, cancelled) = tokio::join!(
        s.orders.advance(&placed.id, &[OrderStatus::Pending], &reserve, &authorize),
        s.orders.advance(&placed.id, &[OrderStatus::Pending], &cancel, &release),
    );
    let (reserved, cancelled) = (reserved.unwrap(), cancelled.unwrap());
    assert!(reserved.is_some() != cancelled.is_some(), "exactly one of two moves from pending applies");
    let stored = s.orders.get(&placed.id).await.unwrap().unwrap();
    assert_eq!(stored.history.len(), 2);
    let winner = if reserved.is_some() { "payment.authorize.v1" } else { "inventory.release.v1" };
    assert_eq!(drained(s.outbox.as_ref()).await, [winner], "only the move that applied sent its event");
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

#[tokio::test]
async fn dynamodb_orders_an_earlier_version_wrote_without_a_status_shard_are_backfilled_into_the_queue() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use shop_order::store::OrderStore;
    let Some(client) = platform::testing::dynamodb_client() else { return };
    let prefix = format!("t-{}-", uuid::Uuid::new_v4().simple());
    let store = shop_order::store::dynamodb::DynamoOrderStore::new(client.clone(), &prefix);
    store.create_tables().await.unwrap();
    let placed = [order("u1", None), order("u2", None), order("u3", None)];
    for (i, o) in placed.iter().enumerate() {
        store.place(o, &format!("k{i}"), "h", None, &[]).await.unwrap();
    }
    // Two orders as the earlier version left them: no StatusShard (it indexed the bare status).
    let table = format!("{prefix}orders");
    let items = client.scan().table_name(&table).send().await.unwrap().items.unwrap_or_default();
    let mut stripped = Vec::new();
    for item in items.iter().filter(|item| item["CustomerID"] != AttributeValue::S("u3".into())) {
        client
            .update_item()
            .table_name(&table)
            .key("CustomerID", item["CustomerID"].clone())
            .key("OrderKey", item["OrderKey"].clone())
            .update_expression("REMOVE StatusShard")
            .send()
            .await
            .unwrap();
        stripped.push(item["OrderID"].as_s().unwrap().clone());
    }
    assert_eq!(stripped.len(), 2);
    let queue = |store: &shop_order::store::dynamodb::DynamoOrderStore| {
        let store = store.clone();
        async move {
            let pending = store.by_status(OrderStatus::Pending, None, 10).await.unwrap();
            pending.into_iter().map(|o| o.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(queue(&store).await, [placed[2].id.clone()], "the queue misses them");

    assert_eq!(store.backfill_status_shards().await.unwrap(), 2);
    let mut all: Vec<String> = placed.iter().map(|o| o.id.clone()).collect();
    all.sort();
    assert_eq!(queue(&store).await, all, "every order is in the queue, oldest first");
    assert_eq!(store.backfill_status_shards().await.unwrap(), 0, "a second run finds nothing to do");
}

async fn a_limited_promotion_is_used_at_most_its_limit_and_a_failed_order_gives_its_use_back(s: Stores) {
    use shop_order::domain::order::Redemption;
    let with_code = |customer: &str| {
        let mut o = order(customer, None);
        o.redemptions = vec![Redemption {
            promotion_id: "promo_ten".into(),
            customer: Some(customer.to_owned()),
            total_limit: Some(3),
            per_customer_limit: Some(1),
        }];
        o
    };
    // Eight shoppers at once for three uses: exactly three orders are placed.
    let attempts = (0..8).map(|i| {
        let orders = s.orders.clone();
        async move {
            let o = with_code(&format!("u{i}"));
            orders.place(&o, "k", "h", None, &[]).await.unwrap()
        }
    });
    let placed = futures::future::join_all(attempts).await;
    let won: Vec<&Order> = placed.iter().filter_map(|p| if let Placed::New(o) = p { Some(o) } else { None }).collect();
    assert_eq!(won.len(), 3, "{placed:?}");
    assert!(placed.iter().all(|p| matches!(p, Placed::New(_)) || *p == Placed::UsedUp("promo_ten".into())));
    let usage = s.pricing.usage(&["promo_ten".into()], Some(won[0].customer_id.as_str())).await.unwrap();
    assert_eq!((usage["promo_ten"].total, usage["promo_ten"].by_shopper), (3, 1));

    // One is cancelled: its use comes back, once, and another shopper takes it.
    let cancel = Advance { steps: vec![(OrderStatus::Cancelled, Some("by_customer".into()))], ..Advance::default() };
    s.orders.advance(&won[0].id, &[OrderStatus::Pending], &cancel, &[]).await.unwrap().unwrap();
    assert!(s.orders.advance(&won[0].id, &[OrderStatus::Pending], &cancel, &[]).await.unwrap().is_none());
    let usage = s.pricing.usage(&["promo_ten".into()], Some(won[0].customer_id.as_str())).await.unwrap();
    assert_eq!((usage["promo_ten"].total, usage["promo_ten"].by_shopper), (2, 0));
    assert!(matches!(s.orders.place(&with_code("late"), "k", "h", None, &[]).await.unwrap(), Placed::New(_)));
    assert_eq!(
        s.orders.place(&with_code("later"), "k", "h", None, &[]).await.unwrap(),
        Placed::UsedUp("promo_ten".into())
    );
    // A shopper's own limit: one use each, whatever is left in all.
    let mut again = with_code(&won[1].customer_id);
    again.redemptions[0].total_limit = Some(100);
    assert_eq!(s.orders.place(&again, "k2", "h", None, &[]).await.unwrap(), Placed::UsedUp("promo_ten".into()));
    // The order keeps its price and its uses.
    let stored = s.orders.get(&won[1].id).await.unwrap().unwrap();
    assert_eq!(
        (stored.pricing.clone(), stored.redemptions.clone()),
        (won[1].pricing.clone(), won[1].redemptions.clone())
    );
}

fn refund_of(id: &str, quantity: i64, amount: i64) -> shop_order::domain::refund::Refund {
    shop_order::domain::refund::Refund {
        id: id.into(),
        lines: vec![shop_order::domain::refund::RefundedLine { sku: "A".into(), quantity, amount }],
        shipping: 0,
        amount,
        reason: "damaged".into(),
        at: shop_order::domain::order::stamp(Utc::now()),
    }
}

async fn refunds_of_a_shipped_order_are_recorded_once_each_and_the_last_refunds_it(s: Stores) {
    let placed = order("u1", None);
    s.orders.place(&placed, "k", "h", None, &[]).await.unwrap();
    let command = || [Event::new("payment.refund.v1", "order", serde_json::json!({}))];
    assert!(
        s.orders.refund(&placed.id, 0, &refund_of("rfd_1", 1, 500), false, &command()).await.unwrap().is_none(),
        "not shipped: nothing refunded"
    );
    let ship = Advance { steps: vec![(OrderStatus::Shipped, None)], deadline: None, label: None };
    s.orders.advance(&placed.id, &[OrderStatus::Pending], &ship, &[]).await.unwrap().unwrap();
    // Two refunds priced from the same order: one is recorded, the other must be priced again.
    let (one, two) = (refund_of("rfd_1", 1, 500), refund_of("rfd_2", 1, 500));
    let (first, second) = (command(), command());
    let (a, b) = tokio::join!(
        s.orders.refund(&placed.id, 0, &one, false, &first),
        s.orders.refund(&placed.id, 0, &two, false, &second),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.is_some() != b.is_some(), "exactly one of two refunds priced from the same order");
    let once = a.or(b).unwrap();
    assert_eq!((once.status, once.refunds.len()), (OrderStatus::Shipped, 1));
    let last = s.orders.refund(&placed.id, 1, &refund_of("rfd_3", 1, 500), true, &command()).await.unwrap().unwrap();
    assert_eq!(last.status, OrderStatus::Refunded, "nothing left: refunded");
    assert_eq!(last.history.last().map(|h| h.status), Some(OrderStatus::Refunded));
    assert_eq!(s.orders.get(&placed.id).await.unwrap().unwrap(), last, "what is returned is what is stored");
    assert_eq!(last.refunds.iter().map(|r| r.amount).sum::<i64>(), 1000);
    assert!(s.orders.refund(&placed.id, 2, &refund_of("rfd_4", 1, 1), false, &command()).await.unwrap().is_none());
    assert_eq!(drained(s.outbox.as_ref()).await, ["payment.refund.v1", "payment.refund.v1"], "a command per refund");
}

async fn a_verified_account_takes_over_the_orders_placed_as_a_guest_with_its_email(s: Stores) {
    use shop_order::domain::order::guest_customer_id;
    let guest = guest_customer_id("ada@example.com");
    let mut first = order(&guest, Some(30));
    first.email = Some("ada@example.com".into());
    first.token = Some("secret-token".into());
    let second = order(&guest, None);
    let other = order(&guest_customer_id("bob@example.com"), None);
    let mine = order("usr_ada", None);
    for (o, k) in [(&first, "a"), (&second, "b"), (&other, "c"), (&mine, "a")] {
        s.orders.place(o, k, "h", None, &[]).await.unwrap();
    }
    assert_eq!(s.orders.claim_guest_orders("ada@example.com", "usr_ada").await.unwrap(), 2);
    let ids: Vec<String> = s.orders.by_customer("usr_ada", None, 10).await.unwrap().into_iter().map(|o| o.id).collect();
    assert_eq!(ids, [mine.id.clone(), second.id.clone(), first.id.clone()], "the account's history, newest first");
    assert!(s.orders.by_customer(&guest, None, 10).await.unwrap().is_empty());
    let claimed = s.orders.get(&first.id).await.unwrap().unwrap();
    assert_eq!(claimed.customer_id, "usr_ada");
    assert_eq!((claimed.email.as_deref(), claimed.token.as_deref()), (Some("ada@example.com"), Some("secret-token")));
    // The order moves on where it now is.
    let ship = Advance { steps: vec![(OrderStatus::Shipped, None)], deadline: None, label: None };
    let moved = s.orders.advance(&first.id, &[OrderStatus::Pending], &ship, &[]).await.unwrap().unwrap();
    assert_eq!((moved.customer_id.as_str(), moved.status), ("usr_ada", OrderStatus::Shipped));
    assert_eq!(s.orders.claim_guest_orders("ada@example.com", "usr_ada").await.unwrap(), 0, "again: none");
    assert_eq!(s.orders.by_customer(&guest_customer_id("bob@example.com"), None, 10).await.unwrap().len(), 1);
}
