//! The search index port: full-text relevance search over name, brand and description, filters,
//! facet counts, sorts and cursor pagination. The index is derived data: it follows the product
//! store through events and can be rebuilt from it at any time.

pub mod opensearch;
pub mod tantivy;

use std::collections::HashMap;

use async_trait::async_trait;
use platform::money::Money;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::product::Product;

/// The price facet's bucket edges, in minor units: `[0, 25)`, `[25, 50)`, `[50, 100)`, `[100, 250)`,
/// `[250, ∞)` in major units.
pub const PRICE_EDGES: [i64; 4] = [2_500, 5_000, 10_000, 25_000];

/// Longest page of results.
pub const MAX_LIMIT: usize = 100;

/// The facet values reported at most per facet.
pub const MAX_FACET_VALUES: usize = 50;

/// How long an index remembers a deletion at least, refusing older copies of the deleted product
/// (a rebuild writes a page within seconds of reading it from the store).
pub const TOMBSTONE_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// The current time as the index stamps its writes and deletions: microseconds since the epoch,
/// the unit of [`Product::revision`].
pub fn stamp() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// What the index holds of a product: the searched text, the filtered and sorted values, and the
/// summary a result list shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchDoc {
    /// The product id.
    pub id: String,
    /// Name (searched, boosted most).
    pub name: String,
    /// Brand (searched; exact-match filter and facet).
    pub brand: String,
    /// Description (searched).
    pub description: String,
    /// Its own category (the category facet).
    pub category_id: String,
    /// Its category and every ancestor, so filtering by a category finds its sub-categories' products.
    pub category_path: Vec<String>,
    /// Lowest variant price, minor units.
    pub price: i64,
    /// The price's currency.
    pub currency: String,
    /// First image, if any.
    pub image: Option<String>,
    /// Whether any variant can be bought.
    pub in_stock: bool,
    /// Creation time, milliseconds since the epoch (the `newest` sort).
    pub created_at_ms: i64,
    /// The product's revision in the store: the index keeps the newest it was given.
    #[serde(default)]
    pub revision: i64,
}

impl SearchDoc {
    /// The document of `product`, whose category has the ancestors `category_path` (itself first).
    pub fn of(product: &Product, category_path: Vec<String>) -> Self {
        Self {
            id: product.id.clone(),
            name: product.name.clone(),
            brand: product.brand.clone(),
            description: product.description.clone(),
            category_id: product.category_id.clone(),
            category_path,
            price: product.price.amount,
            currency: product.price.currency.clone(),
            image: product.images.first().cloned(),
            in_stock: product.in_stock,
            created_at_ms: product.created_at.timestamp_millis(),
            revision: product.revision,
        }
    }

    /// The summary shown in a result list.
    pub fn summary(&self) -> ProductSummary {
        ProductSummary {
            id: self.id.clone(),
            name: self.name.clone(),
            brand: self.brand.clone(),
            category_id: self.category_id.clone(),
            price: Money { amount: self.price, currency: self.currency.clone() },
            image: self.image.clone(),
            in_stock: self.in_stock,
        }
    }
}

/// A product in a result list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductSummary {
    /// The product id (`GET /v1/products/{id}` has the rest).
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

impl ProductSummary {
    /// About how much memory it takes (its text and its fields), for caches bounded by bytes.
    pub fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.id.len()
            + self.name.len()
            + self.brand.len()
            + self.category_id.len()
            + self.price.currency.len()
            + self.image.as_ref().map_or(0, String::len)
    }
}

/// The order of results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Best text match first (newest first without a text query).
    #[default]
    Relevance,
    /// Cheapest first.
    PriceAsc,
    /// Dearest first.
    PriceDesc,
    /// Most recently created first.
    Newest,
}

/// Where a page ends: the last result's sort value and tie-breaker. Results strictly after it in the
/// sort order make the next page.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort value (score for relevance, price, or creation time).
    pub value: f64,
    /// [`tiebreak`] of the last result's id.
    pub tiebreak: u64,
}

