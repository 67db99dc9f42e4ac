//! Password reset: `POST /v1/auth/password-reset` asks for a reset email (202 whether or not the
//! account exists, so it reveals nothing; for an account a single-use token is recorded and
//! `user.password_reset_requested.v1` goes to the mailer through the outbox), and
//! `POST /v1/auth/password-reset/confirm` spends the token, sets the password and signs the account
//! out everywhere.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use platform::events::Event;
use platform::http::{ApiError, Json, Validator};
use platform::telemetry::trace::TraceContext;
use serde::Deserialize;
use serde_json::json;

use crate::domain::{check_password, hash_token, new_secret_token, normalize_email, password};
use crate::store::ResetRequest;
use crate::{AppState, NAME};

/// How long a reset token works.
pub const RESET_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// `POST /v1/auth/password-reset`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    /// The account's email.
    pub email: String,
}

/// `POST /v1/auth/password-reset/confirm`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetConfirm {
    /// The token from the email.
    pub token: String,
    /// The new password.
    pub new_password: String,
}

/// Requests a password-reset email.
#[utoipa::path(post, path = "/v1/auth/password-reset", tag = "auth", request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "Accepted (whether or not the account exists)"),
        (status = 422, description = "Not an email address", content_type = "application/problem+json"),
    ))]
pub async fn request_password_reset(
    State(state): State<AppState>,
    trace: TraceContext,
    Json(body): Json<PasswordResetRequest>,
) -> Result<StatusCode, ApiError> {
    let email = normalize_email(&body.email);
    let mut v = Validator::new();
    v.check(email.is_some(), "email", "must be an email address");
    v.finish()?;
    let email = email.expect("validated");
    let (token, token_hash) = new_secret_token();
    // Sealed for the mailer: the event store, the queues and their dead letters never hold a
    // token that resets the password.
    let token_sealed = state.keys.seal(&token);
    let expires_at = chrono::Utc::now() + RESET_TOKEN_LIFETIME;
    let request = ResetRequest { email: email.clone(), token_hash, expires_at: expires_at.timestamp_millis() };
    let make_event = Box::new(move |user_id: &str| {
        Event::new(
            "user.password_reset_requested.v1",
            NAME,
            json!({"user_id": user_id, "email": email, "token_sealed": token_sealed, "expires_at": expires_at}),
        )
        .with_subject(user_id)
        .with_trace(&trace)
    });
    // The same answer whether an account has the email or not (nothing is written then).
    state.users.request_password_reset(request, make_event).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Sets a new password with a reset token.
#[utoipa::path(post, path = "/v1/auth/password-reset/confirm", tag = "auth", request_body = PasswordResetConfirm,
    responses(
        (status = 204, description = "The password is changed and every session is signed out"),
        (status = 400, description = "The token is unknown, used or expired", content_type = "application/problem+json"),
        (status = 422, description = "A weak password", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user.id))]
pub async fn confirm_password_reset(
    State(state): State<AppState>,
    Json(body): Json<PasswordResetConfirm>,
) -> Result<StatusCode, ApiError> {
    let mut v = Validator::new();
    if let Err(message) = check_password(&body.new_password, "") {
        v.add("new_password", message);
    }
    v.finish()?;
    let hash = password::hash_async(body.new_password).await.map_err(ApiError::internal)?;
    let now = chrono::Utc::now().timestamp_millis();
    let user_id = state
        .users
        .reset_password(&hash_token(&body.token), &hash, now)
        .await?
        .ok_or_else(|| ApiError::bad_request("the reset token is unknown, used or expired"))?;
    tracing::Span::current().record("user.id", user_id.as_str());
    // Every session that began before is over already (the reset marked the credentials changed
    // in its transaction); revoking them now only tidies the session store, so a failure here
    // changes nothing for the shopper or an attacker.
    if let Err(error) = state.sessions.revoke_user(&user_id).await {
        tracing::warn!(user.id = %user_id, %error, "could not tidy the sessions of a reset account");
    }
    tracing::info!(user.id = %user_id, "password reset; every session revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/password-reset", post(request_password_reset))
        .route("/v1/auth/password-reset/confirm", post(confirm_password_reset))
}
