//! The order service's HTTP API.

pub mod carts;

use axum::Router;
use utoipa::OpenApi;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(
        carts::create_cart,
        carts::get_cart,
        carts::put_guest_item,
        carts::get_my_cart,
        carts::put_my_item,
        carts::merge_cart,
    ),
    components(schemas(
        crate::domain::CartResponse,
        crate::domain::CartItem,
        crate::domain::UnavailableItem,
        carts::QuantityRequest,
        carts::MergeRequest,
        platform::money::Money,
    )),
    tags((name = "carts", description = "Guest and persistent carts"))
)]
struct ApiDoc;

/// The service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Every route of the service.
pub fn router() -> Router<AppState> {
    Router::new().merge(carts::router())
}
