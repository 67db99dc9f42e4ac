//! The cart store conformance suite: each test is a generic function over the stores, run on
//! every adapter, and through the cache in front of each, by `conformance_suite!`.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use futures::future::join_all;
use shop_order::domain::{Cart, ShippingChoice};
use shop_order::store::StoreError;

use crate::{Stores, drained};

crate::conformance_suite!(cached:
    lines_are_set_removed_and_kept_in_the_order_added,
    a_guest_cart_merges_into_the_users_cart_capped_by_stock_and_goes_away,
    a_merge_that_would_overflow_the_cart_changes_nothing,
    a_user_has_one_cart_even_when_it_is_made_concurrently,
    concurrent_changes_to_one_cart_all_land,
    an_idle_cart_is_reported_once_per_idle_spell,
    codes_and_the_shipping_choice_are_kept_and_come_along_in_a_merge,
);

fn guest(id: &str, lines: &[(&str, i64)]) -> Cart {
    let mut cart = Cart::new(id.repeat(32 / id.len()), None, "USD");
    cart.lines = lines.iter().map(|(sku, q)| ((*sku).to_owned(), *q)).collect();
    cart
}

fn lines(cart: &Cart) -> Vec<(&str, i64)> {
    cart.lines.iter().map(|(sku, q)| (sku.as_str(), *q)).collect()
}

async fn lines_are_set_removed_and_kept_in_the_order_added(s: Stores) {
    let cart = guest("c1", &[]);
    s.carts.create(&cart).await.unwrap();
    let first = s.carts.set_quantity(&cart.id, "A", 2, 10).await.unwrap().unwrap();
    s.carts.set_quantity(&cart.id, "B", 1, 10).await.unwrap();
    let changed = s.carts.set_quantity(&cart.id, "A", 5, 10).await.unwrap().unwrap();
    assert_eq!(lines(&changed), [("A", 5), ("B", 1)]);
    assert!(changed.version > first.version, "every change counts");
    let removed = s.carts.set_quantity(&cart.id, "A", 0, 10).await.unwrap().unwrap();
    assert_eq!(lines(&removed), [("B", 1)]);
    assert_eq!(s.carts.get(&cart.id).await.unwrap(), Some(removed.clone()), "what is returned is what is stored");
    assert!(matches!(s.carts.set_quantity(&cart.id, "C", 1, 1).await, Err(StoreError::TooManyLines(1))));
    assert_eq!(s.carts.get(&cart.id).await.unwrap(), Some(removed), "a refused line changes nothing");
    assert!(s.carts.set_quantity(&"0".repeat(32), "A", 1, 10).await.unwrap().is_none());
    assert!(s.carts.get(&"0".repeat(32)).await.unwrap().is_none());
}

async fn a_guest_cart_merges_into_the_users_cart_capped_by_stock_and_goes_away(s: Stores) {
    let mine = s.carts.user_cart("u1", "USD").await.unwrap();
    assert_eq!(mine.owner_id.as_deref(), Some("u1"));
    assert_eq!(s.carts.user_cart("u1", "USD").await.unwrap().id, mine.id, "one cart per user");
    s.carts.set_quantity(&mine.id, "A", 2, 10).await.unwrap();
    let visitor = guest("g1", &[("A", 3), ("B", 4), ("C", 1)]);
    s.carts.create(&visitor).await.unwrap();
    assert_eq!(s.carts.get(&visitor.id).await.unwrap().map(|c| c.lines), Some(visitor.lines.clone()));
    let caps = HashMap::from([("A".to_owned(), 4), ("B".to_owned(), 10)]);
    let merged = s.carts.merge(&visitor.id, "u1", "USD", &caps, 10).await.unwrap().unwrap();
    assert_eq!(merged.id, mine.id);
    assert_eq!(lines(&merged), [("A", 4), ("B", 4), ("C", 1)]);
    assert_eq!(s.carts.user_cart("u1", "USD").await.unwrap(), merged);
    assert!(s.carts.get(&visitor.id).await.unwrap().is_none(), "the guest cart is gone");
    assert!(s.carts.merge(&visitor.id, "u1", "USD", &caps, 10).await.unwrap().is_none());
    assert!(s.carts.merge(&mine.id, "u2", "USD", &caps, 10).await.unwrap().is_none(), "a user's cart is no guest's");

    let other = guest("g2", &[("D", 2)]);
    s.carts.create(&other).await.unwrap();
    let fresh = s.carts.merge(&other.id, "u3", "USD", &HashMap::new(), 10).await.unwrap().unwrap();
    assert_eq!((fresh.owner_id.as_deref(), lines(&fresh)), (Some("u3"), vec![("D", 2)]), "a cart made by the merge");
    assert_eq!(s.carts.user_cart("u3", "USD").await.unwrap().id, fresh.id);
}

async fn a_merge_that_would_overflow_the_cart_changes_nothing(s: Stores) {
    let mine = s.carts.user_cart("u1", "USD").await.unwrap();
    let mine = s.carts.set_quantity(&mine.id, "A", 1, 2).await.unwrap().unwrap();
    let visitor = guest("g1", &[("B", 1), ("C", 1)]);
    s.carts.create(&visitor).await.unwrap();
    let refused = s.carts.merge(&visitor.id, "u1", "USD", &HashMap::new(), 2).await;
    assert!(matches!(refused, Err(StoreError::TooManyLines(2))));
    assert_eq!(s.carts.user_cart("u1", "USD").await.unwrap(), mine);
    assert_eq!(s.carts.get(&visitor.id).await.unwrap().map(|c| c.lines), Some(visitor.lines));
}

