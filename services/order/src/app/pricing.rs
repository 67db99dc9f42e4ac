//! Pricing a cart: the pricing engine's settings (zones and promotions) read through a short-lived
//! cache, and the steps that turn a cart into its [`Breakdown`](crate::domain::pricing::Breakdown).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::promotion::Promotion;
use crate::domain::shipping::Zone;
use crate::store::{PricingStore, StoreError};

/// How long the settings are reused before they are read again: an admin's change shows in every
/// process within this (at once in the process that made it).
pub const SETTINGS_TTL: Duration = Duration::from_secs(5);

/// Zones and promotions, as last read.
#[derive(Debug, Clone, Default)]
pub struct PricingSettings {
    /// Every shipping zone.
    pub zones: Vec<Zone>,
    /// Every promotion.
    pub promotions: Vec<Promotion>,
}

/// The settings, read from the store at most every [`SETTINGS_TTL`].
pub struct PricingCache {
    store: Arc<dyn PricingStore>,
    cached: Mutex<Option<(Instant, Arc<PricingSettings>)>>,
}

impl PricingCache {
    /// A cache over `store`.
    pub fn new(store: Arc<dyn PricingStore>) -> Self {
        Self { store, cached: Mutex::new(None) }
    }

    /// The settings, at most [`SETTINGS_TTL`] old.
    pub async fn get(&self) -> Result<Arc<PricingSettings>, StoreError> {
        if let Some((at, settings)) = self.cached.lock().expect("pricing cache lock").as_ref()
            && at.elapsed() < SETTINGS_TTL
        {
            return Ok(settings.clone());
        }
        let (zones, promotions) = futures::try_join!(self.store.zones(), self.store.promotions())?;
        let settings = Arc::new(PricingSettings { zones, promotions });
        *self.cached.lock().expect("pricing cache lock") = Some((Instant::now(), settings.clone()));
        Ok(settings)
    }

    /// Drops the cached settings (after a change).
    pub fn forget(&self) {
        *self.cached.lock().expect("pricing cache lock") = None;
    }
}

use std::collections::HashMap;

use async_trait::async_trait;
use platform::contracts::catalog::SkuInfo;

use crate::domain::pricing::{
    self, Breakdown, Destination, Line, ShippingCharge, Shopper, TaxRequest, TaxResult, Usage,
};
use crate::domain::shipping::{self, Offer};
use crate::domain::{Cart, CartItem, ShippingChoice};
use crate::store::OrderStore;

/// A failure of the tax calculator.
#[derive(Debug, thiserror::Error)]
#[error("the tax calculator failed: {0}")]
pub struct TaxError(pub String);

impl platform::error::Kinded for TaxError {
    fn kind(&self) -> platform::error::ErrorKind {
        platform::error::ErrorKind::Unavailable
    }
}

/// Computes the tax of what is left to pay for each line and the shipping, after discounts. The
/// built-in adapter applies the zone's rates ([`BuiltInTax`]); an external tax service (Stripe Tax,
/// Avalara) would be another adapter, answering the same request.
#[async_trait]
pub trait TaxCalculator: Send + Sync {
    /// The taxes of `request`, whose destination `zone` ships to.
    async fn calculate(&self, request: &TaxRequest, zone: &shipping::Zone) -> Result<TaxResult, TaxError>;
}

/// The zone's own rates, by country, region and tax category.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltInTax;

#[async_trait]
impl TaxCalculator for BuiltInTax {
    async fn calculate(&self, request: &TaxRequest, zone: &shipping::Zone) -> Result<TaxResult, TaxError> {
        Ok(pricing::apply_rates(request, &zone.rates_at(&request.destination)))
    }
}

/// A failure pricing a cart.
#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    /// Reading the settings or the uses failed.
    #[error("reading the pricing settings")]
    Store(#[from] StoreError),
    /// The tax calculator failed.
    #[error("computing the tax")]
    Tax(#[from] TaxError),
}

impl platform::error::Kinded for PricingError {
    fn kind(&self) -> platform::error::ErrorKind {
        match self {
            Self::Store(error) => error.kind(),
            Self::Tax(error) => error.kind(),
        }
    }
}

/// Why a cart's shipping choice does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShippingProblem {
    /// No zone ships to the destination (in the cart's currency).
    OutsideZones,
    /// The zone does not offer the method chosen.
    MethodNotOffered(String),
}

