//! `GET /v1/inventory/{sku}`: how many units of a SKU can be sold now; `GET /v1/inventory?skus=`:
//! of several at once (a product page's variants).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use platform::http::{ApiError, Json, Path, Query, Validator};
use serde::Deserialize;

use crate::AppState;
use crate::domain::AvailabilityResponse;

/// Units of `sku` available to buy.
#[utoipa::path(get, path = "/v1/inventory/{sku}", tag = "inventory",
    params(("sku" = String, Path, description = "The SKU")),
    responses(
        (status = 200, description = "Availability", body = AvailabilityResponse),
        (status = 404, description = "Unknown SKU", content_type = "application/problem+json"),
    ))]
pub async fn get_availability(
    State(state): State<AppState>,
    Path(sku): Path<String>,
) -> Result<Json<AvailabilityResponse>, ApiError> {
    let stock = super::admin::known_stock(&state, &sku).await?;
    Ok(Json(AvailabilityResponse { sku, available: stock.available() }))
}

/// Most SKUs one availability request may name.
pub const MAX_SKUS: usize = 100;

/// The SKUs asked about.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ManyParams {
    /// SKUs separated by commas, 1 to 100 (a product's variants).
    pub skus: String,
}

/// Units available to buy of each SKU asked about.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ManyAvailability {
    /// One entry a known SKU, in the order asked; a SKU the inventory does not know is left out
    /// (nothing of it can be sold).
    pub items: Vec<AvailabilityResponse>,
}

/// Units available to buy of several SKUs at once.
#[utoipa::path(get, path = "/v1/inventory", tag = "inventory", params(ManyParams),
    responses(
        (status = 200, description = "Availability of each known SKU", body = ManyAvailability),
        (status = 422, description = "No SKU, more than 100, or one that cannot be a SKU", content_type = "application/problem+json"),
    ))]
pub async fn get_many_availability(
    State(state): State<AppState>,
    Query(params): Query<ManyParams>,
) -> Result<Json<ManyAvailability>, ApiError> {
    let skus: Vec<String> = params.skus.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    let mut v = Validator::new();
    v.check((1..=MAX_SKUS).contains(&skus.len()), "skus", "must name 1 to 100 SKUs");
    v.check(skus.iter().all(|s| platform::sku::is_valid(s)), "skus", "must be SKUs separated by commas");
    v.finish()?;
    let found = state.store.get_many(&skus).await?;
    Ok(Json(ManyAvailability {
        items: found
            .into_iter()
            .map(|stock| AvailabilityResponse { available: stock.available(), sku: stock.sku })
            .collect(),
    }))
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/inventory", get(get_many_availability)).route("/v1/inventory/{sku}", get(get_availability))
}
