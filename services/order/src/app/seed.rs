//! The demo shop's pricing settings: shipping zones with their tax rates (the United States, the
//! European Union, the rest of the world) and two promotions (a welcome code and free shipping
//! over a threshold), so a first `shop up` shows a whole price breakdown.

use serde_json::json;

use crate::domain::promotion::{PromotionInput, new_promotion_id};
use crate::domain::shipping::{ZoneInput, new_zone_id};
use crate::store::{PricingStore, StoreError};

/// The demo zones, as an admin would send them.
fn zones() -> Vec<serde_json::Value> {
    let us_state = |region: &str, bp: u32| json!({"country": "US", "region": region, "name": "Sales tax", "category": "standard", "rate_bp": bp});
    let vat = |country: &str, standard: u32, reduced: u32| {
        [
            json!({"country": country, "name": "VAT", "category": "standard", "rate_bp": standard}),
            json!({"country": country, "name": "VAT", "category": "reduced", "rate_bp": reduced}),
            json!({"country": country, "name": "VAT", "category": "zero", "rate_bp": 0}),
        ]
    };
    let eu: Vec<serde_json::Value> = [
        ("DE", 1_900, 700),
        ("FR", 2_000, 550),
        ("IT", 2_200, 1_000),
        ("ES", 2_100, 1_000),
        ("NL", 2_100, 900),
        ("BE", 2_100, 600),
        ("AT", 2_000, 1_000),
        ("IE", 2_300, 1_350),
    ]
    .into_iter()
    .flat_map(|(country, standard, reduced)| vat(country, standard, reduced))
    .collect();
    vec![
        json!({
            "name": "United States", "currency": "USD", "countries": ["US"],
            "tax_inclusive": false, "shipping_taxed": false,
            "tax_rates": [us_state("CA", 725), us_state("NY", 400), us_state("TX", 625), us_state("WA", 650)],
            "methods": [
                {"id": "standard", "name": "Standard", "min_days": 3, "max_days": 5,
                    "pricing": {"type": "by_subtotal", "tiers": [{"from": 0, "amount": 599}, {"from": 5000, "amount": 399}]}},
                {"id": "express", "name": "Express", "min_days": 1, "max_days": 2,
                    "pricing": {"type": "flat", "amount": 1499}}
            ]
        }),
        json!({
            "name": "European Union", "currency": "USD",
            "countries": ["DE", "FR", "IT", "ES", "NL", "BE", "AT", "IE"],
            "tax_inclusive": true, "shipping_taxed": true, "tax_rates": eu,
            "methods": [
                {"id": "standard", "name": "Standard", "min_days": 3, "max_days": 7,
                    "pricing": {"type": "by_weight", "tiers": [
                        {"from": 0, "amount": 899}, {"from": 2000, "amount": 1499}, {"from": 5000, "amount": 2499}]}},
                {"id": "express", "name": "Express", "min_days": 1, "max_days": 3,
                    "pricing": {"type": "flat", "amount": 2499}}
            ]
        }),
        json!({
            "name": "Rest of the world", "currency": "USD", "countries": ["*"],
            "methods": [
                {"id": "international", "name": "International", "min_days": 7, "max_days": 21,
                    "pricing": {"type": "by_weight", "tiers": [{"from": 0, "amount": 1999}, {"from": 2000, "amount": 3499}]}}
            ]
        }),
    ]
}

/// The demo promotions.
fn promotions() -> Vec<serde_json::Value> {
    vec![
        json!({
            "name": "10 % off your first order", "code": "WELCOME10",
            "action": {"type": "order_percent", "percent_bp": 1000},
            "conditions": {"first_order_only": true}, "limits": {"per_customer": 1}, "priority": 10,
            "featured": true
        }),
        json!({
            "name": "Free shipping over $75", "currency": "USD", "action": {"type": "free_shipping"},
            "conditions": {"min_subtotal": 7500}, "featured": true
        }),
    ]
}

/// Seeds the demo zones and promotions into a store that has neither; the number of settings
/// added (0 when it had some).
pub async fn seed_pricing(store: &dyn PricingStore) -> Result<usize, StoreError> {
    if !store.zones().await?.is_empty() || !store.promotions().await?.is_empty() {
        return Ok(0);
    }
    let mut added = 0;
    for body in zones() {
        let input: ZoneInput = serde_json::from_value(body).expect("a demo zone is well-formed");
        let zone = input.build(new_zone_id(), &mut platform::http::Validator::new()).expect("a demo zone is valid");
        store.put_zone(&zone).await?;
        added += 1;
    }
    let now = chrono::Utc::now();
    for body in promotions() {
        let input: PromotionInput = serde_json::from_value(body).expect("a demo promotion is well-formed");
        let promotion = input
            .build(new_promotion_id(), now, now, &mut platform::http::Validator::new())
            .expect("a demo promotion is valid");
        store.put_promotion(&promotion, true).await?;
        added += 1;
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqlitePricingStore;

    #[tokio::test]
    async fn the_demo_settings_are_seeded_once_into_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = platform::sqlite::Db::open_migrated(dir.path().join("order.db"), crate::MIGRATIONS).unwrap();
        let store = SqlitePricingStore::new(db);
        assert_eq!(seed_pricing(&store).await.unwrap(), 5);
        assert_eq!(seed_pricing(&store).await.unwrap(), 0, "a second start adds nothing");
        let zones = store.zones().await.unwrap();
        let names: Vec<&str> = zones.iter().map(|z| z.name.as_str()).collect();
        assert_eq!(names, ["United States", "European Union", "Rest of the world"]);
        let germany = crate::domain::pricing::Destination { country: "DE".into(), region: None, postal_code: None };
        let eu = crate::domain::shipping::zone_for(&zones, &germany, "USD").unwrap();
        assert_eq!(eu.rates_at(&germany).len(), 3);
        let codes: Vec<Option<String>> = store.promotions().await.unwrap().into_iter().map(|p| p.code).collect();
        assert_eq!(codes, [Some("WELCOME10".to_owned()), None]);
    }
}
