//! Products and variants: the rules a product must satisfy, free of I/O.

use std::collections::BTreeMap;

use platform::contracts::catalog::TaxCategory;
use platform::http::Validator;
use platform::money::{Money, is_currency_code};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most variants one product has (a DynamoDB transaction writes the product, its id record, the old
/// item on a category move, its event and a claim per SKU added or removed: 4 + 2 × 48 = 100 items).
pub const MAX_VARIANTS: usize = 48;

/// Most images one product has.
pub const MAX_IMAGES: usize = 20;

/// Largest product, as its JSON: what keeps its DynamoDB item (400 KB at most) well inside the
/// limit (its event carries ids and the names of what changed, never the product).
pub const MAX_PRODUCT_BYTES: usize = 128 * 1024;

/// Most attributes of a product.
pub const MAX_ATTRIBUTES: usize = 50;
/// Most attributes of one variant.
pub const MAX_VARIANT_ATTRIBUTES: usize = 20;
/// Longest attribute name, in characters.
pub const MAX_ATTRIBUTE_NAME: usize = 100;
/// Largest attribute value, as JSON.
pub const MAX_ATTRIBUTE_BYTES: usize = 2_000;

/// The event every write of a product records: [`Upserted`], the product's id, its SKUs and the
/// names of the fields that changed. Consumers read the product itself when they need it.
pub const UPSERTED: &str = "product.upserted.v2";

/// The first version of [`UPSERTED`], whose payload was the whole product (up to the product's
/// size, near the queues' limit): no longer written, still consumed, so the events an earlier
/// version left in outboxes and queues are applied after an upgrade. Its `id` is all a consumer
/// reads of it.
pub const UPSERTED_V1: &str = "product.upserted.v1";

/// The event a deleted product records (its payload: `{"id": …}`).
pub const DELETED: &str = "product.deleted.v1";

/// The payload of `product.upserted.v2`: a few kilobytes at most whatever the product's size
/// (48 SKUs of 64 characters and the field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upserted {
    /// The product.
    pub id: String,
    /// Whether the write made it (a create; an import's line may make or replace one, and says
    /// `false` with every field changed when it replaced).
    pub created: bool,
    /// The fields whose values the write changed, by their names in the API (`name`, `price`,
    /// `variants`, `images`, …); every field on a create or an import.
    pub changed: Vec<String>,
    /// The product's SKUs after the write.
    pub skus: Vec<String>,
    /// SKUs the write removed from the product.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skus_removed: Vec<String>,
}

/// Whether two products have the same value of one field.
type SameField = fn(&Product, &Product) -> bool;

/// The fields of a product a write can change, by their API names, with how to compare them.
const FIELDS: [(&str, SameField); 10] = [
    ("name", |a, b| a.name == b.name),
    ("description", |a, b| a.description == b.description),
    ("brand", |a, b| a.brand == b.brand),
    ("category_id", |a, b| a.category_id == b.category_id),
    ("price", |a, b| a.price == b.price),
    ("images", |a, b| a.images == b.images),
    ("attributes", |a, b| a.attributes == b.attributes),
    ("tax_category", |a, b| a.tax_category == b.tax_category),
    ("variants", |a, b| a.variants == b.variants),
    ("in_stock", |a, b| a.in_stock == b.in_stock),
];

/// The `product.upserted.v2` event of writing `product` over `before` (`None`: made, or replaced
/// without reading it first, as an import does).
pub fn upserted(product: &Product, before: Option<&Product>, created: bool) -> platform::events::Event {
    let skus: Vec<String> = product.variants.iter().map(|v| v.sku.clone()).collect();
    let (changed, skus_removed) = match before {
        None => (FIELDS.iter().map(|(name, _)| (*name).to_owned()).collect(), Vec::new()),
        Some(before) => (
            FIELDS.iter().filter(|(_, same)| !same(before, product)).map(|(name, _)| (*name).to_owned()).collect(),
            before.variants.iter().map(|v| v.sku.clone()).filter(|sku| !skus.contains(sku)).collect(),
        ),
    };
    let data = Upserted { id: product.id.clone(), created, changed, skus, skus_removed };
    platform::events::Event::new(UPSERTED, crate::NAME, data).with_subject(&product.id)
}

