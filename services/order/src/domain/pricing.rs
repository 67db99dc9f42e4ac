//! The pricing engine: what a cart costs, line by line, with its promotions, shipping and tax.
//!
//! It runs in two pure steps with the tax calculator between them (a port, so an external tax
//! service can compute the tax): [`discount`] applies the promotions to the lines and the shipping
//! and says why each promotion applied or not; the tax calculator taxes what is left of each line
//! and of the shipping ([`Discounted::tax_request`]); [`total`] puts it together into the
//! [`Breakdown`] that the cart shows, the order keeps and the payment authorizes.
//!
//! # Rounding
//! Amounts are integers in minor units, and every rounding is half up (half away from zero):
//! - a percentage off lines is rounded once per line; an order-wide percentage once on the order;
//! - an amount shared by several lines (an order-wide discount, the tax of a line shared among its
//!   rates) is split in proportion by the largest-remainder method, so the shares add up to it
//!   exactly and none is larger than what it is taken from;
//! - tax is rounded per line and per rate (tax-exclusive), or, where prices include tax, the tax in
//!   each line's total at the sum of its rates is rounded once and shared among the rates.
//!
//! # Stacking
//! Promotions are considered from the highest priority down (then by id). One that applies is
//! applied to what earlier ones left, so no line or shipping ever goes below zero. An exclusive
//! promotion applies only when nothing applied before it, and nothing applies after it.

use std::cmp::Reverse;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use platform::contracts::catalog::TaxCategory;
use serde::{Deserialize, Serialize};

use super::promotion::{Action, BasisPoints, Promotion, Target, WHOLE};

/// A line to price: a cart line with what the catalog says about its SKU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The SKU.
    pub sku: String,
    /// Its product.
    pub product_id: String,
    /// The product's category and its ancestors.
    pub categories: Vec<String>,
    /// The product's brand.
    pub brand: String,
    /// Units.
    pub quantity: i64,
    /// The catalog price of one unit, in minor units.
    pub unit_price: i64,
    /// How it is taxed.
    pub tax_category: TaxCategory,
}

/// Who is buying, as far as promotions care.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shopper {
    /// The account, when signed in.
    pub id: Option<String>,
    /// The email (lower case), when known.
    pub email: Option<String>,
    /// Orders they placed before that were kept (not failed, rejected or cancelled).
    pub previous_orders: u64,
}

/// The shipping chosen, priced by its method for this cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingCharge {
    /// The method.
    pub method_id: String,
    /// Its name.
    pub name: String,
    /// Its price for this cart, in minor units.
    pub price: i64,
}

/// How often a promotion was used (by orders kept or in progress).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// In all.
    pub total: u64,
    /// By this shopper.
    pub by_shopper: u64,
}

/// Everything a price depends on.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The cart's currency.
    pub currency: &'a str,
    /// Its lines.
    pub lines: &'a [Line],
    /// Who buys.
    pub shopper: &'a Shopper,
    /// The shipping chosen, if any yet.
    pub shipping: Option<&'a ShippingCharge>,
    /// The automatic promotions in force and the promotions of the codes entered.
    pub promotions: &'a [Promotion],
    /// The codes entered (normalized): a promotion with a code applies only when it is here.
    pub codes: &'a [String],
    /// Uses so far, by promotion id.
    pub usage: &'a HashMap<String, Usage>,
    /// Now.
    pub now: DateTime<Utc>,
}

/// Why a promotion did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// An admin paused it.
    Inactive,
    /// Its window has not begun.
    NotYetActive,
    /// Its window is over.
    Expired,
    /// Its amounts are in another currency than the cart's.
    OtherCurrency,
    /// The subtotal is below its minimum (minor units).
    MinimumNotMet(i64),
    /// Fewer units than its minimum.
    MinimumQuantityNotMet(i64),
    /// The shopper ordered before.
    FirstOrderOnly,
    /// The shopper is not on its list.
    NotEligible,
    /// Every use is taken.
    UsedUp,
    /// The shopper used it as often as one may.
    UsedUpByCustomer,
    /// It cannot be combined with the named promotion, which applies.
    NotCombinable(String),
    /// Nothing in the cart is what it discounts.
    NoMatchingItems,
    /// No shipping is chosen (or it costs nothing already).
    NoShipping,
}

impl Refusal {
    /// The machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Inactive => "inactive",
            Self::NotYetActive => "not_yet_active",
            Self::Expired => "expired",
            Self::OtherCurrency => "other_currency",
            Self::MinimumNotMet(_) => "minimum_not_met",
            Self::MinimumQuantityNotMet(_) => "minimum_quantity_not_met",
            Self::FirstOrderOnly => "first_order_only",
            Self::NotEligible => "not_eligible",
            Self::UsedUp => "used_up",
            Self::UsedUpByCustomer => "used_up_by_customer",
            Self::NotCombinable(_) => "not_combinable",
            Self::NoMatchingItems => "no_matching_items",
            Self::NoShipping => "no_shipping",
        }
    }

    /// What a shopper reads.
    pub fn message(&self, currency: &str) -> String {
        match self {
            Self::Inactive => "this promotion is not running".into(),
            Self::NotYetActive => "this promotion has not started yet".into(),
            Self::Expired => "this promotion has ended".into(),
            Self::OtherCurrency => format!("this promotion does not apply to carts in {currency}"),
            Self::MinimumNotMet(min) => {
                format!("the subtotal must reach {} {currency}", platform::money::decimal(*min))
            }
            Self::MinimumQuantityNotMet(min) => format!("it takes at least {min} qualifying items"),
            Self::FirstOrderOnly => "only for a first order".into(),
            Self::NotEligible => "this promotion is not available to you".into(),
            Self::UsedUp => "this code has been used as often as it may".into(),
            Self::UsedUpByCustomer => "you have used this code as often as you may".into(),
            Self::NotCombinable(with) => format!("cannot be combined with {with}"),
            Self::NoMatchingItems => "nothing in the cart qualifies".into(),
            Self::NoShipping => "choose a shipping method with a price first".into(),
        }
    }
}

