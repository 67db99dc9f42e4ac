//! The payment service's HTTP API.

pub mod admin;
pub mod payments;
pub mod webhooks;

use axum::Router;
use utoipa::OpenApi;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(
        payments::get_payment,
        admin::list_payments,
        admin::get_payment,
        admin::refund_payment,
        webhooks::stripe_webhook,
    ),
    components(schemas(
        webhooks::WebhookAck,
        payments::PaymentView,
        platform::http::Page<crate::domain::payment::Payment>,
        admin::PaymentDetail,
        admin::RefundRequest,
        admin::RefundResponse,
        crate::domain::payment::Payment,
        crate::domain::payment::PaymentStatus,
        crate::domain::payment::Failure,
        crate::domain::payment::LogEntry,
        crate::domain::payment::Refund,
        crate::domain::payment::RefundStatus,
    )),
    tags((name = "payments", description = "Payments, refunds and provider webhooks"))
)]
struct ApiDoc;

/// The service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    platform::http::docs::complete(ApiDoc::openapi())
}

/// Every route of the service.
pub fn router() -> Router<AppState> {
    Router::new().merge(payments::router()).merge(admin::router()).merge(webhooks::router())
}