async fn a_user_has_one_cart_even_when_it_is_made_concurrently(s: Stores) {
    let made = join_all((0..8).map(|_| s.carts.user_cart("u1", "USD"))).await;
    let ids: Vec<String> = made.into_iter().map(|cart| cart.unwrap().id).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
}

async fn concurrent_changes_to_one_cart_all_land(s: Stores) {
    let cart = s.carts.user_cart("u1", "USD").await.unwrap();
    let skus: Vec<String> = (0..10).map(|i| format!("SKU-{i}")).collect();
    let changes = join_all(skus.iter().map(|sku| s.carts.set_quantity(&cart.id, sku, 1, 48))).await;
    assert!(changes.into_iter().all(|c| c.unwrap().is_some()));
    let stored = s.carts.get(&cart.id).await.unwrap().unwrap();
    let mut held: Vec<&str> = stored.lines.iter().map(|(sku, _)| sku.as_str()).collect();
    held.sort_unstable();
    assert_eq!(held, skus.iter().map(String::as_str).collect::<Vec<_>>(), "no change lost");
    assert_eq!(stored.version, cart.version + 10);
}

async fn an_idle_cart_is_reported_once_per_idle_spell(s: Stores) {
    let full = guest("a1", &[("A", 2)]);
    let empty = guest("b2", &[]);
    s.carts.create(&full).await.unwrap();
    s.carts.create(&empty).await.unwrap();
    let mine = s.carts.user_cart("u1", "USD").await.unwrap();
    s.carts.set_quantity(&mine.id, "B", 1, 10).await.unwrap();
    assert_eq!(s.carts.abandon(Utc::now() - Duration::hours(1), 100).await.unwrap(), 0, "not idle long enough");

    let later = || Utc::now() + Duration::seconds(1);
    assert_eq!(s.carts.abandon(later(), 100).await.unwrap(), 2, "the carts with lines");
    let events = platform::events::outbox::waiting_events(s.outbox.as_ref(), false).await.unwrap();
    let mut reported: Vec<(String, Option<String>)> = events
        .iter()
        .map(|event| {
            assert_eq!(event.kind, "cart.abandoned.v1");
            (event.data["cart_id"].as_str().unwrap().to_owned(), event.data["owner_id"].as_str().map(Into::into))
        })
        .collect();
    reported.sort();
    let mut expected = vec![(full.id.clone(), None), (mine.id.clone(), Some("u1".to_owned()))];
    expected.sort();
    assert_eq!(reported, expected);
    drained(s.outbox.as_ref()).await;
    assert_eq!(s.carts.abandon(later(), 100).await.unwrap(), 0, "once per idle spell");

    s.carts.set_quantity(&full.id, "A", 3, 10).await.unwrap();
    assert_eq!(s.carts.abandon(later(), 100).await.unwrap(), 1, "a change starts a new spell");
    assert_eq!(drained(s.outbox.as_ref()).await, ["cart.abandoned.v1"]);
}

async fn codes_and_the_shipping_choice_are_kept_and_come_along_in_a_merge(s: Stores) {
    let cart = guest("c7", &[("A", 1)]);
    s.carts.create(&cart).await.unwrap();
    let choice = ShippingChoice {
        country: "DE".into(),
        region: None,
        postal_code: Some("10115".into()),
        method_id: Some("express".into()),
    };
    let codes = vec!["SUMMER".to_owned(), "FREESHIP".to_owned()];
    let set = s.carts.set_details(&cart.id, &codes, Some(&choice)).await.unwrap().unwrap();
    assert_eq!((set.codes.clone(), set.shipping.clone()), (codes.clone(), Some(choice.clone())));
    assert!(set.version > cart.version, "a change of details counts as a change");
    assert_eq!(s.carts.get(&cart.id).await.unwrap().unwrap(), set);
    // Lines change; the details stay.
    let more = s.carts.set_quantity(&cart.id, "B", 2, 10).await.unwrap().unwrap();
    assert_eq!((more.codes.clone(), more.shipping.clone()), (codes.clone(), Some(choice.clone())));
    assert!(s.carts.set_details("ffff".repeat(8).as_str(), &[], None).await.unwrap().is_none());
    // At login the user's cart, which has none, takes the guest's.
    let merged = s.carts.merge(&cart.id, "u-details", "USD", &HashMap::new(), 10).await.unwrap().unwrap();
    assert_eq!((merged.codes.clone(), merged.shipping.clone()), (codes, Some(choice)));
    assert_eq!(s.carts.get(&merged.id).await.unwrap().unwrap(), merged);
    let cleared = s.carts.set_details(&merged.id, &[], None).await.unwrap().unwrap();
    assert!(cleared.codes.is_empty() && cleared.shipping.is_none());
    assert_eq!(s.carts.user_cart("u-details", "USD").await.unwrap(), cleared);
}
