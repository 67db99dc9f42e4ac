//! Shipping: zones (where a shop ships, and how that destination is taxed) and the methods each
//! offers, with their prices for a cart. Free of I/O.

use platform::contracts::catalog::TaxCategory;
use platform::http::Validator;
use platform::money::is_currency_code;
use serde::{Deserialize, Serialize};

use super::pricing::{Destination, Rate};
use super::promotion::{BasisPoints, WHOLE};

/// The country list entry of a zone that takes every country no other zone takes.
pub const REST_OF_WORLD: &str = "*";

/// Most methods of one zone, countries, postal prefixes, tiers or rates of a zone.
pub const MAX_ENTRIES: usize = 300;

/// How a method's price is found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pricing {
    /// One price.
    Flat {
        /// Minor units.
        amount: i64,
    },
    /// By the cart's subtotal: the tier with the highest `from` the subtotal reaches.
    BySubtotal {
        /// `from` in minor units; the first starts at 0.
        tiers: Vec<Tier>,
    },
    /// By the cart's weight: the tier with the highest `from` (grams) the weight reaches. SKUs
    /// without a weight weigh nothing.
    ByWeight {
        /// `from` in grams; the first starts at 0.
        tiers: Vec<Tier>,
    },
}

/// A step of a tiered price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Where the tier begins (minor units or grams).
    pub from: i64,
    /// Its price, in minor units.
    pub amount: i64,
}

/// A way a zone's parcels travel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Method {
    /// Unique within its zone (`standard`, `express` …).
    pub id: String,
    /// Shown to shoppers.
    pub name: String,
    /// Its price.
    pub pricing: Pricing,
    /// Free when the cart's subtotal reaches this (minor units).
    #[serde(default)]
    pub free_over: Option<i64>,
    /// Fewest days to deliver.
    pub min_days: u32,
    /// Most days to deliver.
    pub max_days: u32,
}

/// A tax rate of a zone: for a country (or one of its regions) and a category of goods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneRate {
    /// ISO 3166-1 alpha-2 country, or `*` for every country of the zone.
    pub country: String,
    /// A region (state, province) of it; absent: the whole country. A destination in a region
    /// pays the country's rates and the region's.
    #[serde(default)]
    pub region: Option<String>,
    /// Its name (`VAT`, `Sales tax` …).
    pub name: String,
    /// The category of goods it taxes.
    pub category: TaxCategory,
    /// Basis points (1,900 is 19 %).
    pub rate_bp: BasisPoints,
}

impl ZoneRate {
    /// The rate itself.
    pub fn rate(&self) -> Rate {
        Rate { name: self.name.clone(), category: self.category, rate_bp: self.rate_bp }
    }
}

/// Where a shop ships: countries (optionally narrowed to regions or postal-code prefixes), the
/// methods offered there and how those destinations are taxed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Zone {
    /// `zone_…`.
    pub id: String,
    /// Shown to staff.
    pub name: String,
    /// The currency of its prices; carts in another currency cannot ship here.
    pub currency: String,
    /// ISO 3166-1 alpha-2 codes, or `*` (every country no other zone takes).
    pub countries: Vec<String>,
    /// Only these regions of its countries (empty: all of them).
    #[serde(default)]
    pub regions: Vec<String>,
    /// Only postal codes starting with one of these (empty: all).
    #[serde(default)]
    pub postal_prefixes: Vec<String>,
    /// Whether prices include tax here (EU-style) rather than exclude it (US-style).
    pub tax_inclusive: bool,
    /// Whether shipping is taxed here.
    pub shipping_taxed: bool,
    /// Its tax rates.
    #[serde(default)]
    pub tax_rates: Vec<ZoneRate>,
    /// Its methods.
    pub methods: Vec<Method>,
}