/// A promotion's share of a line or of the shipping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Allocation {
    /// The promotion.
    pub promotion_id: String,
    /// Minor units taken off.
    pub amount: i64,
}

/// One tax on a line or on the shipping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaxLine {
    /// Its name (`VAT`, `Sales tax` …).
    pub name: String,
    /// Its rate, in basis points (1,900 is 19 %).
    pub rate_bp: BasisPoints,
    /// Minor units.
    pub amount: i64,
}

/// What became of a promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PromotionOutcome {
    /// The promotion.
    pub promotion_id: String,
    /// Its name.
    pub name: String,
    /// The code that brought it, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Whether it applied.
    pub applied: bool,
    /// What it took off (0 when refused).
    pub amount: i64,
    /// Why not: `expired`, `minimum_not_met`, `not_combinable` …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why not, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A line after the promotions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscountedLine {
    /// The line.
    pub line: Line,
    /// `unit_price × quantity`.
    pub subtotal: i64,
    /// What each promotion took off it.
    pub discounts: Vec<Allocation>,
}

impl DiscountedLine {
    /// What is left to pay for it (before tax where prices exclude it).
    pub fn net(&self) -> i64 {
        self.subtotal - self.discounts.iter().map(|a| a.amount).sum::<i64>()
    }
}

/// The shipping after the promotions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscountedShipping {
    /// The charge.
    pub charge: ShippingCharge,
    /// What each promotion took off it.
    pub discounts: Vec<Allocation>,
}

impl DiscountedShipping {
    /// What is left to pay for it.
    pub fn net(&self) -> i64 {
        self.charge.price - self.discounts.iter().map(|a| a.amount).sum::<i64>()
    }
}

/// The first step's result: the lines and shipping with their discounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discounted {
    /// The currency.
    pub currency: String,
    /// The lines, in the cart's order.
    pub lines: Vec<DiscountedLine>,
    /// The shipping, if chosen.
    pub shipping: Option<DiscountedShipping>,
    /// Every promotion considered, in the order considered.
    pub promotions: Vec<PromotionOutcome>,
}

/// A price with what a percentage of it is, rounded half up.
fn percent_of(amount: i64, bp: BasisPoints) -> i64 {
    let exact = i128::from(amount) * i128::from(bp);
    i64::try_from((exact + i128::from(WHOLE / 2)) / i128::from(WHOLE)).unwrap_or(i64::MAX)
}

/// `total` shared in proportion to `weights` (each at least 0) by the largest-remainder method:
/// the shares add up to `total` exactly, and none exceeds its weight when `total` does not exceed
/// their sum. Ties go to the earlier weight.
pub fn allocate(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|w| i128::from((*w).max(0))).sum();
    if sum == 0 || total == 0 {
        return vec![0; weights.len()];
    }
    let total128 = i128::from(total);
    let mut shares: Vec<i64> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let exact = total128 * i128::from((*w).max(0));
        shares.push(i64::try_from(exact / sum).unwrap_or(i64::MAX));
        remainders.push((exact % sum, i));
    }
    let mut left = total - shares.iter().sum::<i64>();
    remainders.sort_by_key(|(remainder, i)| (Reverse(*remainder), *i));
    for (_, i) in remainders {
        if left == 0 {
            break;
        }
        if weights[i] > 0 {
            shares[i] += 1;
            left -= 1;
        }
    }
    shares
}

/// Whether `line` is one `target` names.
fn matches(target: &Target, line: &Line) -> bool {
    target.is_everything()
        || target.skus.contains(&line.sku)
        || target.products.contains(&line.product_id)
        || target.categories.iter().any(|c| line.categories.contains(c))
        || target.brands.iter().any(|b| b.eq_ignore_ascii_case(&line.brand))
}

/// The target of an action (`None`: the whole order).
fn target_of(action: &Action) -> Option<&Target> {
    match action {
        Action::LinesPercent { target, .. } | Action::LinesFixed { target, .. } | Action::BuyXGetY { target, .. } => {
            Some(target)
        }
        Action::OrderPercent { .. } | Action::OrderFixed { .. } | Action::FreeShipping => None,
    }
}

/// Why `promotion` cannot apply to this cart at all (before stacking), if it cannot.
fn refusal(promotion: &Promotion, input: &Input<'_>, subtotal: i64) -> Option<Refusal> {
    let c = &promotion.conditions;
    if !promotion.active {
        return Some(Refusal::Inactive);
    }
    if c.starts_at.is_some_and(|start| input.now < start) {
        return Some(Refusal::NotYetActive);
    }
    if c.ends_at.is_some_and(|end| input.now >= end) {
        return Some(Refusal::Expired);
    }
    if promotion.currency.as_deref().is_some_and(|currency| currency != input.currency) {
        return Some(Refusal::OtherCurrency);
    }
    if !c.customers.is_empty() {
        let shopper = input.shopper;
        let listed = |who: &Option<String>| who.as_ref().is_some_and(|who| c.customers.contains(&who.to_lowercase()));
        if !listed(&shopper.id) && !listed(&shopper.email) {
            return Some(Refusal::NotEligible);
        }
    }
    if c.first_order_only && input.shopper.previous_orders > 0 {
        return Some(Refusal::FirstOrderOnly);
    }
    let usage = input.usage.get(&promotion.id).copied().unwrap_or_default();
    if promotion.limits.total.is_some_and(|limit| usage.total >= u64::from(limit)) {
        return Some(Refusal::UsedUp);
    }
    if promotion.limits.per_customer.is_some_and(|limit| usage.by_shopper >= u64::from(limit)) {
        return Some(Refusal::UsedUpByCustomer);
    }
    if let Some(min) = c.min_subtotal
        && subtotal < min
    {
        return Some(Refusal::MinimumNotMet(min));
    }
    if let Some(min) = c.min_quantity {
        let target = target_of(&promotion.action);
        let units: i64 = input.lines.iter().filter(|l| target.is_none_or(|t| matches(t, l))).map(|l| l.quantity).sum();
        if units < min {
            return Some(Refusal::MinimumQuantityNotMet(min));
        }
    }
    None
}

