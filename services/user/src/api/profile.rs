//! `GET /v1/users/me`: the signed-in user's profile.

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use platform::http::ApiError;

use crate::AppState;

/// The signed-in user's profile. Access tokens are issued once login lands; until then no token
/// verifies and every call is answered 401.
#[utoipa::path(get, path = "/v1/users/me", tag = "auth",
    responses((status = 401, description = "No valid access token", content_type = "application/problem+json")))]
pub async fn get_me(headers: HeaderMap) -> Result<(), ApiError> {
    platform::auth::bearer_token(&headers)?;
    Err(ApiError::unauthorized("the access token is not valid"))
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/users/me", get(get_me))
}
