//! What the storefront reads from the product and inventory services, through their public APIs:
//! the category tree, search and browse pages with facets, products, and each SKU's stock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use platform::client::{Call, ClientError, ServiceClient};
use platform::money::Money;
use serde::Deserialize;

/// A category of the tree.
#[derive(Debug, Clone, Deserialize)]
pub struct Category {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The parent, `None` at the top.
    pub parent_id: Option<String>,
    /// URL name.
    pub slug: String,
}

#[derive(Deserialize)]
struct CategoryList {
    items: Vec<Category>,
}

/// A product as a listing shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Summary {
    /// Its id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Brand.
    pub brand: String,
    /// Its category.
    pub category_id: String,
    /// Lowest variant price.
    pub price: Money,
    /// First image.
    pub image: Option<String>,
    /// Whether any variant can be bought now.
    pub in_stock: bool,
}

/// A value of a facet and how many results have it.
#[derive(Debug, Clone, Deserialize)]
pub struct FacetCount {
    /// The value.
    pub value: String,
    /// How many.
    pub count: u64,
}

/// A price range and how many results fall in it.
#[derive(Debug, Clone, Deserialize)]
pub struct PriceBucket {
    /// Lower bound, minor units, inclusive.
    pub from: i64,
    /// Upper bound, exclusive; `None` for the last.
    pub to: Option<i64>,
    /// How many.
    pub count: u64,
}

/// Facet counts over every match.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Facets {
    /// By brand.
    pub brand: Vec<FacetCount>,
    /// By category.
    pub category: Vec<FacetCount>,
    /// By price range.
    pub price: Vec<PriceBucket>,
}

/// A page of search or browse results.
#[derive(Debug, Clone, Deserialize)]
pub struct Results {
    /// This page.
    pub items: Vec<Summary>,
    /// Matches in all.
    pub total: u64,
    /// Counts over every match.
    pub facets: Facets,
    /// The next page's cursor.
    pub next_cursor: Option<String>,
}

/// A SKU of a product.
#[derive(Debug, Clone, Deserialize)]
pub struct Variant {
    /// The SKU.
    pub sku: String,
    /// Its price.
    pub price: Money,
    /// What sets it apart (size, colour …).
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// A product.
#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    /// Its id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Long description.
    pub description: String,
    /// Brand.
    pub brand: String,
    /// Its category.
    pub category_id: String,
    /// The lowest variant price.
    pub price: Money,
    /// Image URLs.
    #[serde(default)]
    pub images: Vec<String>,
    /// Free-form attributes.
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// The SKUs.
    pub variants: Vec<Variant>,
    /// Whether any variant can be bought now.
    pub in_stock: bool,
}

/// What a listing asks for (the product service's `GET /v1/products` parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Words.
    pub q: Option<String>,
    /// Whether the last word may be the start of one (suggestions as one types).
    pub prefix: bool,
    /// A category id or slug.
    pub category: Option<String>,
    /// A brand.
    pub brand: Option<String>,
    /// Lowest price, minor units.
    pub min_price: Option<i64>,
    /// Highest price, minor units.
    pub max_price: Option<i64>,
    /// Only what is in stock.
    pub in_stock: bool,
    /// `relevance`, `price_asc`, `price_desc`, `newest`.
    pub sort: Option<String>,
    /// The page after this cursor.
    pub cursor: Option<String>,
    /// Results a page.
    pub limit: Option<usize>,
}

impl Query {
    /// The query string of the product service's search for this query.
    fn to_api(&self) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        if let Some(q) = text(&self.q) {
            pairs.push(("q", q));
            if self.prefix {
                pairs.push(("prefix", "true".into()));
            }
        }
        if let Some(category) = text(&self.category) {
            pairs.push(("category", category));
        }
        if let Some(brand) = text(&self.brand) {
            pairs.push(("brand", brand));
        }
        if let Some(min) = self.min_price {
            pairs.push(("min_price", min.to_string()));
        }
        if let Some(max) = self.max_price {
            pairs.push(("max_price", max.to_string()));
        }
        if self.in_stock {
            pairs.push(("in_stock", "true".into()));
        }
        if let Some(sort) = text(&self.sort) {
            pairs.push(("sort", sort));
        }
        if let Some(cursor) = text(&self.cursor) {
            pairs.push(("cursor", cursor));
        }
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        crate::page::query_string(&pairs)
    }
}

