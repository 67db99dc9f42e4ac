//! The product service's settings (its section of the configuration; `SHOP_*` variables).

use platform::config::{ConfigError, Section};
use serde::Deserialize;
use url::Url;

/// The product search engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchBackend {
    /// A Tantivy index under the data dir (embedded mode).
    Tantivy,
    /// An OpenSearch domain.
    Opensearch,
}

/// The product service's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Search backend (`SHOP_SEARCH_BACKEND`: tantivy | opensearch).
    pub search_backend: SearchBackend,
    /// OpenSearch endpoint when the search backend is OpenSearch (`SHOP_OPENSEARCH_URL`).
    pub opensearch_url: Option<Url>,
    /// The OpenSearch index of products (`SHOP_OPENSEARCH_INDEX`).
    pub opensearch_index: String,
    /// Largest body of a bulk request (`SHOP_BULK_BODY_LIMIT_BYTES`): NDJSON imports.
    pub bulk_body_limit_bytes: usize,
    /// Search result pages kept per index generation (`SHOP_SEARCH_CACHE_PAGES`; 0 turns the page
    /// cache off).
    pub search_cache_pages: usize,
    /// Memory the search result pages may take at most, in bytes (`SHOP_SEARCH_CACHE_BYTES`).
    pub search_cache_bytes: usize,
    /// Largest product image an admin may upload, in bytes (`SHOP_IMAGE_MAX_BYTES`).
    pub image_max_bytes: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            search_backend: SearchBackend::Tantivy,
            opensearch_url: None,
            opensearch_index: "products".into(),
            bulk_body_limit_bytes: 512 * 1024 * 1024,
            search_cache_pages: 4_096,
            search_cache_bytes: 16 * 1024 * 1024,
            image_max_bytes: 10 * 1024 * 1024,
        }
    }
}

impl platform::config::Settings for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.search_backend == SearchBackend::Opensearch && self.opensearch_url.is_none() {
            return Err(ConfigError::new("opensearch_url", "is required when SHOP_SEARCH_BACKEND=opensearch"));
        }
        if self.image_max_bytes == 0 {
            return Err(ConfigError::new("image_max_bytes", "must be greater than 0"));
        }
        Ok(())
    }
}

/// The section a process running the product service declares.
pub const SECTION: Section = Section::of::<Settings>(crate::NAME);
