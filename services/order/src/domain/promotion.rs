//! Promotions and discount codes: what they take off, when they apply, how often they may be used
//! and how they stack. The rules of applying them are the pricing engine's ([`super::pricing`]).

use chrono::{DateTime, Utc};
use platform::http::Validator;
use platform::money::is_currency_code;
use serde::{Deserialize, Serialize};

/// Basis points: hundredths of a percent (10,000 is 100 %).
pub type BasisPoints = u32;

/// All of it (100 %).
pub const WHOLE: BasisPoints = 10_000;

/// Longest code, in characters.
pub const MAX_CODE: usize = 40;

/// Most entries of one target list or allow-list.
pub const MAX_LIST: usize = 500;

/// What a promotion takes off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// A percentage off every line.
    OrderPercent {
        /// In basis points (1,500 is 15 %).
        percent_bp: BasisPoints,
    },
    /// An amount off the order, shared by the lines in proportion to what each costs.
    OrderFixed {
        /// Minor units of the promotion's currency.
        amount: i64,
    },
    /// A percentage off the lines the target matches.
    LinesPercent {
        /// In basis points.
        percent_bp: BasisPoints,
        /// Which lines.
        target: Target,
    },
    /// An amount off each unit of the lines the target matches (never more than the unit costs).
    LinesFixed {
        /// Minor units of the promotion's currency, per unit.
        amount: i64,
        /// Which lines.
        target: Target,
    },
    /// Buy X get Y: among the units the target matches, most expensive first, in each group of
    /// `buy + get` units the `get` cheapest are discounted by `percent_bp` (10,000: free).
    BuyXGetY {
        /// Units paid for in each group.
        buy: u32,
        /// Units discounted in each group.
        get: u32,
        /// Their discount, in basis points.
        percent_bp: BasisPoints,
        /// Which lines.
        target: Target,
    },
    /// The shipping costs nothing.
    FreeShipping,
}

/// The lines a promotion is about: a line matches when any list names its SKU, product, one of its
/// categories (a category matches its sub-categories' products) or its brand. Every list empty:
/// every line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Target {
    /// SKUs.
    pub skus: Vec<String>,
    /// Product ids.
    pub products: Vec<String>,
    /// Category ids.
    pub categories: Vec<String>,
    /// Brands (compared ignoring case).
    pub brands: Vec<String>,
}

impl Target {
    /// Whether the target names nothing (so takes every line).
    pub fn is_everything(&self) -> bool {
        self.skus.is_empty() && self.products.is_empty() && self.categories.is_empty() && self.brands.is_empty()
    }
}

/// When a promotion applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Conditions {
    /// The cart's subtotal (before any discount) must reach this, in minor units of the
    /// promotion's currency.
    pub min_subtotal: Option<i64>,
    /// The units of the lines the action targets (every line when it targets none) must reach this.
    pub min_quantity: Option<i64>,
    /// Not before.
    pub starts_at: Option<DateTime<Utc>>,
    /// Not from then on.
    pub ends_at: Option<DateTime<Utc>>,
    /// Only for a shopper's first order (no earlier order by their account or email).
    pub first_order_only: bool,
    /// Only for these shoppers (user ids or emails); empty: anyone.
    pub customers: Vec<String>,
}

/// How often a promotion may be used: by orders kept (an order that fails, is rejected or is
/// cancelled gives its use back).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Uses in all.
    pub total: Option<u32>,
    /// Uses by one shopper (account or email).
    pub per_customer: Option<u32>,
}

