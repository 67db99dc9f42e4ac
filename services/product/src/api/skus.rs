//! `GET /v1/skus?skus=A,B`: what the catalog says about SKUs (their product, name and price now),
//! for carts and checkout, which price every line from the catalog, never from the client.

use std::collections::HashMap;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
pub use platform::contracts::catalog::{SkuInfo, SkuList};
use platform::http::{ApiError, Json, Query};
use serde::Deserialize;

use crate::AppState;

/// SKUs one request may ask about.
pub const MAX_SKUS: usize = 100;

/// `GET /v1/skus` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SkuParams {
    /// Comma-separated SKUs (1 to 100).
    pub skus: String,
}

/// Looks SKUs up.
#[utoipa::path(get, path = "/v1/skus", tag = "catalog", params(SkuParams),
    responses(
        (status = 200, description = "The SKUs the catalog has", body = SkuList),
        (status = 422, description = "No SKU, too many, or a malformed one", content_type = "application/problem+json"),
    ))]
pub async fn get_skus(
    State(state): State<AppState>,
    Query(params): Query<SkuParams>,
) -> Result<Json<SkuList>, ApiError> {
    let mut skus: Vec<String> = Vec::new();
    for sku in params.skus.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !platform::sku::is_valid(sku) {
            return Err(ApiError::invalid_field("skus", format!("{sku:?} is not a SKU")));
        }
        if !skus.iter().any(|s| s == sku) {
            skus.push(sku.to_owned());
        }
    }
    if skus.is_empty() || skus.len() > MAX_SKUS {
        return Err(ApiError::invalid_field("skus", format!("must name 1 to {MAX_SKUS} SKUs")));
    }
    let products = &state.catalog.products;
    let owners = products.product_ids_of(&skus).await?;
    let mut ids: Vec<String> = owners.values().cloned().collect();
    ids.sort_unstable();
    ids.dedup();
    let found: HashMap<String, crate::domain::product::Product> =
        products.get_many(&ids).await?.into_iter().map(|p| (p.id.clone(), p)).collect();
    let tree = state.tree.get().await?;
    let items = skus
        .iter()
        .filter_map(|sku| {
            let product = found.get(owners.get(sku)?)?;
            let variant = product.variants.iter().find(|v| &v.sku == sku)?;
            Some(SkuInfo {
                sku: sku.clone(),
                product_id: product.id.clone(),
                name: product.name.clone(),
                price: variant.price.clone(),
                attributes: variant.attributes.clone().into_iter().collect(),
                image: product.images.first().cloned(),
                in_stock: product.in_stock,
                brand: product.brand.clone(),
                category_path: tree.path(&product.category_id),
                tax_category: product.tax_category,
                weight_grams: variant.weight_grams,
            })
        })
        .collect();
    Ok(Json(SkuList { items }))
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/skus", get(get_skus))
}
