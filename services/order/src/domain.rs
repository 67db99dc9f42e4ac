//! Cart and order types and rules, free of I/O.

pub mod order;
pub mod pricing;
pub mod promotion;
pub mod refund;
pub mod saga;
pub mod shipping;

use std::collections::HashMap;

use platform::contracts::catalog::SkuInfo;
use platform::money::Money;
use serde::Serialize;

/// SKUs one cart (and so one order) may hold: as many as one stock reservation holds.
pub const MAX_LINES: usize = platform::contracts::inventory::MAX_LINES;

/// Units of one SKU one cart may hold.
pub const MAX_QUANTITY: i64 = 999;

/// Discount codes one cart may carry.
pub const MAX_CODES: usize = 5;

/// Where a cart ships, and how, as the shopper chose (for the shipping estimate, the tax, and
/// checkout, which ships to the address given then and checks it against this).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingChoice {
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// Region (state, province), where it matters.
    #[serde(default)]
    pub region: Option<String>,
    /// Postal code, where it matters.
    #[serde(default)]
    pub postal_code: Option<String>,
    /// The shipping method chosen (an id of the zone's methods); none yet: only the estimate.
    #[serde(default)]
    pub method_id: Option<String>,
}

/// A cart as stored: who owns it and what is in it (prices are looked up at read time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cart {
    /// The id (a guest cart's bearer secret).
    pub id: String,
    /// The signed-in owner, for a persistent cart.
    pub owner_id: Option<String>,
    /// The currency it is priced in.
    pub currency: String,
    /// SKUs and quantities, in the order they were added.
    pub lines: Vec<(String, i64)>,
    /// Counts its changes (0 when made), so a copy can tell which of two is newer.
    pub version: u64,
    /// Discount codes entered (normalized, upper case), in the order entered.
    pub codes: Vec<String>,
    /// Where it ships and how, once the shopper said.
    pub shipping: Option<ShippingChoice>,
}

impl Cart {
    /// A new, empty cart.
    pub fn new(id: String, owner_id: Option<String>, currency: &str) -> Self {
        Self {
            id,
            owner_id,
            currency: currency.to_owned(),
            lines: Vec::new(),
            version: 0,
            codes: Vec::new(),
            shipping: None,
        }
    }

    /// The units of `sku` in it (0 when it has no such line).
    pub fn quantity(&self, sku: &str) -> i64 {
        self.lines.iter().find(|(s, _)| s == sku).map_or(0, |(_, q)| *q)
    }

    /// Sets the units of `sku` (0 or less removes the line; a new line goes last); `false`, with
    /// nothing changed, when a new line would take it over `max_lines`.
    pub fn set_line(&mut self, sku: &str, quantity: i64, max_lines: usize) -> bool {
        match self.lines.iter().position(|(s, _)| s == sku) {
            Some(at) if quantity <= 0 => {
                self.lines.remove(at);
            }
            Some(at) => self.lines[at].1 = quantity,
            None if quantity <= 0 => {}
            None if self.lines.len() >= max_lines => return false,
            None => self.lines.push((sku.to_owned(), quantity)),
        }
        true
    }

    /// Adds the lines of a guest cart at login: units of a SKU in both are added, then capped by
    /// `caps` where given (the stock: never below what this cart had, nor above the cap) and by the
    /// line limit [`MAX_QUANTITY`], as a cart's own change is; `false`, with this cart as it was,
    /// when it would take it over `max_lines`.
    pub fn absorb(&mut self, guest: &[(String, i64)], caps: &HashMap<String, i64>, max_lines: usize) -> bool {
        let before = self.lines.clone();
        for (sku, quantity) in guest {
            let had = self.quantity(sku);
            let mut total = had.saturating_add(*quantity);
            if let Some(cap) = caps.get(sku) {
                total = total.min(*cap).max(had.min(*cap));
            }
            total = total.min(MAX_QUANTITY.max(had));
            if total != had && !self.set_line(sku, total, max_lines) {
                self.lines = before;
                return false;
            }
        }
        true
    }

    /// Takes a guest cart's codes and shipping choice where this cart has none (at login).
    pub fn absorb_details(&mut self, guest: &Cart) {
        if self.codes.is_empty() {
            self.codes = guest.codes.clone();
        }
        if self.shipping.is_none() {
            self.shipping = guest.shipping.clone();
        }
    }
}

/// A line of a priced cart (and of an order: the catalog's price when it was placed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CartItem {
    /// The SKU.
    pub sku: String,
    /// The product the SKU belongs to.
    pub product_id: String,
    /// The product's name.
    pub name: String,
    /// Units.
    pub quantity: i64,
    /// The catalog price of one unit now.
    pub unit_price: Money,
    /// `unit_price × quantity`.
    pub line_total: Money,
}

/// A line the catalog no longer sells (its SKU was deleted, or is priced in another currency):
/// shown so the shopper can remove it, left out of the subtotal and of checkout.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UnavailableItem {
    /// The SKU.
    pub sku: String,
    /// Units in the cart.
    pub quantity: i64,
    /// `not_sold` (unknown or deleted SKU) or `other_currency`.
    pub reason: String,
}

