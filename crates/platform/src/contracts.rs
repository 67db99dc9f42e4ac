//! The payloads of the commands and events services exchange, shared so producer and consumer agree
//! on one type. Each type's `KIND` is its CloudEvents `type`.

/// Longest order id the saga's commands carry.
pub const MAX_ORDER_ID: usize = 128;

/// The inventory's half of the checkout saga, and its stock notifications.
pub mod inventory {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Serialize};

    /// Lines one reservation may hold (each line is two items of a DynamoDB transaction, which holds
    /// at most 100).
    pub const MAX_LINES: usize = 48;

    /// Units of one SKU one line may ask for.
    pub const MAX_QUANTITY: i64 = 10_000;

    /// Longest reservation a command may ask for, in seconds (a day).
    pub const MAX_TTL_SECONDS: u64 = 86_400;

    /// Units of one SKU.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Line {
        /// The SKU.
        pub sku: String,
        /// Units, 1 or more.
        pub quantity: i64,
    }

    /// Command: hold every line for the order, or none (`inventory.reserved.v1` or
    /// `inventory.rejected.v1` answers). Idempotent per order id.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Reserve {
        /// The order.
        pub order_id: String,
        /// What to hold.
        pub lines: Vec<Line>,
        /// How long to hold it, in seconds; the service's default when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ttl_seconds: Option<u64>,
    }

    impl Reserve {
        /// The type of the command.
        pub const KIND: &'static str = "inventory.reserve.v1";
    }

    /// Command: the order is confirmed; the held units leave the warehouse
    /// (`inventory.committed.v1` or `inventory.commit_failed.v1` answers).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Commit {
        /// The order.
        pub order_id: String,
    }

    impl Commit {
        /// The type of the command.
        pub const KIND: &'static str = "inventory.commit.v1";
    }

    /// Command: give the order's units back (payment failed, order cancelled, saga timed out). Held
    /// units become available again; committed units return to stock (`inventory.released.v1`
    /// answers). A release of an order never reserved is remembered, so a late reserve holds nothing.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Release {
        /// The order.
        pub order_id: String,
        /// Why, for the ledger and the answer (`payment_failed`, `cancelled`, `timed_out`…).
        pub reason: String,
    }

    impl Release {
        /// The type of the command.
        pub const KIND: &'static str = "inventory.release.v1";
    }

    /// Every line of the order is held until `expires_at`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Reserved {
        /// The order.
        pub order_id: String,
        /// What is held.
        pub lines: Vec<Line>,
        /// When the hold lapses unless committed.
        pub expires_at: DateTime<Utc>,
    }

    impl Reserved {
        /// The type of the event.
        pub const KIND: &'static str = "inventory.reserved.v1";
    }

    /// A SKU that had too few units for a line.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
    pub struct Shortage {
        /// The SKU.
        pub sku: String,
        /// Units asked for.
        pub requested: i64,
        /// Units available then (0 for a SKU the inventory does not know).
        pub available: i64,
    }

    /// Nothing was held: the named SKUs are short.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Rejected {
        /// The order.
        pub order_id: String,
        /// The short SKUs.
        pub short: Vec<Shortage>,
    }

    impl Rejected {
        /// The type of the event.
        pub const KIND: &'static str = "inventory.rejected.v1";
    }

    /// The order's held units have left stock.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Committed {
        /// The order.
        pub order_id: String,
        /// What left stock.
        pub lines: Vec<Line>,
    }

    impl Committed {
        /// The type of the event.
        pub const KIND: &'static str = "inventory.committed.v1";
    }

    /// A commit found nothing held: the reservation expired or was released (or never existed).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct CommitFailed {
        /// The order.
        pub order_id: String,
        /// `expired`, `released`, `rejected` or `unknown`.
        pub reason: String,
    }

    impl CommitFailed {
        /// The type of the event.
        pub const KIND: &'static str = "inventory.commit_failed.v1";
    }

    /// The order's units are available again: released when held, returned to stock when committed.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Released {
        /// The order.
        pub order_id: String,
        /// The units given back (none when nothing was held).
        pub lines: Vec<Line>,
        /// `expired`, or the reason of the release command.
        pub reason: String,
        /// Whether the units had been committed (and so went back on hand).
        pub returned: bool,
    }

    impl Released {
        /// The type of the event.
        pub const KIND: &'static str = "inventory.released.v1";
    }

    /// A SKU's stock changed. `version` grows with every change, so a consumer can drop an event
    /// older than one it has applied.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Changed {
        /// The SKU.
        pub sku: String,
        /// Units that can be sold.
        pub available: i64,
        /// Units in the warehouse.
        pub on_hand: i64,
        /// Units held for orders.
        pub reserved: i64,
        /// The SKU's change counter.
        pub version: i64,
    }

    impl Changed {
        /// The type of the event.
        pub const KIND: &'static str = "inventory.changed.v1";
    }

    /// A SKU's available units dropped to its low-stock threshold or under (`low_stock.v1`), or
    /// came back above it (`restocked.v1`).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ThresholdCrossed {
        /// The SKU.
        pub sku: String,
        /// The threshold crossed.
        pub threshold: i64,
    }

    impl ThresholdCrossed {
        /// The type of the event when available units fell to the threshold or under.
        pub const LOW_STOCK: &'static str = "inventory.low_stock.v1";
        /// The type of the event when available units rose above the threshold.
        pub const RESTOCKED: &'static str = "inventory.restocked.v1";
    }
}

