//! Checkout: a cart becomes an order. Its lines are priced from the catalog now and the whole cart
//! by the pricing engine (promotions, the codes entered, shipping to the order's address, tax),
//! the order is written `pending` with that breakdown, `order.placed.v1`, the stock reservation
//! and the uses of limited promotions in one transaction, and the cart emptied; the saga takes it
//! from there. The same idempotency key and request answer the
//! same order, however often they are sent.

use std::sync::Arc;

use platform::address::AddressInput;
use platform::client::ClientError;
use platform::http::{FieldError, Validator};
use platform::telemetry::trace::TraceContext;
use sha2::{Digest, Sha256};

use crate::app::pricing::{Pricer, PricingError};
use crate::app::saga::placing;
use crate::catalog::Catalog;
use crate::domain::order::Order;
use crate::domain::pricing::{Destination, Shopper};
use crate::domain::{Cart, MAX_LINES, ShippingChoice, is_cart_id, is_payment_method_token, price};
use crate::store::{CartStore, OrderStore, Placed, StoreError};

/// Tries of a checkout whose cart changed under it.
const PLACE_ATTEMPTS: usize = 3;

/// What a shopper asks to check out.
#[derive(Debug, Clone)]
pub struct PlaceOrder {
    /// The shopper: their account, or a guest's key ([`guest_customer_id`](crate::domain::order::guest_customer_id)).
    pub customer_id: String,
    /// A guest's email (normalized): the order is a guest's, read with a token of its own.
    pub guest_email: Option<String>,
    /// The cart: the shopper's persistent cart, or a guest cart.
    pub cart_id: String,
    /// Where the parcel goes (as sent; checked here).
    pub shipping_address: AddressInput,
    /// The payment provider's token of the shopper's payment method.
    pub payment_method: String,
    /// The `Idempotency-Key` naming this checkout.
    pub key: String,
    /// A digest of the whole request, so a key sent again with another request is refused.
    pub fingerprint: String,
    /// The trace of the request: the order's first events carry it, and every step they cause.
    pub trace: TraceContext,
}

/// The digest of a request that [`PlaceOrder::fingerprint`] keeps.
pub fn fingerprint(request: &impl serde::Serialize) -> String {
    hex::encode(Sha256::digest(serde_json::to_string(request).expect("a request serializes").as_bytes()))
}

/// Why a checkout placed nothing.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// The idempotency key named another request.
    #[error("this Idempotency-Key was used with another request")]
    KeyReused,
    /// No such cart of the shopper's.
    #[error("no such cart")]
    CartNotFound,
    /// Fields of the request are wrong (the address, the payment method, the cart's lines).
    #[error("the checkout request is invalid")]
    Invalid(Vec<FieldError>),
    /// The catalog did not answer: nothing can be priced.
    #[error("the catalog is not answering; try again shortly")]
    CatalogUnavailable(#[source] ClientError),
    /// The cart changed under every try.
    #[error("the cart kept changing during checkout; try again")]
    CartKeptChanging,
    /// A code entered does not apply (any more): the reason (`used_up`, `expired` …) and what a
    /// shopper reads.
    #[error("{1}")]
    CodeRefused(String, String),
    /// Pricing failed (the settings could not be read, the tax calculator failed).
    #[error(transparent)]
    Pricing(#[from] PricingError),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CheckoutError {
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError { field: field.to_owned(), message: message.into() }])
    }
}

/// What a checkout needs.
pub struct Checkout {
    carts: Arc<dyn CartStore>,
    orders: Arc<dyn OrderStore>,
    catalog: Arc<dyn Catalog>,
    pricer: Arc<Pricer>,
    step: chrono::Duration,
}

/// What reading and pricing the cart found.
enum Priced {
    /// The order to answer with (the same key placed it meanwhile).
    Answer(Order),
    /// The order to place, and the version of the cart it was made from.
    Order(Order, u64),
}

impl Checkout {
    /// Checkouts of `carts` into `orders`, the lines priced by `catalog` and the cart by
    /// `pricer`, their first saga step due after `step`.
    pub fn new(
        carts: Arc<dyn CartStore>,
        orders: Arc<dyn OrderStore>,
        catalog: Arc<dyn Catalog>,
        pricer: Arc<Pricer>,
        step: chrono::Duration,
    ) -> Self {
        Self { carts, orders, catalog, pricer, step }
    }

