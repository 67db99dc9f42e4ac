//! The order service's storage ports and their adapters.

pub mod cached;
pub mod dynamodb;
pub mod sqlite;

use std::collections::HashMap;

use async_trait::async_trait;

use crate::domain::Cart;

/// A failure of the cart store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A cart may hold at most this many SKUs.
    #[error("a cart holds at most {0} different SKUs")]
    TooManyLines(usize),
    /// Another promotion has this code.
    #[error("the code {0} belongs to another promotion")]
    CodeTaken(String),
    /// The store itself failed.
    #[error("cart store")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl platform::error::Kinded for StoreError {
    fn kind(&self) -> platform::error::ErrorKind {
        use platform::error::ErrorKind;
        match self {
            Self::TooManyLines(_) => ErrorKind::Invalid { field: "sku" },
            Self::CodeTaken(_) => ErrorKind::Conflict,
            Self::Backend(error) => platform::error::backend_kind(error.as_ref()),
        }
    }
}

impl From<platform::dynamodb::DynamoError> for StoreError {
    fn from(error: platform::dynamodb::DynamoError) -> Self {
        Self::Backend(Box::new(error))
    }
}

/// Carts: guest carts (found by id, the bearer secret) and each user's persistent cart.
#[async_trait]
pub trait CartStore: Send + Sync {
    /// Stores a new cart.
    async fn create(&self, cart: &Cart) -> Result<(), StoreError>;

    /// The cart with `id`.
    async fn get(&self, id: &str) -> Result<Option<Cart>, StoreError>;

    /// The persistent cart of `owner_id`, made (empty, in `currency`) if it has none.
    async fn user_cart(&self, owner_id: &str, currency: &str) -> Result<Cart, StoreError>;

    /// Sets the units of `sku` in cart `id` (0 removes the line; a new line goes last); the cart
    /// after it, or `None` when there is no such cart. [`StoreError::TooManyLines`] when a new
    /// line would take it over `max_lines`.
    async fn set_quantity(
        &self,
        id: &str,
        sku: &str,
        quantity: i64,
        max_lines: usize,
    ) -> Result<Option<Cart>, StoreError>;

    /// Replaces the codes and the shipping choice of cart `id`; the cart after it, or `None` when
    /// there is no such cart.
    async fn set_details(
        &self,
        id: &str,
        codes: &[String],
        shipping: Option<&crate::domain::ShippingChoice>,
    ) -> Result<Option<Cart>, StoreError>;

    /// Reports every cart with lines that has not changed since `before` and was not reported
    /// since it last changed: `cart.abandoned.v1` for each (outbox), in one transaction; how many.
    async fn abandon(&self, before: chrono::DateTime<chrono::Utc>, limit: usize) -> Result<usize, StoreError>;

    /// Moves guest cart `guest_id`'s lines into `owner_id`'s cart (units of a SKU in both are
    /// added, then capped by `caps` where given) and deletes the guest cart, in one transaction;
    /// the user's cart after it, or `None` when the guest cart does not exist (or is a user's).
    async fn merge(
        &self,
        guest_id: &str,
        owner_id: &str,
        currency: &str,
        caps: &HashMap<String, i64>,
        max_lines: usize,
    ) -> Result<Option<Cart>, StoreError>;

    /// Cart `id` as stored now, read past any copy; a store that keeps copies renews its copy
    /// with it. For a cart another writer changed (placing an order empties it, through the
    /// [`OrderStore`]), or whose copy may be stale.
    async fn refresh(&self, id: &str) -> Result<Option<Cart>, StoreError> {
        self.get(id).await
    }
}

use chrono::{DateTime, Utc};
use platform::events::Event;

/// `cart.abandoned.v1` for `cart`, idle since `idle_since`.
pub(crate) fn abandoned(cart: &Cart, idle_since: DateTime<Utc>) -> Event {
    use platform::contracts::{inventory::Line, order::CartAbandoned};
    let lines = cart.lines.iter().map(|(sku, quantity)| Line { sku: sku.clone(), quantity: *quantity }).collect();
    let data = CartAbandoned { cart_id: cart.id.clone(), owner_id: cart.owner_id.clone(), lines, idle_since };
    Event::new(CartAbandoned::KIND, crate::NAME, data).with_subject(cart.id.clone())
}

use crate::domain::order::{HistoryEntry, Order, OrderStatus, stamp};

/// What placing an order found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// Placed now.
    New(Order),
    /// The same request placed it before: that order.
    Existing(Order),
    /// The key was used by the shopper with another request.
    KeyReused,
    /// The cart to empty is not at the version the order was priced from (it changed, or is
    /// gone): nothing was written; read it again.
    CartChanged,
    /// The promotion's uses (in all, or the shopper's) are all taken: nothing was written.
    UsedUp(String),
}