/// A promotion: automatic (no code) or redeemed with a code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Promotion {
    /// `promo_…`.
    pub id: String,
    /// Shown to shoppers beside the discount.
    pub name: String,
    /// The code that redeems it, upper case (codes are compared ignoring case); `None`: automatic.
    pub code: Option<String>,
    /// What it takes off.
    pub action: Action,
    /// When it applies.
    pub conditions: Conditions,
    /// How often it may be used.
    pub limits: Limits,
    /// Whether it applies alone: an exclusive promotion is never combined with another.
    pub exclusive: bool,
    /// Higher first: promotions are considered from the highest priority down (then by id).
    pub priority: i32,
    /// Whether it is in force (an admin may pause it).
    pub active: bool,
    /// The currency of its amounts (fixed amounts, minimum subtotal); carts in another currency
    /// cannot use it. `None` when it has no amounts.
    pub currency: Option<String>,
    /// Whether shoppers are told about it (the storefront's home page shows it, with its code):
    /// listed by `GET /v1/promotions` while it is in force.
    #[serde(default)]
    pub featured: bool,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A promotion as an admin sends it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromotionInput {
    /// Shown to shoppers.
    pub name: String,
    /// The code (letters, digits, `-` and `_`; compared ignoring case); absent: automatic.
    #[serde(default)]
    pub code: Option<String>,
    /// What it takes off.
    pub action: Action,
    /// When it applies.
    #[serde(default)]
    pub conditions: Conditions,
    /// How often it may be used.
    #[serde(default)]
    pub limits: Limits,
    /// Whether it applies alone.
    #[serde(default)]
    pub exclusive: bool,
    /// Higher first.
    #[serde(default)]
    pub priority: i32,
    /// Whether it is in force (default true).
    #[serde(default = "yes")]
    pub active: bool,
    /// The currency of its amounts; required when it has any.
    #[serde(default)]
    pub currency: Option<String>,
    /// Whether shoppers are told about it (default false): the storefront's home page shows it.
    #[serde(default)]
    pub featured: bool,
}

fn yes() -> bool {
    true
}

/// `code` as stored and compared: trimmed, upper case.
pub fn normalize_code(code: &str) -> String {
    code.trim().to_uppercase()
}

/// Whether `code` (normalized) may be a code.
pub fn is_code(code: &str) -> bool {
    !code.is_empty()
        && code.chars().count() <= MAX_CODE
        && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl PromotionInput {
    /// Whether the promotion has amounts that need a currency.
    fn has_amounts(&self) -> bool {
        matches!(self.action, Action::OrderFixed { .. } | Action::LinesFixed { .. })
            || self.conditions.min_subtotal.is_some()
    }

    /// Checks the input into promotion `id` (made at `created_at`), recording what is wrong in `v`.
    pub fn build(
        self,
        id: String,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
        v: &mut Validator,
    ) -> Option<Promotion> {
        let name = self.name.trim().to_owned();
        v.check(!name.is_empty() && name.chars().count() <= 200, "name", "must be 1-200 characters");
        let code = self.code.as_deref().map(normalize_code);
        if let Some(code) = &code {
            v.check(is_code(code), "code", "must be 1-40 letters, digits, '-' or '_'");
        }
        let percent = |bp: BasisPoints| (1..=WHOLE).contains(&bp);
        let target_ok = |t: &Target| {
            [t.skus.len(), t.products.len(), t.categories.len(), t.brands.len()].iter().all(|n| *n <= MAX_LIST)
        };
        match &self.action {
            Action::OrderPercent { percent_bp } => {
                v.check(percent(*percent_bp), "action.percent_bp", "must be between 1 and 10000");
            }
            Action::OrderFixed { amount } => {
                v.check(*amount > 0, "action.amount", "must be positive");
            }
            Action::LinesPercent { percent_bp, target } => {
                v.check(percent(*percent_bp), "action.percent_bp", "must be between 1 and 10000");
                v.check(target_ok(target), "action.target", "lists at most 500 entries each");
            }
            Action::LinesFixed { amount, target } => {
                v.check(*amount > 0, "action.amount", "must be positive");
                v.check(target_ok(target), "action.target", "lists at most 500 entries each");
            }
            Action::BuyXGetY { buy, get, percent_bp, target } => {
                v.check((1..=100).contains(buy), "action.buy", "must be between 1 and 100");
                v.check((1..=100).contains(get), "action.get", "must be between 1 and 100");
                v.check(percent(*percent_bp), "action.percent_bp", "must be between 1 and 10000");
                v.check(target_ok(target), "action.target", "lists at most 500 entries each");
            }
            Action::FreeShipping => {}
        }
        let c = &self.conditions;
        v.check(c.min_subtotal.is_none_or(|m| m >= 0), "conditions.min_subtotal", "must not be negative");
        v.check(c.min_quantity.is_none_or(|m| m >= 1), "conditions.min_quantity", "must be at least 1");
        if let (Some(start), Some(end)) = (c.starts_at, c.ends_at) {
            v.check(start < end, "conditions.ends_at", "must be after starts_at");
        }
        v.check(c.customers.len() <= MAX_LIST, "conditions.customers", "lists at most 500 shoppers");
        v.check(self.limits.total.is_none_or(|n| n >= 1), "limits.total", "must be at least 1");
        v.check(self.limits.per_customer.is_none_or(|n| n >= 1), "limits.per_customer", "must be at least 1");
        let currency = self.currency.as_deref().map(str::to_ascii_uppercase);
        match &currency {
            Some(code) => {
                v.check(is_currency_code(code), "currency", "must be an ISO 4217 code");
            }
            None => {
                v.check(!self.has_amounts(), "currency", "is required with fixed amounts or a minimum subtotal");
            }
        }
        v.check(
            !(self.action == Action::FreeShipping && self.exclusive && code.is_none()),
            "exclusive",
            "an automatic free-shipping promotion cannot be exclusive (it would shut out every code)",
        );
        let customers = c.customers.iter().map(|who| who.trim().to_lowercase()).filter(|who| !who.is_empty()).collect();
        let conditions = Conditions { customers, ..self.conditions.clone() };
        v.is_empty().then_some(Promotion {
            id,
            name,
            code,
            action: self.action,
            conditions,
            limits: self.limits,
            exclusive: self.exclusive,
            priority: self.priority,
            active: self.active,
            currency,
            featured: self.featured,
            created_at,
            updated_at: now,
        })
    }
}

/// A promotion as shoppers are told about it (`GET /v1/promotions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Featured {
    /// What it is called ("Free shipping over $75").
    pub name: String,
    /// The code that redeems it; absent: it applies by itself.
    pub code: Option<String>,
    /// Until when, if it ends.
    pub ends_at: Option<DateTime<Utc>>,
}

