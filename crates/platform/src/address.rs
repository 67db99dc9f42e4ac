//! Postal addresses: the address book's shape, and an order's `shipping_address`.

use serde::{Deserialize, Serialize};

use crate::http::Validator;

/// A postal address (also the shape of `shipping_address`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AddressInput {
    /// Recipient.
    pub name: String,
    /// Street and number.
    pub line1: String,
    /// More of the street address.
    #[serde(default)]
    pub line2: Option<String>,
    /// City.
    pub city: String,
    /// State, province or region.
    #[serde(default)]
    pub region: Option<String>,
    /// Postal code.
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
}

impl AddressInput {
    /// Checks every field; the normalised address (trimmed, country upper-case) or the errors.
    pub fn validated(self, v: &mut Validator) -> AddressInput {
        let trim = |s: String| s.trim().to_owned();
        let opt = |s: Option<String>| s.map(trim).filter(|s| !s.is_empty());
        let address = AddressInput {
            name: trim(self.name),
            line1: trim(self.line1),
            line2: opt(self.line2),
            city: trim(self.city),
            region: opt(self.region),
            postal_code: trim(self.postal_code),
            country: self.country.trim().to_ascii_uppercase(),
        };
        for (field, value) in [
            ("name", &address.name),
            ("line1", &address.line1),
            ("city", &address.city),
            ("postal_code", &address.postal_code),
        ] {
            v.check(!value.is_empty(), field, "is required");
            v.check(value.chars().count() <= 200, field, "must be at most 200 characters");
        }
        for (field, value) in [("line2", &address.line2), ("region", &address.region)] {
            v.check(value.as_ref().is_none_or(|s| s.chars().count() <= 200), field, "must be at most 200 characters");
        }
        v.check(
            address.country.len() == 2 && address.country.bytes().all(|b| b.is_ascii_uppercase()),
            "country",
            "must be an ISO 3166-1 alpha-2 code such as US or DE",
        );
        address
    }
}
