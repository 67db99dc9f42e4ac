//! The payment service's HTTP API.

pub mod webhooks;

use axum::Router;
use utoipa::OpenApi;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(webhooks::stripe_webhook),
    components(schemas(webhooks::WebhookAck)),
    tags((name = "payments", description = "Payments, refunds and provider webhooks"))
)]
struct ApiDoc;

/// The service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Every route of the service.
pub fn router() -> Router<AppState> {
    Router::new().merge(webhooks::router())
}