/// The payment's half of the checkout saga.
pub mod payment {
    use serde::{Deserialize, Serialize};

    use crate::money::Money;

    /// Command: authorize `amount` with the order's payment method (a provider token such as
    /// `pm_card_visa`; never card data). Idempotent per order: a redelivery never charges twice
    /// (`payment.authorized.v1` or `payment.failed.v1` answers).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Authorize {
        /// The order.
        pub order_id: String,
        /// The shopper (the payment's owner).
        pub customer_id: String,
        /// What to authorize.
        pub amount: Money,
        /// The provider's payment method token.
        pub payment_method: String,
    }

    impl Authorize {
        /// The type of the command.
        pub const KIND: &'static str = "payment.authorize.v1";
    }

    /// Whether `method` is a payment provider token: `pm_` and 1–200 letters, digits or `_`.
    pub fn is_payment_method_token(method: &str) -> bool {
        method.len() <= 203
            && method
                .strip_prefix("pm_")
                .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    }

    /// Command: capture the order's authorized payment (`payment.captured.v1` answers).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Capture {
        /// The order.
        pub order_id: String,
    }

    impl Capture {
        /// The type of the command.
        pub const KIND: &'static str = "payment.capture.v1";
    }

    /// Command: release the order's money: an authorization is cancelled, a capture refunded
    /// (`payment.voided.v1` or `payment.refunded.v1` answers). A void that overtakes its
    /// authorize is remembered, so the late authorize charges nothing.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Void {
        /// The order.
        pub order_id: String,
        /// Why (`cancelled`, `out_of_stock`, `timed_out`…).
        pub reason: String,
    }

    impl Void {
        /// The type of the command.
        pub const KIND: &'static str = "payment.void.v1";
    }

    /// Command: refund (part of) the order's captured payment (`payment.refunded.v1` answers).
    /// Idempotent per command: a redelivery refunds once.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RefundCommand {
        /// The order.
        pub order_id: String,
        /// Minor units to refund; all that is left when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub amount: Option<i64>,
        /// Why.
        pub reason: String,
    }

    impl RefundCommand {
        /// The type of the command.
        pub const KIND: &'static str = "payment.refund.v1";
    }

    /// An order's payment event: authorized, captured, voided or refunded.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct PaymentEvent {
        /// The order.
        pub order_id: String,
        /// The payment.
        pub payment_id: String,
        /// The amount the event is about (authorized, captured, refunded).
        pub amount: Money,
        /// The provider's reference (a PaymentIntent id).
        pub provider_ref: Option<String>,
    }

    impl PaymentEvent {
        /// The amount is authorized.
        pub const AUTHORIZED: &'static str = "payment.authorized.v1";
        /// The amount is captured.
        pub const CAPTURED: &'static str = "payment.captured.v1";
        /// The authorization is cancelled: nothing will be charged.
        pub const VOIDED: &'static str = "payment.voided.v1";
        /// The amount went back to the shopper.
        pub const REFUNDED: &'static str = "payment.refunded.v1";
        /// The shopper's bank disputes the charge.
        pub const DISPUTED: &'static str = "payment.disputed.v1";
    }

    /// A capture that can never succeed (the authorization was cancelled or has lapsed at the
    /// provider, the payment was voided or refunded, or there is none): the saga compensates the
    /// order instead of waiting for a capture.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct CaptureFailed {
        /// The order.
        pub order_id: String,
        /// Why (`authorization_cancelled`, `voided`, `refunded`, `no_payment`, the provider's
        /// message…).
        pub reason: String,
    }

    impl CaptureFailed {
        /// The type of the event.
        pub const KIND: &'static str = "payment.capture_failed.v1";
    }

    /// The authorization was refused.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Failed {
        /// The order.
        pub order_id: String,
        /// The payment.
        pub payment_id: String,
        /// The provider's error code (`card_declined`, `payment_method_invalid`…).
        pub code: String,
        /// The bank's reason, when declined (`generic_decline`, `insufficient_funds`…).
        pub decline_code: Option<String>,
        /// A message for the shopper.
        pub message: String,
    }

    impl Failed {
        /// The type of the event.
        pub const KIND: &'static str = "payment.failed.v1";
    }
}