/// The `product.deleted.v1` event of product `id`.
pub fn deleted(id: &str) -> platform::events::Event {
    platform::events::Event::new(DELETED, crate::NAME, serde_json::json!({ "id": id })).with_subject(id)
}

/// A sellable variant of a product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Variant {
    /// The stock-keeping unit, unique in the catalog.
    pub sku: String,
    /// Its price.
    pub price: Money,
    /// What sets it apart (size, colour, …).
    #[serde(default)]
    pub attributes: BTreeMap<String, Value>,
    /// Its shipping weight in grams, if known (weight-tiered shipping counts it; unknown weighs
    /// nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_grams: Option<u32>,
}

/// A product as stored and served.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Product {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Long description.
    pub description: String,
    /// Brand.
    pub brand: String,
    /// Its category.
    pub category_id: String,
    /// The price shown for the product (its lowest variant price).
    pub price: Money,
    /// Image URLs.
    pub images: Vec<String>,
    /// Free-form attributes.
    pub attributes: BTreeMap<String, Value>,
    /// How it is taxed: `standard`, `reduced` or `zero` (each destination sets a rate per category).
    pub tax_category: TaxCategory,
    /// The SKUs.
    pub variants: Vec<Variant>,
    /// Whether any variant can be bought now.
    pub in_stock: bool,
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// The store's stamp of its last change, stock status included: rises with every write
    /// ([`next_revision`]). The search index keeps a product's newest revision only, so a slow or
    /// stale writer cannot bring an older state back. Bookkeeping, not content: not served, and
    /// not compared by `==`.
    #[serde(skip)]
    pub revision: i64,
}

impl PartialEq for Product {
    fn eq(&self, other: &Self) -> bool {
        // Two tuples: `==` on tuples stops at twelve elements.
        type Content<'a> = (
            (&'a String, &'a String, &'a String, &'a String, &'a String, &'a Money),
            (
                &'a Vec<String>,
                &'a BTreeMap<String, Value>,
                &'a TaxCategory,
                &'a Vec<Variant>,
                &'a bool,
                &'a chrono::DateTime<chrono::Utc>,
                &'a chrono::DateTime<chrono::Utc>,
            ),
        );
        fn content(p: &Product) -> Content<'_> {
            let Product {
                id,
                name,
                description,
                brand,
                category_id,
                price,
                images,
                attributes,
                tax_category,
                variants,
                in_stock,
                created_at,
                updated_at,
                revision: _,
            } = p;
            (
                (id, name, description, brand, category_id, price),
                (images, attributes, tax_category, variants, in_stock, created_at, updated_at),
            )
        }
        content(self) == content(other)
    }
}

/// The revision a write gives a product whose last revision was `previous` (0: none, or deleted):
/// the current time in microseconds, or one more than `previous` when the clock reads no later.
/// Time-based so that a product deleted and made again under its id (an import) outranks what the
/// index remembers of the deletion; never lower than before, whatever the clock does.
pub fn next_revision(previous: i64) -> i64 {
    chrono::Utc::now().timestamp_micros().max(previous.saturating_add(1))
}

/// A variant as an admin sends it; without a price it takes the product's.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantInput {
    /// The SKU.
    pub sku: String,
    /// Its price (default: the product's).
    #[serde(default)]
    pub price: Option<Money>,
    /// Its attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, Value>,
    /// Its shipping weight in grams.
    #[serde(default)]
    pub weight_grams: Option<u32>,
}