/// A zone as an admin sends it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneInput {
    /// Shown to staff.
    pub name: String,
    /// The currency of its prices.
    pub currency: String,
    /// ISO 3166-1 alpha-2 codes, or `*`.
    pub countries: Vec<String>,
    /// Only these regions.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Only these postal-code prefixes.
    #[serde(default)]
    pub postal_prefixes: Vec<String>,
    /// Whether prices include tax here.
    #[serde(default)]
    pub tax_inclusive: bool,
    /// Whether shipping is taxed here.
    #[serde(default)]
    pub shipping_taxed: bool,
    /// Its tax rates.
    #[serde(default)]
    pub tax_rates: Vec<ZoneRate>,
    /// Its methods.
    pub methods: Vec<Method>,
}

fn is_country(code: &str) -> bool {
    code == REST_OF_WORLD || (code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()))
}

fn tiers_ok(tiers: &[Tier]) -> bool {
    !tiers.is_empty()
        && tiers.len() <= MAX_ENTRIES
        && tiers[0].from == 0
        && tiers.windows(2).all(|w| w[0].from < w[1].from)
        && tiers.iter().all(|t| t.amount >= 0)
}

impl ZoneInput {
    /// Checks the input into zone `id`, recording what is wrong in `v`.
    pub fn build(self, id: String, v: &mut Validator) -> Option<Zone> {
        let upper = |list: Vec<String>| -> Vec<String> {
            list.into_iter().map(|c| c.trim().to_ascii_uppercase()).filter(|c| !c.is_empty()).collect()
        };
        let name = self.name.trim().to_owned();
        v.check(!name.is_empty() && name.chars().count() <= 200, "name", "must be 1-200 characters");
        let currency = self.currency.to_ascii_uppercase();
        v.check(is_currency_code(&currency), "currency", "must be an ISO 4217 code");
        let countries = upper(self.countries);
        v.check(
            !countries.is_empty() && countries.len() <= MAX_ENTRIES && countries.iter().all(|c| is_country(c)),
            "countries",
            "must list 1-300 ISO 3166-1 alpha-2 codes (or * for the rest of the world)",
        );
        let regions = upper(self.regions);
        v.check(regions.len() <= MAX_ENTRIES, "regions", "lists at most 300 regions");
        let postal_prefixes = upper(self.postal_prefixes);
        v.check(postal_prefixes.len() <= MAX_ENTRIES, "postal_prefixes", "lists at most 300 prefixes");
        v.check(self.tax_rates.len() <= MAX_ENTRIES, "tax_rates", "lists at most 300 rates");
        let mut tax_rates = Vec::with_capacity(self.tax_rates.len());
        for (i, mut rate) in self.tax_rates.into_iter().enumerate() {
            rate.country = rate.country.trim().to_ascii_uppercase();
            rate.region = rate.region.map(|r| r.trim().to_ascii_uppercase()).filter(|r| !r.is_empty());
            v.check(
                is_country(&rate.country),
                &format!("tax_rates[{i}].country"),
                "must be an ISO 3166-1 alpha-2 code or *",
            );
            v.check(rate.rate_bp <= WHOLE, &format!("tax_rates[{i}].rate_bp"), "must be at most 10000");
            v.check(
                !rate.name.trim().is_empty() && rate.name.chars().count() <= 50,
                &format!("tax_rates[{i}].name"),
                "must be 1-50 characters",
            );
            tax_rates.push(rate);
        }
        v.check(!self.methods.is_empty() && self.methods.len() <= 20, "methods", "must list 1-20 methods");
        for (i, m) in self.methods.iter().enumerate() {
            let field = |name: &str| format!("methods[{i}].{name}");
            v.check(
                platform::sku::is_valid(&m.id) && m.id.len() <= 40,
                &field("id"),
                "must be 1-40 letters, digits, '-', '_' or '.'",
            );
            v.check(
                self.methods.iter().filter(|other| other.id == m.id).count() == 1,
                &field("id"),
                "is used by another method of the zone",
            );
            v.check(
                !m.name.trim().is_empty() && m.name.chars().count() <= 100,
                &field("name"),
                "must be 1-100 characters",
            );
            let pricing_ok = match &m.pricing {
                Pricing::Flat { amount } => *amount >= 0,
                Pricing::BySubtotal { tiers } | Pricing::ByWeight { tiers } => tiers_ok(tiers),
            };
            v.check(pricing_ok, &field("pricing"), "amounts must not be negative; tiers start at 0 and rise");
            v.check(m.free_over.is_none_or(|f| f >= 0), &field("free_over"), "must not be negative");
            v.check(m.min_days <= m.max_days && m.max_days <= 365, &field("max_days"), "must be from min_days to 365");
        }
        v.is_empty().then_some(Zone {
            id,
            name,
            currency,
            countries,
            regions,
            postal_prefixes,
            tax_inclusive: self.tax_inclusive,
            shipping_taxed: self.shipping_taxed,
            tax_rates,
            methods: self.methods,
        })
    }
}

