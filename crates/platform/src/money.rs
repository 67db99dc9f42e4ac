//! Money: an integer amount of minor units with an ISO 4217 currency code, as the API carries it.

use serde::{Deserialize, Serialize};

/// An amount of money in minor units (cents).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Money {
    /// Minor units: 1999 is 19.99 in a two-decimal currency.
    pub amount: i64,
    /// ISO 4217 code, upper case.
    pub currency: String,
}

impl Money {
    /// `amount` minor units of `currency`.
    pub fn new(amount: i64, currency: &str) -> Self {
        Self { amount, currency: currency.to_ascii_uppercase() }
    }

    /// Nothing, in `currency`.
    pub fn zero(currency: &str) -> Self {
        Self::new(0, currency)
    }

    /// The sum, or `None` when the currencies differ or it overflows.
    pub fn checked_add(&self, other: &Money) -> Option<Money> {
        (self.currency == other.currency)
            .then(|| self.amount.checked_add(other.amount))
            .flatten()
            .map(|amount| Money { amount, currency: self.currency.clone() })
    }

    /// The amount times `quantity`, or `None` on overflow.
    pub fn checked_mul(&self, quantity: i64) -> Option<Money> {
        self.amount.checked_mul(quantity).map(|amount| Money { amount, currency: self.currency.clone() })
    }
}

/// `amount` minor units as a decimal with two places, as people read it (`1999` → `19.99`,
/// `-5` → `-0.05`).
pub fn decimal(amount: i64) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let units = amount.unsigned_abs();
    format!("{sign}{}.{:02}", units / 100, units % 100)
}

/// Whether `code` looks like an ISO 4217 code (three upper-case letters).
pub fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_adds_only_within_a_currency() {
        let a = Money::new(1999, "usd");
        assert_eq!(a.currency, "USD");
        assert_eq!(a.checked_add(&Money::new(1, "USD")), Some(Money::new(2000, "USD")));
        assert_eq!(a.checked_add(&Money::new(1, "EUR")), None);
        assert_eq!(Money::new(i64::MAX, "USD").checked_add(&Money::new(1, "USD")), None);
        assert_eq!(a.checked_mul(3), Some(Money::new(5997, "USD")));
        assert!(is_currency_code("USD") && !is_currency_code("usd") && !is_currency_code("US"));
        assert_eq!(
            [decimal(1999), decimal(5), decimal(0), decimal(-5), decimal(-1250)],
            ["19.99", "0.05", "0.00", "-0.05", "-12.50"]
        );
    }
}