/// What `action` takes off each line (by index) and off the shipping, from what is `left` of them.
fn amounts(action: &Action, lines: &[Line], left: &[i64], shipping_left: i64) -> (Vec<i64>, i64) {
    let mut off = vec![0; lines.len()];
    match action {
        Action::OrderPercent { percent_bp } => {
            let base: i64 = left.iter().sum();
            off = allocate(percent_of(base, *percent_bp), left);
        }
        Action::OrderFixed { amount } => {
            let base: i64 = left.iter().sum();
            off = allocate((*amount).min(base), left);
        }
        Action::LinesPercent { percent_bp, target } => {
            for (i, _) in lines.iter().enumerate().filter(|(_, l)| matches(target, l)) {
                off[i] = percent_of(left[i], *percent_bp);
            }
        }
        Action::LinesFixed { amount, target } => {
            for (i, line) in lines.iter().enumerate().filter(|(_, l)| matches(target, l)) {
                off[i] = amount.saturating_mul(line.quantity).min(left[i]);
            }
        }
        Action::BuyXGetY { buy, get, percent_bp, target } => {
            // Every matching unit, most expensive first; in each whole group of buy + get units,
            // the last `get` (the cheapest) are discounted.
            let mut units: Vec<(i64, usize)> = Vec::new();
            for (i, line) in lines.iter().enumerate().filter(|(_, l)| matches(target, l)) {
                let quantity = usize::try_from(line.quantity).unwrap_or(0);
                units.extend(std::iter::repeat_n((line.unit_price, i), quantity));
            }
            units.sort_by_key(|(price, i)| (Reverse(*price), *i));
            let group = (*buy + *get) as usize;
            let mut free_units = vec![0_i64; lines.len()];
            for chunk in units.chunks_exact(group) {
                for (_, i) in &chunk[*buy as usize..] {
                    free_units[*i] += 1;
                }
            }
            for (i, count) in free_units.iter().enumerate().filter(|(_, count)| **count > 0) {
                off[i] = percent_of(lines[i].unit_price.saturating_mul(*count), *percent_bp).min(left[i]);
            }
        }
        Action::FreeShipping => return (off, shipping_left),
    }
    (off, 0)
}

/// Applies the promotions to the cart (the first step).
pub fn discount(input: &Input<'_>) -> Discounted {
    let subtotals: Vec<i64> = input.lines.iter().map(|l| l.unit_price.saturating_mul(l.quantity)).collect();
    let subtotal: i64 = subtotals.iter().fold(0_i64, |sum, s| sum.saturating_add(*s));
    let mut left = subtotals.clone();
    let mut shipping_left = input.shipping.map_or(0, |s| s.price);
    let mut line_discounts: Vec<Vec<Allocation>> = vec![Vec::new(); input.lines.len()];
    let mut shipping_discounts: Vec<Allocation> = Vec::new();

    let mut candidates: Vec<&Promotion> =
        input.promotions.iter().filter(|p| p.code.as_ref().is_none_or(|code| input.codes.contains(code))).collect();
    candidates.sort_by(|a, b| (Reverse(a.priority), &a.id).cmp(&(Reverse(b.priority), &b.id)));
    candidates.dedup_by(|a, b| a.id == b.id);

    let mut outcomes = Vec::with_capacity(candidates.len());
    let mut applied: Vec<&Promotion> = Vec::new();
    for promotion in candidates {
        let refused = refusal(promotion, input, subtotal).or_else(|| {
            let exclusive = applied.iter().find(|a| a.exclusive);
            match (exclusive, applied.first()) {
                (Some(other), _) => Some(Refusal::NotCombinable(other.name.clone())),
                (None, Some(first)) if promotion.exclusive => Some(Refusal::NotCombinable(first.name.clone())),
                _ => None,
            }
        });
        let (off, shipping_off) = match &refused {
            Some(_) => (Vec::new(), 0),
            None => amounts(&promotion.action, input.lines, &left, shipping_left),
        };
        let taken: i64 = off.iter().sum::<i64>() + shipping_off;
        let refused = refused.or_else(|| {
            (taken == 0).then_some(match promotion.action {
                Action::FreeShipping => Refusal::NoShipping,
                _ => Refusal::NoMatchingItems,
            })
        });
        let mut outcome = PromotionOutcome {
            promotion_id: promotion.id.clone(),
            name: promotion.name.clone(),
            code: promotion.code.clone(),
            applied: refused.is_none(),
            amount: 0,
            reason: None,
            detail: None,
        };
        match refused {
            Some(refusal) => {
                outcome.reason = Some(refusal.code().to_owned());
                outcome.detail = Some(refusal.message(input.currency));
            }
            None => {
                for (i, amount) in off.into_iter().enumerate().filter(|(_, amount)| *amount > 0) {
                    left[i] -= amount;
                    line_discounts[i].push(Allocation { promotion_id: promotion.id.clone(), amount });
                }
                if shipping_off > 0 {
                    shipping_left -= shipping_off;
                    shipping_discounts.push(Allocation { promotion_id: promotion.id.clone(), amount: shipping_off });
                }
                outcome.amount = taken;
                applied.push(promotion);
            }
        }
        outcomes.push(outcome);
    }
    Discounted {
        currency: input.currency.to_owned(),
        lines: input
            .lines
            .iter()
            .zip(subtotals)
            .zip(line_discounts)
            .map(|((line, subtotal), discounts)| DiscountedLine { line: line.clone(), subtotal, discounts })
            .collect(),
        shipping: input
            .shipping
            .map(|charge| DiscountedShipping { charge: charge.clone(), discounts: shipping_discounts }),
        promotions: outcomes,
    }
}