/// A cart as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CartResponse {
    /// The id.
    pub id: String,
    /// The priced lines.
    pub items: Vec<CartItem>,
    /// Sum of the line totals.
    pub subtotal: Money,
    /// Lines that cannot be bought now.
    pub unavailable: Vec<UnavailableItem>,
    /// Discount codes entered.
    pub codes: Vec<String>,
    /// Where it ships and how, as chosen.
    pub shipping: Option<ShippingChoice>,
    /// Why that choice does not hold (no zone ships there, or the method is not offered there).
    pub shipping_problem: Option<String>,
    /// The whole price: per line discounts and taxes, shipping, totals, and each promotion applied
    /// or refused with the reason. Tax is known once a destination is chosen.
    pub pricing: pricing::Breakdown,
}

/// Prices `cart` with the catalog's SKUs, now.
pub fn price(cart: &Cart, skus: &HashMap<String, SkuInfo>) -> CartResponse {
    let mut items = Vec::with_capacity(cart.lines.len());
    let mut unavailable = Vec::new();
    let mut subtotal = Money::zero(&cart.currency);
    for (sku, quantity) in &cart.lines {
        let refuse = |reason: &str| UnavailableItem { sku: sku.clone(), quantity: *quantity, reason: reason.into() };
        let Some(info) = skus.get(sku) else {
            unavailable.push(refuse("not_sold"));
            continue;
        };
        let line_total = info.price.checked_mul(*quantity);
        match line_total.as_ref().and_then(|total| subtotal.checked_add(total)) {
            Some(sum) if info.price.currency == cart.currency => {
                subtotal = sum;
                items.push(CartItem {
                    sku: sku.clone(),
                    product_id: info.product_id.clone(),
                    name: info.name.clone(),
                    quantity: *quantity,
                    unit_price: info.price.clone(),
                    line_total: line_total.expect("checked above"),
                });
            }
            _ => unavailable.push(refuse("other_currency")),
        }
    }
    // The lines alone; the pricing engine's quote replaces it (`app::pricing`).
    let pricing = pricing::Breakdown::of_lines(&items, &subtotal);
    CartResponse {
        id: cart.id.clone(),
        items,
        subtotal,
        unavailable,
        codes: cart.codes.clone(),
        shipping: cart.shipping.clone(),
        shipping_problem: None,
        pricing,
    }
}

pub use platform::contracts::payment::is_payment_method_token;

/// A new guest cart's id: 128 random bits, so it can serve as the cart's bearer secret.
pub fn new_cart_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whether `id` has the shape of a cart id (so junk never reaches the store).
pub fn is_cart_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(sku: &str, amount: i64, currency: &str) -> SkuInfo {
        SkuInfo {
            sku: sku.into(),
            product_id: format!("p-{sku}"),
            name: format!("Product {sku}"),
            price: Money::new(amount, currency),
            attributes: Default::default(),
            image: None,
            in_stock: true,
            brand: "Acme".into(),
            category_path: vec!["c-all".into()],
            tax_category: Default::default(),
            weight_grams: None,
        }
    }

    #[test]
    fn a_cart_is_priced_from_the_catalog_and_reports_what_it_cannot_sell() {
        let cart = Cart {
            id: "c".into(),
            owner_id: None,
            currency: "USD".into(),
            lines: vec![("A".into(), 2), ("GONE".into(), 1), ("B".into(), 3), ("EUR".into(), 1)],
            version: 0,
            codes: Vec::new(),
            shipping: None,
        };
        let skus = HashMap::from([
            ("A".to_owned(), info("A", 1999, "USD")),
            ("B".to_owned(), info("B", 500, "USD")),
            ("EUR".to_owned(), info("EUR", 100, "EUR")),
        ]);
        let priced = price(&cart, &skus);
        assert_eq!(
            priced.items.iter().map(|i| (i.sku.as_str(), i.line_total.amount)).collect::<Vec<_>>(),
            [("A", 3998), ("B", 1500)]
        );
        assert_eq!(priced.subtotal, Money::new(5498, "USD"));
        let refused: Vec<(&str, &str)> =
            priced.unavailable.iter().map(|u| (u.sku.as_str(), u.reason.as_str())).collect();
        assert_eq!(refused, [("GONE", "not_sold"), ("EUR", "other_currency")]);
    }

    #[test]
    fn a_merged_line_keeps_the_line_limit() {
        let mut mine = Cart {
            id: "c".into(),
            owner_id: Some("u".into()),
            currency: "USD".into(),
            lines: vec![("A".into(), 600)],
            version: 0,
            codes: Vec::new(),
            shipping: None,
        };
        // No stock cap known (or a big one): the merge still stops at the line limit.
        assert!(mine.absorb(&[("A".into(), 600), ("B".into(), 5_000)], &HashMap::new(), 10));
        assert_eq!(mine.lines, [("A".to_owned(), MAX_QUANTITY), ("B".to_owned(), MAX_QUANTITY)]);
        let caps = HashMap::from([("A".to_owned(), 10_000)]);
        let mut mine = Cart { lines: vec![("A".into(), 2)], ..mine };
        assert!(mine.absorb(&[("A".into(), 3)], &caps, 10));
        assert_eq!(mine.lines, [("A".to_owned(), 5)]);
    }

    #[test]
    fn cart_ids_are_unguessable_and_recognisable() {
        let a = new_cart_id();
        assert!(is_cart_id(&a));
        assert_ne!(a, new_cart_id());
        assert!(!is_cart_id("1") && !is_cart_id(&"z".repeat(32)));
    }
}