impl ShippingProblem {
    /// What a shopper reads.
    pub fn message(&self, country: &str) -> String {
        match self {
            Self::OutsideZones => format!("we do not ship to {country}"),
            Self::MethodNotOffered(method) => format!("the shipping method {method:?} is not offered for {country}"),
        }
    }
}

/// A priced cart.
#[derive(Debug, Clone)]
pub struct Quote {
    /// The whole price.
    pub breakdown: Breakdown,
    /// The zone that ships to the cart's destination.
    pub zone: Option<shipping::Zone>,
    /// Why the shipping chosen does not hold, if it does not.
    pub shipping_problem: Option<ShippingProblem>,
    /// The uses of limited promotions an order placed at this price holds.
    pub redemptions: Vec<crate::domain::order::Redemption>,
}

/// Prices carts: the catalog's lines, the zones, the promotions in force, their uses and the tax.
pub struct Pricer {
    cache: Arc<PricingCache>,
    store: Arc<dyn PricingStore>,
    orders: Arc<dyn OrderStore>,
    tax: Arc<dyn TaxCalculator>,
}

/// The key a shopper's uses of promotions are counted under: their account, else their email.
pub fn customer_key(shopper: &Shopper) -> Option<String> {
    shopper.id.clone().or_else(|| shopper.email.as_ref().map(|email| format!("email:{email}")))
}

impl Pricer {
    /// A pricer reading `cache` (and `store` for uses), counting a shopper's orders in `orders`,
    /// taxing with `tax`.
    pub fn new(
        cache: Arc<PricingCache>,
        store: Arc<dyn PricingStore>,
        orders: Arc<dyn OrderStore>,
        tax: Arc<dyn TaxCalculator>,
    ) -> Self {
        Self { cache, store, orders, tax }
    }

    /// The settings (zones and promotions) in use.
    pub async fn settings(&self) -> Result<Arc<PricingSettings>, StoreError> {
        self.cache.get().await
    }

    /// The methods that ship `cart` (its `items` as priced, `catalog` its SKUs) to `destination`,
    /// with their prices; `None` when no zone ships there.
    pub async fn offers(
        &self,
        cart: &Cart,
        items: &[CartItem],
        catalog: &HashMap<String, SkuInfo>,
        destination: &Destination,
    ) -> Result<Option<Vec<Offer>>, StoreError> {
        let settings = self.cache.get().await?;
        let Some(zone) = shipping::zone_for(&settings.zones, destination, &cart.currency) else { return Ok(None) };
        let (subtotal, grams) = measure(items, catalog);
        Ok(Some(shipping::offers(zone, subtotal, grams)))
    }

    /// Kept orders `shopper` placed before (only counted when a promotion asks).
    async fn previous_orders(&self, shopper: &Shopper) -> Result<u64, StoreError> {
        let id = match (&shopper.id, &shopper.email) {
            (Some(id), _) => id.clone(),
            // A guest's earlier orders are those placed with the same email.
            (None, Some(email)) => crate::domain::order::guest_customer_id(email),
            (None, None) => return Ok(0),
        };
        let orders = self.orders.by_customer(&id, None, 20).await?;
        Ok(orders.iter().filter(|o| o.status.is_kept()).count() as u64)
    }