impl Promotion {
    /// Whether shoppers are told about it at `now`: featured, active, within its dates and open to
    /// everyone (a promotion for named shoppers is never advertised).
    pub fn is_advertised(&self, now: DateTime<Utc>) -> bool {
        let c = &self.conditions;
        self.featured
            && self.active
            && c.customers.is_empty()
            && c.starts_at.is_none_or(|at| at <= now)
            && c.ends_at.is_none_or(|at| now < at)
    }

    /// How shoppers are told about it.
    pub fn featured(&self) -> Featured {
        Featured { name: self.name.clone(), code: self.code.clone(), ends_at: self.conditions.ends_at }
    }
}

/// A new promotion's id.
pub fn new_promotion_id() -> String {
    format!("promo_{}", uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input(body: serde_json::Value) -> PromotionInput {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn a_promotion_input_is_checked_and_normalized() {
        let now = Utc::now();
        let mut v = Validator::new();
        let promotion = input(json!({
            "name": " Summer ", "code": " summer-10 ", "currency": "usd",
            "action": {"type": "lines_fixed", "amount": 500, "target": {"brands": ["Acme"]}},
            "conditions": {"min_subtotal": 2000, "customers": [" Ada@Example.com "]},
            "limits": {"total": 10, "per_customer": 1}
        }))
        .build("promo_1".into(), now, now, &mut v)
        .unwrap();
        assert_eq!(promotion.name, "Summer");
        assert_eq!(promotion.code.as_deref(), Some("SUMMER-10"));
        assert_eq!(promotion.currency.as_deref(), Some("USD"));
        assert_eq!(promotion.conditions.customers, ["ada@example.com"]);
        assert!(promotion.active, "in force unless paused");

        let mut v = Validator::new();
        let refused = input(json!({
            "name": "", "code": "no spaces",
            "action": {"type": "buy_x_get_y", "buy": 0, "get": 1, "percent_bp": 20000, "target": {}},
            "conditions": {"min_subtotal": 100, "starts_at": "2027-01-02T00:00:00Z", "ends_at": "2027-01-01T00:00:00Z"},
            "limits": {"total": 0}
        }))
        .build("promo_2".into(), now, now, &mut v);
        assert!(refused.is_none());
        let fields: Vec<String> = v.into_errors().unwrap_err().into_iter().map(|e| e.field).collect();
        for field in
            ["name", "code", "action.buy", "action.percent_bp", "conditions.ends_at", "limits.total", "currency"]
        {
            assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
        }
        let unknown = serde_json::from_value::<PromotionInput>(json!({"name": "x", "action": {"type": "free_lunch"}}));
        assert!(unknown.is_err(), "an unknown action is refused");
    }
}
