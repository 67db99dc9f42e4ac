//! `GET, PATCH /v1/users/me`: the signed-in user's profile.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use platform::auth::AuthUser;
use platform::http::{ApiError, Json, Validator};
use serde::Deserialize;

use crate::AppState;
use crate::domain::{User, validated_name};

/// `PATCH /v1/users/me`: the fields to change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfileRequest {
    /// A new display name.
    #[serde(default)]
    pub name: Option<String>,
}

/// The signed-in user's profile.
#[utoipa::path(get, path = "/v1/users/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The profile", body = User),
        (status = 401, description = "No valid access token", content_type = "application/problem+json"),
    ))]
pub async fn get_me(State(state): State<AppState>, AuthUser(claims): AuthUser) -> Result<Json<User>, ApiError> {
    Ok(Json(super::signed_in_account(&state, &claims).await?.user))
}

/// Changes the signed-in user's profile.
#[utoipa::path(patch, path = "/v1/users/me", tag = "auth", request_body = UpdateProfileRequest, security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated profile", body = User),
        (status = 422, description = "Invalid fields", content_type = "application/problem+json"),
    ))]
pub async fn update_me(
    State(state): State<AppState>,
    AuthUser(claims): AuthUser,
    Json(body): Json<UpdateProfileRequest>,
) -> Result<Json<User>, ApiError> {
    let mut v = Validator::new();
    let name = body.name.map(|name| validated_name(&name, "must not be empty", &mut v));
    v.finish()?;
    let user = match name {
        Some(name) => state.users.rename(&claims.sub, &name).await.map_err(ApiError::internal)?,
        None => Some(super::signed_in_account(&state, &claims).await?.user),
    };
    Ok(Json(user.ok_or_else(super::account_gone)?))
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/users/me", get(get_me).patch(update_me))
}