impl Zone {
    /// How closely the zone matches `destination` (higher is closer), or `None` when it does not.
    fn fit(&self, destination: &Destination) -> Option<u8> {
        let country = destination.country.to_ascii_uppercase();
        let by_country = self.countries.contains(&country);
        if !by_country && !self.countries.iter().any(|c| c == REST_OF_WORLD) {
            return None;
        }
        let region = destination.region.as_deref().map(str::to_ascii_uppercase);
        if !self.regions.is_empty() && !region.as_ref().is_some_and(|r| self.regions.contains(r)) {
            return None;
        }
        let postal = destination.postal_code.as_deref().map(|p| p.replace(' ', "").to_ascii_uppercase());
        if !self.postal_prefixes.is_empty()
            && !postal
                .as_ref()
                .is_some_and(|p| self.postal_prefixes.iter().any(|prefix| p.starts_with(prefix.as_str())))
        {
            return None;
        }
        let narrowed = u8::from(!self.postal_prefixes.is_empty()) * 4 + u8::from(!self.regions.is_empty()) * 2;
        Some(narrowed + u8::from(by_country))
    }

    /// The tax rates at `destination`: the country's (and the zone-wide `*` ones) and its region's.
    pub fn rates_at(&self, destination: &Destination) -> Vec<Rate> {
        let country = destination.country.to_ascii_uppercase();
        let region = destination.region.as_deref().map(str::to_ascii_uppercase);
        let country_rates: Vec<&ZoneRate> = self.tax_rates.iter().filter(|r| r.country == country).collect();
        let chosen = if country_rates.is_empty() {
            self.tax_rates.iter().filter(|r| r.country == REST_OF_WORLD).collect()
        } else {
            country_rates
        };
        chosen.into_iter().filter(|r| r.region.is_none() || r.region == region).map(ZoneRate::rate).collect()
    }
}

/// The zone that ships to `destination` in `currency`: the one that fits it most closely (postal
/// prefixes over regions over countries over the rest of the world), the first made on a tie.
pub fn zone_for<'a>(zones: &'a [Zone], destination: &Destination, currency: &str) -> Option<&'a Zone> {
    let mut best: Option<(&Zone, u8)> = None;
    for zone in zones.iter().filter(|z| z.currency == currency) {
        if let Some(fit) = zone.fit(destination)
            && best.is_none_or(|(_, b)| fit > b)
        {
            best = Some((zone, fit));
        }
    }
    best.map(|(zone, _)| zone)
}

/// What a method costs a cart of `subtotal` (minor units) weighing `grams`.
pub fn price_of(method: &Method, subtotal: i64, grams: i64) -> i64 {
    if method.free_over.is_some_and(|threshold| subtotal >= threshold) {
        return 0;
    }
    let tiered = |tiers: &[Tier], value: i64| tiers.iter().rev().find(|t| value >= t.from).map_or(0, |t| t.amount);
    match &method.pricing {
        Pricing::Flat { amount } => *amount,
        Pricing::BySubtotal { tiers } => tiered(tiers, subtotal),
        Pricing::ByWeight { tiers } => tiered(tiers, grams),
    }
}