impl Cursor {
    /// The opaque form clients pass back.
    pub fn encode(&self) -> String {
        use base64::Engine;
        let mut bytes = Vec::with_capacity(16);
        bytes.extend_from_slice(&self.value.to_be_bytes());
        bytes.extend_from_slice(&self.tiebreak.to_be_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Parses [`Cursor::encode`]'s form; `None` when it is not one.
    pub fn decode(text: &str) -> Option<Self> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok()?;
        let bytes: [u8; 16] = bytes.try_into().ok()?;
        let value = f64::from_be_bytes(bytes[..8].try_into().ok()?);
        value.is_finite().then(|| Self { value, tiebreak: u64::from_be_bytes(bytes[8..].try_into().expect("8 bytes")) })
    }
}

/// The stable tie-breaker of a product id: results with equal sort values come in this order
/// (ascending), on every engine.
pub fn tiebreak(id: &str) -> u64 {
    let digest = Sha256::digest(id.as_bytes());
    // Kept below 2^53 so engines that hold numbers as doubles (OpenSearch's JSON) compare it exactly.
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) >> 11
}

/// A search: an optional text query, filters, a sort and a page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchQuery {
    /// Free text (name, brand, description); `None` browses.
    pub text: Option<String>,
    /// Whether the last word of `text` may be the start of a word (search as one types:
    /// "wireless lapt" finds wireless laptops).
    pub prefix: bool,
    /// Only products in this category or any of its sub-categories.
    pub category: Option<String>,
    /// Only this brand (exact).
    pub brand: Option<String>,
    /// Lowest price, minor units, inclusive.
    pub min_price: Option<i64>,
    /// Highest price, minor units, inclusive.
    pub max_price: Option<i64>,
    /// Only products in stock (`Some(true)`) or out of stock (`Some(false)`).
    pub in_stock: Option<bool>,
    /// The order.
    pub sort: Sort,
    /// Results per page (1 to [`MAX_LIMIT`]).
    pub limit: usize,
    /// Continue after this result.
    pub after: Option<Cursor>,
}

/// One value of a facet and how many results have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FacetCount {
    /// The value.
    pub value: String,
    /// Results with it.
    pub count: u64,
}

/// One price bucket and how many results fall in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PriceBucket {
    /// Lower bound, minor units, inclusive.
    pub from: i64,
    /// Upper bound, minor units, exclusive; `None` for the last bucket.
    pub to: Option<i64>,
    /// Results in it.
    pub count: u64,
}

/// Facet counts over every result of a search (not only the page).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Facets {
    /// Brands, most frequent first (ties by value).
    pub brand: Vec<FacetCount>,
    /// Categories (each product's own), most frequent first (ties by value).
    pub category: Vec<FacetCount>,
    /// The [`PRICE_EDGES`] buckets, in order, every one present.
    pub price: Vec<PriceBucket>,
}

impl Facets {
    /// Facets from raw counts: sorts and caps the value lists and lays out the price buckets.
    pub fn from_counts(
        brand: impl IntoIterator<Item = (String, u64)>,
        category: impl IntoIterator<Item = (String, u64)>,
        price: [u64; PRICE_EDGES.len() + 1],
    ) -> Self {
        fn top(counts: impl IntoIterator<Item = (String, u64)>) -> Vec<FacetCount> {
            let mut list: Vec<FacetCount> =
                counts.into_iter().filter(|(_, n)| *n > 0).map(|(value, count)| FacetCount { value, count }).collect();
            list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
            list.truncate(MAX_FACET_VALUES);
            list
        }
        let price = price
            .iter()
            .enumerate()
            .map(|(i, &count)| PriceBucket {
                from: if i == 0 { 0 } else { PRICE_EDGES[i - 1] },
                to: PRICE_EDGES.get(i).copied(),
                count,
            })
            .collect();
        Self { brand: top(brand), category: top(category), price }
    }
}

/// The bucket of [`PRICE_EDGES`] `price` falls in.
pub fn price_bucket(price: i64) -> usize {
    PRICE_EDGES.iter().take_while(|&&edge| price >= edge).count()
}

/// One page of results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchPage {
    /// The results of this page, in order.
    pub items: Vec<ProductSummary>,
    /// How many products match in all.
    pub total: u64,
    /// Facet counts over every match.
    pub facets: Facets,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

impl SearchPage {
    /// About how much memory it takes, for caches bounded by bytes.
    pub fn size(&self) -> usize {
        let facet = |list: &[FacetCount]| list.iter().map(|f| f.value.len() + 40).sum::<usize>();
        std::mem::size_of::<Self>()
            + self.items.iter().map(ProductSummary::size).sum::<usize>()
            + facet(&self.facets.brand)
            + facet(&self.facets.category)
            + self.facets.price.len() * std::mem::size_of::<PriceBucket>()
    }
}

/// A failure of the search engine.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The engine failed or is unreachable.
    #[error("search engine")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl platform::error::Kinded for SearchError {
    fn kind(&self) -> platform::error::ErrorKind {
        match self {
            Self::Backend(_) => platform::error::ErrorKind::Internal,
        }
    }
}

