//! The product service's storage ports and their adapters.

pub mod sqlite;

use async_trait::async_trait;

use platform::events::Event;

use crate::domain::category::Category;
use crate::domain::product::Product;

/// A failure of a catalog store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A category with this slug exists already.
    #[error("slug {0} is taken")]
    DuplicateSlug(String),
    /// The named parent does not exist.
    #[error("no category {0}")]
    UnknownParent(String),
    /// The product's category does not exist.
    #[error("no category {0}")]
    UnknownCategory(String),
    /// A SKU belongs to another product.
    #[error("SKU {0} belongs to another product")]
    DuplicateSku(String),
    /// The store itself failed.
    #[error("catalog store")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
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
/// same transaction.
#[async_trait]
pub trait ProductStore: Send + Sync {
    /// The product with `id`.
    async fn get(&self, id: &str) -> Result<Option<Product>, StoreError>;
    /// Adds a product.
    async fn insert(&self, product: &Product, event: &Event) -> Result<(), StoreError>;
    /// Replaces a product; `false` when there is no such product.
    async fn replace(&self, product: &Product, event: &Event) -> Result<bool, StoreError>;
    /// Deletes a product; `false` when there is no such product.
    async fn delete(&self, id: &str, event: &Event) -> Result<bool, StoreError>;
}
