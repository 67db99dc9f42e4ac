//! Refunds of shipped orders, priced from the order's own breakdown: a unit of a line gives back
//! what the shopper paid for it (after its discounts, tax included), never its catalog price, and
//! the units of a line refunded one at a time give back exactly the line's total, no cent more.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::order::{Order, OrderStatus};

/// Longest reason, in characters.
pub const MAX_REASON: usize = 200;

/// A refund made of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Refund {
    /// `rfd_…`.
    pub id: String,
    /// The units given back, by line.
    pub lines: Vec<RefundedLine>,
    /// What of the shipping went back (minor units; 0 when it was not refunded).
    pub shipping: i64,
    /// The whole amount (minor units of the order's currency): what the payment refunds.
    pub amount: i64,
    /// Why.
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Units of a line in a refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefundedLine {
    /// The SKU.
    pub sku: String,
    /// Units.
    pub quantity: i64,
    /// What they were paid (minor units).
    pub amount: i64,
}

/// What an admin asks to refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// Units of lines to give back.
    #[serde(default)]
    pub lines: Vec<RefundLineRequest>,
    /// Whether the shipping goes back too.
    #[serde(default)]
    pub shipping: bool,
    /// Why (`requested by customer` when absent).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Units of a line to give back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundLineRequest {
    /// The SKU of a line of the order.
    pub sku: String,
    /// Units, at most those not refunded yet.
    pub quantity: i64,
}

/// Why a refund cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundRefusal {
    /// The order has not shipped (cancel it instead), or is refunded whole.
    #[error("an order {0} cannot be refunded: only shipped or delivered orders are (cancel one that has not shipped)")]
    Status(&'static str),
    /// A field is wrong: its name and what is wrong.
    #[error("{1}")]
    Invalid(String, String),
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> RefundRefusal {
    RefundRefusal::Invalid(field.into(), message.into())
}

/// Units of `sku` the refunds of `order` gave back.
pub fn refunded_units(order: &Order, sku: &str) -> i64 {
    order.refunds.iter().flat_map(|r| &r.lines).filter(|l| l.sku == sku).map(|l| l.quantity).sum()
}

/// Whether the shipping of `order` was refunded.
pub fn shipping_refunded(order: &Order) -> bool {
    order.refunds.iter().any(|r| r.shipping > 0)
}

/// What the first `units` of a line of `quantity` units whose total is `total` were paid: the
/// total shared evenly, rounded down, the last unit taking what is left. So each unit's share
/// differs by at most one minor unit, and refunding the units in any number of steps gives back the
/// total exactly.
pub fn paid_for(total: i64, quantity: i64, units: i64) -> i64 {
    if quantity <= 0 || units <= 0 {
        return 0;
    }
    if units >= quantity {
        return total;
    }
    // i128: a total near i64::MAX times units must not overflow.
    (i128::from(total) * i128::from(units) / i128::from(quantity)) as i64
}

/// The refund `request` asks of `order`, priced from its breakdown; the order must have shipped.
pub fn plan(order: &Order, request: &RefundRequest, id: String, now: DateTime<Utc>) -> Result<Refund, RefundRefusal> {
    if !matches!(order.status, OrderStatus::Shipped | OrderStatus::Delivered) {
        return Err(RefundRefusal::Status(order.status.as_str()));
    }
    let reason = request.reason.as_deref().map(str::trim).unwrap_or("requested by customer");
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        return Err(invalid("reason", format!("must be 1 to {MAX_REASON} characters")));
    }
    if request.lines.is_empty() && !request.shipping {
        return Err(invalid("lines", "name the units to refund, or the shipping"));
    }
    let mut lines = Vec::with_capacity(request.lines.len());
    for (i, asked) in request.lines.iter().enumerate() {
        let field = |name: &str| format!("lines[{i}].{name}");
        if request.lines[..i].iter().any(|earlier| earlier.sku == asked.sku) {
            return Err(invalid(field("sku"), format!("{} is named twice", asked.sku)));
        }
        let Some(line) = order.pricing.lines.iter().find(|l| l.sku == asked.sku) else {
            return Err(invalid(field("sku"), format!("the order has no line {:?}", asked.sku)));
        };
        let done = refunded_units(order, &line.sku);
        let left = line.quantity - done;
        if asked.quantity < 1 || asked.quantity > left {
            return Err(invalid(
                field("quantity"),
                format!("{} has {left} unit(s) not refunded yet; refund 1 to {left}", line.sku),
            ));
        }
        let amount =
            paid_for(line.total, line.quantity, done + asked.quantity) - paid_for(line.total, line.quantity, done);
        lines.push(RefundedLine { sku: line.sku.clone(), quantity: asked.quantity, amount });
    }
    let shipping = if request.shipping {
        let paid = order.pricing.shipping.as_ref().map_or(0, |s| s.total);
        if paid == 0 {
            return Err(invalid("shipping", "the order paid nothing for shipping"));
        }
        if shipping_refunded(order) {
            return Err(invalid("shipping", "the shipping was refunded already"));
        }
        paid
    } else {
        0
    };
    let amount = lines.iter().map(|l| l.amount).sum::<i64>() + shipping;
    Ok(Refund { id, lines, shipping, amount, reason: reason.to_owned(), at: now })
}

