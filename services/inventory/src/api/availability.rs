//! `GET /v1/inventory/{sku}`: how many units of a SKU can be sold now.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use platform::http::{ApiError, Json, Path};

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

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/inventory/{sku}", get(get_availability))
}
