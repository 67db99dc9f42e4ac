//! The pricing store conformance suite: shipping zones and promotions, on every adapter.

use chrono::Utc;
use platform::http::Validator;
use serde_json::json;
use shop_order::domain::promotion::{Promotion, PromotionInput};
use shop_order::domain::shipping::{Zone, ZoneInput};
use shop_order::store::StoreError;

use crate::Stores;

crate::conformance_suite!(
    zones_are_kept_whole_listed_oldest_first_replaced_and_deleted,
    a_code_belongs_to_one_promotion_and_moves_with_it,
    a_promotion_not_used_yet_has_no_uses,
);

fn zone(id: &str, name: &str) -> Zone {
    let input: ZoneInput = serde_json::from_value(json!({
        "name": name, "currency": "EUR", "countries": ["DE", "FR"], "tax_inclusive": true, "shipping_taxed": true,
        "tax_rates": [{"country": "DE", "name": "MwSt", "category": "standard", "rate_bp": 1900}],
        "methods": [{"id": "standard", "name": "Standard", "min_days": 2, "max_days": 4,
            "pricing": {"type": "by_weight", "tiers": [{"from": 0, "amount": 490}, {"from": 2000, "amount": 990}]},
            "free_over": 5000}]
    }))
    .unwrap();
    input.build(id.into(), &mut Validator::new()).unwrap()
}

fn promotion(id: &str, code: Option<&str>) -> Promotion {
    let input: PromotionInput = serde_json::from_value(json!({
        "name": format!("Promotion {id}"), "code": code, "currency": "USD",
        "action": {"type": "order_fixed", "amount": 500},
        "conditions": {"min_subtotal": 2000}, "limits": {"total": 10, "per_customer": 1}
    }))
    .unwrap();
    let at = chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
    input.build(id.into(), at, at, &mut Validator::new()).unwrap()
}

async fn zones_are_kept_whole_listed_oldest_first_replaced_and_deleted(s: Stores) {
    assert!(s.pricing.zones().await.unwrap().is_empty());
    let (first, second) = (zone("zone_a", "Europe"), zone("zone_b", "Nordics"));
    s.pricing.put_zone(&first).await.unwrap();
    s.pricing.put_zone(&second).await.unwrap();
    assert_eq!(s.pricing.zones().await.unwrap(), [first.clone(), second.clone()]);
    // Replaced in place: its place in the list stays.
    let renamed = Zone { name: "Euro area".into(), ..first.clone() };
    s.pricing.put_zone(&renamed).await.unwrap();
    assert_eq!(s.pricing.zones().await.unwrap(), [renamed, second.clone()]);
    assert!(s.pricing.delete_zone("zone_a").await.unwrap());
    assert!(!s.pricing.delete_zone("zone_a").await.unwrap());
    assert_eq!(s.pricing.zones().await.unwrap(), [second]);
}

async fn a_code_belongs_to_one_promotion_and_moves_with_it(s: Stores) {
    let summer = promotion("promo_a", Some("SUMMER"));
    assert!(s.pricing.put_promotion(&summer, true).await.unwrap());
    let automatic = promotion("promo_b", None);
    assert!(s.pricing.put_promotion(&automatic, true).await.unwrap());
    let clash = promotion("promo_c", Some("SUMMER"));
    assert!(
        matches!(s.pricing.put_promotion(&clash, true).await, Err(StoreError::CodeTaken(code)) if code == "SUMMER")
    );
    assert_eq!(s.pricing.promotions().await.unwrap(), [summer.clone(), automatic.clone()], "nothing of it was kept");
    // The code moves: the old one is free, the new one taken.
    let moved = Promotion { code: Some("AUTUMN".into()), ..summer.clone() };
    assert!(s.pricing.put_promotion(&moved, false).await.unwrap());
    assert!(s.pricing.put_promotion(&clash, true).await.unwrap());
    let taken = Promotion { code: Some("AUTUMN".into()), ..clash.clone() };
    assert!(matches!(s.pricing.put_promotion(&taken, false).await, Err(StoreError::CodeTaken(_))));
    // Replacing one that does not exist changes nothing.
    assert!(!s.pricing.put_promotion(&promotion("promo_z", Some("GHOST")), false).await.unwrap());
    assert_eq!(s.pricing.promotions().await.unwrap(), [moved, automatic.clone(), clash]);
    // A deleted promotion's code is free again.
    assert!(s.pricing.delete_promotion("promo_a").await.unwrap());
    assert!(!s.pricing.delete_promotion("promo_a").await.unwrap());
    assert!(s.pricing.put_promotion(&promotion("promo_d", Some("AUTUMN")), true).await.unwrap());
    let ghost = s.pricing.promotions().await.unwrap();
    assert!(!ghost.iter().any(|p| p.code.as_deref() == Some("GHOST")));
}

async fn a_promotion_not_used_yet_has_no_uses(s: Stores) {
    s.pricing.put_promotion(&promotion("promo_a", Some("ONCE")), true).await.unwrap();
    let usage = s.pricing.usage(&["promo_a".into(), "promo_x".into()], Some("u1")).await.unwrap();
    assert_eq!(usage.len(), 2);
    assert!(usage.values().all(|u| u.total == 0 && u.by_shopper == 0));
}