    /// Prices `cart` (its `items` as priced from `catalog`) for `shopper`, shipping as the cart
    /// says or, when given, to `ship_to`.
    pub async fn quote(
        &self,
        cart: &Cart,
        items: &[CartItem],
        catalog: &HashMap<String, SkuInfo>,
        shopper: &Shopper,
        ship_to: Option<&ShippingChoice>,
    ) -> Result<Quote, PricingError> {
        let settings = self.cache.get().await?;
        let lines: Vec<Line> = items
            .iter()
            .map(|item| {
                let info = catalog.get(&item.sku);
                Line {
                    sku: item.sku.clone(),
                    product_id: item.product_id.clone(),
                    categories: info.map(|i| i.category_path.clone()).unwrap_or_default(),
                    brand: info.map(|i| i.brand.clone()).unwrap_or_default(),
                    quantity: item.quantity,
                    unit_price: item.unit_price.amount,
                    tax_category: info.map(|i| i.tax_category).unwrap_or_default(),
                }
            })
            .collect();
        let (subtotal, grams) = measure(items, catalog);

        let choice = ship_to.or(cart.shipping.as_ref());
        let destination = choice.map(|c| Destination {
            country: c.country.clone(),
            region: c.region.clone(),
            postal_code: c.postal_code.clone(),
        });
        let zone = destination.as_ref().and_then(|d| shipping::zone_for(&settings.zones, d, &cart.currency)).cloned();
        let mut shipping_problem = None;
        let mut charge = None;
        match (&zone, choice) {
            (None, Some(_)) => shipping_problem = Some(ShippingProblem::OutsideZones),
            (Some(zone), Some(ShippingChoice { method_id: Some(method_id), .. })) => {
                match zone.methods.iter().find(|m| &m.id == method_id) {
                    Some(method) => {
                        charge = Some(ShippingCharge {
                            method_id: method.id.clone(),
                            name: method.name.clone(),
                            price: shipping::price_of(method, subtotal, grams),
                        });
                    }
                    None => shipping_problem = Some(ShippingProblem::MethodNotOffered(method_id.clone())),
                }
            }
            _ => {}
        }

        // Automatic promotions in force, and those of the codes entered (whatever their state, so
        // the cart says why one does not apply).
        let now = chrono::Utc::now();
        let candidates: Vec<Promotion> = settings
            .promotions
            .iter()
            .filter(|p| match &p.code {
                Some(code) => cart.codes.contains(code),
                None => {
                    p.active
                        && p.conditions.starts_at.is_none_or(|start| start <= now)
                        && p.conditions.ends_at.is_none_or(|end| now < end)
                }
            })
            .cloned()
            .collect();
        let limited: Vec<String> = candidates
            .iter()
            .filter(|p| p.limits.total.is_some() || p.limits.per_customer.is_some())
            .map(|p| p.id.clone())
            .collect();
        let usage: HashMap<String, Usage> = if limited.is_empty() {
            HashMap::new()
        } else {
            self.store.usage(&limited, customer_key(shopper).as_deref()).await?
        };
        let mut shopper = shopper.clone();
        if candidates.iter().any(|p| p.conditions.first_order_only) {
            shopper.previous_orders = self.previous_orders(&shopper).await?;
        }
        let discounted = pricing::discount(&pricing::Input {
            currency: &cart.currency,
            lines: &lines,
            shopper: &shopper,
            shipping: charge.as_ref(),
            promotions: &candidates,
            codes: &cart.codes,
            usage: &usage,
            now,
        });
        let (taxes, inclusive) = match (&zone, destination) {
            (Some(zone), Some(destination)) => {
                let request = discounted.tax_request(destination, zone.tax_inclusive, zone.shipping_taxed);
                (self.tax.calculate(&request, zone).await?, zone.tax_inclusive)
            }
            _ => (TaxResult::default(), false),
        };
        let breakdown = pricing::total(discounted, taxes, inclusive);
        let customer = customer_key(&shopper);
        let redemptions = candidates
            .iter()
            .filter(|p| p.limits.total.is_some() || p.limits.per_customer.is_some())
            .filter(|p| breakdown.promotions.iter().any(|o| o.applied && o.promotion_id == p.id))
            .map(|p| crate::domain::order::Redemption {
                promotion_id: p.id.clone(),
                customer: customer.clone(),
                total_limit: p.limits.total,
                per_customer_limit: p.limits.per_customer,
            })
            .collect();
        Ok(Quote { breakdown, zone, shipping_problem, redemptions })
    }
}

/// A cart's subtotal (minor units) and weight (grams).
fn measure(items: &[CartItem], catalog: &HashMap<String, SkuInfo>) -> (i64, i64) {
    let subtotal = items.iter().map(|i| i.line_total.amount).sum();
    let grams = items
        .iter()
        .map(|i| i.quantity * i64::from(catalog.get(&i.sku).and_then(|s| s.weight_grams).unwrap_or(0)))
        .sum();
    (subtotal, grams)
}
