//! The demo catalog `shop up` starts with, so a fresh platform has something to browse.

use crate::Catalog;
use crate::domain::category::{Category, slugify};
use crate::store::StoreError;

/// The demo category tree: (name, parent name).
const DEMO_CATEGORIES: &[(&str, Option<&str>)] = &[
    ("Electronics", None),
    ("Phones", Some("Electronics")),
    ("Laptops", Some("Electronics")),
    ("Audio", Some("Electronics")),
    ("Home & Garden", None),
    ("Kitchen", Some("Home & Garden")),
    ("Furniture", Some("Home & Garden")),
    ("Fashion", None),
    ("Shoes", Some("Fashion")),
    ("Outdoor", None),
];

/// Seeds the demo catalog into an empty store; returns the number of categories added (0 when the
/// catalog already has categories).
pub async fn seed_demo(state: &Catalog) -> Result<usize, StoreError> {
    if !state.categories.list().await?.is_empty() {
        return Ok(0);
    }
    for (name, parent) in DEMO_CATEGORIES {
        let category = Category {
            id: format!("cat-{}", slugify(name)),
            name: (*name).to_owned(),
            parent_id: parent.map(|p| format!("cat-{}", slugify(p))),
            slug: slugify(name),
        };
        state.categories.insert(&category).await?;
    }
    Ok(DEMO_CATEGORIES.len())
}
