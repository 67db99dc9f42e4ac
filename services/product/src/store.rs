//! The product service's storage ports and their adapters.

pub mod dynamodb;
pub mod sqlite;

use async_trait::async_trait;

use platform::events::Event;

use crate::domain::category::Category;
use crate::domain::product::Product;

/// A failure of a catalog store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A category with this slug exists already.
    #[error("the slug {0} is taken")]
    DuplicateSlug(String),
    /// The named parent does not exist.
    #[error("no category {0:?}")]
    UnknownParent(String),
    /// The product's category does not exist.
    #[error("no category {0:?}")]
    UnknownCategory(String),
    /// A SKU belongs to another product.
    #[error("SKU {0} belongs to another product")]
    DuplicateSku(String),
    /// The store itself failed.
    #[error("catalog store")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl platform::error::Kinded for StoreError {
    fn kind(&self) -> platform::error::ErrorKind {
        use platform::error::ErrorKind;
        match self {
            Self::DuplicateSlug(_) | Self::DuplicateSku(_) => ErrorKind::Conflict,
            Self::UnknownParent(_) => ErrorKind::Invalid { field: "parent_id" },
            Self::UnknownCategory(_) => ErrorKind::Invalid { field: "category_id" },
            Self::Backend(error) => platform::error::backend_kind(error.as_ref()),
        }
    }
}

impl From<platform::dynamodb::DynamoError> for StoreError {
    fn from(error: platform::dynamodb::DynamoError) -> Self {
        Self::Backend(Box::new(error))
    }
}

/// The category tree.
#[async_trait]
pub trait CategoryStore: Send + Sync {
    /// Every category, parents before children.
    async fn list(&self) -> Result<Vec<Category>, StoreError>;
    /// Adds a category.
    async fn insert(&self, category: &Category) -> Result<(), StoreError>;
}

/// Products and their variants. Every write also records its event (for the search index) in the
/// same transaction, and writes the product whole or not at all.
///
/// Stock: the store keeps the last known availability of every SKU (from inventory events, through
/// [`ProductStore::set_availability`]) and sets a product's `in_stock` itself on every write: a
/// product is in stock when any of its SKUs has availability above zero. The `in_stock` of a product
/// passed in is ignored.
#[async_trait]
pub trait ProductStore: Send + Sync {
    /// The product with `id`.
    async fn get(&self, id: &str) -> Result<Option<Product>, StoreError>;
    /// The products of `ids` that exist, in no particular order (the indexer reads a batch at once).
    async fn get_many(&self, ids: &[String]) -> Result<Vec<Product>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            found.extend(self.get(id).await?);
        }
        Ok(found)
    }
    /// The product id of each of `skus` that a product has (SKUs no product has are absent).
    async fn product_ids_of(&self, skus: &[String]) -> Result<std::collections::HashMap<String, String>, StoreError>;
    /// Adds a product.
    async fn insert(&self, product: &Product, event: &Event) -> Result<(), StoreError>;
    /// Replaces a product; `false` when there is no such product.
    async fn replace(&self, product: &Product, event: &Event) -> Result<bool, StoreError>;
    /// Deletes a product; `false` when there is no such product.
    async fn delete(&self, id: &str, event: &Event) -> Result<bool, StoreError>;
    /// Inserts or replaces (by id) each product with its event: the bulk import. Each product is
    /// written whole or not at all; the outcome of each, in order. An `Err` of the whole call means
    /// the store failed (what it wrote before failing stays written, each product whole).
    async fn upsert_many(&self, items: Vec<(Product, Event)>) -> Result<Vec<Result<(), StoreError>>, StoreError>;
    /// At most `limit` products with ids greater than `after`, in id order: a full scan in pages
    /// (bounded memory), for reindexing.
    async fn scan(&self, after: Option<&str>, limit: usize) -> Result<Vec<Product>, StoreError>;
    /// Records that `available` units of `sku` can be sold now. When that changes whether the SKU's
    /// product is in stock, returns the product as it is now; otherwise `None` (also when no product
    /// has the SKU yet: the level is kept for when one does). `version` orders the levels of a SKU
    /// (the inventory's change counter): events may arrive out of order, and a level older than the
    /// one recorded is ignored. 0 is an unversioned level (the seeder's), replaced by any other.
    async fn set_availability(&self, sku: &str, available: i64, version: i64) -> Result<Option<Product>, StoreError>;
    /// Records unversioned levels (the seeder's, version 0) of many SKUs at once, as
    /// [`ProductStore::set_availability`] does one by one.
    async fn set_availabilities(&self, levels: &[(String, i64)]) -> Result<(), StoreError> {
        let levels: Vec<(String, i64, i64)> =
            levels.iter().map(|(sku, available)| (sku.clone(), *available, 0)).collect();
        self.set_availability_many(&levels).await.map(drop)
    }
    /// Records versioned levels of many SKUs (SKU, available, version), as
    /// [`ProductStore::set_availability`] does one by one and in order; the products whose stock
    /// status they changed, as they are after all of them (each once).
    async fn set_availability_many(&self, levels: &[(String, i64, i64)]) -> Result<Vec<Product>, StoreError> {
        let mut changed: Vec<Product> = Vec::new();
        for (sku, available, version) in levels {
            changed.extend(self.set_availability(sku, *available, *version).await?);
        }
        Ok(last_of_each(changed))
    }
    /// The number of products.
    async fn count(&self) -> Result<u64, StoreError>;
}

/// `products` with only the last copy of each product, in the order of those last copies: what a
/// run of writes left of each product they changed.
pub(crate) fn last_of_each(products: Vec<Product>) -> Vec<Product> {
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<Product> = products.into_iter().rev().filter(|p| seen.insert(p.id.clone())).collect();
    kept.reverse();
    kept
}