/// A whole product as an admin sends it (`POST`, `PUT`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    /// Display name.
    pub name: String,
    /// Long description.
    #[serde(default)]
    pub description: String,
    /// Brand.
    pub brand: String,
    /// Its category.
    pub category_id: String,
    /// The base price.
    pub price: Money,
    /// Free-form attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, Value>,
    /// How it is taxed (default `standard`).
    #[serde(default)]
    pub tax_category: TaxCategory,
    /// The SKUs (at least one).
    pub variants: Vec<VariantInput>,
}

/// The fields an admin changes (`PATCH`); absent ones stay.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    /// Display name.
    pub name: Option<String>,
    /// Long description.
    pub description: Option<String>,
    /// Brand.
    pub brand: Option<String>,
    /// Category.
    pub category_id: Option<String>,
    /// Base price.
    pub price: Option<Money>,
    /// Attributes (replaced whole).
    pub attributes: Option<BTreeMap<String, Value>>,
    /// How it is taxed.
    pub tax_category: Option<TaxCategory>,
    /// Variants (replaced whole).
    pub variants: Option<Vec<VariantInput>>,
}

impl ProductPatch {
    /// `current` with the patch applied, as a whole input to validate.
    pub fn apply(self, current: &Product) -> ProductInput {
        ProductInput {
            name: self.name.unwrap_or_else(|| current.name.clone()),
            description: self.description.unwrap_or_else(|| current.description.clone()),
            brand: self.brand.unwrap_or_else(|| current.brand.clone()),
            category_id: self.category_id.unwrap_or_else(|| current.category_id.clone()),
            price: self.price.unwrap_or_else(|| current.price.clone()),
            attributes: self.attributes.unwrap_or_else(|| current.attributes.clone()),
            tax_category: self.tax_category.unwrap_or(current.tax_category),
            variants: self.variants.unwrap_or_else(|| {
                current
                    .variants
                    .iter()
                    .map(|v| VariantInput {
                        sku: v.sku.clone(),
                        price: Some(v.price.clone()),
                        attributes: v.attributes.clone(),
                        weight_grams: v.weight_grams,
                    })
                    .collect()
            }),
        }
    }
}

/// The checked, normalised product an input describes (its id, stock and images supplied by the
/// caller), or the field errors. Whether the category exists is the caller's to check.
pub fn build(
    input: ProductInput,
    id: String,
    images: Vec<String>,
    in_stock: bool,
    created_at: chrono::DateTime<chrono::Utc>,
    v: &mut Validator,
) -> Option<Product> {
    let name = input.name.trim().to_owned();
    let brand = input.brand.trim().to_owned();
    v.check(!name.is_empty() && name.chars().count() <= 200, "name", "must be 1 to 200 characters");
    v.check(input.description.chars().count() <= 10_000, "description", "must be at most 10000 characters");
    v.check(!brand.is_empty() && brand.chars().count() <= 100, "brand", "must be 1 to 100 characters");
    v.check(!input.category_id.trim().is_empty(), "category_id", "is required");
    v.check(input.price.amount >= 0, "price.amount", "must not be negative");
    v.check(is_currency_code(&input.price.currency), "price.currency", "must be an ISO 4217 code such as USD");
    v.check(input.attributes.len() <= MAX_ATTRIBUTES, "attributes", "at most 50 attributes");
    check_attributes(&input.attributes, "attributes", v);
    v.check(images.len() <= MAX_IMAGES, "images", "at most 20 images");
    v.check(!input.variants.is_empty(), "variants", "a product has at least one variant");
    v.check(input.variants.len() <= MAX_VARIANTS, "variants", "at most 48 variants");
    let mut seen = std::collections::HashSet::new();
    let mut variants = Vec::with_capacity(input.variants.len());
    for (i, variant) in input.variants.into_iter().enumerate() {
        let price = variant.price.unwrap_or_else(|| input.price.clone());
        v.check(
            platform::sku::is_valid(&variant.sku),
            &format!("variants[{i}].sku"),
            "must be 1-64 letters, digits, '-', '_' or '.'",
        );
        v.check(seen.insert(variant.sku.clone()), &format!("variants[{i}].sku"), "is repeated");
        v.check(price.amount >= 0, &format!("variants[{i}].price.amount"), "must not be negative");
        v.check(
            price.currency == input.price.currency,
            &format!("variants[{i}].price.currency"),
            "must be the product's currency",
        );
        v.check(
            variant.attributes.len() <= MAX_VARIANT_ATTRIBUTES,
            &format!("variants[{i}].attributes"),
            "at most 20 attributes a variant",
        );
        check_attributes(&variant.attributes, &format!("variants[{i}].attributes"), v);
        v.check(
            variant.weight_grams.is_none_or(|grams| grams <= 1_000_000),
            &format!("variants[{i}].weight_grams"),
            "must be at most 1000000 (a tonne)",
        );
        variants.push(Variant {
            sku: variant.sku,
            price,
            attributes: variant.attributes,
            weight_grams: variant.weight_grams,
        });
    }
    if !v.is_empty() {
        return None;
    }
    let lowest = variants.iter().map(|v| v.price.amount).min().unwrap_or(input.price.amount);
    let now = chrono::Utc::now();
    let product = Product {
        id,
        name,
        description: input.description,
        brand,
        category_id: input.category_id.trim().to_owned(),
        price: Money { amount: lowest, currency: input.price.currency.clone() },
        images,
        attributes: input.attributes,
        tax_category: input.tax_category,
        variants,
        in_stock,
        created_at,
        updated_at: now,
        revision: 0,
    };
    // The whole of it, as stored and as its event carries it.
    let json = serde_json::to_vec(&product).expect("a product serializes");
    if let Some(field) = platform::http::extract::unsendable_field(&json) {
        v.check(false, &field, "contains U+FFFE or U+FFFF, which are not characters");
    }
    v.check(
        json.len() <= MAX_PRODUCT_BYTES,
        "product",
        &format!("the product is {} bytes as JSON; a product may be at most {MAX_PRODUCT_BYTES}", json.len()),
    );
    v.is_empty().then_some(product)
}