/// What the catalog tells other services about the SKUs it sells (`GET /v1/skus`).
pub mod catalog {
    use serde::{Deserialize, Serialize};

    use crate::money::Money;

    /// How goods are taxed: each destination's tax rates are set per category.
    #[derive(
        Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
    )]
    #[serde(rename_all = "snake_case")]
    pub enum TaxCategory {
        /// The standard rate.
        #[default]
        Standard,
        /// A reduced rate (food, books … where the law says so).
        Reduced,
        /// Zero-rated or exempt.
        Zero,
    }

    impl TaxCategory {
        /// The stored name.
        pub fn as_str(self) -> &'static str {
            match self {
                Self::Standard => "standard",
                Self::Reduced => "reduced",
                Self::Zero => "zero",
            }
        }

        /// The category of a stored name.
        pub fn parse(name: &str) -> Option<Self> {
            Some(match name {
                "standard" => Self::Standard,
                "reduced" => Self::Reduced,
                "zero" => Self::Zero,
                _ => return None,
            })
        }
    }

    /// One SKU as the catalog sells it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
    pub struct SkuInfo {
        /// The SKU.
        pub sku: String,
        /// Its product.
        pub product_id: String,
        /// The product's name.
        pub name: String,
        /// The SKU's price now.
        pub price: Money,
        /// The variant's attributes (size, colour…).
        #[serde(default)]
        pub attributes: serde_json::Map<String, serde_json::Value>,
        /// The product's first image.
        #[serde(default)]
        pub image: Option<String>,
        /// Whether the product is in stock.
        pub in_stock: bool,
        /// The product's brand.
        #[serde(default)]
        pub brand: String,
        /// The product's category and its ancestors, nearest first.
        #[serde(default)]
        pub category_path: Vec<String>,
        /// How the product is taxed.
        #[serde(default)]
        pub tax_category: TaxCategory,
        /// The variant's shipping weight in grams, if known.
        #[serde(default)]
        pub weight_grams: Option<u32>,
    }

    /// The SKUs found (unknown ones are left out), in the order asked.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
    pub struct SkuList {
        /// The SKUs the catalog has.
        pub items: Vec<SkuInfo>,
    }
}

/// The order's events: every customer-facing step of an order (notifications, analytics).
pub mod order {
    use serde::{Deserialize, Serialize};

    use crate::money::Money;

