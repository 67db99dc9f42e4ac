//! Cart and order types and rules, free of I/O.

use platform::money::Money;
use serde::Serialize;

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
}

/// A line of a priced cart.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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

/// A cart as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CartResponse {
    /// The id.
    pub id: String,
    /// The priced lines.
    pub items: Vec<CartItem>,
    /// Sum of the line totals.
    pub subtotal: Money,
}

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

    #[test]
    fn cart_ids_are_unguessable_and_recognisable() {
        let a = new_cart_id();
        assert!(is_cart_id(&a));
        assert_ne!(a, new_cart_id());
        assert!(!is_cart_id("1") && !is_cart_id(&"z".repeat(32)));
    }
}
