//! The inventory service's HTTP API.

pub mod admin;
pub mod availability;

use axum::Router;
use utoipa::OpenApi;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(
        availability::get_availability,
        availability::get_many_availability,
        admin::list_stock,
        admin::get_stock,
        admin::set_stock,
        admin::adjust_stock,
        admin::get_ledger,
        admin::get_reservation,
    ),
    components(schemas(
        crate::domain::AvailabilityResponse,
        availability::ManyAvailability,
        crate::domain::Reservation,
        crate::domain::ReservationStatus,
        crate::domain::LedgerEntry,
        crate::domain::LedgerKind,
        platform::contracts::inventory::Line,
        platform::contracts::inventory::Shortage,
        admin::StockView,
        platform::http::Page<admin::StockView>,
        platform::http::Page<crate::domain::LedgerEntry>,
        admin::SetStockRequest,
        admin::AdjustRequest,
    )),
    tags((name = "inventory", description = "Stock, availability, reservations and the ledger"))
)]
struct ApiDoc;

/// The service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    platform::http::docs::complete(ApiDoc::openapi())
}

/// Every route of the service.
pub fn router() -> Router<AppState> {
    Router::new().merge(availability::router()).merge(admin::router())
}
