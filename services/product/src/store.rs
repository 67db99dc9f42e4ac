//! The product service's storage ports and their adapters.

pub mod sqlite;

use async_trait::async_trait;

use crate::domain::category::Category;

/// A failure of a catalog store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A category with this slug exists already.
    #[error("slug {0} is taken")]
    DuplicateSlug(String),
    /// The named parent does not exist.
    #[error("no category {0}")]
    UnknownParent(String),
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
