//! The product service's HTTP API.

pub mod categories;

use axum::Router;
use utoipa::OpenApi;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(categories::list_categories),
    components(schemas(categories::CategoryList, crate::domain::category::Category)),
    tags((name = "catalog", description = "Categories, products and search"))
)]
struct ApiDoc;

/// The service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Every route of the service.
pub fn router() -> Router<AppState> {
    Router::new().merge(categories::router())
}