/// A method offered to a cart, with its price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Offer {
    /// The method (unique within the zone).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its price for this cart, in minor units of `currency`.
    pub price: i64,
    /// The currency.
    pub currency: String,
    /// Fewest days to deliver.
    pub min_days: u32,
    /// Most days to deliver.
    pub max_days: u32,
}

/// The methods `zone` offers a cart of `subtotal` weighing `grams`, cheapest first.
pub fn offers(zone: &Zone, subtotal: i64, grams: i64) -> Vec<Offer> {
    let mut offers: Vec<Offer> = zone
        .methods
        .iter()
        .map(|m| Offer {
            id: m.id.clone(),
            name: m.name.clone(),
            price: price_of(m, subtotal, grams),
            currency: zone.currency.clone(),
            min_days: m.min_days,
            max_days: m.max_days,
        })
        .collect();
    offers.sort_by_key(|o| (o.price, o.min_days));
    offers
}

/// A new zone's id.
pub fn new_zone_id() -> String {
    format!("zone_{}", uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(id: &str, pricing: Pricing) -> Method {
        Method { id: id.into(), name: id.to_uppercase(), pricing, free_over: None, min_days: 2, max_days: 5 }
    }

    fn zone(id: &str, countries: &[&str]) -> Zone {
        Zone {
            id: id.into(),
            name: id.into(),
            currency: "USD".into(),
            countries: countries.iter().map(|c| (*c).to_owned()).collect(),
            regions: vec![],
            postal_prefixes: vec![],
            tax_inclusive: false,
            shipping_taxed: false,
            tax_rates: vec![],
            methods: vec![method("standard", Pricing::Flat { amount: 500 })],
        }
    }

    fn to(country: &str, region: Option<&str>, postal: Option<&str>) -> Destination {
        Destination { country: country.into(), region: region.map(Into::into), postal_code: postal.map(Into::into) }
    }

    #[test]
    fn the_closest_zone_wins_and_the_rest_of_the_world_takes_what_is_left() {
        let mut hawaii = zone("hawaii", &["US"]);
        hawaii.regions = vec!["HI".into()];
        let mut manhattan = zone("manhattan", &["US"]);
        manhattan.postal_prefixes = vec!["100".into()];
        let zones = [zone("world", &["*"]), zone("us", &["US"]), hawaii, manhattan, zone("eu", &["DE", "FR"])];
        let id = |d: Destination| zone_for(&zones, &d, "USD").map(|z| z.id.as_str());
        assert_eq!(id(to("US", Some("CA"), Some("94105"))), Some("us"));
        assert_eq!(id(to("us", Some("hi"), Some("96813"))), Some("hawaii"));
        assert_eq!(id(to("US", Some("NY"), Some("10001"))), Some("manhattan"));
        assert_eq!(id(to("FR", None, Some("75001"))), Some("eu"));
        assert_eq!(id(to("JP", None, None)), Some("world"));
        assert_eq!(zone_for(&zones, &to("US", None, None), "EUR"), None, "no zone prices in euros");
        assert_eq!(zone_for(&zones[1..], &to("JP", None, None), "USD"), None, "outside every zone");
    }

    #[test]
    fn methods_are_priced_flat_by_subtotal_by_weight_and_free_over_a_threshold() {
        let tiers =
            vec![Tier { from: 0, amount: 900 }, Tier { from: 5_000, amount: 500 }, Tier { from: 10_000, amount: 0 }];
        let by_subtotal = method("s", Pricing::BySubtotal { tiers });
        assert_eq!([0, 4_999, 5_000, 12_000].map(|s| price_of(&by_subtotal, s, 0)), [900, 900, 500, 0]);
        let tiers = vec![Tier { from: 0, amount: 400 }, Tier { from: 1_000, amount: 800 }];
        let by_weight = method("w", Pricing::ByWeight { tiers });
        assert_eq!([0, 999, 1_000].map(|g| price_of(&by_weight, 0, g)), [400, 400, 800]);
        let mut flat = method("f", Pricing::Flat { amount: 599 });
        flat.free_over = Some(7_500);
        assert_eq!((price_of(&flat, 7_499, 0), price_of(&flat, 7_500, 0)), (599, 0));
        let mut z = zone("z", &["US"]);
        z.methods = vec![method("express", Pricing::Flat { amount: 1_500 }), flat];
        let listed: Vec<(String, i64)> = offers(&z, 100, 0).into_iter().map(|o| (o.id, o.price)).collect();
        assert_eq!(listed, [("f".to_owned(), 599), ("express".to_owned(), 1_500)], "cheapest first");
    }

    #[test]
    fn a_destination_pays_its_countrys_rates_and_its_regions() {
        let rate = |country: &str, region: Option<&str>, name: &str, bp| ZoneRate {
            country: country.into(),
            region: region.map(Into::into),
            name: name.into(),
            category: TaxCategory::Standard,
            rate_bp: bp,
        };
        let mut z = zone("ca", &["CA", "US"]);
        z.tax_rates = vec![
            rate("CA", None, "GST", 500),
            rate("CA", Some("BC"), "PST", 700),
            rate("US", Some("NY"), "Sales tax", 400),
            rate("*", None, "Import", 1_000),
        ];
        let names = |d: Destination| z.rates_at(&d).into_iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(names(to("CA", Some("BC"), None)), ["GST", "PST"]);
        assert_eq!(names(to("CA", Some("ON"), None)), ["GST"]);
        assert_eq!(names(to("US", Some("NY"), None)), ["Sales tax"]);
        assert!(names(to("US", Some("OR"), None)).is_empty(), "no rate of the country's applies");
        assert_eq!(names(to("MX", None, None)), ["Import"], "a country without rates of its own takes the zone's");
    }

    #[test]
    fn a_zone_input_is_checked() {
        let input = |body: serde_json::Value| serde_json::from_value::<ZoneInput>(body).unwrap();
        let mut v = Validator::new();
        let zone = input(serde_json::json!({
            "name": " US ", "currency": "usd", "countries": ["us"], "tax_rates": [
                {"country": "us", "region": "ny", "name": "Sales tax", "category": "standard", "rate_bp": 400}
            ],
            "methods": [{"id": "standard", "name": "Standard", "pricing": {"type": "flat", "amount": 500},
                "min_days": 3, "max_days": 5}]
        }))
        .build("zone_1".into(), &mut v)
        .unwrap();
        assert_eq!((zone.name.as_str(), zone.currency.as_str(), zone.countries[0].as_str()), ("US", "USD", "US"));
        assert_eq!(zone.tax_rates[0].region.as_deref(), Some("NY"));
        let mut v = Validator::new();
        let bad = input(serde_json::json!({
            "name": "", "currency": "dollars", "countries": ["USA"],
            "methods": [
                {"id": "a", "name": "A", "pricing": {"type": "by_weight", "tiers": [{"from": 5, "amount": 1}]},
                    "min_days": 5, "max_days": 2},
                {"id": "a", "name": "B", "pricing": {"type": "flat", "amount": -1}, "min_days": 1, "max_days": 2}
            ]
        }))
        .build("zone_2".into(), &mut v);
        assert!(bad.is_none());
        let fields: Vec<String> = v.into_errors().unwrap_err().into_iter().map(|e| e.field).collect();
        for field in [
            "name",
            "currency",
            "countries",
            "methods[0].id",
            "methods[0].pricing",
            "methods[0].max_days",
            "methods[1].pricing",
        ] {
            assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
        }
    }
}