    /// Places the order `request` asks for, or answers the one its key placed before. The span
    /// names the cart only when it is the shopper's own: a guest cart's id is its bearer secret.
    #[tracing::instrument(skip_all, fields(cart.id, order.id))]
    pub async fn place(&self, request: &PlaceOrder) -> Result<Order, CheckoutError> {
        let (customer, key, hash) = (&request.customer_id, &request.key, &request.fingerprint);
        if let Some(order) = self.replay(customer, key, hash).await? {
            return Ok(order);
        }

        let mut v = Validator::new();
        let address = request.shipping_address.clone().validated(&mut v);
        v.check(
            is_payment_method_token(&request.payment_method),
            "payment_method",
            "must be a payment method token from the payment provider (pm_…)",
        );
        v.into_errors().map_err(CheckoutError::Invalid)?;
        if !is_cart_id(&request.cart_id) {
            return Err(CheckoutError::CartNotFound);
        }
        // A cart that changes between its read and the placement (another tab, or a stale cached
        // copy) places nothing: read it again from the store, a few times.
        let mut from_store = false;
        for _ in 0..PLACE_ATTEMPTS {
            let cart = if from_store {
                self.carts.refresh(&request.cart_id).await
            } else {
                self.carts.get(&request.cart_id).await
            };
            let cart = cart?.ok_or(CheckoutError::CartNotFound)?;
            if cart.owner_id.is_some() {
                tracing::Span::current().record("cart.id", cart.id.as_str());
            }
            if cart.lines.is_empty() && !from_store {
                // An empty copy may be stale: the store decides.
                from_store = true;
                continue;
            }
            let (order, version) = match self.price(request, cart, &address).await? {
                Priced::Answer(order) => return Ok(order),
                Priced::Order(order, version) => (order, version),
            };
            // In the request's trace, which every step they cause carries on.
            let events: Vec<_> = placing(&order).into_iter().map(|event| event.with_trace(&request.trace)).collect();
            let cart = Some((request.cart_id.as_str(), version));
            let placed = match self.orders.place(&order, key, hash, cart, &events).await? {
                Placed::New(order) => {
                    metrics::counter!("orders_placed_total").increment(1);
                    tracing::info!(order.id = %order.id, "order placed");
                    order
                }
                Placed::Existing(order) => order,
                Placed::KeyReused => return Err(CheckoutError::KeyReused),
                Placed::UsedUp(promotion_id) => {
                    let name = order
                        .pricing
                        .promotions
                        .iter()
                        .find(|p| p.promotion_id == promotion_id)
                        .map(|p| p.code.clone().unwrap_or_else(|| p.name.clone()))
                        .unwrap_or(promotion_id);
                    return Err(CheckoutError::CodeRefused(
                        "used_up".into(),
                        format!("{name}: this code has been used as often as it may"),
                    ));
                }
                Placed::CartChanged => {
                    from_store = true;
                    continue;
                }
            };
            tracing::Span::current().record("order.id", placed.id.as_str());
            // The order emptied the cart: renew its copy (again, for a repeat whose first try
            // stopped short of it).
            if let Err(error) = self.carts.refresh(&request.cart_id).await {
                tracing::warn!(error = %platform::error::cause_chain(&error), "could not renew an emptied cart's copy");
            }
            return Ok(placed);
        }
        Err(CheckoutError::CartKeptChanging)
    }

    /// The order an earlier request with `key` placed, if it was this request.
    async fn replay(&self, customer_id: &str, key: &str, hash: &str) -> Result<Option<Order>, CheckoutError> {
        match self.orders.by_key(customer_id, key).await? {
            Some((order, stored)) if stored == hash => Ok(Some(order)),
            Some(_) => Err(CheckoutError::KeyReused),
            None => Ok(None),
        }
    }