/// Whether, with `refund` made, nothing of `order` is left to refund (every unit, and the
/// shipping it paid for): the order is then `refunded`.
pub fn leaves_nothing(order: &Order, refund: &Refund) -> bool {
    let units_left = order.pricing.lines.iter().any(|line| {
        let now = refund.lines.iter().filter(|l| l.sku == line.sku).map(|l| l.quantity).sum::<i64>();
        refunded_units(order, &line.sku) + now < line.quantity
    });
    let shipping_paid = order.pricing.shipping.as_ref().is_some_and(|s| s.total > 0);
    !units_left && (!shipping_paid || shipping_refunded(order) || refund.shipping > 0)
}

/// A new refund id: `rfd_` and a UUIDv7 in hex.
pub fn new_refund_id() -> String {
    format!("rfd_{}", uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn units_refunded_in_any_steps_give_back_the_line_total(total in 0i64..10_000_000, quantity in 1i64..50, cuts in proptest::collection::vec(1i64..50, 0..10)) {
            let mut done = 0;
            let mut given = 0;
            for cut in cuts {
                let step = cut.min(quantity - done);
                if step == 0 { break; }
                given += paid_for(total, quantity, done + step) - paid_for(total, quantity, done);
                done += step;
            }
            given += paid_for(total, quantity, quantity) - paid_for(total, quantity, done);
            prop_assert_eq!(given, total);
            for units in 1..=quantity {
                let one = paid_for(total, quantity, units) - paid_for(total, quantity, units - 1);
                prop_assert!((one - total / quantity).abs() <= 1, "each unit within a cent of the others");
            }
        }
    }

    #[test]
    fn only_a_shipped_order_is_refunded_and_never_past_what_it_holds() {
        let address = platform::address::AddressInput {
            name: "Ada".into(),
            line1: "1 Main St".into(),
            line2: None,
            city: "Springfield".into(),
            region: None,
            postal_code: "12345".into(),
            country: "US".into(),
        };
        let item = crate::domain::CartItem {
            sku: "A".into(),
            product_id: "p".into(),
            name: "A".into(),
            quantity: 2,
            unit_price: platform::money::Money::new(500, "USD"),
            line_total: platform::money::Money::new(1000, "USD"),
        };
        let total = platform::money::Money::new(1000, "USD");
        let mut order = Order::pending(
            "u".into(),
            vec![item],
            total,
            address,
            "pm_card_visa".into(),
            chrono::Duration::seconds(30),
        );
        let one = RefundRequest {
            lines: vec![RefundLineRequest { sku: "A".into(), quantity: 1 }],
            shipping: false,
            reason: None,
        };
        let now = Utc::now();
        assert_eq!(plan(&order, &one, "r".into(), now), Err(RefundRefusal::Status("pending")));
        order.status = OrderStatus::Delivered;
        let first = plan(&order, &one, "r1".into(), now).unwrap();
        assert_eq!((first.amount, first.reason.as_str()), (500, "requested by customer"));
        assert!(!leaves_nothing(&order, &first));
        order.refunds.push(first);
        let last = plan(&order, &one, "r2".into(), now).unwrap();
        assert!(leaves_nothing(&order, &last), "no shipping was paid: the last unit leaves nothing");
        order.refunds.push(last);
        assert!(
            matches!(plan(&order, &one, "r3".into(), now), Err(RefundRefusal::Invalid(field, _)) if field == "lines[0].quantity")
        );
        let shipping = RefundRequest { lines: vec![], shipping: true, reason: Some(" ".into()) };
        assert!(
            matches!(plan(&order, &shipping, "r4".into(), now), Err(RefundRefusal::Invalid(field, _)) if field == "reason")
        );
        let shipping = RefundRequest { reason: None, ..shipping };
        assert!(
            matches!(plan(&order, &shipping, "r4".into(), now), Err(RefundRefusal::Invalid(field, _)) if field == "shipping")
        );
    }

    #[test]
    fn a_unit_of_a_discounted_line_gives_back_what_was_paid() {
        // Three units at 10.00, 10 % off, 8 % tax on what was paid: 29.16 for the line.
        assert_eq!(paid_for(2_916, 3, 1), 972);
        assert_eq!(paid_for(2_916, 3, 2) - paid_for(2_916, 3, 1), 972);
        assert_eq!(paid_for(1_000, 3, 1), 333);
        assert_eq!(paid_for(1_000, 3, 3) - paid_for(1_000, 3, 2), 334, "the last unit takes the rest");
        assert_eq!(paid_for(1_000, 3, 0), 0);
        assert_eq!(paid_for(i64::MAX, 2, 1), i64::MAX / 2);
    }
}
