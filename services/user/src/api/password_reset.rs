//! `POST /v1/auth/password-reset`: asks for a reset email. The answer is 202 whether or not the
//! account exists, so it reveals nothing; for an account, a single-use token is recorded and
//! `user.password_reset_requested.v1` goes to the notifier through the outbox.

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

use crate::domain::{new_secret_token, normalize_email};
use crate::store::ResetRequest;
use crate::{AppState, NAME};

/// How long a reset token works.
pub const RESET_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// `POST /v1/auth/password-reset` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PasswordResetRequest {
    /// The account's email.
    pub email: String,
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
    let expires_at = chrono::Utc::now() + RESET_TOKEN_LIFETIME;
    let request = ResetRequest { email: email.clone(), token_hash, expires_at: expires_at.timestamp_millis() };
    let make_event = Box::new(move |user_id: &str| {
        Event::new(
            "user.password_reset_requested.v1",
            NAME,
            json!({"user_id": user_id, "email": email, "token": token, "expires_at": expires_at}),
        )
        .with_subject(user_id)
        .with_trace(&trace)
    });
    if state.users.request_password_reset(request, make_event).await.map_err(ApiError::internal)? {
        state.outbox.notify_one();
    }
    Ok(StatusCode::ACCEPTED)
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/auth/password-reset", post(request_password_reset))
}
