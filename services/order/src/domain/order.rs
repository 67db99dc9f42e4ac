//! Orders: their states, the moves of the checkout saga between them, and their history.

use chrono::{DateTime, Utc};
use platform::address::AddressInput;
use platform::money::Money;
use serde::{Deserialize, Serialize};

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed; the stock is being reserved.
    Pending,
    /// The stock is held; the payment is being authorized.
    Reserved,
    /// The payment is authorized.
    Paid,
    /// The stock is committed and the payment being captured.
    Confirmed,
    /// The parcel has left, with its label.
    Shipped,
    /// The parcel arrived.
    Delivered,
    /// Some items were out of stock: nothing was charged.
    Rejected,
    /// The payment was refused: the stock went back.
    PaymentFailed,
    /// Cancelled (by the shopper, or by the saga when a step timed out): stock and money went back.
    Cancelled,
    /// The money went back after delivery.
    Refunded,
}

impl OrderStatus {
    /// Every status, the saga's first.
    pub const ALL: [Self; 10] = [
        Self::Pending,
        Self::Reserved,
        Self::Paid,
        Self::Confirmed,
        Self::Shipped,
        Self::Delivered,
        Self::Rejected,
        Self::PaymentFailed,
        Self::Cancelled,
        Self::Refunded,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Reserved => "reserved",
            Self::Paid => "paid",
            Self::Confirmed => "confirmed",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Rejected => "rejected",
            Self::PaymentFailed => "payment_failed",
            Self::Cancelled => "cancelled",
            Self::Refunded => "refunded",
        }
    }

    /// The status of a stored (or query) name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "pending" => Self::Pending,
            "reserved" => Self::Reserved,
            "paid" => Self::Paid,
            "confirmed" => Self::Confirmed,
            "shipped" => Self::Shipped,
            "delivered" => Self::Delivered,
            "rejected" => Self::Rejected,
            "payment_failed" => Self::PaymentFailed,
            "cancelled" => Self::Cancelled,
            "refunded" => Self::Refunded,
            _ => return None,
        })
    }

    /// Whether the saga is done with it (nothing will move it but an admin).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Delivered | Self::Rejected | Self::PaymentFailed | Self::Cancelled | Self::Refunded)
    }

    /// Whether the order stands (or may still): not rejected, failed or cancelled. Only such
    /// orders count as a shopper's orders and hold a use of a promotion.
    pub fn is_kept(self) -> bool {
        !matches!(self, Self::Rejected | Self::PaymentFailed | Self::Cancelled)
    }

    /// Whether the shopper may still cancel it (it has not left).
    pub fn is_cancellable(self) -> bool {
        matches!(self, Self::Pending | Self::Reserved | Self::Paid | Self::Confirmed)
    }
}

/// A line of an order: a cart's line, priced by the catalog when the order was placed.
pub type OrderItem = super::CartItem;

/// A moment of an order's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// The status it reached.
    pub status: OrderStatus,
    /// When.
    pub at: DateTime<Utc>,
    /// Why, when it says more than the status (`out_of_stock`, `timed_out`, a decline code…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A use of a limited promotion an order holds: counted when it is placed, given back when it
/// fails, is rejected or is cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redemption {
    /// The promotion.
    pub promotion_id: String,
    /// The key the shopper's uses are counted under (`None`: counted in all only).
    pub customer: Option<String>,
    /// Most uses in all, when limited.
    pub total_limit: Option<u32>,
    /// Most uses by one shopper, when limited.
    pub per_customer_limit: Option<u32>,
}

impl Redemption {
    /// The counters the use moves, with their limits: every use (`EVERYONE`), and the shopper's.
    pub fn counters(&self) -> Vec<(&str, Option<u32>)> {
        let mut counters = vec![(crate::store::EVERYONE, self.total_limit)];
        if let Some(who) = &self.customer {
            counters.push((who.as_str(), self.per_customer_limit));
        }
        counters
    }
}

