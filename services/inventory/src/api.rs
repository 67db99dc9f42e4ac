//! The inventory service's HTTP API.

pub mod availability;

use axum::Router;
use utoipa::OpenApi;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(availability::get_availability),
    components(schemas(crate::domain::AvailabilityResponse)),
    tags((name = "inventory", description = "Stock and availability"))
)]
struct ApiDoc;

/// The service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Every route of the service.
pub fn router() -> Router<AppState> {
    Router::new().merge(availability::router())
}
