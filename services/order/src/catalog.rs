//! What the order service asks other services about what it sells: SKUs' products and prices (the
//! product service's `GET /v1/skus`) and their availability (the inventory's
//! `GET /v1/inventory/{sku}`). Prices always come from here, never from the client.

use std::collections::HashMap;

use async_trait::async_trait;
use platform::client::{Call, ClientError, ServiceClient};
use platform::contracts::catalog::{SkuInfo, SkuList};
use serde::Deserialize;

/// The catalog and stock as the order service sees them.
#[async_trait]
pub trait Catalog: Send + Sync {
    /// The SKUs of `skus` the catalog sells now (unknown or deleted ones are absent).
    async fn skus(&self, skus: &[String]) -> Result<HashMap<String, SkuInfo>, ClientError>;

    /// Units of each of `skus` available now (0 for a SKU the inventory does not know).
    async fn available(&self, skus: &[String]) -> Result<HashMap<String, i64>, ClientError>;
}

/// The catalog through the product and inventory services' APIs.
pub struct ServiceCatalog {
    product: ServiceClient,
    inventory: ServiceClient,
}

impl ServiceCatalog {
    /// A catalog asking `product` and `inventory`.
    pub fn new(product: ServiceClient, inventory: ServiceClient) -> Self {
        Self { product, inventory }
    }
}

#[derive(Deserialize)]
struct Availability {
    available: i64,
}

#[async_trait]
impl Catalog for ServiceCatalog {
    async fn skus(&self, skus: &[String]) -> Result<HashMap<String, SkuInfo>, ClientError> {
        let mut found = HashMap::with_capacity(skus.len());
        for chunk in skus.chunks(100) {
            // SKUs are letters, digits, '-', '_' and '.': safe in a query string as they are.
            let path = format!("/v1/skus?skus={}", chunk.join(","));
            let list: SkuList = self.product.get(&path, &Call::default()).await?;
            found.extend(list.items.into_iter().map(|info| (info.sku.clone(), info)));
        }
        Ok(found)
    }

    async fn available(&self, skus: &[String]) -> Result<HashMap<String, i64>, ClientError> {
        let mut found = HashMap::with_capacity(skus.len());
        for sku in skus {
            let available =
                match self.inventory.get::<Availability>(&format!("/v1/inventory/{sku}"), &Call::default()).await {
                    Ok(answer) => answer.available.max(0),
                    Err(error) if error.status() == Some(axum::http::StatusCode::NOT_FOUND) => 0,
                    Err(error) => return Err(error),
                };
            found.insert(sku.clone(), available);
        }
        Ok(found)
    }
}