/// Where an order goes, as tax cares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// Region (state, province), if any.
    pub region: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
}

/// What the tax calculator is asked: the amounts left to pay, after discounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxRequest {
    /// The currency.
    pub currency: String,
    /// Where it goes.
    pub destination: Destination,
    /// Whether the amounts include tax (EU-style) rather than exclude it (US-style).
    pub inclusive: bool,
    /// Each line's tax category and amount, in the cart's order.
    pub lines: Vec<(TaxCategory, i64)>,
    /// The shipping's amount, when the zone taxes shipping.
    pub shipping: Option<i64>,
}

/// What the tax calculator answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaxResult {
    /// Each line's taxes, in the request's order.
    pub lines: Vec<Vec<TaxLine>>,
    /// The shipping's taxes.
    pub shipping: Vec<TaxLine>,
}

impl Discounted {
    /// What to ask the tax calculator for this cart.
    pub fn tax_request(&self, destination: Destination, inclusive: bool, shipping_taxed: bool) -> TaxRequest {
        TaxRequest {
            currency: self.currency.clone(),
            destination,
            inclusive,
            lines: self.lines.iter().map(|l| (l.line.tax_category, l.net())).collect(),
            shipping: self.shipping.as_ref().filter(|_| shipping_taxed).map(DiscountedShipping::net),
        }
    }
}

/// A rate that applies at a destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rate {
    /// Its name.
    pub name: String,
    /// The category of goods it taxes.
    pub category: TaxCategory,
    /// Basis points.
    pub rate_bp: BasisPoints,
}

/// Taxes `amount` at `rates` (those of its category), included in it or added to it.
fn tax_of(amount: i64, rates: &[&Rate], inclusive: bool) -> Vec<TaxLine> {
    let line = |rate: &Rate, amount| TaxLine { name: rate.name.clone(), rate_bp: rate.rate_bp, amount };
    if inclusive {
        let sum: i64 = rates.iter().map(|r| i64::from(r.rate_bp)).sum();
        if sum == 0 {
            return rates.iter().map(|r| line(r, 0)).collect();
        }
        // The tax inside `amount` at the sum of the rates, rounded half up, shared among them.
        let exact = i128::from(amount) * i128::from(sum);
        let divisor = i128::from(WHOLE) + i128::from(sum);
        let tax = i64::try_from((2 * exact + divisor) / (2 * divisor)).unwrap_or(i64::MAX);
        let weights: Vec<i64> = rates.iter().map(|r| i64::from(r.rate_bp)).collect();
        rates.iter().zip(allocate(tax, &weights)).map(|(r, share)| line(r, share)).collect()
    } else {
        rates.iter().map(|r| line(r, percent_of(amount, r.rate_bp))).collect()
    }
}

/// The built-in tax rules: `rates` (those of the destination) applied to each amount by its
/// category; shipping is taxed at the standard rates.
pub fn apply_rates(request: &TaxRequest, rates: &[Rate]) -> TaxResult {
    let of = |category: TaxCategory| rates.iter().filter(|r| r.category == category).collect::<Vec<_>>();
    TaxResult {
        lines: request
            .lines
            .iter()
            .map(|(category, amount)| tax_of(*amount, &of(*category), request.inclusive))
            .collect(),
        shipping: request
            .shipping
            .map(|amount| tax_of(amount, &of(TaxCategory::Standard), request.inclusive))
            .unwrap_or_default(),
    }
}

/// A priced line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PricedLine {
    /// The SKU.
    pub sku: String,
    /// Units.
    pub quantity: i64,
    /// One unit's price.
    pub unit_price: i64,
    /// `unit_price × quantity`.
    pub subtotal: i64,
    /// What each promotion took off.
    pub discounts: Vec<Allocation>,
    /// Their sum.
    pub discount_total: i64,
    /// Its taxes (included in the total where prices include tax).
    pub taxes: Vec<TaxLine>,
    /// Their sum.
    pub tax_total: i64,
    /// What the shopper pays for it: `subtotal − discount_total`, plus `tax_total` where prices
    /// exclude tax.
    pub total: i64,
}

/// The priced shipping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PricedShipping {
    /// The method.
    pub method_id: String,
    /// Its name.
    pub name: String,
    /// Its price.
    pub price: i64,
    /// What each promotion took off.
    pub discounts: Vec<Allocation>,
    /// Their sum.
    pub discount_total: i64,
    /// Its taxes.
    pub taxes: Vec<TaxLine>,
    /// Their sum.
    pub tax_total: i64,
    /// What the shopper pays for it.
    pub total: i64,
}

/// The whole price of a cart or an order, in minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Breakdown {
    /// The currency of every amount.
    pub currency: String,
    /// Whether prices include tax (then `tax_total` is part of the totals, not added to them).
    pub tax_inclusive: bool,
    /// The lines.
    pub lines: Vec<PricedLine>,
    /// The shipping, once chosen.
    pub shipping: Option<PricedShipping>,
    /// The lines' subtotals.
    pub subtotal: i64,
    /// Every discount, lines and shipping.
    pub discount_total: i64,
    /// The shipping's price less its discounts (before tax where prices exclude it).
    pub shipping_total: i64,
    /// Every tax.
    pub tax_total: i64,
    /// What the shopper pays: the lines' totals and the shipping's.
    pub grand_total: i64,
    /// Every promotion considered: applied, or refused with the reason.
    pub promotions: Vec<PromotionOutcome>,
}

