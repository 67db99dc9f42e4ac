//! `GET, PATCH /v1/users/me`: the signed-in user's profile; `POST /v1/users/me/password`: a new
//! password.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use platform::auth::AuthUser;
use platform::http::{ApiError, Json, Validator, docs};
use serde::{Deserialize, Serialize};

use super::ClientIp;
use super::auth::{Throttle, TokenResponse};
use crate::AppState;
use crate::domain::{Account, User, check_password, password, validated_name};

/// The signed-in user's profile: the user, and whether its email is proven.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Profile {
    /// The user.
    #[serde(flatten)]
    pub user: User,
    /// Whether the email was shown to be the owner's (the link of the verification email, or a
    /// sign-in through a pool that verified it). Until then `POST /v1/users/me/verify-email` mails
    /// a new link.
    pub email_verified: bool,
}

impl From<Account> for Profile {
    fn from(account: Account) -> Self {
        Self { email_verified: account.email_verified, user: account.user }
    }
}

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
        (status = 200, description = "The profile", body = Profile),
        docs::Unauthenticated,
    ))]
pub async fn get_me(State(state): State<AppState>, AuthUser(claims): AuthUser) -> Result<Json<Profile>, ApiError> {
    Ok(Json(super::signed_in_account(&state, &claims).await?.into()))
}

/// Changes the signed-in user's profile.
#[utoipa::path(patch, path = "/v1/users/me", tag = "auth", request_body = UpdateProfileRequest, security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated profile", body = Profile),
        (status = 422, description = "Invalid fields", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user.id = %claims.sub))]
pub async fn update_me(
    State(state): State<AppState>,
    AuthUser(claims): AuthUser,
    Json(body): Json<UpdateProfileRequest>,
) -> Result<Json<Profile>, ApiError> {
    let mut v = Validator::new();
    let name = body.name.map(|name| validated_name(&name, "must not be empty", &mut v));
    v.finish()?;
    if let Some(name) = name {
        let renamed: Option<User> = state.users.rename(&claims.sub, &name).await?;
        renamed.ok_or_else(super::account_gone)?;
    }
    Ok(Json(super::signed_in_account(&state, &claims).await?.into()))
}

/// `POST /v1/users/me/password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The password now.
    pub current_password: String,
    /// The new one: at least 10 characters, not a common password.
    pub new_password: String,
}

/// Changes the signed-in user's password. Every session that began before (this one included) is
/// over in the same write; the answer is a new session's tokens for the caller.
#[utoipa::path(post, path = "/v1/users/me/password", tag = "auth", request_body = ChangePasswordRequest, security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed: a new session's tokens (every other session is signed out)", body = TokenResponse),
        docs::Unauthenticated,
        (status = 409, description = "The password changed meanwhile", content_type = "application/problem+json"),
        (status = 422, description = "The current password is not right, or the new one is weak", content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong current passwords (throttled as sign-in is)", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user.id = %claims.sub))]
pub async fn change_password(
    State(state): State<AppState>,
    AuthUser(claims): AuthUser,
    client: ClientIp,
    Json(body): Json<ChangePasswordRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let account = super::signed_in_account(&state, &claims).await?;
    let mut v = Validator::new();
    if let Err(message) = check_password(&body.new_password, &account.user.email) {
        v.add("new_password", message);
    }
    v.finish()?;
    // A stolen access token must not make the current password guessable.
    let throttle = Throttle::new("password", &account.user.id, client);
    throttle.admit(&state).await?;
    let checked = account.password_hash.clone();
    if !password::verify_async(body.current_password, checked.clone()).await.map_err(ApiError::internal)? {
        return Err(ApiError::invalid_field("current_password", "is not right"));
    }
    throttle.succeeded(&state).await?;
    let new_hash = password::hash_async(body.new_password).await.map_err(ApiError::internal)?;
    let now = chrono::Utc::now().timestamp_millis();
    if !state.users.change_password(&account.user.id, &checked, &new_hash, now).await? {
        return Err(ApiError::conflict("the password changed meanwhile: sign in again"));
    }
    if let Err(error) = state.sessions.revoke_user(&account.user.id).await {
        // The sessions are over already (they began before the change); this only tidies.
        tracing::warn!(user.id = %account.user.id, %error, "could not tidy the sessions after a password change");
    }
    tracing::info!(user.id = %account.user.id, "password changed; every other session signed out");
    // The caller's new session begins after the change.
    let family = super::auth::family_after(now);
    Ok(Json(super::auth::sign_in_as_of(&state, account.user, claims.amr, family).await?))
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/users/me", get(get_me).patch(update_me))
        .route("/v1/users/me/password", post(change_password))
}