/// An order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Order {
    /// `ord_…` (time-ordered).
    pub id: String,
    /// The shopper.
    pub customer_id: String,
    /// Where it stands.
    pub status: OrderStatus,
    /// What was bought.
    pub items: Vec<OrderItem>,
    /// What the shopper pays: the breakdown's grand total (what the payment authorizes).
    pub total: Money,
    /// The whole price, as the cart showed it when the order was placed: lines with their
    /// discounts and taxes, shipping, totals, promotions.
    pub pricing: super::pricing::Breakdown,
    /// The uses of limited promotions it holds.
    #[serde(skip)]
    pub redemptions: Vec<Redemption>,
    /// Where it goes.
    pub shipping_address: AddressInput,
    /// The payment provider's token the shopper pays with.
    #[serde(skip)]
    pub payment_method: String,
    /// The shipping label, once shipped.
    pub label_url: Option<String>,
    /// The tracking number, once shipped.
    pub tracking_number: Option<String>,
    /// Every status it reached, oldest first.
    pub history: Vec<HistoryEntry>,
    /// The email of a guest's order (one placed without an account), where its emails go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// A guest's order's secret: `GET /v1/orders/{id}?token=…` reads it with this (and only it).
    #[serde(skip)]
    pub token: Option<String>,
    /// The money given back since it shipped, oldest first.
    #[serde(default)]
    pub refunds: Vec<super::refund::Refund>,
    /// When the current saga step gives up (`None` when no step is waiting).
    #[serde(skip)]
    pub deadline: Option<DateTime<Utc>>,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// The history reason that marks a confirmed order's payment captured (its stock may still be
/// being committed).
pub const PAYMENT_CAPTURED: &str = "payment_captured";

/// The history reason that marks a confirmed order's stock committed (its payment may still be
/// being captured).
pub const STOCK_COMMITTED: &str = "stock_committed";

/// The history reason that marks a cancelled or failed order's stock given back (the inventory
/// answered its release).
pub const STOCK_RELEASED: &str = "stock_released";

/// The history reason that marks a cancelled order's money given back (the payment answered its
/// void: the authorization cancelled, or the capture refunded).
pub const MONEY_RELEASED: &str = "money_released";

/// The history reason of an order with nothing to pay: paid without a payment authorization.
pub const NOTHING_TO_PAY: &str = "nothing_to_pay";

impl Order {
    /// A new order, `pending`, placed now: its stock reservation is the step it waits for, due
    /// after `step` (see [`step_timeout`]).
    pub fn pending(
        customer_id: String,
        items: Vec<OrderItem>,
        total: Money,
        shipping_address: AddressInput,
        payment_method: String,
        step: chrono::Duration,
    ) -> Self {
        let now = stamp(Utc::now());
        let pricing = super::pricing::Breakdown::of_lines(&items, &total);
        Self {
            id: new_order_id(),
            customer_id,
            status: OrderStatus::Pending,
            items,
            total,
            pricing,
            redemptions: Vec::new(),
            shipping_address,
            payment_method,
            label_url: None,
            tracking_number: None,
            history: vec![HistoryEntry { status: OrderStatus::Pending, at: now, reason: None }],
            email: None,
            token: None,
            refunds: Vec::new(),
            deadline: step_timeout(OrderStatus::Pending, step).map(|t| now + t),
            created_at: now,
            updated_at: now,
        }
    }

    fn marked(&self, mark: &str) -> bool {
        self.history.iter().any(|entry| entry.reason.as_deref() == Some(mark))
    }

    /// Why it reached its status: the reason of the history entry that reached it (later entries
    /// of the same status mark the saga's progress: `payment_captured`, `stock_released`…).
    pub fn status_reason(&self) -> Option<&str> {
        self.history.iter().find(|entry| entry.status == self.status).and_then(|entry| entry.reason.as_deref())
    }

    /// Whether there is money to take: an order whose total is zero completes without a payment.
    pub fn needs_payment(&self) -> bool {
        self.total.amount > 0
    }

    /// Whether its payment is captured (or there was none to take).
    pub fn is_captured(&self) -> bool {
        !self.needs_payment() || self.marked(PAYMENT_CAPTURED)
    }

    /// Whether its stock is committed.
    pub fn is_committed(&self) -> bool {
        self.marked(STOCK_COMMITTED)
    }

    /// The compensations ([`STOCK_RELEASED`], [`MONEY_RELEASED`]) an order that will not ship
    /// still waits to hear answered: a cancelled one its stock and its money, a failed one its
    /// stock (nothing was charged); none for any other order.
    pub fn unanswered_compensations(&self) -> Vec<&'static str> {
        let owed: &[&'static str] = match self.status {
            OrderStatus::Cancelled => &[STOCK_RELEASED, MONEY_RELEASED],
            OrderStatus::PaymentFailed => &[STOCK_RELEASED],
            _ => &[],
        };
        owed.iter().copied().filter(|mark| !self.marked(mark)).collect()
    }

    /// Whether every compensation it owes has been answered (`true` for an order that owes none).
    pub fn is_compensated(&self) -> bool {
        self.unanswered_compensations().is_empty()
    }
}