    /// An order reached a status.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct OrderEvent {
        /// The order.
        pub order_id: String,
        /// The shopper.
        pub customer_id: String,
        /// The status reached.
        pub status: String,
        /// The order's total.
        pub total: Money,
        /// Why, when it says more than the status.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reason: Option<String>,
        /// The tracking number, once shipped.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tracking_number: Option<String>,
        /// How the total is made up (absent on events of orders placed before the pricing engine).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub totals: Option<Totals>,
        /// A guest order's contact: where its emails go and the secret that reads it (absent on a
        /// signed-in shopper's order, whose address the user service holds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub guest: Option<GuestContact>,
        /// What a refund gives back (`order.refunded.v1`): the amount of this refund, not of all.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub refunded: Option<Money>,
    }

    /// The contact of an order placed without an account.
    #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct GuestContact {
        /// The email the guest gave (normalized).
        pub email: String,
        /// The order's secret token: `GET /v1/orders/{id}?token=…` reads the order with it.
        pub token: String,
    }

    impl std::fmt::Debug for GuestContact {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            // The token is a bearer secret: never in a log.
            f.debug_struct("GuestContact").field("email", &self.email).finish_non_exhaustive()
        }
    }

    /// The parts of an order's total, in minor units of its currency.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Totals {
        /// The lines before discounts.
        pub subtotal: i64,
        /// Every discount.
        pub discount_total: i64,
        /// Shipping, less its discounts.
        pub shipping_total: i64,
        /// Every tax.
        pub tax_total: i64,
        /// Whether the prices include the tax (then it is part of the total, not added).
        pub tax_inclusive: bool,
    }

    /// A cart with lines was left idle: the source of reminders.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct CartAbandoned {
        /// The cart.
        pub cart_id: String,
        /// Its shopper, for a persistent cart (`None`: a guest cart, which nobody can be reminded of).
        pub owner_id: Option<String>,
        /// What is in it.
        pub lines: Vec<crate::contracts::inventory::Line>,
        /// When it last changed.
        pub idle_since: chrono::DateTime<chrono::Utc>,
    }

    impl CartAbandoned {
        /// The type of the event.
        pub const KIND: &'static str = "cart.abandoned.v1";
    }

    /// How long the checkout saga holds an order's stock (the reservation it asks for).
    pub const CHECKOUT_HOLD_SECONDS: u64 = 15 * 60;

    /// Step timeouts that pass, at most, from placing an order until its commit is asked for
    /// again: reserve 1, authorize 2, confirm 4 (the order service's step timeouts).
    pub const SAGA_STEPS_BEFORE_COMMIT: u64 = 1 + 2 + 4;

    /// The longest saga step timeout (`SHOP_SAGA_STEP_TIMEOUT_MS`): the hold must outlast
    /// [`SAGA_STEPS_BEFORE_COMMIT`] of them with one to spare, so a commit asked for again never
    /// finds its stock gone because the saga was slow.
    pub const MAX_SAGA_STEP_MS: u64 = CHECKOUT_HOLD_SECONDS * 1000 / (SAGA_STEPS_BEFORE_COMMIT + 1);

    impl OrderEvent {
        /// Placed.
        pub const PLACED: &'static str = "order.placed.v1";
        /// Confirmed: stock held and payment authorized.
        pub const CONFIRMED: &'static str = "order.confirmed.v1";
        /// Out of stock.
        pub const REJECTED: &'static str = "order.rejected.v1";
        /// The payment was refused.
        pub const PAYMENT_FAILED: &'static str = "order.payment_failed.v1";
        /// Shipped.
        pub const SHIPPED: &'static str = "order.shipped.v1";
        /// Delivered.
        pub const DELIVERED: &'static str = "order.delivered.v1";
        /// Cancelled.
        pub const CANCELLED: &'static str = "order.cancelled.v1";
        /// Units (or the shipping) refunded; `refunded` says how much. The status is the order's
        /// after the refund (`refunded` once nothing is left).
        pub const REFUNDED: &'static str = "order.refunded.v1";
    }
}

pub mod reconcile;

pub mod user {
    use serde::{Deserialize, Serialize};

    /// An account's email was proven to be its owner's (the verification link was followed): the
    /// order service gives the account the orders placed as a guest with that email.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct EmailVerified {
        /// The account.
        pub user_id: String,
        /// The email (normalized).
        pub email: String,
    }

    impl EmailVerified {
        /// The type of the event.
        pub const KIND: &'static str = "user.email_verified.v1";
    }
}