impl SearchError {
    /// A backend failure from any error.
    pub fn backend(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Backend(error.into())
    }
}

/// A search engine holding [`SearchDoc`]s by product id.
#[async_trait]
pub trait SearchIndex: Send + Sync {
    /// Makes the index (schema, mapping) when it does not exist.
    async fn ensure(&self) -> Result<(), SearchError>;
    /// Adds or replaces documents; visible to searches once this returns. A document is written
    /// only when the index holds no newer revision of its product and no deletion stamped after its
    /// revision (an equal revision is written again: a category path may have changed), so a slow
    /// writer (a rebuild's page read before a change, a lagging replica) cannot bring an older state
    /// back. Each written document is stamped with the time of the write (see [`SearchIndex::sweep`]).
    async fn upsert(&self, docs: Vec<SearchDoc>) -> Result<(), SearchError>;
    /// Removes documents as of `at` (a [`stamp`] taken before the store was seen without them):
    /// a document of a newer revision stays, and for [`TOMBSTONE_TTL`] at least an older copy is
    /// refused. Unknown ids are ignored (their deletion is remembered all the same); gone from
    /// searches once this returns.
    async fn delete(&self, ids: Vec<String>, at: i64) -> Result<(), SearchError>;
    /// Removes every document last written before `before` (a [`stamp`]): once a rebuild has
    /// written every product of the store, what was not written since it began is no product of
    /// the store. `i64::MAX` empties the index.
    async fn sweep(&self, before: i64) -> Result<(), SearchError>;
    /// Runs a search.
    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, SearchError>;
    /// The number of documents.
    async fn count(&self) -> Result<u64, SearchError>;
    /// Whether the engine answers.
    async fn ping(&self) -> Result<(), SearchError>;
    /// The revisions the index holds of `ids` (an id not indexed is absent). What lets a stock
    /// change that moved no product's status skip the write: the index holds that revision already.
    /// An engine that cannot tell cheaply answers nothing, and its products are written again.
    async fn indexed_revisions(&self, _ids: &[String]) -> Result<HashMap<String, i64>, SearchError> {
        Ok(HashMap::new())
    }
    /// Starts a rebuild beside the live index, where the engine can: a new, empty index that live
    /// writes reach too from now on (as well as the live one), for the rebuild to fill and then
    /// swap in with [`SearchIndex::finish_rebuild`], so searches see the old index whole until
    /// the new one is whole. `None` where the index is rebuilt in place (written over, then swept).
    async fn begin_rebuild(&self) -> Result<Option<Rebuild>, SearchError> {
        Ok(None)
    }
    /// Makes the index of `rebuild` the live one, at once for every search, and drops the index it
    /// replaces.
    async fn finish_rebuild(&self, rebuild: Rebuild) -> Result<(), SearchError> {
        drop(rebuild);
        Ok(())
    }
    /// Gives up `rebuild` (it failed): drops its index, and live writes reach the live one only.
    async fn abandon_rebuild(&self, rebuild: Rebuild) -> Result<(), SearchError> {
        drop(rebuild);
        Ok(())
    }
}

/// A rebuild in progress beside the live index ([`SearchIndex::begin_rebuild`]).
pub struct Rebuild {
    /// The engine's name of the new index.
    pub name: String,
    /// The new index, for the rebuild's writes.
    pub target: std::sync::Arc<dyn SearchIndex>,
}

impl std::fmt::Debug for Rebuild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rebuild").field("name", &self.name).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = Cursor { value: 12.5, tiebreak: tiebreak("p-1") };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::decode("not a cursor"), None);
        assert_eq!(Cursor::decode(""), None);
        assert!(tiebreak("p-1") < 1 << 53);
    }

    #[test]
    fn prices_fall_in_their_buckets() {
        assert_eq!(price_bucket(0), 0);
        assert_eq!(price_bucket(2_499), 0);
        assert_eq!(price_bucket(2_500), 1);
        assert_eq!(price_bucket(24_999), 3);
        assert_eq!(price_bucket(1_000_000), 4);
        let facets = Facets::from_counts([("b".into(), 1), ("a".into(), 1), ("c".into(), 0)], [], [1, 0, 0, 0, 2]);
        assert_eq!(facets.brand.iter().map(|f| f.value.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(facets.price.len(), 5);
        assert_eq!(facets.price[4], PriceBucket { from: 25_000, to: None, count: 2 });
    }
}