/// How long each waiting step of the saga may take before it is compensated (or, once the
/// money is authorized, asked again): `base` for the stock reservation, twice that for the
/// payment, four times for the commit and the capture. The stock reservation holds for
/// [`SAGA_STEPS_BEFORE_COMMIT`](platform::contracts::order::SAGA_STEPS_BEFORE_COMMIT) of them
/// and more, so a commit asked for again finds it held.
pub fn step_timeout(status: OrderStatus, base: chrono::Duration) -> Option<chrono::Duration> {
    match status {
        OrderStatus::Pending => Some(base),
        OrderStatus::Reserved | OrderStatus::Paid => Some(base * 2),
        OrderStatus::Confirmed => Some(base * 4),
        _ => None,
    }
}

/// The customer id of the orders a guest places with `email` (normalized): an account's id never
/// has this shape, and a verified account with that email takes these orders over.
pub fn guest_customer_id(email: &str) -> String {
    format!("{GUEST}{email}")
}

/// The prefix of a guest's customer id.
pub const GUEST: &str = "guest:";

/// A guest order's secret token: 32 random bytes, URL-safe base64.
pub fn new_order_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `given` is `order`'s token (compared in constant time; an order with none has no token
/// that opens it).
pub fn token_opens(order: &Order, given: &str) -> bool {
    order.token.as_deref().is_some_and(|token| {
        aws_lc_rs::constant_time::verify_slices_are_equal(token.as_bytes(), given.as_bytes()).is_ok()
    })
}

/// A new order id: `ord_` and a UUIDv7 in hex, so ids sort by the time they were made.
pub fn new_order_id() -> String {
    format!("ord_{}", uuid::Uuid::now_v7().simple())
}

/// Whether `id` has the shape of an order id (so junk never reaches the store).
pub fn is_order_id(id: &str) -> bool {
    id.len() == 36 && id.starts_with("ord_") && id[4..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// When the order id was made (the UUIDv7's millisecond timestamp), if it is one of ours.
pub fn id_time(id: &str) -> Option<DateTime<Utc>> {
    if !is_order_id(id) {
        return None;
    }
    let (seconds, nanos) = uuid::Uuid::parse_str(&id[4..]).ok()?.get_timestamp()?.to_unix();
    DateTime::from_timestamp(i64::try_from(seconds).ok()?, nanos)
}

/// `time` to the millisecond, as the stores keep times.
pub fn stamp(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(time.timestamp_millis()).unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_carry_the_time_they_were_made_and_sort_by_it() {
        let before = stamp(Utc::now());
        let first = new_order_id();
        let second = new_order_id();
        assert!(is_order_id(&first) && first < second);
        let made = id_time(&first).unwrap();
        assert!(made >= before && made <= Utc::now(), "{made} after {before}");
        assert_eq!(id_time("ord_none"), None);
        assert!(!is_order_id(&format!("ord_{}", "g".repeat(32))));
    }

    #[test]
    fn the_steps_before_a_commit_is_asked_again_are_the_ones_the_stock_hold_is_sized_for() {
        let base = chrono::Duration::seconds(1);
        let steps = [OrderStatus::Pending, OrderStatus::Reserved, OrderStatus::Confirmed];
        let total: chrono::Duration = steps.iter().map(|s| step_timeout(*s, base).unwrap()).sum();
        let counted = platform::contracts::order::SAGA_STEPS_BEFORE_COMMIT as i32;
        assert_eq!(total, base * counted);
        let longest = chrono::Duration::milliseconds(platform::contracts::order::MAX_SAGA_STEP_MS as i64);
        let hold = chrono::Duration::seconds(platform::contracts::order::CHECKOUT_HOLD_SECONDS as i64);
        assert!(longest * counted < hold);
    }

    #[test]
    fn statuses_round_trip_and_know_where_they_stand() {
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
            assert!(!(status.is_terminal() && status.is_cancellable()), "{status:?}");
            assert_eq!(
                step_timeout(status, chrono::Duration::seconds(30)).is_some(),
                status.is_cancellable(),
                "{status:?}"
            );
        }
    }
}