impl Breakdown {
    /// The breakdown of lines alone, no discount, shipping or tax: what an order placed before the
    /// pricing engine was priced at (its `total` is its lines' sum).
    pub fn of_lines(items: &[crate::domain::CartItem], total: &platform::money::Money) -> Self {
        let lines: Vec<PricedLine> = items
            .iter()
            .map(|item| PricedLine {
                sku: item.sku.clone(),
                quantity: item.quantity,
                unit_price: item.unit_price.amount,
                subtotal: item.line_total.amount,
                discounts: Vec::new(),
                discount_total: 0,
                taxes: Vec::new(),
                tax_total: 0,
                total: item.line_total.amount,
            })
            .collect();
        Self {
            currency: total.currency.clone(),
            tax_inclusive: false,
            subtotal: lines.iter().map(|l| l.subtotal).sum(),
            lines,
            shipping: None,
            discount_total: 0,
            shipping_total: 0,
            tax_total: 0,
            grand_total: total.amount,
            promotions: Vec::new(),
        }
    }
}

/// Puts the discounted cart and its taxes together (the last step). Missing tax lines (a
/// calculator that answered fewer) count as none.
pub fn total(discounted: Discounted, taxes: TaxResult, inclusive: bool) -> Breakdown {
    let mut line_taxes = taxes.lines.into_iter();
    let sum = |lines: &[TaxLine]| lines.iter().map(|t| t.amount).sum::<i64>();
    let lines: Vec<PricedLine> = discounted
        .lines
        .into_iter()
        .map(|l| {
            let taxes = line_taxes.next().unwrap_or_default();
            let (net, tax_total) = (l.net(), sum(&taxes));
            PricedLine {
                sku: l.line.sku,
                quantity: l.line.quantity,
                unit_price: l.line.unit_price,
                subtotal: l.subtotal,
                discount_total: l.subtotal - net,
                discounts: l.discounts,
                taxes,
                tax_total,
                total: if inclusive { net } else { net + tax_total },
            }
        })
        .collect();
    let shipping = discounted.shipping.map(|s| {
        let net = s.net();
        let tax_total = sum(&taxes.shipping);
        PricedShipping {
            method_id: s.charge.method_id,
            name: s.charge.name,
            price: s.charge.price,
            discount_total: s.charge.price - net,
            discounts: s.discounts,
            taxes: taxes.shipping,
            tax_total,
            total: if inclusive { net } else { net + tax_total },
        }
    });
    let subtotal = lines.iter().map(|l| l.subtotal).sum();
    let discount_total =
        lines.iter().map(|l| l.discount_total).sum::<i64>() + shipping.as_ref().map_or(0, |s| s.discount_total);
    let tax_total = lines.iter().map(|l| l.tax_total).sum::<i64>() + shipping.as_ref().map_or(0, |s| s.tax_total);
    let grand_total = lines.iter().map(|l| l.total).sum::<i64>() + shipping.as_ref().map_or(0, |s| s.total);
    Breakdown {
        currency: discounted.currency,
        tax_inclusive: inclusive,
        shipping_total: shipping.as_ref().map_or(0, |s| s.price - s.discount_total),
        lines,
        shipping,
        subtotal,
        discount_total,
        tax_total,
        grand_total,
        promotions: discounted.promotions,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use proptest::prelude::*;

    use super::*;
    use crate::domain::promotion::{Conditions, Limits};

    fn line(sku: &str, quantity: i64, unit_price: i64) -> Line {
        Line {
            sku: sku.into(),
            product_id: format!("p-{sku}"),
            categories: vec![format!("c-{sku}"), "c-all".into()],
            brand: format!("Brand {sku}"),
            quantity,
            unit_price,
            tax_category: TaxCategory::Standard,
        }
    }

    fn promotion(id: &str, action: Action) -> Promotion {
        Promotion {
            id: id.into(),
            name: format!("Promo {id}"),
            code: None,
            action,
            conditions: Conditions::default(),
            limits: Limits::default(),
            exclusive: false,
            priority: 0,
            active: true,
            currency: Some("USD".into()),
            featured: false,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    struct Case {
        lines: Vec<Line>,
        shopper: Shopper,
        shipping: Option<ShippingCharge>,
        promotions: Vec<Promotion>,
        codes: Vec<String>,
        usage: HashMap<String, Usage>,
    }

    impl Case {
        fn new(lines: Vec<Line>) -> Self {
            Self {
                lines,
                shopper: Shopper::default(),
                shipping: None,
                promotions: Vec::new(),
                codes: Vec::new(),
                usage: HashMap::new(),
            }
        }

        fn discounted(&self) -> Discounted {
            discount(&Input {
                currency: "USD",
                lines: &self.lines,
                shopper: &self.shopper,
                shipping: self.shipping.as_ref(),
                promotions: &self.promotions,
                codes: &self.codes,
                usage: &self.usage,
                now: now(),
            })
        }

        fn price(&self, rates: &[Rate], inclusive: bool) -> Breakdown {
            let discounted = self.discounted();
            let destination = Destination { country: "US".into(), region: None, postal_code: None };
            let taxes = apply_rates(&discounted.tax_request(destination, inclusive, true), rates);
            total(discounted, taxes, inclusive)
        }
    }

    fn rate(name: &str, category: TaxCategory, rate_bp: BasisPoints) -> Rate {
        Rate { name: name.into(), category, rate_bp }
    }

    fn reasons(breakdown: &Breakdown) -> Vec<(&str, Option<&str>)> {
        breakdown.promotions.iter().map(|p| (p.promotion_id.as_str(), p.reason.as_deref())).collect()
    }

    #[test]
    fn shares_add_up_exactly_and_ties_go_to_the_first() {
        assert_eq!(allocate(100, &[333, 333, 334]), [33, 33, 34]);
        assert_eq!(allocate(2, &[1, 1, 1]), [1, 1, 0]);
        assert_eq!(allocate(10, &[0, 0]), [0, 0]);
        assert_eq!(allocate(7, &[7, 0, 0]), [7, 0, 0]);
        assert_eq!(allocate(5, &[1, 0, 100]), [0, 0, 5]);
    }

    #[test]
    fn tax_is_added_per_line_where_prices_exclude_it() {
        let case = Case::new(vec![line("A", 2, 1_999), line("B", 1, 500)]);
        let sales_tax = [rate("Sales tax", TaxCategory::Standard, 825)];
        let b = case.price(&sales_tax, false);
        // 3,998 × 8.25 % = 329.835 → 330; 500 × 8.25 % = 41.25 → 41 (half up, per line).
        assert_eq!(b.lines.iter().map(|l| l.tax_total).collect::<Vec<_>>(), [330, 41]);
        assert_eq!((b.subtotal, b.tax_total, b.grand_total), (4_498, 371, 4_869));
        assert!(!b.tax_inclusive);
    }

    #[test]
    fn tax_is_found_inside_prices_that_include_it_and_shared_among_rates() {
        let mut case = Case::new(vec![line("A", 1, 11_900), line("B", 1, 1_070)]);
        case.lines[1].tax_category = TaxCategory::Reduced;
        let vat = [rate("VAT", TaxCategory::Standard, 1_900), rate("VAT", TaxCategory::Reduced, 700)];
        let b = case.price(&vat, true);
        assert_eq!(b.lines[0].tax_total, 1_900);
        assert_eq!(b.lines[1].tax_total, 70);
        assert_eq!(b.grand_total, 12_970, "the tax is part of the prices, not added");
        // Two rates on one line (a country's and a region's): the tax at their sum, shared.
        let both = [rate("GST", TaxCategory::Standard, 500), rate("PST", TaxCategory::Standard, 700)];
        let b = Case::new(vec![line("A", 1, 1_120)]).price(&both, true);
        assert_eq!(b.lines[0].taxes.iter().map(|t| t.amount).collect::<Vec<_>>(), [50, 70]);
        let b = Case::new(vec![line("A", 1, 1_000)]).price(&both, false);
        assert_eq!(b.lines[0].taxes.iter().map(|t| t.amount).collect::<Vec<_>>(), [50, 70]);
        assert_eq!(b.grand_total, 1_120);
    }

    #[test]
    fn zero_rated_goods_and_untaxed_shipping_carry_no_tax() {
        let mut case = Case::new(vec![line("BOOK", 1, 2_000)]);
        case.lines[0].tax_category = TaxCategory::Zero;
        case.shipping = Some(ShippingCharge { method_id: "std".into(), name: "Standard".into(), price: 500 });
        let rates = [rate("VAT", TaxCategory::Standard, 2_000), rate("VAT", TaxCategory::Zero, 0)];
        let discounted = case.discounted();
        let destination = Destination { country: "GB".into(), region: None, postal_code: None };
        let request = discounted.tax_request(destination, true, false);
        assert_eq!(request.shipping, None, "the zone does not tax shipping");
        let b = total(discounted, apply_rates(&request, &rates), true);
        assert_eq!((b.tax_total, b.grand_total), (0, 2_500));
    }

    #[test]
    fn an_order_percentage_is_rounded_once_and_shared_exactly_and_tax_follows_the_discount() {
        let mut case = Case::new(vec![line("A", 1, 333), line("B", 1, 333), line("C", 1, 334)]);
        case.promotions.push(promotion("ten", Action::OrderPercent { percent_bp: 1_000 }));
        let b = case.price(&[rate("Tax", TaxCategory::Standard, 1_000)], false);
        assert_eq!(b.lines.iter().map(|l| l.discount_total).collect::<Vec<_>>(), [33, 33, 34]);
        assert_eq!(b.discount_total, 100);
        // Tax on what is left: 300 → 30, 300 → 30, 300 → 30.
        assert_eq!(b.tax_total, 90);
        assert_eq!(b.grand_total, 990);
        assert_eq!(b.promotions[0].amount, 100);
    }

    #[test]
    fn a_fixed_amount_never_takes_the_order_below_zero() {
        let mut case = Case::new(vec![line("A", 1, 700), line("B", 2, 150)]);
        case.promotions.push(promotion("big", Action::OrderFixed { amount: 5_000 }));
        case.promotions.push(promotion("more", Action::LinesFixed { amount: 900, target: Target::default() }));
        let b = case.price(&[], false);
        assert_eq!(b.grand_total, 0);
        assert!(b.lines.iter().all(|l| l.total == 0));
        assert_eq!(reasons(&b), [("big", None), ("more", Some("no_matching_items"))]);
        assert_eq!(b.promotions[0].amount, 1_000, "it took what there was, no more");
    }

    #[test]
    fn buy_two_get_one_discounts_the_cheapest_of_each_group() {
        let target = Target { categories: vec!["c-all".into()], ..Target::default() };
        let mut case = Case::new(vec![line("A", 1, 1_000), line("B", 1, 800), line("C", 1, 500)]);
        case.promotions.push(promotion("b2g1", Action::BuyXGetY { buy: 2, get: 1, percent_bp: WHOLE, target }));
        let b = case.price(&[], false);
        assert_eq!(b.lines.iter().map(|l| l.discount_total).collect::<Vec<_>>(), [0, 0, 500]);
        // Six units: two groups, (1000, 1000, 800) and (800, 500, 500): one 800 and one 500 free.
        case.lines = vec![line("A", 2, 1_000), line("B", 2, 800), line("C", 2, 500)];
        let b = case.price(&[], false);
        assert_eq!(b.lines.iter().map(|l| l.discount_total).collect::<Vec<_>>(), [0, 800, 500]);
        // Five units: one whole group only.
        case.lines = vec![line("A", 5, 1_000)];
        assert_eq!(case.price(&[], false).discount_total, 1_000);
        // Half off the cheapest instead.
        let target = Target { skus: vec!["A".into()], ..Target::default() };
        case.promotions[0].action = Action::BuyXGetY { buy: 1, get: 1, percent_bp: 5_000, target };
        case.lines = vec![line("A", 2, 999), line("B", 2, 100)];
        assert_eq!(case.price(&[], false).discount_total, 500, "999 × 50 % = 499.5 → 500");
    }

    #[test]
    fn lines_are_matched_by_sku_product_category_and_brand() {
        let lines = vec![line("A", 1, 1_000), line("B", 1, 1_000), line("C", 1, 1_000), line("D", 1, 1_000)];
        let target = Target {
            skus: vec!["A".into()],
            products: vec!["p-B".into()],
            categories: vec!["c-C".into()],
            brands: vec!["brand d".into()],
        };
        let mut case = Case::new(lines);
        case.lines.push(line("E", 1, 1_000));
        case.promotions.push(promotion("some", Action::LinesPercent { percent_bp: 2_500, target }));
        let b = case.price(&[], false);
        assert_eq!(b.lines.iter().map(|l| l.discount_total).collect::<Vec<_>>(), [250, 250, 250, 250, 0]);
    }

    #[test]
    fn free_shipping_over_a_threshold() {
        let mut case = Case::new(vec![line("A", 1, 4_000)]);
        case.shipping = Some(ShippingCharge { method_id: "std".into(), name: "Standard".into(), price: 599 });
        let mut free = promotion("free", Action::FreeShipping);
        free.conditions.min_subtotal = Some(5_000);
        case.promotions.push(free);
        let b = case.price(&[], false);
        assert_eq!((b.shipping_total, b.grand_total), (599, 4_599));
        assert_eq!(b.promotions[0].detail.as_deref(), Some("the subtotal must reach 50.00 USD"));
        case.lines[0].quantity = 2;
        let b = case.price(&[rate("Tax", TaxCategory::Standard, 1_000)], false);
        assert_eq!((b.shipping_total, b.shipping.as_ref().unwrap().tax_total, b.grand_total), (0, 0, 8_800));
        case.shipping = None;
        assert_eq!(reasons(&case.price(&[], false)), [("free", Some("no_shipping"))]);
    }

    #[test]
    fn exclusive_promotions_apply_alone_by_priority() {
        let mut case = Case::new(vec![line("A", 1, 10_000)]);
        let mut code = promotion("code", Action::OrderPercent { percent_bp: 2_000 });
        code.code = Some("SAVE20".into());
        code.exclusive = true;
        code.priority = 10;
        let auto = promotion("auto", Action::OrderPercent { percent_bp: 1_000 });
        case.promotions = vec![auto.clone(), code.clone()];
        // The code is not entered: only the automatic one.
        assert_eq!(reasons(&case.price(&[], false)), [("auto", None)]);
        case.codes = vec!["SAVE20".into()];
        let b = case.price(&[], false);
        assert_eq!(reasons(&b), [("code", None), ("auto", Some("not_combinable"))]);
        assert_eq!(b.grand_total, 8_000);
        assert_eq!(b.promotions[1].detail.as_deref(), Some("cannot be combined with Promo code"));
        // The automatic one ranks higher: the exclusive code is refused instead.
        case.promotions[0].priority = 20;
        let b = case.price(&[], false);
        assert_eq!(reasons(&b), [("auto", None), ("code", Some("not_combinable"))]);
        // Two combinable ones stack, each on what the other left: 10 % then 20 % of 9,000.
        case.promotions[1].exclusive = false;
        assert_eq!(case.price(&[], false).grand_total, 7_200);
    }

    #[test]
    fn conditions_and_limits_refuse_with_their_reason() {
        let base = Case::new(vec![line("A", 2, 1_000)]);
        let check = |change: &dyn Fn(&mut Promotion, &mut Case), reason: &str| {
            let mut case = Case::new(base.lines.clone());
            let mut p = promotion("p", Action::OrderPercent { percent_bp: 1_000 });
            change(&mut p, &mut case);
            case.promotions.push(p);
            assert_eq!(reasons(&case.price(&[], false)), [("p", Some(reason))]);
        };
        check(&|p, _| p.active = false, "inactive");
        check(&|p, _| p.conditions.starts_at = Some(now() + Duration::hours(1)), "not_yet_active");
        check(&|p, _| p.conditions.ends_at = Some(now()), "expired");
        check(&|p, _| p.currency = Some("EUR".into()), "other_currency");
        check(&|p, _| p.conditions.min_subtotal = Some(2_001), "minimum_not_met");
        check(&|p, _| p.conditions.min_quantity = Some(3), "minimum_quantity_not_met");
        check(
            &|p, c| {
                p.conditions.first_order_only = true;
                c.shopper.previous_orders = 1;
            },
            "first_order_only",
        );
        check(&|p, _| p.conditions.customers = vec!["vip@example.com".into()], "not_eligible");
        check(
            &|p, c| {
                p.limits.total = Some(10);
                c.usage.insert("p".into(), Usage { total: 10, by_shopper: 0 });
            },
            "used_up",
        );
        check(
            &|p, c| {
                p.limits.per_customer = Some(1);
                c.usage.insert("p".into(), Usage { total: 3, by_shopper: 1 });
            },
            "used_up_by_customer",
        );
        // And each passes when met.
        let mut case = Case::new(base.lines.clone());
        let mut p = promotion("p", Action::OrderPercent { percent_bp: 1_000 });
        p.conditions = Conditions {
            min_subtotal: Some(2_000),
            min_quantity: Some(2),
            starts_at: Some(now() - Duration::hours(1)),
            ends_at: Some(now() + Duration::hours(1)),
            first_order_only: true,
            customers: vec!["vip@example.com".into()],
        };
        p.limits = Limits { total: Some(10), per_customer: Some(1) };
        case.promotions.push(p);
        case.shopper.email = Some("vip@example.com".into());
        case.usage.insert("p".into(), Usage { total: 9, by_shopper: 0 });
        assert_eq!(reasons(&case.price(&[], false)), [("p", None)]);
    }

    fn action() -> impl Strategy<Value = Action> {
        let target = (any::<bool>(), 0..3_usize).prop_map(|(everything, which)| match everything {
            true => Target::default(),
            false => Target { skus: vec![["A", "B", "C"][which].to_owned()], ..Target::default() },
        });
        prop_oneof![
            (1..=WHOLE).prop_map(|percent_bp| Action::OrderPercent { percent_bp }),
            (1..20_000_i64).prop_map(|amount| Action::OrderFixed { amount }),
            (1..=WHOLE, target.clone()).prop_map(|(percent_bp, target)| Action::LinesPercent { percent_bp, target }),
            (1..5_000_i64, target.clone()).prop_map(|(amount, target)| Action::LinesFixed { amount, target }),
            (1..4_u32, 1..3_u32, 1..=WHOLE, target).prop_map(|(buy, get, percent_bp, target)| Action::BuyXGetY {
                buy,
                get,
                percent_bp,
                target
            }),
            Just(Action::FreeShipping),
        ]
    }

    proptest! {
        #[test]
        fn every_breakdown_adds_up_and_nothing_goes_below_zero(
            lines in prop::collection::vec((0..3_usize, 1..30_i64, 0..50_000_i64), 1..6),
            promotions in prop::collection::vec((action(), any::<bool>(), -3..3_i32), 0..6),
            shipping in prop::option::of(0..3_000_i64),
            inclusive in any::<bool>(),
            rates in prop::collection::vec(0..3_000_u32, 0..3),
        ) {
            let lines: Vec<Line> = lines
                .into_iter()
                .map(|(sku, quantity, price)| line(["A", "B", "C"][sku], quantity, price))
                .collect();
            let mut case = Case::new(lines);
            case.shipping = shipping.map(|price| ShippingCharge { method_id: "m".into(), name: "M".into(), price });
            case.promotions = promotions
                .into_iter()
                .enumerate()
                .map(|(i, (action, exclusive, priority))| Promotion {
                    exclusive,
                    priority,
                    ..promotion(&format!("p{i}"), action)
                })
                .collect();
            let rates: Vec<Rate> = rates.into_iter().map(|bp| rate("T", TaxCategory::Standard, bp)).collect();
            let b = case.price(&rates, inclusive);

            for l in &b.lines {
                prop_assert!(l.discount_total >= 0 && l.discount_total <= l.subtotal);
                prop_assert_eq!(l.discount_total, l.discounts.iter().map(|a| a.amount).sum::<i64>());
                prop_assert_eq!(l.tax_total, l.taxes.iter().map(|t| t.amount).sum::<i64>());
                prop_assert!(l.tax_total >= 0 && l.total >= 0);
                let net = l.subtotal - l.discount_total;
                prop_assert_eq!(l.total, if inclusive { net } else { net + l.tax_total });
                if inclusive {
                    prop_assert!(l.tax_total <= net);
                }
            }
            if let Some(s) = &b.shipping {
                prop_assert!(s.discount_total >= 0 && s.discount_total <= s.price && s.total >= 0);
            }
            let lines_total: i64 = b.lines.iter().map(|l| l.total).sum();
            prop_assert_eq!(b.grand_total, lines_total + b.shipping.as_ref().map_or(0, |s| s.total));
            let shipping_price = b.shipping.as_ref().map_or(0, |s| s.price);
            let expected = b.subtotal - b.discount_total + shipping_price + if inclusive { 0 } else { b.tax_total };
            prop_assert_eq!(b.grand_total, expected);
            prop_assert!(b.grand_total >= 0);
            // Each applied promotion's amount is exactly what it took from lines and shipping.
            for outcome in &b.promotions {
                let taken: i64 = b
                    .lines
                    .iter()
                    .flat_map(|l| &l.discounts)
                    .chain(b.shipping.iter().flat_map(|s| &s.discounts))
                    .filter(|a| a.promotion_id == outcome.promotion_id)
                    .map(|a| a.amount)
                    .sum();
                prop_assert_eq!(taken, outcome.amount);
                prop_assert_eq!(outcome.applied, outcome.reason.is_none());
                prop_assert_eq!(outcome.applied, outcome.amount > 0);
            }
            let applied: Vec<&PromotionOutcome> = b.promotions.iter().filter(|p| p.applied).collect();
            let exclusive = applied.iter().any(|o| case.promotions.iter().any(|p| p.id == o.promotion_id && p.exclusive));
            prop_assert!(!exclusive || applied.len() == 1, "an exclusive promotion applies alone");
        }

        #[test]
        fn shares_always_add_up_and_never_exceed_their_weight(
            weights in prop::collection::vec(0..1_000_000_i64, 1..20),
            fraction in 0..=1_000_u32,
        ) {
            let sum: i64 = weights.iter().sum();
            let total = sum * i64::from(fraction) / 1_000;
            let shares = allocate(total, &weights);
            prop_assert_eq!(shares.iter().sum::<i64>(), total);
            prop_assert!(shares.iter().zip(&weights).all(|(s, w)| *s >= 0 && s <= w));
        }
    }
}
