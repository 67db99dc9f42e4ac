//! The order service's HTTP API.

pub mod carts;
pub mod orders;
pub mod pricing;

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
        carts::post_guest_code,
        carts::delete_guest_code,
        carts::guest_shipping_methods,
        carts::put_guest_shipping,
        carts::post_my_code,
        carts::delete_my_code,
        carts::my_shipping_methods,
        carts::put_my_shipping,
        orders::place_order,
        orders::get_order,
        orders::get_label,
        orders::list_orders,
        orders::cancel_order,
        orders::admin_list_orders,
        orders::deliver_order,
        orders::refund_order,
        pricing::list_zones,
        pricing::create_zone,
        pricing::get_zone,
        pricing::replace_zone,
        pricing::delete_zone,
        pricing::list_promotions,
        pricing::featured_promotions,
        pricing::create_promotion,
        pricing::get_promotion,
        pricing::replace_promotion,
        pricing::delete_promotion,
    ),
    components(schemas(
        crate::domain::CartResponse,
        crate::domain::CartItem,
        crate::domain::UnavailableItem,
        carts::QuantityRequest,
        carts::MergeRequest,
        carts::CodeRequest,
        carts::ShippingOffers,
        crate::domain::shipping::Offer,
        crate::domain::ShippingChoice,
        crate::domain::pricing::Breakdown,
        crate::domain::pricing::PricedLine,
        crate::domain::pricing::PricedShipping,
        crate::domain::pricing::Allocation,
        crate::domain::pricing::TaxLine,
        crate::domain::pricing::PromotionOutcome,
        orders::PlaceOrder,
        orders::Placement,
        platform::http::Page<crate::domain::order::Order>,
        crate::domain::order::Order,
        crate::domain::order::OrderStatus,
        crate::domain::order::HistoryEntry,
        crate::domain::refund::Refund,
        crate::domain::refund::RefundedLine,
        crate::domain::refund::RefundRequest,
        crate::domain::refund::RefundLineRequest,
        platform::address::AddressInput,
        platform::money::Money,
        platform::http::Page<crate::domain::shipping::Zone>,
        crate::domain::shipping::Zone,
        crate::domain::shipping::ZoneInput,
        crate::domain::shipping::ZoneRate,
        crate::domain::shipping::Method,
        crate::domain::shipping::Pricing,
        crate::domain::shipping::Tier,
        platform::http::Page<crate::domain::promotion::Promotion>,
        platform::http::Page<crate::domain::promotion::Featured>,
        crate::domain::promotion::Featured,
        crate::domain::promotion::Promotion,
        crate::domain::promotion::PromotionInput,
        crate::domain::promotion::Action,
        crate::domain::promotion::Target,
        crate::domain::promotion::Conditions,
        crate::domain::promotion::Limits,
        platform::contracts::catalog::TaxCategory,
    )),
    tags(
        (name = "carts", description = "Guest and persistent carts"),
        (name = "orders", description = "Checkout, orders and fulfillment"),
        (name = "pricing", description = "Shipping zones, tax rates and promotions")
    )
)]
struct ApiDoc;

/// The service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    platform::http::docs::complete(ApiDoc::openapi())
}

/// Every route of the service.
pub fn router() -> Router<AppState> {
    Router::new().merge(carts::router()).merge(orders::router()).merge(pricing::router())
}
