//! The user service's HTTP API.

pub mod password_reset;
pub mod profile;

use axum::Router;
use utoipa::OpenApi;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(password_reset::request_password_reset, profile::get_me),
    components(schemas(password_reset::PasswordResetRequest)),
    tags((name = "auth", description = "Accounts, tokens and sessions"))
)]
struct ApiDoc;

/// The service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Every route of the service.
pub fn router() -> Router<AppState> {
    Router::new().merge(password_reset::router()).merge(profile::router())
}