/// How long the category tree is kept: every page shows it, and it seldom changes. A slug or id
/// the kept tree lacks asks again ([`Catalog::categories_fresh`]), so a new category has its page
/// at once; a renamed one shows its new name within this.
const TREE_TTL: Duration = Duration::from_secs(30);

/// Asked again at most this often when a page needs a category the kept tree lacks (a link to a
/// category that does not exist cannot make every request ask).
const TREE_RECHECK: Duration = Duration::from_secs(1);

/// The catalog through the product and inventory services.
pub struct Catalog {
    product: ServiceClient,
    inventory: ServiceClient,
    /// The category tree and when it was read.
    tree: Mutex<Option<(Instant, Arc<Vec<Category>>)>>,
}

#[derive(Deserialize)]
struct Availability {
    sku: String,
    available: i64,
}

#[derive(Deserialize)]
struct ManyAvailability {
    items: Vec<Availability>,
}

impl Catalog {
    /// A catalog asking `product` and `inventory`.
    pub fn new(product: ServiceClient, inventory: ServiceClient) -> Self {
        Self { product, inventory, tree: Mutex::new(None) }
    }

    /// The category tree, parents before children, at most [`TREE_TTL`] old.
    pub async fn categories(&self) -> Result<Arc<Vec<Category>>, ClientError> {
        self.tree_within(TREE_TTL).await
    }

    /// The category tree read again, unless it was read in the last [`TREE_RECHECK`]: for a page
    /// whose category the kept tree lacks.
    pub async fn categories_fresh(&self) -> Result<Arc<Vec<Category>>, ClientError> {
        self.tree_within(TREE_RECHECK).await
    }

    async fn tree_within(&self, age: Duration) -> Result<Arc<Vec<Category>>, ClientError> {
        if let Some((at, tree)) = self.tree.lock().expect("category tree lock").as_ref()
            && at.elapsed() < age
        {
            return Ok(tree.clone());
        }
        let tree = Arc::new(self.product.get::<CategoryList>("/v1/categories", &Call::default()).await?.items);
        *self.tree.lock().expect("category tree lock") = Some((Instant::now(), tree.clone()));
        Ok(tree)
    }

    /// A page of products matching `query`.
    pub async fn search(&self, query: &Query) -> Result<Results, ClientError> {
        self.product.get(&format!("/v1/products{}", query.to_api()), &Call::default()).await
    }

    /// The product `id`; `None` when there is none.
    pub async fn product(&self, id: &str) -> Result<Option<Product>, ClientError> {
        // Ids are what the catalog made them (UUIDs, or slugs of letters, digits and '-'): only
        // such a one is asked for, so a path cannot reach another route.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Ok(None);
        }
        match self.product.get(&format!("/v1/products/{id}"), &Call::default()).await {
            Ok(product) => Ok(Some(product)),
            Err(error) if error.status() == Some(axum::http::StatusCode::NOT_FOUND) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Units of each of `skus` that can be bought now (0 for one the inventory does not know):
    /// one request for up to 100 of them.
    pub async fn available(&self, skus: &[String]) -> Result<HashMap<String, i64>, ClientError> {
        let mut available: HashMap<String, i64> = skus.iter().map(|sku| (sku.clone(), 0)).collect();
        for chunk in skus.chunks(100) {
            let path = format!("/v1/inventory?skus={}", crate::page::encode(&chunk.join(",")));
            for item in self.inventory.get::<ManyAvailability>(&path, &Call::default()).await?.items {
                available.insert(item.sku, item.available.max(0));
            }
        }
        Ok(available)
    }
}