/// A move of an order: history entries to append (the last is the new status; none keeps the
/// status and only sets the deadline), the label once shipped, and the next deadline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advance {
    /// Statuses reached, with their reasons.
    pub steps: Vec<(OrderStatus, Option<String>)>,
    /// The label URL and tracking number.
    pub label: Option<(String, String)>,
    /// When the step the order now waits for gives up.
    pub deadline: Option<DateTime<Utc>>,
}

impl Advance {
    /// `order` after this move, made at `now`: the steps appended to its history (the last one its
    /// status), the label set, the deadline replaced.
    pub fn apply(&self, order: &mut Order, now: DateTime<Utc>) {
        for (status, reason) in &self.steps {
            order.status = *status;
            order.history.push(HistoryEntry { status: *status, at: now, reason: reason.clone() });
        }
        if let Some((url, tracking)) = &self.label {
            order.label_url = Some(url.clone());
            order.tracking_number = Some(tracking.clone());
        }
        order.deadline = self.deadline.map(stamp);
        order.updated_at = now;
    }
}

/// Orders.
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Places `order` (with `events`, and emptying cart `clear_cart`, given by id and the version
    /// the order was made from) unless the shopper used `key` before: then the order that request
    /// placed, or [`Placed::KeyReused`] when it was another request (`request_hash` differs).
    async fn place(
        &self,
        order: &Order,
        key: &str,
        request_hash: &str,
        clear_cart: Option<(&str, u64)>,
        events: &[Event],
    ) -> Result<Placed, StoreError>;

    /// An order.
    async fn get(&self, id: &str) -> Result<Option<Order>, StoreError>;

    /// The order a shopper placed with idempotency key `key`, with the hash of that request.
    async fn by_key(&self, customer_id: &str, key: &str) -> Result<Option<(Order, String)>, StoreError>;

    /// A shopper's orders, newest first, older than `before` (an order id), at most `limit`.
    async fn by_customer(
        &self,
        customer_id: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError>;

    /// Orders in `status`, oldest first, after `after` (an order id), at most `limit`.
    async fn by_status(&self, status: OrderStatus, after: Option<&str>, limit: usize)
    -> Result<Vec<Order>, StoreError>;

    /// Moves an order whose status is one of `from`, with `events`, in one transaction; the order
    /// after it, or `None` when its status is not (it moved on).
    async fn advance(
        &self,
        id: &str,
        from: &[OrderStatus],
        advance: &Advance,
        events: &[Event],
    ) -> Result<Option<Order>, StoreError>;

    /// Records `refund` of order `id` with `events` (the payment's refund command), in one
    /// transaction, if the order is shipped or delivered and has exactly `seen` refunds (what the
    /// refund was priced from); `whole`: nothing is left to refund, and the order moves to
    /// `refunded`. The order after it, or `None` when it changed meanwhile (price it again).
    async fn refund(
        &self,
        id: &str,
        seen: usize,
        refund: &crate::domain::refund::Refund,
        whole: bool,
        events: &[Event],
    ) -> Result<Option<Order>, StoreError>;

    /// Gives the account `user_id` every order a guest placed with `email` (normalized): they
    /// show in its history from then on. How many it took over; again, none.
    async fn claim_guest_orders(&self, email: &str, user_id: &str) -> Result<usize, StoreError>;

    /// Orders whose waiting step's deadline passed by `now`, at most `limit`.
    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Order>, StoreError>;
}

use crate::domain::pricing::Usage;
use crate::domain::promotion::Promotion;
use crate::domain::shipping::Zone;

/// The key of every use of a promotion, beside each shopper's (`customer` keys).
pub const EVERYONE: &str = "";

/// The pricing engine's settings, shipping zones and promotions, and how often each promotion is
/// used. Both are few (hundreds), read whole and cached by their readers.
#[async_trait]
pub trait PricingStore: Send + Sync {
    /// Every shipping zone, oldest first.
    async fn zones(&self) -> Result<Vec<Zone>, StoreError>;

    /// Stores `zone` (made, or replacing the zone of its id).
    async fn put_zone(&self, zone: &Zone) -> Result<(), StoreError>;

    /// Deletes zone `id`; whether it existed.
    async fn delete_zone(&self, id: &str) -> Result<bool, StoreError>;

    /// Every promotion, oldest first.
    async fn promotions(&self) -> Result<Vec<Promotion>, StoreError>;

    /// Stores `promotion`, a new one (`new`) or replacing the promotion of its id; `false` when it
    /// replaces one that does not exist. [`StoreError::CodeTaken`] when another promotion has its
    /// code.
    async fn put_promotion(&self, promotion: &Promotion, new: bool) -> Result<bool, StoreError>;

    /// Deletes promotion `id` (its code is free again; its uses are forgotten); whether it existed.
    async fn delete_promotion(&self, id: &str) -> Result<bool, StoreError>;

    /// How often each of `ids` is used, in all and by `customer` (an account id or an email).
    async fn usage(&self, ids: &[String], customer: Option<&str>) -> Result<HashMap<String, Usage>, StoreError>;
}