    /// Prices `cart` to check out, and makes the order.
    async fn price(&self, request: &PlaceOrder, cart: Cart, address: &AddressInput) -> Result<Priced, CheckoutError> {
        let customer_id = &request.customer_id;
        if cart.owner_id.as_ref().is_some_and(|owner| owner != customer_id) {
            return Err(CheckoutError::CartNotFound);
        }
        let skus: Vec<String> = cart.lines.iter().map(|(sku, _)| sku.clone()).collect();
        if skus.is_empty() {
            // A request with the same key may have placed the order (and emptied the cart) since.
            if let Some(order) = self.replay(customer_id, &request.key, &request.fingerprint).await? {
                return Ok(Priced::Answer(order));
            }
            return Err(CheckoutError::invalid("cart_id", "the cart is empty"));
        }
        if skus.len() > MAX_LINES {
            return Err(CheckoutError::invalid(
                "cart_id",
                format!("an order holds at most {MAX_LINES} different SKUs"),
            ));
        }
        let catalog = self.catalog.skus(&skus).await.map_err(CheckoutError::CatalogUnavailable)?;
        let priced = price(&cart, &catalog);
        if !priced.unavailable.is_empty() {
            let skus: Vec<&str> = priced.unavailable.iter().map(|u| u.sku.as_str()).collect();
            return Err(CheckoutError::invalid(
                "cart_id",
                format!("the catalog does not sell {} now", skus.join(", ")),
            ));
        }
        let shopper = match &request.guest_email {
            Some(email) => Shopper { id: None, email: Some(email.clone()), ..Shopper::default() },
            None => Shopper { id: Some(customer_id.clone()), ..Shopper::default() },
        };
        let ship_to = self.ship_to(&cart, &priced.items, &catalog, address).await?;
        let quote = self.pricer.quote(&cart, &priced.items, &catalog, &shopper, ship_to.as_ref()).await?;
        if let Some(problem) = quote.shipping_problem {
            return Err(CheckoutError::invalid("shipping_address.country", problem.message(&address.country)));
        }
        if let Some(refused) = quote.breakdown.promotions.iter().find(|p| p.code.is_some() && !p.applied) {
            let code = refused.code.clone().unwrap_or_default();
            return Err(CheckoutError::CodeRefused(
                refused.reason.clone().unwrap_or_else(|| "refused".into()),
                format!("{code}: {}", refused.detail.clone().unwrap_or_default()),
            ));
        }
        let mut order = Order::pending(
            customer_id.clone(),
            priced.items,
            priced.subtotal,
            address.clone(),
            request.payment_method.clone(),
            self.step,
        );
        if let Some(email) = &request.guest_email {
            order.email = Some(email.clone());
            order.token = Some(crate::domain::order::new_order_token());
        }
        order.total = platform::money::Money::new(quote.breakdown.grand_total, &quote.breakdown.currency);
        order.pricing = quote.breakdown;
        order.redemptions = quote.redemptions;
        Ok(Priced::Order(order, cart.version))
    }

    /// Where and how the order ships: to its address, by the method the cart chose (the cheapest
    /// the zone offers when it chose none). `None` when the shop has no shipping zones at all (no
    /// shipping is charged then).
    async fn ship_to(
        &self,
        cart: &Cart,
        items: &[crate::domain::CartItem],
        catalog: &std::collections::HashMap<String, platform::contracts::catalog::SkuInfo>,
        address: &AddressInput,
    ) -> Result<Option<ShippingChoice>, CheckoutError> {
        if self.pricer.settings().await.map_err(PricingError::from)?.zones.is_empty() {
            return Ok(None);
        }
        let destination = Destination {
            country: address.country.clone(),
            region: address.region.clone(),
            postal_code: Some(address.postal_code.clone()),
        };
        let chosen = cart.shipping.as_ref().and_then(|s| s.method_id.clone());
        let method_id = match chosen {
            Some(method) => Some(method),
            None => {
                let offers =
                    self.pricer.offers(cart, items, catalog, &destination).await.map_err(PricingError::from)?;
                offers.and_then(|offers| offers.first().map(|o| o.id.clone()))
            }
        };
        Ok(Some(ShippingChoice {
            country: destination.country,
            region: destination.region,
            postal_code: destination.postal_code,
            method_id,
        }))
    }
}