/// Checks each attribute's name and the size of its value.
fn check_attributes(attributes: &BTreeMap<String, Value>, field: &str, v: &mut Validator) {
    for (name, value) in attributes {
        v.check(
            !name.trim().is_empty() && name.chars().count() <= MAX_ATTRIBUTE_NAME,
            &format!("{field}.{name}"),
            "an attribute name is 1 to 100 characters",
        );
        let size = serde_json::to_string(value).map_or(usize::MAX, |text| text.len());
        v.check(
            size <= MAX_ATTRIBUTE_BYTES,
            &format!("{field}.{name}"),
            &format!("the value is {size} bytes as JSON; at most {MAX_ATTRIBUTE_BYTES}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_upsert_event_carries_ids_and_the_names_of_what_changed_never_the_product() {
        let mut v = Validator::new();
        let mut big = input();
        big.description = "word ".repeat(2_000);
        let before = build(big, "p1".into(), vec![], false, chrono::Utc::now(), &mut v).unwrap();
        let made = upserted(&before, None, true);
        assert_eq!(made.kind, "product.upserted.v2");
        assert_eq!(made.subject.as_deref(), Some("p1"));
        let data: Upserted = made.data_as().unwrap();
        assert!(data.created);
        assert_eq!(data.changed.len(), FIELDS.len(), "a create changes every field");
        assert_eq!(data.skus, ["TR-42", "TR-43"]);
        assert!(made.to_json().len() < 1_000, "a product of 10 KB makes an event of a few hundred bytes");

        let mut after = before.clone();
        after.name = "Trail Runner II".into();
        after.variants.retain(|v| v.sku == "TR-42");
        let changed: Upserted = upserted(&after, Some(&before), false).data_as().unwrap();
        assert_eq!(
            changed,
            Upserted {
                id: "p1".into(),
                created: false,
                changed: vec!["name".into(), "variants".into()],
                skus: vec!["TR-42".into()],
                skus_removed: vec!["TR-43".into()],
            }
        );
        let same: Upserted = upserted(&after, Some(&after), false).data_as().unwrap();
        assert!(same.changed.is_empty(), "a write that changes nothing says so");
    }

    fn input() -> ProductInput {
        serde_json::from_value(json!({
            "name": " Trail Runner ", "brand": "Acme", "category_id": "cat-shoes",
            "price": {"amount": 8999, "currency": "USD"},
            "variants": [{"sku": "TR-42"}, {"sku": "TR-43", "price": {"amount": 7999, "currency": "USD"}}]
        }))
        .unwrap()
    }

    #[test]
    fn a_valid_input_builds_a_product_priced_at_its_lowest_variant() {
        let mut v = Validator::new();
        let product = build(input(), "p1".into(), vec![], false, chrono::Utc::now(), &mut v).unwrap();
        assert_eq!(product.name, "Trail Runner");
        assert_eq!(product.price.amount, 7999);
        assert_eq!(product.variants[0].price.amount, 8999, "a variant without a price takes the product's");
    }

    #[test]
    fn a_product_is_bounded_so_its_item_and_event_always_fit() {
        let mut v = Validator::new();
        let mut large = input();
        large.attributes.insert("spec".into(), json!("x".repeat(MAX_ATTRIBUTE_BYTES)));
        large.attributes.insert(String::new(), json!(1));
        assert!(build(large, "p1".into(), vec![], false, chrono::Utc::now(), &mut v).is_none());
        let fields: Vec<String> = v.finish().unwrap_err().problem().errors.iter().map(|e| e.field.clone()).collect();
        assert_eq!(fields, ["attributes.", "attributes.spec"]);

        // Every field within its own bound, the whole over the limit: 48 variants of 20 attributes
        // near their size.
        let mut whole = input();
        whole.variants = (0..MAX_VARIANTS)
            .map(|i| VariantInput {
                sku: format!("V-{i}"),
                price: None,
                attributes: (0..MAX_VARIANT_ATTRIBUTES).map(|a| (format!("a{a}"), json!("y".repeat(150)))).collect(),
                weight_grams: None,
            })
            .collect();
        let mut v = Validator::new();
        assert!(build(whole, "p1".into(), vec![], false, chrono::Utc::now(), &mut v).is_none());
        let problem = v.finish().unwrap_err().problem();
        assert_eq!(problem.errors.len(), 1, "{:?}", problem.errors);
        assert_eq!(problem.errors[0].field, "product");
        assert!(problem.errors[0].message.contains(&MAX_PRODUCT_BYTES.to_string()), "{:?}", problem.errors);

        let mut odd = input();
        odd.description = "nice\u{FFFE}".into();
        let mut v = Validator::new();
        assert!(build(odd, "p1".into(), vec![], false, chrono::Utc::now(), &mut v).is_none());
        assert_eq!(v.finish().unwrap_err().problem().errors[0].field, "description");
    }

    #[test]
    fn bad_fields_are_each_named() {
        let mut bad = input();
        bad.price.amount = -1;
        bad.name = String::new();
        bad.variants.push(VariantInput {
            sku: "TR-42".into(),
            price: None,
            attributes: BTreeMap::new(),
            weight_grams: None,
        });
        bad.variants.push(VariantInput {
            sku: "bad sku".into(),
            price: Some(Money::new(1, "EUR")),
            attributes: BTreeMap::new(),
            weight_grams: Some(2_000_000),
        });
        let mut v = Validator::new();
        assert!(build(bad, "p1".into(), vec![], false, chrono::Utc::now(), &mut v).is_none());
        let error = v.finish().unwrap_err();
        let fields: Vec<String> = error.problem().errors.iter().map(|e| e.field.clone()).collect();
        for field in [
            "name",
            "price.amount",
            "variants[2].sku",
            "variants[3].sku",
            "variants[3].price.currency",
            "variants[3].weight_grams",
        ] {
            assert!(fields.contains(&field.to_owned()), "{field} in {fields:?}");
        }
    }
}
