//! The order service's HTTP API.

pub mod carts;
pub mod orders;

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
        orders::place_order,
        orders::get_order,
        orders::get_label,
        orders::list_orders,
        orders::cancel_order,
        orders::admin_list_orders,
        orders::deliver_order,
    ),
    components(schemas(
        crate::domain::CartResponse,
        crate::domain::CartItem,
        crate::domain::UnavailableItem,
        carts::QuantityRequest,
        carts::MergeRequest,
        orders::PlaceOrder,
        orders::Placement,
        platform::http::Page<crate::domain::order::Order>,
        crate::domain::order::Order,
        crate::domain::order::OrderStatus,
        crate::domain::order::HistoryEntry,
        platform::address::AddressInput,
        platform::money::Money,
    )),
    tags(
        (name = "carts", description = "Guest and persistent carts"),
        (name = "orders", description = "Checkout, orders and fulfillment")
    )
)]
struct ApiDoc;

/// The service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    platform::http::docs::complete(ApiDoc::openapi())
}

/// Every route of the service.
pub fn router() -> Router<AppState> {
    Router::new().merge(carts::router()).merge(orders::router())
}
